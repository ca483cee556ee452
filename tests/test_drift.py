"""Drift watch (docs/operations.md): a domain removed at the vendor by hand, or left there
after the panel lost it, is reported by the dry run of ``sync`` the worker runs every
``drift_hours`` (and ``spamfilter drift`` now), never changed unless ``drift_repair``."""

from __future__ import annotations

import json

from queue_helpers import add_table, run_cli, sandbox_config

from spamfilter_plugin import drift
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.queue import queue_of
from spamfilter_plugin.worker import Worker


def configured(tmp_path, sandbox, **general):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/userdomains").write_text("kept.example: ann\nlost.example: ann\n")
    (root / "var/cpanel/users").mkdir(parents=True)
    (root / "var/cpanel/users/ann").write_text("USER=ann\nDNS=kept.example\n")
    cfg = sandbox_config(tmp_path, sandbox, general=general or None)
    add_table(cfg, "panel", {"kind": "cpanel", "root": str(root)})
    for domain in ("kept.example", "lost.example", "gone.example"):
        code, _, err = run_cli(cfg, "emit", "domain-created", "--domain", domain)
        assert code == 0, err
    Worker(load_runtime(cfg)).drain()
    return cfg


def rows(cfg) -> list[tuple[str, str]]:
    with queue_of(load_runtime(cfg).config) as queue:
        return sorted((r.hook, r.target) for r in queue.rows(vendor="spamport", limit=100))


def test_a_domain_removed_at_the_vendor_by_hand_is_reported_not_readded(tmp_path, sandbox):
    cfg = configured(tmp_path, sandbox)
    held = sandbox["spamport"].emulator.domains
    del held["lost.example"]  # removed at the vendor by hand
    before = rows(cfg)
    code, out, err = run_cli(cfg, "drift", "--json", "--vendor", "spamport")
    assert code == 1, err
    found = {(f["kind"], f["domain"]) for f in json.loads(out)["findings"]}
    # gone.example is not on the panel any more: the plugin put it there, an orphan
    assert found == {("missing", "lost.example"), ("orphan", "gone.example")}
    assert "lost.example" not in held and rows(cfg) == before  # nothing changed, nothing queued
    # the console's banner and the metrics read what the check kept
    assert len(drift.last(load_runtime(cfg).config)["findings"]) == 2
    code, out, _ = run_cli(cfg, "metrics")
    assert 'spamfilter_drift_findings{kind="missing",vendor="spamport"} 1.0' in out
    assert 'spamfilter_drift_findings{kind="route",vendor="spamport"} 0.0' in out
    code, out, _ = run_cli(cfg, "drift")
    assert code == 1 and "spamport: missing: lost.example" in out


def test_with_drift_repair_the_worker_queues_the_fixes(tmp_path, sandbox):
    cfg = configured(tmp_path, sandbox, drift_repair=True)
    held = sandbox["spamport"].emulator.domains
    del held["lost.example"]
    rt = load_runtime(cfg)
    with queue_of(rt.config) as queue:
        drift._ran.update(lists=float("-inf"), mx=float("-inf"))  # a worker just started
        rt.chores(queue, 1e12)
    assert drift.last(rt.config)["repaired"] == 2
    Worker(load_runtime(cfg)).drain()
    assert "lost.example" in held and "gone.example" not in held
    code, out, err = run_cli(cfg, "drift")
    assert code == 0 and "no drift found" in out, out + err


def test_the_dashboard_shows_a_banner_with_the_counts_and_a_link(tmp_path, sandbox):
    import re

    from spamfilter_plugin.web.app import create_app
    from spamfilter_plugin.web.serve import console_for

    cfg = configured(tmp_path, sandbox)
    del sandbox["spamport"].emulator.domains["lost.example"]
    assert run_cli(cfg, "drift")[0] == 1
    console, password = console_for(load_runtime(cfg), host="127.0.0.1")
    client = create_app(console).test_client()
    login = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    client.post("/login", data={"csrf_token": token, "username": "admin", "password": password,
                                "next": "/"})  # fmt: skip
    board = client.get("/").text
    assert "Drift found: 1 missing, 1 orphan." in board and 'href="/drift"' in board
    page = client.get("/drift").text
    assert "lost.example" in page and "gone.example" in page
