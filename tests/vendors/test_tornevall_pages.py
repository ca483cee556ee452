"""The Tornevall pages as a user meets them: served by a page host, opened in headless
Chromium, changed by ticking, typing and clicking; the effect checked in the emulator."""

import pytest
from page_host import PageHost

from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.sandbox.tornevall import API_KEY, APPLICATION
from spamfilter_plugin.testing import LoopbackServer, write_config

EMAIL = "test@tornevall-domain.com"


@pytest.fixture
def site(tmp_path, tornevall_sandbox):
    vendor = {
        "api_url": tornevall_sandbox.url,
        "application": APPLICATION,
        "api_key": API_KEY,
        "preferences": {"required_hits": "4.5"},
    }
    runtime = load_runtime(write_config(tmp_path / "c.toml", {}, {"tornevall": vendor}))
    with LoopbackServer(PageHost(runtime)) as server:
        yield server.url


def test_mailbox_preferences_in_the_browser(site, page, tornevall_sandbox):
    em = tornevall_sandbox.emulator
    page.goto(f"{site}/mailbox/{EMAIL}/")
    form = page.locator("form[name=tornevall-preferences]")
    assert form.locator("#sfp-use_bayes").is_checked()
    assert form.locator("input[name=bayes_auto_learn]").count() == 0  # strict: read-only
    assert "Set by Tornevall for every mailbox" in form.inner_text()
    form.locator("#sfp-use_bayes").uncheck()
    form.locator("#sfp-required_hits").fill("6.5")
    form.get_by_role("button", name="Save preferences").click()
    assert page.locator(".sfp-message").inner_text() == "Saved: required_hits, use_bayes."
    assert em.preferences[EMAIL] == {"required_hits": "6.5", "use_bayes": "0"}
    assert not page.locator("#sfp-use_bayes").is_checked()  # the page shows what is held now
    page.locator("#sfp-required_hits").fill("lots")
    page.get_by_role("button", name="Save preferences").click()
    assert "sfp-error" in page.locator(".sfp-message").get_attribute("class")
    assert "required_hits" in page.locator("[data-field=required_hits]").inner_text()
    assert em.preferences[EMAIL]["required_hits"] == "6.5"


def test_mailbox_whitelist_in_the_browser(site, page, tornevall_sandbox):
    em = tornevall_sandbox.emulator
    page.goto(f"{site}/mailbox/{EMAIL}/")
    add = page.locator("form[name=tornevall-mask-add]")
    add.locator("#sfp-emailmask").fill("*@*.Pal.example")
    add.get_by_role("button", name="Add").click()
    assert page.locator(".sfp-message").inner_text() == "*@*.pal.example is on your whitelist."
    assert "*@*.pal.example" in em.user_whitelists[EMAIL]
    entry = page.locator("li", has_text="*@*.pal.example")
    entry.get_by_role("button", name="Remove").click()
    assert "*@*.pal.example" not in em.user_whitelists[EMAIL]
    assert page.locator("li", has_text="*@*.pal.example").count() == 0
    page.locator("#sfp-emailmask").fill("pal.example")
    page.locator("form[name=tornevall-mask-add]").get_by_role("button", name="Add").click()
    assert "emailmask" in page.locator("[data-field=emailmask]").inner_text()


def test_admin_global_whitelist_pairs_in_the_browser(site, page, tornevall_sandbox):
    em = tornevall_sandbox.emulator
    page.goto(f"{site}/admin/")
    assert "*yachtmarket*" in page.inner_text("body")
    page.locator("#sfp-host").fill("Example.net")
    page.get_by_role("button", name="Add").click()
    assert {"*@example.net", "*@*.example.net"} <= set(em.global_whitelist)
    row = page.locator("tr", has_text="*@example.net, *@*.example.net")
    row.get_by_role("button", name="Remove both").click()
    assert not any("example.net" in e for e in em.global_whitelist)
    assert page.locator("tr", has_text="example.net").count() == 0
