"""The loopback server behind the emulators: many clients at once, connections kept alive,
and a connection closed after an answer the client cannot trust."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from spamfilter_plugin.http import HttpClient
from spamfilter_plugin.sandbox.server import BACKLOG, LoopbackServer

FORM = {"username": "nobody", "password": "wrong", "version": "2", "function": "get_domains"}


def test_a_burst_of_connections_is_accepted_without_a_drop(spamport_sandbox):
    """Many clients opening connections at once while every server thread is still busy:
    with the standard library's backlog of 5 some would be refused and retried a second later."""
    assert BACKLOG >= 128
    host, port = "127.0.0.1", spamport_sandbox.server.port
    spamport_sandbox.emulator.faults.configure(latency=0.2)
    before = spamport_sandbox.server.connections
    opened = []
    try:
        started = time.monotonic()
        for _ in range(64):  # opened faster than the server accepts them
            opened.append(socket.create_connection((host, port), timeout=5))
        # a connection the kernel dropped for a full backlog is only tried again after a
        # second (with a backlog of 5 this loop takes about 4 s; with ours, milliseconds)
        assert time.monotonic() - started < 1.0
        results, errors = [], []

        def ask(sock: socket.socket) -> None:
            try:
                body = b"function=get_domains&username=x&password=y&version=2"
                sock.sendall(
                    b"POST /api HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                results.append(sock.recv(12))
            except OSError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=ask, args=(s,)) for s in opened]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        elapsed = time.monotonic() - started
    finally:
        for s in opened:
            s.close()
    assert errors == []
    assert len(results) == 64 and all(r.startswith(b"HTTP/1.1 ") for r in results)
    # served side by side: 64 answers of 0.2 s each took nowhere near 64 * 0.2 s
    assert elapsed < 64 * 0.2 / 4
    assert spamport_sandbox.server.connections - before == 64


def test_one_client_reuses_one_connection(spamport_sandbox):
    before = spamport_sandbox.server.connections
    client = HttpClient("spamport", spamport_sandbox.url)
    for _ in range(5):
        client.request("POST", data=FORM)
    assert len(spamport_sandbox.emulator.requests) == 5
    assert spamport_sandbox.server.connections - before == 1


def test_a_truncated_answer_closes_its_connection(spamport_sandbox):
    spamport_sandbox.emulator.faults.configure(queue=["truncate"])
    before = spamport_sandbox.server.connections
    session = requests.Session()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        session.post(spamport_sandbox.url, data=FORM, timeout=5)
    # the next request goes on a new connection and is answered in full
    resp = session.post(spamport_sandbox.url, data=FORM, timeout=5)
    assert resp.status_code == 200 and resp.json()["status"] == "failure"
    assert spamport_sandbox.server.connections - before == 2


def test_an_answer_without_a_length_is_ended_by_closing():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first part, "
        yield b"second part"

    with LoopbackServer(app) as server:
        session = requests.Session()
        for _ in range(2):
            resp = session.get(server.url, timeout=5)
            assert resp.text == "first part, second part"
            assert resp.headers["Connection"] == "close"
        assert server.connections == 2


def test_a_body_the_app_left_unread_does_not_become_the_next_request():
    seen = []

    def app(environ, start_response):  # reads nothing of the body
        seen.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    with LoopbackServer(app) as server:
        session = requests.Session()
        session.post(server.url + "/one", data="GET /smuggled HTTP/1.1\r\n\r\n", timeout=5)
        session.post(server.url + "/two", data="x" * 10000, timeout=5)
        session.get(server.url + "/three", timeout=5)
        assert seen == ["/one", "/two", "/three"]
        assert server.connections == 1
