"""Protection per hosting plan (docs/accounts.md): the ``[plans]`` table, the panel hook
queueing nothing for a vendor an account's plan does not protect, and ``sync`` honouring
plans, against the SpamPort emulator and the panels' records (cPanel's ``PLAN=``,
DirectAdmin's ``package=``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from queue_helpers import add_table, run_cli, sandbox_config

from spamfilter_plugin.errors import ConfigError
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.panels.hook import run
from spamfilter_plugin.queue import open_queue
from spamfilter_plugin.worker import Worker

DA_USERS = "usr/local/directadmin/data/users"

#: two cPanel accounts on two plans, and the same on DirectAdmin
RECORDS = {
    "cpanel": {
        "etc/userdomains": "gold.example: alice\ncheap.example: bob\n",
        "var/cpanel/users/alice": "USER=alice\nDNS=gold.example\nPLAN=business\n",
        "var/cpanel/users/bob": "USER=bob\nDNS=cheap.example\nPLAN=basic\n",
    },
    "directadmin": {
        "etc/virtual/domainowners": "gold.example: alice\ncheap.example: bob\n",
        f"{DA_USERS}/alice/domains.list": "gold.example\n",
        f"{DA_USERS}/alice/user.conf": "username=alice\nusertype=user\npackage=business\n",
        f"{DA_USERS}/bob/domains.list": "cheap.example\n",
        f"{DA_USERS}/bob/user.conf": "username=bob\nusertype=user\npackage=basic\n",
    },
}

#: the panel's call that creates each account's domain
CREATED = {
    "cpanel": lambda d: (
        [], {}, json.dumps({"context": {"category": "Whostmgr", "event": "Accounts::Create",
                                        "stage": "post"}, "data": {"domain": d}}),
    ),
    "directadmin": lambda d: (["domain_create_post"], {"domain": d}, ""),
}  # fmt: skip

PLANS = {"default": True, "basic": False, "business": ["spamport"]}


def configured(tmp_path, sandbox, kind: str, plans=PLANS) -> Path:
    root = tmp_path / "root"
    for name, text in RECORDS[kind].items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    cfg = add_table(sandbox_config(tmp_path, sandbox), "panel", {"kind": kind, "root": str(root)})
    return add_table(cfg, "plans", plans) if plans is not None else cfg


def rows(cfg: Path) -> list[tuple[str, str, str]]:
    q = open_queue(cfg.parent / "state")
    try:
        return sorted((r.vendor, r.hook, r.target) for r in q.rows(limit=100))
    finally:
        q.close()


@pytest.mark.parametrize("kind", ["cpanel", "directadmin"])
def test_the_panel_hook_queues_only_for_the_vendors_an_accounts_plan_protects(
    tmp_path, sandbox, kind
):
    cfg = configured(tmp_path, sandbox, kind)
    for domain in ("gold.example", "cheap.example"):
        argv, env, stdin = CREATED[kind](domain)
        assert run(kind, argv, config=str(cfg), env=env, stdin=stdin) == 0
    # business protects at SpamPort only (not Rackspace); basic nowhere
    assert rows(cfg) == [("spamport", "domain_created", "domain:gold.example")]


def test_without_a_plans_table_every_account_is_protected(tmp_path, sandbox):
    cfg = configured(tmp_path, sandbox, "cpanel", plans=None)
    argv, env, stdin = CREATED["cpanel"]("cheap.example")
    assert run("cpanel", argv, config=str(cfg), env=env, stdin=stdin) == 0
    assert ("spamport", "domain_created", "domain:cheap.example") in rows(cfg)


@pytest.mark.parametrize(
    ("plans", "says"),
    [
        ({"basic": False}, "[plans] default: missing; add default = true"),
        ({"default": True, "gold": ["spamwall"]}, "'gold': spamwall is not an enabled vendor"),
        ({"default": "yes"}, "'default': must be true, false or a list of vendors"),
    ],
)
def test_a_wrong_plans_table_names_the_key_and_the_fix(tmp_path, sandbox, plans, says):
    cfg = configured(tmp_path, sandbox, "cpanel", plans=plans)
    with pytest.raises(ConfigError) as info:
        load_runtime(cfg)
    assert says in str(info.value)


@pytest.mark.parametrize("kind", ["cpanel", "directadmin"])
def test_sync_adds_and_removes_by_plan_and_says_why(tmp_path, sandbox, kind):
    cfg = configured(tmp_path, sandbox, kind, plans=None)
    for domain in ("gold.example", "cheap.example"):  # both protected before the plans
        argv, env, stdin = CREATED[kind](domain)
        run(kind, argv, config=str(cfg), env=env, stdin=stdin)
    Worker(load_runtime(cfg)).drain()
    assert {"gold.example", "cheap.example"} <= set(sandbox["spamport"].emulator.domains)
    add_table(cfg, "plans", {"default": True, "basic": False})
    sandbox["spamport"].emulator.domains.pop("gold.example")  # lost at the vendor meanwhile

    def sync(*extra):
        code, out, err = run_cli(cfg, "sync", "--vendor", "spamport", "--json", *extra)
        assert code == 0, err
        return {c["domain"]: c for c in json.loads(out)["changes"]}

    planned = sync("--dry-run")
    assert planned["cheap.example"]["action"] == "remove"
    assert planned["cheap.example"]["reason"].startswith("plan basic is not protected at spamport")
    assert planned["gold.example"]["action"] == "add"  # business falls under default = true
    done = sync()
    assert done["cheap.example"]["outcome"] == "done" and done["gold.example"]["outcome"] == "done"
    assert "cheap.example" not in sandbox["spamport"].emulator.domains
    assert "gold.example" in sandbox["spamport"].emulator.domains
    # a domain on an unprotected plan that the vendor does not hold is never added
    again = sync("--dry-run")
    assert again["cheap.example"]["action"] == "unplanned"
    assert "not added" in again["cheap.example"]["reason"]


# -- a plan change (cPanel's Accounts::change_package) ------------------------------------


def change_package(cfg: Path, old: str, new: str) -> None:
    """The panel moves alice to *new*: its records first, then the post hook."""
    records = cfg.parent / "root" / "var/cpanel/users/alice"
    records.write_text(records.read_text().replace(f"PLAN={old}", f"PLAN={new}"))
    payload = {
        "context": {"category": "Whostmgr", "event": "Accounts::change_package", "stage": "post"},
        "data": {"user": "alice", "cur_pkg": old, "new_pkg": new},
    }
    assert run("cpanel", [], config=str(cfg), env={}, stdin=json.dumps(payload)) == 0


def with_grace(cfg: Path, hours: float) -> Path:
    text = cfg.read_text().replace("[panel]\n", f"[panel]\nplan_grace_hours = {hours}\n", 1)
    cfg.write_text(text)
    return cfg


def test_an_upgrade_protects_the_accounts_domains_at_once(tmp_path, sandbox):
    cfg = configured(tmp_path, sandbox, "cpanel")
    records = cfg.parent / "root" / "var/cpanel/users/alice"
    records.write_text(records.read_text().replace("PLAN=business", "PLAN=basic"))
    change_package(cfg, "basic", "business")
    assert rows(cfg) == [("spamport", "domain_created", "domain:gold.example")]
    Worker(load_runtime(cfg)).drain()
    assert "gold.example" in sandbox["spamport"].emulator.domains


def test_a_downgrade_removes_after_the_grace_time_and_an_upgrade_in_between_keeps(
    tmp_path, sandbox
):
    cfg = with_grace(configured(tmp_path, sandbox, "cpanel"), 0)
    argv, env, stdin = CREATED["cpanel"]("gold.example")
    run("cpanel", argv, config=str(cfg), env=env, stdin=stdin)
    Worker(load_runtime(cfg)).drain()
    held = sandbox["spamport"].emulator.domains
    assert "gold.example" in held
    # downgraded, then upgraded again before the worker came to the removal: kept
    change_package(cfg, "business", "basic")
    change_package(cfg, "basic", "business")
    Worker(load_runtime(cfg)).drain()
    assert "gold.example" in held
    (kept,) = [r for r in rows_of(cfg) if r.hook == "vendor_step"]
    assert kept.state == "done" and "protected at spamport: kept" in kept.result["message"]
    # downgraded for good: once the grace time is over the domains leave the vendor
    change_package(cfg, "business", "basic")
    Worker(load_runtime(cfg)).drain()
    assert "gold.example" not in held
    deleted = [r for r in rows_of(cfg) if r.hook == "domain_deleted"]
    assert [r.state for r in deleted] == ["done"]


def test_within_the_grace_time_the_removal_waits(tmp_path, sandbox):
    cfg = with_grace(configured(tmp_path, sandbox, "cpanel"), 72)
    argv, env, stdin = CREATED["cpanel"]("gold.example")
    run("cpanel", argv, config=str(cfg), env=env, stdin=stdin)
    Worker(load_runtime(cfg)).drain()
    change_package(cfg, "business", "basic")
    Worker(load_runtime(cfg)).drain()
    assert "gold.example" in sandbox["spamport"].emulator.domains
    (waiting,) = [r for r in rows_of(cfg) if r.hook == "vendor_step"]
    assert waiting.state == "pending" and "unless its plan protects them" in waiting.last_error


def rows_of(cfg: Path):
    q = open_queue(cfg.parent / "state")
    try:
        return sorted(q.rows(limit=100), key=lambda r: r.id)
    finally:
        q.close()


# -- sync on every panel, with plans and a suspended account --------------------------------

#: per panel: records (files under root, or the fake virtualmin's servers), and how sync
#: gets the domains (Plesk: a list)
EVERY_PANEL = {
    "cpanel": {"files": {
        "etc/userdomains": "gold.example: alice\ncheap.example: bob\nowed.example: carol\n",
        "var/cpanel/users/alice": "USER=alice\nDNS=gold.example\nPLAN=business\n",
        "var/cpanel/users/bob": "USER=bob\nDNS=cheap.example\nPLAN=basic\n",
        "var/cpanel/users/carol": "USER=carol\nDNS=owed.example\nPLAN=business\n",
    }},
    "directadmin": {"files": {
        "etc/virtual/domainowners": "gold.example: alice\ncheap.example: bob\n"
        "owed.example: carol\n",
        **{f"{DA_USERS}/{u}/domains.list": f"{d}\n" for u, d in
           (("alice", "gold.example"), ("bob", "cheap.example"), ("carol", "owed.example"))},
        **{f"{DA_USERS}/{u}/user.conf": f"username={u}\nusertype=user\npackage={p}\n" for u, p in
           (("alice", "business"), ("bob", "basic"), ("carol", "business"))},
    }},
    "virtualmin": {"servers": [
        {"dom": "gold.example", "type": "Top-level server", "user": "alice", "plan": "business"},
        {"dom": "cheap.example", "type": "Top-level server", "user": "bob", "plan": "basic"},
        {"dom": "owed.example", "type": "Top-level server", "user": "carol", "plan": "business",
         "disabled": "Manually (Unpaid)"},
    ]},
    "plesk": {"psa": {  # one subscription each; Plesk's psa tables (tests/panels/test_inventory)
        "clients": [(1, "alice"), (2, "bob"), (3, "carol")],
        "domains": [(11, "gold.example", 1, 0, 0), (12, "cheap.example", 2, 0, 0),
                    (13, "owed.example", 3, 0, 0)],
        "Subscriptions": [(21, 11, "domain"), (22, 12, "domain"), (23, 13, "domain")],
        "PlansSubscriptions": [(21, 31), (22, 32), (23, 31)],
        "Templates": [(31, "business", "domain"), (32, "basic", "domain")],
    }},
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(EVERY_PANEL))
def test_sync_dry_run_on_every_panel_with_plans_and_a_suspended_account(tmp_path, sandbox, kind):
    from panels.test_inventory import fake_psa, fake_servers

    setup = EVERY_PANEL[kind]
    root = tmp_path / "root"
    for name, text in setup.get("files", {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    panel = {"kind": kind, "root": str(root)}
    if "servers" in setup:
        panel["virtualmin"] = fake_servers(tmp_path, setup["servers"])
    if "psa" in setup:
        panel["plesk"] = fake_psa(tmp_path, setup["psa"])
    cfg = add_table(sandbox_config(tmp_path, sandbox), "panel", panel)
    add_table(cfg, "plans", {"default": True, "basic": False})
    code, _, err = run_cli(cfg, "emit", "domain-suspended", "--domain", "owed.example",
                           "--reason", "Unpaid")  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli(cfg, "sync", "--vendor", "spamport", "--dry-run", "--json")
    assert code == 0, err
    plan = {c["domain"]: c["action"] for c in json.loads(out)["changes"]}
    # the suspended account is still the panel's: it is added like any protected domain
    assert plan["owed.example"] == "add" and plan["gold.example"] == "add"
    # bob's plan is not protected: not added, and the dry run says why
    assert plan["cheap.example"] == "unplanned"


def test_a_virtualmin_plan_change_protects_or_schedules_the_removal(tmp_path, sandbox):
    from panels.test_inventory import fake_servers

    servers = [{"dom": "gold.example", "type": "Top-level server", "user": "alice",
                "plan": "basic"}]  # fmt: skip
    command = fake_servers(tmp_path, servers)
    (tmp_path / "fake" / "virtualmin_plans.json").write_text(
        json.dumps({"11": "basic", "12": "business"})
    )
    cfg = add_table(
        sandbox_config(tmp_path, sandbox),
        "panel",
        {"kind": "virtualmin", "root": str(tmp_path), "virtualmin": command},
    )
    add_table(cfg, "plans", PLANS)

    def modify(old: str, new: str) -> None:
        servers[0]["plan"] = {"11": "basic", "12": "business"}[new]
        (tmp_path / "fake" / "virtualmin_servers.json").write_text(json.dumps(servers))
        env = {"VIRTUALSERVER_ACTION": "MODIFY_DOMAIN", "VIRTUALSERVER_DOM": "gold.example",
               "VIRTUALSERVER_OLDSERVER_DOM": "gold.example", "VIRTUALSERVER_USER": "alice",
               "VIRTUALSERVER_PLAN": new, "VIRTUALSERVER_OLDSERVER_PLAN": old}  # fmt: skip
        assert run("virtualmin", ["post"], config=str(cfg), env=env, stdin="") == 0

    modify("11", "12")  # basic -> business: protected at once
    assert rows(cfg) == [("spamport", "domain_created", "domain:gold.example")]
    Worker(load_runtime(cfg)).drain()
    assert "gold.example" in sandbox["spamport"].emulator.domains
    modify("12", "11")  # business -> basic: the removal waits out the grace time
    (step,) = [r for r in rows_of(cfg) if r.hook == "vendor_step"]
    assert step.payload["step"] == "plan_removal" and step.payload["data"]["plan"] == "basic"
    Worker(load_runtime(cfg)).drain()
    assert "gold.example" in sandbox["spamport"].emulator.domains  # 72 hours by default


def test_a_plan_that_cannot_be_read_falls_back_to_default_and_loses_nothing(tmp_path, sandbox):
    panel = {"kind": "virtualmin", "root": str(tmp_path), "virtualmin": str(tmp_path / "gone")}
    cfg = add_table(sandbox_config(tmp_path, sandbox), "panel", panel)
    add_table(cfg, "plans", {"default": True, "basic": False})
    env = {"VIRTUALSERVER_ACTION": "CREATE_DOMAIN", "VIRTUALSERVER_DOM": "new.example"}
    assert run("virtualmin", ["post"], config=str(cfg), env=env, stdin="") == 0
    assert rows(cfg) == [("spamport", "domain_created", "domain:new.example")]


def test_a_directadmin_plan_change_is_found_from_the_plan_last_seen(tmp_path, sandbox):
    """DirectAdmin's user hooks give the package the account is on, never the one before:
    the hook remembers the plan it last saw per account and acts on a difference."""
    cfg = with_grace(configured(tmp_path, sandbox, "directadmin"), 0)
    conf = cfg.parent / "root" / DA_USERS / "alice/user.conf"

    def modify(package: str) -> None:  # the panel writes user.conf, then runs the hook
        conf.write_text(f"username=alice\nusertype=user\npackage={package}\n")
        env = {"username": "alice", "usertype": "user", "package": package}
        assert run("directadmin", ["user_modify_post"], config=str(cfg), env=env, stdin="") == 0

    modify("basic")  # first sight of alice: remembered, nothing queued
    assert rows(cfg) == []
    modify("basic")  # a modification that kept the package: nothing
    assert rows(cfg) == []
    modify("business")  # upgraded: protected at once
    assert rows(cfg) == [("spamport", "domain_created", "domain:gold.example")]
    Worker(load_runtime(cfg)).drain()
    assert "gold.example" in sandbox["spamport"].emulator.domains
    modify("basic")  # downgraded: removed once the grace time (0 here) is over
    Worker(load_runtime(cfg)).drain()
    assert "gold.example" not in sandbox["spamport"].emulator.domains
    log = (cfg.parent / "state" / "panel-hook.log").read_text()
    assert "alice is on plan basic (remembered" in log
    assert "plan business -> basic of alice: removal at spamport after 0 h" in log
