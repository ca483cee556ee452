"""SpamPort end to end: the shared contract, then SpamPort's own policy, errors,
login-block behaviour and settings pages, all against the emulator over HTTP."""

import pytest
import requests

from spamfilter_plugin.errors import (
    VendorAuthError,
    VendorConflict,
    VendorNotFound,
    VendorRejected,
    VendorResponseError,
    VendorUnavailable,
    VendorUnclear,
)
from spamfilter_plugin.events import (
    Domain,
    DomainCreated,
    DomainDeleted,
    DomainUpdated,
    Mailbox,
    PasswordReset,
)
from spamfilter_plugin.redaction import Secret
from spamfilter_plugin.sandbox.spamport import PASSWORD, USERNAME
from spamfilter_plugin.templating import SettingsResult
from spamfilter_plugin.testing import VendorContract, write_config
from spamfilter_plugin.vendors.spamport import SpamPortLoginBlocked, error_for


class TestSpamPort(VendorContract):
    vendor_name = "spamport"
    secrets = (PASSWORD,)

    def vendor_table(self, url):
        return {"api_url": url, "username": USERNAME, "password": PASSWORD}

    def bad_credentials_table(self, url):
        return {"api_url": url, "username": USERNAME, "password": "wrong-Pa55"}

    def held(self, emulator, target):
        if not isinstance(target, Domain):
            return None  # SpamPort has no mailboxes
        record = emulator.emulator.domains.get(target.name)
        if record is None:
            return None
        host = record["transport"].removeprefix("smtp:").strip("[]")
        password = emulator.emulator.domain_passwords.get(target.name)
        return {"destination": host, "password": password, "settings": record}

    def no_op(self, event):
        return isinstance(event.target, Mailbox)  # SpamPort filters per domain


@pytest.fixture
def rt(tmp_path, spamport_sandbox):
    from spamfilter_plugin.manager import load_runtime

    table = {
        "api_url": spamport_sandbox.url,
        "username": USERNAME,
        "password": PASSWORD,
        "retries": 2,
        "greylist": True,
        "spamscore": "high",
        "report_to": "abuse@provider.example",
        "weekly": True,
    }
    return load_runtime(
        write_config(tmp_path / "c.toml", {"mail_host": "mx.provider.example"}, {"spamport": table})
    )


def functions(sandbox):
    """The SpamPort functions the emulator received, in order."""
    out = []
    for r in sandbox.emulator.requests:
        fields = dict(p.split("=", 1) for p in r["body"].split("&") if "=" in p)
        out.append(fields.get("function"))
    return out


def one(rt, event):
    (out,) = rt.deliver(event, vendors=["spamport"])
    return out


def test_domain_created_adds_with_every_default_in_one_call(rt, spamport_sandbox):
    out = one(rt, DomainCreated(domain="Bücher.example"))
    assert out.ok, out.error
    assert functions(spamport_sandbox) == ["add"]
    d = spamport_sandbox.emulator.domains["xn--bcher-kva.example"]
    assert (
        d["transport"],
        d["greylist"],
        d["spamscore"],
        d["report_to"],
        d["weekly"],
        d["archive"],
    ) == ("smtp:mx.provider.example", "1", "high", "abuse@provider.example", "1", "14")


def test_ip_destination_is_sent_as_transport_type_ip(rt, spamport_sandbox):
    assert one(rt, DomainCreated(domain="v6.example", destination="2001:DB8::25")).ok
    assert spamport_sandbox.emulator.domains["v6.example"]["transport"] == "smtp:[2001:db8::25]"
    body = spamport_sandbox.emulator.requests[-1]["body"]
    assert "transport_type=ip" in body


def test_domain_created_when_present_updates_the_destination(rt, spamport_sandbox):
    one(rt, DomainCreated(domain="a.example", destination="old.example.net"))
    out = one(rt, DomainCreated(domain="a.example", destination="192.0.2.44"))
    assert out.ok and "already" in out.result["message"]
    assert functions(spamport_sandbox) == ["add", "add", "set_outgoing"]
    assert spamport_sandbox.emulator.domains["a.example"]["transport"] == "smtp:192.0.2.44"


def test_lost_reply_is_retried_and_still_ends_right(rt, spamport_sandbox):
    spamport_sandbox.emulator.faults.configure(queue=["reset_after"])
    out = one(rt, DomainCreated(domain="lost.example", destination="mx.lost.example"))
    assert out.ok, out.error
    assert functions(spamport_sandbox) == ["add", "add", "set_outgoing"]
    assert spamport_sandbox.emulator.domains["lost.example"]["transport"] == "smtp:mx.lost.example"


def test_no_destination_anywhere_is_a_clear_error(tmp_path, spamport_sandbox):
    from spamfilter_plugin.manager import load_runtime

    rt = load_runtime(
        write_config(
            tmp_path / "c.toml",
            {},
            {
                "spamport": {
                    "api_url": spamport_sandbox.url,
                    "username": USERNAME,
                    "password": PASSWORD,
                }
            },
        )
    )
    out = one(rt, DomainCreated(domain="a.example"))
    assert isinstance(out.error, VendorRejected) and "general.mail_host" in str(out.error)
    assert spamport_sandbox.emulator.requests == []


def test_domain_updated_and_deleted(rt, spamport_sandbox):
    one(rt, DomainCreated(domain="a.example"))
    assert one(rt, DomainUpdated(domain="a.example", destination="192.0.2.9")).ok
    assert spamport_sandbox.emulator.domains["a.example"]["transport"] == "smtp:192.0.2.9"
    assert one(rt, DomainDeleted(domain="a.example")).ok
    out = one(rt, DomainDeleted(domain="a.example"))
    assert out.ok and out.result == {"message": "was not at SpamPort"}


def test_password_reset_of_a_domain_returns_the_new_password(rt, spamport_sandbox, caplog):
    one(rt, DomainCreated(domain="a.example"))
    caplog.set_level("DEBUG")
    out = one(rt, PasswordReset(domain="a.example"))
    assert out.ok and isinstance(out.result["password"], Secret)
    new = out.result["password"].reveal()
    assert new == spamport_sandbox.emulator.domain_passwords["a.example"]
    assert new not in caplog.text and new not in str(out.result)


def test_password_reset_of_a_mailbox_calls_nothing(rt, spamport_sandbox):
    out = one(rt, PasswordReset(mailbox="a@a.example", password="x-Pw-1"))
    assert out.ok and out.result is None and spamport_sandbox.emulator.requests == []


def test_mailbox_events_are_not_handled(rt):
    assert not rt.handles("spamport", "mailbox_added") and not rt.handles(
        "spamport", "mailbox_deleted"
    )


def test_bad_credentials_make_exactly_one_request_then_none(tmp_path, spamport_sandbox):
    from spamfilter_plugin.manager import load_runtime

    rt = load_runtime(
        write_config(
            tmp_path / "c.toml",
            {"mail_host": "mx.example.net"},
            {
                "spamport": {
                    "api_url": spamport_sandbox.url,
                    "username": USERNAME,
                    "password": "wrong-pw",
                    "retries": 5,
                }
            },
        )
    )
    first = one(rt, DomainCreated(domain="a.example"))
    assert isinstance(first.error, VendorAuthError)
    for name in ("b.example", "c.example", "d.example", "e.example", "f.example"):
        assert not one(rt, DomainCreated(domain=name)).ok
    assert len(spamport_sandbox.emulator.requests) == 1  # SpamPort would block us after five
    assert spamport_sandbox.emulator.blocked == set()


def test_login_blocked_is_never_retried_and_suspends(rt, spamport_sandbox):
    spamport_sandbox.emulator.blocked.add("127.0.0.1")
    out = one(rt, DomainCreated(domain="a.example"))
    assert isinstance(out.error, SpamPortLoginBlocked)
    assert "info@spamport.com" in str(out.error) and "spamfilter check" in str(out.error)
    assert not one(rt, DomainCreated(domain="b.example")).ok
    assert len(spamport_sandbox.emulator.requests) == 1
    spamport_sandbox.emulator.blocked.clear()
    assert rt.check("spamport").ok  # the admin's check resumes
    assert one(rt, DomainCreated(domain="b.example")).ok


@pytest.mark.parametrize(
    "message,cls",
    [
        ("No username supplied", VendorAuthError),
        ("No password supplied", VendorAuthError),
        ("Login blocked", SpamPortLoginBlocked),
        ("Invalid username or password", VendorAuthError),
        ("No domain supplied", VendorRejected),
        (
            "Outdated version of Spamport_API. Please upgrade via https://github.com/jordenc/SpamPort",
            VendorRejected,
        ),
        ("Invalid domain name supplied", VendorRejected),
        ("Domain not found", VendorNotFound),
        ("License fully used", VendorRejected),
        ("Archive license fully used", VendorRejected),
        ("transport_type can be either 'hostname' or 'ip'", VendorRejected),
        ("Invalid domain: bad!", VendorRejected),
        ("Invalid transport: x y", VendorRejected),
        ("Domain already exists: a.example", VendorConflict),
        ("Invalid data for archiving (must be 14 or 365): 30", VendorRejected),
        ("Invalid reporting mail address supplied: nobody", VendorRejected),
        ("No domains found", VendorNotFound),
        ("Unknown error", VendorUnavailable),
        ("Unknown action", VendorRejected),
        ("Something new SpamPort says", VendorUnclear),  # not in the document,
    ],
)
def test_every_documented_message_has_a_typed_error(message, cls):
    error = error_for(message)
    assert type(error) is cls
    assert message in str(error)
    assert error.permanent is (cls is not VendorUnavailable)


def test_licence_errors_from_the_emulator(rt, spamport_sandbox):
    spamport_sandbox.emulator.seed_data({"license_limit": 1})
    assert one(rt, DomainCreated(domain="a.example")).ok
    out = one(rt, DomainCreated(domain="b.example"))
    assert isinstance(out.error, VendorRejected) and "licence is fully used" in str(out.error)
    assert len(spamport_sandbox.emulator.requests) == 2  # permanent: not retried


def test_html_error_page_is_retried(rt, spamport_sandbox):
    spamport_sandbox.emulator.faults.configure(queue=["html"])
    out = rt.check("spamport")
    assert out.ok and len(spamport_sandbox.emulator.requests) == 2


def test_malformed_answer_is_a_response_error_keeping_the_body(rt, spamport_sandbox):
    spamport_sandbox.emulator.faults.configure(queue=["malformed"])
    out = rt.check("spamport")
    assert isinstance(out.error, VendorResponseError) and out.error.body
    assert len(spamport_sandbox.emulator.requests) == 1


@pytest.mark.parametrize("body", [b"<html>maintenance</html>", b'{"result": "ok"}', b"[1, 2]"])
def test_non_json_and_foreign_json_replies(body):
    from spamfilter_plugin.http import HttpClient
    from spamfilter_plugin.testing import LoopbackServer
    from spamfilter_plugin.vendors.spamport import SpamPortClient

    def app(environ, start_response):
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    with LoopbackServer(app) as server:
        api = SpamPortClient(HttpClient("spamport", server.url), USERNAME, Secret(PASSWORD))
        with pytest.raises(VendorResponseError) as info:
            api.get_domains()
    assert info.value.body == body.decode()


def test_login_url_is_fetched_on_click_and_works_once(rt, spamport_sandbox):
    one(rt, DomainCreated(domain="a.example"))
    frags = rt.settings_fragments("domain", Domain("a.example"), csrf_token="tok")
    assert "login" not in functions(spamport_sandbox)  # never at render
    assert 'value="login"' in str(frags[0].html)
    result = rt.settings_submitted(
        "spamport", "domain", Domain("a.example"), {"csrf_token": "tok", "action": "login"}
    )
    assert result.ok and result.redirect.startswith(f"{spamport_sandbox.root}/login/a.example/")
    assert requests.get(result.redirect, timeout=5).status_code == 200
    assert requests.get(result.redirect, timeout=5).status_code == 403


def test_domain_fragment_shows_info_and_controls(rt, spamport_sandbox):
    one(rt, DomainCreated(domain="a.example", destination="192.0.2.7"))
    (frag,) = rt.settings_fragments("domain", Domain("a.example"), csrf_token="t<k>")
    html = str(frag.html)
    assert "192.0.2.7" in html and "abuse@provider.example" in html
    assert html.count('name="csrf_token" value="t&lt;k&gt;"') == 2
    for level in ("veryhigh", "high", "normal", "low", "verylow"):
        assert f'value="{level}"' in html
    assert '<option value="high" selected>' in html
    assert "biggest chance of blocking legitimate mail" in html and "some spam through" in html
    assert 'name="greylist" type="checkbox" value="1" checked' in html
    assert 'name="filter" type="checkbox" value="1" checked' in html
    assert "<script" not in html


def test_domain_fragment_for_an_unknown_domain(rt):
    (frag,) = rt.settings_fragments("domain", Domain("nowhere.example"), csrf_token="t")
    assert "not at SpamPort yet" in str(frag.html) and "<form" not in str(frag.html)


def test_admin_fragment_lists_every_domain(rt):
    one(rt, DomainCreated(domain="a.example"))
    one(rt, DomainCreated(domain="<b>.example".replace("<b>", "b")))
    (frag,) = rt.settings_fragments("admin", None, csrf_token="t")
    html = str(frag.html)
    assert "a.example" in html and "b.example" in html and "2 domains at SpamPort" in html


def submit(rt, **form):
    return rt.settings_submitted(
        "spamport", "domain", Domain("a.example"), {"csrf_token": "t", **form}
    )


def test_submit_sends_only_what_changed(rt, spamport_sandbox):
    one(rt, DomainCreated(domain="a.example"))
    spamport_sandbox.emulator.requests.clear()
    result = submit(
        rt,
        action="save",
        filter="1",
        spamscore="high",
        greylist="1",
        report_to="abuse@provider.example",
        report_frequency="daily",
        report_frequency_shown="daily",
    )
    assert result == SettingsResult(True, "Nothing changed.")
    assert functions(spamport_sandbox) == ["info"]
    spamport_sandbox.emulator.requests.clear()
    result = submit(
        rt,
        action="save",
        filter="0",
        spamscore="verylow",
        greylist="1",
        report_to="",
        report_frequency="weekly",
        report_frequency_shown="daily",
    )
    assert result.ok and result.changed == ("filter", "spamscore", "report_to")
    assert functions(spamport_sandbox) == ["info", "set_filter", "set_spamscore", "set_report_to"]
    d = spamport_sandbox.emulator.domains["a.example"]
    assert (d["noscan"], d["spamscore"], d["greylist"], d["report_to"]) == ("1", "verylow", "1", "")
    result = submit(rt, greylist="0")
    assert (
        result.changed == ("greylist",)
        and spamport_sandbox.emulator.domains["a.example"]["greylist"] == "0"
    )


@pytest.mark.parametrize(
    "form,field",
    [
        ({"spamscore": "extreme"}, "spamscore"),
        ({"report_to": "not-an-address"}, "report_to"),
        ({"filter": "maybe"}, "filter"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_submit_refuses_bad_input_naming_the_field(rt, spamport_sandbox, form, field):
    one(rt, DomainCreated(domain="a.example"))
    spamport_sandbox.emulator.requests.clear()
    result = submit(rt, **form)
    assert not result.ok and field in result.errors
    assert spamport_sandbox.emulator.requests == []


def test_submit_reports_the_vendor_error_in_plain_words(rt):
    result = submit(rt, spamscore="low")
    assert not result.ok and "not at SpamPort" in result.message


@pytest.mark.parametrize(
    "message,ok",
    [
        (
            {
                "domain": "a.example",
                "transport": "smtp:[2001:db8::1]",
                "added": "2016-10-05",
                "report_to": None,
                "spamscore": "low",
                "noscan": "1",
                "greylist": 0,
                "new_field_from_spamport": "x",
            },
            True,
        ),
        ({"domain": "a.example", "added": "2016-10-05"}, False),
    ],
)
def test_domain_info_ignores_unknown_keys_and_refuses_missing_ones(message, ok):
    import json

    from spamfilter_plugin.http import HttpClient
    from spamfilter_plugin.testing import LoopbackServer
    from spamfilter_plugin.vendors.spamport import SpamPortClient

    body = json.dumps({"message": message, "status": "success"}).encode()

    def app(environ, start_response):
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    with LoopbackServer(app) as server:
        api = SpamPortClient(HttpClient("spamport", server.url), USERNAME, Secret(PASSWORD))
        if ok:
            info = api.info("a.example")
            assert (info.destination, info.report_to, info.noscan, info.greylist) == (
                "2001:db8::1",
                "",
                True,
                False,
            )
        else:
            with pytest.raises(VendorResponseError) as err:
                api.info("a.example")
            assert "transport" in str(err.value)


def test_refused_login_from_a_settings_form_suspends_like_any_other(rt, spamport_sandbox):
    one(rt, DomainCreated(domain="a.example"))
    spamport_sandbox.emulator.blocked.add("127.0.0.1")
    result = submit(rt, spamscore="low")
    assert (
        not result.ok
        and result.message.startswith("Nothing was changed:")
        and "info@spamport.com" in result.message
    )
    assert rt.contexts["spamport"].suspension() is not None
    before = len(spamport_sandbox.emulator.requests)
    assert not submit(rt, spamscore="low").ok and len(spamport_sandbox.emulator.requests) == before


@pytest.mark.parametrize("code", ["../../admin", "abc\r\nSet-Cookie: x=1", "a/b", "%2e%2e", ""])
def test_a_hostile_login_code_never_reaches_the_redirect(code):
    import json as jsonlib

    from spamfilter_plugin.errors import VendorResponseError
    from spamfilter_plugin.http import HttpClient
    from spamfilter_plugin.testing import LoopbackServer
    from spamfilter_plugin.vendors.spamport import SpamPortClient

    def hostile(environ, start_response):
        body = jsonlib.dumps({"message": code, "status": "success"}).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    with LoopbackServer(hostile) as server:
        api = SpamPortClient(HttpClient("spamport", server.url + "/api"), "u", Secret("p-w-1"))
        with pytest.raises(VendorResponseError):
            api.login_url("example.com")
