"""Many deliveries in flight at once: the worker's engine.

Delivering is bound by network round trips, not by the machine: one delivery at a time to a
vendor 50 ms away manages about 17 a second, whatever the hardware.  The engine keeps up to
each vendor's ``concurrency`` deliveries (``[vendors.<name>]``) in flight at once, in a pool
of threads, while one thread, the dispatcher, does all the queue's reading and writing:

* it claims rows with :meth:`~.queue.Queue.claim_batch`, at most as many per vendor as that
  vendor has free places, each with its own lease, and starts each at once (so every
  delivery has its whole lease, as with one at a time);
* a delivery runs :meth:`~.worker.Worker.attempt` in its thread (the vendor's calls and
  waits, inside the delivery's time budget) and hands the outcome back;
* the dispatcher records it under the row's lease (:meth:`~.worker.Worker.finish`) and
  fills the freed place; every outcome that has come back and the claims for the free
  places are written in one transaction (:meth:`~.queue.Queue.batch`), so under load one
  synced commit serves many deliveries, and a delivery is reported once it is committed.

Every promise of one-at-a-time delivery holds: a row is claimed by one delivery at a time
(the lease), events of the same vendor and target are delivered in order (a row is
claimable only when no earlier row of its target is pending or leased), a worker killed at
any moment loses nothing (the leases run out), and a suspended vendor gets no new claims.
Rackspace's request-rate limit is kept by its client whatever the concurrency.
"""

from __future__ import annotations

import queue as stdqueue
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import CONCURRENCY_DEFAULT
from .errors import QueueError, VendorAuthError, VendorError, VendorHeld
from .manager import Outcome
from .redaction import get_logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .worker import Stats, Worker

log = get_logger(__name__)

#: seconds between looks for rows of vendors that are no longer enabled
_STRAYS_EVERY = 30.0

#: seconds between looks at which vendors are suspended or unproven
_GUARDS_EVERY = 0.5

#: seconds a running worker waits after the queue could not be written (a full disk)
QUEUE_WAIT = 10.0


@dataclass
class Attempt:
    """What one delivery attempt came to, before it is recorded: the vendor's outcome, the
    result to record and the steps to queue."""

    outcome: Outcome
    recorded: Any = None
    steps: list = field(default_factory=list)


def concurrency_of(ctx) -> int:
    """A vendor's deliveries in flight at once: its ``concurrency`` key."""
    return ctx.config.get("concurrency") or CONCURRENCY_DEFAULT


class _Pool:
    """Threads that run deliveries.  Daemon threads: a process told to stop finishes its
    deliveries in flight when it can, but is never kept alive by one (a delivery cut off
    is safe: its lease runs out and it is delivered again)."""

    def __init__(self, size: int) -> None:
        self._work: stdqueue.SimpleQueue = stdqueue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"spamfilter-delivery-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while (job := self._work.get()) is not None:
            fn, args = job
            fn(*args)

    def submit(self, fn, *args) -> None:
        self._work.put((fn, args))

    def shutdown(self) -> None:
        for _ in self._threads:
            self._work.put(None)


class Engine:
    """Drives a :class:`~.worker.Worker`'s deliveries, many at a time.

    :param worker: the worker whose queue, runtime, lease and retry policy are used.
    :param limits: deliveries in flight per vendor (default: each vendor's ``concurrency``).
    """

    def __init__(self, worker: Worker, limits: Mapping[str, int] | None = None) -> None:
        self.worker = worker
        if limits is None:
            limits = {name: concurrency_of(ctx) for name, ctx in worker.runtime.contexts.items()}
        self.limits = dict(limits)
        self._inflight: Counter[str] = Counter()
        self._done: stdqueue.SimpleQueue = stdqueue.SimpleQueue()
        self._strays: set[str] = set()
        self._strays_at = float("-inf")
        self._suspended: set[str] = set()
        self._unproven: set[str] = set()
        self._guards_at = float("-inf")

    @property
    def in_flight(self) -> int:
        return sum(self._inflight.values())

    def _slots(self) -> dict[str, int]:
        """Free places per vendor that may be claimed for now.  A vendor whose credentials
        are not proven yet gets one (:mod:`~.guard` lets one delivery at a time try them;
        more would only wait for its lock), and so does a vendor no longer enabled, so its
        rows are failed with the reason rather than left unseen.  A suspended one gets none.
        (What the guards say is looked at every :data:`_GUARDS_EVERY` seconds: a request
        checks the suspension itself just before it is sent.)"""
        worker = self.worker
        now = worker.queue.monotonic()
        if now - self._strays_at >= _STRAYS_EVERY:
            self._strays = set(worker.queue.waiting_vendors()) - set(self.limits)
            self._strays_at = now
        if now - self._guards_at >= _GUARDS_EVERY:
            self._suspended = set(worker._suspended())
            self._unproven = {
                vendor
                for vendor in self.limits
                if vendor in worker.runtime.contexts
                and not worker.runtime.contexts[vendor].guard.proven()
            }
            self._guards_at = now
        limits = {**dict.fromkeys(self._strays, 1), **self.limits}
        for vendor in self._unproven:
            limits[vendor] = 1  # unproven credentials are tried one delivery at a time
        return {
            vendor: limit - self._inflight[vendor]
            for vendor, limit in limits.items()
            if vendor not in self._suspended and limit > self._inflight[vendor]
        }

    def _deliver(self, row, token, event) -> None:
        """In a pool thread: the vendor's part of one delivery; the outcome goes back to
        the dispatcher whatever happens."""
        try:
            attempt = self.worker.attempt(row, event)
        except BaseException as exc:  # a bug must not lose the row's outcome or hang the loop
            log.error("queue row %d: delivery crashed", row.id, exc_info=True)
            error = VendorError(row.vendor, f"delivery crashed: {type(exc).__name__}: {exc}")
            attempt = Attempt(Outcome(row.vendor, False, error=error))
        self._done.put((row, token, attempt))

    def _ended(self, timeout: float | None) -> list:
        """The deliveries that have ended, waiting up to *timeout* for the first."""
        try:
            if timeout is None or timeout > 0:
                ended = [self._done.get(timeout=timeout)]
            else:
                ended = [self._done.get_nowait()]
        except stdqueue.Empty:
            return []
        while True:
            try:
                ended.append(self._done.get_nowait())
            except stdqueue.Empty:
                return ended

    def _step(self, ended: list, claim: bool, chosen: bool, ignore_schedule: bool, pool, stats):
        """Record the deliveries that ended and claim rows for the free places, all in one
        transaction (one synced commit for the lot); then report the recorded ones and
        start the claimed ones.  If the queue cannot be written, nothing of the batch is
        recorded: those rows are delivered again when their leases run out."""
        worker = self.worker
        for row, _token, attempt in ended:
            self._inflight[row.vendor] -= 1
            error = attempt.outcome.error
            if row.vendor in self._unproven or isinstance(error, (VendorAuthError, VendorHeld)):
                self._guards_at = float("-inf")  # proven, suspended or held: look again now
        slots = self._slots() if claim else {}
        delivered, claimed = [], []
        if not ended and not slots:
            return
        with worker.queue.batch():
            for row, token, attempt in ended:
                delivered.append(worker.finish(row, token, attempt, report=False))
            if slots:
                claimed = worker.queue.claim_batch(
                    worker.owner,
                    worker.general.lease_seconds,
                    slots,
                    chosen=chosen,
                    ignore_schedule=ignore_schedule,
                )
        for delivery in delivered:
            if stats is not None:
                stats.add(delivery)
            if worker.on_delivery is not None:
                worker.on_delivery(delivery)
        for row, token in claimed:
            self._inflight[row.vendor] += 1
            pool.submit(self._deliver, row, token, worker.prepare(row))

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        stats: Stats | None = None,
        chosen: bool = False,
        ignore_schedule: bool = False,
        until_idle: bool = True,
        linger: float = 0.0,
        poll: float = 1.0,
    ) -> None:
        """Deliver until nothing is deliverable now (*until_idle*) or until *stop* is set.

        :param chosen: only rows put in :meth:`~.queue.Queue.choose`.
        :param linger: with *until_idle*, go on while a chosen row comes due within this many
            seconds (one held back for a moment, say), rather than leave it to the next run.
        :param poll: the longest wait before looking for new rows again.

        On *stop*, no new row is claimed, and the deliveries in flight are finished and
        recorded before this returns.  When running until stopped, a queue that cannot be
        written for a moment (a full disk) is waited for; nothing is lost meanwhile."""
        stop = stop or threading.Event()
        queue = self.worker.queue
        pool = _Pool(sum(self.limits.values()) + 4)  # and a few for vendors no longer enabled
        wait = 0.0
        try:
            while True:
                try:
                    ended = self._ended(wait) if self.in_flight else []
                    self._step(ended, not stop.is_set(), chosen, ignore_schedule, pool, stats)
                    if self.in_flight:
                        wait = self._wait_with_work(stop, poll)
                        continue
                    wait = 0.0
                    if stop.is_set():
                        return
                    due_in = queue.next_due_in(after_now=True)
                    if until_idle and not (chosen and linger and queue.chosen_waiting(linger)):
                        return
                except QueueError as exc:
                    if until_idle or not exc.temporary:
                        raise
                    log.error("%s; the worker waits %.0fs and tries again", exc, QUEUE_WAIT)
                    stop.wait(QUEUE_WAIT)
                    continue
                stop.wait(poll if due_in is None else min(poll, max(due_in, 0.01)))
        finally:
            while self.in_flight:  # stopped, or an error: record what is still in flight
                try:
                    self._step(self._ended(None), False, chosen, ignore_schedule, pool, stats)
                except QueueError as exc:
                    log.error("%s; the rows in flight are delivered again later", exc)
            pool.shutdown()

    def _wait_with_work(self, stop: threading.Event, poll: float) -> float:
        """How long to wait for a delivery to end before looking for rows again: *poll*, or
        less when there are free places and a row comes due sooner.  (A row due already but
        not claimed waits behind an earlier one of its target: a delivery ending frees it.)"""
        if stop.is_set() or not self._slots():
            return poll
        due_in = self.worker.queue.next_due_in(after_now=True)
        return poll if due_in is None else min(poll, max(due_in, 0.01))
