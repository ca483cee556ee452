"""No event is lost: over 1,000 mixed events against the emulators with injected
5xx answers, timeouts, resets and lost replies, while the worker process is
killed with SIGKILL several times mid-run; afterwards every row is delivered (or
superseded) and each vendor's state is exactly what the events say it should be."""

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
from queue_helpers import opened, sandbox_config

from spamfilter_plugin.emit import emit
from spamfilter_plugin.events import (
    DomainCreated,
    DomainDeleted,
    DomainUpdated,
    MailboxAdded,
    PasswordReset,
)
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.worker import Worker

pytestmark = pytest.mark.usefixtures("store")  # each test on SQLite and PostgreSQL


SPAMFILTER = shutil.which("spamfilter") or os.path.join(
    os.path.dirname(sys.executable), "spamfilter"
)
FAULTS = {"error": 0.05, "html": 0.02, "reset": 0.03, "reset_after": 0.03, "timeout": 0.01}
MAILBOXES = [f"user{i}" for i in range(40)]


def make_events(rng):
    """A random but valid history: each domain's events make sense in order."""
    present = {}  # domain -> destination or None (absent)
    events = []
    domains = [f"chaos{i}.example" for i in range(70)]
    while len(events) < 1000:
        d = rng.choice(domains)
        if present.get(d) is None:
            dest = (
                f"192.0.2.{rng.randint(1, 250)}"
                if rng.random() < 0.5
                else f"mx{rng.randint(1, 9)}.{d}"
            )
            events.append(DomainCreated(domain=d, destination=dest))
            present[d] = dest
        else:
            roll = rng.random()
            if roll < 0.45:
                dest = f"mx{rng.randint(1, 99)}.example.net"
                events.append(DomainUpdated(domain=d, destination=dest))
                present[d] = dest
            elif roll < 0.6:
                events.append(PasswordReset(domain=d))
            else:
                events.append(DomainDeleted(domain=d))
                present[d] = None
        if rng.random() < 0.1:
            events.append(MailboxAdded(mailbox=f"{rng.choice(MAILBOXES)}@example.com"))
    return events, present


def start_worker(cfg):
    return subprocess.Popen(
        [SPAMFILTER, "--config", str(cfg), "worker", "--poll", "0.05"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_no_event_is_lost_under_faults_and_worker_kills(tmp_path, sandbox):
    rng = random.Random(20261121)
    spamport, rackspace = sandbox["spamport"].emulator, sandbox["rackspace"].emulator
    spamport.seed_data({"license_limit": 10000, "archive_license_limit": 10000})
    rackspace.seed_data(
        {
            "rate_limit": 100000,
            "mailboxes": [{"domain": "example.com", "mailbox": m} for m in MAILBOXES],
        }
    )
    for emulator in (spamport, rackspace):
        emulator.faults.configure(rates=FAULTS, hang_seconds=0.6, seed=7)
    http = {"retries": 0, "connect_timeout": 0.5, "read_timeout": 0.3, "deadline": 1.0}
    cfg = sandbox_config(
        tmp_path,
        sandbox,
        general={"lease_seconds": 1.5, "max_attempts": 1000, "retry_base": 0.02, "retry_cap": 0.2},
        spamport=http,
        rackspace=http,
    )
    events, expected_domains = make_events(rng)
    assert len(events) >= 1000

    worker, kills = start_worker(cfg), 0
    next_kill = time.monotonic() + 0.5
    for i, event in enumerate(events):
        emit(event, cfg)
        if time.monotonic() >= next_kill and kills < 5:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills += 1
            worker = start_worker(cfg)
            next_kill = time.monotonic() + rng.uniform(0.3, 0.8)
        if i % 50 == 0:
            time.sleep(0.05)  # let the worker get into the middle of things
    while kills < 5:  # make sure it was killed several times mid-run
        time.sleep(0.4)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        kills += 1
        worker = start_worker(cfg)

    queue = opened(tmp_path / "state")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        counts = queue.counts()
        if counts["pending"] == counts["leased"] == 0:
            break
        time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)
    # whatever the last worker left (it may have been stopped mid-retry) is finished here
    for emulator in (spamport, rackspace):
        emulator.faults.clear()
    time.sleep(1.6)  # any lease of a killed worker has expired
    Worker(load_runtime(cfg)).drain(ignore_schedule=True)

    counts = queue.counts()
    assert counts["pending"] == counts["leased"] == counts["dead"] == 0, counts
    assert counts["done"] + counts["superseded"] == sum(
        1 for _ in events
    )  # one row per event (one vendor each)
    faulted = [r for r in spamport.requests + rackspace.requests if r["fault"]]
    assert len(faulted) > 50, "the run saw too few faults to prove anything"
    assert {r["fault"] for r in faulted} >= {"error", "reset", "reset_after", "timeout"}

    actual = {name: d["transport"] for name, d in spamport.domains.items()}
    wanted = {d: (f"smtp:{dest}") for d, dest in expected_domains.items() if dest is not None}
    assert actual == wanted
    touched = {e.mailbox.local_part for e in events if isinstance(e, MailboxAdded)}
    for name in MAILBOXES:
        settings = rackspace.mailboxes[("12345678", "example.com", name)]["settings"]
        want = "exclusive" if name in touched else "on"
        assert settings["filterLevel"] == want, name
    raw = b"".join(p.read_bytes() for p in (tmp_path / "state").glob("queue.sqlite3*"))
    for password in spamport.domain_passwords.values():
        assert password.encode() not in raw
