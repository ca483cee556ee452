"""What is known of each managed domain's MX: ``state_dir/mx.sqlite3``.

One row per domain: the vendor that manages its MX, the state (:data:`STATES`), a
``detail`` in plain words (the SMTP reply of a refused destination, what DNS gave), the
MX set ``recorded`` before the switch (what a restore puts back; None when nothing was
recorded), the set last ``seen`` by lookup, and when it was switched, checked and changed.
Every write is one transaction, so a worker killed mid-write leaves the row as it was.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import QueueError

FILE = "mx.sqlite3"

#: the states of a domain's MX, in the order the flow passes through them
STATES = (
    "queued",  # the vendor accepted the domain; the destination check is queued
    "skipped",  # the panel sends the domain's mail elsewhere ("remote mail")
    "destination refused",  # the destination did not accept mail for the domain
    "switching",  # the current MX set is recorded; the switch is queued
    "pending",  # switched; DNS does not show the vendor's hosts yet
    "verified",  # DNS gives exactly the vendor's MX set
    "wrong",  # DNS still gave something else when the time allowed ran out
    "restored",  # the recorded set is back (protection ended)
    "gone",  # the domain left the panel with its zone: nothing to restore
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS mx (
    domain TEXT PRIMARY KEY,
    vendor TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    recorded TEXT,
    seen TEXT,
    switched_at REAL,
    checked_at REAL,
    updated_at REAL NOT NULL
)
"""


@dataclass(frozen=True)
class MxState:
    domain: str
    vendor: str
    state: str
    detail: str = ""
    recorded: list[list] | None = None
    seen: list[list] | None = None
    switched_at: float | None = None
    checked_at: float | None = None
    updated_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        def stamp(t):
            return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

        return {
            "domain": self.domain,
            "vendor": self.vendor,
            "state": self.state,
            "detail": self.detail,
            "recorded": _pairs(self.recorded),
            "seen": _pairs(self.seen),
            "switched_at": stamp(self.switched_at),
            "checked_at": stamp(self.checked_at),
            "updated_at": stamp(self.updated_at),
        }


def _pairs(records) -> list[dict] | None:
    if records is None:
        return None
    return [{"priority": p, "host": h} for p, h in records]


def shown(records) -> str:
    """An MX set in words: ``10 mx1.example, 20 mx2.example``."""
    if records is None:
        return "nothing recorded"
    return ", ".join(f"{p} {h}" for p, h in records) or "no MX records"


class MxStore:
    def __init__(self, state_dir: str | os.PathLike) -> None:
        self.path = Path(state_dir) / FILE

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            os.chmod(self.path, 0o600)
            db.execute(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise QueueError(
                f"the MX state database {self.path} cannot be used ({exc}); check that "
                "state_dir is writable by this user",
                temporary=True,
            ) from None
        db.row_factory = sqlite3.Row
        return db

    def get(self, domain: str) -> MxState | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM mx WHERE domain = ?", (domain,)).fetchone()
        return mx_state(row) if row else None

    def all(self) -> list[MxState]:
        with closing(self._connect()) as db:
            return [mx_state(r) for r in db.execute("SELECT * FROM mx ORDER BY domain")]

    def put(self, domain: str, vendor: str, **changes: Any) -> MxState:
        """Set *changes* for *domain* (made if new); ``recorded`` and ``seen`` are MX sets."""
        changes = mx_changes(changes)
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            exists = db.execute("SELECT 1 FROM mx WHERE domain = ?", (domain,)).fetchone()
            if exists:
                sets = ", ".join(f"{k} = ?" for k in changes)
                db.execute(
                    f"UPDATE mx SET vendor = ?, {sets} WHERE domain = ?",
                    (vendor, *changes.values(), domain),
                )
            else:
                changes.setdefault("state", "queued")
                keys = ", ".join(changes)
                marks = ", ".join("?" for _ in changes)
                db.execute(
                    f"INSERT INTO mx (domain, vendor, {keys}) VALUES (?, ?, {marks})",
                    (domain, vendor, *changes.values()),
                )
            db.execute("COMMIT")
        state = self.get(domain)
        assert state is not None
        return state


#: the columns a change may set
COLUMNS = ("state", "detail", "recorded", "seen", "switched_at", "checked_at")


def mx_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """*changes* checked and as stored (MX sets as JSON), with the time of the change."""
    unknown = set(changes) - set(COLUMNS)
    if unknown:
        raise ValueError(f"{', '.join(sorted(unknown))}: not a column of the MX state")
    if "state" in changes and changes["state"] not in STATES:
        raise ValueError(f"state: {changes['state']!r} is not one of {STATES}")
    changes = dict(changes)
    for key in ("recorded", "seen"):
        if key in changes and changes[key] is not None:
            changes[key] = json.dumps([list(r) for r in changes[key]])
    changes["updated_at"] = time.time()
    return changes


def mx_state(row: Any) -> MxState:
    """An :class:`MxState` from a database row read by column name."""
    data = dict(row)
    for key in ("recorded", "seen"):
        data[key] = json.loads(data[key]) if data[key] is not None else None
    return MxState(**data)
