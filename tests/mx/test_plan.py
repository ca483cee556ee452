"""The MX rules: a switch leaves the vendor's set; a restore puts back exactly what was
recorded and removes only the vendor's records; no zone is ever left without MX."""

from __future__ import annotations

import pytest

from spamfilter_plugin.mx.plan import EmptyZone, restore, switch

VENDOR = [(10, "mx1.filter.example."), (20, "MX2.filter.example")]
OWN = [(10, "mail.example.org"), (30, "backup.example.net")]


def test_switch_leaves_exactly_the_vendors_set():
    change = switch(OWN, VENDOR)
    assert change.result == ((10, "mx1.filter.example"), (20, "mx2.filter.example"))
    assert set(change.remove) == {(10, "mail.example.org"), (30, "backup.example.net")}
    assert set(change.add) == set(change.result)
    assert switch(change.result, VENDOR).empty  # switching twice changes nothing


def test_switch_keeps_a_vendor_record_already_there():
    change = switch([(10, "mx1.filter.example"), (5, "old.example.org")], VENDOR)
    assert change.remove == ((5, "old.example.org"),)
    assert change.add == ((20, "mx2.filter.example"),)


def test_restore_puts_back_exactly_what_was_recorded():
    switched = switch(OWN, VENDOR).result
    change = restore(switched, OWN, VENDOR, "mail.example.org")
    assert change.result == ((10, "mail.example.org"), (30, "backup.example.net"))
    assert set(change.remove) == set(switched)


def test_restore_removes_only_the_vendors_records():
    admin_added = (50, "extra.example.net")
    current = [*switch(OWN, VENDOR).result, admin_added]
    change = restore(current, OWN, VENDOR)
    assert admin_added in change.result and admin_added not in change.remove
    assert not {h for _, h in change.result} & {"mx1.filter.example", "mx2.filter.example"}


def test_restore_with_nothing_recorded_falls_back_to_the_mail_host():
    change = restore(switch([], VENDOR).result, [], VENDOR, "Mail.Example.net.")
    assert change.result == ((10, "mail.example.net"),)
    # something else is left: no fallback is added
    kept = restore([*VENDOR, (40, "other.example")], [], VENDOR, "mail.example.net")
    assert kept.result == ((40, "other.example"),)


def test_no_change_leaves_a_zone_without_mx():
    with pytest.raises(EmptyZone, match="mail_host"):
        restore(VENDOR, [], VENDOR, None)
    with pytest.raises(EmptyZone, match="mx = "):
        switch(OWN, [])
