"""The destination check against a real SMTP server on loopback (aiosmtpd): a destination
that accepts, one that refuses the recipient, one that refuses the sender, one that never
answers and one that is not listening.  No mail is ever sent (DATA never comes)."""

from __future__ import annotations

import socket
import threading

import pytest
from aiosmtpd.controller import Controller

from spamfilter_plugin.mx.probe import probe
from spamfilter_plugin.testing import closed_port_url


class Destination:
    """An SMTP server's answers; records every command it saw."""

    def __init__(self, rcpt="250 OK", mail="250 OK"):
        self.rcpt_reply, self.mail_reply = rcpt, mail
        self.seen: list[str] = []

    async def handle_MAIL(self, server, session, envelope, address, options):
        self.seen.append(f"MAIL {address}")
        if self.mail_reply.startswith("250"):
            envelope.mail_from = address
        return self.mail_reply

    async def handle_RCPT(self, server, session, envelope, address, options):
        self.seen.append(f"RCPT {address}")
        return self.rcpt_reply

    async def handle_DATA(self, server, session, envelope):  # must never be reached
        self.seen.append("DATA")
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    running = []

    def start(handler):
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        running.append(controller)
        return controller.port

    yield start
    for controller in running:
        controller.stop()


def test_a_destination_that_accepts(smtp):
    handler = Destination()
    port = smtp(handler)
    result = probe("127.0.0.1", "example.org", port=port, timeout=5)
    assert result.accepted and result.code == 250
    assert handler.seen == ["MAIL <>", "RCPT postmaster@example.org"]  # null sender, no DATA
    assert "accepts mail" in str(result)


def test_a_destination_that_refuses_the_recipient(smtp):
    port = smtp(Destination(rcpt="550 5.1.1 <postmaster@example.org>: no such domain here"))
    result = probe("127.0.0.1", "example.org", port=port, timeout=5)
    assert not result.accepted and result.code == 550
    assert result.step == "RCPT TO:<postmaster@example.org>"
    assert "no such domain here" in result.reply
    assert str(result).startswith(f"127.0.0.1:{port} refused RCPT TO:<postmaster@example.org>: 550")


def test_a_destination_that_refuses_the_null_sender(smtp):
    handler = Destination(mail="553 5.7.1 null sender refused")
    port = smtp(handler)
    result = probe("127.0.0.1", "example.org", port=port, timeout=5)
    assert not result.accepted and result.code == 553 and result.step == "MAIL FROM:<>"
    assert handler.seen == ["MAIL <>"]  # it stops there


def test_a_destination_that_never_answers():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    try:
        result = probe("127.0.0.1", "example.org", port=listener.getsockname()[1], timeout=0.5)
    finally:
        listener.close()
        for conn, _ in accepted:
            conn.close()
    assert not result.accepted and result.code is None
    assert result.step == "connect" and "no answer within 0.5s" in result.reply


def test_a_destination_that_is_not_listening():
    port = int(closed_port_url().rsplit(":", 1)[1])
    result = probe("127.0.0.1", "example.org", port=port, timeout=2)
    assert not result.accepted and result.code is None
    assert "refused" in result.reply.lower()
