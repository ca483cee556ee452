"""The HTTP layer against a scripted loopback server: real sockets, real
timeouts, real resets, real TLS."""

from __future__ import annotations

import gzip
import logging
import ssl
import threading

import pytest

from spamfilter_plugin.errors import (
    ConfigError,
    ResponseTooLarge,
    VendorAuthError,
    VendorNotFound,
    VendorRateLimited,
    VendorRejected,
    VendorResponseError,
    VendorTimeout,
    VendorTLSError,
    VendorUnavailable,
)
from spamfilter_plugin.http import (
    HttpClient,
    HttpPolicy,
    parse_xml,
    prepared_url,
    quote_segment,
)
from spamfilter_plugin.redaction import Secret
from spamfilter_plugin.testing import AbortConnection, LoopbackServer, closed_port_url


class Script:
    """A WSGI app answering each request with the next planned action (the last repeats)."""

    def __init__(self, *actions):
        self.actions = list(actions)
        self.seen: list[dict] = []
        self.lock = threading.Lock()
        self.server: LoopbackServer | None = None

    def __call__(self, environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size else b""
        with self.lock:
            self.seen.append(
                {
                    "method": environ["REQUEST_METHOD"],
                    "path": environ["PATH_INFO"],
                    "query": environ.get("QUERY_STRING", ""),
                    "body": body,
                    "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
                    "content_type": environ.get("CONTENT_TYPE", ""),
                }
            )
            action = self.actions.pop(0) if len(self.actions) > 1 else self.actions[0]
        return action(self, environ, start_response)


def reply(status=200, body=b"{}", headers=(), length=True):
    def action(script, environ, start_response):
        hdrs = list(headers)
        if length:
            hdrs.append(("Content-Length", str(len(body))))
        start_response(status if isinstance(status, str) else f"{status} X", hdrs)
        return [body]

    return action


def hang(seconds):
    def action(script, environ, start_response):
        script.server.hang(seconds)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"{}"]

    return action


def reset(script, environ, start_response):
    raise AbortConnection()


def truncated(script, environ, start_response):
    start_response("200 OK", [("Content-Length", "100")])
    return [b'{"partial":']


@pytest.fixture
def serve():
    servers = []

    def start(*actions, ssl_context=None):
        script = Script(*actions)
        server = LoopbackServer(script, ssl_context=ssl_context).start()
        script.server = server
        servers.append(server)
        return script, server

    yield start
    for s in servers:
        s.stop()


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def client(url, *, sleeps=None, rnd=1.0, **policy):
    policy.setdefault("connect_timeout", 2.0)
    policy.setdefault("read_timeout", 2.0)
    return HttpClient(
        "testvendor",
        url,
        policy=HttpPolicy(**policy),
        sleep=sleeps if sleeps is not None else Sleeps(),
        rng=lambda: rnd,
    )


def test_success_sends_versioned_user_agent_and_returns_body(serve):
    script, server = serve(reply(200, b'{"ok": true}'))
    resp = client(server.url).request("GET", "/a/b")
    assert resp.json() == {"ok": True}
    assert resp.attempts == 1
    ua = script.seen[0]["headers"]["HTTP_USER_AGENT"]
    assert ua.startswith("spamfilter-plugin/0.1.0 (testvendor)")


def test_retry_count_and_exponential_backoff_on_503(serve):
    script, server = serve(reply(503))
    sleeps = Sleeps()
    with pytest.raises(VendorUnavailable) as info:
        client(server.url, sleeps=sleeps, retries=3, backoff_base=0.5).request("GET")
    assert info.value.status == 503
    assert len(script.seen) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_backoff_is_jittered_and_capped():
    policy = HttpPolicy(backoff_base=1.0, backoff_cap=5.0)
    assert policy.backoff(1, 0.0) == 0.0
    assert policy.backoff(2, 0.5) == 1.0
    assert policy.backoff(10, 1.0) == 5.0  # capped
    assert policy.backoff(1, 0.1, retry_after=3) == 3  # at least Retry-After
    assert policy.backoff(1, 0.1, retry_after=600) == 5.0  # but never past the cap
    delays = {HttpPolicy().backoff(3, r / 10) for r in range(10)}
    assert len(delays) == 10  # jitter spreads retries


def test_retry_after_is_honoured_on_429(serve):
    _script, server = serve(reply(429, headers=[("Retry-After", "3")]), reply(200, b"[]"))
    sleeps = Sleeps()
    resp = client(server.url, sleeps=sleeps, rnd=0.0).request("GET")
    assert resp.attempts == 2 and sleeps == [3.0]


def test_rate_limit_error_when_retries_run_out(serve):
    _script, server = serve(reply(429, headers=[("Retry-After", "1")]))
    with pytest.raises(VendorRateLimited) as info:
        client(server.url, retries=1).request("GET")
    assert info.value.retry_after == 1.0 and not info.value.permanent


def test_transient_failures_then_success(serve):
    script, server = serve(reply(502), reply(504), reply(200, b'"fine"'))
    resp = client(server.url, retries=3).request("POST", data={"a": "1"})
    assert resp.json() == "fine" and resp.attempts == 3 and len(script.seen) == 3


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_are_never_retried(serve, status):
    script, server = serve(reply(status))
    sleeps = Sleeps()
    with pytest.raises(VendorAuthError) as info:
        client(server.url, sleeps=sleeps, retries=5).request("POST")
    assert len(script.seen) == 1 and sleeps == []
    assert info.value.permanent and "spamfilter check" in str(info.value)


@pytest.mark.parametrize(
    "status,error", [(400, VendorRejected), (404, VendorNotFound), (500, VendorUnavailable)]
)
def test_other_statuses_are_typed_and_not_retried_here(serve, status, error):
    script, server = serve(reply(status, b"nope"))
    with pytest.raises(error):
        client(server.url, retries=3).request("GET")
    assert len(script.seen) == 1


def test_read_timeout_is_retried_then_raised(serve):
    script, server = serve(hang(5))
    with pytest.raises(VendorTimeout):
        client(server.url, read_timeout=0.2, retries=2).request("GET")
    assert len(script.seen) == 3


def test_overall_deadline_bounds_all_attempts(serve):
    script, server = serve(hang(5))
    with pytest.raises(VendorTimeout):
        HttpClient(
            "testvendor",
            server.url,
            policy=HttpPolicy(read_timeout=0.3, deadline=0.5, retries=10, backoff_base=0.01),
        ).request("GET")
    assert 1 <= len(script.seen) <= 2  # the deadline, not the retry count, stopped it


def test_connection_refused_is_unavailable_and_retried():
    sleeps = Sleeps()
    with pytest.raises(VendorUnavailable) as info:
        client(closed_port_url(), sleeps=sleeps, retries=2).request("GET")
    assert len(sleeps) == 2 and not info.value.permanent


def test_connection_reset_is_retried(serve):
    _script, server = serve(reset, reply(200, b"{}"))
    assert client(server.url).request("GET").attempts == 2


def test_truncated_body_is_retried(serve):
    script, server = serve(truncated, truncated)
    with pytest.raises(VendorUnavailable):
        client(server.url, retries=1).request("GET")
    assert len(script.seen) == 2


def test_size_cap_by_content_length(serve):
    script, server = serve(reply(200, b"x" * 5000))
    with pytest.raises(ResponseTooLarge):
        client(server.url, max_response_bytes=4096, retries=3).request("GET")
    assert len(script.seen) == 1  # not retried


def test_size_cap_while_streaming_without_length(serve):
    def stream(script, environ, start_response):
        start_response("200 OK", [])
        return (b"y" * 1024 for _ in range(64))

    _script, server = serve(stream)
    with pytest.raises(ResponseTooLarge):
        client(server.url, max_response_bytes=8192).request("GET")


def test_size_cap_counts_decompressed_bytes(serve):
    bomb = gzip.compress(b"0" * 2_000_000)
    _script, server = serve(reply(200, bomb, headers=[("Content-Encoding", "gzip")]))
    assert len(bomb) < 10_000
    with pytest.raises(ResponseTooLarge):
        client(server.url, max_response_bytes=100_000).request("GET")


def test_redirects_are_not_followed(serve):
    script, server = serve(reply(302, b"", headers=[("Location", "/elsewhere")]), reply(200))
    with pytest.raises(VendorResponseError) as info:
        client(server.url).request("GET", "/api")
    assert [s["path"] for s in script.seen] == ["/api"]
    assert "/elsewhere" in str(info.value) and "api_url" in str(info.value)


def test_malformed_json_keeps_the_body(serve):
    _script, server = serve(reply(200, b"<html>Service Unavailable</html>"))
    resp = client(server.url).request("GET")
    with pytest.raises(VendorResponseError) as info:
        resp.json()
    assert info.value.body == "<html>Service Unavailable</html>"
    assert info.value.status == 200


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Result><Code>&lol3;</Code></Result>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Result><Message>&xxe;</Message></Result>"""


@pytest.mark.parametrize(
    "doc", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["entity-expansion", "external-entity"]
)
def test_hostile_xml_is_refused_with_the_body_kept(serve, doc):
    _script, server = serve(reply(200, doc))
    resp = client(server.url).request("GET")
    with pytest.raises(VendorResponseError) as info:
        resp.xml()
    assert "refuse" in str(info.value)
    assert info.value.body.startswith("<?xml")
    assert "root:" not in str(info.value) + info.value.body


def test_malformed_xml_is_a_response_error():
    with pytest.raises(VendorResponseError) as info:
        parse_xml("testvendor", b"<Result><Code>200</Result>")
    assert "malformed" in str(info.value) and info.value.body == "<Result><Code>200</Result>"


def test_wellformed_xml_parses():
    root = parse_xml("testvendor", b"<Result><Code>200</Code><Message>ok</Message></Result>")
    assert root.findtext("Code") == "200"


def test_before_send_runs_on_every_attempt(serve):
    script, server = serve(reply(503), reply(503), reply(200))
    counter = iter(range(100))
    http = client(server.url, retries=3)
    http.before_send = lambda headers: headers.__setitem__("X-Attempt", str(next(counter)))
    http.request("GET")
    assert [s["headers"]["HTTP_X_ATTEMPT"] for s in script.seen] == ["0", "1", "2"]


def test_secrets_absent_from_logs_and_errors(serve, caplog):
    secret = Secret("pa&ss#w%o+rd=Zq9")

    def echo_body(script, environ, start_response):
        body = script.seen[-1]["body"]
        start_response("400 Bad Request", [("Content-Length", str(len(body)))])
        return [body]

    script, server = serve(echo_body)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(VendorRejected) as info:
        client(server.url).request(
            "POST",
            params={"token": "q-token-123"},
            data={"username": "me", "password": secret.reveal()},
        )
    assert b"pa%26ss%23w%25o%2Brd%3DZq9" in script.seen[0]["body"]  # it was sent, encoded
    text = str(info.value) + (info.value.body or "") + caplog.text
    for form in ("pa&ss#w%o+rd=Zq9", "pa%26ss%23w%25o%2Brd%3DZq9", "q-token-123"):
        assert form not in text
    assert caplog.records


def test_quote_segment_encodes_everything():
    assert quote_segment("a b/c@d%e") == "a%20b%2Fc%40d%25e"


def test_missing_api_url_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        HttpClient.from_config("x", {"retries": 1})
    assert "[vendors.x] api_url" in str(info.value)


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    """A certificate for 127.0.0.1 that no CA signed (made in process: no openssl binary needed)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    return ctx, str(d / "cert.pem")


def test_tls_is_verified_and_not_retried(serve, self_signed):
    ctx, cert = self_signed
    _script, server = serve(reply(200, b'"secure"'), ssl_context=ctx)
    sleeps = Sleeps()
    with pytest.raises(VendorTLSError) as info:
        client(server.url, sleeps=sleeps, retries=3).request("GET")
    assert "ca_bundle" in str(info.value) and sleeps == []
    trusted = HttpClient("testvendor", server.url, ca_bundle=cert)
    assert trusted.session.verify == cert
    assert trusted.request("GET").json() == "secure"


@pytest.mark.parametrize(
    "status,retry,attempts",
    [
        (503, False, 1),  # a 503 the vendor's classifier marks as not to be repeated at once
        (200, True, 3),  # a 200 answer the classifier marks as retryable
        (200, None, 1),  # no say: a reported failure in a 200 answer is not an HTTP fault
        (503, None, 3),  # no say: a 503 is retried by status
    ],
)
def test_an_error_says_whether_it_is_retried(serve, status, retry, attempts):
    script, server = serve(reply(status, b"{}"))
    http = client(server.url, retries=2)
    http.classify = lambda r: VendorUnavailable("testvendor", "busy", status=r.status, retry=retry)
    with pytest.raises(VendorUnavailable):
        http.request("GET")
    assert len(script.seen) == attempts


@pytest.mark.parametrize("value", ["²", "1e9", "-5", "Thu, 99 Foo 2026", "999999999999999999999"])
def test_a_hostile_retry_after_is_ignored_not_fatal(serve, value):
    script, server = serve(reply(429, headers=[("Retry-After", value)]), reply(200, b"[]"))
    sleeps = Sleeps()
    resp = client(server.url, sleeps=sleeps, rnd=0.0).request("GET")
    assert resp.attempts == 2 and len(script.seen) == 2
    assert all(0 <= s <= 30 for s in sleeps)  # never more than the backoff cap


def test_stacked_compression_is_an_answer_error_not_a_reset(serve):
    body = b'{"ok": true}'
    for _ in range(10):
        body = gzip.compress(body)
    encoding = ", ".join(["gzip"] * 10)
    script, server = serve(reply(200, body, headers=[("Content-Encoding", encoding)]))
    with pytest.raises(VendorResponseError) as info:
        client(server.url).request("GET")
    assert "cannot be decoded" in str(info.value) and len(script.seen) == 1


def test_a_bom_before_json_is_accepted_and_a_bad_body_is_never_quoted(serve):
    _script, server = serve(
        reply(200, b'\xef\xbb\xbf{"ok": true}'), reply(200, b"Zq9-secret-ish junk")
    )
    assert client(server.url).request("GET").json() == {"ok": True}
    resp = client(server.url).request("GET")
    with pytest.raises(VendorResponseError) as info:
        resp.json()
    assert "Zq9" not in str(info.value) and "19 bytes" in str(info.value)


def test_the_environments_proxy_is_taken_once_and_a_netrc_login_never_sent(
    serve, monkeypatch, tmp_path
):
    # an HTTP proxy from the environment carries the calls to the API's host
    script, proxy = serve(reply(200, b'{"via": "proxy"}'))
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    through = client("http://api.vendor.invalid/v1/", retries=0)
    monkeypatch.delenv("http_proxy")  # read when the client was made, not on each request
    assert through.request("GET", "ping").json() == {"via": "proxy"}
    assert script.seen[0]["headers"]["HTTP_HOST"] == "api.vendor.invalid"
    # NO_PROXY names the host: straight to it (here: a name that does not resolve)
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", "api.vendor.invalid")
    with pytest.raises(VendorUnavailable):
        client("http://api.vendor.invalid/v1/", retries=0).request("GET", "ping")
    assert len(script.seen) == 1
    # a ~/.netrc entry for the API's host adds no login to a call: the config's alone
    monkeypatch.delenv("http_proxy")
    script, server = serve(reply(200, b"{}"))
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login someone password hunter2\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    client(server.url).request("GET", "/a")
    assert "HTTP_AUTHORIZATION" not in script.seen[0]["headers"]


@pytest.mark.parametrize(
    "form",
    [
        {"a": "1", "b": "two words", "c": "ü&=+/?#%"},
        {"list": ["x", "y z", None], "none": None, "n": 3, "f": 1.5, "t": True},
        {"bytes": b"\xff\x00 raw", "tuple": ("a", b"b"), "empty": ""},
        {"ключ": "значение", "k": ""},
    ],
)
def test_a_form_body_is_byte_for_byte_what_requests_makes(serve, form):
    import requests

    from spamfilter_plugin.http import form_body

    expected = requests.Request("POST", "http://x.invalid/", data=form).prepare()
    assert form_body(form) == (expected.body or "").encode("ascii")
    script, server = serve(reply(200, b"{}"))
    client(server.url).request("POST", "/f", data=form)
    seen = script.seen[0]
    assert seen["body"] == form_body(form)
    assert seen["content_type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    "url",
    ["https://api.example/v1/", "https://api.example/a b/é", "https://api.example/x?k=1&k=2",
     "http://api.example:8080/p?", "https://api.example/p#frag"],
)  # fmt: skip
@pytest.mark.parametrize(
    "params",
    [None, {}, {"q": "x y", "n": 1}, {"none": None}, {"d": "bücher.example", "list": ["a", "b&c"]},
     {"tilde~": "~!*'();:@&=+$,/?#[]", b"raw": b"\xff\x00", "t": ("x", None, 2.5)}],
)  # fmt: skip
def test_a_url_with_parameters_is_what_requests_prepares(url, params):
    import requests

    expected = requests.Request("GET", url, params=params).prepare().url
    assert prepared_url(url, params) == expected


def test_requests_are_prepared_as_requests_would_and_no_cookie_is_kept(serve):
    """The client prepares each request itself (URL, headers) and remembers its pool and
    its prepared URLs: what reaches the server is what requests would send, a cookie the
    server sets is never sent back, a header with a line break is refused before anything
    is sent, and a closed client's next request opens its pool again."""
    from urllib.parse import unquote_to_bytes

    import requests

    from spamfilter_plugin.errors import VendorError

    script, server = serve(reply(200, b"{}", headers=[("Set-Cookie", "sid=abc; Path=/")]))
    http = client(server.url)
    for _ in range(2):  # the second time from what was remembered
        http.request("GET", "/a b/é", params={"q": "x y", "n": 1})
        http.request("POST", "/b c/ü", headers={"X-Sig": "v1"})
    expected = requests.Request("GET", server.url + "/a b/é", params={"q": "x y", "n": 1}).prepare()
    raw_path = expected.path_url.split("?")[0]
    seen = script.seen
    assert len(seen) == 4
    for got in seen[0::2]:
        assert got["query"] == expected.path_url.split("?")[1]
        assert got["path"].encode("latin-1") == unquote_to_bytes(raw_path)
    plain = requests.Request("POST", server.url + "/b c/ü").prepare().path_url
    for got in seen[1::2]:
        assert got["headers"]["HTTP_X_SIG"] == "v1"
        assert got["path"].encode("latin-1") == unquote_to_bytes(plain) and plain != "/b c/ü"
    assert not any("HTTP_COOKIE" in s["headers"] for s in seen)  # the cookie was not kept
    with pytest.raises(VendorError):
        http.request("GET", "/x", headers={"X-Bad": "one\r\nInjected: two"})
    assert len(script.seen) == 4  # refused before it was sent
    pools = list(http._adapter._pools.values())
    assert len(pools) == 1  # one origin, one pool
    http.close()
    assert not http._adapter._pools  # let go of with the manager's
    http.request("GET", "/again")
    assert script.seen[-1]["path"] == "/again"
