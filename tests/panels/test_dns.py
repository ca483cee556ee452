"""The panel DNS service of each panel, against fake panel commands (and a fake DirectAdmin
on loopback) written from the panels' documentation, keeping their zones in a temporary
directory: read the MX set, change it, add and remove TXT records, refuse what would leave
a zone without MX, and report what the panel holds when it did not do what was asked."""

import os
from pathlib import Path

import fake_zones
import pytest

from spamfilter_plugin.errors import PanelError
from spamfilter_plugin.mx.plan import EmptyZone

PANELS = ("cpanel", "directadmin", "plesk", "virtualmin")


@pytest.mark.parametrize("kind", PANELS)
def test_reads_and_replaces_the_mx_set(fake_panel, kind):
    zones = fake_panel(kind).dns()
    fake_zones.create(fake_panel.base, "shop.example", mx=[(10, "mail.shop.example")])
    assert zones.mx("shop.example") == ((10, "mail.shop.example"),)
    after = zones.change_mx(
        "shop.example",
        remove=[(10, "mail.shop.example")],
        add=[(10, "mx1.filter.test"), (20, "mx2.filter.test")],
    )
    expected = [(10, "mx1.filter.test"), (20, "mx2.filter.test")]
    assert list(after) == expected
    assert fake_zones.mx(fake_panel.base, "shop.example") == expected
    # the other records of the zone are untouched
    zone = fake_zones.load(fake_panel.base, "shop.example")
    assert {"name": "shop.example.", "type": "A", "values": ["192.0.2.10"]} in zone["records"]


@pytest.mark.parametrize("kind", PANELS)
def test_removes_only_what_is_named_and_never_empties_the_zone(fake_panel, kind):
    zones = fake_panel(kind).dns()
    fake_zones.create(
        fake_panel.base, "two.example", mx=[(10, "mx1.filter.test"), (5, "backup.two.example")]
    )
    after = zones.change_mx("two.example", remove=[(10, "mx1.filter.test")], add=[])
    assert list(after) == [(5, "backup.two.example")]
    with pytest.raises(EmptyZone):
        zones.change_mx("two.example", remove=[(5, "backup.two.example")], add=[])
    assert fake_zones.mx(fake_panel.base, "two.example") == [(5, "backup.two.example")]


@pytest.mark.parametrize("kind", PANELS)
def test_adds_and_removes_a_txt_record(fake_panel, kind):
    zones = fake_panel(kind).dns()
    fake_zones.create(fake_panel.base, "proof.example", mx=[(10, "mail.proof.example")])
    assert zones.add_txt("proof.example", "_sb-verify.proof.example", "token-123") is True
    assert zones.add_txt("proof.example", "_sb-verify.proof.example", "token-123") is False
    assert zones.txt("proof.example", "_sb-verify.proof.example") == ["token-123"]
    zone = fake_zones.load(fake_panel.base, "proof.example")
    assert {"name": "_sb-verify.proof.example.", "type": "TXT", "values": ["token-123"]} in (
        zone["records"]
    )
    assert zones.remove_txt("proof.example", "_sb-verify.proof.example", "token-123") is True
    assert zones.txt("proof.example", "_sb-verify.proof.example") == []
    assert zones.remove_txt("proof.example", "_sb-verify.proof.example", "token-123") is False


@pytest.mark.parametrize("kind", PANELS)
def test_tells_existing_domains_and_remote_mail_apart(fake_panel, kind):
    zones = fake_panel(kind).dns()
    fake_panel.domain("here.example", mx=[(10, "mail.here.example")])
    fake_panel.domain("away.example", mx=[(10, "mx.other.test")], mail=False)
    assert zones.exists("here.example") and not zones.exists("gone.example")
    assert zones.remote_mail("here.example") is None
    assert zones.remote_mail("away.example")


def test_cpanel_edit_from_a_stale_read_is_refused_not_misapplied(fake_panel, monkeypatch):
    zones = fake_panel("cpanel").dns()
    fake_zones.create(fake_panel.base, "race.example", mx=[(10, "mail.race.example")])
    read = zones._parsed

    def stale(domain):
        records, serial = read(domain)
        # someone edits the zone between our read and our edit: lines shift
        zone = fake_zones.load(fake_panel.base, domain)
        zone["records"].insert(0, {"name": f"www.{domain}.", "type": "A", "values": ["192.0.2.9"]})
        zone["serial"] += 1
        fake_zones.save(fake_panel.base, domain, zone)
        return records, serial

    monkeypatch.setattr(zones, "_parsed", stale)
    with pytest.raises(PanelError, match="serial") as info:
        zones.apply("race.example", [], [])
    assert not info.value.permanent  # retried like any delivery
    assert fake_zones.mx(fake_panel.base, "race.example") == [(10, "mail.race.example")]


def test_virtualmin_refuses_a_txt_value_it_would_split(fake_panel):
    zones = fake_panel("virtualmin").dns()
    fake_zones.create(fake_panel.base, "split.example", mx=[(10, "mail.split.example")])
    with pytest.raises(PanelError, match="spaces") as info:
        zones.add_txt("split.example", "split.example", "v=spf1 mx -all")
    assert info.value.permanent


def test_directadmin_refused_key_and_loose_key_file(fake_panel, tmp_path):
    adapter = fake_panel("directadmin")
    fake_zones.create(fake_panel.base, "da.example", mx=[(10, "mail.da.example")])
    key = Path(adapter.conf["api_key_file"])
    key.write_text("wrong\n")
    with pytest.raises(PanelError, match="refused the login key") as info:
        adapter.dns().mx("da.example")
    assert info.value.permanent
    key.chmod(0o644)
    with pytest.raises(PanelError, match="chmod 600"):
        adapter.dns().mx("da.example")


@pytest.mark.parametrize("kind", ["cpanel", "plesk", "virtualmin", "directadmin"])
def test_a_missing_zone_is_an_error_naming_the_panel_call(fake_panel, kind):
    zones = fake_panel(kind).dns()
    with pytest.raises(PanelError) as info:
        zones.mx("nowhere.example")
    assert "nowhere.example" in str(info.value) or "exit" in str(info.value)


def test_the_fake_commands_refuse_what_the_real_ones_refuse(fake_panel):
    import subprocess

    fake_panel("plesk")
    fake_zones.create(fake_panel.base, "strict.example", mx=[(10, "mail.strict.example")])
    plesk = os.path.join(fake_panel.base, "plesk")
    args = ["bin", "dns", "--add", "strict.example", "-mx", "", "-mailexchanger"]
    # an MX without a priority, and a record that already exists (exit 2, as documented)
    missing = subprocess.run([plesk, *args, "mx.test"], capture_output=True, text=True)
    assert missing.returncode != 0
    again = [*args, "mail.strict.example", "-priority", "10"]
    assert subprocess.run([plesk, *again], capture_output=True).returncode == 2


@pytest.mark.parametrize("kind", PANELS)
def test_vendors_publish_txt_records_through_the_configured_panel(fake_panel, kind, tmp_path):
    """publish_dns_record (spambarrier's domain verification) reaches the panel's zone."""
    from spamfilter_plugin.config.model import toml_table
    from spamfilter_plugin.events import Domain
    from spamfilter_plugin.manager import load_runtime
    from spamfilter_plugin.testing import write_config

    adapter = fake_panel(kind)
    fake_panel.domain("verify.example", mx=[(10, "mail.verify.example")])
    cfg = write_config(tmp_path / "c.toml", {}, {})
    cfg.write_text(cfg.read_text() + "\n" + "\n".join(toml_table("panel", adapter.conf)) + "\n")
    services = load_runtime(cfg).panel
    name = "_spambarrier.verify.example"
    assert services.publish_dns_record(Domain("verify.example"), "TXT", name, "sb-42") is True
    assert adapter.dns().txt("verify.example", name) == ["sb-42"]
    # a zone the panel does not have: False (logged), never an exception into the vendor
    assert services.publish_dns_record(Domain("none.example"), "TXT", name, "x") is False
