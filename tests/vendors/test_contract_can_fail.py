"""The shared contract's checks fail for vendors that break it.

Each broken vendor is the toy vendor with one fault, registered in its place; the
contract check that the fault breaks must raise AssertionError, while the intact toy
passes the same check (tests/vendors/test_toy.py runs the whole contract)."""

from __future__ import annotations

import re

import pytest
import toyvendor_plugin
from toy_contract import ToyContract

from spamfilter_plugin.events import normalise_domain
from spamfilter_plugin.hookspecs import hookimpl
from spamfilter_plugin.templating import Fragment
from spamfilter_plugin.testing import LoopbackServer

TOY_HOOKS = {
    name: fn
    for name, fn in vars(toyvendor_plugin).items()
    if callable(fn) and hasattr(fn, "spamfilter_plugin_impl")
}


def toy_with(**replaced):
    """The toy vendor's hooks with some replaced, as one plugin object."""
    return type("BrokenToy", (), {**TOY_HOOKS, **replaced})


@hookimpl
def created_with_unicode_name(vendor, event):
    """Sends the Unicode name; reads names back normalised, so its inventory looks right."""
    client = toyvendor_plugin._client(vendor)
    client.request("PUT", f"domains/{event.domain.unicode_name}", json={"destination": None})


@hookimpl
def inventory_normalised(vendor):
    names = toyvendor_plugin._client(vendor).request("GET", "domains").json()["domains"]
    return [normalise_domain(n) for n in names]


@hookimpl
def updated_silently(vendor, event):
    """Says yes and does nothing."""
    return {"message": "updated"}


@hookimpl
def reset_without_storing(vendor, event):
    """Hands back a password it never gave the vendor."""
    from spamfilter_plugin.redaction import Secret

    return {"password": event.password or Secret("made-up-password-1")}


def domain_fragment(html):
    """A settings_fragments hook answering the domain page with *html*."""

    @hookimpl
    def settings_fragments(vendor, scope, target, csrf_token):
        return Fragment("toy", "domain", "Toy", html) if scope == "domain" else None

    return settings_fragments


fragment_without_form = domain_fragment(
    '<div class="sfp-fragment"><input name="strict" type="checkbox"></div>'
)
form_without_token = domain_fragment(
    '<div class="sfp-fragment"><form method="post"><input name="strict"></form></div>'
)


BROKEN = {
    "unicode-name": (
        toy_with(domain_created=created_with_unicode_name, inventory_domains=inventory_normalised),
        "test_idn_domain_is_sent_as_punycode",
        "was not sent",
    ),
    "silent-update": (
        toy_with(domain_updated=updated_silently),
        "test_every_lifecycle_hook_changes_the_vendor",
        "after domain_updated",
    ),
    "password-not-stored": (
        toy_with(password_reset=reset_without_storing),
        "test_every_lifecycle_hook_changes_the_vendor",
        "does not hold the password",
    ),
    "inputs-outside-a-form": (
        toy_with(settings_fragments=fragment_without_form),
        "test_settings_fragments_are_safe",
        "has inputs but no form",
    ),
    "form-without-csrf-token": (
        toy_with(settings_fragments=form_without_token),
        "test_settings_fragments_are_safe",
        "without the panel's CSRF token",
    ),
}


def run_check(plugin, check, tmp_path):
    contract = ToyContract()
    contract.plugins = (("toy", plugin),)
    with LoopbackServer(toyvendor_plugin.ToyEmulator()) as emulator:
        runtime = contract.make_runtime(tmp_path, contract.vendor_table(emulator.url))
        getattr(contract, check)(runtime=runtime, emulator=emulator)


@pytest.mark.parametrize("fault", sorted(BROKEN))
def test_the_contract_fails_a_broken_vendor(fault, tmp_path):
    plugin, check, reason = BROKEN[fault]
    with pytest.raises(AssertionError, match=re.escape(reason)):
        run_check(plugin, check, tmp_path)


@pytest.mark.parametrize("check", sorted({c for _, c, _ in BROKEN.values()}))
def test_the_intact_toy_passes_the_same_checks(check, tmp_path):
    run_check(toy_with(), check, tmp_path)
