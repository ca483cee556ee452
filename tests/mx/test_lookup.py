"""MX lookups against an authoritative DNS server on loopback (never the internet)."""

from __future__ import annotations

import pytest

from spamfilter_plugin.mx.lookup import lookup, mx_set
from spamfilter_plugin.sandbox.dns import ZoneServer

VENDOR = [(10, "mx1.filter.example"), (20, "mx2.filter.example")]


@pytest.fixture
def zone():
    with ZoneServer(
        {
            "example.org": {"MX": ["10 mail.example.org."], "A": ["192.0.2.1"]},
            "nomx.example": {"A": ["192.0.2.2"]},
        }
    ) as server:
        yield server


def ask(zone, domain, **kw):
    return lookup(domain, nameservers=["127.0.0.1"], port=zone.port, timeout=2, **kw)


def test_the_current_set_is_read_and_compared(zone):
    answer = ask(zone, "Example.ORG")
    assert answer.status == "found" and answer.records == ((10, "mail.example.org"),)
    assert not answer.matches(VENDOR)
    assert answer.describe() == "10 mail.example.org"


def test_a_switch_is_seen_as_soon_as_the_server_serves_it(zone):
    zone.set("example.org", "MX", ["20 MX2.filter.example.", "10 mx1.filter.example."])
    answer = ask(zone, "example.org")
    assert answer.matches(VENDOR) and answer.records == mx_set(VENDOR)
    zone.set("example.org", "MX", ["10 mx1.filter.example."])  # one record short
    assert not ask(zone, "example.org").matches(VENDOR)


def test_no_mx_no_domain_and_no_answer_are_told_apart(zone):
    assert ask(zone, "nomx.example").status == "none"
    assert ask(zone, "absent.example").status == "nxdomain"
    zone.silent = True
    before = zone.queries
    answer = lookup("example.org", nameservers=["127.0.0.1"], port=zone.port, timeout=0.5)
    assert answer.status == "error" and answer.detail
    assert not answer.matches(VENDOR) and answer.describe().startswith("no answer")
    assert zone.queries > before  # the silent server was asked, and said nothing


def test_a_nameserver_may_be_given_by_name(zone):
    answer = lookup("example.org", nameservers=["localhost"], port=zone.port, timeout=3)
    assert answer.records == ((10, "mail.example.org"),)
