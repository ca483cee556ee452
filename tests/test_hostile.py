"""The HTTP layer and the worker against a hostile vendor (tests/hostile.py): bytes dripped
one at a time, endless bodies, answers that are not what they claim.

Elapsed-time bounds here are correctness bounds with wide margins (a dripping server would
otherwise hold a call for its full 30 s), not speed targets."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from hostile import HostileVendor, answer, drip_body, drip_headers, slow
from queue_helpers import opened, with_fleet

from spamfilter_plugin import deadline
from spamfilter_plugin.errors import VendorPaced, VendorTimeout
from spamfilter_plugin.http import HttpClient, HttpPolicy

pytestmark = pytest.mark.usefixtures("store")  # each test on SQLite and PostgreSQL


SPAMFILTER = shutil.which("spamfilter") or os.path.join(
    os.path.dirname(sys.executable), "spamfilter"
)


def client(url, **policy):
    policy.setdefault("connect_timeout", 1.0)
    policy.setdefault("read_timeout", 1.0)
    policy.setdefault("retries", 0)
    return HttpClient("hostile", url, policy=HttpPolicy(**policy))


@pytest.mark.parametrize("play", [drip_headers(0.1), drip_body(0.1)], ids=["headers", "body"])
def test_the_deadline_bounds_a_call_whatever_the_server_drips(play):
    with HostileVendor(play) as vendor:
        started = time.monotonic()
        with pytest.raises(VendorTimeout) as info:
            client(vendor.url, deadline=1.5).request("GET")
        took = time.monotonic() - started
    assert took < 6, f"the call took {took:.1f}s with a 1.5s deadline"
    assert "deadline" in str(info.value)


def test_a_delivery_scope_bounds_every_call_it_makes():
    with HostileVendor(slow(0.6, answer())) as vendor:
        http = client(vendor.url, deadline=10)
        started = time.monotonic()
        with deadline.scope(1.0), pytest.raises(VendorTimeout):
            http.request("GET")  # 0.6 s
            http.request("GET")  # would end at 1.2 s: cut at 1.0 s
        took = time.monotonic() - started
    assert took < 4 and len(vendor.visits) == 2


def test_no_retry_is_begun_when_its_backoff_would_pass_the_scope():
    with HostileVendor(answer(503), answer(200)) as vendor:
        http = client(vendor.url, deadline=30, retries=3)
        http.policy = HttpPolicy(retries=3, backoff_base=2.0, deadline=30)
        http.rng = lambda: 1.0
        with deadline.scope(1.0), pytest.raises(Exception) as info:
            http.request("GET")
    assert len(vendor.visits) == 1 and "503" in str(info.value)


@pytest.mark.parametrize("value", ["²", "soon", "-1", "1e99"])
def test_a_hostile_retry_after_on_the_wire_is_retried_not_fatal(value):
    with HostileVendor(answer(429, headers={"Retry-After": value}), answer(200, b"[]")) as v:
        resp = client(v.url, retries=2, deadline=10).request("GET")
    assert resp.attempts == 2 and resp.json() == []


def test_a_rate_limited_call_that_cannot_start_in_time_is_refused_not_overrun():
    from spamfilter_plugin.vendors.rackspace import RateLimiter

    limiter = RateLimiter(1)
    limiter.acquire()  # the one slot of this minute is taken
    started = time.monotonic()
    with deadline.scope(1.0), pytest.raises(VendorPaced) as info:
        limiter.acquire()
    assert time.monotonic() - started < 1.0
    assert "rate_limit" in str(info.value)
    assert 58 < info.value.retry_after <= 60  # when the minute frees the slot


# -- whole deliveries: two workers never send the same thing at once ----------------------


def spamport_config(tmp_path, url, *, general=None, **table):
    from spamfilter_plugin.sandbox.spamport import PASSWORD, USERNAME
    from spamfilter_plugin.testing import write_config

    return with_fleet(
        write_config(
            tmp_path / "config.toml",
            {"mail_host": "mx.provider.example", "retry_base": 0.01, **(general or {})},
            {
                "spamport": {
                    "api_url": url,
                    "username": USERNAME,
                    "password": PASSWORD,
                    "retries": 0,
                    **table,
                }
            },
        )
    )


def spamport_says(status: str, message: str, latency: float = 0.0):
    body = json.dumps({"status": status, "message": message}).encode()
    return slow(latency, answer(200, body)) if latency else answer(200, body)


def n_workers(cfg, n: int, seconds: float):
    """Run *n* workers, each its own runtime and queue connection, for *seconds*."""
    from spamfilter_plugin.manager import load_runtime
    from spamfilter_plugin.worker import Worker

    stop = threading.Event()
    workers = [Worker(load_runtime(cfg), owner=f"w{i}") for i in range(n)]
    threads = [threading.Thread(target=w.run_forever, args=(stop, 0.05)) for w in workers]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(30)
    return workers


def same_domain(visit):
    """Requests about one domain: one delivery's calls, which must never overlap another's."""
    return visit.form.get("domain")


def test_add_then_set_outgoing_ends_inside_the_lease_and_is_never_sent_twice_at_once(tmp_path):
    from spamfilter_plugin.emit import emit
    from spamfilter_plugin.events import DomainCreated

    plays = [
        spamport_says("failure", "Domain already exists: slow.example", 2.5),
        spamport_says("success", "Outgoing server changed", 2.5),
    ]
    with HostileVendor(*plays) as vendor:
        # the retry waits a moment after a cut-off call (the server notices the closed
        # connection a little later than the client gave up, more so on a busy machine)
        general = {"lease_seconds": 4.0, "retry_base": 0.3}
        cfg = spamport_config(tmp_path, vendor.url, general=general, deadline=3.0)
        emit(DomainCreated(domain="slow.example", destination="192.0.2.7"), cfg)
        n_workers(cfg, 2, 9.0)
    assert vendor.visits, "the vendor was never called"
    assert vendor.overlapping(same_domain) == []


def test_a_dripping_vendor_cannot_hold_a_delivery_past_its_lease(tmp_path):
    from spamfilter_plugin.emit import emit
    from spamfilter_plugin.events import DomainCreated

    with HostileVendor(drip_body(0.2)) as vendor:
        cfg = spamport_config(
            tmp_path, vendor.url, general={"lease_seconds": 3.0}, deadline=2.5, read_timeout=1.0
        )
        (row_id,) = emit(DomainCreated(domain="drip.example"), cfg).rows.values()
        n_workers(cfg, 2, 7.0)
    assert len(vendor.visits) >= 2  # tried again after each timeout...
    assert vendor.overlapping(same_domain) == []  # ...but never by two workers at once
    row = opened(tmp_path / "state").get(row_id)
    assert row.error_type == "VendorTimeout" and "deadline" in row.last_error


def test_sigterm_stops_a_worker_stuck_on_a_dripping_vendor(tmp_path):
    from spamfilter_plugin.emit import emit
    from spamfilter_plugin.events import DomainCreated

    with HostileVendor(drip_headers(0.2, limit=60)) as vendor:
        cfg = spamport_config(
            tmp_path, vendor.url, general={"lease_seconds": 10.0}, deadline=3.0, read_timeout=1.0
        )
        emit(DomainCreated(domain="drip.example"), cfg)
        proc = subprocess.Popen(
            [SPAMFILTER, "--config", str(cfg), "worker"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline_at = time.monotonic() + 20
            while not vendor.visits and time.monotonic() < deadline_at:
                time.sleep(0.05)
            assert vendor.visits, "the worker never called the vendor"
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)  # the 3 s deadline, then a clean stop (not the 60 s drip)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, proc.stderr.read().decode()


# -- refused credentials: one try in flight, however many workers -------------------------


def test_five_workers_with_a_wrong_password_send_one_login(tmp_path):
    from spamfilter_plugin.emit import emit
    from spamfilter_plugin.events import DomainCreated

    with HostileVendor(spamport_says("failure", "Invalid login credentials", 0.5)) as vendor:
        cfg = spamport_config(tmp_path, vendor.url, password="wrong")
        rows = [emit(DomainCreated(domain=f"d{i}.example"), cfg).rows["spamport"] for i in range(5)]
        n_workers(cfg, 5, 3.0)
    assert len(vendor.visits) == 1, [v.form.get("domain") for v in vendor.visits]
    queue = opened(tmp_path / "state")
    states = sorted(queue.get(r).state for r in rows)
    assert states == ["dead", "pending", "pending", "pending", "pending"]
    waiting = [queue.get(r) for r in rows if queue.get(r).state == "pending"]
    assert all(r.attempts == 0 for r in waiting)  # held back untried: not an attempt


def test_proven_credentials_let_deliveries_run_side_by_side_and_a_change_unproves_them(tmp_path):
    from spamfilter_plugin.emit import emit
    from spamfilter_plugin.events import DomainCreated

    with HostileVendor(spamport_says("success", "Domain added", 0.6)) as vendor:
        cfg = spamport_config(tmp_path, vendor.url)
        emit(DomainCreated(domain="first.example"), cfg)
        n_workers(cfg, 1, 1.5)  # proves the credentials
        for i in range(3):
            emit(DomainCreated(domain=f"d{i}.example"), cfg)
        n_workers(cfg, 3, 2.0)
        side_by_side = vendor.overlapping(lambda v: True)
        assert side_by_side, "proven credentials should not serialise deliveries"
        # a changed password is not proven: one delivery at a time again
        cfg.write_text(cfg.read_text().replace("sandbox-", "changed-"))
        before = len(vendor.visits)
        for i in range(3):
            emit(DomainCreated(domain=f"e{i}.example"), cfg)
        n_workers(cfg, 3, 0.5)  # each worker claims one of them at once
    changed = vendor.visits[before:]
    assert len(changed) == 3
    assert [
        (a, b) for a in changed for b in changed if a is not b and a.began <= b.began < a.ended
    ] == []  # one at a time


# -- answers that carry a secret and are not what they claim ------------------------------

GENERATED = "Gen3rated-Pw-7731"


@pytest.mark.parametrize(
    "body",
    [
        b'{"status": "success", "message": "' + GENERATED.encode() + b'"} <proxy junk>',
        b'{"status": "success", "message": "' + GENERATED.encode(),  # truncated
        b"\xff\xfe" + GENERATED.encode() + b"\x00",  # not UTF-8 at all
        b"<html><body>200 OK: password set to " + GENERATED.encode() + b"</body></html>",
    ],
    ids=["junk-after-json", "truncated", "not-utf8", "html"],
)
def test_a_garbled_answer_that_holds_a_new_password_never_shows_it(tmp_path, caplog, body):
    from spamfilter_plugin.emit import emit
    from spamfilter_plugin.events import PasswordReset
    from spamfilter_plugin.manager import load_runtime
    from spamfilter_plugin.worker import Worker

    caplog.set_level("DEBUG")
    with HostileVendor(answer(200, body, {"Content-Type": "application/json"})) as vendor:
        cfg = spamport_config(tmp_path, vendor.url)
        (row_id,) = emit(PasswordReset(domain="pw.example"), cfg).rows.values()
        delivery = Worker(load_runtime(cfg)).run_one()
    assert vendor.visits and vendor.visits[0].form["function"] == "new_password"
    row = opened(tmp_path / "state").get(row_id)
    shown = [str(delivery.outcome.error), row.last_error, json.dumps(row.to_dict()), caplog.text]
    assert all(GENERATED not in text for text in shown)
    assert "may have changed" in row.last_error and "password-reset" in row.last_error
