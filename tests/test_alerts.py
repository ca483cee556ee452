"""Alerts through apprise (docs/operations.md): a local HTTP receiver (apprise's
``json://`` URL on loopback) gets one grouped message per kind; a receiver that fails or
hangs is logged and counted and holds nothing up; no secret is in any message."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from queue_helpers import PASSWORD, add_table, run_cli, sandbox_config

from spamfilter_plugin import alerts
from spamfilter_plugin.emit import emit
from spamfilter_plugin.events import DomainCreated
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.metrics import WORKER_SEEN, exposition, labels
from spamfilter_plugin.queue import queue_of
from spamfilter_plugin.worker import Worker


class Receiver:
    """An HTTP server on loopback that keeps each JSON body posted to it; ``status`` is what
    it answers, ``hang`` seconds it waits first."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.status, self.hang = 200, 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                outer.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                time.sleep(outer.hang)
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/alerts"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def configured(tmp_path, sandbox, receiver, **general):
    cfg = sandbox_config(tmp_path, sandbox, general={"max_attempts": 1, **general})
    return add_table(cfg, "alerts", {"urls": [receiver.url], "every_minutes": 15})


def test_a_burst_of_dead_rows_is_one_message_that_counts_them(tmp_path, sandbox, receiver):
    cfg = configured(tmp_path, sandbox, receiver)
    sandbox["spamport"].emulator.faults.configure(queue=["error"] * 12)
    for i in range(12):
        emit(DomainCreated(domain=f"d{i:02}.example"), cfg)
    assert Worker(load_runtime(cfg)).drain().dead >= 12
    rt = load_runtime(cfg)
    with queue_of(rt.config) as queue:
        sent = alerts.round_of(rt, queue, time.time())
        assert sent == {"dead": None}
        (body,) = receiver.bodies
        assert "12 deliveries failed for good" in body["title"]
        assert body["message"].count("\n") == 5 and "... and 7 more" in body["message"]
        assert "d00.example at spamport" in body["message"]
        assert PASSWORD not in json.dumps(body)
        # nothing new: nothing more is sent
        assert alerts.round_of(rt, queue, time.time()) == {}
        # more dead rows within every_minutes wait, then go out grouped once it is over
        sandbox["spamport"].emulator.faults.configure(queue=["error"] * 3)
        for i in range(3):
            emit(DomainCreated(domain=f"late{i}.example"), cfg)
        Worker(load_runtime(cfg)).drain()
        assert alerts.round_of(rt, queue, time.time()) == {} and len(receiver.bodies) == 1
        later = time.time() + 16 * 60
        queue.add_metrics({}, {(WORKER_SEEN, labels()): later})  # the worker is alive then
        assert alerts.round_of(rt, queue, later) == {"dead": None}
        assert "3 deliveries failed for good" in receiver.bodies[1]["title"]
        got = exposition(rt, queue).decode()
    assert 'spamfilter_alerts_total{kind="dead",outcome="sent"} 2.0' in got


def test_a_vendor_suspended_after_refused_credentials_is_one_message(tmp_path, sandbox, receiver):
    cfg = configured(tmp_path, sandbox, receiver, max_attempts=30)
    text = cfg.read_text().replace(f'password = "{PASSWORD}"', 'password = "not-it"')
    cfg.write_text(text)
    emit(DomainCreated(domain="a.example"), cfg)
    Worker(load_runtime(cfg)).drain()
    rt = load_runtime(cfg)
    assert rt.contexts["spamport"].suspension()
    with queue_of(rt.config) as queue:
        # the refused delivery itself ended dead: a message of its own kind
        assert alerts.round_of(rt, queue, time.time()) == {"suspended": None, "dead": None}
    (body,) = [b for b in receiver.bodies if "suspended" in b["title"]]
    assert "vendor calls suspended" in body["title"] and "spamport:" in body["message"]
    assert "not-it" not in json.dumps(body)


def test_a_stalled_worker_is_one_message(tmp_path, sandbox, receiver):
    cfg = configured(tmp_path, sandbox, receiver)
    rt = load_runtime(cfg)
    now = time.time()
    with queue_of(rt.config) as queue:
        queue.add_metrics({}, {(WORKER_SEEN, labels()): now - 25 * 60})
        assert alerts.round_of(rt, queue, now) == {"worker_stalled": None}
        assert alerts.round_of(rt, queue, now + 3600) == {}  # said once while it stays so
    (body,) = receiver.bodies
    assert "worker stalled" in body["title"] and "for 25 min" in body["message"]


def test_a_failing_or_hanging_receiver_is_logged_counted_and_not_retried(
    tmp_path, sandbox, receiver, caplog
):
    cfg = configured(tmp_path, sandbox, receiver)
    rt = load_runtime(cfg)
    receiver.status = 500
    now = time.time()
    with queue_of(rt.config) as queue:
        queue.add_metrics({}, {(WORKER_SEEN, labels()): now - 3600})
        (why,) = alerts.round_of(rt, queue, now).values()
        assert why and "alert worker_stalled (1 item(s)) not sent" in caplog.text
        assert alerts.round_of(rt, queue, now + 3600) == {}  # dropped, not retried forever
        got = exposition(rt, queue).decode()
    assert 'spamfilter_alerts_total{kind="worker_stalled",outcome="failed"} 1.0' in got
    # a receiver that hangs: the send gives up at its timeout (the chores thread's only)
    receiver.status, receiver.hang = 200, 5.0
    began = time.monotonic()
    why = alerts.send(rt.config.alerts["urls"], "test", ["x"], timeout=0.5)
    assert why == "not sent within 0.5s" and time.monotonic() - began < 4.5


def test_alerts_test_sends_one_and_a_bad_url_is_refused_unshown(tmp_path, sandbox, receiver):
    cfg = configured(tmp_path, sandbox, receiver)
    code, out, err = run_cli(cfg, "alerts", "test")
    assert code == 0 and "sent to 1 url(s)" in out, err
    assert "test message" in receiver.bodies[0]["title"]
    text = cfg.read_text().replace(receiver.url, "nosuchservice://tok3n-s3cret@x")
    cfg.write_text(text)
    code, out, err = run_cli(cfg, "alerts", "test")
    assert code == 2 and "[alerts] urls" in err and "entry 1" in err
    assert "tok3n-s3cret" not in err


def test_mx_found_wrong_and_drift_found_are_a_message_each(tmp_path, sandbox, receiver):
    from spamfilter_plugin import drift
    from spamfilter_plugin.queue import mx_store

    cfg = configured(tmp_path, sandbox, receiver)
    rt = load_runtime(cfg)
    mx_store(rt.config).put("moved.example", "spamport", state="wrong",
                            detail="DNS gives 5 mx.elsewhere.example")  # fmt: skip
    with drift.findings_store(rt.config).editing() as doc:
        doc.update(at=time.time(), notes=[], repaired=0, findings=[
            {"vendor": "spamport", "kind": "missing", "domain": "lost.example",
             "reason": "on the panel, not at spamport"}])  # fmt: skip
    with queue_of(rt.config) as queue:
        assert alerts.round_of(rt, queue, time.time()) == {"drift": None, "mx_wrong": None}
        assert alerts.round_of(rt, queue, time.time() + 3600) == {}  # nothing new since
    said = {b["title"]: b["message"] for b in receiver.bodies}
    assert (
        "moved.example: DNS gives 5 mx.elsewhere.example" in said["spamfilter: 1 MX records wrong"]
    )
    assert "spamport: missing: lost.example" in said["spamfilter: 1 drift found"]


def test_a_hanging_receiver_holds_up_no_delivery(tmp_path, sandbox, receiver):
    """The console and the worker daemon send alerts from their chores thread: while a send
    hangs there, the worker goes on delivering."""
    from spamfilter_plugin.worker import chores_every

    cfg = configured(tmp_path, sandbox, receiver)
    rt = load_runtime(cfg)
    with queue_of(rt.config) as queue:
        queue.add_metrics({}, {(WORKER_SEEN, labels()): time.time() - 3600})  # stalled
    receiver.hang = 8.0
    stop = threading.Event()
    chores = threading.Thread(target=chores_every, args=(rt, stop), daemon=True)
    chores.start()
    try:
        for _ in range(200):  # until the alert reached the receiver, which now hangs
            if receiver.bodies:
                break
            time.sleep(0.05)
        assert receiver.bodies and chores.is_alive()
        for i in range(5):
            emit(DomainCreated(domain=f"meanwhile{i}.example"), cfg)
        stats = Worker(load_runtime(cfg)).drain()
        assert stats.done == 5
        with queue_of(rt.config) as queue:  # the send has not ended yet: nothing counted
            assert not [m for m in queue.metrics() if m[0] == "spamfilter_alerts_total"]
    finally:
        stop.set()
        chores.join(timeout=20)
