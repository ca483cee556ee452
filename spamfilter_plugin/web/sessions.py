"""Console sessions, the login throttle and the paths a login may lead to.

A session is a random id in the signed cookie and a row in the queue's store (only the id's
SHA-256 is kept).  Every request looks the row up: a logout deletes it, so every copy of the
cookie stops working at once; a session unused for ``[console] session_idle_minutes`` or
older than ``session_max_hours`` ends; and what the session rests on is checked again against
the panel's records and the config on every request (a panel user whose role changed or who
is gone, a mailbox the panel no longer has, a console password that was changed), so a
session never outlives the rights it was opened with.

The throttle counts a login try before the password is checked, per address (an IPv6 /64
counts as one address) and per account: after :data:`FREE_TRIES` tries in a row from one
address, or :data:`ACCOUNT_FREE_TRIES` failed tries for one account within
:data:`ACCOUNT_WINDOW` seconds from whatever addresses, each further try waits (doubling).
The account's wait is capped at :data:`ACCOUNT_MAX_WAIT`, so an attacker cannot keep the
admin out for long; the login link ``spamfilter ui link`` makes is never throttled.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import threading
import time
from dataclasses import dataclass

from .access import Refused, Viewer, panel_viewer

#: tries in a row from one address before each further one waits (1, 2, 4... s)
FREE_TRIES = 3
MAX_WAIT = 300.0
#: failed tries for one account within ACCOUNT_WINDOW seconds before each further one waits
ACCOUNT_FREE_TRIES = 5
ACCOUNT_WINDOW = 15 * 60.0
ACCOUNT_MAX_WAIT = 60.0
#: seconds between two writes of a session's last use (each is a synced commit)
SEEN_EVERY = 15.0


def address_key(address: str) -> str:
    """Whom the throttle counts for *address*: the IPv4 address, or the IPv6 /64 (a host
    gets a whole /64, so it would otherwise have endless addresses)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "-"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class Throttle:
    """Counts login tries and says how long the next one must wait (see the module)."""

    def __init__(self, clock=time.monotonic, pause: float = 0.5) -> None:
        self.clock, self.pause = clock, pause
        self._addresses: dict[str, tuple[int, float, float]] = {}  # count, wait until, last
        self._accounts: dict[str, list[float]] = {}  # the times of tries not yet forgiven
        self._account_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def begin(self, address: str, account: str) -> float:
        """Count a try from *address* for *account*, before its password is checked; 0.0 when
        it may go ahead, else the seconds to wait (and nothing is counted)."""
        key = address_key(address)
        with self._lock:
            now = self.clock()
            self._prune(now)
            count, until, _ = self._addresses.get(key, (0, 0.0, now))
            wait = max(until, self._account_until.get(account, 0.0)) - now
            if wait > 0:
                return wait
            count += 1
            until = now + min(MAX_WAIT, 2.0 ** (count - FREE_TRIES)) if count >= FREE_TRIES else 0
            self._addresses[key] = (count, until, now)
            tries = self._accounts.setdefault(account, [])
            tries.append(now)
            if len(tries) >= ACCOUNT_FREE_TRIES:
                extra = len(tries) - ACCOUNT_FREE_TRIES
                self._account_until[account] = now + min(ACCOUNT_MAX_WAIT, 2.0**extra)
            return 0.0

    def failed(self) -> None:
        """A try failed: the answer waits a moment (the count was made by :meth:`begin`)."""
        time.sleep(self.pause)

    def succeeded(self, address: str, account: str) -> None:
        with self._lock:
            self._addresses.pop(address_key(address), None)
            self._accounts.pop(account, None)
            self._account_until.pop(account, None)

    def wait_for(self, address: str, account: str = "") -> float:
        """The seconds a try from *address* for *account* must still wait (0: none)."""
        with self._lock:
            now = self.clock()
            _, until, _ = self._addresses.get(address_key(address), (0, 0.0, now))
            return max(0.0, max(until, self._account_until.get(account, 0.0)) - now)

    def _prune(self, now: float) -> None:
        """Forget addresses quiet for the window and whose wait is over, and account tries
        older than the window."""
        for key, (_, until, last) in list(self._addresses.items()):
            if until <= now and now - last > ACCOUNT_WINDOW:
                del self._addresses[key]
        for account, tries in list(self._accounts.items()):
            tries[:] = [t for t in tries if now - t <= ACCOUNT_WINDOW]
            if not tries:
                del self._accounts[account]
                if self._account_until.get(account, 0.0) <= now:
                    self._account_until.pop(account, None)

    def size(self) -> int:
        """How many addresses and accounts are remembered (the table stays bounded)."""
        with self._lock:
            return len(self._addresses) + len(self._accounts)


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def password_stamp(password_hash: str) -> str:
    """What a console login rests on: the password's hash, as a fingerprint (a new password
    ends the sessions opened with the old one)."""
    return "console:" + hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@dataclass
class Ended:
    """Why a session is over (shown on the login page)."""

    reason: str


class SessionKeeper:
    """Opens, checks and ends console sessions in *queue* (the store).

    :param console: the :class:`~.app.Console` (its adapter, password and limits).
    :param records: a callable giving the request's :class:`~.access.Records`.
    """

    def __init__(self, console, clock=time.time) -> None:
        self.console = console
        self.clock = clock
        conf = console.runtime.config.console
        self.idle = conf["session_idle_minutes"] * 60.0
        self.lifetime = conf["session_max_hours"] * 3600.0

    def open(self, queue, viewer: Viewer, stamp: str) -> str:
        """A new session for *viewer*; the id to put in the cookie."""
        sid = secrets.token_urlsafe(32)
        queue.session_prune(self.idle, self.lifetime)
        queue.session_open(_digest(sid), viewer.role, viewer.name, stamp)
        return sid

    def end(self, queue, sid: str | None) -> None:
        if sid:
            queue.session_end(_digest(sid))

    def current(self, queue, sid: str | None, records) -> Viewer | Ended | None:
        """The viewer of the session *sid*, checked again; Ended (the row deleted) when it is
        over; None when there is no session."""
        if not sid or not isinstance(sid, str):
            return None
        digest = _digest(sid)
        row = queue.session_get(digest)
        if row is None:
            return Ended("Your session has ended; log in again.")
        now = self.clock()
        viewer = Viewer(row["role"], row["name"])
        reason = None
        if now - row["seen_at"] > self.idle:
            reason = "Your session ended after being idle; log in again."
        elif now - row["created_at"] > self.lifetime:
            reason = "Your session reached its time limit; log in again."
        else:
            reason = self._still_allowed(viewer, row["stamp"], records)
        if reason is not None:
            queue.session_end(digest)
            return Ended(reason)
        if now - row["seen_at"] >= SEEN_EVERY:
            queue.session_seen(digest)
        return viewer

    def _still_allowed(self, viewer: Viewer, stamp: str, records) -> str | None:
        """None when the panel's records and the config still give *viewer* what the
        session was opened with; else why not."""
        console = self.console
        if stamp.startswith("console:"):
            same_user = viewer.name == console.username
            if not same_user or stamp != password_stamp(console.password_hash):
                return "The console's login changed; log in again."
            return None
        if viewer.role == "mailbox":
            domain = viewer.name.rsplit("@", 1)[-1]
            if viewer.name not in records.mailboxes_of(domain):
                return f"{viewer.name} is no longer a mailbox on the panel."
            return None
        if viewer.role == "user" and records.owns_api_domain(viewer.name):
            return None  # a billing system's customer: no panel knows them
        try:
            now = panel_viewer(console.adapter, viewer.name)
        except Refused:
            return f"{viewer.name} is no longer a user of the panel."
        if now.role != viewer.role:
            return f"{viewer.name} is now a {now.role} on the panel; open the console again."
        return None
