"""The panel's inventory (what ``sync`` and the console take as the panel's domains) and the
hooks' rules agree, on every panel: a domain a hook protects is in the inventory, of every
kind (main, addon, parked/alias/pointer, sub), so ``sync`` never plans its removal; with
``secondary_domains = "skip"`` the inventory holds exactly what the hooks protect.

The panels' records, as each panel writes them:

* DirectAdmin: ``/etc/virtual/domainowners`` (``domain: user``), and per user
  ``data/users/<user>/domains.list``, ``domains/<domain>.pointers`` (``alias=type`` a line)
  and ``domains/<domain>.subdomains`` (one label a line);
* cPanel: ``/etc/userdomains`` (every domain of every kind, ``domain: user``, the addon's
  own subdomain included) and ``/var/cpanel/users/<user>`` (``DNS=`` the main domain);
* Virtualmin: its own listing, ``virtualmin list-domains --simple-multiline`` (the fake
  command prints the servers the fake panel holds, as list-domains.pl prints them);
* Plesk: its ``psa`` database through ``plesk db`` (the fake command runs the query on a
  SQLite file with the tables and columns the adapter reads: ``domains`` with ``cl_id``,
  ``webspace_id`` and ``parentDomainId``, ``domain_aliases``, ``clients``, and the plan's
  ``Subscriptions``, ``PlansSubscriptions`` and ``Templates``).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from queue_helpers import sandbox_config

from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.panels import PayloadError, load
from spamfilter_plugin.panels.hook import run
from spamfilter_plugin.queue import open_queue
from spamfilter_plugin.sync import panel_domains
from spamfilter_plugin.worker import Worker

SPAMFILTER = str(Path(sys.executable).with_name("spamfilter"))
DA_USERS = "usr/local/directadmin/data/users"

#: each panel's records after an account got one domain of every kind, and the hook calls
#: (argv, env, stdin) that made them
PANELS = {
    "directadmin": {
        "files": {
            "etc/virtual/domainowners": "example.org: bob\n",
            f"{DA_USERS}/bob/domains.list": "example.org\n",
            f"{DA_USERS}/bob/domains/example.org.pointers": "alias-example.org=alias\n"
            "redirect-example.org=pointer\n",
            f"{DA_USERS}/bob/domains/example.org.subdomains": "shop\nwww2\n",
        },
        "calls": [
            (["domain_create_post"], {"domain": "example.org", "username": "bob"}, ""),
            (
                ["domain_pointer_create_post"],
                {"from": "alias-example.org", "domain": "example.org", "username": "bob"},
                "",
            ),
            (
                ["domain_pointer_create_post"],
                {"from": "redirect-example.org", "domain": "example.org", "username": "bob"},
                "",
            ),
            (["subdomain_create_post"], {"subdomain": "shop", "domain": "example.org"}, ""),
            (["subdomain_create_post"], {"subdomain": "www2", "domain": "example.org"}, ""),
        ],
        "main": {"example.org"},
    },
    "cpanel": {
        "files": {
            "etc/userdomains": "example.com: alice\nparked.net: alice\nshop.net: alice\n"
            "shop.example.com: alice\nblog.example.com: alice\n",
            "var/cpanel/users/alice": "USER=alice\nDNS=example.com\n",
        },
        "calls": [
            ([], {}, {"context": {"category": "Whostmgr", "event": "Accounts::Create",
                                  "stage": "post"}, "data": {"user": "alice",
                                                             "domain": "example.com"}}),
            ([], {}, {"context": {"category": "Whostmgr", "event": "ParkAdmin::park",
                                  "stage": "post"}, "data": {"user": "alice",
                                                             "target_domain": "example.com",
                                                             "new_domain": "parked.net"}}),
            ([], {}, {"context": {"category": "Cpanel",
                                  "event": "Api2::AddonDomain::addaddondomain", "stage": "post"},
                      "data": {"user": "alice", "args": {"newdomain": "shop.net",
                                                         "subdomain": "shop"},
                               "output": [{"result": 1}]}}),
            ([], {}, {"context": {"category": "Whostmgr", "event": "Domain::addsubdomain",
                                  "stage": "post"},
                      "data": {"user": "alice", "subdomain": "blog.example.com",
                               "rootdomain": "example.com"}}),
        ],
        "main": {"example.com"},
    },
    "virtualmin": {
        "files": {},
        # the servers as list-domains.pl describes them: Type, Username, Parent domain, Plan
        "servers": [
            {"dom": "example.net", "type": "Top-level server", "user": "carol", "plan": "Gold"},
            {"dom": "shop.example.net", "type": "Sub-server", "user": "carol",
             "parent": "example.net", "plan": "Gold"},
            {"dom": "alias-example.net", "type": "Alias", "user": "carol",
             "real": "example.net"},
        ],
        "calls": [
            (["post"], {"VIRTUALSERVER_ACTION": "CREATE_DOMAIN",
                        "VIRTUALSERVER_DOM": "example.net"}, ""),
            (["post"], {"VIRTUALSERVER_ACTION": "CREATE_DOMAIN", "VIRTUALSERVER_PARENT": "17",
                        "VIRTUALSERVER_DOM": "shop.example.net"}, ""),
            (["post"], {"VIRTUALSERVER_ACTION": "CREATE_DOMAIN", "VIRTUALSERVER_ALIAS": "17",
                        "VIRTUALSERVER_DOM": "alias-example.net"}, ""),
        ],
        "main": {"example.net"},
    },
    "plesk": {
        "files": {},
        # carol's subscription example.info on plan Gold, with an additional site, a
        # subdomain and an alias
        "psa": {
            "clients": [(1, "admin"), (7, "carol")],
            "domains": [(11, "example.info", 7, 0, 0), (12, "addon.example", 7, 11, 0),
                        (13, "shop.example.info", 7, 11, 11)],
            "domain_aliases": [(21, "alias-example.info", 11)],
            "Subscriptions": [(31, 11, "domain")],
            "PlansSubscriptions": [(31, 41), (31, 42)],
            "Templates": [(41, "Gold", "domain"), (42, "Extra storage", "domain_addon")],
        },
        "calls": [
            (["domain_create"], {"NEW_DOMAIN_NAME": "example.info"}, ""),
            (["site_create"], {"NEW_DOMAIN_NAME": "addon.example"}, ""),
            (["subdomain_create"], {"NEW_SUBDOMAIN_NAME": "shop",
                                    "NEW_DOMAIN_NAME": "example.info"}, ""),
            (["domain_alias_create"], {"NEW_DOMAIN_ALIAS_NAME": "alias-example.info",
                                       "NEW_DOMAIN_NAME": "example.info"}, ""),
        ],
        "main": {"example.info", "addon.example"},
    },
}  # fmt: skip

#: the columns of the psa tables the Plesk adapter reads
PSA_TABLES = {
    "clients": "id INTEGER, login TEXT",
    "domains": "id INTEGER, name TEXT, cl_id INTEGER, webspace_id INTEGER, parentDomainId INTEGER",
    "domain_aliases": "id INTEGER, name TEXT, dom_id INTEGER",
    "Subscriptions": "id INTEGER, object_id INTEGER, object_type TEXT",
    "PlansSubscriptions": "subscription_id INTEGER, plan_id INTEGER",
    "Templates": "id INTEGER, name TEXT, type TEXT",
}


def fake_psa(tmp_path, tables: dict[str, list[tuple]]) -> str:
    """A fake ``plesk`` command whose ``plesk db`` reads *tables* (see PSA_TABLES); its path."""
    import sqlite3

    base = tmp_path / "fake"
    base.mkdir(exist_ok=True)
    db = sqlite3.connect(base / "psa.sqlite3")
    with db:
        for name, columns in PSA_TABLES.items():
            db.execute(f"CREATE TABLE {name} ({columns})")
            for row in tables.get(name, []):
                db.execute(f"INSERT INTO {name} VALUES ({','.join('?' * len(row))})", row)
    db.close()
    path = base / "plesk"
    commands = Path(__file__).with_name("fake_commands.py")
    path.write_text(
        f'#!/bin/sh\nFAKE_PANEL_DIR="{base}" exec {sys.executable} {commands} plesk "$@"\n'
    )
    path.chmod(0o755)
    return str(path)


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def fake_servers(tmp_path, servers: list[dict]) -> str:
    """A fake ``virtualmin`` command holding *servers*; its path."""
    base = tmp_path / "fake"
    base.mkdir(exist_ok=True)
    (base / "virtualmin_servers.json").write_text(json.dumps(servers))
    path = base / "virtualmin"
    commands = Path(__file__).with_name("fake_commands.py")
    path.write_text(
        f'#!/bin/sh\nFAKE_PANEL_DIR="{base}" exec {sys.executable} {commands} virtualmin "$@"\n'
    )
    path.chmod(0o755)
    return str(path)


def config_for(tmp_path, sandbox, kind: str, secondary: str):
    root = tree(tmp_path / "root", PANELS[kind]["files"])
    cfg = sandbox_config(tmp_path, sandbox, spamport={"concurrency": 2})
    text = cfg.read_text()
    panel = f'[panel]\nkind = "{kind}"\nroot = "{root}"\nsecondary_domains = "{secondary}"\n'
    if "servers" in PANELS[kind]:
        panel += f'virtualmin = "{fake_servers(tmp_path, PANELS[kind]["servers"])}"\n'
    if "psa" in PANELS[kind]:
        panel += f'plesk = "{fake_psa(tmp_path, PANELS[kind]["psa"])}"\n'
    cfg.write_text(text.replace("[vendors.spamport]", panel + "\n[vendors.spamport]", 1))
    return cfg


def hooked(kind: str, cfg) -> set[str]:
    """What the panel's hook calls queued as domain creations."""
    for argv, env, stdin in PANELS[kind]["calls"]:
        body = json.dumps(stdin) if isinstance(stdin, dict) else stdin
        assert run(kind, argv, config=str(cfg), env=env, stdin=body) == 0
    q = open_queue(cfg.parent / "state")
    try:
        rows = q.rows(vendor="spamport", limit=1000)
        return {r.target.split(":", 1)[1] for r in rows if r.hook == "domain_created"}
    finally:
        q.close()


@pytest.mark.parametrize("secondary", ["protect", "skip"])
@pytest.mark.parametrize("kind", sorted(PANELS))
def test_the_inventory_holds_what_the_hooks_protect(kind, secondary, tmp_path, sandbox, capsys):
    cfg = config_for(tmp_path, sandbox, kind, secondary)
    protected = hooked(kind, cfg)
    assert PANELS[kind]["main"] <= protected
    inventory = set(panel_domains(load_runtime(cfg)))
    if secondary == "protect":
        assert len(protected) == len(PANELS[kind]["calls"])  # one domain of every kind
        assert protected <= inventory
    else:
        assert protected == PANELS[kind]["main"]
        assert inventory == protected  # sync adds nothing the hooks skip


@pytest.mark.parametrize("kind", sorted(PANELS))
def test_sync_never_plans_the_removal_of_a_domain_a_hook_protects(kind, tmp_path, sandbox, capsys):
    cfg = config_for(tmp_path, sandbox, kind, "protect")
    protected = hooked(kind, cfg)
    assert Worker(load_runtime(cfg)).drain().done == len(protected)
    assert protected <= set(sandbox["spamport"].emulator.domains)
    out = subprocess.run(
        [SPAMFILTER, "--config", str(cfg), "sync", "--vendor", "spamport", "--dry-run", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    actions = {(c["domain"], c["action"]) for c in json.loads(out.stdout)["changes"]}
    assert not [a for a in actions if a[1] == "remove"], actions


def test_the_plesk_inventory_names_each_domains_owner_kind_and_plan(tmp_path):
    command = fake_psa(tmp_path, PANELS["plesk"]["psa"])
    adapter = load("plesk", {"root": str(tmp_path), "plesk": command})
    assert sorted(adapter.inventory()) == [
        ("addon.example", "carol", "main"),
        ("alias-example.info", "carol", "secondary"),
        ("example.info", "carol", "main"),
        ("shop.example.info", "carol", "secondary"),
    ]
    # the subscription's plan, not its add-on, for every domain in it
    names = ["shop.example.info", "alias-example.info", "nowhere.example"]
    assert adapter.plans_of(names) == dict(zip(names, ["Gold", "Gold", None], strict=True))
    assert adapter.plan_of("carol") == "Gold" and adapter.owner_of("addon.example") == "carol"
    assert adapter.domains_of("carol") == [
        "addon.example", "alias-example.info", "example.info", "shop.example.info"]  # fmt: skip


def test_a_panel_whose_listing_fails_makes_sync_name_the_command(tmp_path, sandbox):
    cfg = sandbox_config(tmp_path, sandbox)
    missing = tmp_path / "no-such-plesk"
    panel = f'[panel]\nkind = "plesk"\nplesk = "{missing}"\n'
    text = cfg.read_text().replace("[vendors.spamport]", panel + "\n[vendors.spamport]", 1)
    cfg.write_text(text)
    out = subprocess.run(
        [SPAMFILTER, "--config", str(cfg), "sync", "--vendor", "spamport", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    assert f"{missing} not found; check the [panel] table" in out.stderr


def test_an_account_removal_takes_every_domain_of_the_account(tmp_path, sandbox, capsys):
    cfg = config_for(tmp_path, sandbox, "directadmin", "protect")
    assert run("directadmin", ["user_destroy_pre"], config=str(cfg), env={"username": "bob"}) == 0
    q = open_queue(cfg.parent / "state")
    try:
        deleted = {r.target.split(":", 1)[1] for r in q.rows(vendor="spamport", limit=100)}
    finally:
        q.close()
    assert deleted == {
        "example.org",
        "alias-example.org",
        "redirect-example.org",
        "shop.example.org",
        "www2.example.org",
    }


HOSTILE_NAMES = ["resel/../alice", "../bob", "bob/../../etc", ".", "..", "a\0b", "", ".hidden"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("kind", sorted(PANELS))
def test_no_path_is_built_from_a_hostile_name(kind, name, tmp_path):
    """Every path made from a payload or login value goes through the one checked helper:
    a name that is not one plain path component reads nothing."""
    root = tree(tmp_path / "root", PANELS[kind]["files"])
    # a file the traversal would reach if it were followed
    tree(root, {f"{DA_USERS}/alice/domains.list": "stolen.example\n"})
    tree(root, {"var/cpanel/users/alice": "DNS=stolen.example\nOWNER=resel\n"})
    adapter = load(kind, {"root": str(root)})
    with pytest.raises(PayloadError):
        adapter.domains_of(name)
    assert adapter.role_of(name) is None
    assert adapter.accounts_of(name) == []
    with pytest.raises(PayloadError):
        adapter.record_path("etc", name)


def test_directadmin_user_destroy_pre_with_a_traversing_username_queues_nothing(
    tmp_path, sandbox, capsys
):
    cfg = config_for(tmp_path, sandbox, "directadmin", "protect")
    tree(tmp_path / "root", {f"{DA_USERS}/alice/domains.list": "alice.example\n"})
    env = {"username": "resel/../alice"}
    assert run("directadmin", ["user_destroy_pre"], config=str(cfg), env=env) == 0
    q = open_queue(cfg.parent / "state")
    try:
        assert q.rows(limit=10) == []
    finally:
        q.close()
    log = (cfg.parent / "state" / "panel-hook.log").read_text()
    assert "username" in log


@pytest.mark.parametrize("kind", ["cpanel", "directadmin", "plesk", "virtualmin"])
def test_spamfilter_sync_runs_on_every_panel(kind, tmp_path, sandbox):
    """The command as an admin runs it, on each panel: a plan where the panel lists its
    domains, else a plain request for a list; never a traceback."""
    if kind in PANELS:
        cfg = config_for(tmp_path, sandbox, kind, "protect")
    else:
        cfg = sandbox_config(tmp_path, sandbox)
        text = cfg.read_text().replace(
            "[vendors.spamport]", f'[panel]\nkind = "{kind}"\n\n[vendors.spamport]', 1
        )
        cfg.write_text(text)
    out = subprocess.run(
        [SPAMFILTER, "--config", str(cfg), "sync", "--vendor", "spamport", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in out.stderr, out.stderr
    if kind in PANELS:
        assert out.returncode == 0 and "spamport: holds 0 domains; would change:" in out.stdout
        listed = len(panel_domains(load_runtime(cfg)))
        assert f"would change: {listed} add" in out.stdout and listed >= len(PANELS[kind]["calls"])
    else:
        assert out.returncode == 2 and f"the {kind} adapter cannot list" in out.stderr
