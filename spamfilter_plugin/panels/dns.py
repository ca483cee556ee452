"""The panel's DNS: read a domain's records, change its MX set, add and remove a TXT record.

The panel owns its zones, so records change only through its documented interface (a
zone file edited behind its back is overwritten at its next rewrite).  This module is the
service every panel shares (:class:`Zones`: the MX and TXT operations, built on reading and
applying records); each panel's ``<panel>/dns.py`` implements reading and applying through
that panel's own interface (cPanel's WHM API 1, DirectAdmin's ``CMD_API_DNS_ADMIN``,
``plesk bin dns``, ``virtualmin get-dns``/``modify-dns``), and a panel adapter's
:meth:`~.Panel.dns` gives it.

Records are :class:`Record` (``name`` fully qualified, lower case, no trailing dot; MX
``value`` ``"10 host"``; TXT ``value`` the text), each keeping the panel's own form in
``raw`` so a removal names the record exactly as the panel stores it.  A change is read
back: when the zone does not hold what was asked, :class:`~..errors.PanelError` says what
it holds instead.  Panels that change records one call at a time add before they remove,
read the zone back after each addition and before each removal, and never remove the last
MX record, so a zone is never without MX, even when the panel misbehaves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import PanelError
from ..mx.lookup import MxSet, mx_set
from ..mx.plan import EmptyZone

#: the TTL of records we add, where the panel asks for one (cPanel's default)
TTL = 14400


@dataclass(frozen=True)
class Record:
    name: str
    type: str
    value: str
    raw: Any = field(default=None, compare=False, hash=False)

    @property
    def mx(self) -> tuple[int, str]:
        priority, host = self.value.split(None, 1)
        return int(priority), host


def absolute(name: str, zone: str) -> str:
    """*name* as written in a zone (relative, ``@``, or with the final dot) made fully
    qualified, lower case, without the final dot."""
    name = name.strip().lower()
    if name in ("", "@"):
        return zone
    if name.endswith("."):
        return name[:-1]
    return f"{name}.{zone}"


def relative(name: str, zone: str) -> str:
    """The part of *name* before *zone* ('' for the zone itself)."""
    name = name.lower().rstrip(".")
    return "" if name == zone else name[: -len(zone) - 1]


def mx_value(priority, host: str) -> str:
    return f"{int(priority)} {host.rstrip('.').lower()}"


class Zones:
    """One panel's DNS service: subclasses read (:meth:`records`) and change
    (:meth:`apply`); the MX and TXT operations are built on those two."""

    #: whether :meth:`apply` is one call (else it adds before it removes)
    atomic = False

    def __init__(self, conf: dict, panel=None) -> None:
        self.conf = conf
        self.panel = panel

    def records(self, domain: str, rtype: str | None = None) -> list[Record]:
        raise NotImplementedError

    def apply(self, domain: str, remove: list[Record], add: list[Record]) -> None:
        raise NotImplementedError

    def exists(self, domain: str) -> bool:
        """Whether the panel still has *domain* (its zone goes with it)."""
        raise NotImplementedError

    def remote_mail(self, domain: str) -> str | None:
        """Why this server does not handle *domain*'s mail (the panel's "remote mail"
        setting), or None when it does."""
        raise NotImplementedError

    # -- built on records() and apply() --------------------------------------------------

    def of_type(self, domain: str, rtype: str) -> list[Record]:
        return [r for r in self.records(domain, rtype) if r.type == rtype]

    def mx(self, domain: str) -> MxSet:
        """The MX set of the zone apex of *domain*."""
        return mx_set(r.mx for r in self.of_type(domain, "MX") if r.name == domain)

    def change_mx(self, domain: str, remove, add) -> MxSet:
        """Take the (priority, host) pairs *remove* out of the zone and put *add* in; the
        set the zone holds afterwards (read back).  EmptyZone when the zone would be left
        without MX; PanelError when the panel did not do what was asked."""
        held = [r for r in self.of_type(domain, "MX") if r.name == domain]
        current = mx_set(r.mx for r in held)
        remove, add = set(mx_set(remove)), set(mx_set(add))
        expected = mx_set((set(current) - remove) | add)
        if not expected:
            raise EmptyZone(f"{domain}: the zone would be left without an MX record")
        if expected == current:
            return current
        gone = [r for r in held if r.mx in remove and r.mx not in add]
        new = [Record(domain, "MX", mx_value(p, h)) for p, h in sorted(add - set(current))]
        if self.atomic:
            self.apply(domain, gone, new)
        else:
            self._one_at_a_time(domain, gone, new)
        after = self.mx(domain)
        if after != expected:
            raise PanelError(
                f"{domain}: after the MX change the panel holds {_shown(after)}; "
                f"expected {_shown(expected)}"
            )
        return after

    def _one_at_a_time(self, domain: str, gone: list[Record], new: list[Record]) -> None:
        """For a panel that changes one record per call: add each record and read the zone
        back, then remove each only after reading that another MX record stays.  At the
        first surprise (a record the panel did not keep, a removal that would empty the
        zone) PanelError, and nothing more is changed."""
        for record in new:
            self.apply(domain, [], [record])
            held = self.mx(domain)
            if record.mx not in held:
                raise PanelError(
                    f"{domain}: the panel did not keep the MX record {record.value} it was "
                    f"asked to add (it holds {_shown(held)}); stopped before removing anything"
                )
        for record in gone:
            held = self.mx(domain)
            if record.mx not in held:
                continue  # gone already
            if not set(held) - {record.mx}:
                raise PanelError(
                    f"{domain}: removing {record.value} would leave the zone without an MX "
                    f"record (it holds {_shown(held)}); stopped"
                )
            self.apply(domain, [record], [])

    def txt(self, domain: str, name: str) -> list[str]:
        """The values of the TXT records at *name* (fully qualified)."""
        name = name.rstrip(".").lower()
        return [r.value for r in self.of_type(domain, "TXT") if r.name == name]

    def add_txt(self, domain: str, name: str, value: str) -> bool:
        """Publish the TXT record *name* (fully qualified) = *value*; False when it was
        there already."""
        name = name.rstrip(".").lower()
        if value in self.txt(domain, name):
            return False
        self.apply(domain, [], [Record(name, "TXT", value)])
        if value not in self.txt(domain, name):
            raise PanelError(f"{domain}: the panel did not keep the TXT record {name}")
        return True

    def remove_txt(self, domain: str, name: str, value: str) -> bool:
        """Remove that TXT record; False when it was not there."""
        name = name.rstrip(".").lower()
        found = [r for r in self.of_type(domain, "TXT") if r.name == name and r.value == value]
        if not found:
            return False
        self.apply(domain, found, [])
        return True


def _shown(records: MxSet) -> str:
    return ", ".join(f"{p} {h}" for p, h in records) or "no MX records"
