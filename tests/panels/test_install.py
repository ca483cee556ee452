"""install-hooks and uninstall-hooks against a fake panel root and fake panel commands
that record their arguments: twice in a row, with an admin's own hook in place."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spamfilter_plugin.testing import write_config

FAKE = Path(__file__).with_name("fake_commands.py")
EXE = Path(sys.executable).with_name("spamfilter")


@pytest.fixture
def panel(tmp_path):
    root, fake = tmp_path / "root", tmp_path / "fake"
    root.mkdir()
    fake.mkdir()
    commands = {}
    for name in ("manage_hooks", "plesk"):
        path = fake / name
        path.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} {name} "$@"\n')
        path.chmod(0o755)
        commands[name] = str(path)

    def make(kind):
        table = {"kind": kind, "root": str(root)}
        if kind == "cpanel":
            table["manage_hooks"] = commands["manage_hooks"]
        if kind == "plesk":
            table["plesk"] = commands["plesk"]
        path = write_config(tmp_path / "c.toml", {}, {})
        path.write_text(
            path.read_text() + "\n[panel]\n" + "".join(f'{k} = "{v}"\n' for k, v in table.items())
        )
        return path

    def cli(config, *args):
        env = dict(os.environ, FAKE_PANEL_DIR=str(fake))
        return subprocess.run(
            [str(EXE), "--config", str(config), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    def calls():
        path = fake / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def state(name):
        path = fake / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else []

    make.root, make.cli, make.calls, make.state = root, cli, calls, state
    return make


def test_cpanel_registers_a_self_describing_script_once_and_removes_only_it(panel):
    config = panel("cpanel")
    dry = panel.cli(config, "install-hooks", "cpanel", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would write" in dry.stdout and "would run" in dry.stdout
    assert not (panel.root / "usr/local/cpanel/3rdparty/bin/spamfilter-panel-hook").exists()
    assert [c[:2] for c in panel.calls()] == [["manage_hooks", "list"]]
    first = panel.cli(config, "install-hooks", "cpanel")
    assert first.returncode == 0, first.stderr
    script = panel.root / "usr/local/cpanel/3rdparty/bin/spamfilter-panel-hook"
    assert oct(script.stat().st_mode & 0o777) == "0o755"
    hooks = panel.state("manage_hooks")
    assert {h["hook"] for h in hooks} == {str(script)}
    assert ("Whostmgr", "Accounts::Remove", "pre") in {
        (h["category"], h["event"], h["stage"]) for h in hooks
    }
    admin = {
        "category": "Whostmgr",
        "event": "Accounts::Create",
        "stage": "post",
        "exectype": "script",
        "hook": "/opt/admin/own-hook",
        "id": "admin",
    }
    fake_state = [*panel.state("manage_hooks"), admin]
    (panel.root.parent / "fake" / "manage_hooks.json").write_text(json.dumps(fake_state))
    again = panel.cli(config, "install-hooks", "cpanel")
    assert again.returncode == 0 and "unchanged" in again.stdout
    assert len(panel.state("manage_hooks")) == len(fake_state)  # nothing added twice
    gone = panel.cli(config, "uninstall-hooks", "cpanel")
    assert gone.returncode == 0, gone.stderr
    assert panel.state("manage_hooks") == [admin] and not script.exists()
    assert panel.cli(config, "uninstall-hooks", "cpanel").returncode == 0
    assert panel.state("manage_hooks") == [admin]


def test_directadmin_uses_the_folder_form_and_leaves_the_admins_scripts(panel):
    config = panel("directadmin")
    custom = panel.root / "usr/local/directadmin/scripts/custom"
    (custom / "email_create_post").mkdir(parents=True)
    (custom / "email_create_post.sh").write_text("#!/bin/sh\necho admin's\n")
    (custom / "email_create_post" / "admin.sh").write_text("#!/bin/sh\necho admin's too\n")
    for _ in range(2):
        done = panel.cli(config, "install-hooks", "directadmin")
        assert done.returncode == 0, done.stderr
    ours = custom / "email_create_post" / "spamfilter.sh"
    assert "panel-hook directadmin email_create_post" in ours.read_text()
    assert oct(ours.stat().st_mode & 0o777) == "0o700"
    assert "unchanged" in done.stdout and "write:" not in done.stdout
    assert (custom / "user_destroy_pre" / "spamfilter.sh").exists()
    (custom / "domain_create_post" / "spamfilter.sh").write_text("#!/bin/sh\n# the admin's now\n")
    done = panel.cli(config, "uninstall-hooks", "directadmin")
    assert done.returncode == 0 and "left alone (not ours)" in done.stdout
    assert not ours.exists() and (custom / "email_create_post" / "admin.sh").exists()
    assert (custom / "email_create_post.sh").read_text() == "#!/bin/sh\necho admin's\n"
    assert (custom / "domain_create_post" / "spamfilter.sh").exists()
    assert not (custom / "user_destroy_pre").exists()


def test_plesk_creates_each_handler_once_and_deletes_only_ours(panel):
    config = panel("plesk")
    fake = panel.root.parent / "fake" / "plesk.json"
    fake.write_text(
        json.dumps(
            [
                {
                    "id": 7,
                    "command": "/opt/admin/notify.sh",
                    "priority": "50",
                    "user": "root",
                    "event": "site_create",
                }
            ]
        )
    )
    for _ in range(2):
        done = panel.cli(config, "install-hooks", "plesk")
        assert done.returncode == 0, done.stderr
    handlers = panel.state("plesk")
    ours = [h for h in handlers if "panel-hook plesk" in h["command"]]
    assert len(ours) == 13 and len({h["event"] for h in ours}) == 13
    assert all(h["command"].endswith("panel-hook plesk " + h["event"]) for h in ours)
    creates = [c for c in panel.calls() if "--create" in c]
    assert len(creates) == 13  # the second run created nothing
    done = panel.cli(config, "uninstall-hooks", "plesk")
    assert done.returncode == 0, done.stderr
    assert [h["id"] for h in panel.state("plesk")] == [7]


def test_virtualmin_chains_in_front_of_the_admins_post_command(panel):
    config = panel("virtualmin")
    server = panel.root / "etc/webmin/virtual-server/config"
    users = panel.root / "etc/webmin/useradmin/config"
    server.parent.mkdir(parents=True)
    users.parent.mkdir(parents=True)
    server.write_text("pre_command=/opt/admin/pre.sh\npost_command=/opt/admin/post.sh\nother=1\n")
    users.write_text("home_base=/home\n")
    for _ in range(2):
        done = panel.cli(config, "install-hooks", "virtualmin")
        assert done.returncode == 0, done.stderr
    lines = server.read_text().splitlines()
    post = next(line for line in lines if line.startswith("post_command="))
    assert post.endswith("panel-hook virtualmin post ; /opt/admin/post.sh")
    assert "pre_command=/opt/admin/pre.sh" in lines and "other=1" in lines
    assert any(
        line.endswith("panel-hook virtualmin post") for line in users.read_text().splitlines()
    )
    done = panel.cli(config, "uninstall-hooks", "virtualmin")
    assert done.returncode == 0
    assert "post_command=/opt/admin/post.sh" in server.read_text().splitlines()
    assert "post_command=" in users.read_text() and "panel-hook" not in users.read_text()


def test_a_half_done_directadmin_install_is_rolled_back(panel):
    """A hook folder that cannot be made (a file is in its way) stops the install half-way:
    the scripts written before it are removed again, with the folders made for them."""
    config = panel("directadmin")
    custom = panel.root / "usr/local/directadmin/scripts/custom"
    custom.mkdir(parents=True)
    (custom / "subdomain_create_post").write_text("in the way\n")  # a file, not a folder
    (custom / "domain_create_post").mkdir()
    (custom / "domain_create_post" / "admin.sh").write_text("#!/bin/sh\n")
    done = panel.cli(config, "install-hooks", "directadmin")
    assert done.returncode != 0
    assert "rolled back: removed" in done.stdout and "rolled back" in done.stderr
    assert not list(custom.rglob("spamfilter.sh"))
    assert sorted(p.name for p in custom.iterdir()) == [
        "domain_create_post",
        "subdomain_create_post",
    ]
    assert (custom / "domain_create_post" / "admin.sh").exists()  # the admin's: untouched


def test_the_virtualmin_config_is_kept_before_it_is_rewritten(panel):
    config = panel("virtualmin")
    server = panel.root / "etc/webmin/virtual-server/config"
    server.parent.mkdir(parents=True)
    original = "post_command=/opt/admin/post.sh\nother=1\n"
    server.write_text(original)
    server.chmod(0o640)
    done = panel.cli(config, "install-hooks", "virtualmin")
    assert done.returncode == 0, done.stderr
    kept = done.stdout.split("checkpoint: the files as they were before are kept in ")[1].strip()
    manifest = json.loads((Path(kept) / "manifest.json").read_text())
    ((path, copy, mode, made),) = manifest
    assert path == str(server) and mode == 0o640 and made == []
    assert (Path(kept) / copy).read_text() == original
    assert "panel-hook virtualmin" in server.read_text()
    # an install that changes nothing keeps nothing
    again = panel.cli(config, "install-hooks", "virtualmin")
    assert again.returncode == 0 and "checkpoint:" not in again.stdout
