"""Every console page, on a desktop and on a phone, in headless Chromium: axe-core finds no
violation of moderate, serious or critical impact; ids are unique; the page never scrolls
sideways on a 390 px phone; every control is at least 44 px tall there; the keyboard focus
is visible.  Screenshots of each page at both sizes are kept (``$SFP_SCREENSHOTS``).

axe-core comes from the npm registry (``tests/a11y/package.json``; ``npm install`` there,
as CI does); it is injected into the page with the page's script ban lifted for the test's
browser context only (the console itself allows no script)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from console_helpers import login, wait_until

AXE = Path(__file__).resolve().parent.parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
BAD = ("moderate", "serious", "critical")

#: (screenshot name, path): every kind of page the console has
PAGES = [
    ("dashboard", ""),
    ("domain", "settings/domain/bob.example/"),
    ("domain-idn", "settings/domain/xn--bcher-kva.example/"),
    ("mailbox", "settings/mailbox/office@bob.example/"),
    ("mailbox-rackspace", "settings/mailbox/info@alice.example/"),
    ("admin", "settings/admin/"),
    ("queue", "queue"),
    ("history", "history"),
    ("drift", "drift"),
    ("not-found", "settings/domain/never-heard-of.example/"),
]


@pytest.fixture(scope="module")
def axe_source():
    if not AXE.exists():
        if os.environ.get("SFP_REQUIRE_BROWSER") == "1":
            pytest.fail(f"axe-core is required here: (cd {AXE.parents[2]} && npm install)")
        pytest.skip("axe-core is not installed (npm install in tests/a11y)")
    return AXE.read_text(encoding="utf-8")


def check(page, axe_source, where: str) -> None:
    page.add_script_tag(content=axe_source)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in BAD
    ]
    assert not bad, f"{where}: " + "; ".join(bad)
    ids = page.evaluate(
        "() => [...document.querySelectorAll('[id]')].map(e => e.id)"
        ".filter((id, i, all) => all.indexOf(id) !== i)"
    )
    assert not ids, f"{where}: ids used twice: {ids}"


def phone_fits(page, where: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(
        "() => [...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > innerWidth + 1)"
        ".map(e => e.tagName + '.' + e.className).slice(0, 5)"
    )
    assert width <= PHONE["width"], f"{where}: the page scrolls sideways ({width}px): {wide}"
    short = page.evaluate(
        """() => [...document.querySelectorAll(
                'button, input:not([type=hidden]):not([type=checkbox]), select, textarea,'
                + ' a.sfp-button, .sfc-nav a, label.sfc-select')]
            .filter(e => e.offsetParent !== null)
            .filter(e => e.getBoundingClientRect().height < 43.5)
            .map(e => (e.outerHTML || '').slice(0, 90))"""
    )
    assert not short, f"{where}: controls under 44px tall: {short[:5]}"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_page_passes_axe_and_fits(demo, browser, axe_source, shots, viewport):
    wait_until(lambda: "bob.example" in demo.sandbox["spamport"].emulator.domains)
    context = browser.new_context(viewport=viewport, bypass_csp=True)
    page = context.new_page()
    try:
        login(page, demo)
        suffix = "" if viewport is DESKTOP else "-phone"
        for name, path in PAGES:
            page.goto(demo.url + path)
            where = f"{name} at {viewport['width']}px"
            page.screenshot(path=os.path.join(shots, f"{name}{suffix}.png"), full_page=True)
            check(page, axe_source, where)
            if viewport is PHONE:
                phone_fits(page, where)
        # the pages around a change: a confirmation, and a refused form
        page.goto(demo.url + "settings/domain/bob.example/")
        page.locator("#sfc-domain-summary").get_by_role("button", name="Unprotect").click()
        check(page, axe_source, "confirmation")
        page.goto(demo.url + "settings/mailbox/office@bob.example/")
        page.locator("#sfp-required_hits").fill("lots")
        page.locator("form[name=tornevall-preferences]").get_by_role("button").click()
        assert page.locator("#sfc-problems").count() == 1
        page.screenshot(path=os.path.join(shots, f"refused-form{suffix}.png"), full_page=True)
        check(page, axe_source, "refused form")
        page.goto(demo.url + "logout-page-check")  # a not-found page for a logged-in user
        check(page, axe_source, "not found")
    finally:
        context.close()


def test_the_login_page_passes_axe_and_shows_the_keyboard_focus(demo, browser, axe_source):
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(demo.url + "login")
        check(page, axe_source, "login")
        phone_fits(page, "login")
        page.keyboard.press("Tab")  # the skip link first, then the form
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement; const s = getComputedStyle(e);"
            " return [e.id, s.outlineStyle, parseFloat(s.outlineWidth)]; }"
        )
        assert focused[0] == "username" and focused[1] != "none" and focused[2] >= 2, focused
    finally:
        context.close()
