"""Request budgets a vendor account allows (Rackspace: so many requests a minute per API
key), shared by every client of the account: in this process (:class:`RateLimiter`, one per
account, :func:`limiter_for`), or in the whole fleet (the store's ``FleetRateLimiter``, which
:meth:`~.context.VendorContext.rate_limiter` gives in fleet mode)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from . import deadline
from .errors import VendorPaced


class Limiter(Protocol):
    def acquire(self) -> float:
        """Take a request slot; how long it waited (VendorPaced when the delivery's time
        would run out first)."""
        ...


def paced(vendor: str, per_minute: int, delay: float) -> VendorPaced:
    """Nothing was sent: the event waits *delay* seconds for a slot."""
    return VendorPaced(
        vendor,
        f"no request slot within this delivery's time (rate_limit = {per_minute} a minute); "
        f"the event waits {delay:.0f}s for one",
        retry_after=delay,
    )


class RateLimiter:
    """At most ``per_minute`` requests in any 60 seconds; ``acquire()`` waits for a slot."""

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        vendor: str = "rackspace",
    ) -> None:
        self.per_minute, self.clock, self.sleep = per_minute, clock, sleep
        self.vendor = vendor
        self.sent: deque[float] = deque()
        self.lock = threading.Lock()

    def acquire(self) -> float:
        """Take a slot; return how long it waited.  Inside a delivery
        (:mod:`~spamfilter_plugin.deadline`) it never waits past the delivery's end: it
        raises VendorPaced instead: nothing was sent, and the event waits for the slot."""
        waited = 0.0
        while True:
            with self.lock:
                now = self.clock()
                while self.sent and self.sent[0] <= now - 60:
                    self.sent.popleft()
                if len(self.sent) < self.per_minute:
                    self.sent.append(now)
                    return waited
                delay = self.sent[0] + 60 - now
            if deadline.bounded(delay) < delay:
                raise paced(self.vendor, self.per_minute, delay)
            self.sleep(delay)
            waited += delay


_limiters: dict[tuple[str, str, int], RateLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(vendor: str, account: str, per_minute: int) -> RateLimiter:
    """The process-wide limiter of one account (every client of that account shares it)."""
    with _limiters_lock:
        key = (vendor, account, per_minute)
        return _limiters.setdefault(key, RateLimiter(per_minute, vendor=vendor))


def clear() -> None:
    """Forget every process-wide budget (a new test starts with none spent)."""
    with _limiters_lock:
        _limiters.clear()
