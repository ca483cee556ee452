"""The audit log (docs/operations.md): a settings change through the console, a panel page
(``ui render``/``ui submit``) and a bulk action, and queue retry and drop, each one entry
with the actor, where from, and old → new; a secret is never written, and ``spamfilter
audit`` shows them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

from console_helpers import admin_session, csrf_of, wait_until
from queue_helpers import SPAMFILTER

from spamfilter_plugin.queue import DB_NAME


def ui(demo, *args, stdin=""):
    environ = {k: v for k, v in os.environ.items() if k not in ("SUDO_USER", "SPAMFILTER_CONFIG")}
    proc = subprocess.run([SPAMFILTER, "--config", str(demo.config_path), "ui", *args],
                          input=stdin, capture_output=True, text=True, env=environ,
                          timeout=60)  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def audit(demo, *args):
    out = subprocess.run(
        [SPAMFILTER, "--config", str(demo.config_path), "audit", "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_console_change_is_one_entry_with_old_and_new_values(demo):
    em = demo.sandbox["spambarrier"].emulator
    wait_until(lambda: "bob.example" in em.domains)
    before = dict(em.domains["bob.example"]["filter"])
    s = admin_session(demo)
    page = s.get(demo.url + "settings/domain/bob.example/", timeout=10).text
    threshold = 7.5 if before["spam_threshold"] != 7.5 else 8.5
    form = {"csrf_token": csrf_of(page), "action": "filter", "spam_threshold": str(threshold),
            "spam_treatment": before["spam_treatment"],
            "virus_treatment": before["virus_treatment"], "greylisting": "0"}  # fmt: skip
    since = time.time() - 1
    r = s.post(demo.url + "settings/domain/bob.example/spambarrier/filter", data=form, timeout=10)
    assert (
        r.status_code == 200 and em.domains["bob.example"]["filter"]["spam_threshold"] == threshold
    )
    found = audit(demo, "--target", "bob.example", "--since", time.strftime(
        "%Y-%m-%dT%H:%M:%S", time.gmtime(since)), "--actor", "admin")  # fmt: skip
    # (the window starts at a whole second: another test's change to a mailbox of the
    # domain may fall into it)
    (entry,) = [e for e in found if e["target"] == "bob.example"]
    assert entry["role"] == "admin" and entry["origin"] == "127.0.0.1"
    assert (entry["action"], entry["vendor"], entry["form"]) == (
        "settings",
        "spambarrier",
        "filter",
    )
    assert entry["changes"]["spam_threshold"] == {"old": before["spam_threshold"],
                                                  "new": str(threshold)}  # fmt: skip
    assert "csrf_token" not in entry["changes"] and entry["outcome"].startswith("ok")
    # the admin's History page, and the domain's own history on its page
    history = s.get(demo.url + "history?target=bob.example", timeout=10).text
    old = entry["changes"]["spam_threshold"]["old"]
    assert f"spam_threshold {old} → {threshold}" in history
    page = s.get(demo.url + "settings/domain/bob.example/", timeout=10).text
    section = page[page.index('id="sfc-domain-history"') :]
    assert "settings spambarrier filter: " in section and f"{old} → {threshold}" in section
    assert "domain created at spambarrier" in section  # its queue rows too


def test_a_panel_page_change_names_the_panel_user_and_a_password_only_changed(demo):
    code, out, err = ui(demo, "render", "--user", "alice", "--scope", "domain", "--target",
                        "alice.example", "--vendor", "spamport")  # fmt: skip
    assert code == 0, err
    token = re.search(r'name="csrf_token" value="([^"]+)"', out).group(1)
    secret = "Sup3r-secret-pass!"
    form = {"csrf_token": token, "sfp_form": "spamport/domain", "action": "save",
            "spamscore": "high", "password": secret}  # fmt: skip
    code, out, err = ui(demo, "submit", "--user", "alice", "--scope", "domain", "--target",
                        "alice.example", stdin=json.dumps(form))  # fmt: skip
    # SpamPort's form has no password field: refused, and still recorded as an attempt
    assert code == 1 and json.loads(out)["errors"] == {"password": "Unknown field."}, err + out
    entry = audit(demo, "--actor", "alice", "--limit", "1")[0]
    assert entry["role"] == "user" and entry["origin"].startswith("panel")
    assert entry["target"] == "alice.example" and entry["vendor"] == "spamport"
    assert entry["changes"]["spamscore"]["new"] == "high"
    assert entry["changes"]["password"] == {"changed": True}
    assert entry["outcome"] == "refused: password: Unknown field."
    # no secret anywhere in the store's files, read as bytes: in another process, since
    # closing a file of the database in this one (the demo's) would drop SQLite's locks
    import sys

    state = demo.folder / "state"
    files = [str(p) for p in state.iterdir() if p.name.startswith(DB_NAME)]
    read = (
        "import sys; print(sum(open(f, 'rb').read().count(sys.argv[1].encode()) "
        "for f in sys.argv[2:]))"
    )
    found = subprocess.run([sys.executable, "-c", read, secret, *files], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert found.returncode == 0 and found.stdout.strip() == "0", found.stderr


def test_bulk_actions_and_queue_changes_are_each_recorded(demo):
    s = admin_session(demo)
    page = s.get(demo.url, timeout=10).text
    r = s.post(demo.url + "selection", data={"csrf_token": csrf_of(page), "action": "retry",
                                             "shown": "carol.example",
                                             "selected": "carol.example"}, timeout=10)  # fmt: skip
    assert r.status_code == 200
    (entry,) = audit(demo, "--target", "carol.example", "--limit", "1")
    assert entry["action"] == "bulk retry" and entry["actor"] == "admin"


def test_a_queue_drop_from_the_command_line_names_the_unix_user(tmp_path, sandbox):
    import getpass

    from queue_helpers import run_cli, sandbox_config

    cfg = sandbox_config(tmp_path, sandbox)
    code, out, err = run_cli(cfg, "emit", "domain-created", "--domain", "dropped.example",
                             "--json")  # fmt: skip
    assert code == 0, err
    (row,) = json.loads(out)["queued"].values()
    code, out, err = run_cli(cfg, "queue", "drop", str(row))
    assert code == 0, err
    code, out, err = run_cli(cfg, "audit", "--json", "--target", "dropped.example")
    (entry,) = json.loads(out)
    assert entry["action"] == "queue drop" and entry["actor"] == f"cli:{getpass.getuser()}"
    assert entry["origin"] == "cli" and entry["vendor"] == "spamport"
    assert entry["form"] == f"row {row}" and entry["outcome"].startswith("ok")
    code, out, err = run_cli(cfg, "audit", "--since", "yesterday")
    assert code == 2 and "--since" in err


def test_the_worker_purges_entries_older_than_audit_days(tmp_path, sandbox):
    from queue_helpers import sandbox_config

    from spamfilter_plugin import audit as audit_log
    from spamfilter_plugin.manager import load_runtime
    from spamfilter_plugin.queue import queue_of

    cfg = sandbox_config(tmp_path, sandbox, general={"audit_days": 30})
    rt = load_runtime(cfg)
    now = time.time()
    with queue_of(rt.config) as queue:
        for age_days, target in ((40, "old.example"), (20, "recent.example")):
            audit_log.record(queue, actor="admin", action="settings", target=target,
                             outcome="ok", at=now - age_days * 86400)  # fmt: skip
        audit_log._purged["at"] = float("-inf")  # as a worker that just started
        rt.chores(queue, now)
        assert [e["target"] for e in queue.audit_entries()] == ["recent.example"]
