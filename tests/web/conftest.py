"""The console's tests run against the demo environment started in this process: the five
emulators, a demo DirectAdmin panel, the worker and waitress on loopback."""

from __future__ import annotations

import os

import pytest

from spamfilter_plugin.web.demo import Demo


@pytest.fixture(scope="session")
def demo():
    with Demo(port=0) as running:
        yield running


@pytest.fixture(scope="session")
def shots(tmp_path_factory):
    """Where screenshots go: $SFP_SCREENSHOTS (the documentation's pictures are made so), else a
    temporary folder."""
    folder = os.environ.get("SFP_SCREENSHOTS") or str(tmp_path_factory.mktemp("screenshots"))
    os.makedirs(folder, exist_ok=True)
    return folder
