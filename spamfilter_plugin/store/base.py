"""The interface of a queue store, and its rows.

Everything that reads or writes the queue does so through a :class:`Queue` (made by
:func:`spamfilter_plugin.queue.open_queue`); events go in only through
:func:`spamfilter_plugin.intake.enqueue`, which decides the vendors and calls
:meth:`Queue.append`.  A store keeps these promises, whatever database is behind it:

* **append**: rows are written in one transaction per call, superseding what each new event
  makes pointless (:data:`~spamfilter_plugin.store.SUPERSEDES`); a password is sealed,
  never stored plain;
* **claim with a lease**: a row is leased by one delivery at a time, for a time measured on a
  clock every worker shares; it is claimable only when no earlier row of its vendor and target
  is pending or leased (order per target);
* **complete, fail, release, skip**: each names the lease it holds and writes nothing when the
  lease was taken over; completing a domain's creation or deletion records its ownership
  (:meth:`Queue.provisioned`, with the destination the creation or a later update set) in the
  same transaction, and queues the steps the vendor asked for; a skipped deletion gives the
  ownership up;
* **list and manage**: rows by state, the newest per target, counts, retry, drop, purge;
* **console sessions**: opened, looked up, ended and pruned (only a hash of each id is kept).
"""

from __future__ import annotations

import contextlib
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from ..errors import QueueError
from ..events import Event
from ..redaction import Secret

#: what :meth:`Queue.append` takes: (an event's payload, its target key, its password or
#: None, the vendors it goes to)
Item = tuple[dict[str, Any], str, "str | None", list[str]]


@dataclass
class Row:
    """One delivery: an event for one vendor.  Times are wall-clock seconds since the epoch
    (``next_at`` and ``lease_until`` as of when the row was read)."""

    id: int
    event_id: str
    vendor: str
    hook: str
    target: str
    payload: dict[str, Any]
    has_secret: bool
    state: str
    attempts: int
    next_at: float
    lease_until: float | None
    lease_owner: str | None
    created_at: float
    updated_at: float
    last_error: str | None
    error_type: str | None
    result: dict[str, Any] | None
    #: in the fleet, the server that queued the row (None on a server's own queue)
    server: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, no secrets (secret result values show as ``"***"``)."""
        return dict(self.__dict__)


#: the columns of an API token: its name, the SHA-256 of the token (never the token), the
#: role (``admin``, ``reseller`` or ``account``) and whose (the panel user; empty for the
#: admin), and its times (wall clock; ``expires_at`` and ``last_used_at`` may be null)
TOKEN_FIELDS = ("name", "digest", "role", "subject", "created_at", "expires_at", "last_used_at")
#: a domain the API protects though no panel holds it (mail hosted elsewhere)
API_DOMAIN_FIELDS = ("domain", "destination", "owner", "added_by", "added_at")

#: the columns of an audit entry, after its id
AUDIT_FIELDS = (
    "at",
    "actor",
    "role",
    "origin",
    "action",
    "scope",
    "target",
    "vendor",
    "form",
    "changes",
    "outcome",
)


def audit_filter(
    since: float | None, target: str | None, actor: str | None, mark: str
) -> tuple[str, list[Any]]:
    """The WHERE clause of :meth:`Queue.audit_entries` (*mark*: the driver's placeholder)."""
    where: list[str] = []
    args: list[Any] = []
    if since is not None:
        where.append(f"at >= {mark}")
        args.append(since)
    if target is not None:
        where.append(f"(target = {mark} OR target LIKE {mark})")
        args += [target, f"%@{target}"]
    if actor is not None:
        where.append(f"actor = {mark}")
        args.append(actor)
    return (" WHERE " + " AND ".join(where) if where else ""), args


class Queue(ABC):
    """A queue store (see the module).  Errors are :class:`~..errors.QueueError`, worded
    with the store, the cause and the fix."""

    state_dir: Path

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the store keeps the queue, as messages name it (a file, a database)."""

    #: many servers share this store: each vendor's ``concurrency`` bounds its rows leased in
    #: the whole fleet (:meth:`claim_batch`), so a worker claims no rows ahead of its places
    shared = False

    def __init__(self, *, clock, monotonic) -> None:
        #: the wall clock (times shown to people) and the clock that orders and expires work
        self.clock, self.monotonic = clock, monotonic
        #: the vendors whose rows in flight were at their limit for the whole fleet when
        #: :meth:`claim_batch` last looked (a store many servers share; never one server's):
        #: a place frees only when one of those deliveries ends
        self.full: set[str] = set()

    # -- writing ------------------------------------------------------------------------

    @abstractmethod
    def append(self, items: list[Item]) -> list[list[int]]:
        """Write the rows of each item in one transaction; the row ids per item."""

    @abstractmethod
    def batch(self) -> contextlib.AbstractContextManager[None]:
        """One transaction for every write made in the block."""

    # -- claiming and recording ------------------------------------------------------

    @abstractmethod
    def claim(
        self,
        owner: str,
        lease_seconds: float,
        *,
        exclude: Iterable[str] = (),
        only: Iterable[int] | None = None,
        ignore_schedule: bool = False,
    ) -> tuple[Row, str] | None:
        """Lease the oldest deliverable row; it with its lease token, or None."""

    @abstractmethod
    def claim_batch(
        self,
        owner: str,
        lease_seconds: float,
        slots: dict[str, int],
        *,
        chosen: bool = False,
        ignore_schedule: bool = False,
        limits: Mapping[str, int] | None = None,
    ) -> list[tuple[Row, str]]:
        """Lease up to ``slots[vendor]`` deliverable rows of each vendor, oldest first.  A
        store that many servers share also keeps each vendor's rows in flight within
        ``limits[vendor]`` in all (one server's store: its workers' own places do)."""

    @abstractmethod
    def choose(self, ids: Iterable[int], *, fresh: bool = False) -> None:
        """Add rows to those :meth:`claim_batch` takes with ``chosen=True``."""

    @abstractmethod
    def chosen_waiting(self, within: float = 0.0) -> int:
        """How many chosen rows are still to be delivered within *within* seconds."""

    @abstractmethod
    def chosen_rows(self, states: Iterable[str] = ("pending", "leased")) -> list[Row]:
        """The chosen rows in one of *states*."""

    @abstractmethod
    def event_of(self, row: Row) -> Event:
        """The row's event, its password opened."""

    @abstractmethod
    def complete(
        self, row: Row, token: str, result: Any = None, steps: Iterable[Event] = ()
    ) -> bool:
        """The row is done: its result recorded, its secret wiped, ownership recorded and the
        *steps* queued, in one transaction; False (nothing written) if the lease was lost."""

    def complete_many(self, items: list[tuple[Row, str, Any]]) -> set[int]:
        """:meth:`complete` for each ``(row, token, result)`` of *items* (without steps), in
        one transaction; the ids of the rows whose lease held (a store may write them all
        in one statement)."""
        with self.batch():
            return {row.id for row, token, result in items if self.complete(row, token, result)}

    @abstractmethod
    def fail(
        self, row: Row, token: str, error: Exception, retry_in: float | None, *, note: str = ""
    ) -> bool:
        """The attempt failed: pending again in *retry_in* seconds, or dead (None)."""

    @abstractmethod
    def release(self, row: Row, token: str, error: Exception, retry_in: float) -> bool:
        """Nothing was sent: the row waits *retry_in* seconds, the attempt not counted."""

    @abstractmethod
    def skip(self, row: Row, token: str, error: Exception) -> bool:
        """Nothing was sent, on purpose (*error* says why: another server's destination took
        the domain over): the row ends ``skipped``, its secret wiped, and a domain's
        ownership is given up, in one transaction; False if the lease was lost."""

    # -- reading ----------------------------------------------------------------------

    @abstractmethod
    def get(self, row_id: int) -> Row | None: ...

    @abstractmethod
    def secret_result(self, row_id: int) -> dict[str, Secret]:
        """The secret parts of a row's result, opened."""

    @abstractmethod
    def rows(
        self,
        *,
        state: str | None = None,
        vendor: str | None = None,
        limit: int = 100,
        target: str | None = None,
    ) -> list[Row]:
        """Rows, newest first (of one *target*, ``domain:x`` or ``mailbox:a@x``, if given)."""

    @abstractmethod
    def targets(self) -> list[str]:
        """Every target the queue holds rows for."""

    @abstractmethod
    def latest(self, hooks: Iterable[str]) -> dict[tuple[str, str], Row]:
        """The newest row of any of *hooks* per (vendor, target), superseded ones left out."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """How many rows are in each state."""

    @abstractmethod
    def next_due_in(self, *, after_now: bool = False) -> float | None:
        """Seconds until the next row comes due or a lease runs out, or None."""

    @abstractmethod
    def waiting_vendors(self) -> list[str]:
        """The vendors with rows pending or being delivered."""

    @abstractmethod
    def provisioned(self, vendor: str) -> set[str]:
        """The domains the plugin created at *vendor* and has not deleted there."""

    @abstractmethod
    def add_metrics(
        self,
        counts: Mapping[tuple[str, str], float],
        gauges: Mapping[tuple[str, str], float] | None = None,
    ) -> None:
        """Add *counts* to the operations counters, each ``(name, labels)`` with its labels as
        sorted JSON, and set *gauges* to their values; one write.
        Kept in the store so what a short-lived process delivered is still counted when the
        metrics are read (:mod:`~spamfilter_plugin.metrics`)."""

    @abstractmethod
    def metrics(self) -> list[tuple[str, str, float]]:
        """Every counter and gauge of :meth:`add_metrics` as ``(name, labels, value)``."""

    @abstractmethod
    def vendor_summary(self) -> list[tuple[str, str, int, float | None]]:
        """Per vendor and state: ``(vendor, state, rows, oldest)``, *oldest* the wall-clock
        time the oldest of those rows was queued."""

    #: the driver's placeholder in the SQL this class writes for its stores
    MARK = "?"

    def audit_add(self, entry: Mapping[str, Any]) -> None:
        """Append one audit entry (:data:`AUDIT_FIELDS`, ``changes`` as JSON text); entries
        are never changed, only purged when old (:meth:`audit_purge`)."""
        marks = ", ".join([self.MARK] * len(AUDIT_FIELDS))
        self._execute(
            f"INSERT INTO audit ({', '.join(AUDIT_FIELDS)}) VALUES ({marks})",
            [entry[k] for k in AUDIT_FIELDS],
        )

    def audit_entries(
        self,
        *,
        since: float | None = None,
        target: str | None = None,
        actor: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """Audit entries, newest first: since a wall-clock time, of one target (a domain
        also matches its mailboxes), of one actor."""
        where, args = audit_filter(since, target, actor, self.MARK)
        return self._query(
            f"SELECT id, {', '.join(AUDIT_FIELDS)} FROM audit{where} "
            f"ORDER BY at DESC, id DESC LIMIT {self.MARK}",
            [*args, limit],
        )

    def audit_purge(self, before: float) -> int:
        """Delete the audit entries made before *before* (wall clock); how many."""
        return self._execute(f"DELETE FROM audit WHERE at < {self.MARK}", [before])

    # -- API tokens (only their digests are kept) -------------------------------------------

    def token_add(self, token: Mapping[str, Any]) -> bool:
        """Keep a new API token (:data:`TOKEN_FIELDS`); False when its name is taken."""
        if self.token_named(token["name"]) is not None:
            return False
        marks = ", ".join([self.MARK] * len(TOKEN_FIELDS))
        self._execute(
            f"INSERT INTO tokens ({', '.join(TOKEN_FIELDS)}) VALUES ({marks})",
            [token[k] for k in TOKEN_FIELDS],
        )
        return True

    def token_named(self, name: str) -> dict[str, Any] | None:
        found = self._query(
            f"SELECT {', '.join(TOKEN_FIELDS)} FROM tokens WHERE name = {self.MARK}", [name]
        )
        return found[0] if found else None

    def token_by_digest(self, digest: str) -> dict[str, Any] | None:
        """The token whose digest is *digest*, or None."""
        found = self._query(
            f"SELECT {', '.join(TOKEN_FIELDS)} FROM tokens WHERE digest = {self.MARK}", [digest]
        )
        return found[0] if found else None

    def tokens(self) -> list[dict[str, Any]]:
        """Every API token (without a way back to the token itself), by name."""
        return self._query(f"SELECT {', '.join(TOKEN_FIELDS)} FROM tokens ORDER BY name", [])

    def token_used(self, name: str, at: float) -> None:
        self._execute(
            f"UPDATE tokens SET last_used_at = {self.MARK} WHERE name = {self.MARK}", [at, name]
        )

    def token_remove(self, name: str) -> bool:
        """Revoke the token *name*; whether there was one."""
        return self._execute(f"DELETE FROM tokens WHERE name = {self.MARK}", [name]) > 0

    # -- domains owned by the API (no panel holds them) -------------------------------------

    def api_domain_keep(
        self, domain: str, destination: str, owner: str | None, added_by: str, at: float
    ) -> None:
        """Keep *domain* as the API's, its clean mail going to *destination*, the console
        user *owner*'s (a billing system's customer; None: the admin's only).  A second
        call changes the destination and the owner."""
        marks = ", ".join([self.MARK] * len(API_DOMAIN_FIELDS))
        self._execute(
            f"INSERT INTO api_domains ({', '.join(API_DOMAIN_FIELDS)}) VALUES ({marks}) "
            "ON CONFLICT (domain) DO UPDATE SET destination = excluded.destination, "
            "owner = excluded.owner",
            [domain, destination, owner, added_by, at],
        )

    def api_domains(self) -> dict[str, dict[str, Any]]:
        """The domains the API owns, each with its destination, who added it and when."""
        found = self._query(f"SELECT {', '.join(API_DOMAIN_FIELDS)} FROM api_domains", [])
        return {row["domain"]: row for row in found}

    def api_domain_drop(self, domain: str) -> bool:
        """*domain* is no longer the API's; whether it was."""
        return self._execute(f"DELETE FROM api_domains WHERE domain = {self.MARK}", [domain]) > 0

    @abstractmethod
    def _execute(self, sql: str, args: list[Any]) -> int:
        """Run one statement (of the SQL this class writes) in a transaction; the rows it
        touched."""

    @abstractmethod
    def _query(self, sql: str, args: list[Any]) -> list[dict[str, Any]]:
        """The rows of one query (of the SQL this class writes)."""

    @abstractmethod
    def suspensions(self) -> dict[str, tuple[float, str | None]]:
        """The domains whose accounts the panel suspended, each with since when (wall
        clock, as the suspension was queued) and the panel's reason."""

    @abstractmethod
    def destinations(self, vendor: str, domain: str, server: str | None = None) -> set[str | None]:
        """The destinations the plugin set, or set out to set, for *domain* at *vendor*: the
        one its ``provisioned`` record keeps (its creation's, or a later update's) and those
        of the domain's creations and updates still in the queue (of *server*'s rows only,
        when given, in a store that keeps servers).  None stands for a creation that named
        none (``general.mail_host``); an empty set means the plugin never put the domain
        there."""

    @abstractmethod
    def open_rows(self, vendor: str, hooks: Iterable[str]) -> dict[str, Row]:
        """The newest pending, leased or dead row of any of *hooks* per target of *vendor*."""

    @abstractmethod
    def ahead_of(self, row: Row) -> Row | None:
        """The earliest row still waiting or being delivered before *row* (its target)."""

    # -- managing ----------------------------------------------------------------------

    @abstractmethod
    def retry(self, row_id: int) -> bool:
        """A dead row pending again, due now."""

    @abstractmethod
    def due_now(self, row_id: int) -> bool:
        """A pending row due now."""

    @abstractmethod
    def retry_all_dead(self) -> int: ...

    @abstractmethod
    def drop(self, row_id: int) -> bool:
        """Delete a row that is not being delivered."""

    @abstractmethod
    def purge(self, older_than_seconds: float) -> int:
        """Delete done, superseded and skipped rows older than that."""

    # -- console sessions ----------------------------------------------------------------

    @abstractmethod
    def session_open(self, sid_hash: str, role: str, name: str, stamp: str) -> None: ...

    @abstractmethod
    def session_get(self, sid_hash: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def session_seen(self, sid_hash: str) -> None: ...

    @abstractmethod
    def session_end(self, sid_hash: str) -> bool: ...

    @abstractmethod
    def session_prune(self, idle_seconds: float, max_seconds: float) -> int: ...

    @abstractmethod
    def close(self) -> None: ...

    def relay(self, limit: int = 500, *, every: float = 0.0) -> int:
        """Bring in the rows this server's panel hooks wrote locally, where the store is
        not the local outbox itself (fleet mode); how many came in.  With *every*, at most
        once in that many seconds."""
        return 0

    def check(self) -> str | None:
        """A problem with the store that ``spamfilter check`` reports (one line, with its
        fix), or None."""
        return None

    @contextlib.contextmanager
    def on_behalf_of(self, server: str | None) -> Iterator[None]:
        """Within this block, rows are queued as *server*'s (in a fleet: an admin's action
        on a domain another server's panel holds); None, or one server's queue: as usual."""
        yield

    def wait(self, stop: threading.Event, seconds: float) -> None:
        """Wait up to *seconds* for new rows (or *stop*); a store that can tell when rows
        arrive wakes the worker at once, the others just wait."""
        stop.wait(seconds)

    def publish_inventory(self, domains: Mapping[str, str | None]) -> int:
        """Make *domains* this server's panel list in a shared store (fleet mode)."""
        raise QueueError(f"{self.where} is one server's queue; publishing is for a fleet")

    def fleet_inventory(self) -> tuple[dict[str, tuple[str, str | None]], dict[str, float]]:
        """Every server's published panel list, and when each published (fleet mode)."""
        raise QueueError(f"{self.where} is one server's queue; it keeps no fleet's lists")

    def local_waiting(self, limit: int = 100) -> list[Row]:
        """The rows of this server's local outbox not in this queue yet (fleet mode)."""
        return []

    def relayed(self, local_ids: Iterable[int]) -> dict[int, int]:
        """This queue's row id of each row written to the local outbox (where the queue is
        that outbox, the same ids)."""
        return {i: i for i in local_ids}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def row_of(r: Any, offset: float = 0.0) -> Row:
    """A :class:`Row` from a database row read by column name (a ``sqlite3.Row`` or a dict);
    *offset* turns its stored scheduling times into wall-clock ones."""
    return Row(
        id=r["id"],
        event_id=r["event_id"],
        vendor=r["vendor"],
        hook=r["hook"],
        target=r["target"],
        payload=json.loads(r["payload"]),
        has_secret=r["secret"] is not None,
        state=r["state"],
        attempts=r["attempts"],
        next_at=r["next_at"] + offset,
        lease_until=r["lease_until"] + offset if r["lease_until"] is not None else None,
        lease_owner=r["lease_owner"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        last_error=r["last_error"],
        error_type=r["error_type"],
        result=json.loads(r["result"]) if r["result"] else None,
        server=_server(r),
    )


def _server(r: Any) -> str | None:
    """The row's server, where the store keeps one (the fleet's does, SQLite's does not)."""
    try:
        return r["server"]
    except (IndexError, KeyError):
        return None
