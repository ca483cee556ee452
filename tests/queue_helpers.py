"""Configs that point spamport and rackspace at the sandbox, for queue and worker tests,
on the store the test runs on (see ``fleet.py``: :data:`FLEET` is set while a test runs on
PostgreSQL)."""

from spamfilter_plugin.config.model import toml_table, write_config
from spamfilter_plugin.sandbox.rackspace import CUSTOMER, SECRET_KEY, USER_KEY
from spamfilter_plugin.sandbox.spamport import PASSWORD, USERNAME


def sandbox_config(
    tmp_path, sandbox, *, general=None, spamport=None, rackspace=None, name="config.toml"
):
    general = {
        "mail_host": "mx.provider.example",
        "lease_seconds": 5.0,
        "retry_base": 0.01,
        "retry_cap": 0.05,
        **(general or {}),
    }
    vendors = {
        "spamport": {
            "api_url": sandbox["spamport"].url,
            "username": USERNAME,
            "password": PASSWORD,
            "retries": 0,
            "deadline": 4.0,
            **(spamport or {}),
        },
        "rackspace": {
            "api_url": sandbox["rackspace"].url,
            "customer_id": CUSTOMER,
            "user_key": USER_KEY,
            "secret_key": SECRET_KEY,
            "retries": 0,
            "deadline": 4.0,
            "rate_limit": 10000,
            "filterlevel": "exclusive",
            "quarantineowner": "boss@example.com",
            **(rackspace or {}),
        },
    }
    return with_fleet(write_config(tmp_path / name, general, vendors))


#: the fleet (``fleet.FleetDb``) of the test running on PostgreSQL, or None on SQLite
FLEET = None


def add_table(config, name: str, table: dict):
    """The config file *config* with a ``[name]`` table added."""
    with open(config, "a", encoding="utf-8") as fh:
        fh.write("\n" + "\n".join(toml_table(name, table)) + "\n")
    return config


def with_fleet(config, server: str = "web1"):
    """The config file *config* in fleet mode when the test runs on PostgreSQL."""
    return add_table(config, "fleet", FLEET.table(server)) if FLEET is not None else config


def opened(state_dir, **kwargs):
    """The queue of *state_dir* on the test's store, as a worker sees it (in the fleet,
    with the server's local outbox relayed first)."""
    from spamfilter_plugin.queue import open_queue

    queue = open_queue(state_dir, fleet=FLEET.config() if FLEET else None, **kwargs)
    queue.relay()
    return queue


def put(queue, event, vendors):
    """Queue *event* for *vendors* through the one way in; the row ids, in vendors' order."""
    from spamfilter_plugin import intake

    ((_, rows),) = intake.enqueue(queue, [event], vendors=vendors)
    return list(rows.values())


def _spamfilter() -> str:
    import os
    import shutil
    import sys

    return shutil.which("spamfilter") or os.path.join(os.path.dirname(sys.executable), "spamfilter")


#: the installed ``spamfilter`` command
SPAMFILTER = _spamfilter()


def run_cli(cfg, *args, stdin=None, env=None):
    """``spamfilter --config CFG ARGS...`` as an admin runs it: (exit status, out, err)."""
    import os
    import subprocess

    done = subprocess.run(
        [SPAMFILTER, "--config", str(cfg), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    return done.returncode, done.stdout, done.stderr
