"""The local SQLite outbox: the schema, opening the database, the key that seals secrets,
and appending rows (:class:`Outbox`, what a panel hook writes through).

:class:`~.sqlite.SqliteQueue` (claiming, delivering, retrying, listing) builds on these.
This module imports the standard library alone (``cryptography`` only when a secret is
sealed or opened), the rules in the package's ``__init__``, :mod:`..files` and
:mod:`..errors`, so the panel's wait stays short.  See :mod:`.sqlite` for durability,
ordering, superseding and time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time

from ..errors import ConfigError, QueueError
from . import STEP_HOOK, SUPERSEDES

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the hook path
if TYPE_CHECKING:
    from typing import Any

DB_NAME = "queue.sqlite3"
KEY_NAME = "queue.key"
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
CREATE INDEX IF NOT EXISTS events_claim ON events (vendor, state, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id         TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    name       TEXT NOT NULL,
    stamp      TEXT NOT NULL,
    created_at REAL NOT NULL,
    seen_at    REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS suspended (
    domain TEXT PRIMARY KEY,
    since  REAL NOT NULL,
    reason TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      REAL NOT NULL,
    actor   TEXT NOT NULL,
    role    TEXT NOT NULL,
    origin  TEXT NOT NULL,
    action  TEXT NOT NULL,
    scope   TEXT NOT NULL,
    target  TEXT NOT NULL,
    vendor  TEXT NOT NULL,
    form    TEXT NOT NULL,
    changes TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
CREATE INDEX IF NOT EXISTS audit_target ON audit (target, at);
CREATE TABLE IF NOT EXISTS metrics (
    name   TEXT NOT NULL,
    labels TEXT NOT NULL,
    value  REAL NOT NULL,
    PRIMARY KEY (name, labels)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
    name         TEXT PRIMARY KEY,
    digest       TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    created_at   REAL NOT NULL,
    expires_at   REAL,
    last_used_at REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_domains (
    domain      TEXT PRIMARY KEY,
    destination TEXT NOT NULL,
    owner       TEXT,
    added_by    TEXT NOT NULL,
    added_at    REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS plans_seen (
    account TEXT PRIMARY KEY,
    plan    TEXT NOT NULL,
    seen_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS provisioned (
    vendor TEXT NOT NULL,
    domain TEXT NOT NULL,
    since  REAL NOT NULL,
    destination TEXT,
    PRIMARY KEY (vendor, domain)
) WITHOUT ROWID;
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

    def __init__(self, state_dir: str | os.PathLike) -> None:
        self.path = os.path.join(state_dir, KEY_NAME)
        self._fernet: Any = None  # a cryptography Fernet, made on first use

    def _load(self):
        if self._fernet is None:
            # only when a secret is sealed or opened: a panel's call without one needs neither
            from cryptography.fernet import Fernet

            from ..keyfile import create_key, read_key

            fix = (
                "if no queued event holds a secret, delete it (a new one is made), else "
                "restore it from a backup"
            )
            try:
                key = read_key(self.path, "queue key", min_length=44, fix=fix)
            except FileNotFoundError:
                create_key(self.path, Fernet.generate_key())
                key = read_key(self.path, "queue key", min_length=44, fix=fix)
            try:
                self._fernet = Fernet(key)
            except ValueError:
                raise ConfigError(f"queue key {self.path} is damaged; {fix}") from None
        return self._fernet

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


def queue_error(path: str | os.PathLike, exc: sqlite3.Error) -> QueueError:
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


class Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, *rest) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def settle_clock(db: sqlite3.Connection, boot: str | None, clock, monotonic) -> None:
    """Make the stored monotonic times mean something on this boot (see :mod:`.queue`)."""
    boot = boot or boot_id()
    stored = dict(db.execute("SELECT key, value FROM meta").fetchall())
    if stored.get("boot") == boot:
        return
    with Transaction(db):
        stored = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if stored.get("boot") == boot:
            return  # another process settled it first
        mono = monotonic()
        if "boot" not in stored:
            # a queue from before times were monotonic: move its wall-clock times over
            shift = mono - clock()
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


def connect(
    state_dir: str | os.PathLike,
    *,
    clock=time.time,
    monotonic=time.monotonic,
    boot: str | None = None,
) -> sqlite3.Connection:
    """Open (creating it 0600 in a 0700 *state_dir* if need be) the queue database, in WAL
    mode with full sync, with its schema, and its clock settled for this boot.

    ConfigError when the directory or file cannot be made; sqlite3 errors as they come
    (:func:`queue_error` words them)."""
    path = os.path.join(state_dir, DB_NAME)
    try:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        if not os.path.exists(path):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:
        raise ConfigError(
            f"cannot create the queue in {os.fspath(state_dir)} ({exc.strerror}); set [general] "
            "state_dir to a directory this user can write"
        ) from None
    old = os.umask(0o077)  # the -wal and -shm files too
    try:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=30000")
        db.executescript(SCHEMA)
        settle_clock(db, boot, clock, monotonic)
    finally:
        os.umask(old)
    return db


def insert(
    db: sqlite3.Connection,
    stored: dict[str, Any],
    target: str,
    vendor: str,
    sealed: bytes | None,
    *,
    now: float,
    mono: float,
) -> int:
    """Supersede what the event *stored* (an event's payload, see
    :func:`~.eventdata.payload`) makes pointless for *vendor*, then add its row, due now
    (inside the caller's transaction)."""
    hook = stored["event"]
    older = SUPERSEDES.get(hook)
    if older:
        marks = ",".join("?" * len(older))
        db.execute(
            "UPDATE events SET state='superseded', secret=NULL, updated_at=?, "
            "last_error='superseded by a later ' || ? WHERE vendor=? AND target=? "
            # dead rows too: retrying them later must never redo what a later
            # event undid (a creation after its deletion)
            "AND state IN ('pending','dead') "
            f"AND hook IN ({marks})",
            (now, hook, vendor, target, *older),
        )
    if hook == STEP_HOOK:  # a newer step of the same name replaces a waiting one
        db.execute(
            "UPDATE events SET state='superseded', updated_at=?, "
            "last_error='superseded by a newer step of the same name' WHERE vendor=? "
            "AND target=? AND hook=? AND state IN ('pending','dead') "
            "AND json_extract(payload, '$.step')=?",
            (now, vendor, target, STEP_HOOK, stored["step"]),
        )
    if hook in SUSPENSION_HOOKS:
        note_suspension(db, hook, stored, now)
    cur = db.execute(
        "INSERT INTO events (event_id, vendor, hook, target, payload, secret, "
        "next_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (stored["id"], vendor, hook, target, json.dumps(stored), sealed, mono, now, now),
    )
    assert cur.lastrowid is not None  # an INSERT always has one
    return cur.lastrowid


#: the events that change whether a domain's account is suspended (the ``suspended`` table)
SUSPENSION_HOOKS = ("domain_suspended", "domain_unsuspended", "domain_deleted")


def note_suspension(db, hook: str, stored: dict[str, Any], now: float, mark: str = "?"):
    """Keep the ``suspended`` record with the panel's word, as it is queued: since when (the
    first suspension; a repeated one keeps it) and why; gone with the unsuspension or the
    domain's deletion.  Both stores' databases take the same statements (*mark* is their
    parameter mark: ``?`` here, ``%s`` on PostgreSQL)."""
    if hook == "domain_suspended":
        db.execute(
            f"INSERT INTO suspended (domain, since, reason) VALUES ({mark},{mark},{mark}) "
            "ON CONFLICT (domain) DO NOTHING",
            (stored["domain"], now, stored.get("reason")),
        )
    else:
        db.execute(f"DELETE FROM suspended WHERE domain={mark}", (stored["domain"],))


def seal_all(box: SecretBox, items: list[tuple[dict[str, Any], str, str | None, list[str]]]):
    """Each item's password sealed (once, and only when it goes to a vendor), or None."""
    return [
        box.seal(password) if password is not None and vendors else None
        for _, _, password, vendors in items
    ]


def insert_all(
    db: sqlite3.Connection,
    items: list[tuple[dict[str, Any], str, str | None, list[str]]],
    sealed: list[bytes | None],
    *,
    now: float,
    mono: float,
) -> list[list[int]]:
    """The rows of each ``(stored, target, password, vendors)`` item (an event's payload,
    see :func:`~..eventdata.payload`, its target key, its password, the vendors it goes
    to), its password already *sealed*, superseding what each makes pointless (inside the
    caller's transaction).  The row ids per item, in its vendors' order."""
    return [
        [insert(db, stored, target, v, secret, now=now, mono=mono) for v in vendors]
        for (stored, target, _, vendors), secret in zip(items, sealed, strict=True)
    ]


def append(
    db: sqlite3.Connection,
    box: SecretBox,
    items: list[tuple[dict[str, Any], str, str | None, list[str]]],
    *,
    clock=time.time,
    monotonic=time.monotonic,
) -> list[list[int]]:
    """:func:`insert_all` in one transaction, the passwords sealed before it begins."""
    sealed = seal_all(box, items)
    with Transaction(db):
        return insert_all(db, items, sealed, now=clock(), mono=monotonic())


class Outbox:
    """The local outbox in *state_dir*, for appending only: what a panel hook writes
    through (:func:`spamfilter_plugin.intake.enqueue`), without the rest of the queue."""

    def __init__(self, state_dir: str | os.PathLike) -> None:
        self.path = os.path.join(state_dir, DB_NAME)
        self.db = connect(state_dir)
        self.box = SecretBox(state_dir)

    def append(
        self, items: list[tuple[dict[str, Any], str, str | None, list[str]]]
    ) -> list[list[int]]:
        try:
            return append(self.db, self.box, items)
        except sqlite3.Error as exc:
            raise queue_error(self.path, exc) from None

    def remember_plan(self, account: str, plan: str) -> str | None:
        """Keep *plan* as the plan *account* is on; the plan it was on when last seen (None
        the first time), for a panel whose hooks do not say what the plan was before."""
        try:
            with Transaction(self.db):
                row = self.db.execute(
                    "SELECT plan FROM plans_seen WHERE account=?", (account,)
                ).fetchone()
                self.db.execute(
                    "INSERT OR REPLACE INTO plans_seen (account, plan, seen_at) VALUES (?,?,?)",
                    (account, plan, time.time()),
                )
        except sqlite3.Error as exc:
            raise queue_error(self.path, exc) from None
        return row[0] if row else None

    def close(self) -> None:
        self.db.close()
