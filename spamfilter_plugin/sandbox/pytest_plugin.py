"""pytest fixtures for the vendor emulators (registered through the ``pytest11`` entry
point, so any test suite with spamfilter-plugin installed has them).

* ``sandbox``: every installed emulator, started once per session on free loopback
  ports and reset before each test; ``sandbox["spamport"].url`` is the ``api_url``,
  ``.emulator`` the state, request log and fault settings;
* ``<name>_sandbox`` (``spamport_sandbox``, ``rackspace_sandbox``, ...): one emulator
  each (the same servers), for every emulator registered under the entry-point group
  ``spamfilter_plugin.emulators`` when pytest starts, third-party ones included.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from .. import EMULATOR_ENTRY_POINT_GROUP
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


# One fixture per registered emulator; only names are read here, nothing is imported.
for _ep in entry_points(group=EMULATOR_ENTRY_POINT_GROUP):
    if _ep.name.isidentifier():
        globals().setdefault(f"{_ep.name}_sandbox", _one(_ep.name))
del _ep
