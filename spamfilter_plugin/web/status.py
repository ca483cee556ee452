"""The dashboard's rows: per domain, each vendor's state, the MX state and the last event.

A vendor's state for a domain is read from what was last asked of it (the newest
``domain_created`` or ``domain_deleted`` row of that vendor for that domain):

==================  ==========================================================
``protected``       the vendor accepted the domain (``domain_created`` done)
``pending``         waiting for the worker, or retrying after a failure
``failed``          the queue gave up (a dead row); the vendor's reason is shown
``not protected``   never sent, or removed (``domain_deleted`` done: "unprotected")
==================  ==========================================================

:class:`ListQuery` is the domain list's search, filters, sorting and paging, read from a
request's arguments and written back into links, so every page, the CSV export and the
select-all act on the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import idna

from ..queue import Row

STATES = ("protected", "pending", "failed", "not protected")
DOMAIN_HOOKS = ("domain_created", "domain_deleted")
PAGE_SIZE = 25
PAGE_SIZES = (25, 50, 100, 250)
#: the sort orders of the domain list, by the name the page links use
SORTS = {"name": "name", "state": "state", "changed": "last change"}
#: the orders of a sort
ORDERS = ("asc", "desc")
#: worst first: sorting by state puts the domains that need a look at the top
STATE_RANK = {"failed": 0, "pending": 1, "not protected": 2, "protected": 3}


def shown_name(domain: str) -> str:
    """A domain as people write it (``bücher.example``)."""
    try:
        return idna.decode(domain)
    except (idna.IDNAError, UnicodeError):
        return domain


@dataclass
class VendorState:
    state: str
    detail: str = ""
    #: when the vendor's state last changed (wall clock; None when nothing was sent)
    at: float | None = None


@dataclass
class DomainStatus:
    domain: str
    vendors: dict[str, VendorState]
    mx: dict[str, Any] | None = None
    last: Row | None = None
    #: in fleet mode, the server whose panel holds the domain
    server: str | None = None
    #: since when (wall clock) and why the panel suspended the domain's account, if it did
    suspended: tuple[float, str | None] | None = None
    #: the panel account that owns the domain, where the panel's records say
    owner: str | None = None
    #: set when the API owns the domain (no panel holds it): its destination, who added
    #: it and when
    api: Mapping[str, Any] | None = None

    @property
    def unicode(self) -> str:
        return shown_name(self.domain)

    @property
    def is_idn(self) -> bool:
        return self.unicode != self.domain

    @property
    def last_change(self) -> float:
        """When something last happened to the domain at a vendor (0 when never)."""
        return self.last.updated_at if self.last is not None else 0.0

    def worst(self, vendor: str = "") -> str:
        """The state that most needs a look, of *vendor* (or of any vendor)."""
        picked = [self.vendors[vendor]] if vendor else list(self.vendors.values())
        states = [v.state for v in picked] or ["not protected"]
        return min(states, key=lambda s: STATE_RANK.get(s, 9))


def event_words(row: Row) -> str:
    """What a domain row asked of its vendor and how far it got, as an admin says it."""
    verb = "protect" if row.hook == "domain_created" else "unprotect"
    if row.state == "done":
        return f"{verb}ed"
    if row.state == "dead":
        return f"{verb}ing failed"
    if row.state == "superseded":
        return f"{verb}: replaced by a later event"
    return f"{verb}ing"


def vendor_state(row: Row | None) -> VendorState:
    if row is None:
        return VendorState("not protected")
    at = row.updated_at
    if row.state == "dead":
        return VendorState("failed", row.last_error or "the vendor refused it", at)
    if row.state in ("pending", "leased"):
        detail = f"retrying after: {row.last_error}" if row.attempts and row.last_error else ""
        return VendorState("pending", detail, at)
    if row.hook == "domain_created":
        return VendorState("protected", "", at)
    return VendorState("not protected", "unprotected", at)


#: what an end customer reads instead of a vendor's reason (meant for the admin: licences,
#: quotas, the vendor's own words)
CUSTOMER_WORDS = {
    "failed": "filtering could not be set up yet; your host has been told",
    "pending": "being set up",
}


def for_customer(rows: list[DomainStatus]) -> list[DomainStatus]:
    """*rows* as an end customer sees them: each state with a short, plain reason."""
    for row in rows:
        for vendor, state in row.vendors.items():
            if state.detail and state.state in CUSTOMER_WORDS:
                row.vendors[vendor] = replace(state, detail=CUSTOMER_WORDS[state.state])
    return rows


def statuses(
    domains: list[str],
    vendors: list[str],
    latest: dict[tuple[str, str], Row],
    mx: dict[str, Any],
    servers: dict[str, str] | None = None,
    suspensions: dict[str, tuple[float, str | None]] | None = None,
    owners: Mapping[str, str] | None = None,
    api: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[DomainStatus]:
    """One row per domain; *vendors* are those that handle ``domain_created``; *latest* is
    :meth:`~spamfilter_plugin.queue.Queue.latest` of the domain hooks; *mx* maps a domain
    to its MX state (:meth:`~spamfilter_plugin.store.mx.MxState.to_dict`)."""
    out = []
    for domain in domains:
        target = f"domain:{domain}"
        rows = {v: latest.get((v, target)) for v in vendors}
        seen = [r for r in rows.values() if r is not None]
        last = max(seen, key=lambda r: r.id) if seen else None
        per_vendor = {v: vendor_state(r) for v, r in rows.items()}
        server = servers.get(domain) if servers else None
        held = (suspensions or {}).get(domain)
        owner = (owners or {}).get(domain)
        owned = (api or {}).get(domain)
        out.append(
            DomainStatus(domain, per_vendor, mx.get(domain), last, server, held, owner, owned)
        )
    return out


def page_of(rows: list, page: int, size: int = PAGE_SIZE) -> tuple[list, int, int]:
    """The rows of page *page* (from 1), the page shown and the number of pages."""
    pages = max(1, -(-len(rows) // size))
    page = min(max(1, page), pages)
    return rows[(page - 1) * size : page * size], page, pages


@dataclass(frozen=True)
class ListQuery:
    """The domain list as asked for: a search (name in Unicode or punycode, or owner), the
    state, vendor and server filters, the sort and its order, the page size and page."""

    q: str = ""
    state: str = ""
    vendor: str = ""
    server: str = ""
    sort: str = "name"
    order: str = "asc"
    size: int = PAGE_SIZE
    page: int = 1

    @classmethod
    def read(cls, args: Mapping[str, str], vendors: list[str], servers: list[str]) -> ListQuery:
        """From a request's arguments; a value out of range falls back to its default."""

        def pick(name: str, allowed, default):
            value = args.get(name, "")
            return value if value in allowed else default

        def number(name: str, default: int) -> int:
            try:
                return int(args.get(name, default))
            except (TypeError, ValueError):
                return default

        size = number("size", PAGE_SIZE)
        return cls(
            q=str(args.get("q", "")).strip()[:200],
            state=pick("state", STATES, ""),
            vendor=pick("vendor", vendors, ""),
            server=pick("server", servers, ""),
            sort=pick("sort", SORTS, "name"),
            order=pick("order", ORDERS, "asc"),
            size=size if size in PAGE_SIZES else PAGE_SIZE,
            page=max(1, number("page", 1)),
        )

    def params(self, **changes: Any) -> dict[str, Any]:
        """This query's non-default arguments, *changes* applied (for a link or a form)."""
        changed = replace(self, **changes)
        default = ListQuery()
        return {
            f.name: getattr(changed, f.name)
            for f in fields(self)
            if getattr(changed, f.name) != getattr(default, f.name)
        }

    @property
    def narrowed(self) -> bool:
        """Whether a search or a filter leaves some domains out."""
        return bool(self.q or self.state or self.vendor or self.server)

    def matches(self, row: DomainStatus) -> bool:
        if self.vendor and self.vendor not in row.vendors:
            return False
        if self.server and row.server != self.server:
            return False
        if self.state:
            picked = [row.vendors[self.vendor]] if self.vendor else row.vendors.values()
            if not any(v.state == self.state for v in picked):
                return False
        if self.q:
            needle = self.q.casefold()
            haystack = (row.domain, row.unicode.casefold(), (row.owner or "").casefold())
            return any(needle in text for text in haystack)
        return True

    def apply(self, rows: list[DomainStatus]) -> list[DomainStatus]:
        """The rows that match, in the asked-for order (ties by name)."""
        found = [r for r in rows if self.matches(r)]
        found.sort(key=lambda r: (r.unicode.casefold(), r.domain))
        if self.sort == "state":
            found.sort(key=lambda r: STATE_RANK.get(r.worst(self.vendor), 9))
        elif self.sort == "changed":
            found.sort(key=lambda r: r.last_change)
        if self.order == "desc":
            found.reverse()
        return found
