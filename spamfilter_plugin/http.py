"""The only place that talks HTTP.

Every vendor client gets an :class:`HttpClient`: a ``requests`` Session with a
versioned User-Agent, TLS verification on, redirects never followed, a
(connect, read) timeout on every attempt, an overall deadline across attempts,
a response size cap, and one retry policy: capped, jittered exponential backoff
for connection errors, timeouts, 429/502/503/504 and throttling answers,
honouring Retry-After, and never for authentication errors.

HTTP statuses are mapped to the typed errors of :mod:`spamfilter_plugin.errors`
here, in one place; a vendor with its own conventions passes ``classify`` to
look at a response first.  :meth:`Response.json` and :meth:`Response.xml` turn
malformed or hostile bodies into :class:`~.errors.VendorResponseError`, keeping
the (redacted) body.
"""

from __future__ import annotations

import email.utils
import functools
import heapq
import json as jsonlib
import logging
import random
import socket
import threading
import time
import xml.etree.ElementTree as stdlib_et
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

import defusedxml
import defusedxml.ElementTree as safe_et
import requests
import urllib3.connection
import urllib3.connectionpool
from requests.adapters import HTTPAdapter

from . import __version__, deadline
from .config.model import HTTP_DEFAULTS
from .errors import (
    ConfigError,
    ResponseTooLarge,
    VendorAuthError,
    VendorConflict,
    VendorError,
    VendorNotFound,
    VendorRateLimited,
    VendorRejected,
    VendorResponseError,
    VendorTimeout,
    VendorTLSError,
    VendorUnavailable,
    VendorUnclear,
)
from .redaction import get_logger, redact

log = get_logger(__name__)
# urllib3 logs each request line (with its query string) at DEBUG: clean it too.
get_logger("urllib3.connectionpool")

RETRY_STATUSES = frozenset({429, 502, 503, 504})

#: connections a client keeps alive per host at the least (requests' own default)
POOL_SIZE = 10

#: what a ``classify`` function returns to take an answer as it is, whatever its HTTP status
#: (a vendor that reports success or failure inside the document, not in the status)
ACCEPT = VendorError("", "accepted by the vendor's classifier")


def user_agent(vendor: str) -> str:
    """The versioned User-Agent sent to every vendor."""
    return f"spamfilter-plugin/{__version__} ({vendor}) python-requests/{requests.__version__}"


FORM = "application/x-www-form-urlencoded"


@functools.lru_cache(maxsize=8192)
def _quoted(text: str) -> str:
    """One form key or value, as ``urlencode`` writes it (memoised: a vendor's forms
    repeat their names, its credentials and its settings in every request)."""
    return quote_plus(text)


def form_body(data: Mapping[str, Any]) -> bytes:
    """*data* as an ``application/x-www-form-urlencoded`` body, byte for byte what requests
    makes of a dict: a list or tuple value gives the key once per item, None values are
    left out, other values are written with ``str()``."""
    pairs = []
    for key, values in data.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        name = _quoted(key) if isinstance(key, str) else quote_plus(key)
        for value in values:
            if value is None:
                continue
            if isinstance(value, bytes):
                pairs.append(f"{name}={quote_plus(value)}")
            else:
                pairs.append(f"{name}={_quoted(value if isinstance(value, str) else str(value))}")
    return "&".join(pairs).encode("ascii")


@functools.lru_cache(maxsize=4096)
def _prepared_url(url: str) -> str:
    """*url* as requests prepares it (memoised: a vendor's URLs repeat; an unusable one
    raises, and is not remembered)."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.url  # type: ignore[return-value]


def prepared_url(url: str, params: Mapping[str, Any] | None = None) -> str:
    """*url* with *params* as its query, as requests prepares them, without requests' look at
    each request's parameters through its runtime protocols (a dozen microseconds a request):
    the query is encoded as :func:`form_body` encodes a form, which is what requests' own
    encoding of a dict gives, and added to the memoised URL."""
    base = _prepared_url(url)
    if not params:
        return base
    if not isinstance(params, Mapping) or "#" in base:
        prepared = requests.PreparedRequest()
        prepared.prepare_url(url, params)
        return prepared.url  # type: ignore[return-value]
    query = form_body(params).decode("ascii")
    if not query:
        return base
    return f"{base}{'&' if '?' in base else '?'}{query}"


def quote_segment(value: str) -> str:
    """Percent-encode one URL path segment (``/``, ``@``, ``%`` and all included)."""
    return quote(str(value), safe="")


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts, caps and the retry policy of one client (see the ``[vendors.X]`` keys)."""

    connect_timeout: float = HTTP_DEFAULTS["connect_timeout"]
    read_timeout: float = HTTP_DEFAULTS["read_timeout"]
    deadline: float = HTTP_DEFAULTS["deadline"]
    max_response_bytes: int = HTTP_DEFAULTS["max_response_bytes"]
    retries: int = HTTP_DEFAULTS["retries"]
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_statuses: frozenset[int] = RETRY_STATUSES

    @classmethod
    def from_config(cls, table: Mapping[str, Any]) -> HttpPolicy:
        return cls(**{k: table[k] for k in HTTP_DEFAULTS if table.get(k) is not None})

    def backoff(self, attempt: int, rnd: float, retry_after: float | None = None) -> float:
        """Delay before retry number *attempt* (1-based): full jitter over an
        exponentially growing window, at least Retry-After, at most the cap."""
        window = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        delay = rnd * window
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.backoff_cap)


_UNREAD = object()  # a Response whose body has not been parsed as JSON yet


@dataclass
class Response:
    """A complete, size-checked answer."""

    vendor: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    elapsed: float = 0.0
    attempts: int = 1
    _doc: Any = field(default=_UNREAD, init=False, repr=False, compare=False)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON (a leading UTF-8 BOM is allowed), or VendorResponseError when it
        is not JSON.  The message never quotes the body, which may hold a secret the vendor
        has just made; the (redacted) body stays on the error for a debugger.  Parsed once:
        a vendor's classifier and its client read the same document (do not change it)."""
        if self._doc is not _UNREAD:
            return self._doc
        try:
            self._doc = jsonlib.loads(self.body.decode("utf-8-sig"))
            return self._doc
        except (UnicodeDecodeError, ValueError, RecursionError):
            kind = self.headers.get("Content-Type", "no Content-Type")[:60]
            raise VendorResponseError(
                self.vendor,
                f"answered HTTP {self.status} with a body that is not JSON "
                f"({len(self.body)} bytes, {kind}); check api_url points at the API",
                status=self.status,
                body=self.body,
            ) from None

    def xml(self) -> stdlib_et.Element:
        """The body parsed as XML by defusedxml (no DTDs, entities or external references)."""
        return parse_xml(self.vendor, self.body, status=self.status)


def parse_xml(vendor: str, body: bytes | str, *, status: int | None = None) -> stdlib_et.Element:
    """Parse *body* with defusedxml; malformed or hostile documents raise VendorResponseError."""
    try:
        return safe_et.fromstring(body, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        raise VendorResponseError(
            vendor,
            f"sent an XML document we refuse to parse ({type(exc).__name__})",
            status=status,
            body=body,
        ) from None
    except (stdlib_et.ParseError, ValueError, RecursionError) as exc:
        raise VendorResponseError(
            vendor, f"sent malformed XML ({exc})", status=status, body=body
        ) from None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() alone accepts "²"
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def classify_status(resp: Response) -> VendorError | None:
    """Map an HTTP status to a typed error (None for 2xx).  The one default mapping."""
    status, vendor = resp.status, resp.vendor
    if 200 <= status < 300:
        return None
    snippet = redact(resp.text[:200]).strip()
    if 300 <= status < 400:
        where = resp.headers.get("Location", "?")
        return VendorResponseError(
            vendor,
            f"answered with a redirect to {where}, which is not followed; correct api_url",
            status=status,
            body=resp.body,
        )
    if status in (401, 403):
        return VendorAuthError(
            vendor,
            f"refused the credentials (HTTP {status}); fix them in the config and run "
            "'spamfilter check'",
            status=status,
            body=resp.body,
        )
    if status == 404:
        return VendorNotFound(
            vendor, f"not found (HTTP 404): {snippet}", status=status, body=resp.body
        )
    if status == 409:
        return VendorConflict(
            vendor, f"already exists (HTTP 409): {snippet}", status=status, body=resp.body
        )
    if status == 429:
        return VendorRateLimited(
            vendor,
            "asked us to slow down (HTTP 429)",
            status=status,
            body=resp.body,
            retry_after=_retry_after(resp.headers),
        )
    if status >= 500:
        return VendorUnavailable(
            vendor,
            f"had a server error (HTTP {status}); will be retried",
            status=status,
            body=resp.body,
        )
    # 400 says the request was malformed; any other refusal's meaning is not known here
    cls = VendorRejected if status == 400 else VendorUnclear
    return cls(
        vendor, f"rejected the request (HTTP {status}): {snippet}", status=status, body=resp.body
    )


# -- the watchdog that makes the deadline hold while a socket is blocked ---------------

_current = threading.local()


class _Watch:
    """Bounds one attempt: when its time is up, every socket the attempt opened or used
    is shut down, so a read blocked on a server that drips bytes returns at once."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self.done = False
        self.at = time.monotonic() + max(seconds, 0.0)
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> _Watch:
        _current.watch = self
        _watchdog.add(self)
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.done = True
        _current.watch = None

    def add(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._socks.append(sock)
            fired = self.fired
        if fired:
            _shut(sock)

    def fire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.fired = True
            socks = list(self._socks)
        for sock in socks:
            _shut(sock)


class _Watchdog:
    """One thread per process that fires each watch when its time comes (a thread per
    call would cost more than many a call to the sandbox)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, watch: _Watch) -> None:
        with self._cond:
            self._seq += 1
            sooner = not self._heap or watch.at < self._heap[0][0]
            heapq.heappush(self._heap, (watch.at, self._seq, watch))
            if self._thread is None or not self._thread.is_alive():  # first use, or forked
                self._thread = threading.Thread(
                    target=self._run, name="spamfilter-http-watchdog", daemon=True
                )
                self._thread.start()
            elif sooner:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            due = []
            with self._cond:
                now = time.monotonic()
                while self._heap and (self._heap[0][0] <= now or self._heap[0][2].done):
                    due.append(heapq.heappop(self._heap)[2])
                if not due:
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
            for watch in due:
                watch.fire()  # a no-op for the calls that ended in time


_watchdog = _Watchdog()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


def _watch(sock: socket.socket | None) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None:
        watch.add(sock)


class _Watched:
    """Mixed into urllib3's connections: each socket is handed to the current watch."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)  # type: ignore[attr-defined]  # a kept-alive connection, used again
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter, with connections the watchdog can shut, and without the work
    that is the same for every request of a client (each goes to its vendor's API)."""

    #: the most origins whose pool is remembered (a client talks to one)
    POOLS = 64

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS
        self._pools: dict[tuple, Any] = {}

    def get_connection_with_tls_context(
        self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
    ) -> Any:
        """requests' own choice of connection pool, remembered per origin, TLS settings and
        proxies (requests parses the URL, selects the proxy and builds the pool's key on
        every request).  A pool closed since (the client closed, or evicted) is looked up
        again."""
        origin = urlsplit(request.url)[:2]  # scheme and host (urlsplit memoises)
        key = (origin, verify, cert, tuple(proxies.items()) if proxies else ())
        pool = self._pools.get(key)
        if pool is None or pool.pool is None:
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            if len(self._pools) >= self.POOLS:
                self._pools.clear()
            self._pools[key] = pool
        return pool

    def close(self) -> None:
        self._pools.clear()  # the manager lets go of its pools: so does this
        super().close()

    def build_response(self, req: Any, resp: Any) -> requests.Response:
        """requests' own, but the answer's cookies are not read into a jar: no vendor API
        uses cookies, and the client sends none (see :meth:`HttpClient._exchange`)."""
        response = requests.Response()
        response.status_code = resp.status
        response.headers = requests.structures.CaseInsensitiveDict(resp.headers)
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url.decode("utf-8") if isinstance(req.url, bytes) else req.url
        response.request = req
        response.connection = self
        return response

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return redact(urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")))


_requests_lock = threading.Lock()
_requests: Counter[tuple[str, str]] = Counter()


def taken_requests() -> dict[tuple[str, str], int]:
    """The requests sent since the last call, per ``(vendor, status class)`` (``2xx``,
    ``4xx``..., ``none`` for an attempt that got no answer); the count starts again."""
    with _requests_lock:
        taken = dict(_requests)
        _requests.clear()
    return taken


@dataclass
class HttpClient:
    """One vendor's HTTP client.

    :param vendor: vendor name, used in errors and logs.
    :param base_url: the API's base URL (``api_url``).
    :param policy: timeouts, caps, retries.
    :param classify: looks at each response first; returns an error, :data:`ACCEPT` to take
        the answer whatever its status, or None to fall back on :func:`classify_status`.
    :param before_send: called with the headers dict before *each* attempt
        (request signing that must be fresh on every retry).
    :param agent: the User-Agent header (default :func:`user_agent`).
    :param ca_bundle: a PEM file of extra trusted CAs; verification is never off.
    :param admit: called just before each attempt is sent; raises to stop the call
        (a vendor suspended meanwhile by another process, see :mod:`.guard`).
    :param accepted: called when an answer is accepted (the credentials worked).
    :param pool_size: connections kept alive for reuse (at least the deliveries a worker
        runs side by side, ``concurrency``, so none of them waits to open a new one).
    """

    vendor: str
    base_url: str
    policy: HttpPolicy = field(default_factory=HttpPolicy)
    classify: Callable[[Response], VendorError | None] | None = None
    before_send: Callable[[dict[str, str]], None] | None = None
    agent: str | None = None
    ca_bundle: str | None = None
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = random.random
    clock: Callable[[], float] = time.monotonic
    admit: Callable[[], None] | None = None
    accepted: Callable[[], None] | None = None
    pool_size: int = POOL_SIZE

    def __post_init__(self) -> None:
        self.session = requests.Session()
        adapter = _WatchedAdapter(pool_maxsize=max(self.pool_size, POOL_SIZE))
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._adapter = adapter
        self._verify: bool | str = self.ca_bundle or True
        self.session.verify = self._verify
        self.session.headers["User-Agent"] = self.agent or user_agent(self.vendor)
        for name, value in self.session.headers.items():  # checked once (see _exchange)
            requests.utils.check_header_validity((name, str(value)))
        # What the environment says is read once, here, not on every request (requests
        # would look up the proxy variables and ~/.netrc each time): the proxy for this
        # API's host (HTTPS_PROXY, NO_PROXY...) is kept; a netrc login is never sent, the
        # credentials are the config's; the CA bundle is ca_bundle or the system's.
        self.session.trust_env = False
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))

    @classmethod
    def from_config(cls, vendor: str, table: Mapping[str, Any], **kwargs: Any) -> HttpClient:
        """A client for a validated ``[vendors.X]`` table."""
        if not table.get("api_url"):
            raise ConfigError(
                'missing; add api_url = "https://..."', location=f"[vendors.{vendor}] api_url"
            )
        return cls(
            vendor=vendor,
            base_url=table["api_url"],
            policy=HttpPolicy.from_config(table),
            ca_bundle=table.get("ca_bundle"),
            pool_size=table.get("concurrency") or POOL_SIZE,
            **kwargs,
        )

    @property
    def user_agent(self) -> str:
        return self.session.headers["User-Agent"]  # type: ignore[return-value]

    def url(self, path: str = "") -> str:
        if not path:
            return self.base_url
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        path: str = "",
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | str | bytes | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send a request with the policy; return a 2xx Response or raise a VendorError."""
        policy = self.policy
        url = self.url(path)
        started = self.clock()
        attempts = policy.retries + 1
        last: VendorError | None = None
        for attempt in range(1, attempts + 1):
            hdrs = dict(headers or {})
            if self.admit is not None:
                self.admit()
            if self.before_send is not None:
                self.before_send(hdrs)  # may wait (a rate limiter): the deadline counts it
            remaining = self._left(started)
            if remaining <= 0:
                break
            try:
                resp = self._attempt(method, url, params, data, json, hdrs, remaining, started)
                resp.attempts = attempt
                verdict = self.classify(resp) if self.classify else None
                error = None if verdict is ACCEPT else (verdict or classify_status(resp))
            except VendorError as exc:
                error = exc
                resp = None
            klass = f"{resp.status // 100}xx" if resp is not None else "none"
            with _requests_lock:
                _requests[(self.vendor, klass)] += 1
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "%s: %s %s -> %s in %.3fs (attempt %d/%d)",
                    self.vendor,
                    method,
                    _redact_url(url),
                    resp.status if resp is not None else type(error).__name__,
                    self.clock() - started,
                    attempt,
                    attempts,
                )
            if error is None:
                if self.accepted is not None:
                    self.accepted()
                return resp  # type: ignore[return-value]
            last = error
            if not self._retryable(error) or attempt == attempts:
                break
            delay = policy.backoff(attempt, self.rng(), getattr(error, "retry_after", None))
            if delay >= self._left(started):
                break
            log.info(
                "%s: %s; retrying in %.2fs (attempt %d/%d)",
                self.vendor,
                error,
                delay,
                attempt,
                attempts,
            )
            self.sleep(delay)
        if last is None:
            last = VendorTimeout(self.vendor, f"no answer within the {policy.deadline:g}s deadline")
        raise last

    def _left(self, started: float) -> float:
        """Seconds left for this call: its own deadline, or less when the delivery it is part
        of (:mod:`~spamfilter_plugin.deadline`) must end sooner."""
        return deadline.bounded(self.policy.deadline - (self.clock() - started))

    def _retryable(self, error: VendorError) -> bool:
        """An error that says whether to retry is obeyed; otherwise temporary failures
        without an answer, or with a retryable status, are retried."""
        if error.retry is not None:
            return error.retry
        if not isinstance(error, VendorUnavailable):
            return False
        return error.status is None or error.status in self.policy.retry_statuses

    def _attempt(self, method, url, params, data, json, headers, remaining, started) -> Response:
        """One attempt, over within *remaining* seconds whatever the server does."""
        with _Watch(remaining) as watch:
            try:
                resp = self._exchange(method, url, params, data, json, headers, remaining, started)
            except VendorError:
                if not watch.fired:
                    raise
                resp = None
        # a shut socket can look like a short but complete answer: once the watchdog has
        # fired, nothing read in this attempt is trusted
        if watch.fired:
            raise VendorTimeout(
                self.vendor,
                f"did not complete its answer within the {remaining:.3g}s left of the "
                "deadline; the connection was closed",
            )
        assert resp is not None  # no answer only when the watchdog fired
        return resp

    def _exchange(self, method, url, params, data, json, headers, remaining, started) -> Response:
        policy, vendor = self.policy, self.vendor
        timeout = (min(policy.connect_timeout, remaining), min(policy.read_timeout, remaining))
        session = self.session
        try:
            # What Session.request would do for this client, and no more: the request is
            # prepared from the session's headers and sent by its adapter. No cookies (no
            # vendor API uses them), no redirects (never followed), no hooks, and the
            # environment was read once when the client was made.
            prepared = requests.PreparedRequest()
            prepared.prepare_method(method)
            prepared.url = prepared_url(url, params)
            # the headers as prepare_headers makes them: each of this request's own is
            # checked (no line breaks, no leading white space); the session's were checked
            # once, when the client was made
            merged = requests.structures.CaseInsensitiveDict(session.headers)
            for name, value in headers.items():
                if value is None:
                    merged.pop(name, None)
                else:
                    requests.utils.check_header_validity((name, value))
                    merged[name] = value
            if isinstance(data, Mapping):  # a form: encoded here, as requests would
                data = form_body(data)
                merged.setdefault("Content-Type", FORM)
            prepared.headers = merged  # type: ignore[assignment]
            prepared.prepare_body(data, None, json)
            raw = self._adapter.send(
                prepared,
                stream=True,
                timeout=timeout,
                verify=self._verify,  # ca_bundle, or the system's: never off
                proxies=session.proxies,
            )
        except requests.exceptions.SSLError as exc:
            raise VendorTLSError(
                vendor,
                f"TLS verification failed for {_redact_url(url)} ({type(exc).__name__}); "
                "fix the vendor's certificate trust or set ca_bundle",
            ) from None
        except requests.exceptions.ConnectTimeout:
            raise VendorTimeout(vendor, f"could not connect within {timeout[0]:g}s") from None
        except requests.exceptions.ReadTimeout:
            raise VendorTimeout(vendor, f"sent no answer within {timeout[1]:g}s") from None
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise VendorRejected(
                vendor, f"api_url is not usable ({exc}); correct it in the config"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise VendorUnavailable(
                vendor, f"could not be reached ({type(exc).__name__})"
            ) from None
        try:
            body = self._read_body(raw)
        finally:
            raw.close()
        return Response(
            vendor=vendor,
            status=raw.status_code,
            headers=dict(raw.headers),
            body=body,
            url=url,
            elapsed=self.clock() - started,
        )

    def _read_body(self, raw: requests.Response) -> bytes:
        vendor, cap = self.vendor, self.policy.max_response_bytes
        declared = raw.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise ResponseTooLarge(
                vendor,
                f"announced a {declared}-byte answer, over the {cap}-byte cap (max_response_bytes)",
                status=raw.status_code,
            )
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in raw.iter_content(chunk_size=65536):
                total += len(chunk)
                if total > cap:
                    raise ResponseTooLarge(
                        vendor,
                        f"sent more than the {cap}-byte cap (max_response_bytes)",
                        status=raw.status_code,
                        body=b"".join(chunks)[:1024],
                    )
                chunks.append(chunk)
        except requests.exceptions.ReadTimeout:
            raise VendorTimeout(vendor, "stopped sending in the middle of the answer") from None
        except requests.exceptions.ContentDecodingError:
            encoding = raw.headers.get("Content-Encoding", "?")[:100]
            raise VendorResponseError(
                vendor,
                f"sent an answer that cannot be decoded (Content-Encoding: {encoding}); "
                "it is refused, not retried",
                status=raw.status_code,
            ) from None
        except requests.exceptions.RequestException as exc:
            raise VendorUnavailable(
                vendor,
                f"broke off the answer ({type(exc).__name__}: connection reset or truncated body)",
            ) from None
        return b"".join(chunks)
