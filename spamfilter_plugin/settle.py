"""Settling an unclear answer to a creation or a deletion by reading what the vendor holds.

A vendor that refuses without saying why (:class:`~.errors.VendorUnclear`: no code, a
message its document does not list) may mean "it is there already", "it is not there" or
something else entirely.  Where the vendor's API can list its domains, the answer is read
back instead of guessed from the words:

* a creation: held with our destination -> done; held with another -> the vendor's update
  is made; not held -> the refusal stands;
* a deletion: not held -> done (deleting what is gone is a success); held -> the refusal
  stands.

Each vendor's hook passes its own calls; the rule is here, once.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import VendorUnclear
from .redaction import get_logger

log = get_logger(__name__)

#: what *route_of* answers for a domain the vendor does not hold
NOT_HELD = object()


def current_route(route_of: Callable[[str], object], domain: str):
    """*route_of*'s answer for *domain*, None for :data:`NOT_HELD` (what a vendor's
    ``domain_current_route`` hook answers)."""
    route = route_of(domain)
    return None if route is NOT_HELD else route


def plain_route(route) -> str:
    """A route as routes are compared: lower-case, without a trailing dot."""
    return str(route).lower().rstrip(".")


def created(
    vendor: str,
    domain: str,
    create: Callable[[], object],
    *,
    route_of: Callable[[str], object],
    wanted: str,
    update: Callable[[], object],
) -> str:
    """Run *create*; settle an unclear refusal by :func:`route_of` (the route the vendor
    holds for *domain*, or :data:`NOT_HELD`).  ``added``, ``held`` (there already with the
    *wanted* route) or ``updated`` (there with another; *update* was made); the refusal is
    raised again when the domain is not held."""
    try:
        create()
        return "added"
    except VendorUnclear as exc:
        route = route_of(domain)
        if route is NOT_HELD:
            raise
        if route is not None and plain_route(route) == plain_route(wanted):
            log.info("%s: %s: creation answered %s; it is held with %s", vendor, domain, exc, route)
            return "held"
        log.info("%s: %s: creation answered %s; held with %s: updating", vendor, domain, exc, route)
        update()
        return "updated"


def deleted(
    vendor: str, domain: str, delete: Callable[[], object], *, route_of: Callable[[str], object]
) -> str:
    """Run *delete*; settle an unclear refusal by :func:`route_of`.  ``removed`` or ``gone``
    (not held: the deletion's intent is met); the refusal is raised again when it is held."""
    try:
        delete()
        return "removed"
    except VendorUnclear as exc:
        if route_of(domain) is not NOT_HELD:
            raise
        log.info("%s: %s: deletion answered %s; it is not held: done", vendor, domain, exc)
        return "gone"
