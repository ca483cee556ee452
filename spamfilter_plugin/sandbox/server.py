"""Serve WSGI apps on loopback ports, in threads.

``LoopbackServer`` serves any WSGI app on ``127.0.0.1`` (a free port unless
one is given).  An app may raise :class:`AbortConnection` to drop the
connection with a TCP reset (the client sees "connection reset"), and may
call :meth:`LoopbackServer.hang` to answer nothing for a while.
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

__all__ = ["AbortConnection", "LoopbackServer"]


class _ServerHandler(ServerHandler):
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

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        # One request per connection, said out loud so clients never reuse a closed socket.
        if "Connection" not in self.headers:
            self.headers["Connection"] = "close"


class _RequestHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def handle(self) -> None:  # wsgiref's handle(), with our ServerHandler
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536 or not self.parse_request():
            return
        handler = _ServerHandler(
            self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=True
        )
        handler.request_handler = self
        handler.http_version = "1.1"
        try:
            handler.run(self.server.get_app())
        except (OSError, ValueError):
            pass
        self.close_connection = True


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

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

    def hang(self, seconds: float) -> None:
        """Block the current request for *seconds*, or until the server stops."""
        self._stopping.wait(seconds)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
