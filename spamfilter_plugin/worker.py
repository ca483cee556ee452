"""The worker: claims queue rows with a lease and delivers them, many at a time.  This is
the one delivery loop; what happens to each row is :mod:`.delivery`'s.

Delivering is bound by network round trips, not by the machine: one delivery at a time to a
vendor 50 ms away manages about 17 a second, whatever the hardware.  The worker keeps up to
each vendor's ``concurrency`` deliveries (``[vendors.<name>]``) in flight at once, in a lane
of that many threads per vendor, while one thread, the dispatcher, does all the queue's
reading and writing:

* it claims rows with :meth:`~.queue.Queue.claim_batch`, each with its own lease: as many
  per vendor as that vendor has free places, and on a server's own store a few more
  (:data:`AHEAD`), which wait in the vendor's lane so that a thread ending a delivery
  begins the next at once rather than after the dispatcher's next write (a lease is
  counted from its claim, and a delivery's time budget with it);
* a delivery runs :meth:`~.delivery.Policy.attempt` in its thread (the vendor's calls and
  waits, inside the delivery's time budget) and hands the outcome back;
* the dispatcher records it under the row's lease (:meth:`~.delivery.Policy.record`) and
  fills the freed place; every outcome that has come back and the claims for the free
  places are written in one transaction (:meth:`~.queue.Queue.batch`), so under load one
  synced commit serves many deliveries, and a delivery is reported once it is committed.
  A worker told to stop gives the rows claimed ahead back untried.

Every promise of one-at-a-time delivery holds: a row is claimed by one delivery at a time
(the lease), events of the same vendor and target are delivered in order (a row is
claimable only when no earlier row of its target is pending or leased), a worker killed at
any moment loses nothing (the leases run out), and a suspended vendor gets no new claims.
Rackspace's request-rate limit is kept by its client whatever the concurrency.  ``worker``,
``emit --now``, ``sync`` and the console all deliver through :class:`Worker`.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue as stdqueue
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .config.model import CONCURRENCY_DEFAULT
from .delivery import Attempt, Delivery, Policy, Stats
from .errors import QueueError, VendorAuthError, VendorError, VendorHeld
from .manager import Outcome, Runtime
from .queue import Queue, Row, queue_of
from .redaction import get_logger

__all__ = ["Delivery", "Stats", "Worker", "concurrency_of"]

log = get_logger(__name__)

#: seconds between looks for rows of vendors that are no longer enabled
_STRAYS_EVERY = 30.0

#: seconds between looks at which vendors are suspended or unproven
_GUARDS_EVERY = 0.5

#: seconds a running worker waits after the queue could not be written (a full disk)
QUEUE_WAIT = 10.0

#: in fleet mode, how often a running worker relays the panel hooks' local rows (seconds)
RELAY_EVERY = 0.25

#: in fleet mode, seconds a worker with nothing in flight waits before looking again while
#: the fleet's other workers hold every place a vendor's ``concurrency`` allows
FULL_WAIT = 0.05

#: rows of a vendor claimed ahead, beyond its free places, as a share of its ``concurrency``
#: (at least one): they wait in its lane, so that a delivery ending begins the next at once.
#: Not on a store many servers share (:attr:`~.queue.Queue.shared`): there a vendor's
#: ``concurrency`` bounds its rows leased in the whole fleet (see
#: :meth:`~.queue.Queue.claim_batch`)
AHEAD = 0.5

#: after a delivery ends while others are in flight, how long the dispatcher waits for more
#: to end before writing them (seconds): outcomes that end close together share one commit
#: and one wake-up, which costs a delivery's outcome at most this much more time
GATHER = 0.002

#: how often a running worker with nothing delivered tells the built-in features it is alive
#: (the heartbeat the operations metrics show), in seconds
NOTE_EVERY = 15.0


def concurrency_of(ctx) -> int:
    """A vendor's deliveries in flight at once: its ``concurrency`` key."""
    return ctx.config.get("concurrency") or CONCURRENCY_DEFAULT


class _Lane:
    """The deliveries of one vendor, begun in the order they were claimed by *size* threads
    of the lane's own: no more than *size* are in flight, and a thread that ends one begins
    the next one waiting at once (the dispatcher keeps a few claimed ahead, see
    :data:`AHEAD`).  Daemon threads: a process told to stop finishes its deliveries in
    flight when it can, but is never kept alive by one (a delivery cut off is safe: its
    lease runs out and it is delivered again)."""

    def __init__(self, vendor: str, size: int) -> None:
        self._work: stdqueue.SimpleQueue = stdqueue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"spamfilter-{vendor}-{i}", daemon=True)
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

    def withdraw(self) -> list[tuple]:
        """Take back the deliveries not begun yet: the arguments each was submitted with."""
        taken: list[tuple] = []
        while True:
            try:
                job = self._work.get_nowait()
            except stdqueue.Empty:
                return taken
            taken.append(job[1])

    def shutdown(self) -> None:
        for _ in self._threads:
            self._work.put(None)


class _Lanes:
    """A lane per vendor, made when its first delivery is claimed: *sizes* says how many
    threads each vendor's lane has (one for a vendor not in it, no longer enabled)."""

    def __init__(self, sizes: Mapping[str, int]) -> None:
        self._sizes = sizes
        self._lanes: dict[str, _Lane] = {}

    def submit(self, vendor: str, fn, *args) -> None:
        lane = self._lanes.get(vendor)
        if lane is None:
            lane = self._lanes[vendor] = _Lane(vendor, self._sizes.get(vendor, 1))
        lane.submit(fn, *args)

    def withdraw(self) -> list[tuple]:
        return [args for lane in self._lanes.values() for args in lane.withdraw()]

    def shutdown(self) -> None:
        for lane in self._lanes.values():
            lane.shutdown()


@dataclass
class _Run:
    """One run of the loop: its lanes, what it counts, which rows it may claim, and (when
    each chosen row is tried at most once) the chosen rows not tried yet."""

    lanes: _Lanes
    stats: Stats | None
    chosen: bool
    ignore_schedule: bool
    untried: set[int] | None


class Worker:
    """Delivers the rows of *queue* (default: the config's) for *runtime*.

    :param owner: who holds the leases (default host name and process id).
    :param monotonic: the clock that orders work (for a queue made here).
    :param rng: the backoff's jitter.
    :param on_deliveries: told of the deliveries committed together, once per commit (a
        progress line for each in one write, say).
    :param limits: deliveries in flight per vendor (default: each vendor's ``concurrency``).
    """

    def __init__(
        self,
        runtime: Runtime,
        queue: Queue | None = None,
        *,
        owner: str | None = None,
        monotonic: Callable[[], float] | None = None,
        rng: Callable[[], float] = random.random,
        on_deliveries: Callable[[list[Delivery]], None] | None = None,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        self.runtime = runtime
        self.general = runtime.config.general
        self.queue = queue or queue_of(runtime.config, monotonic=monotonic)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.policy = Policy(runtime, self.queue, rng=rng)
        self.on_deliveries = on_deliveries
        if limits is None:
            limits = {name: concurrency_of(ctx) for name, ctx in runtime.contexts.items()}
        self.limits = dict(limits)
        #: the rows of each vendor held at most: its places and, on a server's own store,
        #: those claimed ahead (:data:`AHEAD`)
        self._held_at_most = {
            vendor: n if self.queue.shared else n + max(1, math.ceil(n * AHEAD))
            for vendor, n in self.limits.items()
        }
        self._inflight: Counter[str] = Counter()
        self._done: stdqueue.SimpleQueue = stdqueue.SimpleQueue()
        self._strays: set[str] = set()
        self._strays_at = float("-inf")
        self._suspended: set[str] = set()
        self._unproven: set[str] = set()
        self._guards_at = float("-inf")
        self._noted_at = float("-inf")

    # -- what callers use -----------------------------------------------------------

    def suspended_vendors(self) -> list[str]:
        """The enabled vendors whose calls are suspended (refused credentials)."""
        return [name for name, ctx in self.runtime.contexts.items() if ctx.suspension()]

    def run_one(
        self, *, only: Iterable[int] | None = None, ignore_schedule: bool = False
    ) -> Delivery | None:
        """Claim and deliver one row, in this thread; None when nothing is deliverable now."""
        self.queue.relay()
        claimed_at = time.monotonic()  # the lease is counted from no later than this
        claimed = self.queue.claim(
            self.owner,
            self.general.lease_seconds,
            exclude=self.suspended_vendors(),
            only=only,
            ignore_schedule=ignore_schedule,
        )
        if claimed is None:
            return None
        row, token = claimed
        attempt = self.policy.attempt(row, self.policy.prepare(row), claimed_at)
        with self.queue.batch():
            delivery = self.policy.record(row, token, attempt)
            self._noted([delivery])
        self._report([delivery], None)
        return delivery

    def deliver_now(self, row_ids: Iterable[int]) -> list[Delivery]:
        """One attempt for each of these rows at once, whatever their schedule (``emit
        --now``).  A row queued behind an earlier, undelivered event of its target is not
        attempted (order comes first) and is left, like every failure, to the worker."""
        return self.drain(only=list(row_ids), ignore_schedule=True, once=True).deliveries

    def drain(
        self,
        *,
        only: Iterable[int] | None = None,
        ignore_schedule: bool = False,
        stop: threading.Event | None = None,
        keep: bool = True,
        once: bool = False,
        linger: float = 0.0,
    ) -> Stats:
        """Deliver until nothing is deliverable now; *only* these rows, when given (*once*:
        each at most once in this run)."""
        stats = Stats(keep=keep)
        chosen = only is not None
        if chosen:
            self.queue.choose(only or (), fresh=True)
        try:
            self.run(
                stop=stop,
                stats=stats,
                chosen=chosen,
                ignore_schedule=ignore_schedule,
                linger=linger,
                once=once,
            )
        finally:
            if chosen:
                self.queue.choose((), fresh=True)
        return stats

    def run_forever(self, stop: threading.Event, poll: float = 1.0) -> None:
        """Deliver as rows come due until *stop* is set (then the deliveries in flight are
        finished).  Keeps nothing per delivery in memory (a long-running daemon); progress
        goes to ``on_deliveries`` and the log."""
        self.run(stop=stop, until_idle=False, poll=poll)

    # -- the loop -----------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return sum(self._inflight.values())

    def _slots(self) -> dict[str, int]:
        """Free places per vendor that may be claimed for now.  A vendor whose credentials
        are not proven yet gets one (:mod:`~.guard` lets one delivery at a time try them;
        more would only wait for its lock), and so does a vendor no longer enabled, so its
        rows are failed with the reason rather than left unseen.  A suspended one gets none.
        (What the guards say is looked at every :data:`_GUARDS_EVERY` seconds: a request
        checks the suspension itself just before it is sent.)  A proven vendor's places
        include the rows claimed ahead."""
        now = self.queue.monotonic()
        if now - self._strays_at >= _STRAYS_EVERY:
            self._strays = set(self.queue.waiting_vendors()) - set(self.limits)
            self._strays_at = now
        if now - self._guards_at >= _GUARDS_EVERY:
            self._suspended = set(self.suspended_vendors())
            self._unproven = {
                vendor
                for vendor in self.limits
                if vendor in self.runtime.contexts
                and not self.runtime.contexts[vendor].guard.proven()
            }
            self._guards_at = now
        limits = {**dict.fromkeys(self._strays, 1), **self._held_at_most}
        for vendor in self._unproven:
            limits[vendor] = 1  # unproven credentials are tried one delivery at a time
        return {
            vendor: limit - self._inflight[vendor]
            for vendor, limit in limits.items()
            if vendor not in self._suspended and limit > self._inflight[vendor]
        }

    def _open_slots(self) -> dict[str, int]:
        """:meth:`_slots` without the vendors whose places the whole fleet holds now."""
        return {v: n for v, n in self._slots().items() if v not in self.queue.full}

    def _deliver(self, row, token, ready, claimed_at: float) -> None:
        """In a lane's thread: the vendor's part of one delivery; the outcome goes back to
        the dispatcher whatever happens."""
        try:
            attempt = self.policy.attempt(row, ready, claimed_at)
        except BaseException as exc:  # a bug must not lose the row's outcome or hang the loop
            log.error("queue row %d: delivery crashed", row.id, exc_info=True)
            error = VendorError(row.vendor, f"delivery crashed: {type(exc).__name__}: {exc}")
            attempt = Attempt(Outcome(row.vendor, False, error=error))
        self._done.put((row, token, attempt))

    def _withdrawn(self, run: _Run) -> list:
        """The deliveries claimed ahead and not begun, taken back when the worker stops:
        given back untried (nothing was sent), for the next run to deliver."""
        return [
            (row, token, Attempt(Outcome(row.vendor, False, error=VendorHeld(
                row.vendor, "not begun: the worker stopped first; the next run delivers it"))))
            for row, token, _ready, _claimed_at in run.lanes.withdraw()
        ]  # fmt: skip

    def _ended(self, timeout: float | None) -> list:
        """The deliveries that have ended, waiting up to *timeout* for the first, then up to
        :data:`GATHER` for others still in flight (so they are written together)."""
        try:
            if timeout is None or timeout > 0:
                ended = [self._done.get(timeout=timeout)]
            else:
                ended = [self._done.get_nowait()]
        except stdqueue.Empty:
            return []
        until = time.monotonic() + GATHER
        while True:
            try:
                ended.append(self._done.get_nowait())
                continue
            except stdqueue.Empty:
                pass
            left = until - time.monotonic()
            if len(ended) >= self.in_flight or left <= 0:
                return ended
            try:
                ended.append(self._done.get(timeout=left))
            except stdqueue.Empty:
                return ended

    def _step(self, ended: list, claim: bool, run: _Run) -> None:
        """Record the deliveries that ended and claim rows for the free places, all in one
        transaction (one synced commit for the lot); then report the recorded ones and
        start the claimed ones.  If the queue cannot be written, nothing of the batch is
        recorded: those rows are delivered again when their leases run out."""
        for row, _token, attempt in ended:
            self._inflight[row.vendor] -= 1
            error = attempt.outcome.error
            if row.vendor in self._unproven or isinstance(error, (VendorAuthError, VendorHeld)):
                self._guards_at = float("-inf")  # proven, suspended or held: look again now
        slots = self._slots() if claim else {}
        delivered: list[Delivery] = []
        claimed: list[tuple[Row, str]] = []
        if not ended and not slots:
            if time.monotonic() - self._noted_at >= NOTE_EVERY:
                with self.queue.batch():
                    self._noted([])  # alive, with nothing delivered
            return
        claimed_at = time.monotonic()  # the leases are counted from no later than this
        with self.queue.batch():
            delivered = self.policy.record_all(ended)
            if delivered or claimed_at - self._noted_at >= NOTE_EVERY:
                self._noted(delivered)
            if run.untried is not None and delivered:  # each chosen row at most once
                run.untried -= {d.row.id for d in delivered}
                self.queue.choose(run.untried, fresh=True)
            if slots:
                claimed = self.queue.claim_batch(
                    self.owner,
                    self.general.lease_seconds,
                    slots,
                    chosen=run.chosen,
                    ignore_schedule=run.ignore_schedule,
                    limits=self.limits,
                )
        if delivered:
            self._report(delivered, run.stats)
        for row, token in claimed:
            self._inflight[row.vendor] += 1
            ready = self.policy.prepare(row)
            run.lanes.submit(row.vendor, self._deliver, row, token, ready, claimed_at)

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
        once: bool = False,
    ) -> None:
        """Deliver until nothing is deliverable now (*until_idle*) or until *stop* is set.

        :param chosen: only rows put in :meth:`~.queue.Queue.choose`.
        :param once: with *chosen*, each chosen row is delivered at most once in this run.
        :param linger: with *until_idle*, go on while a chosen row comes due within this many
            seconds (one held back for a moment, say), rather than leave it to the next run.
        :param poll: the longest wait before looking for new rows again.

        On *stop*, no new row is claimed, and the deliveries in flight are finished and
        recorded before this returns.  When running until stopped, a queue that cannot be
        written for a moment (a full disk) is waited for; nothing is lost meanwhile."""
        stop = stop or threading.Event()
        queue = self.queue
        with contextlib.suppress(QueueError):  # the fleet unreachable: the loop says so
            queue.relay()  # what the panel hooks queued so far, before looking for work
        lanes = _Lanes(self.limits)
        untried = {r.id for r in queue.chosen_rows(("pending",))} if chosen and once else None
        run = _Run(lanes, stats, chosen, ignore_schedule, untried)
        wait = 0.0
        try:
            while True:
                try:
                    if not stop.is_set():
                        queue.relay(every=RELAY_EVERY)
                    ended = self._ended(wait) if self.in_flight else []
                    if stop.is_set():
                        ended += self._withdrawn(run)
                    self._step(ended, not stop.is_set(), run)
                    if self.in_flight:
                        wait = self._wait_with_work(stop, poll)
                        continue
                    wait = 0.0
                    if stop.is_set():
                        return
                    due_in = queue.next_due_in(after_now=True)
                    if until_idle and not (chosen and linger and queue.chosen_waiting(linger)):
                        if chosen or not queue.full:
                            return
                    if queue.full:  # the fleet's other workers hold every place: they end soon
                        due_in = FULL_WAIT
                except QueueError as exc:
                    if until_idle or not exc.temporary:
                        raise
                    log.error("%s; the worker waits %.0fs and tries again", exc, QUEUE_WAIT)
                    stop.wait(QUEUE_WAIT)
                    continue
                queue.wait(stop, poll if due_in is None else min(poll, max(due_in, 0.01)))
        finally:
            withdrawn = self._withdrawn(run)
            while self.in_flight:  # stopped, or an error: record what is still in flight
                try:
                    self._step(withdrawn + self._ended(None), False, run)
                except QueueError as exc:
                    log.error("%s; the rows in flight are delivered again later", exc)
                withdrawn = []
            lanes.shutdown()

    def _wait_with_work(self, stop: threading.Event, poll: float) -> float:
        """How long to wait for a delivery to end before looking for rows again: *poll*, or
        less when there are free places and a row comes due sooner.  (A row due already but
        not claimed waits behind an earlier one of its target: a delivery ending frees it.)"""
        if stop.is_set() or not self._open_slots():
            return poll  # a delivery of this worker's ending frees a place
        due_in = self.queue.next_due_in(after_now=True)
        return poll if due_in is None else min(poll, max(due_in, 0.01))

    def _noted(self, delivered: list[Delivery]) -> None:
        """The built-in features take note of what was written, in its transaction."""
        self._noted_at = time.monotonic()
        self.runtime.recorded(self.queue, delivered)

    def _report(self, delivered: list[Delivery], stats: Stats | None) -> None:
        """The deliveries of one commit, once it is made: counted, and told."""
        if stats is not None:
            for delivery in delivered:
                stats.add(delivery)
        if self.on_deliveries is not None:
            self.on_deliveries(delivered)


#: how often a running worker does the built-in features' periodic work (seconds)
CHORES_EVERY = 60.0


def chores_every(runtime: Runtime, stop: threading.Event, every: float = CHORES_EVERY) -> None:
    """The built-in features' periodic work (audit purge, drift watch, alerts), now and then
    about every minute until *stop*: run on a thread of its own by the worker daemon and the
    console, so a slow chore (a notification service that hangs) never holds up a delivery."""
    while not stop.is_set():
        try:
            with queue_of(runtime.config) as queue:
                runtime.chores(queue, time.time())
        except QueueError as exc:  # the store is down for now: the next round tries again
            log.error("periodic work skipped: %s", exc)
        stop.wait(every)
