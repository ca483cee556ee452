"""PostgreSQL for the tests: the server ``SPAMFILTER_TEST_POSTGRES`` names (a libpq URL),
each test in a schema of its own, dropped afterwards.

Without a reachable server the fleet tests skip, unless ``SFP_REQUIRE_POSTGRES=1`` (CI),
which makes them fail instead.  A test module that runs against both stores says
``pytestmark = pytest.mark.usefixtures("store")``: each of its tests then runs once on
SQLite and once on PostgreSQL, and :mod:`queue_helpers` (configs, :func:`opened`) follows.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import queue_helpers

URL_VAR = "SPAMFILTER_TEST_POSTGRES"


def _required() -> bool:
    return os.environ.get("SFP_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test server's URL; skips (or fails, when required) without one."""
    url = os.environ.get(URL_VAR)
    problem = None
    if not url:
        problem = f"{URL_VAR} is not set (a libpq URL of a PostgreSQL server for the tests)"
    else:
        try:
            import psycopg

            psycopg.connect(url, connect_timeout=5).close()
        except ImportError:
            problem = "psycopg is not installed (pip install '.[test,fleet]')"
        except psycopg.Error as exc:  # any failure to connect: say which
            problem = f"PostgreSQL at {url} cannot be reached: {exc}"
    if problem:
        if _required():
            pytest.fail(f"SFP_REQUIRE_POSTGRES=1 but {problem}", pytrace=False)
        pytest.skip(problem)
    assert url is not None
    return url


@dataclass
class FleetDb:
    """A schema of its own on the test server, with the fleet key, for one test."""

    url: str
    key_file: Path
    schema: str

    def table(self, server: str = "web1") -> dict:
        """A ``[fleet]`` table for a server of this fleet."""
        return {"url": self.url, "server": server, "key": {"file": str(self.key_file)}}

    def config(self, server: str = "web1"):
        from spamfilter_plugin.config.model import FleetConfig

        return FleetConfig(url=self.url, server=server, key_file=self.key_file)


def _with_schema(url: str, schema: str) -> str:
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def fleet_db(postgres_url, tmp_path_factory):
    """A fresh fleet: a schema with the current tables, and a key (as ``fleet init``)."""
    import psycopg

    from spamfilter_plugin.store import postgres

    schema = f"sfp_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    folder = tmp_path_factory.mktemp("fleet")
    db = FleetDb(_with_schema(postgres_url, schema), folder / "fleet.key", schema)
    fleet = db.config()
    postgres.FleetKey(fleet.key_file).make()
    with postgres.connect(fleet) as conn:
        postgres.migrate(conn)
    with postgres.PostgresQueue(folder, fleet) as queue:
        assert queue.prove_key() is None
    yield db
    postgres.close_pools()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def store(request):
    """The store a test runs on (``sqlite`` or ``postgres``), set for :mod:`queue_helpers`."""
    kind = request.param
    if kind == "postgres":
        db = request.getfixturevalue("fleet_db")
        queue_helpers.FLEET = db
    yield kind
    queue_helpers.FLEET = None


def pytest_generate_tests(metafunc):
    if "store" in metafunc.fixturenames:
        metafunc.parametrize("store", ["sqlite", "postgres"], indirect=True)
