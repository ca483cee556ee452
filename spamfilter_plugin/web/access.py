"""Who is asking, and what the panel's own records let them see.

The console's admin logs in with the ``[console]`` password and sees everything.  A panel
user arrives through a login link the panel made for them (``spamfilter ui link --user U``,
signed with the console's key, good for one use within two minutes), or through
``spamfilter ui render/submit --user U`` run by a panel page; either way the panel has
authenticated them, and :class:`Records` decides what they may see:

- ``admin`` (the panel's admin): every domain and mailbox;
- ``reseller``: the domains of the accounts it created, and their mailboxes;
- ``user`` (an account): its own domains and their mailboxes;
- ``mailbox`` (a login that is an address): that mailbox only.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..errors import ConfigError, InvalidInput
from ..eventdata import normalise_domain, normalise_email
from ..keyfile import create_key, read_key, replace_key

log = logging.getLogger("spamfilter_plugin.web")

ROLES = ("admin", "reseller", "user", "mailbox")
KEY_NAME = "console.key"
#: how long a panel user's login link works
LINK_SECONDS = 120


@dataclass(frozen=True)
class Viewer:
    role: str
    name: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def __str__(self) -> str:
        return f"{self.role} {self.name}"


class Refused(Exception):
    """A page or a change the asking user may not have; the message says why (never
    whose domain it is)."""


def panel_viewer(adapter, user: str) -> Viewer:
    """The panel user *user* as the panel's records know them; Refused otherwise."""
    user = (user or "").strip()
    if not user:
        raise Refused("user: missing; give the login the panel authenticated (--user)")
    if "@" in user:
        try:
            return Viewer("mailbox", normalise_email(user, "user"))
        except InvalidInput as exc:
            raise Refused(exc.message) from None
    if adapter is None:
        raise Refused(
            "user: the config has no [panel] table, so panel users cannot be told apart; "
            "add [panel] with the panel's kind"
        )
    role = adapter.role_of(user)
    if role not in ROLES:
        raise Refused(
            f"user: {user!r} is not an admin, reseller or account in the {adapter.name} "
            "records this server has"
        )
    return Viewer(role, user)


class Records:
    """The domains and mailboxes there are: the panel's records where it keeps them in
    files, else what the queue has seen (*seen* returns queue targets such as
    ``domain:example.com`` and ``mailbox:a@example.com``).  The domains the API owns (no
    panel holds them: *api* returns them with their records) are the admin's, and each is
    also its owner's, a console user a billing system named (``owner``)."""

    def __init__(self, adapter, seen, fleet=None, api=None) -> None:
        self.adapter = adapter
        self.seen = seen
        #: in fleet mode: ``{domain: server}`` of every server's published panel list
        self.fleet = fleet
        self.api = api
        self._all: list[str] | None = None  # read once: a Records lives for one request

    def all_domains(self) -> list[str]:
        if self._all is None:
            self._all = self._read_all()
        return self._all

    def _read_all(self) -> list[str]:
        domains = self.adapter.all_domains() if self.adapter is not None else None
        if domains is None:
            domains = {
                t.split(":", 1)[1] if t.startswith("domain:") else t.rsplit("@", 1)[1]
                for t in self.seen()
            }
        if self.fleet is not None:  # the admin sees every server's domains
            domains = set(domains) | set(self.fleet())
        if self.api is not None:
            domains = set(domains) | set(self.api())
        return sorted(domains)

    def domains_for(self, viewer: Viewer) -> list[str]:
        if viewer.role == "admin":
            return self.all_domains()
        if viewer.role == "mailbox":
            return []
        accounts = (
            self.adapter.accounts_of(viewer.name) if viewer.role == "reseller" else [viewer.name]
        )
        found: set[str] = set()
        for account in accounts:
            found.update(self.adapter.domains_of(account) if self.adapter is not None else ())
        if viewer.role == "user" and self.api is not None:
            found.update(d for d, r in self.api().items() if r.get("owner") == viewer.name)
        return sorted(found)

    def owns_api_domain(self, name: str) -> bool:
        """Whether the console user *name* owns a domain the API holds (a billing system's
        customer, whom no panel knows)."""
        return self.api is not None and any(r.get("owner") == name for r in self.api().values())

    def owners(self) -> dict[str, str]:
        """The panel account that owns each domain, where the panel keeps its records in files
        (empty otherwise: the console then shows no owner)."""
        found = self.adapter.inventory() if self.adapter is not None else None
        owners = {domain: account for domain, account, _ in found or ()}
        if self.api is not None:
            owners.update({d: r["owner"] for d, r in self.api().items() if r.get("owner")})
        return owners

    def mailboxes_of(self, domain: str) -> list[str]:
        listed = self.adapter.mailboxes_of(domain) if self.adapter is not None else None
        if listed is None:
            listed = [
                t.split(":", 1)[1]
                for t in self.seen()
                if t.startswith("mailbox:") and t.endswith("@" + domain)
            ]
        return sorted(set(listed))

    def check(self, viewer: Viewer, scope: str, target: str | None) -> str | None:
        """The normalised *target* if *viewer* may see *scope* for it; Refused (and a log
        line naming who asked for what) otherwise."""
        try:
            name = self._normalised(scope, target)
        except InvalidInput as exc:
            raise Refused(exc.message) from None
        allowed = viewer.role == "admin"
        if name is None:  # the admin page: the admin's only
            pass
        elif not allowed and scope == "mailbox":
            domain = name.rsplit("@", 1)[1]
            allowed = (
                name == viewer.name if viewer.role == "mailbox" else self._owns(viewer, domain)
            )
        elif not allowed and scope == "domain":
            allowed = viewer.role != "mailbox" and self._owns(viewer, name)
        if not allowed:
            log.warning("refused: %s asked for the %s page of %s", viewer, scope, name or "-")
            raise Refused(
                f"{viewer.name} may not see this {scope} page"
                if scope == "admin"
                else f"{name} is not one of {viewer.name}'s {scope}s"
            )
        return name

    def _owns(self, viewer: Viewer, domain: str) -> bool:
        return domain in self.domains_for(viewer)

    @staticmethod
    def _normalised(scope: str, target: str | None) -> str | None:
        if scope == "admin":
            return None
        if scope == "domain":
            return normalise_domain(target, "domain")
        if scope == "mailbox":
            return normalise_email(target, "mailbox")
        raise InvalidInput("scope", f"{scope!r} is not admin, domain or mailbox")


# -- where a login may lead ---------------------------------------------------------------


def console_path(value: Any) -> str | None:
    """*value* if it is a path on this console that survives normalisation (a browser strips
    tabs and newlines and reads ``\\`` as ``/``, so ``/\\t/evil.example`` would leave the
    site); None otherwise."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    return value


def safe_next(value: Any) -> str:
    """Where to go after a login: *value* when it is a path on this console, else ``/``."""
    return console_path(value) or "/"


# -- the console's key and panel users' login links --------------------------------------


#: the console key is 32 random bytes written as hex; anything shorter is refused
KEY_LENGTH = 64


def console_key(state_dir: str | os.PathLike) -> bytes:
    """The console's signing key, ``state_dir/console.key`` (0600), made on first use, whole
    or not at all.  An empty file (left by an older version on a full disk) never signed
    anything valid and is replaced; a short or unreadable key is a ConfigError with the fix."""

    path = Path(state_dir) / KEY_NAME
    fix = f"delete {path} (a new one is made; everyone logs in to the console again)"
    try:
        if path.is_file() and path.stat().st_size == 0:
            log.warning("%s is empty; a new console key replaces it", path)
            replace_key(path, secrets.token_hex(32).encode())
        elif not path.exists():
            create_key(path, secrets.token_hex(32).encode())
    except OSError as exc:
        raise ConfigError(
            f"cannot write the console key {path} ({exc.strerror}); free space or fix the "
            "permissions of that directory, then try again"
        ) from None
    try:
        return read_key(path, "console key", min_length=KEY_LENGTH, fix=fix)
    except FileNotFoundError:
        raise ConfigError(f"the console key {path} vanished while it was read; try again") from None


def _serializer(key: bytes):

    return URLSafeTimedSerializer(key, salt="spamfilter-panel-user")


def login_token(key: bytes, viewer: Viewer, next_path: str = "/", *, console: bool = False) -> str:
    """A one-use token that logs *viewer* in to the console and opens *next_path*; with
    *console*, *viewer* is the console's own admin (whose session rests on the console's
    password, not on the panel's records)."""
    data: dict[str, str | int] = {
        "role": viewer.role,
        "name": viewer.name,
        "next": next_path,
        "n": secrets.token_hex(8),
    }
    if console:
        data["c"] = 1
    return _serializer(key).dumps(data)


class Link(NamedTuple):
    """What a login link opens: who, where, and whether it is the console's own admin."""

    viewer: Viewer
    next_path: str
    console: bool = False


class LinkRedeemer:
    """Checks login tokens: signature, age and one use each."""

    def __init__(self, key: bytes, clock=time.monotonic) -> None:
        self.key, self.clock = key, clock
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def _load(self, token: str) -> dict:
        """The contents of a valid, unused *token*; Refused otherwise."""

        try:
            data = _serializer(self.key).loads(token, max_age=LINK_SECONDS)
        except SignatureExpired:
            raise Refused(
                "this login link has expired; open the page from the panel again"
            ) from None
        except BadSignature:
            raise Refused("this login link is not valid") from None
        if not isinstance(data, dict) or data.get("role") not in ROLES:
            raise Refused("this login link is not valid")
        if data.get("n") in self._used:
            raise Refused("this login link was used already; open the page from the panel again")
        return data

    @staticmethod
    def _link(data: dict) -> Link:
        viewer = Viewer(data["role"], data["name"])
        return Link(viewer, safe_next(data.get("next")), bool(data.get("c")))

    def peek(self, token: str) -> Link:
        """What a valid, unused *token* opens, without using it up."""
        with self._lock:
            return self._link(self._load(token))

    def redeem(self, token: str) -> Link:
        """Like :meth:`peek`, and the token is used up (one use each)."""
        now = self.clock()
        with self._lock:
            self._used = {n: t for n, t in self._used.items() if now - t < LINK_SECONDS * 2}
            data = self._load(token)
            self._used[data["n"]] = now
        return self._link(data)
