"""The panel adapters and the panel-hook entry, fed each panel's documented payloads
(tests/panels/fixtures/<panel>/<event>.json, each naming its source): the events queued,
the passwords sealed, the panel's reply, and that nothing ever fails the panel."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spamfilter_plugin.errors import PanelError
from spamfilter_plugin.panels import PayloadError, load, settings
from spamfilter_plugin.panels.hook import LOG_NAME, run
from spamfilter_plugin.queue import open_queue
from spamfilter_plugin.testing import closed_port_url, write_config

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(FIXTURES.glob("*/*.json"))
DA_USERS = "usr/local/directadmin/data/users"


def fake_root(root: Path) -> Path:
    """The panel files the adapters read, as the panels write them."""
    files = {
        "etc/userdomains": "example.com: alice\nparked-example.net: alice\n"
        "shop.example.com: alice\nxn--bcher-kva.example: alice\nother.example: dave\n*: nobody\n",
        "var/cpanel/users/alice": "USER=alice\nDNS=example.com\nPLAN=default\n",
        "home/alice/etc/example.com/passwd": "info:x:1001:1001::/home/alice/mail/example.com/info:"
        "/usr/local/cpanel/bin/noshell\nsales:x:1001:1001::/home/alice/mail:/bin/false\n",
        f"{DA_USERS}/bob/domains.list": "example.org\nsecond.example\n",
        f"{DA_USERS}/bob/domains/example.org.pointers": "alias-example.org=alias\n",
        "etc/virtual/domainowners": "example.org: bob\nsecond.example: bob\n",
        "etc/virtual/example.org/passwd": "info:$6$hash:589:12::/home/bob/imap/example.org/info:"
        "/bin/false\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def panel_config(tmp_path):
    root = fake_root(tmp_path / "root")

    def make(kind, **panel):
        table = {"kind": kind, "root": str(root), **panel}
        vendor = {"api_url": closed_port_url() + "/api/api.php", "username": "a", "password": "p"}
        path = write_config(tmp_path / f"{kind}.toml", {}, {"spamwall": vendor})
        text = path.read_text().replace(
            "[vendors.spamwall]", _panel_table(table) + "\n[vendors.spamwall]"
        )
        path.write_text(text)
        return path

    return make


def _panel_table(table: dict) -> str:
    return "[panel]\n" + "".join(f'{k} = "{v}"\n' for k, v in table.items())


def queued(config: Path):
    q = open_queue(config.parent / "state")
    try:
        rows = sorted(q.rows(vendor="spamwall", limit=1000), key=lambda r: r.id)
        return [(r.hook, str(q.event_of(r).target), q.event_of(r)) for r in rows]
    finally:
        q.close()


def call(case: dict, kind: str, config: Path, capsys) -> tuple[int, str]:
    stdin = json.dumps(case["stdin"]) if kind == "cpanel" else ""
    status = run(kind, case["argv"], config=str(config), env=case["env"], stdin=stdin)
    return status, capsys.readouterr().out


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_documented_payload_queues_its_events(path, panel_config, capsys):
    kind, case = path.parent.name, json.loads(path.read_text(encoding="utf-8"))
    assert case["source"], "each fixture names where its payload comes from"
    config = panel_config(kind)
    status, out = call(case, kind, config, capsys)
    assert status == 0
    got = [(hook, target) for hook, target, _ in queued(config)]
    assert got == [tuple(e) for e in case["expect"]]
    if kind == "cpanel":
        assert out.startswith("1 ") and out.count("\n") == 1, out
    else:
        assert out == ""  # DirectAdmin shows it to the user; Plesk and Virtualmin lose it
    log = (config.parent / "state" / LOG_NAME).read_text()
    assert log.count("\n") == 1 and kind in log
    for secret in _passwords(case):
        assert secret not in log and secret not in out


def _passwords(case: dict) -> list[str]:
    found = []

    def walk(value, key=""):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, str) and "pass" in key.lower() and "crypted" not in key:
            found.append(value)

    walk(case)
    return found


def test_passwords_are_sealed_in_the_queue_and_crypted_ones_never_passed_on(panel_config, capsys):
    config = panel_config("directadmin")
    case = json.loads((FIXTURES / "directadmin" / "email_create_post.json").read_text())
    call(case, "directadmin", config, capsys)
    crypted = json.loads((FIXTURES / "directadmin" / "email_create_crypted_post.json").read_text())
    call(crypted, "directadmin", config, capsys)
    events = queued(config)
    resets = [e for hook, _, e in events if hook == "password_reset"]
    assert len(resets) == 1 and resets[0].password.reveal() == case["env"]["passwd"]
    db = (config.parent / "state").glob("*")
    for path in db:
        if path.is_file():
            data = path.read_bytes()
            assert case["env"]["passwd"].encode() not in data
            assert crypted["env"]["passwd"].encode() not in data


def test_secondary_domains_skip(panel_config, capsys):
    config = panel_config("cpanel", secondary_domains="skip")
    case = json.loads((FIXTURES / "cpanel" / "parkadmin_park_post.json").read_text())
    status, out = call(case, "cpanel", config, capsys)
    assert status == 0 and out.startswith("1 ignored") and "secondary_domains" in out
    assert queued(config) == []
    case = json.loads((FIXTURES / "cpanel" / "accounts_create_post.json").read_text())
    call(case, "cpanel", config, capsys)
    assert [h for h, _, _ in queued(config)] == ["domain_created"]  # main domains still are


@pytest.mark.parametrize(
    "kind,argv,env,stdin,field",
    [
        ("cpanel", [], {}, "{not json", "stdin"),
        ("cpanel", [], {}, '{"data": {}}', "context"),
        (
            "cpanel",
            [],
            {},
            json.dumps({"context": {"event": "Accounts::Create", "stage": "post"}}),
            "data.domain",
        ),
        ("directadmin", [], {}, "", "HOOK"),
        ("directadmin", ["email_create_post"], {"domain": "example.org"}, "", "user"),
        ("directadmin", ["domain_create_post"], {"domain": "bad_domain!"}, "", "domain"),
        ("plesk", ["site_create"], {}, "", "NEW_DOMAIN_NAME"),
        ("virtualmin", ["post"], {}, "", "VIRTUALSERVER_ACTION"),
        ("virtualmin", ["sideways"], {}, "", "stage"),
    ],
)
def test_malformed_payloads_answer_success_and_log_the_field(
    panel_config, capsys, kind, argv, env, stdin, field
):
    config = panel_config(kind)
    status = run(kind, argv, config=str(config), env=env, stdin=stdin)
    out = capsys.readouterr().out
    assert status == 0
    if kind == "cpanel":
        assert out.startswith("1 ignored: " + field), out
    else:
        assert out == ""
    log = (config.parent / "state" / LOG_NAME).read_text()
    assert f"payload not used: {field}:" in log and "Traceback" not in log
    assert queued(config) == []


def test_missing_config_still_answers_the_panel(tmp_path, capsys):
    status = run(
        "cpanel", [], config=str(tmp_path / "absent.toml"), env={}, stdin='{"context": {}}'
    )
    out = capsys.readouterr().out
    assert status == 0 and out.startswith("0 not queued: config file") and "absent.toml" in out
    assert run("directadmin", ["email_create_post"], config=str(tmp_path / "x.toml"), env={}) == 0
    assert capsys.readouterr().out == ""


def test_unknown_panel_and_unknown_event(panel_config, capsys):
    assert run("hestia", [], config=str(panel_config("plesk")), env={}) == 0
    config = panel_config("directadmin")
    assert run("directadmin", ["dns_create_post"], config=str(config), env={"domain": "x.org"}) == 0
    assert capsys.readouterr().out == ""
    assert "ignored (not an event" in (config.parent / "state" / LOG_NAME).read_text()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through a read-only mode")
def test_a_read_only_state_dir_says_so_in_the_panels_non_blocking_form(panel_config, capsys):
    config = panel_config("cpanel")
    state = config.parent / "state"
    state.mkdir(mode=0o500)
    try:
        case = json.loads((FIXTURES / "cpanel" / "accounts_create_post.json").read_text())
        status, out = call(case, "cpanel", config, capsys)
    finally:
        state.chmod(0o700)
    assert status == 0 and out.startswith("0 not queued")


def test_a_state_dir_that_is_a_file_fails_softly(panel_config, capsys):
    """As a read-only disk does: nothing can be written under state_dir."""
    config = panel_config("cpanel")
    (config.parent / "state").write_text("not a directory")
    case = json.loads((FIXTURES / "cpanel" / "accounts_create_post.json").read_text())
    status, out = call(case, "cpanel", config, capsys)
    assert status == 0 and out.startswith("0 not queued"), out
    assert "Plain-Acct-Pw-1" not in out


def test_cpanel_describe_lists_the_hooks_with_escalation(panel_config, capsys):
    config = panel_config("cpanel", hook_command="/usr/local/bin/spamfilter --config /etc/sf.toml")
    assert run("cpanel", ["--describe"], config=str(config), env={}) == 0
    hooks = json.loads(capsys.readouterr().out)
    events = {(h["category"], h["event"], h["stage"]) for h in hooks}
    assert ("Whostmgr", "Accounts::Remove", "pre") in events
    assert ("Cpanel", "UAPI::Email::add_pop", "post") in events
    command = "/usr/local/bin/spamfilter --config /etc/sf.toml panel-hook cpanel"
    assert all(h["exectype"] == "script" and h["hook"] == command for h in hooks)
    assert all(h.get("escalateprivs") == 1 for h in hooks if h["category"] == "Cpanel")
    assert not any(h.get("blocking") for h in hooks)


def test_panel_records(tmp_path):
    root = str(fake_root(tmp_path))
    cp = load("cpanel", {"root": root})
    assert cp.domains_of("alice") == [
        "example.com",
        "parked-example.net",
        "shop.example.com",
        "xn--bcher-kva.example",
    ]
    assert cp.owner_of("other.example") == "dave" and cp.owner_of("nowhere.example") is None
    assert cp.mailboxes_of("example.com") == ["info@example.com", "sales@example.com"]
    da = load("directadmin", {"root": root})
    assert da.domains_of("bob") == ["alias-example.org", "example.org", "second.example"]
    assert da.owner_of("second.example") == "bob"
    assert da.mailboxes_of("example.org") == ["info@example.org"]
    # Plesk reads its database through its command: a missing command is named
    with pytest.raises(PanelError, match="no-plesk not found; check the"):
        load("plesk", {"root": root, "plesk": f"{root}/no-plesk"}).domains_of("x")


def test_panel_settings_name_the_key():
    assert settings({"kind": "plesk"})["plesk"] == "/usr/sbin/plesk"
    for table, key in (
        ({"kind": "cpanal"}, "kind"),
        ({"kind": "cpanel", "root": "relative"}, "root"),
        ({"kind": "cpanel", "secondary_domains": "maybe"}, "secondary_domains"),
        ({"kind": "cpanel", "plesk": "/x"}, "plesk"),
    ):
        with pytest.raises(ValueError, match=f"^{key}:"):
            settings(table)


def test_config_checks_the_panel_table(tmp_path):
    from spamfilter_plugin.errors import ConfigError
    from spamfilter_plugin.manager import load_runtime

    path = write_config(tmp_path / "c.toml", {}, {})
    path.write_text(path.read_text() + '\n[panel]\nkind = "cpanel"\nsecondary_domains = "x"\n')
    with pytest.raises(ConfigError, match=r"\[panel\] secondary_domains"):
        load_runtime(path)
    path.write_text(path.read_text().replace('"x"', '"skip"'))
    assert load_runtime(path).config.panel["secondary_domains"] == "skip"


def test_payload_error_names_the_field():
    err = PayloadError("data.user", "missing")
    assert str(err) == "data.user: missing" and err.field == "data.user"


def test_the_real_command_reads_stdin_and_answers_one_line(panel_config):
    config = panel_config("cpanel")
    case = json.loads((FIXTURES / "cpanel" / "uapi_passwd_pop_post.json").read_text())
    exe = Path(sys.executable).with_name("spamfilter")
    done = subprocess.run(
        [str(exe), "--config", str(config), "panel-hook", "cpanel"],
        input=json.dumps(case["stdin"]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == "1 queued password_reset info@example.com\n"
    assert [h for h, _, _ in queued(config)] == ["password_reset"]


# -- the hook cache: a validated config is not even parsed on the panel's call ------------

LIGHT_CALL = """
import json, sys
if sys.argv[3:] == ["seal"]:  # what a password costs is its own: sealing it (cryptography
    import urllib.parse  # loads lazily) and masking its URL-encoded forms in logs
    from cryptography.fernet import Fernet
    sealer = Fernet(Fernet.generate_key())
    sealer.decrypt(sealer.encrypt(b"x"))
before = set(sys.modules)
import spamfilter_plugin
if "spamfilter_plugin._checkout" in sys.modules:  # a checkout maps hooks/ and templates/
    before |= {"pathlib", "typing", "spamfilter_plugin._checkout"}  # not when installed
from spamfilter_plugin.entry import main
sys.argv = ["spamfilter", "--config", sys.argv[1], "panel-hook", "directadmin", sys.argv[2]]
main()
loaded = set(sys.modules) - before
heavy = ("tomllib", "dataclasses", "pathlib", "logging", "argparse", "typing", "idna",
         "ipaddress", "uuid", "requests", "jinja2", "marshmallow", "pluggy", "cryptography",
         "psycopg", "psycopg_pool")
ours = sorted(m for m in loaded if m.startswith("spamfilter_plugin."))
print(json.dumps({"heavy": [m for m in heavy if m in loaded], "ours": ours}))
"""

#: the package's modules the panel-hook path may import (the panel waits for it); anything
#: else belongs above it
LIGHT_MODULES = {
    "spamfilter_plugin.entry",
    "spamfilter_plugin.errors",
    "spamfilter_plugin.redaction",
    "spamfilter_plugin.keyfile",
    "spamfilter_plugin.eventdata",
    "spamfilter_plugin.intake",
    "spamfilter_plugin.config",
    "spamfilter_plugin.config.file",
    "spamfilter_plugin.config.cache",
    "spamfilter_plugin.store",
    "spamfilter_plugin.store.outbox",
    "spamfilter_plugin.panels",
    "spamfilter_plugin.panels.hook",
    "spamfilter_plugin.panels.directadmin",
}


def light_call(
    config: Path, domain: str, hook: str = "domain_create_post", /, *warm: str, **env
) -> list[str]:
    """One DirectAdmin *hook* (a domain creation unless told) in a fresh process: the heavy
    modules it loaded, and the package's modules it loaded beyond :data:`LIGHT_MODULES`
    (with *warm* ``"seal"``, what sealing a secret loads is not counted)."""
    env = {**os.environ, "domain": domain, "username": "bob", **env}
    done = subprocess.run(  # from elsewhere than the checkout: the installed package
        [sys.executable, "-c", LIGHT_CALL, str(config), hook, *warm],
        env=env,
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    doc = json.loads(done.stdout)
    return doc["heavy"] + [m for m in doc["ours"] if m not in LIGHT_MODULES]


def test_a_validated_config_is_used_from_the_cache_without_parsing(panel_config, private_cache_dir):
    config = panel_config("directadmin")
    config.write_text(config.read_text().replace('password = "p"', 'password = "Unique-Pw-42"'))
    loaded = light_call(config, "first.example")  # validates in full, writes the cache
    assert "tomllib" in loaded and "pluggy" in loaded
    (cache,) = private_cache_dir.iterdir()
    assert cache.stat().st_mode & 0o777 == 0o600
    doc = json.loads(cache.read_text())
    assert doc["state_dir"] == str(config.parent / "state")
    assert doc["panel"]["kind"] == "directadmin" and "spamwall" in doc["handlers"]
    assert "Unique-Pw-42" not in cache.read_text()

    assert light_call(config, "second.example") == []  # none of the heavy modules
    assert [t for _, t, _ in queued(config)] == ["first.example", "second.example"]


def test_in_fleet_mode_the_panel_hook_is_as_light_and_never_touches_the_database(
    panel_config, private_cache_dir
):
    """A [fleet] table changes nothing on the panel's call: the event goes to the local
    outbox (the database here does not even exist), and no driver is loaded."""
    config = panel_config("directadmin")
    key = config.parent / "fleet.key"
    fleet = f'[fleet]\nurl = "postgresql://u@192.0.2.1:9/none"\nkey = {{ file = "{key}" }}\n'
    config.write_text(config.read_text() + "\n" + fleet)
    assert "psycopg" in light_call(config, "first.example")  # validated in full once
    assert light_call(config, "second.example") == []
    assert [t for _, t, _ in queued(config)] == ["first.example", "second.example"]


def test_a_password_costs_the_panel_hook_only_its_sealing(panel_config, private_cache_dir):
    """A new mailbox with its password: sealing it loads Fernet (and what cryptography
    itself imports) and the queue's key file, and nothing else beyond a domain's creation."""
    config = panel_config("directadmin")
    light_call(config, "first.example")  # validates in full, writes the cache
    case = json.loads((FIXTURES / "directadmin" / "email_create_post.json").read_text())
    assert light_call(config, "example.org", "email_create_post", "seal", **case["env"]) == []
    assert [h for h, _, _ in queued(config)][-2:] == ["mailbox_added", "password_reset"]


def test_a_changed_config_or_secret_file_is_read_again(panel_config, private_cache_dir):
    config = panel_config("directadmin")
    light_call(config, "first.example")
    # the state dir moves: the cache must not send the event to the old one
    config.write_text(config.read_text().replace("/state", "/moved"))
    assert "tomllib" in light_call(config, "second.example")
    moved = open_queue(config.parent / "moved")
    assert [r.target for r in moved.rows(limit=10)] == ["domain:second.example"]
    moved.close()
    # a secret file named by the config changes: validated again too
    secret = config.parent / "pw"
    secret.write_text("p\n")
    secret.chmod(0o600)
    config.write_text(
        config.read_text().replace('password = "p"', f'password = {{ file = "{secret}" }}')
    )
    light_call(config, "third.example")
    assert light_call(config, "fourth.example") == []
    secret.write_text("changed\n")
    assert "tomllib" in light_call(config, "fifth.example")


def test_a_cache_others_could_have_written_is_ignored(panel_config, private_cache_dir):
    config = panel_config("directadmin")
    light_call(config, "first.example")
    (cache,) = private_cache_dir.iterdir()
    doc = json.loads(cache.read_text())
    doc["state_dir"] = str(config.parent / "elsewhere")
    cache.write_text(json.dumps(doc))
    cache.chmod(0o666)
    assert "tomllib" in light_call(config, "second.example")
    assert not (config.parent / "elsewhere").exists()
    assert [t for _, t, _ in queued(config)] == ["first.example", "second.example"]


def test_a_cpanel_suspension_carries_its_reason_to_every_domain(panel_config, capsys):
    config = panel_config("cpanel")
    case = json.loads((FIXTURES / "cpanel" / "accounts_suspendacct_post.json").read_text())
    call(case, "cpanel", config, capsys)
    events = [e for hook, _, e in queued(config) if hook == "domain_suspended"]
    assert len(events) == 4 and {e.reason for e in events} == {"Unpaid invoice #4411"}
