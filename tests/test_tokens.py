"""The JSON API's tokens: made and shown once, kept as a digest, listed without a way back to
the token, found while valid, expired, revoked; every change in the audit log."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spamfilter_plugin import tokens
from spamfilter_plugin.config.model import write_config
from spamfilter_plugin.errors import InvalidInput
from spamfilter_plugin.queue import DB_NAME, open_queue

EXE = Path(sys.executable).with_name("spamfilter")


@pytest.fixture
def config(tmp_path):
    return write_config(tmp_path / "c.toml", {"mail_host": "mail.example.net"}, {})


def cli(config, *args):
    return subprocess.run([str(EXE), "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_a_token_is_shown_once_and_kept_only_as_its_digest(config, tmp_path):
    made = cli(config, "token", "create", "whmcs", "--role", "reseller:resel", "--json")
    assert made.returncode == 0, made.stderr
    doc = json.loads(made.stdout)
    token = doc["token"]
    assert token.startswith("sfp_") and len(token) > 40 and doc["role"] == "reseller:resel"
    for stored in (tmp_path / "state").glob(DB_NAME + "*"):
        assert token.encode() not in stored.read_bytes()
    listed = cli(config, "token", "list", "--json")
    (entry,) = json.loads(listed.stdout)["tokens"]
    assert entry["name"] == "whmcs" and "digest" not in entry and token not in listed.stdout
    with open_queue(tmp_path / "state") as q:
        record = tokens.found(q, token)
        assert record["role"] == "reseller" and record["subject"] == "resel"
        assert tokens.found(q, token[:-1] + "x") is None
        assert q.token_named("whmcs")["last_used_at"] is not None
    again = cli(config, "token", "create", "whmcs", "--role", "admin")
    assert again.returncode == 2 and "exists" in again.stderr
    gone = cli(config, "token", "revoke", "whmcs")
    assert gone.returncode == 0
    with open_queue(tmp_path / "state") as q:
        assert tokens.found(q, token) is None
        said = [(e["action"], e["target"]) for e in q.audit_entries()]
    assert said == [("token revoke", "whmcs"), ("token create", "whmcs")]
    assert cli(config, "token", "revoke", "whmcs").returncode == 2


def test_an_expired_token_no_longer_works(tmp_path):
    with open_queue(tmp_path / "state") as q:
        token, record = tokens.create(q, "short", "account:alice", expires_days=1, now=lambda: 0.0)
        assert record["expires_at"] == 86400.0
        assert tokens.found(q, token, now=86300.0)["subject"] == "alice"
        tokens.found(q, token, now=86330.0)  # within the minute: its use is not written again
        assert q.token_named("short")["last_used_at"] == 86300.0
        tokens.found(q, token, now=86399.0)
        assert q.token_named("short")["last_used_at"] == 86399.0
        assert tokens.found(q, token, now=86400.0) is None
        assert tokens.shown(record, now=90000.0)["expired"] is True


@pytest.mark.parametrize(
    "role,message",
    [("root", "is not a role"), ("admin:bob", "admin takes no user"),
     ("reseller", "reseller:USER"), ("account:a b", "account:USER")],
)  # fmt: skip
def test_a_bad_role_names_the_option_and_the_forms(tmp_path, role, message):
    with open_queue(tmp_path / "state") as q, pytest.raises(InvalidInput) as err:
        tokens.create(q, "t", role)
    assert err.value.field == "--role" and message in err.value.message
    with open_queue(tmp_path / "state") as q, pytest.raises(InvalidInput) as err:
        tokens.create(q, "Bad Name", "admin")
    assert err.value.field == "NAME"
