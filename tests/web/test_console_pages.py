"""The console's pages as people meet them: a refused form comes back as it was typed with
each error beside its field, a domain's page opens with its summary and actions, an unknown
domain is not found, and an end customer reads a plain reason where the admin reads the
vendor's."""

from __future__ import annotations

import re

import requests
from console_helpers import admin_session, csrf_of, login, wait_until

from spamfilter_plugin.web.access import Viewer, console_key, login_token


def emulator(demo, name):
    return demo.sandbox[name].emulator


def test_a_refused_form_keeps_what_was_typed_and_names_each_field(demo, page):
    login(page, demo)
    em = emulator(demo, "tornevall")
    page.goto(demo.url + "settings/mailbox/office@bob.example/")
    before = dict(em.preferences.get("office@bob.example", {}))
    form = page.locator("form[name=tornevall-preferences]")
    form.locator("#sfp-required_hits").fill("lots")
    form.locator("#sfp-rewrite_header").fill("Subject [JUNK]")
    with page.expect_navigation() as sent:
        form.get_by_role("button", name="Save preferences").click()
    assert sent.value.status == 422
    assert dict(em.preferences.get("office@bob.example", {})) == before  # nothing saved
    box = page.locator("#sfp-required_hits")
    assert box.input_value() == "lots" and box.get_attribute("aria-invalid") == "true"
    assert "sfp-required_hits-error" in box.get_attribute("aria-describedby")
    error = page.locator("#sfp-required_hits-error").inner_text()
    assert error == "Spam score threshold: must be a score such as 5 or 4.5"
    # the other change the user made is still there, to send again once corrected
    assert page.locator("#sfp-rewrite_header").input_value() == "Subject [JUNK]"
    assert page.locator("#sfp-rewrite_header").get_attribute("aria-invalid") is None
    # the summary at the top names the field by its label and leads to it
    link = page.locator("#sfc-problems a")
    assert link.get_attribute("href") == "#sfp-required_hits"
    assert link.inner_text().startswith("Spam score threshold: ")
    assert "required_hits:" not in page.inner_text("body")
    # corrected, it is saved
    page.locator("#sfp-required_hits").fill("6")
    page.locator("form[name=tornevall-preferences]").get_by_role(
        "button", name="Save preferences"
    ).click()
    assert "sfp-ok" in page.locator(".sfc-flash").first.get_attribute("class")
    assert em.preferences["office@bob.example"]["required_hits"] == "6"
    assert em.preferences["office@bob.example"]["rewrite_header"] == "Subject [JUNK]"


def test_a_domains_page_opens_with_its_summary_and_actions(demo, page):
    wait_until(lambda: "carol.example" in emulator(demo, "spamport").domains)
    login(page, demo)
    page.goto(demo.url + "settings/domain/carol.example/")
    summary = page.locator("#sfc-domain-summary")
    for vendor in ("spamport", "spamwall", "spambarrier"):
        box = summary.locator(f'[data-vendor="{vendor}"]')
        assert box.get_attribute("data-state") == "protected"
        assert re.search(r"UTC \((just now|\d+ min ago)\)", box.inner_text())  # when, with its zone
    assert "Owner: carol" in summary.inner_text()
    wait_until(lambda: mx_of(demo, "carol.example") == "verified")
    page.reload()
    summary = page.locator("#sfc-domain-summary")
    assert summary.locator("[data-mx]").get_attribute("data-mx") == "verified"
    # the vendor that has a panel of its own offers the login here too
    assert summary.get_by_role("button", name="Log in to SpamPort").count() == 1
    # unprotecting asks first and says what it does; cancelling changes nothing
    summary.get_by_role("button", name="Unprotect").click()
    assert page.locator("h1").inner_text() == "Remove protection from 1 domain?"
    assert "is removed at" in page.inner_text("body")
    page.get_by_role("link", name="Cancel").click()
    assert page.url.endswith("/settings/domain/carol.example/")
    assert "carol.example" in emulator(demo, "spamport").domains
    page.locator("#sfc-domain-summary").get_by_role("button", name="Protect", exact=True).click()
    assert "Protecting 1 domain" in page.locator(".sfc-flash").inner_text()
    assert "protect" in page.locator("#sfc-domain-history").inner_text()


def test_an_unknown_domain_is_not_found(demo):
    s = admin_session(demo)
    r = s.get(demo.url + "settings/domain/never-heard-of.example/", timeout=10)
    assert r.status_code == 404 and "There is no such page" in r.text
    r = s.post(demo.url + "domain/alice.example/explode",
               data={"csrf_token": csrf_of(r.text)}, timeout=10)  # fmt: skip
    assert r.status_code == 404


def test_end_customers_read_a_plain_reason_and_the_admin_the_vendors(demo):
    from spamfilter_plugin.queue import open_queue

    wait_until(lambda: "alice.example" in emulator(demo, "spamport").domains)
    q = open_queue(demo.folder / "state")
    try:
        (row,) = [
            r for r in q.rows(target="domain:alice.example", limit=100)
            if r.vendor == "spamport" and r.hook == "domain_created" and r.state == "done"
        ][:1]  # fmt: skip
        reason = "licence limit of reseller 42 reached; upgrade your SpamPort plan"
        q.db.execute("UPDATE events SET state='dead', last_error=? WHERE id=?", (reason, row.id))
        s = admin_session(demo)
        board = s.get(demo.url, params={"q": "alice.example"}, timeout=10).text
        assert reason in board  # the admin needs the vendor's own words
        alice = requests.Session()
        token = login_token(console_key(demo.folder / "state"), Viewer("user", "alice"))
        mine = alice.get(demo.url + f"enter/{token}", timeout=10).text
        cell = re.search(r'data-vendor="spamport" data-state="failed">(.*?)</td>', mine, re.S)
        assert "filtering could not be set up yet; your host has been told" in cell.group(1)
        assert reason not in mine and "licence" not in mine
        page = alice.get(demo.url + "settings/domain/alice.example/", timeout=10).text
        assert reason not in page and "failed for good" in page
        r = s.post(demo.url + f"queue/{row.id}/retry", data={"csrf_token": csrf_of(board)},
                   timeout=10)  # fmt: skip
        assert r.status_code == 200
    finally:
        q.close()
    wait_until(lambda: q_state(demo, row.id) == "done")


def q_state(demo, row_id):
    from spamfilter_plugin.queue import open_queue

    q = open_queue(demo.folder / "state")
    try:
        found = q.get(row_id)
        return found.state if found else None
    finally:
        q.close()


def mx_of(demo, domain):
    s = admin_session(demo)
    page = s.get(demo.url, params={"q": domain}, timeout=10).text
    found = re.search(rf'<tr data-domain="{re.escape(domain)}".*?data-mx="([^"]*)"', page, re.S)
    return found.group(1) if found else None


def test_the_demo_switches_mx_verifies_it_and_puts_it_back(demo, page):
    """The demo manages MX through its panel's DNS administration and the loopback name
    server: a new domain is switched to SpamPort's MX hosts and verified; unprotected, its
    own MX set is put back first."""
    zones = demo.dns.panel_api.zones
    login(page, demo)
    form = page.locator("form[name=demo-domain]")
    form.locator("#demo-owner").select_option("bob")
    form.locator("#demo-domain").fill("mx-tour.example")
    form.get_by_role("button", name="Create domain").click()
    assert zones["mx-tour.example"][0] == ("mx-tour.example.", "MX", "10 mail.mx-tour.example.")
    wait_until(lambda: mx_of(demo, "mx-tour.example") == "verified")
    mx = sorted(v for n, t, v in zones["mx-tour.example"] if t == "MX")
    assert mx == ["10 mx1.spamport.example.", "20 mx2.spamport.example."]
    page.goto(demo.url + "settings/domain/mx-tour.example/")
    page.locator("#sfc-domain-summary").get_by_role("button", name="Unprotect").click()
    assert "MX records of 1 of them are first put back" in page.inner_text("body")
    page.get_by_role("button", name="Remove protection").click()
    wait_until(lambda: mx_of(demo, "mx-tour.example") == "restored")
    mx = [v for n, t, v in zones["mx-tour.example"] if t == "MX"]
    assert mx == ["10 mail.mx-tour.example."]
    wait_until(lambda: "mx-tour.example" not in emulator(demo, "spamport").domains)
