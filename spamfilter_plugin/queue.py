"""The delivery queue: a transactional outbox in SQLite under ``general.state_dir``.

This is the store, and it imports nothing above :mod:`.errors`, :mod:`.events` and
:mod:`.redaction`.  :func:`spamfilter_plugin.emit.emit` (what a panel hook calls)
writes rows through :meth:`Queue.enqueue`; workers (:mod:`.worker`) claim rows
with a lease, deliver them, and record the outcome.

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
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, QueueError, SpamFilterError
from .events import Event, event_from_dict
from .redaction import Secret

DB_NAME = "queue.sqlite3"
KEY_NAME = "queue.key"
STATES = ("pending", "leased", "done", "dead", "superseded")

#: a new event of the key's hook supersedes undelivered (pending) earlier events of
#: these hooks, for the same vendor and target
SUPERSEDES: dict[str, tuple[str, ...]] = {
    "domain_deleted": ("domain_created", "domain_updated", "password_reset", "vendor_step"),
    "domain_updated": ("domain_updated",),
    "mailbox_deleted": ("mailbox_added", "password_reset"),
    "password_reset": ("password_reset",),
}

#: the hook of the steps vendors queue for themselves (:class:`~.events.VendorStep`)
STEP_HOOK = "vendor_step"

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL,
    vendor       TEXT NOT NULL,
    hook         TEXT NOT NULL,
    target       TEXT NOT NULL,
    payload      TEXT NOT NULL,
    secret       BLOB,
    state        TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      REAL NOT NULL,
    lease_until  REAL,
    lease_owner  TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    last_error   TEXT,
    error_type   TEXT,
    result       TEXT,
    result_secret BLOB
);
CREATE INDEX IF NOT EXISTS events_due ON events (state, next_at);
CREATE INDEX IF NOT EXISTS events_order ON events (vendor, target, id);
CREATE INDEX IF NOT EXISTS events_event ON events (event_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: where the kernel says which boot this is (Linux)
BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


def boot_id() -> str:
    """This boot's identity: the kernel's boot id, or else the boot time to ten minutes
    (on systems without one, a wall clock stepped by more than that counts as a reboot)."""
    try:
        with open(BOOT_ID_FILE, encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return f"booted-{round((time.time() - time.monotonic()) / 600)}"


class SecretBox:
    """Encrypts secrets for storage with a key in ``state_dir/queue.key`` (0600, made on first use).

    ``cryptography`` is imported only when a secret is actually stored or read."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / KEY_NAME
        self._fernet = None

    def _load(self):
        if self._fernet is None:
            from cryptography.fernet import Fernet

            if not self.path.exists():
                self._create(Fernet.generate_key())
            if os.stat(self.path).st_mode & 0o077:
                raise ConfigError(
                    f"queue key {self.path} is readable by group or others; run: "
                    f"chmod 600 {self.path}"
                )
            key = self.path.read_bytes().strip()
            try:
                self._fernet = Fernet(key)
            except ValueError:
                raise ConfigError(
                    f"queue key {self.path} is empty or damaged; if no queued event holds a "
                    "secret, delete it (a new one is made), else restore it from a backup"
                ) from None
        return self._fernet

    def _create(self, key: bytes) -> None:
        """Write the key to a private temporary file, then link it into place: the key
        file appears complete or not at all, and the first of racing processes wins."""
        tmp = self.path.with_name(f".{KEY_NAME}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(key + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass  # another process made it first: use theirs
        finally:
            tmp.unlink(missing_ok=True)

    def seal(self, text: str) -> bytes:
        return self._load().encrypt(text.encode("utf-8"))

    def open(self, blob: bytes) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._load().decrypt(bytes(blob)).decode("utf-8")
        except InvalidToken:
            raise ConfigError(
                f"a stored secret cannot be decrypted with {self.path}; was the key replaced?"
            ) from None


@dataclass
class Row:
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

    @classmethod
    def from_db(cls, r: sqlite3.Row, offset: float = 0.0) -> Row:
        """A row from the database; *offset* turns its monotonic times into wall-clock ones."""
        return cls(
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
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, no secrets (secret result values show as ``"***"``).  Times are
        wall-clock seconds since the epoch (``next_at`` and ``lease_until`` as of now)."""
        return dict(self.__dict__)


def _split_result(result: Any) -> tuple[dict[str, Any] | None, dict[str, str]]:
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


def _queue_error(path: Path, exc: sqlite3.Error) -> QueueError:
    """A database failure as one line naming the file, the cause and the fix."""
    text = str(exc).lower()
    if "disk is full" in text or "disk i/o" in text:
        return QueueError(
            f"the queue {path} cannot be written: the disk is full (or failing); free space "
            "there, then try again",
            temporary=True,
        )
    if "locked" in text or "busy" in text:
        return QueueError(
            f"the queue {path} is locked by another process; try again", temporary=True
        )
    if "readonly" in text or "unable to open" in text or "permission" in text:
        return QueueError(
            f"the queue {path} cannot be opened for writing by this user ({exc}); run the "
            "command as the user that owns state_dir, or fix the owner of that directory"
        )
    return QueueError(
        f"the queue {path} is damaged ({exc}); stop the workers, move the file aside and its "
        "-wal and -shm files with it, then run the command again (a new, empty queue is made)"
    )


def _translated(method):
    """Turn sqlite3 errors raised by a Queue method into a QueueError."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise _queue_error(self.path, exc) from None

    return wrapper


class Queue:
    """The outbox in ``state_dir``.  One connection per instance; safe across processes.

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
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / DB_NAME
        self.clock, self.monotonic = clock, monotonic
        self.boot = boot
        self.box = SecretBox(self.state_dir)
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = self._connect()
        return self._db

    def _connect(self) -> sqlite3.Connection:
        try:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise ConfigError(
                f"cannot create the queue in {self.state_dir} ({exc.strerror}); set [general] "
                "state_dir to a directory this user can write"
            ) from None
        old = os.umask(0o077)  # the -wal and -shm files too
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            db.executescript(SCHEMA)
            self._settle_clock(db)
        finally:
            os.umask(old)
        return db

    def _settle_clock(self, db: sqlite3.Connection) -> None:
        """Make the stored monotonic times mean something on this boot (see the module doc)."""
        boot = self.boot or boot_id()
        stored = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if stored.get("boot") == boot:
            return
        with _Transaction(db):
            stored = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if stored.get("boot") == boot:
                return  # another process settled it first
            mono = self.monotonic()
            if "boot" not in stored:
                # a queue from before times were monotonic: move its wall-clock times over
                shift = mono - self.clock()
                db.execute(
                    "UPDATE events SET next_at=next_at+?, lease_until=lease_until+? "
                    "WHERE state IN ('pending','leased')",
                    (shift, shift),
                )
            else:
                # a new boot: the monotonic clock restarted and every worker is gone
                db.execute(
                    "UPDATE events SET next_at=min(next_at, ?), "
                    "lease_until=CASE WHEN lease_until IS NULL THEN NULL ELSE 0 END "
                    "WHERE state IN ('pending','leased')",
                    (mono,),
                )
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('boot', ?)", (boot,))

    def _offset(self) -> float:
        """Add to a stored monotonic time to get a wall-clock one."""
        return self.clock() - self.monotonic()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _tx(self):
        return _Transaction(self.db)

    # -- writing -----------------------------------------------------------------

    @_translated
    def enqueue(self, event: Event, vendors: Iterable[str]) -> list[int]:
        """Write one row per vendor, superseding what the event makes pointless; one transaction."""
        vendors = list(vendors)
        _ = self.db  # connecting creates state_dir (0700) before the key file goes into it
        password = getattr(event, "password", None)
        sealed = self.box.seal(password.reveal()) if password is not None and vendors else None
        with self._tx() as db:
            return [self._insert(db, event, vendor, sealed) for vendor in vendors]

    def _insert(self, db: sqlite3.Connection, event: Event, vendor: str, sealed: Any) -> int:
        """Supersede what *event* makes pointless for *vendor*, then add its row (inside the
        caller's transaction)."""
        now = self.clock()
        older = SUPERSEDES.get(event.hook)
        if older:
            marks = ",".join("?" * len(older))
            db.execute(
                "UPDATE events SET state='superseded', secret=NULL, updated_at=?, "
                "last_error='superseded by a later ' || ? WHERE vendor=? AND target=? "
                # dead rows too: retrying them later must never redo what a later
                # event undid (a creation after its deletion)
                "AND state IN ('pending','dead') "
                f"AND hook IN ({marks})",
                (now, event.hook, vendor, event.target_key, *older),
            )
        if event.hook == STEP_HOOK:  # a newer step of the same name replaces a waiting one
            db.execute(
                "UPDATE events SET state='superseded', updated_at=?, "
                "last_error='superseded by a newer step of the same name' WHERE vendor=? "
                "AND target=? AND hook=? AND state IN ('pending','dead') "
                "AND json_extract(payload, '$.step')=?",
                (now, vendor, event.target_key, STEP_HOOK, event.step),  # type: ignore[attr-defined]
            )
        cur = db.execute(
            "INSERT INTO events (event_id, vendor, hook, target, payload, secret, "
            "next_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                event.id,
                vendor,
                event.hook,
                event.target_key,
                json.dumps(event.to_dict()),
                sealed,
                self.monotonic(),
                now,
                now,
            ),
        )
        return cur.lastrowid

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
            # a step waiting to be tried again holds no later event up
            "NOT EXISTS (SELECT 1 FROM events p WHERE p.vendor=e.vendor AND p.target=e.target "
            "AND p.id < e.id AND (p.state='leased' OR (p.state='pending' AND p.hook != :step)))",
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
        token = f"{owner}:{uuid.uuid4().hex[:12]}"
        with self._tx() as db:
            found = db.execute(
                f"SELECT id FROM events e WHERE {' AND '.join(where)} ORDER BY e.id LIMIT 1", params
            ).fetchone()
            if found is None:
                return None
            db.execute(
                "UPDATE events SET state='leased', lease_until=?, lease_owner=?, "
                "attempts=attempts+1, updated_at=? WHERE id=?",
                (now + lease_seconds, token, wall, found["id"]),
            )
            row = db.execute("SELECT * FROM events WHERE id=?", (found["id"],)).fetchone()
        return Row.from_db(row, wall - now), token

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
        public, secrets = _split_result(result)
        sealed = self.box.seal(json.dumps(secrets)) if secrets else None
        with self._tx() as db:
            held = db.execute(
                "SELECT 1 FROM events WHERE id=? AND lease_owner=?", (row.id, token)
            ).fetchone()
            if held is None:
                return False
            for step in steps:
                self._insert(db, step, row.vendor, None)
            cur = db.execute(
                "UPDATE events SET state='done', secret=NULL, lease_until=NULL, lease_owner=NULL, "
                "updated_at=?, result=?, result_secret=?, last_error=NULL, error_type=NULL "
                "WHERE id=? AND lease_owner=?",
                (
                    self.clock(),
                    json.dumps(public) if public is not None else None,
                    sealed,
                    row.id,
                    token,
                ),
            )
        return cur.rowcount == 1

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
    def release(self, row: Row, token: str, error: SpamFilterError, retry_in: float) -> bool:
        """Give a row back untried (nothing was sent): pending again in *retry_in* seconds,
        the attempt not counted.  False if the lease was lost."""
        with self._tx() as db:
            cur = db.execute(
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
        return cur.rowcount == 1

    # -- reading and admin ---------------------------------------------------------

    @_translated
    def get(self, row_id: int) -> Row | None:
        r = self.db.execute("SELECT * FROM events WHERE id=?", (row_id,)).fetchone()
        return Row.from_db(r, self._offset()) if r else None

    @_translated
    def secret_result(self, row_id: int) -> dict[str, Secret]:
        """The secret parts of a row's result (a generated password, say), decrypted."""
        r = self.db.execute("SELECT result_secret FROM events WHERE id=?", (row_id,)).fetchone()
        if r is None or r["result_secret"] is None:
            return {}
        return {k: Secret(v) for k, v in json.loads(self.box.open(r["result_secret"])).items()}

    @_translated
    def rows(
        self, *, state: str | None = None, vendor: str | None = None, limit: int = 100
    ) -> list[Row]:
        where, params = [], []
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
        return [Row.from_db(r, offset) for r in self.db.execute(sql, (*params, limit))]

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
    def next_due_in(self) -> float | None:
        """Seconds until the next row comes due or a lease runs out (<= 0: now), or None."""
        r = self.db.execute(
            "SELECT min(CASE WHEN state='pending' THEN next_at ELSE lease_until END) t FROM events "
            "WHERE state IN ('pending','leased')"
        ).fetchone()
        return None if r["t"] is None else r["t"] - self.monotonic()

    @_translated
    def retry(self, row_id: int) -> bool:
        """Make a dead row pending again, due now.  Its password, if it had one, is gone:
        a dead password reset is retried without it (the vendor generates one)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE events SET state='pending', next_at=?, attempts=0, updated_at=? "
                "WHERE id=? AND state='dead'",
                (self.monotonic(), self.clock(), row_id),
            )
        return cur.rowcount == 1

    @_translated
    def retry_all_dead(self) -> int:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE events SET state='pending', next_at=?, attempts=0, updated_at=? "
                "WHERE state='dead'",
                (self.monotonic(), self.clock()),
            )
        return cur.rowcount

    @_translated
    def drop(self, row_id: int) -> bool:
        """Delete a row that is not being delivered right now."""
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM events WHERE id=? AND NOT (state='leased' AND lease_until >= ?)",
                (row_id, self.monotonic()),
            )
        return cur.rowcount == 1

    @_translated
    def purge(self, older_than_seconds: float) -> int:
        """Delete done and superseded rows older than the given age."""
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM events WHERE state IN ('done','superseded') AND updated_at < ?",
                (self.clock() - older_than_seconds,),
            )
        return cur.rowcount


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, *rest) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
