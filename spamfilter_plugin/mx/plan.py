"""Which MX records a switch and a restore leave in a zone.

Pure functions over MX sets (``((priority, host), ...)``, see
:func:`~spamfilter_plugin.mx.lookup.mx_set`), so the rules are one place and tested
without a panel:

* a switch leaves exactly the vendor's set;
* a restore takes out only the records that point at the vendor's MX hosts, and puts back
  what was recorded before the switch; with nothing recorded, the server's mail host is the
  fallback when nothing else would be left;
* neither ever leaves a zone without an MX record (:class:`EmptyZone` says why instead).
"""

from __future__ import annotations

from dataclasses import dataclass

from .lookup import MxSet, mx_set


class EmptyZone(ValueError):
    """The change would leave the zone without an MX record; the message says what to set."""


@dataclass(frozen=True)
class Change:
    """The records to take out and put in, and the set the zone ends with."""

    remove: MxSet
    add: MxSet
    result: MxSet

    @property
    def empty(self) -> bool:
        """True when the zone already holds the result (nothing to do)."""
        return not self.remove and not self.add


def _change(current: MxSet, result: MxSet) -> Change:
    if not result:
        raise EmptyZone("the zone would be left without an MX record")
    return Change(
        remove=tuple(r for r in current if r not in result),
        add=tuple(r for r in result if r not in current),
        result=result,
    )


def switch(current, vendor) -> Change:
    """Point the zone at the vendor: its MX set becomes exactly *vendor*."""
    vendor = mx_set(vendor)
    if not vendor:
        raise EmptyZone("the vendor has no MX hosts configured; set mx = [...] in its table")
    return _change(mx_set(current), vendor)


def restore(current, recorded, vendor, mail_host: str | None = None) -> Change:
    """Take the vendor's MX hosts out of *current* and put *recorded* back; with nothing
    recorded and nothing else left, fall back to *mail_host* (priority 10)."""
    current = mx_set(current)
    hosts = {h for _, h in mx_set(vendor)}
    kept = {r for r in current if r[1] not in hosts}
    recorded = mx_set(recorded)
    if recorded:
        result = mx_set(kept | set(recorded))
    elif kept:
        result = mx_set(kept)
    elif mail_host:
        result = mx_set([(10, mail_host)])
    else:
        raise EmptyZone(
            "nothing was recorded before the switch and no other MX record is left; set "
            "[general] mail_host to the host that receives this server's mail"
        )
    return _change(current, result)
