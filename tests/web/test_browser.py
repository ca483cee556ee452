"""The console as an admin and a panel user meet it, in headless Chromium: each change is
made by clicking and typing, and its effect is checked at the emulated vendor."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, HTTPServer
from threading import Thread

import pytest
from console_helpers import login, wait_until

from spamfilter_plugin.web.access import Viewer, console_key, login_token

GATEWAYS = ("spamport", "spamwall", "spambarrier")


def emulator(demo, name):
    return demo.sandbox[name].emulator


def cell(page, domain, vendor):
    return page.locator(f'tr[data-domain="{domain}"] td[data-vendor="{vendor}"]')


def test_create_a_domain_and_watch_it_become_protected(demo, page):
    login(page, demo)
    form = page.locator("form[name=demo-domain]")
    form.locator("#demo-owner").select_option("carol")
    form.locator("#demo-domain").fill("Neu-Laden.example")
    form.get_by_role("button", name="Create domain").click()
    assert "Created Neu-Laden.example for carol" in page.locator(".sfc-flash").inner_text()

    def protected_everywhere():
        page.goto(demo.url + "?vendor=&state=")
        return all(
            cell(page, "neu-laden.example", v).get_attribute("data-state") == "protected"
            for v in GATEWAYS
        )

    wait_until(protected_everywhere)
    assert "neu-laden.example" in emulator(demo, "spamport").domains
    assert "neu-laden.example" in str(emulator(demo, "spamwall").domains)
    assert "neu-laden.example" in emulator(demo, "spambarrier").snapshot()["domains"]
    # the IDN seeded domain is shown as people write it, its punycode beside it
    row = page.locator('tr[data-domain="xn--bcher-kva.example"]')
    assert "bücher.example" in row.inner_text() and "xn--bcher-kva.example" in row.inner_text()


def test_toggle_a_spamport_setting(demo, page):
    login(page, demo)
    wait_until(lambda: "alice.example" in emulator(demo, "spamport").domains)
    page.goto(demo.url + "settings/domain/alice.example/")
    form = page.locator("form[name=spamport-settings]")
    was = emulator(demo, "spamport").domains["alice.example"]["greylist"] == "1"
    assert form.locator("input[name=greylist][type=checkbox]").is_checked() is was
    form.locator("input[name=greylist][type=checkbox]").set_checked(not was)
    form.get_by_role("button", name="Save").click()
    assert page.locator(".sfc-flash").first.inner_text() == "Saved: greylist."
    assert emulator(demo, "spamport").domains["alice.example"]["greylist"] == ("0" if was else "1")
    assert (
        page.locator(
            "form[name=spamport-settings] input[name=greylist][type=checkbox]"
        ).is_checked()
        is not was
    )


def test_rackspace_safelist_add_and_remove(demo, page):
    login(page, demo)
    em = emulator(demo, "rackspace")
    key = next(k for k in em.mailboxes if k[1:] == ("alice.example", "info"))
    page.goto(demo.url + "settings/mailbox/info@alice.example/")
    box = page.locator("details[data-list=safelist]")
    if box.get_attribute("open") is None:
        box.locator("summary").click()
    box.locator("form[name=rackspace-add] input[name=entry]").fill("partner.example")
    box.get_by_role("button", name="Add").click()
    assert "partner.example" in em.mailboxes[key]["lists"]["safelist"]
    box = page.locator("details[data-list=safelist]")
    box.locator("li", has_text="partner.example").get_by_role("button", name="Remove").click()
    assert "partner.example" not in em.mailboxes[key]["lists"]["safelist"]
    assert page.locator("details[data-list=safelist] li", has_text="partner.example").count() == 0


def test_resend_a_spambarrier_quarantine_message(demo, page):
    login(page, demo)
    em = emulator(demo, "spambarrier")
    wait_until(lambda: "bob.example" in em.snapshot()["domains"])
    page.goto(demo.url + "settings/domain/bob.example/")
    resend = page.locator("form[name=spambarrier-resend]").first
    message_id = resend.locator("input[name=message_id]").get_attribute("value")
    held = [m["message_id"] for m in em.quarantine["bob.example"]]
    assert message_id in held
    resend.get_by_role("button", name="Deliver").click()
    flash = page.locator(".sfc-flash").first
    assert "sfp-ok" in flash.get_attribute("class"), flash.inner_text()
    assert message_id not in [m["message_id"] for m in em.quarantine["bob.example"]]


def test_change_a_tornevall_preference(demo, page):
    login(page, demo)
    em = emulator(demo, "tornevall")
    page.goto(demo.url + "settings/mailbox/office@bob.example/")
    form = page.locator("form[name=tornevall-preferences]")
    form.locator("#sfp-required_hits").fill("7.5")
    form.get_by_role("button", name="Save preferences").click()
    assert "required_hits" in page.locator(".sfc-flash").first.inner_text()
    assert em.preferences["office@bob.example"]["required_hits"] == "7.5"


def test_dashboard_paging_keeps_the_bulk_selection(demo, page):
    for n in range(30):
        demo.panel.add_domain("carol", f"page{n:02d}.example")
    login(page, demo)
    page.goto(demo.url)
    assert "Page 1 of" in page.locator(".sfc-pages").inner_text()
    first = page.locator("input[name=selected][value^=page]").first
    first_domain = first.get_attribute("value")
    first.check()
    page.get_by_role("button", name="Page 2 →").click()
    assert "Page 2 of" in page.locator(".sfc-pages").inner_text()
    second = page.locator("input[name=selected][value^=page]").nth(1)
    second_domain = second.get_attribute("value")
    second.check()
    page.get_by_role("button", name="← Page 1").click()
    assert page.locator(f'input[name=selected][value="{first_domain}"]').is_checked()
    assert page.locator("#sfc-selected-count").inner_text() == "2"
    # a bulk action applies to the whole selection, across pages
    page.get_by_role("button", name="Unprotect").click()
    # a removal at the vendors asks first, saying what it does, without JavaScript
    assert page.locator("h1").inner_text() == "Remove protection from 2 domains?"
    assert "is removed at" in page.inner_text("body") and "spamport" in page.inner_text("body")
    assert first_domain in page.locator(".sfc-confirm-items").inner_text()
    page.get_by_role("button", name="Remove protection").click()
    assert "Removing protection from 2 domains" in page.locator(".sfc-flash").inner_text()

    def removed():
        domains = emulator(demo, "spamport").domains
        return first_domain not in domains and second_domain not in domains

    wait_until(removed)
    assert page.locator("#sfc-selected-count").inner_text() == "0"


class _Forger(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self):
        body = (
            f'<form action="{self.target}" method="post">'
            '<input type="hidden" name="action" value="unprotect">'
            '<input type="hidden" name="selected" value="alice.example">'
            '<input type="hidden" name="shown" value="alice.example">'
            '<button type="submit">Win a prize</button></form>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def forger(demo):
    _Forger.target = demo.url + "selection"
    server = HTTPServer(("127.0.0.1", 0), _Forger)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def test_a_forged_cross_site_post_is_refused(demo, page, forger):
    login(page, demo)
    wait_until(lambda: "alice.example" in emulator(demo, "spamport").domains)
    page.goto(forger)
    page.get_by_role("button", name="Win a prize").click()
    assert "Nothing was changed" in page.locator("#sfc-refusal").inner_text()
    page.goto(demo.url)
    assert "Removing protection" not in page.inner_text("body")
    assert "alice.example" in emulator(demo, "spamport").domains


def test_a_panel_user_sees_only_their_own(demo, page, caplog):
    token = login_token(console_key(demo.folder / "state"), Viewer("user", "alice"))
    page.goto(demo.url + f"enter/{token}")
    rows = page.locator("tr[data-domain]")
    shown = sorted(rows.nth(i).get_attribute("data-domain") for i in range(rows.count()))
    assert shown == ["alice.example", "xn--bcher-kva.example"]
    assert page.locator("input[name=selected]").count() == 0  # no bulk actions
    response = page.goto(demo.url + "settings/domain/bob.example/")
    assert response.status == 403
    assert "bob.example is not one of alice's domains" in page.inner_text("#sfc-refusal")
    response = page.goto(demo.url + "settings/mailbox/bob@bob.example/")
    assert response.status == 403
    # a form of her own page, pointed at bob's domain, is refused too
    page.goto(demo.url + "settings/domain/alice.example/")
    page.evaluate(
        "document.querySelector('form[name=spamport-settings]').action = "
        "'/settings/domain/bob.example/spamport/domain'"
    )
    before = dict(emulator(demo, "spamport").domains["bob.example"])
    page.locator("form[name=spamport-settings]").get_by_role("button", name="Save").click()
    assert "bob.example is not one of alice's domains" in page.inner_text("#sfc-refusal")
    assert emulator(demo, "spamport").domains["bob.example"] == before
    # and the link cannot be used twice
    assert page.goto(demo.url + f"enter/{token}").status == 403


def test_queue_and_admin_pages(demo, page):
    login(page, demo)
    page.goto(demo.url + "queue")
    assert page.locator("h1").inner_text() == "Queue"
    page.goto(demo.url + "settings/admin/")
    assert "SpamPort domains" in page.inner_text("body")
    assert "bücher.example" in page.locator(".sfp-vendor-spamport").inner_text()


def test_a_decimal_spam_threshold_is_saved_from_the_browser(demo, page):
    login(page, demo)
    em = emulator(demo, "spambarrier")
    wait_until(lambda: "bob.example" in em.domains)
    page.goto(demo.url + "settings/domain/bob.example/")
    form = page.locator("form[name=spambarrier-filter]")
    box = form.locator("#sfp-spam_threshold")
    assert (box.get_attribute("min"), box.get_attribute("max"), box.get_attribute("step")) == (
        "0",
        "100",
        "any",
    )
    box.fill("6.5")
    form.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    assert em.domains["bob.example"]["filter"]["spam_threshold"] == 6.5
    # the change is in the domain's history on its page, and on the History page, old -> new
    history = page.locator("#sfc-domain-history").inner_text()
    assert "admin (admin)" in history and "spam_threshold" in history and "→ 6.5" in history
    page.get_by_role("link", name="History").click()
    page.fill("#h-target", "bob.example")
    page.get_by_role("button", name="Show").click()
    row = page.locator("table.sfc-history tbody tr").first.inner_text()
    assert "settings" in row and "spambarrier" in row and "spam_threshold" in row
    assert "ok: Filter settings saved." in row


def test_spamwall_levels_out_of_order_are_refused_naming_both(demo, page):
    login(page, demo)
    em = emulator(demo, "spamwall")
    page.goto(demo.url + "settings/admin/")
    form = page.locator("form[name=spamwall-levels]")
    before = json.dumps(em.snapshot()["scores"], sort_keys=True)
    for level, value in (("spam_tag_level", 9), ("spam_tag2_level", 3), ("spam_kill_level", 1)):
        form.locator(f"#sfp-{level}").fill(str(value))
    form.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    text = page.inner_text("body")
    assert "'Mark as spam from score' (3) must not be below" in text
    assert "'Mark as possible spam from score' (9)" in text
    assert json.dumps(em.snapshot()["scores"], sort_keys=True) == before  # nothing saved
