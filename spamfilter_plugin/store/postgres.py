"""The PostgreSQL store: one queue that many panel servers share (fleet mode, ``[fleet]``).

It implements :class:`~.base.Queue` with the same promises as the SQLite store (see
:mod:`.sqlite`), held for the whole fleet:

* **Leases on the database's clock.**  When a row is due and when a lease runs out are
  seconds since the epoch as the database server tells them, never a panel server's own
  clock, so a server whose clock was stepped cannot take over a live lease.
* **Claims** lease rows with ``SELECT ... FOR UPDATE SKIP LOCKED``: two workers, on one
  server or on two, never lease one row, and neither waits for the other.
* **Order per target, fleet-wide**: a row is claimable only when no earlier row of its
  vendor and target is pending or leased; an append takes a transaction-scoped advisory lock
  per target, so rows of one target are numbered in the order their transactions commit.
* **Superseding** is fleet-wide, as on one server.
* **Ownership**: the fleet knows which server's panel holds each domain (the latest
  creation wins).  A deletion of a domain, or of one of its mailboxes, queued by a server
  that no longer holds it is written ``skipped``, with the reason, and never reaches the
  vendor: an account moved from server A to server B is not deleted at the vendor by A's
  removal of it.
* **Secrets** are sealed with the fleet key (``[fleet] key``) that every server holds a copy
  of; the database sees only sealed bytes, and every value travels as a query parameter.
* **The panel hook never touches the network**: it writes the server's local SQLite outbox
  as on one server, and the worker relays those rows here (:meth:`PostgresQueue.relay`),
  exactly once: the rows and the new relay mark are written in one transaction, keyed by
  server and local row id.

The schema is versioned (:data:`MIGRATIONS`); ``spamfilter fleet init`` applies it, and a
queue opened against a database whose schema is older or newer than this code is refused
with the fix.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from .. import deadline
from ..config.model import FleetConfig
from ..errors import ConfigError, QueueError, SpamFilterError, VendorBusy
from ..events import Event, event_from_dict
from ..files import JsonStore
from ..guard import LOCK_WAIT, VendorGuard
from ..keyfile import create_key, read_key
from ..ratelimit import paced
from ..redaction import Secret
from . import STATES, STEP_HOOK, SUPERSEDES
from .base import Item, Queue, Row, row_of
from .mx import COLUMNS as MX_COLUMNS
from .mx import FILE as MX_FILE
from .mx import MxState, MxStore, mx_changes, mx_state
from .outbox import DB_NAME, SUSPENSION_HOOKS, SecretBox, note_suspension
from .sqlite import SqliteQueue, split_result

#: the schema, one entry per version; a new version appends an entry (never edits one)
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE events (
        id            bigserial PRIMARY KEY,
        event_id      text NOT NULL,
        vendor        text NOT NULL,
        hook          text NOT NULL,
        target        text NOT NULL,
        payload       text NOT NULL,
        secret        bytea,
        state         text NOT NULL DEFAULT 'pending',
        attempts      integer NOT NULL DEFAULT 0,
        next_at       double precision NOT NULL,
        lease_until   double precision,
        lease_owner   text,
        created_at    double precision NOT NULL,
        updated_at    double precision NOT NULL,
        last_error    text,
        error_type    text,
        result        text,
        result_secret bytea,
        server        text NOT NULL,
        origin_id     bigint,
        UNIQUE (server, origin_id)
    );
    CREATE INDEX events_due ON events (state, next_at);
    CREATE INDEX events_order ON events (vendor, target, id);
    CREATE INDEX events_event ON events (event_id);
    CREATE INDEX events_claim ON events (vendor, state, id);
    CREATE INDEX events_open ON events (vendor, target, id) WHERE state IN ('pending','leased');
    CREATE INDEX events_leased ON events (vendor) WHERE state = 'leased';
    CREATE TABLE fleet_meta (key text PRIMARY KEY, value text NOT NULL);
    CREATE TABLE sessions (
        id         text PRIMARY KEY,
        role       text NOT NULL,
        name       text NOT NULL,
        stamp      text NOT NULL,
        created_at double precision NOT NULL,
        seen_at    double precision NOT NULL
    );
    CREATE TABLE suspended (
        domain text PRIMARY KEY,
        since  double precision NOT NULL,
        reason text
    );
    CREATE TABLE provisioned (
        vendor text NOT NULL,
        domain text NOT NULL,
        since  double precision NOT NULL,
        destination text,
        PRIMARY KEY (vendor, domain)
    );
    CREATE TABLE holders (
        domain  text PRIMARY KEY,
        server  text NOT NULL,
        since   double precision NOT NULL,
        present boolean NOT NULL DEFAULT true
    );
    CREATE TABLE relayed (
        server text PRIMARY KEY,
        upto   bigint NOT NULL
    );
    CREATE TABLE inventory (
        server      text NOT NULL,
        domain      text NOT NULL,
        destination text,
        PRIMARY KEY (server, domain)
    );
    CREATE INDEX inventory_domain ON inventory (domain);
    CREATE TABLE inventory_published (
        server text PRIMARY KEY,
        at     double precision NOT NULL
    );
    CREATE TABLE documents (
        name text PRIMARY KEY,
        body text NOT NULL
    );
    CREATE TABLE mx (
        domain      text PRIMARY KEY,
        vendor      text NOT NULL,
        state       text NOT NULL,
        detail      text NOT NULL DEFAULT '',
        recorded    text,
        seen        text,
        switched_at double precision,
        checked_at  double precision,
        updated_at  double precision NOT NULL
    );
    CREATE TABLE rate_slots (
        account text NOT NULL,
        at      double precision NOT NULL
    );
    CREATE INDEX rate_slots_account ON rate_slots (account, at);
    CREATE TABLE vendor_guard (
        vendor      text PRIMARY KEY,
        suspended   boolean NOT NULL DEFAULT false,
        reason      text,
        since       text,
        salt        text,
        fingerprint text
    );
    """,
    # 2: the operations counters and gauges (spamfilter_plugin.metrics), the audit log
    """
    CREATE TABLE audit (
        id      bigserial PRIMARY KEY,
        at      double precision NOT NULL,
        actor   text NOT NULL,
        role    text NOT NULL,
        origin  text NOT NULL,
        action  text NOT NULL,
        scope   text NOT NULL,
        target  text NOT NULL,
        vendor  text NOT NULL,
        form    text NOT NULL,
        changes text NOT NULL,
        outcome text NOT NULL
    );
    CREATE INDEX audit_at ON audit (at);
    CREATE INDEX audit_target ON audit (target, at);
    CREATE TABLE metrics (
        name   text NOT NULL,
        labels text NOT NULL,
        value  double precision NOT NULL,
        PRIMARY KEY (name, labels)
    );
    """,
    # 3: the JSON API's tokens (their SHA-256 digests, never the tokens)
    """
    CREATE TABLE tokens (
        name         text PRIMARY KEY,
        digest       text NOT NULL UNIQUE,
        role         text NOT NULL,
        subject      text NOT NULL,
        created_at   double precision NOT NULL,
        expires_at   double precision,
        last_used_at double precision
    );
    """,
    # 4: the domains the JSON API protects though no panel holds them
    """
    CREATE TABLE api_domains (
        domain      text PRIMARY KEY,
        destination text NOT NULL,
        owner       text,
        added_by    text NOT NULL,
        added_at    double precision NOT NULL
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

#: what the fleet key seals at ``fleet init``, so every server can prove it holds the key
KEY_PROOF = "spamfilter-plugin fleet key"

#: the database's clock, unless a test gives its own (``%(now)s``)
NOW = "COALESCE(%(now)s::float8, extract(epoch from statement_timestamp()))"

#: (the partial index ``events_open`` answers it from the open rows alone)
#: a step (``vendor_step``) is a follow-up that may need the panel of the server whose row
#: queued it (an MX switch, a TXT record to publish): only that server's workers take it;
#: any server's worker delivers the vendors' lifecycle events
MINE = "(e.hook != %(step)s OR e.server = %(me)s)"

#: order per target; ``OFFSET 0`` keeps the planner from turning the test into a join, which
#: on a table without statistics yet (a new fleet, a busy hour before autovacuum's analyze)
#: it ran as a scan of every open row of the vendor for each candidate: as a subplan it looks
#: up the candidate's own target in ``events_open``
IN_ORDER = (
    "NOT EXISTS (SELECT 1 FROM events p WHERE p.vendor=e.vendor AND p.target=e.target "
    "AND p.id < e.id AND p.state IN ('pending','leased') "
    "AND (p.state='leased' OR p.hook != %(step)s) OFFSET 0)"
)

#: the channel a server's append wakes the fleet's waiting workers on
CHANNEL = "spamfilter_rows"

#: a connection whose rows are dicts (``row_factory=dict_row``)
DB = psycopg.Connection[Any]

#: connections a process opens to the fleet's database at most (a worker uses one for the
#: queue, one while it tries unproven credentials, and a few for moments)
POOL_SIZE = 12

_pools: dict[tuple[str, str], ConnectionPool[DB]] = {}
_pools_lock = threading.Lock()


def _conninfo(fleet: FleetConfig) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "connect_timeout": max(1, round(fleet.connect_timeout)),
        "application_name": f"spamfilter-plugin {fleet.server}",
        "autocommit": True,
        "row_factory": dict_row,
    }
    if fleet.password is not None:
        extra["password"] = fleet.password.reveal()
    return extra


def unreachable(fleet: FleetConfig, exc: BaseException) -> QueueError:
    """A connection failure as one line: the server, the cause, the fix."""
    cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return QueueError(
        f"the fleet database {shown(fleet.url)} cannot be reached ({cause}); check [fleet] "
        "url and password and that PostgreSQL is running; the panel hooks keep queueing "
        "locally meanwhile",
        temporary=True,
    )


def shown(url: str) -> str:
    return url.split("?", 1)[0]


def pool_of(fleet: FleetConfig) -> ConnectionPool[DB]:
    """This process's connection pool for *fleet* (made on first use)."""
    key = (fleet.url, fleet.server)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = ConnectionPool(
                fleet.url,
                kwargs=_conninfo(fleet),
                min_size=1,
                max_size=POOL_SIZE,
                timeout=fleet.connect_timeout,
                open=False,
                name=f"spamfilter-{fleet.server}",
            )
            pool.open(wait=False)
            _pools[key] = pool
    return pool


def close_pools() -> None:
    """Close every pool this process opened (at exit, and between tests)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


@contextlib.contextmanager
def pooled(fleet: FleetConfig) -> Iterator[DB]:
    """A connection of this process's pool for a moment; QueueError (temporary), in one line,
    when the database cannot be reached."""
    try:
        with pool_of(fleet).connection() as db:
            yield db
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise unreachable(fleet, exc) from None


def connect(fleet: FleetConfig) -> DB:
    """A connection of its own (not pooled) to the fleet database; QueueError when it
    cannot be made within ``connect_timeout``."""
    try:
        return psycopg.connect(fleet.url, **_conninfo(fleet))
    except psycopg.Error as exc:
        raise unreachable(fleet, exc) from None


def _one(found: Any) -> Any:
    """The row a statement that always yields one gave."""
    if found is None:
        raise QueueError("the fleet database gave no row where one is always given")
    return found


def schema_version(db: DB) -> int:
    """The version of the schema in the database (0: none yet)."""
    found = db.execute("SELECT to_regclass('fleet_schema') AS t").fetchone()
    if found is None or found["t"] is None:
        return 0
    row = _one(db.execute("SELECT max(version) AS v FROM fleet_schema").fetchone())
    return int(row["v"] or 0)


def migrate(db: DB) -> tuple[int, int]:
    """Apply what the schema lacks, one version per transaction, holding an advisory lock
    so that two servers running ``fleet init`` at once do it once; (before, after)."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(hashtext('spamfilter-plugin schema'))")
        db.execute("CREATE TABLE IF NOT EXISTS fleet_schema (version integer PRIMARY KEY)")
        before = schema_version(db)
        if before > SCHEMA_VERSION:
            raise QueueError(newer_schema(before))
        for version in range(before + 1, SCHEMA_VERSION + 1):
            db.execute(MIGRATIONS[version - 1])
            db.execute("INSERT INTO fleet_schema (version) VALUES (%s)", (version,))
    return before, SCHEMA_VERSION


def newer_schema(version: int) -> str:
    return (
        f"the fleet database has schema version {version}, newer than this release knows "
        f"({SCHEMA_VERSION}); upgrade spamfilter-plugin on this server to the fleet's release"
    )


class FleetKey(SecretBox):
    """The fleet key (``[fleet] key``): seals passwords in shared rows.  It is made by
    ``spamfilter fleet init`` and copied to every server; a server never makes its own."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._fernet = None

    def _load(self):
        if self._fernet is None:
            from cryptography.fernet import Fernet

            fix = "copy the fleet key from a server of the fleet (made by 'spamfilter fleet init')"
            try:
                key = read_key(self.path, "fleet key", min_length=44, fix=fix)
            except FileNotFoundError:
                raise ConfigError(f"the fleet key {self.path} does not exist; {fix}") from None
            try:
                self._fernet = Fernet(key)
            except ValueError:
                raise ConfigError(f"the fleet key {self.path} is damaged; {fix}") from None
        return self._fernet

    def make(self) -> bool:
        """Make the key file when it does not exist; whether it was made now."""
        from cryptography.fernet import Fernet

        return create_key(self.path, Fernet.generate_key())


def domain_of(target: str) -> str:
    """The domain a target key names (``domain:x`` and ``mailbox:a@x`` both give x)."""
    kind, _, name = target.partition(":")
    return name.rpartition("@")[2] if kind == "mailbox" else name


def occurred(stored: dict[str, Any], default: float) -> float:
    """When the event happened on the server that queued it (its ``occurred_at``)."""
    try:
        return datetime.fromisoformat(stored["occurred_at"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return default


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stamp))


def _translated(method):
    """Turn database errors raised by a method into a QueueError naming the fix."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            self._discard()
            raise unreachable(self.fleet, exc) from None
        except psycopg.Error as exc:
            raise QueueError(
                f"the fleet database {shown(self.fleet.url)} refused a change ({exc}); "
                "run 'spamfilter check'",
                temporary=True,
            ) from None

    return wrapper


class PostgresQueue(Queue):
    """The fleet's queue in PostgreSQL, for this server (``[fleet] server``), with the
    server's local outbox in *state_dir* to relay from.

    :param clock: the wall clock (times shown to people).
    :param monotonic: a clock that orders and expires work, for tests; by default the
        database's clock does.
    """

    shared = True

    def __init__(
        self,
        state_dir: str | os.PathLike,
        fleet: FleetConfig,
        *,
        clock=time.time,
        monotonic=None,
        check_schema: bool = True,
        mail_host: str | None = None,
    ) -> None:
        # the worker's own timers; what the queue schedules is on the database's clock
        super().__init__(clock=clock, monotonic=monotonic or time.monotonic)
        self.state_dir = Path(state_dir)
        self.fleet = fleet
        self.server = fleet.server
        #: this server's ``general.mail_host``: written into its domain creations that name
        #: no destination, since another server's worker may deliver them
        self.mail_host = mail_host
        self.box = FleetKey(fleet.key_file)
        self._fixed = monotonic  # None: the database's clock
        self._db: DB | None = None
        self._batching = 0
        self._pipeline: psycopg.Pipeline | None = None
        self._chosen: set[int] = set()
        self._check_schema = check_schema
        self._relayed_upto: int | None = None
        self._relay_at = float("-inf")
        self._forgotten = 0  # the local rows up to this id are gone
        self._local: SqliteQueue | None = None
        self._listener: DB | None = None

    # -- the connection -----------------------------------------------------------------

    @property
    def where(self) -> str:
        return shown(self.fleet.url)

    @property
    def db(self) -> DB:
        if self._db is None:
            pool = pool_of(self.fleet)
            db = pool.getconn()
            try:
                if self._check_schema:
                    self._checked(db)
            except BaseException:
                pool.putconn(db)
                raise
            self._db = db
        return self._db

    def _checked(self, db: DB) -> None:
        version = schema_version(db)
        if version > SCHEMA_VERSION:
            raise QueueError(newer_schema(version))
        if version < SCHEMA_VERSION:
            raise QueueError(
                f"the fleet database {self.where} has schema version {version}, this release "
                f"needs {SCHEMA_VERSION}; run 'spamfilter fleet init' (it is safe to run again)"
            )

    def _discard(self) -> None:
        """Give a broken connection back to the pool, which replaces it."""
        if self._db is not None:
            db, self._db, self._batching, self._pipeline = self._db, None, 0, None
            with contextlib.suppress(Exception):
                pool_of(self.fleet).putconn(db)

    @contextlib.contextmanager
    def on_behalf_of(self, server: str | None) -> Iterator[None]:
        if server is None or server == self.server:
            yield
            return
        mine = self.server
        self.server = server
        try:
            yield
        finally:
            self.server = mine

    def wait(self, stop: threading.Event, seconds: float) -> None:
        """Wait up to *seconds*, waking when any server adds rows (LISTEN/NOTIFY on a
        connection of its own); polling is the fallback when it cannot listen."""
        until = time.monotonic() + seconds
        try:
            if self._listener is None:
                self._listener = connect(self.fleet)
                self._listener.execute(f"LISTEN {CHANNEL}")
            while not stop.is_set():
                left = until - time.monotonic()
                if left <= 0:
                    return
                if any(True for _ in self._listener.notifies(timeout=min(left, 0.25))):
                    return
        except (psycopg.Error, QueueError):
            if self._listener is not None:
                with contextlib.suppress(Exception):
                    self._listener.close()
                self._listener = None
            stop.wait(max(0.0, until - time.monotonic()))

    def _notify(self, db: DB) -> None:
        """Wake the fleet's waiting workers when this transaction commits."""
        db.execute(f"NOTIFY {CHANNEL}")

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                self._listener.close()
            self._listener = None
        if self._local is not None:
            self._local.close()
            self._local = None
        if self._db is not None:
            db, self._db = self._db, None
            pool_of(self.fleet).putconn(db)

    def _now(self) -> float | None:
        return self._fixed() if self._fixed is not None else None

    def _offset(self) -> float:
        return 0.0 if self._fixed is None else self.clock() - self._fixed()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[DB]:
        db = self.db
        if self._batching:
            yield db
            return
        with db.transaction():
            yield db

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every write made in the block, pipelined: a statement is sent
        without waiting for the one before, and the block waits for the database only where
        it reads an answer (a worker's batch of outcomes and claims is three round trips,
        not one a statement)."""
        if self._batching:
            self._batching += 1
            try:
                yield
            finally:
                self._batching -= 1
            return
        try:
            db = self.db
            with db.pipeline() as self._pipeline, db.transaction():
                self._batching += 1
                try:
                    yield
                finally:
                    self._batching -= 1
        except (psycopg.OperationalError, PoolTimeout) as exc:
            self._discard()
            raise unreachable(self.fleet, exc) from None
        finally:
            self._pipeline = None

    def _affected(self, cur: psycopg.Cursor[Any]) -> int:
        """The rows *cur*'s statement changed; in a pipelined batch, once its answer is in."""
        if self._pipeline is not None:
            self._pipeline.sync()
        return cur.rowcount

    # -- writing ----------------------------------------------------------------------

    @_translated
    def append(self, items: list[Item]) -> list[list[int]]:
        """Write each item's rows (queued on this server), superseding what it makes
        pointless and deciding ownership, in one transaction."""
        sealed = [
            self.box.seal(password) if password is not None and vendors else None
            for _, _, password, vendors in items
        ]
        with self._tx() as db:
            self._lock_targets(db, [item[1] for item in items])
            self._notify(db)
            return [
                [self._insert(db, stored, target, v, secret, self.server) for v in vendors]
                for (stored, target, _, vendors), secret in zip(items, sealed, strict=True)
            ]

    @staticmethod
    def _lock_targets(db: DB, targets: Iterable[str]) -> None:
        """Serialise appends per domain across the fleet (in one order: no deadlock)."""
        for domain in sorted({domain_of(t) for t in targets}):
            db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", (domain,))

    def _insert(
        self,
        db: DB,
        stored: dict[str, Any],
        target: str,
        vendor: str,
        sealed: bytes | None,
        server: str,
        *,
        origin: int | None = None,
        state: str = "pending",
    ) -> int:
        """One row (inside the caller's transaction), after superseding and ownership."""
        hook = stored["event"]
        if hook == "domain_created" and stored.get("destination") is None and self.mail_host:
            if server == self.server:  # the destination as this server's config has it
                stored = {**stored, "destination": self.mail_host}
        params: dict[str, Any] = {
            "now": self._now(),
            "wall": self.clock(),
            "vendor": vendor,
            "target": target,
            "hook": hook,
            "server": server,
        }
        if state == "pending" and hook in SUSPENSION_HOOKS:
            note_suspension(db, hook, stored, params["wall"], mark="%s")
        skipped = self._ownership(db, stored, target, params) if state == "pending" else None
        if skipped is None and state == "pending":
            self._supersede(db, stored, params)
        params.update(
            event_id=stored["id"],
            payload=json.dumps(stored),
            secret=None if skipped else sealed,
            state="skipped" if skipped else state,
            error=skipped,
            origin=origin,
        )
        found = db.execute(
            "INSERT INTO events (event_id, vendor, hook, target, payload, secret, state, "
            "next_at, created_at, updated_at, last_error, server, origin_id) VALUES "
            f"(%(event_id)s, %(vendor)s, %(hook)s, %(target)s, %(payload)s, %(secret)s, "
            f"%(state)s, {NOW}, %(wall)s, %(wall)s, %(error)s, %(server)s, %(origin)s) "
            "RETURNING id",
            params,
        ).fetchone()
        return int(_one(found)["id"])

    def _ownership(
        self, db: DB, stored: dict[str, Any], target: str, params: dict[str, Any]
    ) -> str | None:
        """Record which server's panel holds the domain, by when each event happened on its
        server (a relay may bring an older event late); the reason an event is skipped: a
        deletion from a server that no longer holds the domain, or a creation older than
        what another server did since."""
        hook, server, domain = params["hook"], params["server"], domain_of(target)
        if hook not in ("domain_created", "domain_deleted", "mailbox_deleted"):
            return None
        at = occurred(stored, params["wall"])
        held = db.execute(
            "SELECT server, since, present FROM holders WHERE domain=%s FOR UPDATE", (domain,)
        ).fetchone()
        if held is not None and held["server"] != server:
            by, since = held["server"], held["since"]
            if held["present"] and (hook != "domain_created" or since > at):
                return f"{by} holds {domain} since {_when(since)}"
            if not held["present"] and since > at:
                return f"{by} deleted {domain} at {_when(since)}, after this event"
        if hook == "mailbox_deleted":
            return None
        db.execute(
            "INSERT INTO holders (domain, server, since, present) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (domain) DO UPDATE SET server=excluded.server, since=excluded.since, "
            "present=excluded.present",
            (domain, server, at, hook == "domain_created"),
        )
        if hook == "domain_created":  # a deletion still waiting elsewhere would undo it
            db.execute(
                "UPDATE events SET state='skipped', secret=NULL, updated_at=%(wall)s, "
                "last_error=%(reason)s WHERE target=%(target)s AND hook='domain_deleted' "
                "AND state IN ('pending','dead') AND server != %(server)s",
                {**params, "reason": f"{server} holds {domain} since {_when(at)}"},
            )
        return None

    @staticmethod
    def _supersede(db: DB, stored: dict[str, Any], params: dict[str, Any]):
        hook = params["hook"]
        older = SUPERSEDES.get(hook)
        if older:
            db.execute(
                "UPDATE events SET state='superseded', secret=NULL, updated_at=%(wall)s, "
                "last_error='superseded by a later ' || %(hook)s WHERE vendor=%(vendor)s "
                "AND target=%(target)s AND state IN ('pending','dead') "
                "AND hook = ANY(%(older)s)",
                {**params, "older": list(older)},
            )
        if hook == STEP_HOOK:
            db.execute(
                "UPDATE events SET state='superseded', updated_at=%(wall)s, "
                "last_error='superseded by a newer step of the same name' WHERE "
                "vendor=%(vendor)s AND target=%(target)s AND hook=%(hook)s "
                "AND state IN ('pending','dead') AND (payload::jsonb)->>'step' = %(step)s",
                {**params, "step": stored["step"]},
            )

    # -- relaying the local outbox -----------------------------------------------------

    @_translated
    def relay(self, limit: int = 500, *, every: float = 0.0) -> int:
        """Move the rows the panel hooks wrote to this server's local outbox into the fleet
        queue, oldest first, *limit* per transaction; how many were moved.

        The rows and this server's relay mark are written in one transaction, so a relay
        interrupted at any point neither loses nor doubles a row; the local copies are
        removed afterwards (a crash before that leaves them, below the mark, for the next
        relay to remove).  With *every*, nothing is done if the last relay was less than that
        many seconds ago (a worker's loop)."""
        now = time.monotonic()
        if every and now - self._relay_at < every:
            return 0
        self._relay_at = now
        local = self._local_outbox()
        if local is None:
            return 0
        moved = 0
        while True:
            upto = self._mark()
            if upto > self._forgotten:  # the local copies of relayed rows go (a write
                local.forget_upto(upto)  # only when there are some: panel hooks write too)
                self._forgotten = upto
            rows = local.rows_after(upto, limit)
            if not rows:
                return moved
            self._take(local, rows, mark=True)
            moved += len(rows)

    def _local_outbox(self) -> SqliteQueue | None:
        """This server's local outbox, when the panel hooks have made one."""
        if self._local is None and (self.state_dir / DB_NAME).exists():
            self._local = SqliteQueue(self.state_dir)
        return self._local

    @_translated
    def relayed(self, local_ids: Iterable[int]) -> dict[int, int]:
        """The fleet's row id of each row written to the local outbox (relayed now if it
        was not yet); a row no longer in either is left out."""
        ids = list(local_ids)
        self.relay()
        found = self.db.execute(
            "SELECT origin_id, id FROM events WHERE server=%s AND origin_id = ANY(%s)",
            (self.server, ids),
        )
        return {r["origin_id"]: r["id"] for r in found}

    @_translated
    def _mark(self) -> int:
        if self._relayed_upto is None:
            found = self.db.execute(
                "SELECT upto FROM relayed WHERE server=%s", (self.server,)
            ).fetchone()
            self._relayed_upto = int(found["upto"]) if found else 0
        return self._relayed_upto

    def _take(self, local: SqliteQueue, rows: list[tuple[Row, bytes | None]], *, mark: bool):
        """Write the local *rows* here (their secrets sealed again with the fleet key) in
        one transaction, with the relay mark when *mark*; rows already here are left."""
        sealed = [
            self.box.seal(local.box.open(blob)) if blob is not None else None for _, blob in rows
        ]
        upto = max(row.id for row, _ in rows)
        with self._tx() as db:
            self._lock_targets(db, [row.target for row, _ in rows])
            self._notify(db)
            for (row, _), secret in zip(rows, sealed, strict=True):
                exists = db.execute(
                    "SELECT 1 FROM events WHERE server=%s AND origin_id=%s", (self.server, row.id)
                ).fetchone()
                if exists is None:
                    self._copy(db, row, secret)
            if mark:
                db.execute(
                    "INSERT INTO relayed (server, upto) VALUES (%s, %s) ON CONFLICT (server) "
                    "DO UPDATE SET upto = greatest(relayed.upto, excluded.upto)",
                    (self.server, upto),
                )
        if mark:
            self._relayed_upto = max(self._relayed_upto or 0, upto)

    def _copy(self, db: DB, row: Row, secret: bytes | None) -> None:
        if row.state in ("pending", "leased"):  # still to deliver: due now, as it was queued
            self._insert(db, row.payload, row.target, row.vendor, secret, self.server,
                         origin=row.id)  # fmt: skip
            return
        # history (fleet join): kept as it ended
        db.execute(
            "INSERT INTO events (event_id, vendor, hook, target, payload, secret, state, "
            "attempts, next_at, created_at, updated_at, last_error, error_type, result, "
            "server, origin_id) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (
                row.event_id, row.vendor, row.hook, row.target, json.dumps(row.payload),
                secret if row.state == "dead" else None, row.state, row.attempts,
                row.next_at, row.created_at, row.updated_at, row.last_error, row.error_type,
                json.dumps(row.result) if row.result is not None else None, self.server,
                row.id,
            ),
        )  # fmt: skip

    def local_waiting(self, limit: int = 100) -> list[Row]:
        """The rows of this server's local outbox not relayed yet, newest first."""
        local = self._local_outbox()
        if local is None:
            return []
        try:
            upto = self._mark()
        except QueueError:
            upto = 0
        return [row for row, _ in reversed(local.rows_after(upto, limit))]

    # -- the panels' domain lists ------------------------------------------------------

    @_translated
    def publish_inventory(self, domains: Mapping[str, str | None]) -> int:
        """Make *domains* (name: destination or None) this server's panel list in the fleet,
        replacing the one it published before, in one transaction; how many."""
        with self._tx() as db:
            db.execute("DELETE FROM inventory WHERE server=%s", (self.server,))
            with (
                db.cursor() as cur,
                cur.copy("COPY inventory (server, domain, destination) FROM STDIN") as copy,
            ):
                for name, destination in domains.items():
                    copy.write_row((self.server, name, destination))
            db.execute(
                "INSERT INTO inventory_published (server, at) VALUES (%s, %s) "
                "ON CONFLICT (server) DO UPDATE SET at=excluded.at",
                (self.server, self.clock()),
            )
        return len(domains)

    @_translated
    def fleet_inventory(self) -> tuple[dict[str, tuple[str, str | None]], dict[str, float]]:
        """Every server's published panel list: ``{domain: (server, destination)}`` (the
        first server by name, when two hold one), and when each server published."""
        published = {
            r["server"]: float(r["at"])
            for r in self.db.execute("SELECT server, at FROM inventory_published")
        }
        domains: dict[str, tuple[str, str | None]] = {}
        for r in self.db.execute("SELECT server, domain, destination FROM inventory ORDER BY 1"):
            domains.setdefault(r["domain"], (r["server"], r["destination"]))
        return domains, published

    # -- joining the fleet -----------------------------------------------------------

    @_translated
    def join(self, local: Queue, *, dry_run: bool = False) -> dict[str, int]:
        """Move every row of *local* (this server's own queue before fleet mode) and what it
        provisioned into the fleet; rows already moved are left, so a second run moves
        nothing.  The counts per state, and of ``provisioned`` domains."""
        if not isinstance(local, SqliteQueue):
            raise QueueError("only a server's own SQLite queue can join the fleet")
        counts: dict[str, int] = {}
        upto = 0
        while True:
            rows = local.rows_after(upto, 500)
            if not rows:
                break
            for row, _ in rows:
                counts[row.state] = counts.get(row.state, 0) + 1
            if not dry_run:
                self._take(local, rows, mark=False)
            upto = max(row.id for row, _ in rows)
        owned = local.provisioned_all()
        counts["provisioned"] = len(owned)
        if not dry_run:
            with self._tx() as db:
                for vendor, domain, since, destination in owned:
                    db.execute(
                        "INSERT INTO provisioned (vendor, domain, since, destination) "
                        "VALUES (%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                        (vendor, domain, since, destination or self.mail_host),
                    )
                    # this server's panel held it (unless another server has said since)
                    db.execute(
                        "INSERT INTO holders (domain, server, since) VALUES (%s,%s,%s) "
                        "ON CONFLICT DO NOTHING",
                        (domain, self.server, since),
                    )
                for domain, (since, reason) in local.suspensions().items():
                    db.execute(
                        "INSERT INTO suspended (domain, since, reason) VALUES (%s,%s,%s) "
                        "ON CONFLICT (domain) DO NOTHING",
                        (domain, since, reason),
                    )
                db.execute(
                    "INSERT INTO relayed (server, upto) VALUES (%s, %s) ON CONFLICT (server) "
                    "DO UPDATE SET upto = greatest(relayed.upto, excluded.upto)",
                    (self.server, upto),
                )
            self._relayed_upto = None
        counts.update(self._join_kept(local.state_dir, dry_run))
        return counts

    def _join_kept(self, state_dir: Path, dry_run: bool) -> dict[str, int]:
        """What vendors kept in *state_dir* (vaults, state, the MX state) into the fleet:
        a vault's secrets opened with the server's queue key and sealed with the fleet's;
        what the fleet holds already under the same name stays."""
        counts = {"vault_entries": 0, "state_entries": 0, "mx_domains": 0}
        local_box = SecretBox(state_dir)
        for path in sorted(state_dir.glob("vault-*.json")) + sorted(state_dir.glob("state-*.json")):
            data = JsonStore(path).read()
            vault = path.name.startswith("vault-")
            counts["vault_entries" if vault else "state_entries"] += len(data)
            if dry_run or not data:
                continue
            with FleetJsonStore(self.fleet, path.stem).editing() as shared:
                for key, value in data.items():
                    if key not in shared:
                        shared[key] = (
                            self.box.seal(local_box.open(value.encode("ascii"))).decode("ascii")
                            if vault
                            else value
                        )
        if (state_dir / MX_FILE).exists():
            fleet_mx = FleetMxStore(self.fleet)
            for state in MxStore(state_dir).all():
                counts["mx_domains"] += 1
                if dry_run or fleet_mx.get(state.domain) is not None:
                    continue
                fields = {k: getattr(state, k) for k in MX_COLUMNS}
                fleet_mx.put(state.domain, state.vendor, **fields)
        return counts

    # -- the key ----------------------------------------------------------------------

    @_translated
    def prove_key(self) -> str | None:
        """Seal the key proof when none is stored (the first ``fleet init``); then check that
        this server's key opens it: None when it does, else the problem and its fix."""
        self.box._load()  # a missing or loose key file is the first thing to say
        with self._tx() as db:
            found = db.execute("SELECT value FROM fleet_meta WHERE key='key_proof'").fetchone()
            if found is None:
                db.execute(
                    "INSERT INTO fleet_meta (key, value) VALUES ('key_proof', %s) "
                    "ON CONFLICT DO NOTHING",
                    (self.box.seal(KEY_PROOF).decode("ascii"),),
                )
                found = db.execute("SELECT value FROM fleet_meta WHERE key='key_proof'").fetchone()
        try:
            opened = self.box.open(_one(found)["value"].encode("ascii"))
        except ConfigError:
            opened = None
        if opened != KEY_PROOF:
            return (
                f"the fleet key {self.box.path} cannot open what other servers sealed; copy "
                "the key file from a server of the fleet (every server needs the same key)"
            )
        return None

    def check(self) -> str | None:
        """What ``spamfilter check`` says of the fleet: None when the database answers, its
        schema is this release's and this server's key opens what the others sealed; else
        the problem, in one line, with its fix."""
        try:
            return self.prove_key()
        except (QueueError, ConfigError) as exc:
            return str(exc)

    # -- claiming and recording ------------------------------------------------------

    #: a row that may be claimed now: due (or the schedule ignored), or its lease run out
    DUE = (
        f"((e.state='pending' AND (e.next_at <= {NOW} OR %(ignore)s)) OR "
        f"(e.state='leased' AND e.lease_until < {NOW}))"
    )
    #: the same, one state at a time: each walks the (vendor, state, id) index in order and
    #: stops at the first rows it may take, whatever the table's statistics say
    EXPIRED = f"e.state='leased' AND e.lease_until < {NOW}"
    WAITING = f"e.state='pending' AND (e.next_at <= {NOW} OR %(ignore)s)"

    #: the end of a lease statement: the rows a ``picked`` CTE names are leased, each with a
    #: token of its own, and come back
    LEASE = (
        f"UPDATE events SET state='leased', lease_until={NOW} + %(lease)s, "
        "lease_owner = %(owner)s || ':' || substr(md5(random()::text || events.id), 1, 12), "
        "attempts=attempts+1, updated_at=%(wall)s FROM picked WHERE events.id = picked.id "
        "RETURNING events.*"
    )

    def _lease_args(self, params: dict[str, Any], lease_seconds: float) -> dict[str, Any]:
        """*params* and what :data:`LEASE` and the pickers' conditions need besides."""
        now, wall = self._now(), self.clock()
        return {**params, "lease": lease_seconds, "now": now, "wall": wall, "me": self.server}

    def _leased(self, found: Iterable[Any]) -> list[tuple[Row, str]]:
        """The rows a lease statement gave back (the empty ones of an outer join left out),
        oldest first, each with its token."""
        offset = self._offset()
        rows = sorted((row_of(r, offset) for r in found if r["id"] is not None), key=lambda r: r.id)
        return [(row, row.lease_owner or "") for row in rows]

    def _lease(
        self, db: DB, where: str, params: dict[str, Any], lease_seconds: float
    ) -> list[tuple[Row, str]]:
        """Lease the rows *where* picks (inside the caller's transaction), each with its
        own token."""
        found = db.execute(
            f"WITH picked AS (SELECT e.id FROM events e WHERE {where} ORDER BY e.id "
            f"LIMIT %(k)s FOR UPDATE SKIP LOCKED) {self.LEASE}",
            self._lease_args(params, lease_seconds),
        ).fetchall()
        return self._leased(found)

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
        """Lease the oldest deliverable row; it with its lease token, or None."""
        where = [self.DUE, IN_ORDER, MINE]
        params: dict[str, Any] = {
            "ignore": ignore_schedule,
            "step": STEP_HOOK,
            "owner": owner,
            "k": 1,
            "exclude": list(exclude),
        }
        where.append("NOT (e.vendor = ANY(%(exclude)s))")
        if only is not None:
            params["only"] = list(only)
            where.append("e.id = ANY(%(only)s)")
        with self._tx() as db:
            found = self._lease(db, " AND ".join(where), params, lease_seconds)
        return found[0] if found else None

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
        """Lease up to ``slots[vendor]`` deliverable rows of each vendor, oldest first;
        with *limits*, never more than ``limits[vendor]`` rows of a vendor leased in the
        whole fleet (each vendor's ``concurrency``): the claims of one vendor take turns."""
        rest = f" AND {IN_ORDER} AND {MINE}"
        params: dict[str, Any] = {"ignore": ignore_schedule, "step": STEP_HOOK, "owner": owner}
        if chosen:
            rest += " AND e.id = ANY(%(chosen)s)"
            params["chosen"] = sorted(self._chosen)
        claimed: list[tuple[Row, str]] = []
        full: set[str] = set()
        with self._tx() as db:
            for vendor, free in slots.items():
                if free <= 0:
                    continue
                limit = limits.get(vendor) if limits else None
                taken, room = self._lease_vendor(
                    db, vendor, free, limit, rest, params, lease_seconds
                )
                claimed += taken
                if room is not None and room <= free and len(taken) >= room:
                    full.add(vendor)  # the fleet's places are all taken now
        self.full = full
        return claimed

    def _lease_vendor(
        self,
        db: DB,
        vendor: str,
        free: int,
        limit: int | None,
        rest: str,
        params: dict[str, Any],
        lease_seconds: float,
    ) -> tuple[list[tuple[Row, str]], int | None]:
        """Lease up to *free* rows of *vendor* (those whose lease ran out first, then those
        waiting, oldest first), and with *limit* no more than the places left of it in the
        whole fleet: the rows with their tokens, and those places (None without *limit*).

        One round trip (pipelined): the vendor's claims take turns from the advisory lock to
        the end of the caller's transaction, and the statement that counts the places and
        leases runs after the lock is held, so it sees every claim committed before."""
        room = "%(k)s"
        if limit is not None:
            room = (
                "%(limit)s - (SELECT count(*) FROM events WHERE vendor=%(vendor)s "
                f"AND state='leased' AND lease_until >= {NOW})"
            )
        expired, waiting = (
            f"SELECT e.id FROM events e WHERE e.vendor = %(vendor)s AND {state}{rest} ORDER BY e.id"
            for state in (self.EXPIRED, self.WAITING)
        )
        take = "(SELECT GREATEST(0, LEAST(%(k)s, room)) FROM room)"
        sql = (
            f"WITH room AS (SELECT {room} AS room), "
            f"expired AS ({expired} LIMIT {take} FOR UPDATE SKIP LOCKED), "
            f"waiting AS ({waiting} "
            f"LIMIT {take} - (SELECT count(*) FROM expired) FOR UPDATE SKIP LOCKED), "
            "picked AS (SELECT id FROM expired UNION ALL SELECT id FROM waiting), "
            f"leased AS ({self.LEASE}) "
            "SELECT room.room AS places_left, leased.* FROM room LEFT JOIN leased ON true"
        )
        args = self._lease_args(
            {**params, "vendor": vendor, "k": free, "limit": limit}, lease_seconds
        )
        with db.pipeline():
            if limit is not None:
                db.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 11))", (f"claim {vendor}",)
                )
            found = db.execute(sql, args).fetchall()
        places = int(found[0]["places_left"]) if limit is not None and found else None
        return self._leased(found), places

    def choose(self, ids: Iterable[int], *, fresh: bool = False) -> None:
        """Add rows to the ones :meth:`claim_batch` takes with ``chosen=True`` (kept by this
        Queue object)."""
        if fresh:
            self._chosen = set()
        self._chosen.update(ids)

    @_translated
    def chosen_waiting(self, within: float = 0.0) -> int:
        found = self.db.execute(
            "SELECT count(*) AS n FROM events WHERE id = ANY(%(ids)s) AND "
            f"(state='leased' OR (state='pending' AND next_at <= {NOW} + %(within)s))",
            {"ids": sorted(self._chosen), "now": self._now(), "within": within},
        ).fetchone()
        return int(_one(found)["n"])

    @_translated
    def chosen_rows(self, states: Iterable[str] = ("pending", "leased")) -> list[Row]:
        found = self.db.execute(
            "SELECT * FROM events WHERE id = ANY(%s) AND state = ANY(%s) ORDER BY id",
            (sorted(self._chosen), list(states)),
        )
        offset = self._offset()
        return [row_of(r, offset) for r in found]

    @_translated
    def event_of(self, row: Row) -> Event:
        password = None
        if row.has_secret:
            found = self.db.execute("SELECT secret FROM events WHERE id=%s", (row.id,)).fetchone()
            if found is not None and found["secret"] is not None:
                password = Secret(self.box.open(bytes(found["secret"])))
        return event_from_dict(row.payload, password=password)

    @_translated
    def complete(
        self, row: Row, token: str, result: Any = None, steps: Iterable[Event] = ()
    ) -> bool:
        with self._tx() as db:
            held = self._complete(db, [(row, token, result)])
            if row.id not in held:
                return False
            for step in steps:
                self._insert(db, step.to_dict(), step.target_key, row.vendor, None, held[row.id])
        return True

    @_translated
    def complete_many(self, items: list[tuple[Row, str, Any]]) -> set[int]:
        with self._tx() as db:
            return set(self._complete(db, items))

    def _complete(self, db: DB, items: list[tuple[Row, str, Any]]) -> dict[int, str]:
        """One statement for every row of *items*: done under its lease, and what that
        means for ownership.  The rows whose lease held, with the server that queued each.
        (Two rows of one vendor and target are never leased at once, so no record is
        written twice by the statement.)"""
        ids, tokens, results, sealed = [], [], [], []
        for row, token, result in items:
            public, secrets = split_result(result)
            ids.append(row.id)
            tokens.append(token)
            results.append(json.dumps(public) if public is not None else None)
            sealed.append(self.box.seal(json.dumps(secrets)) if secrets else None)
        found = db.execute(
            "WITH input AS (SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::text[], "
            "%(results)s::text[], %(sealed)s::bytea[]) AS i(id, token, result, sealed)), "
            "done AS (UPDATE events e SET state='done', secret=NULL, lease_until=NULL, "
            "lease_owner=NULL, updated_at=%(wall)s, result=i.result, result_secret=i.sealed, "
            "last_error=NULL, error_type=NULL FROM input i "
            "WHERE e.id = ANY(%(ids)s) AND e.id=i.id AND e.lease_owner=i.token "
            "RETURNING e.id, e.server, e.vendor, e.hook, substr(e.target, 8) AS domain, "
            "(e.payload::jsonb)->>'destination' AS destination, "
            "e.target LIKE 'domain:%%' AS of_domain), "
            "owned AS (INSERT INTO provisioned (vendor, domain, since, destination) "
            "SELECT vendor, domain, %(wall)s, destination FROM done "
            "WHERE of_domain AND hook='domain_created' ON CONFLICT (vendor, domain) "
            "DO UPDATE SET destination=excluded.destination), "
            "moved AS (UPDATE provisioned p SET destination=d.destination FROM done d "
            "WHERE d.of_domain AND d.hook='domain_updated' AND p.vendor=d.vendor "
            "AND p.domain=d.domain), "
            "gone AS (DELETE FROM provisioned p USING done d WHERE d.of_domain "
            "AND d.hook='domain_deleted' AND p.vendor=d.vendor AND p.domain=d.domain) "
            "SELECT id, server FROM done",
            {
                "ids": ids,
                "tokens": tokens,
                "results": results,
                "sealed": sealed,
                "wall": self.clock(),
            },
        )
        return {r["id"]: r["server"] for r in found}

    @_translated
    def fail(
        self, row: Row, token: str, error: SpamFilterError, retry_in: float | None, note: str = ""
    ) -> bool:
        message, kind = note + str(error), type(error).__name__
        with self._tx() as db:
            if retry_in is None:
                cur = db.execute(
                    "UPDATE events SET state='dead', secret=NULL, lease_until=NULL, "
                    "lease_owner=NULL, updated_at=%s, last_error=%s, error_type=%s "
                    "WHERE id=%s AND lease_owner=%s",
                    (self.clock(), message, kind, row.id, token),
                )
            else:
                cur = db.execute(
                    f"UPDATE events SET state='pending', next_at={NOW} + %(retry)s, "
                    "lease_until=NULL, lease_owner=NULL, updated_at=%(wall)s, "
                    "last_error=%(message)s, error_type=%(kind)s "
                    "WHERE id=%(id)s AND lease_owner=%(token)s",
                    {
                        "now": self._now(),
                        "retry": retry_in,
                        "wall": self.clock(),
                        "message": message,
                        "kind": kind,
                        "id": row.id,
                        "token": token,
                    },
                )
        return self._affected(cur) == 1

    @_translated
    def skip(self, row: Row, token: str, error: Exception) -> bool:
        domain = row.target[len("domain:") :] if row.target.startswith("domain:") else None
        with self._tx() as db:
            cur = db.execute(
                "WITH ended AS (UPDATE events SET state='skipped', secret=NULL, "
                "lease_until=NULL, lease_owner=NULL, updated_at=%(wall)s, "
                "last_error=%(message)s, error_type=%(kind)s "
                "WHERE id=%(id)s AND lease_owner=%(token)s RETURNING id), "
                "gone AS (DELETE FROM provisioned WHERE vendor=%(vendor)s AND domain=%(domain)s "
                "AND EXISTS (SELECT 1 FROM ended)) "
                "SELECT id FROM ended",
                {
                    "wall": self.clock(),
                    "message": str(error),
                    "kind": type(error).__name__,
                    "id": row.id,
                    "token": token,
                    "vendor": row.vendor,
                    "domain": domain,
                },
            )
            return cur.fetchone() is not None

    @_translated
    def release(self, row: Row, token: str, error: SpamFilterError, retry_in: float) -> bool:
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE events SET state='pending', next_at={NOW} + %(retry)s, "
                "attempts=greatest(attempts-1, 0), lease_until=NULL, lease_owner=NULL, "
                "updated_at=%(wall)s, last_error=%(message)s, error_type=%(kind)s "
                "WHERE id=%(id)s AND lease_owner=%(token)s",
                {
                    "now": self._now(),
                    "retry": retry_in,
                    "wall": self.clock(),
                    "message": str(error),
                    "kind": type(error).__name__,
                    "id": row.id,
                    "token": token,
                },
            )
        return self._affected(cur) == 1

    # -- reading ----------------------------------------------------------------------

    @_translated
    def get(self, row_id: int) -> Row | None:
        found = self.db.execute("SELECT * FROM events WHERE id=%s", (row_id,)).fetchone()
        return row_of(found, self._offset()) if found else None

    @_translated
    def server_of(self, row_id: int) -> str | None:
        """The server that queued the row."""
        found = self.db.execute("SELECT server FROM events WHERE id=%s", (row_id,)).fetchone()
        return found["server"] if found else None

    @_translated
    def secret_result(self, row_id: int) -> dict[str, Secret]:
        found = self.db.execute(
            "SELECT result_secret FROM events WHERE id=%s", (row_id,)
        ).fetchone()
        if found is None or found["result_secret"] is None:
            return {}
        opened = self.box.open(bytes(found["result_secret"]))
        return {k: Secret(v) for k, v in json.loads(opened).items()}

    @_translated
    def rows(
        self,
        *,
        state: str | None = None,
        vendor: str | None = None,
        limit: int = 100,
        target: str | None = None,
    ) -> list[Row]:
        found = self.db.execute(
            "SELECT * FROM events WHERE (%(state)s::text IS NULL OR state=%(state)s) AND "
            "(%(vendor)s::text IS NULL OR vendor=%(vendor)s) AND "
            "(%(target)s::text IS NULL OR target=%(target)s) ORDER BY id DESC LIMIT %(limit)s",
            {"state": state, "vendor": vendor, "limit": limit, "target": target},
        )
        offset = self._offset()
        return [row_of(r, offset) for r in found]

    @_translated
    def targets(self) -> list[str]:
        return [r["target"] for r in self.db.execute("SELECT DISTINCT target FROM events")]

    @_translated
    def latest(self, hooks: Iterable[str]) -> dict[tuple[str, str], Row]:
        found = self.db.execute(
            "SELECT DISTINCT ON (vendor, target) * FROM events WHERE hook = ANY(%s) AND "
            "state != 'superseded' ORDER BY vendor, target, id DESC",
            (list(hooks),),
        )
        offset = self._offset()
        rows = (row_of(r, offset) for r in found)
        return {(row.vendor, row.target): row for row in rows}

    @_translated
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for r in self.db.execute("SELECT state, count(*) AS n FROM events GROUP BY state"):
            out[r["state"]] = int(r["n"])
        return out

    @_translated
    def next_due_in(self, *, after_now: bool = False) -> float | None:
        found = self.db.execute(
            f"SELECT min(CASE WHEN state='pending' THEN next_at ELSE lease_until END) - {NOW} "
            "AS t FROM events WHERE state IN ('pending','leased') AND (NOT %(after)s OR "
            f"CASE WHEN state='pending' THEN next_at ELSE lease_until END > {NOW})",
            {"after": after_now, "now": self._now()},
        ).fetchone()
        return None if found is None or found["t"] is None else float(found["t"])

    @_translated
    def waiting_vendors(self) -> list[str]:
        found = self.db.execute(
            "SELECT DISTINCT vendor FROM events WHERE state IN ('pending','leased')"
        )
        return [r["vendor"] for r in found]

    @_translated
    def provisioned(self, vendor: str) -> set[str]:
        found = self.db.execute("SELECT domain FROM provisioned WHERE vendor=%s", (vendor,))
        return {r["domain"] for r in found}

    MARK = "%s"

    @_translated
    def _execute(self, sql: str, args: list[Any]) -> int:
        with self._tx() as db:
            return self._affected(db.execute(sql, args))

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
        # one statement for each kind, every label set in arrays (a worker writes a dozen
        # with each batch of outcomes: one round trip, not a dozen); sorted, so that two
        # workers' batches lock the same rows in the same order
        with self._tx() as db:
            for kind, values in (
                ("metrics.value + excluded.value", counts),
                ("excluded.value", gauges),
            ):
                if not values:
                    continue
                items = sorted(values.items())
                db.execute(
                    "INSERT INTO metrics (name, labels, value) SELECT * FROM unnest("
                    "%s::text[], %s::text[], %s::float8[]) ON CONFLICT (name, labels) "
                    f"DO UPDATE SET value = {kind}",
                    (
                        [name for (name, _), _ in items],
                        [labels for (_, labels), _ in items],
                        [float(value) for _, value in items],
                    ),
                )

    @_translated
    def metrics(self) -> list[tuple[str, str, float]]:
        found = self.db.execute("SELECT name, labels, value FROM metrics ORDER BY 1, 2")
        return [(r["name"], r["labels"], float(r["value"])) for r in found]

    @_translated
    def vendor_summary(self) -> list[tuple[str, str, int, float | None]]:
        found = self.db.execute(
            "SELECT vendor, state, count(*) AS n, min(created_at) AS oldest FROM events "
            "GROUP BY vendor, state ORDER BY 1, 2"
        )
        return [(r["vendor"], r["state"], int(r["n"]), r["oldest"]) for r in found]

    @_translated
    def suspensions(self) -> dict[str, tuple[float, str | None]]:
        found = self.db.execute("SELECT domain, since, reason FROM suspended")
        return {r["domain"]: (float(r["since"]), r["reason"]) for r in found}

    @_translated
    def destinations(self, vendor: str, domain: str, server: str | None = None) -> set[str | None]:
        found = self.db.execute(
            "SELECT destination AS d FROM provisioned WHERE vendor=%(vendor)s "
            "AND domain=%(domain)s UNION SELECT (payload::jsonb)->>'destination' FROM events "
            "WHERE vendor=%(vendor)s AND target=%(target)s "
            "AND hook IN ('domain_created','domain_updated') "
            "AND (%(server)s::text IS NULL OR server=%(server)s)",
            {"vendor": vendor, "domain": domain, "target": f"domain:{domain}", "server": server},
        )
        return {r["d"] for r in found}

    @_translated
    def holders(self) -> dict[str, str]:
        """Which server's panel holds each domain the fleet has seen created."""
        found = self.db.execute("SELECT domain, server FROM holders WHERE present")
        return {r["domain"]: r["server"] for r in found}

    @_translated
    def open_rows(self, vendor: str, hooks: Iterable[str]) -> dict[str, Row]:
        found = self.db.execute(
            "SELECT DISTINCT ON (target) * FROM events WHERE vendor=%s AND hook = ANY(%s) "
            "AND state IN ('pending','leased','dead') ORDER BY target, id DESC",
            (vendor, list(hooks)),
        )
        offset = self._offset()
        return {r["target"]: row_of(r, offset) for r in found}

    @_translated
    def ahead_of(self, row: Row) -> Row | None:
        found = self.db.execute(
            "SELECT * FROM events WHERE vendor=%s AND target=%s AND id<%s "
            "AND state IN ('pending','leased') ORDER BY id LIMIT 1",
            (row.vendor, row.target, row.id),
        ).fetchone()
        return row_of(found, self._offset()) if found else None

    # -- managing ----------------------------------------------------------------------

    def _change(self, sql: str, params: dict[str, Any]) -> int:
        with self._tx() as db:
            return self._affected(
                db.execute(sql, {"now": self._now(), "wall": self.clock(), **params})
            )

    @_translated
    def retry(self, row_id: int) -> bool:
        return (
            self._change(
                f"UPDATE events SET state='pending', next_at={NOW}, attempts=0, "
                "updated_at=%(wall)s WHERE id=%(id)s AND state='dead'",
                {"id": row_id},
            )
            == 1
        )

    @_translated
    def due_now(self, row_id: int) -> bool:
        return (
            self._change(
                f"UPDATE events SET next_at={NOW}, updated_at=%(wall)s "
                "WHERE id=%(id)s AND state='pending'",
                {"id": row_id},
            )
            == 1
        )

    @_translated
    def retry_all_dead(self) -> int:
        return self._change(
            f"UPDATE events SET state='pending', next_at={NOW}, attempts=0, "
            "updated_at=%(wall)s WHERE state='dead'",
            {},
        )

    @_translated
    def drop(self, row_id: int) -> bool:
        return (
            self._change(
                "DELETE FROM events WHERE id=%(id)s AND NOT (state='leased' AND "
                f"lease_until >= {NOW})",
                {"id": row_id},
            )
            == 1
        )

    @_translated
    def purge(self, older_than_seconds: float) -> int:
        return self._change(
            "DELETE FROM events WHERE state IN ('done','superseded','skipped') AND "
            "updated_at < %(before)s",
            {"before": self.clock() - older_than_seconds},
        )

    # -- console sessions ----------------------------------------------------------------

    @_translated
    def session_open(self, sid_hash: str, role: str, name: str, stamp: str) -> None:
        self._change(
            "INSERT INTO sessions (id, role, name, stamp, created_at, seen_at) VALUES "
            "(%(id)s, %(role)s, %(name)s, %(stamp)s, %(wall)s, %(wall)s)",
            {"id": sid_hash, "role": role, "name": name, "stamp": stamp},
        )

    @_translated
    def session_get(self, sid_hash: str) -> dict[str, Any] | None:
        found = self.db.execute("SELECT * FROM sessions WHERE id=%s", (sid_hash,)).fetchone()
        return dict(found) if found else None

    @_translated
    def session_seen(self, sid_hash: str) -> None:
        self._change("UPDATE sessions SET seen_at=%(wall)s WHERE id=%(id)s", {"id": sid_hash})

    @_translated
    def session_end(self, sid_hash: str) -> bool:
        return self._change("DELETE FROM sessions WHERE id=%(id)s", {"id": sid_hash}) == 1

    @_translated
    def session_prune(self, idle_seconds: float, max_seconds: float) -> int:
        now = self.clock()
        return self._change(
            "DELETE FROM sessions WHERE seen_at < %(idle)s OR created_at < %(oldest)s",
            {"idle": now - idle_seconds, "oldest": now - max_seconds},
        )


class FleetGuard(VendorGuard):
    """One vendor's credentials guard for the whole fleet (see :mod:`..guard`): the
    suspension, the proof and the one-delivery-at-a-time lock are kept in the database, so
    five servers with the same wrong password send the vendor one login, not five.

    A database that cannot be reached stops the delivery before anything is sent
    (:class:`~..errors.VendorBusy`: the row waits, its attempt not counted)."""

    def __init__(
        self, name: str, state_dir: str | os.PathLike, table: Mapping[str, Any], fleet: FleetConfig
    ) -> None:
        super().__init__(name, state_dir, table)
        self.fleet = fleet
        self._seen: tuple[float, dict[str, Any] | None] | None = None  # (when, suspension)

    #: while the credentials are proven (deliveries side by side), how long a look at the
    #: suspension serves the requests that follow, in seconds; while they are not, every
    #: request looks (one delivery at a time: the next one must see a refusal)
    FRESH = 0.25

    @contextlib.contextmanager
    def _db(self) -> Iterator[DB]:
        try:
            with pooled(self.fleet) as db:
                yield db
        except QueueError as exc:  # nothing is sent: the row waits, its attempt not counted
            raise VendorBusy(self.name, str(exc)) from None

    def _read_suspension(self) -> dict[str, Any] | None:
        with self._db() as db:
            found = db.execute(
                "SELECT reason, since FROM vendor_guard WHERE vendor=%s AND suspended",
                (self.name,),
            ).fetchone()
        self._seen = (time.monotonic(), dict(found) if found else None)
        return self._seen[1]

    def admit(self) -> None:
        seen = self._seen
        if (
            self._known_proven
            and seen is not None
            and seen[1] is None
            and time.monotonic() - seen[0] < self.FRESH
            and not getattr(self._local, "checking", False)
        ):
            return
        super().admit()

    def suspend(self, reason: str) -> None:
        self._seen = None
        super().suspend(reason)

    def _write_suspension(self, doc: dict[str, Any]) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO vendor_guard (vendor, suspended, reason, since) VALUES "
                "(%s, true, %s, %s) ON CONFLICT (vendor) DO UPDATE SET suspended=true, "
                "reason=excluded.reason, since=excluded.since",
                (self.name, doc["reason"], doc["since"]),
            )

    def _drop_suspension(self) -> None:
        with self._db() as db:
            db.execute("UPDATE vendor_guard SET suspended=false WHERE vendor=%s", (self.name,))

    def proven(self) -> bool:
        seen = self._seen
        if self._known_proven and seen is not None and time.monotonic() - seen[0] < self.FRESH:
            return True  # looked at the suspension just now, and the proof stood
        return super().proven()

    def _read_proof(self) -> dict[str, Any] | None:
        with self._db() as db:
            found = db.execute(
                "SELECT salt, fingerprint FROM vendor_guard WHERE vendor=%s AND salt IS NOT NULL",
                (self.name,),
            ).fetchone()
        return dict(found) if found else None

    def _write_proof(self, doc: dict[str, Any]) -> bool:
        with self._db() as db:
            db.execute(
                "INSERT INTO vendor_guard (vendor, salt, fingerprint) VALUES (%s, %s, %s) "
                "ON CONFLICT (vendor) DO UPDATE SET salt=excluded.salt, "
                "fingerprint=excluded.fingerprint",
                (self.name, doc["salt"], doc["fingerprint"]),
            )
        return True

    def _drop_proof(self) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE vendor_guard SET salt=NULL, fingerprint=NULL WHERE vendor=%s",
                (self.name,),
            )

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """A session lock in the database, on a connection of its own while it is held; a
        waiter holds no connection between its tries."""
        key = f"spamfilter-plugin guard {self.name}"
        until = time.monotonic() + deadline.bounded(LOCK_WAIT)
        while True:
            with self._db() as db:
                got = _one(
                    db.execute(
                        "SELECT pg_try_advisory_lock(hashtextextended(%s, 0)) AS got", (key,)
                    ).fetchone()
                )["got"]
                if got:
                    try:
                        yield
                    finally:
                        db.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
                    return
            if time.monotonic() >= until:
                raise self.busy()
            time.sleep(0.05)


class FleetRateLimiter:
    """A vendor account's request budget (``per_minute`` requests in any 60 seconds) for the
    whole fleet: each request's time is kept in the database (on its clock), and the
    servers take slots in turn.  The account is stored only as a hash of its key."""

    def __init__(self, fleet: FleetConfig, vendor: str, account: str, per_minute: int) -> None:
        self.fleet, self.vendor, self.per_minute = fleet, vendor, per_minute
        digest = hashlib.sha256(f"{vendor}\0{account}".encode()).hexdigest()
        self.account = f"{vendor}:{digest[:32]}"

    def _take(self) -> float:
        """A slot now (0.0), or the seconds until the oldest one frees."""
        try:
            with pooled(self.fleet) as db, db.transaction():
                db.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 13))", (self.account,)
                )
                now = float(
                    _one(
                        db.execute("SELECT extract(epoch from clock_timestamp()) AS t").fetchone()
                    )["t"]
                )
                db.execute(
                    "DELETE FROM rate_slots WHERE account=%s AND at <= %s",
                    (self.account, now - 60),
                )
                found = _one(
                    db.execute(
                        "SELECT count(*) AS n, min(at) AS oldest FROM rate_slots WHERE account=%s",
                        (self.account,),
                    ).fetchone()
                )
                if found["n"] < self.per_minute:
                    db.execute(
                        "INSERT INTO rate_slots (account, at) VALUES (%s, %s)", (self.account, now)
                    )
                    return 0.0
                return max(0.01, float(found["oldest"]) + 60 - now)
        except QueueError as exc:  # nothing is sent: the row waits, its attempt not counted
            raise VendorBusy(self.vendor, str(exc)) from None

    def acquire(self) -> float:
        waited = 0.0
        while True:
            delay = self._take()
            if not delay:
                return waited
            if deadline.bounded(delay) < delay:
                raise paced(self.vendor, self.per_minute, delay)
            time.sleep(delay)
            waited += delay


class FleetJsonStore:
    """What a vendor keeps between deliveries (its state, its vault's sealed entries), as
    :class:`~..files.JsonStore` keeps it in a file, shared by the fleet: one JSON document
    per *name*; writers take turns on the document's row, so no edit is lost."""

    def __init__(self, fleet: FleetConfig, name: str) -> None:
        self.fleet, self.name = fleet, name

    def _db(self) -> contextlib.AbstractContextManager[DB]:
        return pooled(self.fleet)

    def read(self) -> dict[str, Any]:
        with self._db() as db:
            found = db.execute("SELECT body FROM documents WHERE name=%s", (self.name,)).fetchone()
        data = json.loads(found["body"]) if found else {}
        return data if isinstance(data, dict) else {}

    @contextlib.contextmanager
    def editing(self) -> Iterator[dict[str, Any]]:
        """The document under its row lock; what the block leaves in it is written back."""
        with self._db() as db, db.transaction():
            db.execute(
                "INSERT INTO documents (name, body) VALUES (%s, '{}') ON CONFLICT DO NOTHING",
                (self.name,),
            )
            found = _one(
                db.execute(
                    "SELECT body FROM documents WHERE name=%s FOR UPDATE", (self.name,)
                ).fetchone()
            )
            data = json.loads(found["body"])
            data = data if isinstance(data, dict) else {}
            yield data
            db.execute(
                "UPDATE documents SET body=%s WHERE name=%s",
                (json.dumps(data, sort_keys=True), self.name),
            )


class FleetMxStore(MxStore):
    """The MX state of the domains whose MX the plugin manages (see :mod:`.mx`), shared
    by the fleet."""

    def __init__(self, fleet: FleetConfig) -> None:
        self.fleet = fleet
        self.path = Path(shown(fleet.url))

    def _db(self) -> contextlib.AbstractContextManager[DB]:
        return pooled(self.fleet)

    def get(self, domain: str) -> MxState | None:
        with self._db() as db:
            found = db.execute("SELECT * FROM mx WHERE domain=%s", (domain,)).fetchone()
        return mx_state(found) if found else None

    def all(self) -> list[MxState]:
        with self._db() as db:
            return [mx_state(r) for r in db.execute("SELECT * FROM mx ORDER BY domain")]

    def put(self, domain: str, vendor: str, **changes: Any) -> MxState:
        changes = mx_changes(changes)
        with self._db() as db, db.transaction():
            exists = db.execute("SELECT 1 FROM mx WHERE domain=%s FOR UPDATE", (domain,)).fetchone()
            if exists:
                sets = ", ".join(f"{k} = %({k})s" for k in changes)
                db.execute(
                    f"UPDATE mx SET vendor = %(vendor)s, {sets} WHERE domain = %(domain)s",
                    {**changes, "vendor": vendor, "domain": domain},
                )
            else:
                changes.setdefault("state", "queued")
                keys = ", ".join(changes)
                marks = ", ".join(f"%({k})s" for k in changes)
                db.execute(
                    f"INSERT INTO mx (domain, vendor, {keys}) VALUES "
                    f"(%(domain)s, %(vendor)s, {marks})",
                    {**changes, "vendor": vendor, "domain": domain},
                )
        state = self.get(domain)
        assert state is not None
        return state
