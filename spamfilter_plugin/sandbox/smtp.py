"""A mail server on loopback that accepts every recipient and never takes a message: what a
destination check (``EHLO``, ``MAIL FROM:<>``, ``RCPT TO:<postmaster@...>``, ``QUIT``)
meets at a working mail host, for the demo."""

from __future__ import annotations

import socketserver
import threading


class _Session(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(b"220 demo.localhost ESMTP ready\r\n")
        for raw in self.rfile:
            verb = raw.decode("ascii", "replace").strip().split(" ", 1)[0].upper()
            if verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            if verb in ("EHLO", "HELO", "MAIL", "RCPT", "RSET", "NOOP"):
                self.wfile.write(b"250 ok\r\n")
            elif verb == "DATA":
                self.wfile.write(b"554 this demo server takes no mail\r\n")
            else:
                self.wfile.write(b"502 not implemented\r\n")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SmtpAcceptor:
    """``with SmtpAcceptor() as smtp:`` serves on ``127.0.0.1:smtp.port``."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Session)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    def __enter__(self) -> SmtpAcceptor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
