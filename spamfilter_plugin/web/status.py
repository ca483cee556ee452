"""The dashboard's rows: per domain, each vendor's state, the MX state and the last event.

A vendor's state for a domain is read from what was last asked of it (the newest
``domain_created`` or ``domain_deleted`` row of that vendor for that domain):

==================  ==========================================================
``protected``       the vendor accepted the domain (``domain_created`` done)
``pending``         waiting for the worker, or retrying after a failure
``failed``          the queue gave up (a dead row); the vendor's reason is shown
``not protected``   never sent, or removed (``domain_deleted`` done)
==================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import idna

from ..queue import Row

STATES = ("protected", "pending", "failed", "not protected")
DOMAIN_HOOKS = ("domain_created", "domain_deleted")
PAGE_SIZE = 25


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

    @property
    def unicode(self) -> str:
        return shown_name(self.domain)

    @property
    def is_idn(self) -> bool:
        return self.unicode != self.domain


def vendor_state(row: Row | None) -> VendorState:
    if row is None:
        return VendorState("not protected")
    if row.state == "dead":
        return VendorState("failed", row.last_error or "the vendor refused it")
    if row.state in ("pending", "leased"):
        detail = f"retrying after: {row.last_error}" if row.attempts and row.last_error else ""
        return VendorState("pending", detail)
    if row.hook == "domain_created":
        return VendorState("protected")
    return VendorState("not protected", "removed")


def statuses(
    domains: list[str],
    vendors: list[str],
    latest: dict[tuple[str, str], Row],
    mx: dict[str, Any],
    servers: dict[str, str] | None = None,
    suspensions: dict[str, tuple[float, str | None]] | None = None,
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
        out.append(DomainStatus(domain, per_vendor, mx.get(domain), last, server, held))
    return out


def filtered(
    rows: list[DomainStatus], state: str = "", vendor: str = "", server: str = ""
) -> list[DomainStatus]:
    """Rows where *vendor* (or any vendor) is in *state*, on *server* (fleet mode); any
    may be empty (any)."""

    def keep(row: DomainStatus) -> bool:
        if vendor and vendor not in row.vendors:
            return False
        if server and row.server != server:
            return False
        picked = [row.vendors[vendor]] if vendor else row.vendors.values()
        return not state or any(v.state == state for v in picked)

    return [row for row in rows if keep(row)]


def page_of(rows: list, page: int, size: int = PAGE_SIZE) -> tuple[list, int, int]:
    """The rows of page *page* (from 1), the page shown and the number of pages."""
    pages = max(1, -(-len(rows) // size))
    page = min(max(1, page), pages)
    return rows[(page - 1) * size : page * size], page, pages
