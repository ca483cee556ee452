"""Operations metrics, as a built-in plugin and a Prometheus exposition.

What the worker delivered is counted when the outcomes are written
(:func:`deliveries_recorded`), in the queue's store, in the same transaction: a panel hook's
``emit --now`` or a ``worker --drain`` is counted like the daemon, and a scrape reads the
totals whatever process wrote them (no multiprocess mode of prometheus_client is needed).
What the queue holds is read from it when scraped (:func:`exposition`).  Names follow
Prometheus' conventions: base units, ``_total`` on counters, bounded label sets (vendors,
hooks, outcomes, states; never a domain or a mailbox).
"""

from __future__ import annotations

import functools
import json
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import VendorHeld
from .hookspecs import hookimpl
from .http import taken_requests

if TYPE_CHECKING:
    from .context import Host
    from .delivery import Delivery
    from .store.base import Queue

DELIVERIES = "spamfilter_deliveries_total"
DURATION = "spamfilter_delivery_duration_seconds"
REQUESTS = "spamfilter_vendor_requests_total"
LEASE_EXPIRED = "spamfilter_lease_expired_total"
WORKER_SEEN = "spamfilter_worker_last_seen_timestamp_seconds"
DRIFT = "spamfilter_drift_findings"
ALERTS = "spamfilter_alerts_total"

#: the upper bounds of the delivery duration histogram (seconds)
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

#: the buckets' bounds as the label ``le`` gives them
BOUNDS = (*map(repr, BUCKETS), "+Inf")

#: how the store keeps the histogram: each delivery counted in the first bucket it is within
#: (one row a batch, typically), made cumulative when scraped.  Releases before kept the
#: cumulative buckets themselves, under ``_bucket``: those are added in as they are.
WITHIN = f"{DURATION}_within"

#: what a delivery came to, as ``spamfilter_deliveries_total`` says it
OUTCOMES = ("done", "retry", "dead", "held", "skipped")

HELP = {
    DELIVERIES: "Deliveries to vendors by what they came to (done, retry, dead, held, skipped).",
    DURATION: "Time the vendor's part of a delivery took.",
    REQUESTS: "HTTP requests sent to vendors by the status class of the answer (none: no answer).",
    LEASE_EXPIRED: "Deliveries whose lease ran out before their outcome was written.",
    WORKER_SEEN: "When a worker last wrote its outcomes or said it was alive (Unix time).",
    DRIFT: "What the last drift check found, per vendor and kind.",
    ALERTS: "Alert messages by kind and whether they went out (sent, failed).",
    "spamfilter_queue_rows": "Queue rows per vendor and state.",
    "spamfilter_oldest_pending_age_seconds": "Age of the oldest pending row per vendor.",
    "spamfilter_vendor_suspended": "1 while calls to a vendor are suspended (credentials refused).",
    "spamfilter_mx_domains": "Domains whose MX the plugin manages, per state.",
}


def labels(**values: str) -> str:
    """A label set as the store keeps it: sorted JSON."""
    return _labels(tuple(sorted(values.items())))


@functools.lru_cache(maxsize=1024)
def _labels(items: tuple[tuple[str, str], ...]) -> str:
    """Memoised: a worker writes the same few label sets (vendors, hooks, outcomes,
    buckets) with every batch."""
    return json.dumps(dict(items), separators=(",", ":"))


def outcome_of(delivery: Delivery) -> str:
    """What *delivery* came to, as one of :data:`OUTCOMES`."""
    state = delivery.final_state
    if state in ("done", "dead", "skipped"):
        return state
    if isinstance(delivery.outcome.error, VendorHeld):
        return "held"  # nothing was sent: the row waits, the attempt not counted
    return "retry"


def counted(deliveries: Iterable[Delivery]) -> dict[tuple[str, str], float]:
    """The counters *deliveries* add, and the requests sent since last counted.  Counted
    per delivery in plain tuples; each label set is written out once per batch."""
    outcomes: Counter[tuple[str, str, str]] = Counter()
    lost: Counter[str] = Counter()
    buckets: dict[str, list[int]] = {}
    sums: dict[str, float] = defaultdict(float)
    for d in deliveries:
        vendor = d.row.vendor
        outcomes[(vendor, d.row.hook, outcome_of(d))] += 1
        if d.lease_lost:
            lost[vendor] += 1
        counts_of = buckets.setdefault(vendor, [0] * (len(BUCKETS) + 1))
        counts_of[bisect_left(BUCKETS, d.seconds)] += 1  # the first bound it is within
        sums[vendor] += d.seconds
    counts: dict[tuple[str, str], float] = defaultdict(float)
    for (vendor, hook, outcome), n in outcomes.items():
        counts[(DELIVERIES, labels(vendor=vendor, hook=hook, outcome=outcome))] += n
    for vendor, n in lost.items():
        counts[(LEASE_EXPIRED, labels(vendor=vendor))] += n
    for vendor, within in buckets.items():
        for bound, n in zip(BOUNDS, within, strict=True):
            if n:  # each delivery in the first bucket it is within: made cumulative when read
                counts[(WITHIN, labels(vendor=vendor, le=bound))] += n
        counts[(f"{DURATION}_count", labels(vendor=vendor))] += sum(within)
        counts[(f"{DURATION}_sum", labels(vendor=vendor))] += sums[vendor]
    for (vendor, status_class), n in taken_requests().items():
        counts[(REQUESTS, labels(vendor=vendor, status_class=status_class))] += n
    return counts


@hookimpl
def deliveries_recorded(host: Host, queue: Queue, deliveries: list[Delivery]) -> None:
    queue.add_metrics(counted(deliveries), {(WORKER_SEEN, labels()): time.time()})


# -- the exposition -------------------------------------------------------------------------


class _Collector:
    """A prometheus_client collector over one reading of the store and the runtime."""

    def __init__(self, stored: list[tuple[str, str, float]], current: list[Any]) -> None:
        self.stored, self.current = stored, current

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        by_name: dict[str, list[tuple[dict[str, str], float]]] = {}
        for name, raw, value in self.stored:
            by_name.setdefault(name, []).append((json.loads(raw), value))
        for name in (DELIVERIES, REQUESTS, LEASE_EXPIRED, ALERTS):
            base = name.removesuffix("_total")  # the family's name; _total is added to samples
            family = CounterMetricFamily(base, HELP[name], labels=_keys(name))
            for values, value in by_name.get(name, []):
                family.add_metric([values[k] for k in _keys(name)], value)
            yield family
        yield _histogram(by_name)
        for name in (WORKER_SEEN, DRIFT):
            gauge = GaugeMetricFamily(name, HELP[name], labels=_keys(name))
            for values, value in by_name.get(name, []):
                gauge.add_metric([values[k] for k in _keys(name)], value)
            yield gauge
        yield from self.current


def _keys(name: str) -> list[str]:
    return {
        DELIVERIES: ["vendor", "hook", "outcome"],
        REQUESTS: ["vendor", "status_class"],
        LEASE_EXPIRED: ["vendor"],
        ALERTS: ["kind", "outcome"],
        WORKER_SEEN: [],
        DRIFT: ["vendor", "kind"],
    }[name]


def _histogram(by_name: dict[str, list[tuple[dict[str, str], float]]]) -> Any:
    from prometheus_client.core import HistogramMetricFamily

    family = HistogramMetricFamily(DURATION, HELP[DURATION], labels=["vendor"])
    sums = {v["vendor"]: value for v, value in by_name.get(f"{DURATION}_sum", [])}

    def per_vendor(name: str) -> dict[str, dict[str, float]]:
        found: dict[str, dict[str, float]] = {}
        for values, value in by_name.get(name, []):
            found.setdefault(values["vendor"], {})[values["le"]] = value
        return found

    # cumulative buckets as releases before kept them, and each delivery's own bucket
    kept, within = per_vendor(f"{DURATION}_bucket"), per_vendor(WITHIN)
    for vendor in sorted(set(kept) | set(within)):
        total, cumulative = 0.0, []
        for le in BOUNDS:
            total += within.get(vendor, {}).get(le, 0.0)
            cumulative.append((le, kept.get(vendor, {}).get(le, 0.0) + total))
        family.add_metric([vendor], cumulative, sums.get(vendor, 0.0))
    return family


def current(runtime, queue: Queue, now: float | None = None) -> list[Any]:
    """The gauges read from the queue, the vendors' guards and the MX state now."""
    from prometheus_client.core import GaugeMetricFamily

    from .queue import mx_store
    from .store import STATES

    now = time.time() if now is None else now
    vendors = sorted(set(runtime.contexts))
    rows = GaugeMetricFamily("spamfilter_queue_rows", HELP["spamfilter_queue_rows"],
                             labels=["vendor", "state"])  # fmt: skip
    oldest = GaugeMetricFamily(
        "spamfilter_oldest_pending_age_seconds",
        HELP["spamfilter_oldest_pending_age_seconds"],
        labels=["vendor"],
    )
    held: dict[tuple[str, str], int] = {}
    pending: dict[str, float] = {}
    for vendor, state, n, first in queue.vendor_summary():
        held[(vendor, state)] = n
        if state == "pending" and first is not None:
            pending[vendor] = max(0.0, now - first)
    for vendor in sorted(set(vendors) | {v for v, _ in held}):
        for state in STATES:
            rows.add_metric([vendor, state], held.get((vendor, state), 0))
        oldest.add_metric([vendor], pending.get(vendor, 0.0))
    suspended = GaugeMetricFamily(
        "spamfilter_vendor_suspended", HELP["spamfilter_vendor_suspended"], labels=["vendor"]
    )
    for vendor in vendors:
        suspended.add_metric([vendor], 1 if runtime.contexts[vendor].suspension() else 0)
    from .store.mx import STATES as MX_STATES

    mx = GaugeMetricFamily("spamfilter_mx_domains", HELP["spamfilter_mx_domains"],
                           labels=["state"])  # fmt: skip
    states = Counter(s.state for s in mx_store(runtime.config).all())
    for state in MX_STATES:
        mx.add_metric([state], states.get(state, 0))
    return [rows, oldest, suspended, mx]


def exposition(runtime, queue: Queue) -> bytes:
    """The metrics in Prometheus' text format, read now."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(queue.metrics(), current(runtime, queue)))
    return generate_latest(registry)


def write_textfile(runtime, queue: Queue, path: str) -> None:
    """:func:`exposition` written to *path* for node_exporter's textfile collector: to a
    temporary file beside it, then renamed over it, so the collector never reads half."""
    import contextlib
    import os
    import tempfile

    text = exposition(runtime, queue)
    folder = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".spamfilter-metrics.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
