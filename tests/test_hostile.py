"""The HTTP layer and the worker against a hostile vendor (tests/hostile.py): bytes dripped
one at a time, endless bodies, answers that are not what they claim.

Elapsed-time bounds here are correctness bounds with wide margins (a dripping server would
otherwise hold a call for its full 30 s), not speed targets."""

from __future__ import annotations

import time

import pytest
from hostile import HostileVendor, answer, drip_body, drip_headers, slow

from spamfilter_plugin import deadline
from spamfilter_plugin.errors import VendorRateLimited, VendorTimeout
from spamfilter_plugin.http import HttpClient, HttpPolicy


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
    with deadline.scope(1.0), pytest.raises(VendorRateLimited) as info:
        limiter.acquire()
    assert time.monotonic() - started < 1.0
    assert "rate_limit" in str(info.value)
