"""Shared fixtures.  tests/plugins/site is an installed-looking site directory
holding test vendor plugins (a dist-info with entry points, like any plugin
installed with pip), so entry-point discovery is exercised for real."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

from spamfilter_plugin.panels import load
from spamfilter_plugin.testing import LoopbackServer, write_config

PLUGIN_SITE = Path(__file__).parent / "plugins" / "site"
HELPERS = Path(__file__).parent  # shared test helpers (queue_helpers.py)
PANEL_FAKES = HELPERS / "panels"  # the fake panels (fake_zones.py, fake_directadmin.py)
for extra in (PLUGIN_SITE, HELPERS, PANEL_FAKES):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))
importlib.invalidate_caches()

import toyvendor_plugin  # noqa: E402  (needs the site directory on sys.path)

pytest_plugins = ("browser", "fleet")  # headless Chromium (browser.py), PostgreSQL (fleet.py)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def private_cache_dir(tmp_path_factory, monkeypatch):
    """Each test's panel-hook cache in its own directory, never the system's."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("SPAMFILTER_CACHE_DIR", str(path))
    return path


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Each test starts with Rackspace's per-account request budget unspent (the limiter is
    process-wide, as the account's limit is)."""
    from spamfilter_plugin import ratelimit

    ratelimit.clear()


@pytest.fixture
def toy_emulator():
    app = toyvendor_plugin.ToyEmulator()
    with LoopbackServer(app) as server:
        server.state = app
        yield server


@pytest.fixture
def toy_config(tmp_path, toy_emulator):
    """A 0600 config enabling only the toy vendor, pointed at its emulator."""
    return write_config(
        tmp_path / "config.toml",
        {"state_dir": str(tmp_path / "state"), "mail_host": "mail.provider.example"},
        {"toy": {"api_url": toy_emulator.url, "token": toyvendor_plugin.TOKEN, "retries": 0}},
    )


@pytest.fixture
def cli_env():
    """Environment for running the installed ``spamfilter`` command with the test plugins."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN_SITE), env.get("PYTHONPATH")]))
    env.pop("SPAMFILTER_CONFIG", None)
    return env


FAKE_COMMANDS = PANEL_FAKES / "fake_commands.py"


def fake_command(folder: Path, name: str) -> str:
    path = folder / name
    path.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_COMMANDS} {name} "$@"\n')
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def fake_panel(tmp_path, monkeypatch):
    """``fake_panel(kind)`` -> the adapter of *kind*, wired to the fake panel; the zones are
    in ``fake_panel.base``."""
    base, root = tmp_path / "fake", tmp_path / "root"
    base.mkdir()
    root.mkdir()
    monkeypatch.setenv("FAKE_PANEL_DIR", str(base))
    servers = []

    def make(kind):
        table = {"kind": kind, "root": str(root)}
        if kind == "cpanel":
            table["whmapi1"] = fake_command(base, "whmapi1")
        elif kind == "plesk":
            table["plesk"] = fake_command(base, "plesk")
        elif kind == "virtualmin":
            table["virtualmin"] = fake_command(base, "virtualmin")
        else:
            from fake_directadmin import FakeDirectAdmin

            server = FakeDirectAdmin(str(base)).__enter__()
            servers.append(server)
            key = tmp_path / "da.key"
            key.write_text("login-key\n")
            key.chmod(0o600)
            table.update(api_url=server.url, api_key_file=str(key))
            make.directadmin = server
        make.kind = kind
        return load(kind, table)

    def domain(name, mx=(), mail=True, owner="bob"):
        """A domain in the fake panel: its zone, and where the panel keeps it in files, the
        owner and whether its mail is handled here."""
        import fake_zones

        fake_zones.create(str(base), name, mx=mx, mail=mail)
        etc = root / "etc"
        if make.kind == "cpanel" and not mail:
            etc.mkdir(exist_ok=True)
            with open(etc / "remotedomains", "a") as fh:
                fh.write(f"{name}\n")
        if make.kind == "directadmin":
            (etc / "virtual").mkdir(parents=True, exist_ok=True)
            with open(etc / "virtual/domainowners", "a") as fh:
                fh.write(f"{name}: {owner}\n")
            if mail:
                with open(etc / "virtual/domains", "a") as fh:
                    fh.write(f"{name}\n")

    make.base, make.root, make.domain, make.kind = str(base), root, domain, None
    yield make
    for server in servers:
        server.__exit__(None, None, None)
