"""The JSON API's tokens: ``spamfilter token create NAME --role ROLE`` makes one and prints it
once; the queue's store keeps only its SHA-256 digest (a token is 256 random bits, so a
digest cannot be turned back, and a stolen store gives no way in).

A token's role is what a console user of that role would be: ``admin``; ``reseller:USER``
(the reseller's customers' domains); ``account:USER`` (the panel account's own domains and
mailboxes).  :data:`CONSOLE_ROLE` names the console role each stands for, so a token is
checked by the console's own access rules, not a copy of them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Any

from .errors import InvalidInput
from .store.base import Queue

#: what every token starts with (so a leaked one is recognisable in logs and scanners)
PREFIX = "sfp_"
ROLES = ("admin", "reseller", "account")
#: how often a token's last use is written down, in seconds (a busy script's calls are not
#: each a write to the store)
USE_NOTED_EVERY = 60.0
#: the console role of each token role
CONSOLE_ROLE = {"admin": "admin", "reseller": "reseller", "account": "user"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_role(text: str) -> tuple[str, str]:
    """``admin``, ``reseller:USER`` or ``account:USER`` as ``(role, user)``; InvalidInput
    naming ``--role`` and the forms otherwise."""
    role, _, user = text.partition(":")
    forms = "admin, reseller:USER or account:USER"
    if role not in ROLES:
        raise InvalidInput("--role", f"{text!r} is not a role; give {forms}")
    if role == "admin":
        if user:
            raise InvalidInput("--role", "admin takes no user; give admin")
        return role, ""
    if not _USER.match(user):
        raise InvalidInput("--role", f"{role} needs the panel user: {role}:USER (got {text!r})")
    return role, user


def create(
    queue: Queue, name: str, role: str, *, expires_days: float | None = None, now=time.time
) -> tuple[str, dict[str, Any]]:
    """A new token *name* of *role* (``admin``, ``reseller:USER``, ``account:USER``): the
    token (shown once, never kept) and its stored record."""
    if not _NAME.match(name):
        raise InvalidInput(
            "NAME", f"{name!r}: use 1 to 64 lower-case letters, digits, '.', '_' or '-'"
        )
    kind, user = parse_role(role)
    if expires_days is not None and not 0 < expires_days <= 3650:
        raise InvalidInput("--expires", f"{expires_days:g} days: give 1 to 3650")
    token = PREFIX + secrets.token_urlsafe(32)
    at = now()
    record = {
        "name": name,
        "digest": digest(token),
        "role": kind,
        "subject": user,
        "created_at": at,
        "expires_at": at + expires_days * 86400 if expires_days else None,
        "last_used_at": None,
    }
    if not queue.token_add(record):
        raise InvalidInput(
            "NAME", f"a token named {name!r} exists; revoke it first or pick another"
        )
    return token, record


def shown(record: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """A token's record as ``token list`` shows it (no digest)."""
    now = time.time() if now is None else now
    expires = record["expires_at"]
    return {
        "name": record["name"],
        "role": record["role"] + (f":{record['subject']}" if record["subject"] else ""),
        "created_at": record["created_at"],
        "expires_at": expires,
        "expired": expires is not None and expires <= now,
        "last_used_at": record["last_used_at"],
    }


def found(queue: Queue, presented: str, now: float | None = None) -> dict[str, Any] | None:
    """The record of the token *presented*, if it is one and has not expired; its use is
    noted (at most once a minute).  None otherwise."""
    now = time.time() if now is None else now
    if not presented.startswith(PREFIX) or len(presented) > 200:
        return None
    record = queue.token_by_digest(digest(presented))
    if record is None or (record["expires_at"] is not None and record["expires_at"] <= now):
        return None
    if (record["last_used_at"] or 0.0) <= now - USE_NOTED_EVERY:  # not a write per call
        queue.token_used(record["name"], now)
    return record
