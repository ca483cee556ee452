"""The worker against the emulators: retries, dead rows, suspension, results, concurrency."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from queue_helpers import opened, sandbox_config

from spamfilter_plugin.emit import emit
from spamfilter_plugin.events import DomainCreated, MailboxAdded, PasswordReset
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.worker import Worker

pytestmark = pytest.mark.usefixtures("store")  # each test on SQLite and PostgreSQL


@pytest.fixture
def cfg(tmp_path, sandbox):
    return sandbox_config(tmp_path, sandbox)


def worker(cfg, **kw):
    rt = load_runtime(cfg)
    return Worker(rt, **kw)


def test_delivers_to_each_vendor_and_stores_results(cfg, sandbox):
    emit(DomainCreated(domain="a.example", destination="192.0.2.5"), cfg)
    emit(MailboxAdded(mailbox="alex.smith@example.com"), cfg)
    emit(PasswordReset(domain="a.example"), cfg)
    w = worker(cfg)
    stats = w.drain()
    assert (stats.done, stats.dead, stats.pending) == (3, 0, 0)
    assert sandbox["spamport"].emulator.domains["a.example"]["transport"] == "smtp:192.0.2.5"
    box = sandbox["rackspace"].emulator.mailboxes[("12345678", "example.com", "alex.smith")]
    assert box["settings"]["filterLevel"] == "exclusive"
    reset_row = next(d.row for d in stats.deliveries if d.row.hook == "password_reset")
    stored = w.queue.get(reset_row.id)
    assert stored.result == {"password": "***"}
    assert (
        w.queue.secret_result(reset_row.id)["password"].reveal()
        == sandbox["spamport"].emulator.domain_passwords["a.example"]
    )


def test_temporary_failure_is_retried_with_backoff(cfg, sandbox):
    sandbox["spamport"].emulator.faults.configure(queue=["error", "error"])
    (row_id,) = emit(DomainCreated(domain="a.example"), cfg).rows.values()
    w = worker(cfg)
    first = w.run_one()
    assert first.final_state == "pending" and not first.outcome.ok
    row = w.queue.get(row_id)
    assert (
        row.attempts == 1 and row.next_at > row.updated_at and row.error_type == "VendorUnavailable"
    )
    stats = w.drain(ignore_schedule=True)
    assert stats.done == 1 and w.queue.get(row_id).attempts == 3


def test_backoff_doubles_is_jittered_and_capped(cfg):
    w = worker(cfg).policy  # the per-row policy (delivery.py) owns the backoff
    w.general = type(w.general)(retry_base=10, retry_cap=100)
    w.rng = lambda: 0.0
    assert [w.backoff(n) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 40, 50]
    w.rng = lambda: 1.0
    assert [w.backoff(n) for n in (1, 2, 5)] == [10, 20, 100]


def test_gives_up_after_max_attempts(tmp_path, sandbox):
    cfg = sandbox_config(tmp_path, sandbox, general={"max_attempts": 2})
    sandbox["spamport"].emulator.faults.configure(rates={"error": 1.0})
    (row_id,) = emit(DomainCreated(domain="a.example"), cfg).rows.values()
    stats = worker(cfg).drain(ignore_schedule=True)
    assert stats.dead == 1
    row = opened(tmp_path / "state").get(row_id)
    assert (
        row.state == "dead"
        and row.attempts == 2
        and row.last_error.startswith("gave up after 2 attempts")
    )


def test_auth_error_is_dead_after_one_attempt_and_suspends_only_that_vendor(tmp_path, sandbox):
    cfg = sandbox_config(tmp_path, sandbox, spamport={"password": "wrong-password", "retries": 3})
    first = emit(DomainCreated(domain="a.example"), cfg).rows["spamport"]
    second = emit(DomainCreated(domain="b.example"), cfg).rows["spamport"]
    mailbox = emit(MailboxAdded(mailbox="alex.smith@example.com"), cfg).rows["rackspace"]
    w = worker(cfg)
    stats = w.drain(ignore_schedule=True)
    q = w.queue
    assert (
        q.get(first).state == "dead"
        and q.get(first).attempts == 1
        and q.get(first).error_type == "VendorAuthError"
    )
    assert len(sandbox["spamport"].emulator.requests) == 1
    assert q.get(second).state == "pending" and q.get(second).attempts == 0  # waits, untouched
    assert q.get(mailbox).state == "done"  # other vendors go on
    assert stats.dead == 1
    # the admin fixes the password, checks (which resumes), and retries the dead row
    cfg.write_text(cfg.read_text().replace('"wrong-password"', '"sandbox-Pa55&#%+="'))
    rt = load_runtime(cfg)
    assert rt.check("spamport").ok
    assert q.retry_all_dead() == 1
    assert Worker(rt).drain().done == 2
    assert set(sandbox["spamport"].emulator.domains) == {"a.example", "b.example"}


def test_permanent_vendor_error_is_dead_with_the_reason(cfg, sandbox):
    sandbox["spamport"].emulator.seed_data({"license_limit": 0})
    (row_id,) = emit(DomainCreated(domain="a.example"), cfg).rows.values()
    w = worker(cfg)
    assert w.drain().dead == 1
    row = w.queue.get(row_id)
    assert (
        row.attempts == 1
        and row.error_type == "VendorRejected"
        and "licence is fully used" in row.last_error
    )


DRAIN = """
import json, sys
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.worker import Worker
stats = Worker(load_runtime(sys.argv[1])).drain()
print(json.dumps([d.row.id for d in stats.deliveries]))
"""

EMIT = """
import sys
from spamfilter_plugin.events import DomainCreated
from spamfilter_plugin.emit import emit
start, count = int(sys.argv[2]), int(sys.argv[3])
for i in range(start, start + count):
    emit(DomainCreated(domain=f"p{i}.example"), sys.argv[1])
"""


def run_parallel(script, argvs):
    # run from a neutral directory: from the checkout, 'python -c' would import the source tree
    # instead of the installed package
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *map(str, argv)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=os.path.dirname(str(argv[0])),
        )
        for argv in argvs
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=False):
        assert p.returncode == 0, err
    return [out for out, _ in outs]


def test_concurrent_workers_never_deliver_a_row_twice(cfg, sandbox):
    sandbox["spamport"].emulator.seed_data({"license_limit": 1000})
    for i in range(120):
        emit(DomainCreated(domain=f"d{i}.example"), cfg)
    # answers take a moment, so the first worker up is still busy when the others start
    # (some seconds of work: a loaded machine may take a second to start a process)
    sandbox["spamport"].emulator.faults.configure(latency=0.2)
    delivered = [json.loads(out) for out in run_parallel(DRAIN, [[cfg]] * 3)]
    ids = [i for chunk in delivered for i in chunk]
    assert len(ids) == len(set(ids)) == 120
    assert sum(1 for chunk in delivered if chunk) >= 2  # the work was really shared
    adds = [r for r in sandbox["spamport"].emulator.requests if "function=add" in r["body"]]
    assert len(adds) == 120  # each domain added exactly once
    q = opened(cfg.parent / "state")
    assert q.counts()["done"] == 120 and all(r.attempts == 1 for r in q.rows(limit=200))


def test_concurrent_emitters_from_several_processes(cfg):
    emit(DomainCreated(domain="warm.example"), cfg)  # writes the capability cache
    run_parallel(EMIT, [[cfg, n * 40, 40] for n in range(4)])
    q = opened(cfg.parent / "state")
    targets = {r.target for r in q.rows(limit=500)}
    assert len(targets) == 161 and q.counts()["pending"] == 161


def test_run_forever_stops_on_request(cfg, sandbox):
    w = worker(cfg)
    stop = threading.Event()
    thread = threading.Thread(target=w.run_forever, args=(stop,), kwargs={"poll": 0.05})
    thread.start()
    emit(DomainCreated(domain="live.example"), cfg)
    for _ in range(600):  # a busy machine may take seconds; the bound only stops a hang
        if "live.example" in sandbox["spamport"].emulator.domains:
            break
        stop.wait(0.05)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive() and "live.example" in sandbox["spamport"].emulator.domains


def test_deliver_now_attempts_each_row_once_in_order(cfg, sandbox):
    sandbox["spamport"].emulator.faults.configure(queue=["error"])
    first = emit(DomainCreated(domain="now.example"), cfg).rows["spamport"]
    second = emit(DomainCreated(domain="other.example"), cfg).rows["spamport"]
    w = worker(cfg)
    deliveries = w.deliver_now([first, second])
    assert [(d.row.id, d.final_state) for d in deliveries] == [(first, "pending"), (second, "done")]
    assert w.queue.get(first).attempts == 1  # one attempt, the retry is the worker's
    # a row behind an undelivered earlier event of its target is left for the worker
    behind = emit(DomainCreated(domain="now.example", destination="192.0.2.8"), cfg).rows
    assert w.deliver_now([behind["spamport"]]) == []
    assert w.queue.get(behind["spamport"]).state == "pending"


def test_a_lost_lease_is_reported_with_the_rows_real_state(cfg, sandbox):
    (row_id,) = emit(DomainCreated(domain="slow.example"), cfg).rows.values()
    clock = [time.monotonic()]
    w = worker(cfg, monotonic=lambda: clock[0])
    w.general = type(w.general)(**{**w.general.__dict__, "lease_seconds": 5.0})
    other = worker(cfg, owner="other", monotonic=lambda: clock[0])
    original = w.runtime.call_isolated

    def slow_call(*args, **kwargs):  # the lease runs out and another worker claims the row
        clock[0] += 10
        other.queue.claim("other", 300)
        return original(*args, **kwargs)

    w.runtime.call_isolated = slow_call
    delivery = w.run_one()
    assert delivery.lease_lost and delivery.final_state == "leased"
    assert w.queue.get(row_id).lease_owner.startswith("other")


def test_a_garbled_answer_to_new_password_never_leaks_the_password(cfg, sandbox, caplog):
    (row_id,) = [
        i for v, i in emit(PasswordReset(domain="pw.example"), cfg).rows.items() if v == "spamport"
    ]
    sandbox["spamport"].emulator.seed_data({"domains": {"pw.example": {}}})
    sandbox["spamport"].emulator.faults.configure(queue=["malformed"])
    w = worker(cfg)
    w.drain()
    password = sandbox["spamport"].emulator.domain_passwords["pw.example"]  # it was changed
    row = w.queue.get(row_id)
    assert row.state == "dead", row.last_error
    for text in (row.last_error, caplog.text):
        assert password[:6] not in text and password[-6:] not in text
    assert "may have changed" in row.last_error and "password-reset" in row.last_error


def test_a_delivery_that_starts_late_still_ends_inside_its_lease(cfg, sandbox):
    """The delivery's time budget counts from the claim, not from when its thread began: on
    a busy machine a delivery that starts late has only what is left, so it ends before
    another worker may take the row."""
    from spamfilter_plugin.delivery import DELIVERY_SHARE
    from spamfilter_plugin.errors import VendorTimeout

    sandbox["spamport"].emulator.faults.configure(latency=3.0)
    emit(DomainCreated(domain="late.example"), cfg)
    w = worker(cfg)
    w.queue.relay()
    row, _token = w.queue.claim("w", w.general.lease_seconds)
    budget = w.general.lease_seconds * DELIVERY_SHARE
    assert budget > 3.5  # the vendor's 3 s would fit a budget counted from now
    started = time.monotonic()
    attempt = w.policy.attempt(row, w.policy.prepare(row), claimed_at=started - (budget - 0.5))
    assert isinstance(attempt.outcome.error, VendorTimeout), attempt.outcome
    assert time.monotonic() - started < 2.0
    # the emulator finishes the call the client gave up on (and logs it) before the next
    # test shares it
    emulator = sandbox["spamport"].emulator
    for _ in range(100):
        if emulator.requests:
            break
        time.sleep(0.05)
    assert emulator.requests


def test_outcomes_ending_close_together_are_gathered_into_one_write(monkeypatch):
    """After one delivery ends, the dispatcher waits up to GATHER for the others in flight,
    so they share one commit; it does not wait when nothing else is in flight, nor past
    the window."""
    import queue as stdqueue
    import threading

    from spamfilter_plugin import worker as worker_module

    class Dispatcher:
        def __init__(self, in_flight):
            self._done = stdqueue.SimpleQueue()
            self.in_flight = in_flight

    def ended(dispatcher, timeout=1.0):
        found = []
        t = threading.Thread(target=lambda: found.extend(
            worker_module.Worker._ended(dispatcher, timeout)))  # fmt: skip
        t.start()
        return t, found

    # two in flight: the second, ending a moment later, comes with the first
    monkeypatch.setattr(worker_module, "GATHER", 60.0)
    two = Dispatcher(2)
    two._done.put("first")
    t, found = ended(two)
    two._done.put("second")
    t.join(10)
    assert not t.is_alive() and found == ["first", "second"]  # no need to wait the window
    # one in flight: nothing else to wait for
    one = Dispatcher(1)
    one._done.put("only")
    t, found = ended(one)
    t.join(10)
    assert not t.is_alive() and found == ["only"]
    # three in flight, one ends: the window passes, and the one that ended is written
    monkeypatch.setattr(worker_module, "GATHER", 0.01)
    three = Dispatcher(3)
    three._done.put("early")
    t, found = ended(three)
    t.join(10)
    assert not t.is_alive() and found == ["early"]
    # nothing ended within the timeout: nothing
    assert worker_module.Worker._ended(Dispatcher(2), 0) == []


def test_the_deliveries_of_one_commit_are_told_together(cfg):
    """``on_deliveries`` hears once per commit, of every delivery in it (the worker
    command writes their progress lines in one write)."""
    from spamfilter_plugin.cli._common import notes

    for i in range(12):
        emit(DomainCreated(domain=f"t{i}.example"), cfg)
    told: list[list] = []
    w = worker(cfg, on_deliveries=told.append)
    stats = w.drain()
    assert stats.done == 12
    assert sorted(d.row.id for batch in told for d in batch) == sorted(
        d.row.id for d in stats.deliveries
    )
    assert all(told) and len(told) <= 12
    writes: list[str] = []

    class Err:
        def write(self, text):
            writes.append(text)

    real, sys.stderr = sys.stderr, Err()
    try:
        notes([("first", {"row": 1}), ("second", {"row": 2})])
    finally:
        sys.stderr = real
    assert len(writes) == 1 and writes[0].splitlines() == ["first", "second"]
