"""A delivery's time budget, shared by every call and every wait it makes.

The worker opens a :func:`scope` for each delivery that ends well inside the row's lease.
Inside it, the HTTP layer bounds each request by the nearer of its own ``deadline`` and
the scope's end, and anything that waits (a rate limiter, a lock) asks :func:`remaining`
first and gives up rather than wait past the end.  Scopes nest: an inner one never ends
later than the outer one.  Times are monotonic, so a stepped wall clock changes nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()


@contextmanager
def scope(seconds: float) -> Iterator[None]:
    """Within this block, this thread's calls and waits end within *seconds* from now."""
    outer = getattr(_local, "end", None)
    end = time.monotonic() + seconds
    _local.end = end if outer is None else min(end, outer)
    try:
        yield
    finally:
        _local.end = outer


def remaining() -> float | None:
    """Seconds left in this thread's scope (may be negative), or None outside any scope."""
    end = getattr(_local, "end", None)
    return None if end is None else end - time.monotonic()


def bounded(seconds: float) -> float:
    """*seconds*, or less when this thread's scope ends sooner (never below zero)."""
    left = remaining()
    return seconds if left is None else max(0.0, min(seconds, left))
