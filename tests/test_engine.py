"""The concurrent worker against the emulators: deliveries side by side within each vendor's
``concurrency``, in order per target, within Rackspace's request rate, and one at a time
while a vendor's credentials are unproven."""

import math
import threading

import pytest
from queue_helpers import sandbox_config

from spamfilter_plugin.emit import emit
from spamfilter_plugin.events import DomainCreated, DomainUpdated, MailboxAdded, PasswordReset
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.sandbox.spamport import SpamPortEmulator
from spamfilter_plugin.testing import LoopbackServer
from spamfilter_plugin.worker import Worker


class Gauge:
    """A WSGI app in front of an emulator that counts the requests in progress at once."""

    def __init__(self, app) -> None:
        self.app, self.now, self.most = app, 0, 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            return self.app(environ, start_response)
        finally:
            with self.lock:
                self.now -= 1


@pytest.fixture
def gauged(sandbox):
    """SpamPort's emulator behind a Gauge, answering after 0.15 s."""
    emulator = SpamPortEmulator()
    emulator.faults.configure(latency=0.15)
    gauge = Gauge(emulator)
    with LoopbackServer(gauge) as server:
        gauge.emulator, gauge.url = emulator, server.url + emulator.api_path
        gauge.server = server
        yield gauge


def config(tmp_path, sandbox, gauged, **spamport):
    return sandbox_config(
        tmp_path,
        sandbox,
        general={"lease_seconds": 20.0},
        spamport={"api_url": gauged.url, "deadline": 10.0, **spamport},
    )


def prove(cfg):
    """One delivery proves the credentials; from then on deliveries run side by side."""
    emit(DomainCreated(domain="first.example"), cfg)
    assert Worker(load_runtime(cfg)).drain().done == 1


@pytest.mark.parametrize("concurrency", [1, 4, 8])
def test_deliveries_run_side_by_side_up_to_the_vendors_concurrency(
    tmp_path, sandbox, gauged, concurrency
):
    cfg = config(tmp_path, sandbox, gauged, concurrency=concurrency)
    prove(cfg)
    gauged.most = 0
    for i in range(20):
        emit(DomainCreated(domain=f"d{i}.example"), cfg)
    stats = Worker(load_runtime(cfg)).drain()
    assert stats.done == 20  # Rackspace keeps mailboxes only: no rows of its own
    assert gauged.most == concurrency
    assert {f"d{i}.example" for i in range(20)} <= set(gauged.emulator.domains)
    # the pooled connections were kept alive: far fewer connections than requests
    assert gauged.server.connections <= concurrency + 2


def test_rows_claimed_ahead_wait_in_the_lane_and_go_back_untried_when_the_worker_stops(
    tmp_path, sandbox, gauged
):
    """A few rows beyond the vendor's places are claimed ahead, so a thread ending a
    delivery begins the next at once; they are never sent beyond the concurrency, and a
    worker told to stop gives them back untried (nothing sent, the attempt not counted)."""
    from spamfilter_plugin import worker as worker_module
    from spamfilter_plugin.queue import queue_of

    cfg = config(tmp_path, sandbox, gauged, concurrency=4)
    prove(cfg)
    gauged.emulator.faults.configure(latency=0.5)
    ids = [emit(DomainCreated(domain=f"a{i}.example"), cfg).rows["spamport"] for i in range(20)]
    ahead = max(1, math.ceil(4 * worker_module.AHEAD))
    rt = load_runtime(cfg)
    stop = threading.Event()
    thread = threading.Thread(target=Worker(rt).run_forever, args=(stop,), kwargs={"poll": 0.05})
    with queue_of(rt.config) as queue:
        thread.start()
        try:
            for _ in range(200):  # a busy machine may take seconds; the bound stops a hang
                if gauged.now == 4 and queue.counts().get("leased") == 4 + ahead:
                    break
                stop.wait(0.02)
            assert gauged.now == 4 and queue.counts()["leased"] == 4 + ahead
        finally:
            stop.set()
            thread.join(timeout=30)
        assert not thread.is_alive()
        rows = [queue.get(i) for i in ids]
    assert gauged.most == 4  # never more than the concurrency in flight
    sent = {d for d in gauged.emulator.domains if d.startswith("a")}
    done = {r.target.split(":", 1)[1] for r in rows if r.state == "done"}
    assert done == sent and len(done) >= 4  # the four in flight were finished and recorded
    back = [r for r in rows if r.state == "pending" and r.last_error]
    assert len(back) == ahead  # the ones claimed ahead, given back
    for row in back:
        assert row.attempts == 0 and row.error_type == "VendorHeld"
        assert "the worker stopped" in row.last_error
    assert {r.state for r in rows} == {"done", "pending"}  # none left leased


def test_a_fleets_store_has_no_rows_claimed_ahead(tmp_path, sandbox, gauged):
    """On a store many servers share, a vendor's concurrency bounds its rows leased in the
    whole fleet: a worker claims no more than its places there."""
    from spamfilter_plugin.store.postgres import PostgresQueue

    cfg = config(tmp_path, sandbox, gauged, concurrency=4)
    prove(cfg)
    rt = load_runtime(cfg)
    worker = Worker(rt)
    assert worker._slots()["spamport"] > 4  # a server's own store: some claimed ahead
    assert PostgresQueue.shared and not worker.queue.shared
    worker.queue.shared = True  # as the fleet's store says of itself
    assert Worker(rt, worker.queue)._slots()["spamport"] == 4


def test_unproven_credentials_are_tried_one_delivery_at_a_time(tmp_path, sandbox, gauged):
    cfg = config(tmp_path, sandbox, gauged, concurrency=8)
    for i in range(6):
        emit(DomainCreated(domain=f"d{i}.example"), cfg)
    rt = load_runtime(cfg)
    assert not rt.contexts["spamport"].guard.proven()
    assert Worker(rt).drain().done == 6
    # the first delivery proved them; the other five then went side by side
    assert rt.contexts["spamport"].guard.proven()
    assert 1 < gauged.most <= 5


def test_events_of_one_domain_arrive_in_order_while_others_go_on(tmp_path, sandbox, gauged):
    cfg = config(tmp_path, sandbox, gauged, concurrency=8)
    prove(cfg)
    kept = [f"kept{k}.example" for k in range(4)]
    for k, name in enumerate(kept):  # three events each, none of which makes another pointless
        emit(DomainCreated(domain=name, destination=f"192.0.2.{k + 1}"), cfg)
        for i in range(4):  # other domains between them
            emit(DomainCreated(domain=f"k{k}o{i}.example"), cfg)
        emit(PasswordReset(domain=name), cfg)
        emit(DomainUpdated(domain=name, destination=f"192.0.2.{k + 100}"), cfg)
    before = len(gauged.emulator.requests)
    stats = Worker(load_runtime(cfg)).drain()
    assert stats.dead == 0 and stats.done == 4 * 3 + 16 and gauged.most > 1
    calls = [
        dict(p.split("=", 1) for p in r["body"].split("&"))
        for r in gauged.emulator.requests[before:]
    ]
    for k, name in enumerate(kept):
        assert [c["function"] for c in calls if c.get("domain") == name] == [
            "add",
            "new_password",
            "set_outgoing",
        ]
        assert gauged.emulator.domains[name]["transport"] == f"smtp:192.0.2.{k + 100}"


def test_rackspaces_request_rate_holds_whatever_the_concurrency(tmp_path, sandbox):
    emulator = sandbox["rackspace"].emulator
    emulator.seed_data(
        {
            "rate_limit": 7,
            "mailboxes": [{"domain": "example.com", "mailbox": f"user{i}"} for i in range(20)],
        }
    )
    cfg = sandbox_config(tmp_path, sandbox, rackspace={"rate_limit": 7, "concurrency": 16})
    for i in range(20):
        emit(MailboxAdded(mailbox=f"user{i}@example.com"), cfg)
    w = Worker(load_runtime(cfg))
    stats = w.drain()
    rackspace = [r for r in emulator.requests if r["fault"] is None]
    # never more than 7 requests in the minute, so Rackspace never had to throttle us; the
    # rest wait in the queue for the minute to free a slot, their attempts not counted
    assert 0 < len(rackspace) <= 7
    assert all(r["status"] != 403 for r in rackspace)
    assert stats.dead == 0 and stats.pending >= 20 - 7
    waiting = w.queue.rows(state="pending", vendor="rackspace")
    assert len(waiting) == stats.pending
    assert all(r.attempts == 0 and r.error_type == "VendorPaced" for r in waiting)
    assert all(r.next_at - r.updated_at > 30 for r in waiting)  # due when the minute is up
