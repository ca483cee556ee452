"""pytest fixtures for the vendor emulators (registered through the ``pytest11``
entry point, so any test suite with spamfilter-plugin installed has them).

* ``sandbox``: all five emulators, started once per session on free loopback
  ports and reset before each test; ``sandbox["spamport"].url`` is the
  ``api_url``, ``.emulator`` the state, request log and fault settings;
* ``spamport_sandbox``, ``spamwall_sandbox``, ``spambarrier_sandbox``,
  ``tornevall_sandbox``, ``rackspace_sandbox``: one emulator each (same servers).
"""

from __future__ import annotations

import pytest

from . import Sandbox


@pytest.fixture(scope="session")
def _spamfilter_sandbox_session():
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(_spamfilter_sandbox_session):
    for running in _spamfilter_sandbox_session.running.values():
        running.emulator.reset()
    return _spamfilter_sandbox_session


def _one(name):
    @pytest.fixture
    def fixture(sandbox):
        return sandbox[name]

    fixture.__doc__ = (
        f"The {name} emulator (reset), with .url for api_url and .emulator for its state."
    )
    return fixture


spamport_sandbox = _one("spamport")
spamwall_sandbox = _one("spamwall")
spambarrier_sandbox = _one("spambarrier")
tornevall_sandbox = _one("tornevall")
rackspace_sandbox = _one("rackspace")
