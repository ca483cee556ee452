"""The audit log: every change a person makes, who made it, from where, and what it changed.

Append-only, in the queue's store (in fleet mode the fleet's, so every server's changes are
in one place); entries older than ``[general] audit_days`` are purged by the worker.  What a
change did to a secret (a password field, a token) is only ever "changed"; the value is
never written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import SpamFilterError
from .hookspecs import hookimpl
from .redaction import get_logger, redact

if TYPE_CHECKING:
    from .context import Host
    from .store.base import Queue

log = get_logger(__name__)

#: form fields that are not settings (the form's own machinery)
NOT_SETTINGS = ("csrf_token", "action", "form", "vendor", "next")

#: words that make a field a secret: its values are never written
SECRET_WORDS = ("password", "passwd", "secret", "token", "key", "hash")


def is_secret(field: str) -> bool:
    name = field.lower()
    return any(word in name for word in SECRET_WORDS)


def changes(form: Mapping[str, Any], before: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The settings fields of a submitted *form* as ``{field: {"old": ..., "new": ...}}``
    (``old`` where the vendor read it before the change, else left out); a secret field as
    ``{field: {"changed": true}}``."""
    before = before or {}
    out: dict[str, Any] = {}
    for field, value in sorted(form.items()):
        if field in NOT_SETTINGS:
            continue
        if is_secret(field):
            out[field] = {"changed": True}
            continue
        item: dict[str, Any] = {"new": redact(value) if isinstance(value, str) else value}
        if field in before:
            item["old"] = before[field]
        out[field] = item
    return out


def cli_actor() -> str:
    """``cli:<unix user>``: who runs a command."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        import os

        return f"cli:uid {os.getuid()}"


def record(
    queue: Queue,
    *,
    actor: str,
    action: str,
    outcome: str,
    role: str = "",
    origin: str = "",
    scope: str = "",
    target: str = "",
    vendor: str = "",
    form: str = "",
    changed: Mapping[str, Any] | None = None,
    at: float | None = None,
) -> None:
    """Append one entry.  A store that cannot take it is logged as an error: the change it
    describes is made already and is not undone."""
    entry = {
        "at": time.time() if at is None else at,
        "actor": actor,
        "role": role,
        "origin": origin,
        "action": action,
        "scope": scope,
        "target": target,
        "vendor": vendor,
        "form": form,
        "changes": json.dumps(dict(changed or {}), sort_keys=True, ensure_ascii=False),
        "outcome": redact(outcome)[:500],
    }
    try:
        queue.audit_add(entry)
    except SpamFilterError as exc:
        log.error("the audit log could not take %s by %s on %s: %s", action, actor, target, exc)


def shown(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An entry as ``spamfilter audit --json`` and the console show it: the time in ISO 8601
    UTC, ``changes`` as an object."""
    out = dict(entry)
    out["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(entry["at"])))
    out["changes"] = json.loads(entry["changes"]) if entry.get("changes") else {}
    return out


def change_text(changed: Mapping[str, Any]) -> str:
    """``spam_threshold 5 → 4; password changed``."""
    parts = []
    for field, item in changed.items():
        if item.get("changed"):
            parts.append(f"{field} changed")
        elif "old" in item:
            parts.append(f"{field} {item['old']} → {item['new']}")
        else:
            parts.append(f"{field} → {item['new']}")
    return "; ".join(parts)


#: how often the worker purges old entries (seconds)
PURGE_EVERY = 6 * 3600.0
_purged = {"at": float("-inf")}


@hookimpl
def worker_chores(host: Host, queue: Queue, now: float) -> None:
    """Entries older than ``[general] audit_days`` go, every few hours."""
    if now - _purged["at"] < PURGE_EVERY:
        return
    gone = queue.audit_purge(now - host.config.general.audit_days * 86400)
    _purged["at"] = now
    if gone:
        log.info("audit log: %d entries older than %g days purged", gone,
                 host.config.general.audit_days)  # fmt: skip
