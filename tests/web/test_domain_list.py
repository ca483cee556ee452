"""The domain list: search by name (Unicode or punycode) and owner, filters, sorting, page
sizes, the CSV export of the filtered list and the select-all of it."""

from __future__ import annotations

import csv
import io
import re

from console_helpers import admin_session, csrf_of, wait_until

from spamfilter_plugin.queue import Row
from spamfilter_plugin.web import status
from spamfilter_plugin.web.status import DomainStatus, ListQuery, VendorState

VENDORS = ["spamport", "spamwall"]


def row(domain, owner, states, changed=0.0):
    last = None
    if changed:
        last = Row(int(changed), "e", "spamport", "domain_created", f"domain:{domain}", {},
                   False, "done", 1, 0, None, None, changed, changed, None, None, None)  # fmt: skip
    vendors = {v: VendorState(s) for v, s in zip(VENDORS, states, strict=True)}
    return DomainStatus(domain, vendors, last=last, owner=owner)


ROWS = [
    row("zeta.example", "carol", ["protected", "protected"], 30.0),
    row("xn--bcher-kva.example", "alice", ["protected", "failed"], 10.0),
    row("alpha.example", "bob", ["pending", "protected"], 20.0),
    row("carl.example", "alice", ["not protected", "protected"]),
]


def names(rows):
    return [r.domain for r in rows]


def test_search_matches_the_unicode_name_the_punycode_and_the_owner():
    def found(q):
        return names(ListQuery(q=q).apply(ROWS))

    assert found("BÜCHER") == ["xn--bcher-kva.example"]
    assert found("xn--bcher") == ["xn--bcher-kva.example"]
    assert found("alice") == ["xn--bcher-kva.example", "carl.example"]  # owner, and name order
    assert found("nothing-like-it") == []


def test_sorting_by_name_is_in_unicode_order_and_state_puts_the_worst_first():
    assert names(ListQuery().apply(ROWS)) == [
        "alpha.example",
        "xn--bcher-kva.example",
        "carl.example",
        "zeta.example",
    ]  # fmt: skip  (bücher between alpha and carl, not at the end as its punycode would be)
    by_state = names(ListQuery(sort="state").apply(ROWS))
    assert by_state[:3] == ["xn--bcher-kva.example", "alpha.example", "carl.example"]
    assert names(ListQuery(sort="state", vendor="spamport").apply(ROWS))[0] == "alpha.example"
    assert names(ListQuery(sort="changed", order="desc").apply(ROWS)) == [
        "zeta.example", "alpha.example", "xn--bcher-kva.example", "carl.example",
    ]  # fmt: skip


def test_a_query_is_read_back_from_its_own_links_and_refuses_what_it_does_not_know():
    q = ListQuery.read(
        {"q": " Büch ", "state": "failed", "vendor": "spamwall", "sort": "changed",
         "order": "desc", "size": "100", "page": "3"},
        VENDORS, [],
    )  # fmt: skip
    assert q == ListQuery("Büch", "failed", "spamwall", "", "changed", "desc", 100, 3)
    assert ListQuery.read({k: str(v) for k, v in q.params().items()}, VENDORS, []) == q
    odd = ListQuery.read(
        {"state": "lost", "vendor": "nope", "server": "web9", "sort": "x", "size": "7",
         "page": "-2", "order": "sideways"},
        VENDORS, ["web1"],
    )  # fmt: skip
    assert odd == ListQuery()
    assert odd.params() == {} and ListQuery(size=50).params(page=2) == {"size": 50, "page": 2}
    assert status.PAGE_SIZES[0] == status.PAGE_SIZE


def _protected(demo, domain):
    def check():
        return domain in demo.sandbox["spamport"].emulator.domains

    wait_until(check)


def test_the_dashboard_searches_sorts_pages_and_exports(demo):
    _protected(demo, "alice.example")
    s = admin_session(demo)
    page = s.get(demo.url, params={"q": "BÜCHER"}, timeout=10).text
    assert re.findall(r'<tr data-domain="([^"]+)"', page) == ["xn--bcher-kva.example"]
    assert "1 domain match" in page and ">alice</td>" in page  # the owner column
    page = s.get(demo.url, params={"q": "carol", "sort": "name", "order": "desc"}, timeout=10)
    shown = re.findall(r'<tr data-domain="([^"]+)"', page.text)
    assert shown and shown == sorted(shown, reverse=True)
    assert all(d.endswith(".example") for d in shown)
    # the export is the filtered list, every page of it, with each vendor's state
    exported = s.get(demo.url + "domains.csv", params={"q": "xn--bcher"}, timeout=10)
    assert exported.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in exported.headers["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["domain"], r["name"], r["owner"]) for r in lines] == [
        ("xn--bcher-kva.example", "bücher.example", "alice")
    ]
    assert set(lines[0]) >= {"spamport", "spamwall", "spambarrier", "mx", "last change (UTC)"}
    # a page size of 25 by default; any offered size may be chosen, others fall back
    assert 'option value="50"' in page.text
    everything = s.get(demo.url, params={"size": "250"}, timeout=10).text
    assert "Page 1 of 1" in everything


def test_select_all_takes_every_matching_domain_and_says_so(demo):
    _protected(demo, "alice.example")
    s = admin_session(demo)
    page = s.get(demo.url, params={"q": "alice"}, timeout=10).text
    assert "The buttons act on the domains you tick on this page" in page
    done = s.post(
        demo.url + "selection",
        data={"csrf_token": csrf_of(page), "action": "select_all", "q": "alice"},
        timeout=10,
    )
    assert done.status_code == 200 and "q=alice" in done.url
    count = re.search(r'id="sfc-selected-count">(\d+)<', done.text).group(1)
    expected = re.findall(r'<tr data-domain="([^"]+)"', done.text)
    assert int(count) == len(expected) >= 2
    assert f"The buttons act on the {count} selected domains" in done.text
    for domain in expected:
        assert f'value="{domain}" id="sel-{domain}" checked' in done.text
    s.post(demo.url + "selection", data={"csrf_token": csrf_of(page), "action": "clear"},
           timeout=10)  # fmt: skip
