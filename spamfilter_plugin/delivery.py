"""What happens to one queue row: prepared, attempted, recorded.  No loop: the worker
(:mod:`.worker`) runs this for each row it claims.

A temporary failure goes back to the queue with capped, jittered exponential backoff
(``general.retry_base`` doubling up to ``general.retry_cap``) until
``general.max_attempts``; a permanent one (refused credentials, invalid data) is dead at
once with the vendor's reason.  A row held back untried (the vendor suspended, busy proving
its credentials, or out of request rate) waits without its attempt being counted.

Before a domain is deleted at a vendor that can say where it sends the domain's mail now
(``domain_current_route``), that route is compared with those this server gave it (the
destinations its creations and updates set, kept with the queue's ownership record and in
its rows, and ``general.mail_host``): when another destination took the domain over since
(the account moved to another server, which created it there), the deletion would bounce
that server's mail, so it is not made and the row ends ``skipped`` with the reason.

A delivery, every call and every wait of its hook included, runs inside a
:mod:`~spamfilter_plugin.deadline` scope of :data:`DELIVERY_SHARE` of the lease, so it is
over before the lease runs out and no other worker can take the row while it is still
being delivered; the rest of the lease is the margin for writing the outcome.  A worker
whose lease was nevertheless taken over writes nothing (every write names its lease).
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import deadline
from .errors import (
    SpamFilterError,
    VendorError,
    VendorHeld,
    VendorPaced,
    VendorSkipped,
    VendorWaiting,
)
from .events import DomainDeleted, Event, VendorStep
from .manager import Outcome, Runtime
from .queue import STATES, Queue, Row
from .redaction import get_logger
from .settle import plain_route

log = get_logger(__name__)

#: the part of ``lease_seconds`` a delivery may take, every call and wait included
DELIVERY_SHARE = 0.8

#: seconds before a row held back untried (the vendor busy proving credentials) comes due
HELD_WAIT = 1.0


@dataclass(frozen=True)
class Ready:
    """A claimed row's event, ready to deliver: its password opened and, for a domain's
    deletion, the destinations its server gave the domain at the vendor (none when it did
    not put the domain there: no check)."""

    event: Event
    destinations: tuple[str, ...] = ()


@dataclass
class Attempt:
    """What one delivery attempt came to, before it is recorded: the vendor's outcome, the
    result to record and the steps to queue."""

    outcome: Outcome
    recorded: Any = None
    steps: list = field(default_factory=list)
    #: how long the vendor's part took (seconds)
    seconds: float = 0.0


@dataclass
class Delivery:
    """One delivery attempt: the row as claimed, what the vendor made of it, and the state the
    row is in afterwards (one of the queue's :data:`~spamfilter_plugin.queue.STATES`).

    ``lease_lost`` is True when the lease expired during the call and another worker took the
    row over; this worker's outcome was then not recorded, and ``final_state`` is what the row
    holds now."""

    row: Row
    outcome: Outcome
    final_state: str
    lease_lost: bool = False
    #: how long the vendor's part took (seconds)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.final_state not in STATES:
            raise ValueError(f"final_state: {self.final_state!r} is not a queue state ({STATES})")


@dataclass
class Stats:
    """Counts of what a run of the worker delivered; with ``keep``, the deliveries too (a
    long run keeps counts only, so its memory does not grow with the queue)."""

    keep: bool = True
    deliveries: list[Delivery] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def add(self, delivery: Delivery) -> None:
        if self.keep:
            self.deliveries.append(delivery)
        if not delivery.lease_lost:
            self.counts[delivery.final_state] += 1

    @property
    def done(self) -> int:
        return self.counts["done"]

    @property
    def dead(self) -> int:
        return self.counts["dead"]

    @property
    def pending(self) -> int:
        """Rows this worker left pending: they failed temporarily and will be retried."""
        return self.counts["pending"]


def split_steps(vendor: str, result) -> tuple:
    """(the result to record, the steps it asks to queue): ``steps`` in a hook's result are
    :class:`~spamfilter_plugin.events.VendorStep` objects, recorded by name only.  Anything
    else there is a VendorError (a plugin bug), so nothing half-understood is queued."""
    if not isinstance(result, dict) or "steps" not in result:
        return result, []
    steps = result["steps"] or []
    if not isinstance(steps, (list, tuple)) or not all(isinstance(s, VendorStep) for s in steps):
        raise VendorError(
            vendor, f"a hook returned steps that are not VendorStep objects: {steps!r}"
        )
    return {**result, "steps": [s.step for s in steps]}, list(steps)


class Policy:
    """The per-row policy of one worker: *runtime* for the vendors, *queue* for the rows,
    *rng* for the backoff's jitter."""

    def __init__(
        self, runtime: Runtime, queue: Queue, *, rng: Callable[[], float] = random.random
    ) -> None:
        self.runtime, self.queue, self.rng = runtime, queue, rng
        self.general = runtime.config.general

    def backoff(self, attempts: int) -> float:
        """Delay after the *attempts*-th failure: half fixed, half random, doubling, capped."""
        window = min(self.general.retry_cap, self.general.retry_base * 2 ** (attempts - 1))
        return window / 2 + self.rng() * window / 2

    def prepare(self, row: Row) -> Ready | Outcome:
        """The row's event (its password opened, and for a deletion the destination to check
        for), or the failed Outcome that says why it cannot be delivered.  Reads the queue:
        call it where the queue is used."""
        if row.vendor not in self.runtime.contexts:
            error = VendorError(
                row.vendor,
                f"vendor {row.vendor!r} is no longer enabled; add [vendors.{row.vendor}] "
                "back and retry the row, or drop it",
            )
            return Outcome(row.vendor, False, error=error)
        try:
            event = self.queue.event_of(row)
            if not isinstance(event, DomainDeleted):
                return Ready(event)
            given = self.queue.destinations(row.vendor, event.domain.name, row.server)
        except SpamFilterError as exc:
            return Outcome(row.vendor, False, error=exc)
        fleet = self.runtime.config.fleet
        if None in given and row.server in (None, fleet and fleet.server):
            given.add(self.general.mail_host)  # where this server's creations go by default
        return Ready(event, tuple(sorted(d for d in given if d)))

    def taken_over(
        self, row: Row, event: DomainDeleted, destinations: Iterable[str]
    ) -> Outcome | None:
        """Before *event* deletes the domain: None when the vendor sends its mail to one of
        the *destinations* its server gave it (or does not hold it, or cannot say); else the
        Outcome that skips the deletion with the reason, or the failure that kept the
        answer from being known (tried again later)."""
        vendor = row.vendor
        if not self.runtime.handles(vendor, "domain_current_route"):
            return None
        found = self.runtime.call_isolated(vendor, "domain_current_route", domain=event.domain)
        if not found.ok or found.result is None:
            return found if not found.ok else None
        ours, failed = set(), None
        for host in destinations:
            try:
                ours.add(self.runtime.route(vendor, host))
            except SpamFilterError as exc:  # a host that does not resolve: the others may do
                failed = exc
        if not ours and failed is not None:
            return Outcome(vendor, False, error=failed)
        now = plain_route(found.result)
        if now in ours:
            return None
        error = VendorSkipped(
            vendor,
            f"mail for {event.domain.name} goes to {now} there, not to this server's "
            f"{' or '.join(sorted(ours))}: another destination took the domain over since, "
            "so it was not deleted",
        )
        log.info("queue row %d: %s", row.id, error)
        return Outcome(vendor, False, error=error)

    def attempt(self, row: Row, ready: Ready | Outcome, claimed_at: float | None = None) -> Attempt:
        """Deliver *event* to the row's vendor inside the delivery's time budget, and ask the
        built-in features for the steps that follow.  Touches no queue, so deliveries run
        side by side in threads.  The budget counts from *claimed_at* (this process's
        ``time.monotonic()`` when the lease was taken), so a delivery that started late,
        on a busy machine, still ends inside its lease."""
        if isinstance(ready, Outcome):
            return Attempt(ready)
        event = ready.event
        began = time.monotonic()
        spent = began - claimed_at if claimed_at is not None else 0.0
        with deadline.scope(self.general.lease_seconds * DELIVERY_SHARE - max(spent, 0.0)):
            outcome = None
            if isinstance(event, DomainDeleted) and ready.destinations:
                outcome = self.taken_over(row, event, ready.destinations)
            if outcome is None:
                outcome = self.runtime.call_isolated(row.vendor, row.hook, event=event)
        recorded, steps = outcome.result, []
        if outcome.ok:
            try:
                recorded, steps = split_steps(row.vendor, outcome.result)
                steps += self.runtime.after_delivery(row.vendor, row.hook, event)
            except VendorError as exc:
                outcome = Outcome(row.vendor, False, error=exc)
        return Attempt(outcome, recorded, steps, time.monotonic() - began)

    def record(self, row: Row, token: str, attempt: Attempt) -> Delivery:
        """Write the attempt's outcome under the row's lease: the Delivery as it ended (the
        row as it is now when the lease was taken over)."""
        state = self._write(row, token, attempt.outcome, attempt.recorded, attempt.steps)
        return self._ended(row, attempt.outcome, state, attempt.seconds)

    def record_all(self, ended: list[tuple[Row, str, Attempt]]) -> list[Delivery]:
        """:meth:`record` for each ``(row, token, attempt)``; the plain successes (no steps
        to queue) are written together (:meth:`~.store.base.Queue.complete_many`)."""
        plain = [(r, t, a) for r, t, a in ended if a.outcome.ok and not a.steps]
        held = (
            self.queue.complete_many([(r, t, a.recorded) for r, t, a in plain]) if plain else set()
        )
        return [
            self._ended(row, attempt.outcome, "done" if row.id in held else None, attempt.seconds)
            if attempt.outcome.ok and not attempt.steps
            else self.record(row, token, attempt)
            for row, token, attempt in ended
        ]

    def _ended(
        self, row: Row, outcome: Outcome, state: str | None, seconds: float = 0.0
    ) -> Delivery:
        """The Delivery of *row* that ended in *state* (None: its lease was taken over)."""
        if state is None:  # the lease was taken over: report the row as it is now
            log.warning(
                "queue row %d: the lease expired during delivery and another worker took it over",
                row.id,
            )
            current = self.queue.get(row.id)
            delivery = Delivery(row, outcome, current.state if current else "leased", True, seconds)
        else:
            delivery = Delivery(row, outcome, state, seconds=seconds)
        if not log.isEnabledFor(logging.DEBUG):  # the usual case: no record made at all
            return delivery
        log.debug(
            "queue row %d (%s %s %s, attempt %d): %s",
            row.id,
            row.vendor,
            row.hook,
            row.target,
            row.attempts,
            "done" if outcome.ok else f"{state}: {outcome.error}",
            extra={
                "vendor": row.vendor,
                "row": row.id,
                "hook": row.hook,
                "target": row.target,
                "attempt": row.attempts,
                "duration_s": round(seconds, 4),
                "outcome": delivery.final_state,
            },
        )
        return delivery

    def _write(self, row: Row, token: str, outcome: Outcome, result=None, steps=()) -> str | None:
        """Write the outcome under the lease; the row's new state, or None if the lease was lost."""
        queue = self.queue
        if outcome.ok:
            ok, state = queue.complete(row, token, result, steps), "done"
        elif isinstance(outcome.error, VendorSkipped):  # on purpose: nothing was sent
            ok, state = queue.skip(row, token, outcome.error), "skipped"
        elif isinstance(outcome.error, VendorHeld):  # nothing was sent: not an attempt
            retry_in = HELD_WAIT * (0.5 + self.rng())
            if isinstance(outcome.error, VendorPaced):  # when the vendor's rate has room
                retry_in = max(retry_in, outcome.error.retry_after)
            ok, state = queue.release(row, token, outcome.error, retry_in), "pending"
        else:
            error, note = outcome.error, ""
            assert error is not None  # a failed outcome carries its error
            retry: float | None
            if isinstance(error, VendorWaiting):  # the step decides when to stop waiting
                retry, state = self.backoff(row.attempts), "pending"
                if error.retry_within is not None:
                    retry = max(0.0, min(retry, error.retry_within))
            elif error.permanent:
                retry, state = None, "dead"
            elif row.attempts >= self.general.max_attempts:
                retry, state = None, "dead"
                note = f"gave up after {row.attempts} attempts (general.max_attempts): "
                where = {"vendor": row.vendor, "row": row.id, "hook": row.hook,
                         "target": row.target, "outcome": "dead"}  # fmt: skip
                log.error("queue row %d: %s%s", row.id, note, error, extra=where)
            else:
                retry, state = self.backoff(row.attempts), "pending"
            ok = queue.fail(row, token, error, retry, note=note)
        return state if ok else None
