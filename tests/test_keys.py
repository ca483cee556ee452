"""Key files are written whole or not at all, and a key that is empty, short or unreadable is
refused with the fix (or, for the console key that never signed anything, made anew), never
used: a full disk must not leave an empty key that signs forged tokens."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from spamfilter_plugin.errors import ConfigError
from spamfilter_plugin.keyfile import create_key
from spamfilter_plugin.queue import KEY_NAME, SecretBox
from spamfilter_plugin.web.access import KEY_NAME as CONSOLE_KEY
from spamfilter_plugin.web.access import console_key

SPAMFILTER = str(Path(sys.executable).with_name("spamfilter"))


def test_a_failed_write_leaves_no_key_file(tmp_path, monkeypatch):
    """The disk fills while the key is written: no file appears, so nothing short is used."""
    path = tmp_path / "some.key"

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        create_key(path, b"k" * 64)
    assert not path.exists()
    assert os.listdir(tmp_path) == []  # no temporary file left either


def test_the_console_key_is_not_left_empty_by_a_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "full")))
    with pytest.raises(ConfigError, match="cannot write the console key"):
        console_key(tmp_path)
    assert not (tmp_path / CONSOLE_KEY).exists()
    monkeypatch.undo()
    key = console_key(tmp_path)
    assert len(key) == 64 and (tmp_path / CONSOLE_KEY).stat().st_mode & 0o777 == 0o600


def test_an_empty_console_key_is_made_anew_and_a_short_one_refused(tmp_path):
    path = tmp_path / CONSOLE_KEY
    path.write_bytes(b"")
    path.chmod(0o600)
    key = console_key(tmp_path)
    assert len(key) == 64 and path.read_bytes().strip() == key
    path.write_bytes(b"abc\n")
    with pytest.raises(ConfigError, match=r"too short \(3 bytes\); delete"):
        console_key(tmp_path)
    path.unlink()
    path.mkdir()  # unreadable as a file
    with pytest.raises(ConfigError, match="cannot be read"):
        console_key(tmp_path)


def test_a_short_or_empty_queue_key_is_refused(tmp_path):
    path = tmp_path / KEY_NAME
    for content, said in ((b"", "is empty"), (b"c2hvcnQ=\n", "too short")):
        path.write_bytes(content)
        path.chmod(0o600)
        with pytest.raises(ConfigError, match=said):
            SecretBox(tmp_path).seal("x")


def test_serve_with_a_short_console_key_exits_with_the_fix(tmp_path, toy_config, cli_env):
    state = tmp_path / "state"
    state.mkdir(mode=0o700, exist_ok=True)
    (state / CONSOLE_KEY).write_bytes(b"0123\n")
    (state / CONSOLE_KEY).chmod(0o600)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    out = subprocess.run(
        [SPAMFILTER, "--config", str(toy_config), "serve", "--port", port, "--no-worker"],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=60,
    )
    assert out.returncode == 2
    assert "console key" in out.stderr and "too short" in out.stderr and "delete" in out.stderr
