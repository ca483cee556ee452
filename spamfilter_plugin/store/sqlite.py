"""The SQLite store: the queue as a transactional outbox under ``general.state_dir``, for
one server.

It implements :class:`~.base.Queue` and imports nothing above :mod:`..errors`,
:mod:`..events`, :mod:`.outbox` (the schema, opening the database, the key and appending
rows, on the standard library alone) and :mod:`..redaction`.  Events come in through
:func:`spamfilter_plugin.intake.enqueue`; workers (:mod:`spamfilter_plugin.worker`) claim
rows with a lease, deliver them, and record the outcome.

* Durability: WAL journal, ``synchronous=FULL``; the database and the key file are
  created 0600 in a 0700 directory.
* Ordering: a row is claimable only when no earlier row for the same vendor and
  target (``domain:x`` / ``mailbox:a@x``) is pending or leased, so each target's
  events reach each vendor in order, while other targets go on.
* Superseding: a new event may make undelivered (pending or dead) earlier ones
  pointless (see :data:`SUPERSEDES`); those rows end ``superseded`` and are never
  delivered, nor retried.
* Time: what orders or expires work (when a row is due, when a lease runs out) is kept
  on the machine's monotonic clock, which every process shares and which an NTP step or
  a changed wall clock does not move.  It restarts at boot, so the boot is recorded: in
  the first process after a reboot, every lease is void and every pending row is due.
  Wall-clock times (``created_at``, ``updated_at``) are for people and for ``purge``.
* Secrets: a password travelling with an event is encrypted with a key kept in its
  own 0600 file (Fernet: AES-128-CBC and HMAC-SHA256) and wiped from the row once
  the row is done, dead or superseded.  Secrets in results are encrypted too.
* Ownership: the ``provisioned`` table holds each (vendor, domain) whose creation the
  plugin delivered and whose deletion it has not, written in the transaction that records
  the delivery, so it outlives ``purge``; reconcile removes only these unless told otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import SpamFilterError
from ..events import Event, event_from_dict
from ..redaction import Secret
from . import STATES, STEP_HOOK, outbox
from .base import Item, Queue, Row, row_of
from .outbox import DB_NAME, SecretBox, Transaction, queue_error


def split_result(result: Any) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """(the result with Secret values masked, {key: secret value})."""
    if result is None:
        return None, {}
    if not isinstance(result, dict):
        result = {"value": result}
    public, secrets = {}, {}
    for key, value in result.items():
        if isinstance(value, Secret):
            public[key], secrets[key] = "***", value.reveal()
        else:
            public[key] = value
    return public, secrets


#: a row is claimable only when no earlier row of its vendor and target is being delivered or
#: waiting (a step waiting to be tried again holds no later event up)
IN_ORDER = (
    "NOT EXISTS (SELECT 1 FROM events p WHERE p.vendor=e.vendor AND p.target=e.target "
    "AND p.id < e.id AND (p.state='leased' OR (p.state='pending' AND p.hook != :step)))"
)


def _fill_provisioned(db: sqlite3.Connection) -> None:
    """Once per database: fill ``provisioned`` from the delivered rows of a queue made
    before the table was (the newest delivered creation or deletion of each domain says)."""
    if db.execute("SELECT 1 FROM meta WHERE key='provisioned'").fetchone():
        return
    with Transaction(db):
        if db.execute("SELECT 1 FROM meta WHERE key='provisioned'").fetchone():
            return
        db.execute(
            "INSERT OR IGNORE INTO provisioned (vendor, domain, since) "
            "SELECT e.vendor, substr(e.target, 8), e.updated_at FROM events e JOIN "
            "(SELECT max(id) id FROM events WHERE hook IN ('domain_created','domain_deleted') "
            "AND state='done' AND target LIKE 'domain:%' GROUP BY vendor, target) m "
            "ON e.id = m.id WHERE e.hook = 'domain_created'"
        )
        db.execute("INSERT INTO meta (key, value) VALUES ('provisioned', '1')")


def _add_destination(db: sqlite3.Connection) -> None:
    """Once per database: give ``provisioned`` its ``destination`` column (a queue made
    before it kept none; its domains count as sent to ``general.mail_host``)."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(provisioned)")}
    if "destination" in columns:
        return
    with Transaction(db):
        columns = {r[1] for r in db.execute("PRAGMA table_info(provisioned)")}
        if "destination" not in columns:
            db.execute("ALTER TABLE provisioned ADD COLUMN destination TEXT")


DONE = (
    "UPDATE events SET state='done', secret=NULL, lease_until=NULL, lease_owner=NULL, "
    "updated_at=?, result=?, result_secret=?, last_error=NULL, error_type=NULL "
    "WHERE id=? AND lease_owner=?"
)

LEASE = (
    "UPDATE events SET state='leased', lease_until=?, lease_owner=?, "
    "attempts=attempts+1, updated_at=? WHERE id=?"
)

#: lease tokens: the owner (host and process), this process's random prefix and a counter,
#: so no two leases anywhere share one (and no token needs the system's randomness each time)
_TOKEN_PREFIX = uuid.uuid4().hex[:8]
_TOKEN_COUNT = itertools.count(1)


def lease_token(owner: str) -> str:
    return f"{owner}:{_TOKEN_PREFIX}{next(_TOKEN_COUNT):x}"


#: what a delivered domain event means for ownership: each hook's statement, and its values
#: from the vendor, the domain, the time and the destination the plugin set at the vendor
_OWNING = {
    "domain_created": (
        "INSERT INTO provisioned (vendor, domain, since, destination) VALUES (?,?,?,?) "
        "ON CONFLICT (vendor, domain) DO UPDATE SET destination=excluded.destination",
        lambda vendor, domain, now, destination: (vendor, domain, now, destination),
    ),
    "domain_updated": (
        "UPDATE provisioned SET destination=? WHERE vendor=? AND domain=?",
        lambda vendor, domain, now, destination: (destination, vendor, domain),
    ),
    "domain_deleted": (
        "DELETE FROM provisioned WHERE vendor=? AND domain=?",
        lambda vendor, domain, now, destination: (vendor, domain),
    ),
}


def _own(db: sqlite3.Connection, rows: Iterable[Row], now: float) -> None:
    """Record what delivered domain creations, updates and deletions mean for ownership and
    for the destination the plugin set at the vendor: one statement per kind.  (Two rows of
    one vendor and target are never leased at once, so their order does not matter.)"""
    values: dict[str, list[tuple]] = {}
    for row in rows:
        owning = _OWNING.get(row.hook)
        if owning is None or not row.target.startswith("domain:"):
            continue
        domain = row.target[len("domain:") :]
        values.setdefault(row.hook, []).append(
            owning[1](row.vendor, domain, now, row.payload.get("destination"))
        )
    for hook, rows_values in values.items():
        db.executemany(_OWNING[hook][0], rows_values)


def _translated(method):
    """Turn sqlite3 errors raised by a Queue method into a QueueError."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise queue_error(self.path, exc) from None

    return wrapper


class SqliteQueue(Queue):
    """The queue in ``state_dir/queue.sqlite3``.  One connection per instance; safe across
    processes.

    A database that cannot be used raises :class:`~spamfilter_plugin.errors.QueueError`.

    :param clock: the wall clock (times shown to people).
    :param monotonic: the clock that orders and expires work (machine-wide, never stepped).
    :param boot: this boot's identity (default :func:`boot_id`).
    """

    def __init__(
        self,
        state_dir: str | os.PathLike,
        *,
        clock=time.time,
        monotonic=time.monotonic,
        boot: str | None = None,
    ) -> None:
        super().__init__(clock=clock, monotonic=monotonic)
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / DB_NAME
        self.boot = boot
        self.box = SecretBox(self.state_dir)
        self._db: sqlite3.Connection | None = None
        self._batching = False

    @property
    def where(self) -> str:
        return str(self.path)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = self._connect()
        return self._db

    def _connect(self) -> sqlite3.Connection:
        db = outbox.connect(
            self.state_dir, clock=self.clock, monotonic=self.monotonic, boot=self.boot
        )
        db.row_factory = sqlite3.Row
        _add_destination(db)
        _fill_provisioned(db)
        return db

    def _offset(self) -> float:
        """Add to a stored monotonic time to get a wall-clock one."""
        return self.clock() - self.monotonic()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _change(self, sql: str, params: tuple) -> int:
        """One write statement in its own transaction: how many rows it changed."""
        with self._tx() as db:
            return db.execute(sql, params).rowcount

    def _tx(self):
        if self._batching:
            return contextlib.nullcontext(self.db)
        return Transaction(self.db)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every write made in the block (a worker recording several
        outcomes and claiming the next rows with one synced commit).  An error rolls back
        all of them."""
        if self._batching:
            yield
            return
        with Transaction(self.db):
            self._batching = True
            try:
                yield
            finally:
                self._batching = False

    # -- writing -----------------------------------------------------------------

    @_translated
    def append(self, items: list[Item]) -> list[list[int]]:
        """Write each item's rows, superseding what it makes pointless; one transaction."""
        db = self.db  # connecting creates state_dir (0700) before the key file goes into it
        sealed = outbox.seal_all(self.box, items)
        with self._tx():
            return outbox.insert_all(db, items, sealed, now=self.clock(), mono=self.monotonic())

    @_translated
    def claim(
        self,
        owner: str,
        lease_seconds: float,
        *,
        exclude: Iterable[str] = (),
        only: Iterable[int] | None = None,
        ignore_schedule: bool = False,
    ) -> tuple[Row, str] | None:
        """Lease the oldest deliverable row; return it with its lease token, or None."""
        now, wall = self.monotonic(), self.clock()
        exclude = list(exclude)
        where = [
            "((e.state='pending' AND (e.next_at <= :now OR :ignore)) OR (e.state='leased' "
            "AND e.lease_until < :now))",
            IN_ORDER,
        ]
        params: dict[str, Any] = {"now": now, "ignore": 1 if ignore_schedule else 0}
        params["step"] = STEP_HOOK
        if exclude:
            where.append(f"e.vendor NOT IN ({','.join(f':x{i}' for i in range(len(exclude)))})")
            params.update({f"x{i}": v for i, v in enumerate(exclude)})
        if only is not None:
            ids = list(only) or [-1]
            where.append(f"e.id IN ({','.join(f':o{i}' for i in range(len(ids)))})")
            params.update({f"o{i}": v for i, v in enumerate(ids)})
        with self._tx() as db:
            found = db.execute(
                f"SELECT id FROM events e WHERE {' AND '.join(where)} ORDER BY e.id LIMIT 1", params
            ).fetchone()
            if found is None:
                return None
            return self._lease(db, [found["id"]], owner, lease_seconds, now, wall)[0]

    @_translated
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
        """Lease up to ``slots[vendor]`` deliverable rows of each vendor, oldest first, in
        one transaction (a concurrent worker filling its free places); with *chosen*, only
        rows put in :meth:`choose`.  Each row comes with its own lease token."""
        now, wall = self.monotonic(), self.clock()
        # EXISTS, not IN: walks the vendor's rows in order and stops at the first free ones
        # (IN would read the whole chosen set, and sort, on every claim)
        only = " AND EXISTS (SELECT 1 FROM temp.chosen c WHERE c.id = e.id)" if chosen else ""
        queries = (
            "SELECT id FROM events e WHERE e.vendor=:vendor AND e.state='leased' "
            f"AND e.lease_until < :now AND {IN_ORDER}{only} ORDER BY e.id LIMIT :k",
            "SELECT id FROM events e WHERE e.vendor=:vendor AND e.state='pending' "
            f"AND (e.next_at <= :now OR :ignore) AND {IN_ORDER}{only} ORDER BY e.id LIMIT :k",
        )
        params: dict[str, Any] = {"now": now, "ignore": int(ignore_schedule), "step": STEP_HOOK}
        claimed = []
        with self._tx() as db:
            for vendor, free in slots.items():
                ids: list[int] = []
                for sql in queries:
                    if len(ids) < free:
                        found = db.execute(sql, {**params, "vendor": vendor, "k": free - len(ids)})
                        ids += [r["id"] for r in found]
                claimed += self._lease(db, ids, owner, lease_seconds, now, wall)
        return claimed

    @staticmethod
    def _lease(
        db, ids: list[int], owner: str, lease_seconds: float, now: float, wall: float
    ) -> list[tuple[Row, str]]:
        """Lease these rows (inside the caller's transaction), each with its own token: one
        update for them all, and one read of them back."""
        if not ids:
            return []
        tokens = [lease_token(owner) for _ in ids]
        until = now + lease_seconds
        db.executemany(LEASE, [(until, t, wall, i) for t, i in zip(tokens, ids, strict=True)])
        found = db.execute(
            f"SELECT * FROM events WHERE id IN ({','.join('?' * len(ids))})", ids
        ).fetchall()
        rows = {r["id"]: r for r in found}
        return [(row_of(rows[i], wall - now), t) for i, t in zip(ids, tokens, strict=True)]

    def _chosen_table(self) -> None:
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS chosen (id INTEGER PRIMARY KEY)")

    @_translated
    def choose(self, ids: Iterable[int], *, fresh: bool = False) -> None:
        """Add rows to the ones :meth:`claim_batch` takes with ``chosen=True`` (kept by this
        Queue object's connection only); *fresh* forgets those chosen before."""
        self._chosen_table()
        if fresh:
            self.db.execute("DELETE FROM temp.chosen")
        self.db.executemany(
            "INSERT OR IGNORE INTO temp.chosen (id) VALUES (?)", ((i,) for i in ids)
        )

    @_translated
    def chosen_waiting(self, within: float = 0.0) -> int:
        """How many chosen rows are still to be delivered within *within* seconds (pending
        and due by then, or leased)."""
        self._chosen_table()
        r = self.db.execute(
            "SELECT count(*) n FROM events WHERE id IN (SELECT id FROM temp.chosen) AND "
            "(state='leased' OR (state='pending' AND next_at <= ?))",
            (self.monotonic() + within,),
        ).fetchone()
        return r["n"]

    @_translated
    def chosen_rows(self, states: Iterable[str] = ("pending", "leased")) -> list[Row]:
        """The chosen rows (see :meth:`choose`) in one of *states*."""
        states = list(states)
        self._chosen_table()
        offset = self._offset()
        found = self.db.execute(
            "SELECT * FROM events WHERE id IN (SELECT id FROM temp.chosen) AND state IN "
            f"({','.join('?' * len(states))}) ORDER BY id",
            states,
        )
        return [row_of(r, offset) for r in found]

    @_translated
    def rows_after(self, upto: int, limit: int) -> list[tuple[Row, bytes | None]]:
        """Up to *limit* rows whose id is above *upto*, oldest first, each with its sealed
        password (what a relay into the fleet, or a move into it, copies)."""
        found = self.db.execute(
            "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (upto, limit)
        ).fetchall()
        offset = self._offset()
        return [(row_of(r, offset), r["secret"]) for r in found]

    @_translated
    def forget_upto(self, upto: int) -> int:
        """Remove the rows whose id is *upto* or below (relayed into the fleet already)."""
        if not upto:
            return 0
        return self._change("DELETE FROM events WHERE id <= ?", (upto,))

    @_translated
    def provisioned_all(self) -> list[tuple[str, str, float, str | None]]:
        """Every ``(vendor, domain, since, destination)`` the plugin provisioned from this
        queue."""
        found = self.db.execute(
            "SELECT vendor, domain, since, destination FROM provisioned ORDER BY 1, 2"
        )
        return [(r["vendor"], r["domain"], r["since"], r["destination"]) for r in found]

    @_translated
    def provisioned(self, vendor: str) -> set[str]:
        """The domains the plugin created at *vendor* and has not deleted there."""
        found = self.db.execute("SELECT domain FROM provisioned WHERE vendor=?", (vendor,))
        return {r["domain"] for r in found}

    @_translated
    def _execute(self, sql: str, args: list[Any]) -> int:
        with self._tx() as db:
            return db.execute(sql, args).rowcount

    @_translated
    def _query(self, sql: str, args: list[Any]) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute(sql, args)]

    @_translated
    def add_metrics(
        self,
        counts: Mapping[tuple[str, str], float],
        gauges: Mapping[tuple[str, str], float] | None = None,
    ) -> None:
        if not counts and not gauges:
            return
        with self._tx() as db:
            db.executemany(
                "INSERT INTO metrics (name, labels, value) VALUES (?,?,?) ON CONFLICT "
                "(name, labels) DO UPDATE SET value = value + excluded.value",
                [(n, lab, v) for (n, lab), v in counts.items()],
            )
            db.executemany(
                "INSERT INTO metrics (name, labels, value) VALUES (?,?,?) ON CONFLICT "
                "(name, labels) DO UPDATE SET value = excluded.value",
                [(n, lab, v) for (n, lab), v in (gauges or {}).items()],
            )

    @_translated
    def metrics(self) -> list[tuple[str, str, float]]:
        found = self.db.execute("SELECT name, labels, value FROM metrics ORDER BY 1, 2")
        return [(r["name"], r["labels"], r["value"]) for r in found]

    @_translated
    def vendor_summary(self) -> list[tuple[str, str, int, float | None]]:
        found = self.db.execute(
            "SELECT vendor, state, count(*) n, min(created_at) oldest FROM events "
            "GROUP BY vendor, state ORDER BY 1, 2"
        )
        return [(r["vendor"], r["state"], r["n"], r["oldest"]) for r in found]

    @_translated
    def suspensions(self) -> dict[str, tuple[float, str | None]]:
        found = self.db.execute("SELECT domain, since, reason FROM suspended")
        return {r["domain"]: (r["since"], r["reason"]) for r in found}

    @_translated
    def destinations(self, vendor: str, domain: str, server: str | None = None) -> set[str | None]:
        found = self.db.execute(
            "SELECT destination FROM provisioned WHERE vendor=? AND domain=? UNION "
            "SELECT json_extract(payload, '$.destination') FROM events WHERE vendor=? "
            "AND target=? AND hook IN ('domain_created','domain_updated')",
            (vendor, domain, vendor, f"domain:{domain}"),
        )
        return {r[0] for r in found}

    @_translated
    def open_rows(self, vendor: str, hooks: Iterable[str]) -> dict[str, Row]:
        """The newest pending, leased or dead row of any of *hooks* per target of *vendor*:
        what is still on its way there (or stopped on the way)."""
        hooks = list(hooks)
        marks = ",".join("?" * len(hooks))
        sql = (
            "SELECT e.* FROM events e JOIN (SELECT max(id) id FROM events WHERE vendor=? AND "
            f"hook IN ({marks}) AND state IN ('pending','leased','dead') GROUP BY target) m "
            "ON e.id = m.id"
        )
        offset = self._offset()
        return {r["target"]: row_of(r, offset) for r in self.db.execute(sql, (vendor, *hooks))}

    @_translated
    def ahead_of(self, row: Row) -> Row | None:
        """The earliest row of *row*'s vendor and target still waiting or being delivered
        before it (what keeps it from being claimed: order per target), or None."""
        r = self.db.execute(
            "SELECT * FROM events WHERE vendor=? AND target=? AND id<? "
            "AND state IN ('pending','leased') ORDER BY id LIMIT 1",
            (row.vendor, row.target, row.id),
        ).fetchone()
        return row_of(r, self._offset()) if r else None

    @_translated
    def event_of(self, row: Row) -> Event:
        """Rebuild the row's event, decrypting its password if it has one."""
        password = None
        if row.has_secret:
            blob = self.db.execute("SELECT secret FROM events WHERE id=?", (row.id,)).fetchone()[
                "secret"
            ]
            if blob is not None:
                password = Secret(self.box.open(blob))
        return event_from_dict(row.payload, password=password)

    @_translated
    def complete(
        self, row: Row, token: str, result: Any = None, steps: Iterable[Event] = ()
    ) -> bool:
        """Mark a leased row done (and wipe its secret), and queue the *steps* its vendor
        asked for, in one transaction; False (and nothing written) if the lease was lost."""
        public_text, sealed = self._stored_result(result)
        with self._tx() as db:
            held = db.execute(
                "SELECT 1 FROM events WHERE id=? AND lease_owner=?", (row.id, token)
            ).fetchone()
            if held is None:
                return False
            now, mono = self.clock(), self.monotonic()
            for step in steps:
                outbox.insert(
                    db, step.to_dict(), step.target_key, row.vendor, None, now=now, mono=mono
                )
            cur = db.execute(DONE, (self.clock(), public_text, sealed, row.id, token))
            _own(db, [row], now)
        return cur.rowcount == 1

    def _stored_result(self, result: Any) -> tuple[str | None, bytes | None]:
        """A delivery's result as a done row keeps it: the public part as JSON, the secret
        part sealed with the queue key."""
        public, secrets = split_result(result)
        sealed = self.box.seal(json.dumps(secrets)) if secrets else None
        return (json.dumps(public) if public is not None else None), sealed

    @_translated
    def complete_many(self, items: list[tuple[Row, str, Any]]) -> set[int]:
        """:meth:`complete` for rows without steps, in one transaction: the rows whose lease
        is still held are read first, and nothing is written for a row whose lease was lost
        (the update's own condition checks the lease again)."""
        if not items:
            return set()
        with self._tx() as db:
            now = self.clock()
            ids = [row.id for row, _token, _result in items]
            owners = dict(
                db.execute(
                    f"SELECT id, lease_owner FROM events WHERE id IN ({','.join('?' * len(ids))})",
                    ids,
                ).fetchall()
            )
            held = [item for item in items if item[1] and owners.get(item[0].id) == item[1]]
            db.executemany(
                DONE,
                [(now, *self._stored_result(result), row.id, token) for row, token, result in held],
            )
            _own(db, [row for row, _token, _result in held], now)
        return {row.id for row, _token, _result in held}

    @_translated
    def fail(
        self, row: Row, token: str, error: SpamFilterError, retry_in: float | None, note: str = ""
    ) -> bool:
        """Record a failure: pending again in *retry_in* seconds, or dead (secret wiped) when
        None.  False if the lease was lost."""
        now, message, kind = self.clock(), note + str(error), type(error).__name__
        with self._tx() as db:
            if retry_in is None:
                cur = db.execute(
                    "UPDATE events SET state='dead', secret=NULL, lease_until=NULL, "
                    "lease_owner=NULL, updated_at=?, last_error=?, error_type=? "
                    "WHERE id=? AND lease_owner=?",
                    (now, message, kind, row.id, token),
                )
            else:
                cur = db.execute(
                    "UPDATE events SET state='pending', next_at=?, lease_until=NULL, "
                    "lease_owner=NULL, updated_at=?, last_error=?, error_type=? "
                    "WHERE id=? AND lease_owner=?",
                    (self.monotonic() + retry_in, now, message, kind, row.id, token),
                )
        return cur.rowcount == 1

    @_translated
    def skip(self, row: Row, token: str, error: Exception) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE events SET state='skipped', secret=NULL, lease_until=NULL, "
                "lease_owner=NULL, updated_at=?, last_error=?, error_type=? "
                "WHERE id=? AND lease_owner=?",
                (self.clock(), str(error), type(error).__name__, row.id, token),
            )
            if cur.rowcount == 1 and row.target.startswith("domain:"):
                db.execute(
                    "DELETE FROM provisioned WHERE vendor=? AND domain=?",
                    (row.vendor, row.target[len("domain:") :]),
                )
        return cur.rowcount == 1

    @_translated
    def release(self, row: Row, token: str, error: SpamFilterError, retry_in: float) -> bool:
        """Give a row back untried (nothing was sent): pending again in *retry_in* seconds,
        the attempt not counted.  False if the lease was lost."""
        changed = self._change(
            "UPDATE events SET state='pending', next_at=?, attempts=max(attempts-1, 0), "
            "lease_until=NULL, lease_owner=NULL, updated_at=?, last_error=?, error_type=? "
            "WHERE id=? AND lease_owner=?",
            (
                self.monotonic() + retry_in,
                self.clock(),
                str(error),
                type(error).__name__,
                row.id,
                token,
            ),
        )
        return changed == 1

    # -- reading and admin ---------------------------------------------------------

    @_translated
    def get(self, row_id: int) -> Row | None:
        r = self.db.execute("SELECT * FROM events WHERE id=?", (row_id,)).fetchone()
        return row_of(r, self._offset()) if r else None

    @_translated
    def secret_result(self, row_id: int) -> dict[str, Secret]:
        """The secret parts of a row's result (a generated password, say), decrypted."""
        r = self.db.execute("SELECT result_secret FROM events WHERE id=?", (row_id,)).fetchone()
        if r is None or r["result_secret"] is None:
            return {}
        return {k: Secret(v) for k, v in json.loads(self.box.open(r["result_secret"])).items()}

    @_translated
    def rows(
        self,
        *,
        state: str | None = None,
        vendor: str | None = None,
        limit: int = 100,
        target: str | None = None,
    ) -> list[Row]:
        where, params = [], []
        if target:
            where.append("target=?")
            params.append(target)
        if state:
            where.append("state=?")
            params.append(state)
        if vendor:
            where.append("vendor=?")
            params.append(vendor)
        sql = (
            "SELECT * FROM events"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY id DESC LIMIT ?"
        )
        offset = self._offset()
        return [row_of(r, offset) for r in self.db.execute(sql, (*params, limit))]

    @_translated
    def targets(self) -> list[str]:
        """Every target the queue holds rows for (``domain:x``, ``mailbox:a@x``)."""
        return [r["target"] for r in self.db.execute("SELECT DISTINCT target FROM events")]

    @_translated
    def latest(self, hooks: Iterable[str]) -> dict[tuple[str, str], Row]:
        """The newest row of any of *hooks* per ``(vendor, target)``, superseded rows left
        out: what was last asked of each vendor for each target."""
        hooks = list(hooks)
        marks = ",".join("?" * len(hooks))
        sql = (
            "SELECT e.* FROM events e JOIN (SELECT max(id) id FROM events WHERE hook IN "
            f"({marks}) AND state != 'superseded' GROUP BY vendor, target) m ON e.id = m.id"
        )
        offset = self._offset()
        rows = (row_of(r, offset) for r in self.db.execute(sql, hooks))
        return {(row.vendor, row.target): row for row in rows}

    @_translated
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        out.update(
            {
                r["state"]: r["n"]
                for r in self.db.execute("SELECT state, count(*) n FROM events GROUP BY state")
            }
        )
        return out

    @_translated
    def next_due_in(self, *, after_now: bool = False) -> float | None:
        """Seconds until the next row comes due or a lease runs out (<= 0: now), or None.
        With *after_now*, only what comes due later than now counts (a row due already but
        held behind an earlier one of its target is freed by a delivery ending, not by time)."""
        now = self.monotonic()
        r = self.db.execute(
            "SELECT min(CASE WHEN state='pending' THEN next_at ELSE lease_until END) t FROM events "
            "WHERE state IN ('pending','leased') AND (NOT :after OR "
            "CASE WHEN state='pending' THEN next_at ELSE lease_until END > :now)",
            {"after": int(after_now), "now": now},
        ).fetchone()
        return None if r["t"] is None else r["t"] - now

    @_translated
    def waiting_vendors(self) -> list[str]:
        """The vendors that have rows pending or being delivered."""
        found = self.db.execute(
            "SELECT DISTINCT vendor FROM events WHERE state IN ('pending','leased')"
        )
        return [r["vendor"] for r in found]

    @_translated
    def retry(self, row_id: int) -> bool:
        """Make a dead row pending again, due now.  Its password, if it had one, is gone:
        a dead password reset is retried without it (the vendor generates one)."""
        changed = self._change(
            "UPDATE events SET state='pending', next_at=?, attempts=0, updated_at=? "
            "WHERE id=? AND state='dead'",
            (self.monotonic(), self.clock(), row_id),
        )
        return changed == 1

    @_translated
    def due_now(self, row_id: int) -> bool:
        """Make a pending row due now (an admin asked for it: its backoff is cut short)."""
        changed = self._change(
            "UPDATE events SET next_at=?, updated_at=? WHERE id=? AND state='pending'",
            (self.monotonic(), self.clock(), row_id),
        )
        return changed == 1

    @_translated
    def retry_all_dead(self) -> int:
        return self._change(
            "UPDATE events SET state='pending', next_at=?, attempts=0, updated_at=? "
            "WHERE state='dead'",
            (self.monotonic(), self.clock()),
        )

    @_translated
    def drop(self, row_id: int) -> bool:
        """Delete a row that is not being delivered right now."""
        changed = self._change(
            "DELETE FROM events WHERE id=? AND NOT (state='leased' AND lease_until >= ?)",
            (row_id, self.monotonic()),
        )
        return changed == 1

    @_translated
    def purge(self, older_than_seconds: float) -> int:
        """Delete done, superseded and skipped rows older than the given age."""
        return self._change(
            "DELETE FROM events WHERE state IN ('done','superseded','skipped') AND updated_at < ?",
            (self.clock() - older_than_seconds,),
        )

    # -- console sessions: kept here, so a logout or an expiry ends a session for every copy
    #    of its cookie (the cookie holds a random id; only its SHA-256 is stored) ----------

    @_translated
    def session_open(self, sid_hash: str, role: str, name: str, stamp: str) -> None:
        now = self.clock()
        self._change(
            "INSERT INTO sessions (id, role, name, stamp, created_at, seen_at) "
            "VALUES (?,?,?,?,?,?)",
            (sid_hash, role, name, stamp, now, now),
        )

    @_translated
    def session_get(self, sid_hash: str) -> dict[str, Any] | None:
        """The stored session (role, name, stamp, created_at, seen_at), or None."""
        r = self.db.execute("SELECT * FROM sessions WHERE id=?", (sid_hash,)).fetchone()
        return dict(r) if r else None

    @_translated
    def session_seen(self, sid_hash: str) -> None:
        self._change("UPDATE sessions SET seen_at=? WHERE id=?", (self.clock(), sid_hash))

    @_translated
    def session_end(self, sid_hash: str) -> bool:
        return self._change("DELETE FROM sessions WHERE id=?", (sid_hash,)) == 1

    @_translated
    def session_prune(self, idle_seconds: float, max_seconds: float) -> int:
        """Delete every session unused for *idle_seconds* or older than *max_seconds*."""
        now = self.clock()
        return self._change(
            "DELETE FROM sessions WHERE seen_at < ? OR created_at < ?",
            (now - idle_seconds, now - max_seconds),
        )
