"""An account moved between independent servers (each with its own SQLite queue, no fleet):
the old server's deletion is not made where the vendor can show that another destination
took the domain over (docs/delivery.md).

Each vendor whose API says where a domain's mail goes is tested against its emulator: server
web1 creates the domain, web2 creates it again (the account restored there: the vendor now
sends its mail to web2), then web1's panel deletes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from queue_helpers import run_cli as run

from spamfilter_plugin.emit import emit
from spamfilter_plugin.events import Domain, DomainCreated, DomainDeleted
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.queue import queue_of
from spamfilter_plugin.testing import write_config
from spamfilter_plugin.worker import Worker

#: each server's own mail host (IPs: SpamWall routes a domain to an IP)
MAIL_HOSTS = {"web1": "192.0.2.11", "web2": "192.0.2.22"}

#: where each vendor's emulator keeps a domain's route
ROUTES = {
    "spamport": lambda d: d["transport"].removeprefix("smtp:").strip("[]"),
    "spambarrier": lambda d: d["host"],
    "spamwall": lambda d: d["IP"],
}


def servers(tmp_path: Path, sandbox, vendor: str) -> dict[str, Path]:
    """Two independent servers' configs on one vendor account."""
    configs = {}
    for server, host in MAIL_HOSTS.items():
        folder = tmp_path / server
        folder.mkdir()
        table = {**sandbox[vendor].config_table(), "retries": 0}
        general = {"mail_host": host, "retry_base": 0.01, "retry_cap": 0.05}
        configs[server] = write_config(folder / "config.toml", general, {vendor: table})
    return configs


def deliver(cfg: Path) -> None:
    Worker(load_runtime(cfg)).drain()


def held(sandbox, vendor: str, name: str) -> str | None:
    """Where the vendor's emulator sends *name*'s mail, or None when it does not hold it."""
    domains = sandbox[vendor].emulator.domains
    return ROUTES[vendor](domains[name]) if name in domains else None


def row_of(cfg: Path, hook: str):
    with queue_of(load_runtime(cfg).config) as queue:
        (row,) = [r for r in queue.rows() if r.hook == hook]
        return row


@pytest.mark.parametrize(
    ("vendor", "route"),
    [("spamport", "192.0.2.22"), ("spambarrier", "192.0.2.22"), ("spamwall", "192.0.2.22:25")],
)
def test_hook_domain_current_route(tmp_path, sandbox, vendor, route):
    cfg = servers(tmp_path, sandbox, vendor)
    rt = load_runtime(cfg["web1"])
    domain = Domain("moved.example")
    assert rt.call(vendor, "domain_current_route", domain=domain) is None  # not held
    rt.deliver(DomainCreated(domain="moved.example", destination="192.0.2.22"))
    assert rt.call(vendor, "domain_current_route", domain=domain) == route
    assert rt.route(vendor, "192.0.2.22") == route  # the form the check compares


@pytest.mark.parametrize("vendor", ["spamport", "spambarrier", "spamwall"])
def test_the_old_servers_deletion_is_skipped_when_the_new_server_took_the_domain_over(
    tmp_path, sandbox, vendor
):
    cfg = servers(tmp_path, sandbox, vendor)
    emit(DomainCreated(domain="moved.example"), cfg["web1"])
    deliver(cfg["web1"])
    assert held(sandbox, vendor, "moved.example") == "192.0.2.11"
    emit(DomainCreated(domain="moved.example"), cfg["web2"])
    deliver(cfg["web2"])
    assert held(sandbox, vendor, "moved.example") == "192.0.2.22"

    emit(DomainDeleted(domain="moved.example"), cfg["web1"])
    deliver(cfg["web1"])
    assert held(sandbox, vendor, "moved.example") == "192.0.2.22"  # web2's mail still filtered
    row = row_of(cfg["web1"], "domain_deleted")
    assert row.state == "skipped" and row.error_type == "VendorSkipped"
    assert "192.0.2.22" in row.last_error and "this server's 192.0.2.11" in row.last_error
    code, out, _ = run(cfg["web1"], "queue", "show", str(row.id), "--json")
    shown = json.loads(out)
    assert code == 0 and shown["state"] == "skipped" and "192.0.2.22" in shown["last_error"]
    with queue_of(load_runtime(cfg["web1"]).config) as queue:
        assert queue.provisioned(vendor) == set()  # web1 no longer counts it as its own

    # the server that holds it now deletes it: the route is its own, so it goes
    emit(DomainDeleted(domain="moved.example"), cfg["web2"])
    deliver(cfg["web2"])
    assert held(sandbox, vendor, "moved.example") is None
    assert row_of(cfg["web2"], "domain_deleted").state == "done"


@pytest.mark.parametrize("vendor", ["spamport", "spamwall"])
def test_sync_on_the_old_server_does_not_plan_removing_a_domain_taken_over(
    tmp_path, sandbox, vendor
):
    cfg = servers(tmp_path, sandbox, vendor)
    for server in ("web1", "web2"):
        emit(DomainCreated(domain="moved.example"), cfg[server])
        emit(DomainCreated(domain=f"only-{server}.example"), cfg[server])
        deliver(cfg[server])
    # web1's panel lost the account (its deletion hook never ran) and lists nothing now
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, out, err = run(cfg["web1"], "sync", "--domains-from", str(empty), "--json")
    assert code == 0, err
    actions = {c["domain"]: (c["action"], c["outcome"]) for c in json.loads(out)["changes"]}
    assert actions["moved.example"][0] == "taken"
    assert actions["only-web1.example"] == ("remove", "done")
    assert "only-web2.example" not in actions or actions["only-web2.example"][0] == "foreign"
    assert held(sandbox, vendor, "moved.example") == "192.0.2.22"
    assert held(sandbox, vendor, "only-web1.example") is None
