"""The MX flow end to end: a panel's domain is accepted by the SpamPort emulator, the
destination is checked against an SMTP server on loopback, the MX set is recorded and
switched through each fake panel's DNS commands, verified by asking a DNS server on
loopback that serves the fake panel's zones, and restored when the vendor deletes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import fake_zones
import pytest
from aiosmtpd.controller import Controller
from queue_helpers import sandbox_config

from spamfilter_plugin.config.model import toml_table
from spamfilter_plugin.emit import emit
from spamfilter_plugin.errors import ConfigError
from spamfilter_plugin.events import DomainCreated, DomainDeleted
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.sandbox.dns import ZoneServer
from spamfilter_plugin.store.mx import MxStore
from spamfilter_plugin.worker import Worker

from .test_probe import Destination, free_port

EXE = Path(sys.executable).with_name("spamfilter")
VENDOR_MX = [(10, "mx1.spamport.test"), (20, "mx2.spamport.test")]
ORIGINAL = [(10, "mail.shop.example")]


@pytest.fixture
def world(tmp_path, sandbox, fake_panel):
    """``world(kind, ...)`` -> a config for the fake panel *kind*, SpamPort managing MX, a
    destination on loopback and a DNS server serving the panel's zones."""
    started = []

    def make(kind, *, rcpt="250 OK", mail_host="127.0.0.1", dns_follows=True, **mx):
        adapter = fake_panel(kind)
        controller = Controller(Destination(rcpt=rcpt), hostname="127.0.0.1", port=free_port())
        controller.start()
        source = fake_zones.dns_view(fake_panel.base) if dns_follows else dict
        server = ZoneServer(source=source).__enter__()
        started.extend([controller.stop, lambda: server.__exit__(None, None, None)])
        general = {"mail_host": mail_host} if mail_host else {"mail_host": ""}
        spamport = {"mx": [{"host": h, "priority": p} for p, h in VENDOR_MX]}
        cfg = sandbox_config(tmp_path, sandbox, general=general, spamport=spamport)
        text = cfg.read_text()
        if not mail_host:
            text = text.replace('mail_host = ""\n', "")
        tables = {"nameservers": ["127.0.0.1"], "dns_port": server.port, "verify_hours": 1.0}
        tables.update(smtp_port=controller.port, smtp_timeout=5.0, helo_name="probe.test", **mx)
        lines = [*toml_table("mx", tables), "", *toml_table("panel", adapter.conf)]
        cfg.write_text(text + "\n" + "\n".join(lines) + "\n")
        make.cfg, make.server, make.state_dir = cfg, server, tmp_path / "state"
        return cfg

    make.panel = fake_panel
    yield make
    for stop in reversed(started):
        stop()


def drain(cfg):
    return Worker(load_runtime(cfg)).drain()


def state(world, domain):
    return MxStore(world.state_dir).get(domain)


def cli(world, *args):
    env = dict(os.environ, FAKE_PANEL_DIR=world.panel.base)
    return subprocess.run(
        [str(EXE), "--config", str(world.cfg), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("kind", ["cpanel", "directadmin", "plesk", "virtualmin"])
def test_switch_verify_and_restore_exactly_the_recorded_set(world, sandbox, kind):
    cfg = world(kind)
    world.panel.domain("shop.example", mx=ORIGINAL)
    emit(DomainCreated(domain="shop.example", destination="127.0.0.1"), cfg)
    stats = drain(cfg)
    assert [d.row.hook for d in stats.deliveries] == ["domain_created"] + ["vendor_step"] * 4
    assert stats.dead == 0 and stats.pending == 0
    assert "shop.example" in sandbox["spamport"].emulator.domains
    assert fake_zones.mx(world.panel.base, "shop.example") == VENDOR_MX
    known = state(world, "shop.example")
    assert known.state == "verified" and known.vendor == "spamport"
    assert known.recorded == [list(r) for r in ORIGINAL]
    assert [tuple(r) for r in known.seen] == VENDOR_MX and known.checked_at

    # protection ends while the domain stays in the panel: the recorded set comes back
    emit(DomainDeleted(domain="shop.example"), cfg)
    stats = drain(cfg)
    assert [d.row.hook for d in stats.deliveries] == ["domain_deleted", "vendor_step"]
    assert "shop.example" not in sandbox["spamport"].emulator.domains
    assert fake_zones.mx(world.panel.base, "shop.example") == ORIGINAL
    assert state(world, "shop.example").state == "restored"


def test_restore_keeps_records_not_pointing_at_the_vendor(world):
    cfg = world("plesk")
    world.panel.domain("mixed.example", mx=ORIGINAL)
    emit(DomainCreated(domain="mixed.example", destination="127.0.0.1"), cfg)
    drain(cfg)
    # the customer adds a backup MX of their own while protected
    zone = fake_zones.load(world.panel.base, "mixed.example")
    zone["records"].append(
        {"name": "mixed.example.", "type": "MX", "values": ["50", "backup.mixed.example."]}
    )
    fake_zones.save(world.panel.base, "mixed.example", zone)
    out = cli(world, "mx", "restore", "mixed.example")
    assert out.returncode == 0, out.stderr
    assert fake_zones.mx(world.panel.base, "mixed.example") == [
        (10, "mail.shop.example"),
        (50, "backup.mixed.example"),
    ]


def test_restore_with_nothing_recorded_falls_back_to_the_mail_host(world):
    cfg = world("virtualmin")
    world.panel.domain("bare.example", mx=VENDOR_MX)  # already at the vendor: nothing to record
    emit(DomainCreated(domain="bare.example", destination="127.0.0.1"), cfg)
    drain(cfg)
    assert state(world, "bare.example").recorded == []
    dry = cli(world, "mx", "restore", "--all", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert "would remove" in json.loads(dry.stdout)["domains"][0]["message"]
    assert fake_zones.mx(world.panel.base, "bare.example") == VENDOR_MX  # dry run: unchanged
    out = cli(world, "mx", "restore", "--all")
    assert out.returncode == 0, out.stderr
    assert fake_zones.mx(world.panel.base, "bare.example") == [(10, "127.0.0.1")]


def test_a_zone_that_would_end_without_mx_is_left_alone(world):
    cfg = world("cpanel", mail_host=None)
    world.panel.domain("lonely.example", mx=VENDOR_MX)
    emit(DomainCreated(domain="lonely.example", destination="127.0.0.1"), cfg)
    drain(cfg)
    out = cli(world, "mx", "restore", "lonely.example")
    assert out.returncode == 1
    assert "NOT restored" in out.stdout and "mail_host" in out.stdout
    assert fake_zones.mx(world.panel.base, "lonely.example") == VENDOR_MX


def test_remote_mail_domains_are_skipped_with_the_reason(world):
    cfg = world("directadmin")
    world.panel.domain("away.example", mx=[(10, "mx.elsewhere.test")], mail=False)
    emit(DomainCreated(domain="away.example", destination="127.0.0.1"), cfg)
    drain(cfg)
    known = state(world, "away.example")
    assert known.state == "skipped" and "remote mail" in known.detail
    assert fake_zones.mx(world.panel.base, "away.example") == [(10, "mx.elsewhere.test")]


def test_a_refusing_destination_leaves_mx_alone_with_the_reply(world):
    cfg = world("plesk", rcpt="550 5.1.1 no such user here")
    world.panel.domain("refused.example", mx=ORIGINAL)
    emit(DomainCreated(domain="refused.example", destination="127.0.0.1"), cfg)
    drain(cfg)
    known = state(world, "refused.example")
    assert known.state == "destination refused"
    assert "550" in known.detail and "no such user here" in known.detail
    assert fake_zones.mx(world.panel.base, "refused.example") == ORIGINAL


def test_a_destination_that_does_not_answer_leaves_mx_alone(world, tmp_path):
    cfg = world("cpanel")
    text = cfg.read_text().replace("smtp_timeout = 5.0", "smtp_timeout = 0.5")
    cfg.write_text(text.replace(f"smtp_port = {_port(text)}", f"smtp_port = {free_port()}"))
    world.panel.domain("silent.example", mx=ORIGINAL)
    emit(DomainCreated(domain="silent.example", destination="127.0.0.1"), cfg)
    drain(cfg)
    known = state(world, "silent.example")
    assert known.state == "destination refused" and "did not answer" in known.detail
    assert fake_zones.mx(world.panel.base, "silent.example") == ORIGINAL


def _port(text):
    return next(line.split("= ")[1] for line in text.splitlines() if line.startswith("smtp_port"))


def test_dns_that_never_shows_the_switch_ends_wrong_and_check_reports_it(world):
    cfg = world("virtualmin", dns_follows=False, verify_hours=0.0001)
    world.panel.domain("stale.example", mx=ORIGINAL)
    emit(DomainCreated(domain="stale.example", destination="127.0.0.1"), cfg)
    stats = drain(cfg)
    assert stats.pending == 1  # waiting for DNS, with backoff
    assert state(world, "stale.example").state == "pending"
    import time

    time.sleep(0.5)  # verify_hours has passed
    Worker(load_runtime(cfg)).drain(ignore_schedule=True)
    known = state(world, "stale.example")
    assert known.state == "wrong" and "expected 10 mx1.spamport.test" in known.detail
    status = cli(world, "mx", "status", "--json")
    assert json.loads(status.stdout)["domains"][0]["state"] == "wrong"
    check = cli(world, "check")
    assert check.returncode == 1 and "MX wrong: stale.example" in check.stdout


def test_two_vendors_managing_mx_are_refused_naming_both(tmp_path, sandbox):
    cfg = sandbox_config(
        tmp_path, sandbox, spamport={"mx": [{"host": "mx1.spamport.test", "priority": 10}]}
    )
    extra = {"api_url": sandbox["spamport"].url, "username": "x", "password": "y"}
    extra["mx"] = [{"host": "mx.wall.test", "priority": 10}]
    cfg.write_text(cfg.read_text() + "\n" + "\n".join(toml_table("vendors.spamwall", extra)))
    with pytest.raises(ConfigError) as info:
        load_runtime(cfg)
    message = str(info.value)
    assert "[vendors.spamport]" in message and "[vendors.spamwall]" in message
    assert "only one filter first" in message


def test_manage_mx_without_hosts_names_the_key(tmp_path, sandbox):
    cfg = sandbox_config(tmp_path, sandbox, spamport={"manage_mx": True})
    with pytest.raises(ConfigError, match=r"\[vendors.spamport\] mx: manage_mx is on"):
        load_runtime(cfg)


def test_mx_switch_by_hand_after_fixing_the_destination(world):
    cfg = world("cpanel", rcpt="550 no")
    world.panel.domain("later.example", mx=ORIGINAL)
    emit(DomainCreated(domain="later.example", destination="127.0.0.1"), cfg)
    drain(cfg)
    assert state(world, "later.example").state == "destination refused"
    bad = cli(world, "mx", "switch", "-bad-.example")
    assert bad.returncode == 2 and "domain" in bad.stderr
    # the destination now accepts: queue the switch again
    controller = Controller(Destination(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        text = cfg.read_text()
        cfg.write_text(text.replace(f"smtp_port = {_port(text)}", f"smtp_port = {controller.port}"))
        out = cli(world, "mx", "switch", "later.example", "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["queued"]
        drain(cfg)
    finally:
        controller.stop()
    assert state(world, "later.example").state == "verified"
    assert fake_zones.mx(world.panel.base, "later.example") == VENDOR_MX
    status = cli(world, "mx", "status", "later.example")
    assert status.returncode == 0, status.stderr
    assert "verified" in status.stdout and "recorded: 10 mail.shop.example" in status.stdout


@pytest.mark.parametrize("kind", ["directadmin", "plesk"])
def test_a_panel_that_keeps_nothing_never_leaves_the_zone_without_mx(world, sandbox, kind):
    """Panels that change one record per call: the restore adds the recorded set, reads the
    zone back, finds the panel kept nothing, and stops before removing the vendor's records;
    the MX state says where the zone was left, and the row fails as usual."""
    cfg = world(kind, verify_hours=1.0)
    world.panel.domain("shop.example", mx=ORIGINAL)
    emit(DomainCreated(domain="shop.example", destination="127.0.0.1"), cfg)
    assert drain(cfg).dead == 0
    assert fake_zones.mx(world.panel.base, "shop.example") == VENDOR_MX
    if kind == "plesk":
        Path(world.panel.base, "faults.json").write_text(json.dumps({"add_keeps_nothing": True}))
    else:
        world.panel.directadmin.faults["add_keeps_nothing"] = True
    emit(DomainDeleted(domain="shop.example"), cfg)
    stats = drain(cfg)
    restore = [d for d in stats.deliveries if d.row.hook == "vendor_step"]
    assert restore and all(not d.outcome.ok for d in restore)
    assert "did not keep the MX record" in str(restore[-1].outcome.error)
    assert fake_zones.mx(world.panel.base, "shop.example") == VENDOR_MX  # never emptied
    known = state(world, "shop.example")
    assert known.detail.startswith("stopped:") and [tuple(r) for r in known.seen] == VENDOR_MX


def test_a_removal_that_would_empty_the_zone_is_never_made(fake_panel):
    """Read before each removal: a record someone else removed meanwhile leaves only the
    one we would remove, so it stays."""
    adapter = fake_panel("plesk")
    fake_panel.domain("solo.example", mx=[(10, "mx1.spamport.test")])
    zones = adapter.dns()
    # asked to remove a record that is the last one, with an addition the panel drops
    Path(fake_panel.base, "faults.json").write_text(json.dumps({"add_keeps_nothing": True}))
    from spamfilter_plugin.errors import PanelError

    with pytest.raises(PanelError, match="did not keep"):
        zones.change_mx("solo.example", [(10, "mx1.spamport.test")], [(10, "mail.solo.example")])
    assert fake_zones.mx(fake_panel.base, "solo.example") == [(10, "mx1.spamport.test")]
    Path(fake_panel.base, "faults.json").write_text("{}")
    held = zones.of_type("solo.example", "MX")
    with pytest.raises(PanelError, match="without an MX record"):
        zones._one_at_a_time("solo.example", held, [])
    assert fake_zones.mx(fake_panel.base, "solo.example") == [(10, "mx1.spamport.test")]


def test_restoring_a_domain_the_panel_never_had_records_nothing(world):
    world("plesk")
    out = cli(world, "mx", "restore", "nothere.example")
    assert out.returncode == 0, out.stderr
    assert "never managed" in out.stdout
    assert state(world, "nothere.example") is None


def test_a_downgrade_restores_the_mx_before_the_domain_leaves_the_vendor(world, sandbox):
    from queue_helpers import add_table

    from spamfilter_plugin.panels.hook import run

    cfg = world("cpanel")
    root = Path(world.panel("cpanel").conf["root"])
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/userdomains").write_text("shop.example: alice\n")
    (root / "var/cpanel/users").mkdir(parents=True, exist_ok=True)
    users = root / "var/cpanel/users/alice"
    users.write_text("USER=alice\nDNS=shop.example\nPLAN=business\n")
    cfg.write_text(cfg.read_text().replace("plan_grace_hours = 72", "plan_grace_hours = 0"))
    add_table(cfg, "plans", {"default": True, "basic": False})
    world.panel.domain("shop.example", mx=ORIGINAL)
    emit(DomainCreated(domain="shop.example", destination="127.0.0.1"), cfg)
    drain(cfg)
    assert fake_zones.mx(world.panel.base, "shop.example") == VENDOR_MX

    users.write_text("USER=alice\nDNS=shop.example\nPLAN=basic\n")
    payload = {
        "context": {"category": "Whostmgr", "event": "Accounts::change_package", "stage": "post"},
        "data": {"user": "alice", "cur_pkg": "business", "new_pkg": "basic"},
    }
    assert run("cpanel", [], config=str(cfg), env={}, stdin=json.dumps(payload)) == 0
    stats = drain(cfg)
    # the step restored the MX, then the deletion went; no restore was left to follow it
    assert [d.row.hook for d in stats.deliveries] == ["vendor_step", "domain_deleted"]
    assert "their MX restored first (1)" in stats.deliveries[0].outcome.result["message"]
    assert fake_zones.mx(world.panel.base, "shop.example") == ORIGINAL
    assert state(world, "shop.example").state == "restored"
    assert "shop.example" not in sandbox["spamport"].emulator.domains


def test_an_mx_changed_behind_the_plugins_back_is_found_at_the_next_check(world):
    cfg = world("cpanel")
    world.panel.domain("shop.example", mx=ORIGINAL)
    emit(DomainCreated(domain="shop.example", destination="127.0.0.1"), cfg)
    drain(cfg)
    assert state(world, "shop.example").state == "verified"
    # still as verified: nothing found
    done = cli(world, "drift", "--json")
    found = [f for f in json.loads(done.stdout)["findings"] if f["kind"] == "mx_wrong"]
    assert found == [] and state(world, "shop.example").state == "verified"
    # the customer puts their own MX back in the zone
    zone = fake_zones.load(world.panel.base, "shop.example")
    zone["records"] = [r for r in zone["records"] if r["type"] != "MX"] + [
        {"name": "shop.example.", "type": "MX", "values": ["5", "mx.elsewhere.example."]}
    ]
    fake_zones.save(world.panel.base, "shop.example", zone)
    done = cli(world, "drift", "--json")
    assert done.returncode == 1, done.stderr
    (found,) = [f for f in json.loads(done.stdout)["findings"] if f["kind"] == "mx_wrong"]
    assert found["domain"] == "shop.example" and "5 mx.elsewhere.example" in found["reason"]
    known = state(world, "shop.example")
    assert known.state == "wrong" and "since it was verified" in known.detail
    # the metrics count it
    metrics = cli(world, "metrics").stdout
    assert 'spamfilter_drift_findings{kind="mx_wrong",vendor="spamport"} 1.0' in metrics
    assert 'spamfilter_mx_domains{state="wrong"} 1.0' in metrics
