"""``spamfilter setup PANEL`` and ``teardown PANEL`` on a fake DirectAdmin tree, against the
SpamPort emulator, with a stand-in for systemctl: a skeleton first, then the whole set-up in
order, idempotent, a half-done one rolled back, and the teardown in the safe order."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spamfilter_plugin.config.model import write_config

EXE = Path(sys.executable).with_name("spamfilter")
FAKE_SYSTEMCTL = Path(__file__).with_name("fake_systemctl.py")


@pytest.fixture
def server(tmp_path):
    root, bin_dir, systemd = tmp_path / "root", tmp_path / "bin", tmp_path / "systemd"
    for folder in (root / "usr/local/directadmin/scripts/custom", bin_dir, systemd):
        folder.mkdir(parents=True)
    tool = bin_dir / "systemctl"
    tool.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_SYSTEMCTL} "$@"\n')
    tool.chmod(0o755)
    units = tmp_path / "units"

    class Server:
        pass

    s = Server()
    s.root, s.units, s.systemd, s.config = root, units, systemd, tmp_path / "etc" / "config.toml"

    def cli(*args, fail=None):
        env = dict(os.environ, FAKE_SYSTEMD_DIR=str(systemd))
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
        if fail:
            env["FAKE_SYSTEMCTL_FAIL"] = fail
        return subprocess.run(
            [str(EXE), "--config", str(s.config), *args, "--units-dir", str(units)],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip

    def calls():
        path = systemd / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def state():
        path = systemd / "state.json"
        return json.loads(path.read_text())["units"] if path.exists() else {}

    def configure(spamport_sandbox):
        s.config.parent.mkdir(exist_ok=True)
        write_config(s.config, {"mail_host": "mail.example.net"}, {
            "spamport": {"api_url": spamport_sandbox.url,
                         **spamport_sandbox.emulator.credentials()},
        })  # fmt: skip
        s.config.write_text(
            s.config.read_text() + f'\n[panel]\nkind = "directadmin"\nroot = "{root}"\n'
        )

    s.cli, s.calls, s.state, s.configure = cli, calls, state, configure
    return s


def test_without_a_config_setup_writes_a_skeleton_and_stops(server):
    done = server.cli("setup", "directadmin", "--vendor", "spamport", "--vendor", "rackspace")
    assert done.returncode == 3, done.stderr
    assert oct(server.config.stat().st_mode & 0o777) == "0o600"
    text = server.config.read_text()
    assert '[panel]\nkind = "directadmin"' in text and "[vendors.spamport]" in text
    folder = server.config.parent
    assert f'password = {{ file = "{folder}/spamport-password" }}' in text  # never a literal
    assert f'secret_key = {{ file = "{folder}/rackspace-secret_key" }}' in text
    assert "stopped: fill in" in done.stdout and "spamport-password (chmod 600)" in done.stdout
    assert server.calls() == [] and not server.units.exists()  # nothing else was done
    again = server.cli("setup", "directadmin")
    assert again.returncode != 0  # the skeleton does not pass check until it is filled in
    unknown = server.cli("setup", "directadmin", "--vendor", "nope")
    assert unknown.returncode == 2  # (the file exists now: the skeleton is not rewritten)


def test_setup_in_order_idempotent_then_teardown(server, spamport_sandbox):
    server.configure(spamport_sandbox)
    dry = server.cli("setup", "directadmin", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would write" in dry.stdout and not server.units.exists()
    assert [c[0] for c in server.calls()] == []
    done = server.cli("setup", "directadmin")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    order = [
        "[1] Python", "[2] configuration", "[3] the panel", "[4] check", "[5] panel hooks",
        "[6] panel pages", "[7] systemd units", "[8] the console behind TLS", "[9] backfill",
    ]  # fmt: skip
    assert [out.index(step) for step in order] == sorted(out.index(step) for step in order)
    custom = server.root / "usr/local/directadmin/scripts/custom"
    assert (custom / "domain_create_post" / "spamfilter.sh").exists()
    assert (server.root / "usr/local/directadmin/plugins/spamfilter/user/index.html").exists()
    worker = (server.units / "spamfilter-worker.service").read_text()
    console = (server.units / "spamfilter-console.service").read_text()
    assert f"--config {server.config.resolve()} worker" in worker
    assert "serve --no-worker --host 127.0.0.1 --port 8025" in console
    assert server.state() == {
        "spamfilter-worker.service": {"enabled": True, "active": True},
        "spamfilter-console.service": {"enabled": True, "active": True},
    }
    assert "proxy_pass http://127.0.0.1:8025/;" in out and "ProxyPass" in out
    assert "sync --dry-run" in out
    # run twice: no file changes, systemctl only asked
    calls_before = len(server.calls())
    again = server.cli("setup", "directadmin")
    assert again.returncode == 0, again.stderr
    assert "write:" not in again.stdout and "checkpoint:" not in again.stdout
    verbs = {c[0] for c in server.calls()[calls_before:]}
    assert verbs <= {"is-enabled", "is-active"}, verbs
    # teardown: units stopped, disabled, removed; hooks and pages gone; the config kept
    gone = server.cli("teardown", "directadmin")
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.index("MX records put back first") < gone.stdout.index("systemd units")
    assert not (server.units / "spamfilter-worker.service").exists()
    assert server.state()["spamfilter-worker.service"] == {"enabled": False, "active": False}
    assert not list(custom.rglob("spamfilter.sh"))
    assert not (server.root / "usr/local/directadmin/plugins/spamfilter").exists()
    assert server.config.exists()


def test_a_half_done_setup_is_rolled_back(server, spamport_sandbox):
    server.configure(spamport_sandbox)
    done = server.cli("setup", "directadmin", fail="spamfilter-console.service")
    assert done.returncode == 2
    assert "Failed to enable unit spamfilter-console.service" in done.stderr
    # the worker it had started is stopped again, and every file is as it was
    assert server.state()["spamfilter-worker.service"] == {"enabled": False, "active": False}
    assert not (server.units / "spamfilter-worker.service").exists()
    custom = server.root / "usr/local/directadmin/scripts/custom"
    assert not list(custom.rglob("spamfilter.sh"))
    assert not (server.root / "usr/local/directadmin/plugins/spamfilter").exists()
    assert "rolled back" in done.stdout


def test_virtualmin_setup_chains_its_hook_and_teardown_gives_the_admins_back(
    server, spamport_sandbox
):
    server.configure(spamport_sandbox)
    server.config.write_text(
        server.config.read_text().replace('kind = "directadmin"', 'kind = "virtualmin"')
    )
    missing = server.cli("setup", "virtualmin")
    assert missing.returncode == 2 and "is virtualmin installed here" in missing.stderr
    config = server.root / "etc/webmin/virtual-server/config"
    config.parent.mkdir(parents=True)
    config.write_text("post_command=/opt/admin/post.sh\n")
    done = server.cli("setup", "virtualmin")
    assert done.returncode == 0, done.stderr
    assert "[6] panel pages" not in done.stdout  # Virtualmin's pages are the console's
    assert "panel-hook virtualmin post ; /opt/admin/post.sh" in config.read_text()
    gone = server.cli("teardown", "virtualmin")
    assert gone.returncode == 0, gone.stderr
    assert config.read_text() == "post_command=/opt/admin/post.sh\n"
