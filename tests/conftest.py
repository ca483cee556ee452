"""Shared fixtures.  tests/plugins/site is an installed-looking site directory
holding test vendor plugins (a dist-info with entry points, like any plugin
installed with pip), so entry-point discovery is exercised for real."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

from spamfilter_plugin.testing import LoopbackServer, write_config

PLUGIN_SITE = Path(__file__).parent / "plugins" / "site"
HELPERS = Path(__file__).parent  # shared test helpers (queue_helpers.py)
PANEL_FAKES = HELPERS / "panels"  # the fake panels (fake_zones.py, fake_directadmin.py)
for extra in (PLUGIN_SITE, HELPERS, PANEL_FAKES):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))
importlib.invalidate_caches()

import toyvendor_plugin  # noqa: E402  (needs the site directory on sys.path)

pytest_plugins = ("browser",)  # the headless Chromium fixtures (tests/browser.py)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def private_cache_dir(tmp_path_factory, monkeypatch):
    """Each test's panel-hook cache in its own directory, never the system's."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("SPAMFILTER_CACHE_DIR", str(path))
    return path


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
