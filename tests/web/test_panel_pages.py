"""Settings pages inside the panels: ``spamfilter ui`` and the pages ``install-ui`` writes,
run as the panel runs them, against the demo's emulators and DirectAdmin records."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

SPAMFILTER = shutil.which("spamfilter") or os.path.join(
    os.path.dirname(sys.executable), "spamfilter"
)


def ui(demo, *args, stdin="", env=None, config=None):
    environ = {k: v for k, v in os.environ.items() if k not in ("SUDO_USER", "SPAMFILTER_CONFIG")}
    environ.update(env or {})
    proc = subprocess.run(
        [SPAMFILTER, "--config", str(config or demo.config_path), "ui", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )
    return proc.returncode, proc.stdout, proc.stderr


def spamport(demo):
    return demo.sandbox["spamport"].emulator


def test_render_and_submit_for_the_panel_user(demo):
    code, out, err = ui(
        demo, "render", "--user", "alice", "--scope", "domain", "--target", "alice.example",
        "--vendor", "spamport", "--form-url", "/CMD_PLUGINS/spamfilter/index.html",
    )  # fmt: skip
    assert code == 0, err
    assert 'data-sfp-vendor="spamport"' in out and "spambarrier" not in out
    assert 'action="/CMD_PLUGINS/spamfilter/index.html"' in out
    assert 'name="sfp_form" value="spamport/domain"' in out
    token = re.search(r'name="csrf_token" value="([^"]+)"', out).group(1)
    was = spamport(demo).domains["alice.example"]["spamscore"]
    new = "high" if was != "high" else "low"
    form = {"csrf_token": token, "sfp_form": "spamport/domain", "action": "save", "spamscore": new}
    code, out, err = ui(
        demo, "submit", "--user", "alice", "--scope", "domain", "--target", "alice.example",
        stdin=json.dumps(form),
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["ok"] is True and "spamscore" in json.loads(out)["changed"]
    assert spamport(demo).domains["alice.example"]["spamscore"] == new
    # a token of another user, or none, changes nothing
    form["csrf_token"] = "forged"
    form["spamscore"] = was
    code, out, _ = ui(
        demo, "submit", "--user", "alice", "--scope", "domain", "--target", "alice.example",
        stdin=json.dumps(form),
    )  # fmt: skip
    assert code == 2 and "csrf_token" in json.loads(out)["message"]
    assert spamport(demo).domains["alice.example"]["spamscore"] == new


def test_another_users_domain_is_refused(demo):
    code, out, err = ui(
        demo, "render", "--user", "alice", "--scope", "domain", "--target", "bob.example"
    )
    assert code == 2 and out == ""
    assert "bob.example is not one of alice's domains" in err
    # the reseller sees both of its customers' domains, not the admin's own customer's
    code, out, err = ui(
        demo, "render", "--user", "resel", "--scope", "domain", "--target", "bob.example"
    )
    assert code == 0, err
    code, _, err = ui(
        demo, "render", "--user", "resel", "--scope", "domain", "--target", "carol.example"
    )
    assert code == 2 and "carol.example" in err
    # a mailbox user sees their own mailbox only
    code, _, err = ui(
        demo,
        "render",
        "--user",
        "info@alice.example",
        "--scope",
        "mailbox",
        "--target",
        "sales@alice.example",
    )
    assert code == 2
    # run through sudo by user alice, she cannot ask for bob's pages
    code, _, err = ui(
        demo, "render", "--user", "bob", "--scope", "domain", "--target", "bob.example",
        env={"SUDO_USER": "alice"},
    )  # fmt: skip
    assert code == 2 and "sudo" in err


@pytest.fixture
def fake_sudo(tmp_path):
    """sudo as the panel's page meets it: -n, then the command (run as root here)."""
    path = tmp_path / "sudo"
    path.write_text('#!/bin/sh\n[ "$1" = "-n" ] && shift\nexec "$@"\n')
    path.chmod(0o755)
    return str(path)


def test_directadmin_plugin_pages(demo, tmp_path, fake_sudo):
    config = tmp_path / "da.toml"
    text = demo.config_path.read_text().replace("[panel]\n", f'[panel]\nsudo = "{fake_sudo}"\n')
    config.write_text(text)
    config.chmod(0o600)
    proc = subprocess.run(
        [SPAMFILTER, "--config", str(config), "install-ui", "directadmin"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    base = demo.folder / "panel/usr/local/directadmin/plugins/spamfilter"
    conf = dict(line.split("=", 1) for line in (base / "plugin.conf").read_text().splitlines())
    assert conf["id"] == "spamfilter" and conf["active"] == "yes"
    page = base / "user/index.html"
    assert os.access(page, os.X_OK)
    assert (demo.folder / "panel/etc/sudoers.d/spamfilter-plugin").stat().st_mode & 0o777 == 0o440
    again = subprocess.run(
        [SPAMFILTER, "--config", str(config), "install-ui", "directadmin"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "write:" not in again.stdout and "unchanged:" in again.stdout

    def request(user, query, post=None):
        env = {"PATH": os.environ["PATH"], "USERNAME": user, "QUERY_STRING": query}
        env["SPAMFILTER_CACHE_DIR"] = os.environ["SPAMFILTER_CACHE_DIR"]  # the test's own
        env["REQUEST_METHOD"] = "POST" if post else "GET"
        if post:
            env["POST"] = post
        return subprocess.run([str(page)], env=env, capture_output=True, text=True, timeout=60)

    listing = request("alice", "").stdout
    assert (
        "alice.example" in listing and "bücher.example" in listing and "bob.example" not in listing
    )
    for query in ("-x=1", "--query=scope%3Ddomain", "-"):  # the browser's query, never an option
        dashed = request("alice", query)
        assert dashed.returncode == 0 and "alice.example" in dashed.stdout, dashed.stderr
    shown = request("alice", "scope=domain&target=alice.example").stdout
    assert 'name="sfp_form" value="spamport/domain"' in shown
    # the form keeps its own name, and the hidden field goes inside it (no stray text)
    assert (
        'method="post" name="spamport-settings"><input type="hidden" name="sfp_form" '
        'value="spamport/domain">' in shown
    )
    assert '"> name="' not in shown
    token = re.search(r'name="csrf_token" value="([^"]+)"', shown).group(1)
    refused = request("alice", "scope=domain&target=bob.example").stdout
    assert "bob.example is not one of alice&#x27;s domains" in refused
    assert "sfp-fragment sfp-vendor" not in refused
    post = f"csrf_token={token}&sfp_form=spamport/domain&action=save&greylist=0&greylist=1"
    done = request("alice", "scope=domain&target=alice.example", post).stdout
    assert "greylist" in done and spamport(demo).domains["alice.example"]["greylist"] == "1"
    # a refused form comes back as it was sent: each error beside its field, named by its
    # label, the other changes kept, nothing saved
    before = dict(spamport(demo).domains["alice.example"])
    post = (
        f"csrf_token={token}&sfp_form=spamport/domain&action=save&greylist=0"
        "&report_to=not-an-address&spamscore=high"
    )
    back = request("alice", "scope=domain&target=alice.example", post).stdout
    assert spamport(demo).domains["alice.example"] == before
    field = re.search(r'<input class="sfp-input" id="sfp-report_to"[^>]*>', back).group(0)
    assert 'value="not-an-address"' in field and 'aria-invalid="true"' in field
    assert 'aria-describedby="sfp-report_to-help sfp-report_to-error"' in field
    error = re.search(r'id="sfp-report_to-error">([^<]*)<', back).group(1)
    assert error.startswith("Send spam reports to: ")
    assert '<a href="#sfp-report_to">Send spam reports to: ' in back  # the summary links to it
    assert "report_to:" not in back  # the internal key is not what the user reads
    assert re.search(r'<option value="high"\s*selected>', back)  # the other change kept
    assert not re.search(r'id="sfp-greylist"[^>]*checked', back)


@pytest.fixture
def fake_cpanel_tools(tmp_path):
    log = tmp_path / "calls.log"
    tools = {}
    for name in ("register_appconfig", "install_plugin"):
        path = tmp_path / name
        path.write_text(
            f'#!/bin/sh\necho {name} "$@" >> {log}\n'
            + (f'tar -tzf "$1" >> {log}\n' if name == "install_plugin" else "")
        )
        path.chmod(0o755)
        tools[name] = str(path)
    return tools, log


def test_cpanel_pages_are_registered(tmp_path, fake_cpanel_tools, cli_env):
    from spamfilter_plugin.config.model import toml_table

    tools, log = fake_cpanel_tools
    root = tmp_path / "root"
    config = tmp_path / "c.toml"
    config.write_text(
        "\n".join(
            toml_table("general", {"state_dir": str(tmp_path / "state")})
            + toml_table("panel", {"kind": "cpanel", "root": str(root), **tools})
        )
        + "\n"
    )
    config.chmod(0o600)
    dry = subprocess.run(
        [SPAMFILTER, "--config", str(config), "install-ui", "cpanel", "--dry-run"],
        capture_output=True, text=True, env=cli_env, timeout=60,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "would run:" in dry.stdout and not root.exists() and not log.exists()
    proc = subprocess.run(
        [SPAMFILTER, "--config", str(config), "install-ui", "cpanel"],
        capture_output=True, text=True, env=cli_env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text()
    conf = root / "usr/local/cpanel/whostmgr/docroot/cgi/spamfilter/spamfilter.conf"
    assert f"register_appconfig {conf}" in calls
    assert (
        "service=whostmgr" in conf.read_text()
        and "url=/cgi/spamfilter/index.cgi" in conf.read_text()
    )
    assert "install_plugin" in calls and "--theme jupiter" in calls
    assert "spamfilter/install.json" in calls
    live = root / "usr/local/cpanel/base/frontend/jupiter/spamfilter/index.live.pl"
    assert "Cpanel::LiveAPI" in live.read_text() and "REMOTE_USER" in live.read_text()
    assert os.access(live, os.X_OK)


def test_a_suspended_accounts_user_sees_why_and_cannot_change_its_settings(demo):
    from console_helpers import admin_session

    from spamfilter_plugin.emit import emit
    from spamfilter_plugin.events import DomainSuspended, DomainUnsuspended

    target = ("--scope", "domain", "--target", "alice.example")
    emit(DomainSuspended(domain="alice.example", reason="Unpaid invoice 77"), demo.config_path)
    try:
        code, page, err = ui(demo, "page", "--user", "alice", "--query",
                             "scope=domain&target=alice.example")  # fmt: skip
        assert code == 0, err
        assert "alice.example is suspended since" in page and "Unpaid invoice 77" in page
        code, out, err = ui(demo, "render", "--user", "alice", *target, "--vendor", "spamport")
        token = re.search(r'name="csrf_token" value="([^"]+)"', out).group(1)
        was = spamport(demo).domains["alice.example"]["spamscore"]
        new = "high" if was != "high" else "low"
        form = {"csrf_token": token, "sfp_form": "spamport/domain", "action": "save",
                "spamscore": new}  # fmt: skip
        code, out, err = ui(demo, "submit", "--user", "alice", *target, stdin=json.dumps(form))
        answer = json.loads(out)
        assert code == 1 and answer["ok"] is False
        assert "cannot be changed until the suspension is lifted" in answer["message"]
        assert spamport(demo).domains["alice.example"]["spamscore"] == was
        # the account's reseller (and the admin) still may
        code, out, err = ui(demo, "render", "--user", "resel", *target, "--vendor", "spamport")
        form["csrf_token"] = re.search(r'name="csrf_token" value="([^"]+)"', out).group(1)
        code, out, err = ui(demo, "submit", "--user", "resel", *target, stdin=json.dumps(form))
        assert code == 0 and json.loads(out)["ok"] is True, (out, err)
        assert spamport(demo).domains["alice.example"]["spamscore"] == new
        # the console's admin sees it on the dashboard and the domain's page
        session = admin_session(demo)
        board = session.get(demo.url, params={"vendor": "spamport"}, timeout=10).text
        row = board[board.index('data-domain="alice.example"') :].split("</tr>", 1)[0]
        assert "suspended</span> since" in row and "Unpaid invoice 77" in row
        settings = session.get(demo.url + "settings/domain/alice.example/", timeout=10).text
        notice = settings[settings.index("sfp-suspended") :].split("</p>", 1)[0]
        assert "alice.example is suspended since" in notice
        assert "cannot be changed" not in notice  # the admin can change them
        # the refused attempt of alice is in the domain's history
        history = settings[settings.index('id="sfc-domain-history"') :]
        assert "alice (user)" in history and "refused: alice.example is suspended" in history
    finally:
        emit(DomainUnsuspended(domain="alice.example"), demo.config_path)
    code, page, _ = ui(demo, "page", "--user", "alice", "--query",
                       "scope=domain&target=alice.example")  # fmt: skip
    assert "is suspended since" not in page
