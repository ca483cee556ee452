"""Serve WSGI apps on loopback ports, in threads.

``LoopbackServer`` serves any WSGI app on ``127.0.0.1`` (a free port unless
one is given).  An app may raise :class:`AbortConnection` to drop the
connection with a TCP reset (the client sees "connection reset"), and may
call :meth:`LoopbackServer.hang` to answer nothing for a while.

It serves many clients at once, as a vendor's API does: a thread per connection, a listen
backlog of :data:`BACKLOG` (the standard library's 5 drops connections when a client opens
many at once, and each dropped one costs that client a retry), and connections kept alive
between requests (HTTP/1.1), so a client's pool is used as it would be against the vendor.
A connection is closed after an answer whose length is not what it declared (a fault), or
that declared none.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from .base import AbortConnection

__all__ = ["BACKLOG", "AbortConnection", "LoopbackServer"]

#: connections the kernel holds for the server while its threads are busy accepting
BACKLOG = 1024

#: the most of an unread request body drained to keep a connection open
_DRAIN_LIMIT = 1024 * 1024


class _Body:
    """A request body read no further than its Content-Length, so the next request on a
    kept-alive connection is not swallowed by an app that reads to the end."""

    def __init__(self, stream, length: int) -> None:
        self._stream, self.left = stream, max(length, 0)

    def _take(self, size: int | None, reader) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = reader(size)
        self.left -= len(data)
        return data

    def read(self, size: int = -1) -> bytes:
        return self._take(size, self._stream.read)

    def readline(self, size: int = -1) -> bytes:
        return self._take(size, self._stream.readline)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self):
        return iter(self.readline, b"")

    def drain(self) -> bool:
        """Read what the app left of the body; False when too much is left to bother."""
        if self.left > _DRAIN_LIMIT:
            return False
        while self.left > 0 and self.read(65536):
            pass
        return self.left == 0


class _ServerHandler(ServerHandler):
    #: the request handler whose connection this answers (set by it)
    request_handler: _RequestHandler
    #: set by wsgiref while answering
    headers: Any
    bytes_sent: int

    def handle_error(self) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, AbortConnection):
            sock = self.request_handler.connection
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            except OSError:
                pass
            return
        super().handle_error()

    def log_exception(self, exc_info) -> None:  # keep test output quiet
        pass

    #: set by the request handler: the client asked to close after this answer
    closing = True

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        # keep the connection only for an answer whose end the client can tell by its length,
        # and say so out loud either way, so a client never reuses a socket we close
        if self.closing or "Content-Length" not in self.headers:
            self.headers["Connection"] = "close"

    #: the verdict on the connection, taken when the answer is finished
    reusable = False

    def close(self) -> None:
        # the connection may carry another request when the answer was complete and both
        # sides want to go on (taken here: wsgiref's close() forgets the headers)
        headers = self.headers
        if headers is not None and headers.get("Connection", "").lower() != "close":
            declared = headers.get("Content-Length", "")
            self.reusable = declared.isdigit() and int(declared) == self.bytes_sent
        super().close()


class _RequestHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # seconds an idle kept-alive connection holds its thread
    # an answer goes out in several writes (status and headers, then the body); on a kept-
    # alive connection Nagle's algorithm would hold the last one for the client's delayed
    # ACK, adding about 40 ms to every answer
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass

    server: _ThreadingServer

    def handle(self) -> None:  # wsgiref's handle(), with our ServerHandler, request after request
        self.server.count_connection()
        while self._handle_one():
            pass

    def _handle_one(self) -> bool:
        """Answer one request; True when the connection may carry another."""
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except OSError:
            return False
        if not self.raw_requestline:  # the client closed the connection
            return False
        if len(self.raw_requestline) > 65536 or not self.parse_request():
            return False
        environ = self.get_environ()
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return False
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return False  # the emulators read bodies by their length only
        body = _Body(self.rfile, length)
        handler = _ServerHandler(
            body,  # read like a file: read, readline, readlines
            self.wfile,  # type: ignore[arg-type]  # a socket file, written as a file is
            self.get_stderr(),
            environ,
            multithread=True,
        )
        handler.request_handler = self
        handler.http_version = "1.1"
        handler.closing = self.close_connection
        try:
            app = self.server.get_app()
            assert app is not None  # set before serving
            handler.run(app)
        except (OSError, ValueError):
            return False
        return handler.reusable and body.drain()


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = BACKLOG
    connections = 0
    _count_lock: threading.Lock

    def count_connection(self) -> None:
        with self._count_lock:
            self.connections += 1

    def handle_error(self, request, client_address) -> None:  # aborted connections are expected
        pass


class LoopbackServer:
    """Serve *app* on 127.0.0.1; use as a context manager or call start()/stop()."""

    def __init__(
        self, app: Callable, host: str = "127.0.0.1", port: int = 0, ssl_context=None
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._stopping = threading.Event()
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> LoopbackServer:
        server = _ThreadingServer((self.host, self.port), _RequestHandler)
        server._count_lock = threading.Lock()
        server.set_app(self.app)
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"loopback-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        close = getattr(self.app, "close", None)  # emulators release hanging requests
        if callable(close):
            close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def connections(self) -> int:
        """How many connections clients have opened so far."""
        return self._server.connections if self._server is not None else 0

    def hang(self, seconds: float) -> None:
        """Block the current request for *seconds*, or until the server stops."""
        self._stopping.wait(seconds)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
