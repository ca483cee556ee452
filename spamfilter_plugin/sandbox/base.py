"""What every vendor emulator shares: request parsing, fault injection,
inspection (state and a redacted request log), reset, and the ``/_sandbox/``
control endpoints that tests and the command line use from outside.

An emulator is a WSGI app.  Subclasses implement :meth:`Emulator.handle`
(the vendor's documented API), :meth:`Emulator.initial_state` and
:meth:`Emulator.snapshot`; the base applies faults around them.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs

from ..redaction import Secret, redact

#: fault kinds, in the order their rates are drawn
#: error     a 503 answer (before the request is processed)
#: html      a 502 HTML error page, as a proxy in front of the API would send (before)
#: timeout   no answer at all: the connection stays silent, then is dropped (before)
#: reset     the connection is reset without an answer (before)
#: reset_after  the request IS processed, then the connection is reset (a lost reply)
#: truncate  the request is processed; the answer is cut short of its Content-Length
#: malformed the request is processed; the answer body is garbage with status 200
#: throttle  a 429 answer asking the client to wait (Retry-After: 1), before processing
#: unclear   a refusal in the vendor's own error shape that says nothing a client can read
#:           (no code, a message its document does not list), before processing
FAULT_KINDS = (
    "error",
    "html",
    "timeout",
    "reset",
    "reset_after",
    "truncate",
    "malformed",
    "throttle",
    "unclear",
)
CONTROL_PREFIX = "/_sandbox"


class AbortConnection(Exception):
    """Reset the client's connection instead of answering (see testing.LoopbackServer)."""


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, doc: Any, status: int = 200) -> Reply:
        return cls(status, json.dumps(doc).encode(), "application/json")

    @classmethod
    def text(
        cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8"
    ) -> Reply:
        return cls(status, text.encode(), content_type)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    remote_addr: str

    @classmethod
    def from_environ(cls, environ: dict) -> Request:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size > 0 else b""
        headers = {
            k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        path = environ.get("PATH_INFO", "") or "/"
        # PATH_INFO is latin-1 decoded bytes per PEP 3333; restore UTF-8
        path = path.encode("latin-1").decode("utf-8", "replace")
        return cls(
            method=environ["REQUEST_METHOD"].upper(),
            path=path,
            query={
                k: v[0]
                for k, v in parse_qs(
                    environ.get("QUERY_STRING", ""), keep_blank_values=True
                ).items()
            },
            headers=headers,
            body=body,
            remote_addr=environ.get("REMOTE_ADDR", ""),
        )

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def form(self) -> dict[str, str]:
        """The body as application/x-www-form-urlencoded fields (first value of each)."""
        text = self.body.decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not."""
        return json.loads(self.body.decode("utf-8"))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Faults:
    """Fault injection settings of one emulator.

    ``rates`` maps a kind of :data:`FAULT_KINDS` to the share of requests that
    get it (0..1, drawn from a seeded generator so runs repeat); ``queue``
    holds one-shot faults applied to the next requests in order, before any
    rate.  ``latency`` (seconds, plus up to ``jitter``) delays every answer.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.clear()

    def clear(self) -> None:
        self.latency = 0.0
        self.jitter = 0.0
        self.hang_seconds = 30.0
        self.rates: dict[str, float] = {}
        self.queue: deque[str] = deque()
        self.rng = random.Random(self.seed)

    def configure(
        self,
        *,
        latency: float | None = None,
        jitter: float | None = None,
        hang_seconds: float | None = None,
        rates: dict[str, float] | None = None,
        queue: Iterable[str] | None = None,
        seed: int | None = None,
    ) -> None:
        """Change settings; a value of the wrong kind, an unknown fault kind or a rate
        outside 0..1 raises ValueError naming the field, and nothing is changed."""
        for name, value in (
            ("latency", latency),
            ("jitter", jitter),
            ("hang_seconds", hang_seconds),
        ):
            if value is not None and (not _number(value) or value < 0):
                raise ValueError(f"{name}: must be a number of seconds >= 0")
        if rates is not None and not isinstance(rates, dict):
            raise ValueError('rates: must be an object of fault kind to rate, {"error": 0.1}')
        if queue is not None and (isinstance(queue, str) or not isinstance(queue, (list, tuple))):
            raise ValueError('queue: must be a list of fault kinds, ["reset", "error"]')
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed: must be an integer")
        for kind, rate in (rates or {}).items():
            if kind not in FAULT_KINDS:
                raise ValueError(
                    f"rates: unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}"
                )
            if not _number(rate) or not 0 <= rate <= 1:
                raise ValueError(f"rates.{kind}: must be between 0 and 1")
        for kind in queue or ():
            if kind not in FAULT_KINDS:
                raise ValueError(
                    f"queue: unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}"
                )
        if seed is not None:
            self.seed = seed
            self.rng = random.Random(seed)
        if latency is not None:
            self.latency = float(latency)
        if jitter is not None:
            self.jitter = float(jitter)
        if hang_seconds is not None:
            self.hang_seconds = float(hang_seconds)
        if rates is not None:
            self.rates.update({k: float(v) for k, v in rates.items()})
        if queue is not None:
            self.queue.extend(queue)

    def pick(self) -> str | None:
        if self.queue:
            return self.queue.popleft()
        for kind in FAULT_KINDS:
            rate = self.rates.get(kind, 0.0)
            if rate and self.rng.random() < rate:
                return kind
        return None

    def delay(self) -> float:
        return self.latency + (self.rng.random() * self.jitter if self.jitter else 0.0)

    def describe(self) -> dict[str, Any]:
        return {
            "latency": self.latency,
            "jitter": self.jitter,
            "hang_seconds": self.hang_seconds,
            "rates": dict(self.rates),
            "queue": list(self.queue),
            "seed": self.seed,
        }


HTML_ERROR = b"""<!DOCTYPE html>
<html><head><title>502 Bad Gateway</title></head>
<body><h1>Bad Gateway</h1>
<p>The proxy server received an invalid response from an upstream server.</p>
</body></html>
"""


class Emulator:
    """Base WSGI emulator.  Thread-safe: requests are handled under one lock."""

    #: the vendor's name (one name everywhere)
    name: ClassVar[str] = ""
    #: the path of the API under the server root (the config's api_url is root + this)
    api_path: ClassVar[str] = ""
    #: where ``spamfilter sandbox --port N`` serves it (N + offset); None: after those that
    #: set one, in name order
    port_offset: ClassVar[int | None] = None
    #: the reason phrases we send
    REASONS: ClassVar[dict[int, str]] = {
        200: "OK",
        201: "Created",
        204: "No Content",
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        406: "Not Acceptable",
        409: "Conflict",
        429: "Too Many Requests",
        415: "Unsupported Media Type",
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
    }

    def __init__(self, *, seed: int = 0, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.faults = Faults(seed)
        self.requests: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self.reset()

    # -- to implement -----------------------------------------------------

    def initial_state(self) -> None:
        """Set the emulator's state to its documented starting point."""
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        """The state as a JSON-safe dict, without secrets."""
        raise NotImplementedError

    def handle(self, req: Request) -> Reply:
        """Answer one API request (called under the lock)."""
        raise NotImplementedError

    def seed_data(self, data: dict[str, Any]) -> None:
        """Add vendor-specific data (accounts, mailboxes, DNS records) for a test."""
        raise ValueError(f"{self.name} takes no seed data")

    def unclear(self) -> Reply:
        """A refusal whose meaning the answer does not say, in the vendor's own error shape
        (the ``unclear`` fault); vendors override it."""
        return Reply.json({"error": "The request could not be completed"}, 422)

    def credentials(self) -> dict[str, Any]:
        """The sandbox credentials as config keys (for the printed config snippet)."""
        return {}

    # -- shared -------------------------------------------------------------

    #: attributes set by the constructor that seed data may change; reset() restores them
    settings: ClassVar[tuple[str, ...]] = ()

    def reset(self) -> None:
        """Back to the starting state; request log, faults and seeded settings cleared."""
        with self.lock:
            if not hasattr(self, "_initial_settings"):
                self._initial_settings = {name: getattr(self, name) for name in self.settings}
            for name, value in self._initial_settings.items():
                setattr(self, name, value)
            self.requests = []
            self.faults.clear()
            self.initial_state()

    def close(self) -> None:
        """Release requests that are hanging in a timeout fault."""
        self._stopping.set()

    @staticmethod
    def secret(value: str) -> str:
        """Register an emulator credential so it is masked in the request log."""
        Secret(value)
        return value

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        req = Request.from_environ(environ)
        if req.path.startswith(CONTROL_PREFIX + "/"):
            return self._send(start_response, self._control(req))
        kind = self.faults.pick()
        delay = self.faults.delay()
        if delay:
            self._stopping.wait(delay)
        entry = {
            "method": req.method,
            "path": req.path,
            "query": redact(req.query),
            "body": redact(req.body[:4096]),
            "fault": kind,
            "status": None,
            "time": self.clock(),
        }
        with self.lock:
            self.requests.append(entry)
        if kind == "timeout":
            self._stopping.wait(self.faults.hang_seconds)
            raise AbortConnection()
        if kind == "reset":
            raise AbortConnection()
        if kind == "error":
            reply = Reply.text("Service temporarily unavailable", 503)
        elif kind == "html":
            reply = Reply(502, HTML_ERROR, "text/html; charset=utf-8")
        elif kind == "throttle":
            reply = Reply.text("Too many requests; slow down", 429)
            reply.headers.append(("Retry-After", "1"))
        elif kind == "unclear":
            reply = self.unclear()
        else:
            with self.lock:
                try:
                    reply = self.handle(req)
                except AbortConnection:
                    raise
                except Exception as exc:  # noqa: BLE001 - an emulator bug must show, not hang the client
                    reply = Reply.text(f"emulator error: {type(exc).__name__}: {exc}", 500)
        entry["status"] = reply.status
        if kind == "reset_after":
            raise AbortConnection()
        if kind == "malformed":
            reply = Reply(
                200,
                reply.body[: max(1, len(reply.body) // 2)] + b"\x00}{<<garbage",
                reply.content_type,
            )
        if kind == "truncate":
            full = len(reply.body) + 64
            return self._send(start_response, reply, declared_length=full)
        return self._send(start_response, reply)

    def _send(
        self, start_response: Callable, reply: Reply, declared_length: int | None = None
    ) -> list[bytes]:
        reason = self.REASONS.get(reply.status, "Status")
        length = declared_length if declared_length is not None else len(reply.body)
        headers = [
            ("Content-Type", reply.content_type),
            ("Content-Length", str(length)),
            *reply.headers,
        ]
        start_response(f"{reply.status} {reason}", headers)
        return [reply.body]

    # -- control endpoints: /_sandbox/state|requests|reset|faults|seed ----------

    def _control(self, req: Request) -> Reply:
        action = req.path[len(CONTROL_PREFIX) + 1 :].strip("/")
        try:
            if action == "state" and req.method == "GET":
                with self.lock:
                    return Reply.json(self.snapshot())
            if action == "requests" and req.method == "GET":
                with self.lock:
                    return Reply.json(self.requests)
            if action == "reset" and req.method == "POST":
                self.reset()
                return Reply.json({"reset": True})
            if action == "faults" and req.method == "GET":
                return Reply.json(self.faults.describe())
            if action == "faults" and req.method == "POST":
                doc = req.json() if req.body else {}
                if not isinstance(doc, dict):
                    raise ValueError("the body must be a JSON object of fault settings")
                if doc.pop("clear", False):
                    self.faults.clear()
                self.faults.configure(**doc)
                return Reply.json(self.faults.describe())
            if action == "seed" and req.method == "POST":
                with self.lock:
                    self.seed_data(req.json())
                    return Reply.json(self.snapshot())
        except (ValueError, TypeError) as exc:
            return Reply.json({"error": str(exc)}, 400)
        return Reply.json(
            {
                "error": f"unknown control {req.method} {req.path}; use GET state|requests|faults, "
                "POST reset|faults|seed"
            },
            404,
        )
