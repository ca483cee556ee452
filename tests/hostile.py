"""A hostile vendor: a raw loopback HTTP server that misbehaves on the wire.

Each request gets the next planned *play* (the last one repeats).  A play writes bytes to the
socket as it likes: headers one byte at a time, a body that never ends, a ``Retry-After`` that
is not a number, a body that holds a secret and is not clean JSON.  The server records each
request (its form fields decoded) and when it began and ended, so a test can tell whether two
deliveries of the same thing were ever in flight at once.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

Play = Callable[["Visit"], None]


@dataclass
class Visit:
    """One request as the hostile server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    began: float
    ended: float | None = None
    conn: socket.socket | None = field(default=None, repr=False)
    stop: threading.Event | None = field(default=None, repr=False)

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace")))

    def send(self, data: bytes) -> bool:
        """Write *data*; False once the client has gone (or the server stops)."""
        if self.stop is not None and self.stop.is_set():
            return False
        try:
            self.conn.sendall(data)
        except OSError:
            return False
        return True

    def wait(self, seconds: float) -> bool:
        """Wait *seconds*; False as soon as the client hangs up (or the server stops), so
        ``ended`` is when the client gave up, not when the next write would notice."""
        until = time.monotonic() + seconds
        while not self.stop.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return True
            readable, _, _ = select.select([self.conn], [], [], min(left, 0.05))
            if readable:
                try:
                    if self.conn.recv(1, socket.MSG_PEEK) == b"":
                        return False
                except OSError:
                    return False
                time.sleep(min(left, 0.05))  # a pipelined byte: not a hang-up
        return False

    def drip(self, data: bytes, interval: float, limit: float) -> None:
        """Write *data* one byte every *interval* seconds, for at most *limit* seconds."""
        until = time.monotonic() + limit
        for i in range(len(data)):
            if time.monotonic() > until or not self.send(data[i : i + 1]):
                return
            if not self.wait(interval):
                return


def answer(status: int = 200, body: bytes = b"{}", headers: dict[str, str] | None = None) -> Play:
    """A complete, well-formed answer (whatever its body says)."""

    def play(visit: Visit) -> None:
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        visit.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    return play


def slow(seconds: float, then: Play) -> Play:
    """Think for *seconds* (latency), then play *then*."""

    def play(visit: Visit) -> None:
        if visit.wait(seconds):
            then(visit)

    return play


def drip_headers(interval: float = 0.2, limit: float = 30.0) -> Play:
    """A status line, then headers one byte at a time, never finished within *limit*."""

    def play(visit: Visit) -> None:
        visit.drip(b"HTTP/1.1 200 OK\r\nX-Drip: " + b"a" * 100_000, interval, limit)

    return play


def drip_body(interval: float = 0.2, limit: float = 30.0) -> Play:
    """Headers at once, then a long body one byte at a time, never finished within *limit*."""

    def play(visit: Visit) -> None:
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        )
        if visit.send(head):
            visit.drip(b" " * 100_000, interval, limit)

    return play


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        vendor: HostileVendor = self.server.vendor  # type: ignore[attr-defined]
        conn = self.request
        conn.settimeout(10)
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            first, *lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            size = int(headers.get("content-length") or 0)
            while len(body) < size:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
        except (OSError, ValueError):
            return
        method, path = [*first.split(" "), "", ""][:2]
        visit = Visit(
            method, path, headers, body, time.monotonic(), conn=conn, stop=vendor.stopping
        )
        play = vendor.record(visit)
        try:
            play(visit)
        finally:
            visit.ended = time.monotonic()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class HostileVendor:
    """Serve *plays* on 127.0.0.1 (use as a context manager)."""

    def __init__(self, *plays: Play) -> None:
        self.plays = list(plays) or [answer()]
        self.visits: list[Visit] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.vendor = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

    def record(self, visit: Visit) -> Play:
        with self._lock:
            self.visits.append(visit)
            return self.plays.pop(0) if len(self.plays) > 1 else self.plays[0]

    def overlapping(self, key: Callable[[Visit], object]) -> list[tuple[Visit, Visit]]:
        """Pairs of requests with the same *key* that were in flight at the same time."""
        pairs = []
        with self._lock:
            visits = list(self.visits)
        for i, a in enumerate(visits):
            for b in visits[i + 1 :]:
                a_end = a.ended if a.ended is not None else float("inf")
                if key(a) == key(b) and b.began < a_end:
                    pairs.append((a, b))
        return pairs

    def __enter__(self) -> HostileVendor:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
