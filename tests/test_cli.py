"""The installed ``spamfilter`` command, run as a hosting admin would run it."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import toyvendor_plugin

from spamfilter_plugin import __version__
from spamfilter_plugin.testing import write_config

SPAMFILTER = shutil.which("spamfilter") or os.path.join(
    os.path.dirname(sys.executable), "spamfilter"
)


def run(env, *args, stdin=None):
    proc = subprocess.run(
        [SPAMFILTER, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_version_and_help(cli_env):
    code, out, _ = run(cli_env, "--version")
    assert code == 0 and out.strip() == f"spamfilter-plugin {__version__}"
    code, out, _ = run(cli_env, "--help")
    assert code == 0
    for word in ("check", "vendors", "emit", "--config", "SPAMFILTER_CONFIG", "Exit status"):
        assert word in out
    code, out, _ = run(cli_env, "emit", "--help")
    assert "--password-stdin" in out and "domain-created" in out


def test_vendors_lists_installed_and_enabled(cli_env, toy_config):
    code, out, _ = run(cli_env, "--config", str(toy_config), "vendors")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "enabled" in lines["toy"] and "spamfilter-test-plugins 1.0" in lines["toy"]
    assert "disabled" in lines["crashy"]
    code, out, _ = run(cli_env, "--config", str(toy_config), "vendors", "--json")
    doc = json.loads(out)
    assert {v["name"]: v["enabled"] for v in doc["vendors"]}["toy"] is True


def test_vendors_without_config_still_lists(cli_env, tmp_path):
    code, out, err = run(cli_env, "--config", str(tmp_path / "missing.toml"), "vendors")
    assert code == 0 and "toy" in out and "does not exist" in err


def test_check_succeeds(cli_env, toy_config):
    code, out, err = run(cli_env, "--config", str(toy_config), "check")
    assert code == 0, err
    assert "valid" in out and "toy: ok (authenticated as acme)" in out


def test_check_reports_bad_credentials(cli_env, tmp_path, toy_emulator):
    cfg = write_config(
        tmp_path / "c.toml", {}, {"toy": {"api_url": toy_emulator.url, "token": "wrong-tok-9"}}
    )
    code, out, err = run(cli_env, "--config", str(cfg), "check", "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False and doc["vendors"][0]["error_type"] == "VendorAuthError"
    assert "wrong-tok-9" not in out + err


def test_check_bad_config_names_the_key(cli_env, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[vendors.toy]\napi_url = "http://127.0.0.1:1"\ntoken = "t"\nretrys = 2\n')
    cfg.chmod(0o600)
    code, out, err = run(cli_env, "--config", str(cfg), "check")
    assert code == 2 and out == ""
    assert "[vendors.toy] retrys: unknown key" in err


def test_check_refuses_world_readable_secret(cli_env, toy_config):
    toy_config.chmod(0o644)
    code, _, err = run(cli_env, "--config", str(toy_config), "check")
    assert code == 2 and f"chmod 600 {toy_config}" in err
    assert toyvendor_plugin.TOKEN not in err


def test_config_from_environment_variable(cli_env, toy_config):
    env = dict(cli_env, SPAMFILTER_CONFIG=str(toy_config))
    code, out, _ = run(env, "check")
    assert code == 0 and str(toy_config) in out


def test_emit_domain_created_delivers_to_the_vendor(cli_env, toy_config, toy_emulator):
    code, out, err = run(
        cli_env,
        "--config",
        str(toy_config),
        "emit",
        "domain-created",
        "--domain",
        "Bücher.example",
        "--destination",
        "192.0.2.9",
        "--now",
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["event"]["domain"] == "xn--bcher-kva.example"
    assert doc["vendors"][0]["result"]["dns_records"][0]["name"] == "_toy.xn--bcher-kva.example"
    assert toy_emulator.state.domains["xn--bcher-kva.example"]["destination"] == "192.0.2.9"


def test_emit_reports_each_vendor_and_exits_1_when_one_fails(cli_env, tmp_path, toy_emulator):
    cfg = write_config(
        tmp_path / "c.toml",
        {},
        {"crashy": {}, "toy": {"api_url": toy_emulator.url, "token": toyvendor_plugin.TOKEN}},
    )
    code, out, _ = run(
        cli_env, "--config", str(cfg), "emit", "domain-created", "--domain", "both.example", "--now"
    )
    assert code == 1
    assert "crashy: FAILED" in out and "toy: ok" in out
    assert "both.example" in toy_emulator.state.domains


def test_emit_password_reset_reads_stdin_and_never_prints_it(cli_env, toy_config):
    code, out, err = run(
        cli_env,
        "--config",
        str(toy_config),
        "-vv",
        "emit",
        "password-reset",
        "--mailbox",
        "a@example.com",
        "--password-stdin",
        "--now",
        stdin="N3w&Pass#word\n",
    )
    assert code == 0, err
    assert "toy: ok" in out and "***" in out
    assert "N3w&Pass#word" not in out + err and "N3w%26Pass%23word" not in out + err


@pytest.mark.parametrize(
    "args,needle",
    [
        (["emit", "domain-created"], "domain-created needs --domain"),
        (["emit", "domain-created", "--domain", "bad_domain!.com"], "domain: "),
        (["emit", "domain-created", "--domain", "-bad.com"], "domain: '-bad.com'"),
        (["emit", "domain-created", "--domain", "example.com.."], "domain: "),
        (["emit", "mailbox-added", "--mailbox", "alex.smith\n@example.com"], "control character"),
        (
            ["emit", "domain-created", "--domain", "a.example", "--destination", "fe80::1%eth0"],
            "zone id",
        ),
        (["emit", "domain-updated", "--domain", "a.example"], "needs --destination"),
        (
            ["emit", "domain-updated", "--domain", "a.example", "--destination", "999.1.1.1"],
            "destination: ",
        ),
        (["emit", "mailbox-added", "--mailbox", "not-an-address"], "mailbox: "),
        (["emit", "mailbox-added", "--domain", "a.example"], "needs --mailbox"),
        (
            ["emit", "password-reset", "--domain", "a.example", "--mailbox", "b@a.example"],
            "exactly one",
        ),
        (["emit", "domain-deleted", "--domain", "a.example", "--password-stdin"], "does not apply"),
        (["emit", "domain-created", "--domain", "a.example", "--reason", "x"], "--reason does"),
        (["emit", "domain-suspended", "--mailbox", "b@a.example"], "needs --domain"),
        (
            ["emit", "domain-suspended", "--domain", "a.example", "--reason", "bad\x1b"],
            "reason: ",
        ),
    ],
)
def test_emit_bad_input_exits_2_naming_the_field(cli_env, toy_config, args, needle):
    code, _out, err = run(cli_env, "--config", str(toy_config), *args)
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1


def test_emit_unknown_event_is_a_usage_error(cli_env, toy_config):
    code, _, err = run(
        cli_env, "--config", str(toy_config), "emit", "domain-exploded", "--domain", "a.example"
    )
    assert code == 2 and "invalid choice" in err


def test_log_level_from_config_and_verbose_flag(cli_env, tmp_path, toy_emulator):
    cfg = write_config(
        tmp_path / "c.toml",
        {"log_level": "debug"},
        {"toy": {"api_url": toy_emulator.url, "token": toyvendor_plugin.TOKEN}},
    )
    code, _, err = run(cli_env, "--config", str(cfg), "check")
    assert code == 0 and "GET http://127.0.0.1" in err and "DEBUG" in err
    assert toyvendor_plugin.TOKEN not in err
    cfg = write_config(
        tmp_path / "c.toml",
        {"log_level": "error"},
        {"toy": {"api_url": toy_emulator.url, "token": toyvendor_plugin.TOKEN}},
    )
    code, _, err = run(cli_env, "--config", str(cfg), "check")
    assert code == 0 and err == ""
    code, _, err = run(cli_env, "--config", str(cfg), "-vv", "check")
    assert "GET http://127.0.0.1" in err


def test_a_new_command_is_a_new_module(tmp_path, monkeypatch):
    from spamfilter_plugin import cli

    (tmp_path / "hello.py").write_text(
        "def register(sub):\n"
        "    p = sub.add_parser('hello', help='say hello')\n"
        "    p.set_defaults(func=lambda args: 7)\n"
    )
    (tmp_path / "_helper.py").write_text("raise RuntimeError('helpers are not commands')\n")
    monkeypatch.setattr(cli, "__path__", [*cli.__path__, str(tmp_path)])
    try:
        assert "hello" in cli.command_modules() and "_helper" not in cli.command_modules()
        assert cli.main(["hello"]) == 7
    finally:
        sys.modules.pop("spamfilter_plugin.cli.hello", None)
    for name in ("check", "emit", "queue", "sandbox", "worker"):
        assert name in cli.command_modules()


def test_systemd_unit_templates_keep_their_placeholders():
    from spamfilter_plugin.systemd import MARK, UNITS, template, unit

    assert set(template("spamfilter-worker.service").get_identifiers()) == {
        "exe", "config", "state_dir",
    }  # fmt: skip
    assert set(template("spamfilter-console.service").get_identifiers()) == {
        "exe", "config", "state_dir", "port",
    }  # fmt: skip
    worker = unit(UNITS[0], "/opt/sf bin/spamfilter", "/etc/sf/config.toml", "/var/lib/sf")
    assert 'ExecStart="/opt/sf bin/spamfilter" --config /etc/sf/config.toml worker' in worker
    assert "ReadWritePaths=/var/lib/sf" in worker and "$" not in worker
    console = unit(UNITS[1], "/usr/bin/spamfilter", "/etc/sf/c.toml", "/var/lib/sf", 8030)
    assert "serve --no-worker --host 127.0.0.1 --port 8030" in console
    assert worker.startswith(MARK) and console.startswith(MARK)


def test_sandbox_lists_and_serves_a_third_party_emulator(cli_env):
    code, out, _ = run(cli_env, "sandbox", "--list", "--json")
    assert code == 0
    names = [e["name"] for e in json.loads(out)["emulators"]]
    assert names == ["spamport", "spamwall", "spambarrier", "tornevall", "rackspace", "toy"]


def test_emit_now_names_a_suspension_and_exits_1(cli_env, tmp_path, toy_emulator):
    cfg = write_config(
        tmp_path / "c.toml", {}, {"toy": {"api_url": toy_emulator.url, "token": "wrong-tok-1"}}
    )
    code, out, _ = run(
        cli_env, "--config", str(cfg), "emit", "domain-created", "--domain", "a.example", "--now"
    )
    assert code == 1 and "toy: FAILED" in out  # refused: the vendor is now suspended
    sent = len(toy_emulator.state.requests)
    code, out, err = run(
        cli_env,
        "--config",
        str(cfg),
        "emit",
        "domain-created",
        "--domain",
        "b.example",
        "--now",
        "--json",
    )
    doc = json.loads(out)
    assert code == 1 and not doc["ok"]
    (vendor,) = doc["vendors"]
    assert vendor["vendor"] == "toy" and "suspended" in vendor["error"]
    assert "queued behind" not in err and "suspended" in err
    assert len(toy_emulator.state.requests) == sent  # nothing was sent while suspended


@pytest.mark.parametrize("state_dir", ['"spool"', '""', "5", '"./state"'])
@pytest.mark.parametrize(
    "command", [["emit", "domain-created", "--domain", "a.example"], ["queue", "list"], ["check"]]
)
def test_a_relative_or_empty_state_dir_is_refused_by_every_command(
    cli_env, tmp_path, state_dir, command
):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[general]\nstate_dir = {state_dir}\n")
    cfg.chmod(0o600)
    code, _out, err = run(cli_env, "--config", str(cfg), *command)
    assert code == 2, err
    assert "[general] state_dir" in err and "absolute path" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_password_stdin_that_is_not_utf8_is_a_clear_error(cli_env, toy_config):
    proc = subprocess.run(
        [
            SPAMFILTER,
            "--config",
            str(toy_config),
            "emit",
            "password-reset",
            "--domain",
            "a.example",
            "--password-stdin",
        ],
        env=cli_env,
        input=b"\xff\xfepass\n",
        capture_output=True,
        timeout=60,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "not UTF-8" in err and "Traceback" not in err


def test_every_option_of_every_command_says_what_it_is_and_its_default():
    """``--help`` describes every option and argument; an option with a default says it."""
    import argparse

    from spamfilter_plugin.cli import build_parser

    def actions(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from actions(sub, [*path, name])
            elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                yield " ".join(path), action

    silent, undated = [], []
    for where, action in actions(build_parser(), ["spamfilter"]):
        name = "/".join(action.option_strings) or action.dest
        if not action.help or action.help == argparse.SUPPRESS:
            silent.append(f"{where} {name}")
        elif (
            action.option_strings
            and not isinstance(action, argparse._CountAction)
            and action.default not in (None, False, argparse.SUPPRESS)
            and "default" not in action.help
        ):
            undated.append(f"{where} {name}")
    assert silent == [] and undated == []
