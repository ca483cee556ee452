"""Fleet mode: servers sharing one queue on PostgreSQL (docs/fleet.md).

Every test here runs against the real server ``SPAMFILTER_TEST_POSTGRES`` names, in a
schema of its own (``fleet.py``); the queue's general promises are the queue, worker,
engine, chaos and hostile suites, which run on both stores."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from console_helpers import csrf_of
from queue_helpers import SPAMFILTER, add_table, sandbox_config
from queue_helpers import run_cli as run

from spamfilter_plugin.emit import emit
from spamfilter_plugin.errors import ConfigError, QueueError
from spamfilter_plugin.events import (
    DomainCreated,
    DomainDeleted,
    DomainSuspended,
    MailboxDeleted,
    PasswordReset,
)
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.queue import open_queue, queue_of
from spamfilter_plugin.store import postgres
from spamfilter_plugin.testing import closed_port_url, write_config
from spamfilter_plugin.web.app import create_app
from spamfilter_plugin.web.serve import console_for
from spamfilter_plugin.worker import Worker


def server_config(tmp_path: Path, sandbox, fleet_db, server: str, **tables) -> Path:
    """A server of the fleet: its own folder and state, the shared fleet (*tables* as
    :func:`queue_helpers.sandbox_config` takes them)."""
    folder = tmp_path / server
    folder.mkdir()
    return add_table(sandbox_config(folder, sandbox, **tables), "fleet", fleet_db.table(server))


def admin_client(cfg: Path):
    """A logged-in admin of the console of *cfg* (Flask's test client)."""
    console, password = console_for(load_runtime(cfg), host="127.0.0.1")
    client = create_app(console).test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    client.post(
        "/login",
        data={"csrf_token": token, "username": "admin", "password": password, "next": "/"},
    )
    return client


# -- the configuration ------------------------------------------------------------------


def fleet_file(tmp_path: Path, fleet: dict) -> Path:
    return add_table(write_config(tmp_path / "c.toml", {}, {}), "fleet", fleet)


@pytest.mark.parametrize(
    ("fleet", "says"),
    [
        (
            {"url": "postgresql://u:secret@db/x", "key": {"file": "/k"}},
            "[fleet] url: holds a password; remove it from the URL",
        ),
        ({"url": "mysql://db/x", "key": {"file": "/k"}}, "[fleet] url: must be a libpq URL"),
        ({"url": "postgresql://db/x", "key": "abc"}, "[fleet] key: give the key file as { file"),
        ({"url": "postgresql://db/x"}, "[fleet] key: missing; add key = ..."),
        (
            {"url": "postgresql://db/x", "key": {"file": "/k"}, "server": "web 1"},
            "[fleet] server: letters, digits",
        ),
    ],
)
def test_a_wrong_fleet_table_names_the_key_and_the_fix(tmp_path, fleet, says):
    with pytest.raises(ConfigError) as info:
        load_runtime(fleet_file(tmp_path, fleet))
    assert says in str(info.value)


def test_the_fleet_table_defaults_the_server_to_the_host_name(tmp_path):
    import socket

    cfg = fleet_file(tmp_path, {"url": "postgresql://db/x", "key": {"file": "/etc/k"}})
    fleet = load_runtime(cfg).config.fleet
    assert fleet.server == socket.gethostname().split(".")[0]
    assert fleet.key_file == Path("/etc/k") and fleet.inventory_max_age_hours == 24


def test_without_the_driver_a_fleet_table_says_which_extra_to_install(tmp_path):
    cfg = fleet_file(tmp_path, {"url": "postgresql://db/x", "key": {"file": "/etc/k"}})
    script = (
        "import sys\nsys.modules['psycopg'] = None\n"
        "from spamfilter_plugin.manager import load_runtime\n"
        f"load_runtime({str(cfg)!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode != 0
    assert "pip install 'spamfilter-plugin[fleet]'" in done.stderr


# -- fleet init, check, join --------------------------------------------------------------


def test_init_makes_the_key_and_the_tables_once_and_check_proves_them(
    tmp_path, postgres_url, fleet_db, sandbox
):
    import uuid

    # a database of its own, empty: init makes everything
    schema = f"sfp_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        fresh = fleet_db.url.replace(fleet_db.schema, schema)
        key = tmp_path / "keys" / "fleet.key"
        key.parent.mkdir(mode=0o700)
        cfg = sandbox_config(tmp_path, sandbox)
        table = {"url": fresh, "server": "web1", "key": {"file": str(key)}}
        add_table(cfg, "fleet", table)

        code, out, err = run(cfg, "fleet", "init")
        assert code == 0, (out, err)
        assert f"made the fleet key {key}" in err and "copy it to every server" in err
        assert key.stat().st_mode & 0o777 == 0o600
        assert f"schema version {postgres.SCHEMA_VERSION} (created)" in out
        made = key.read_bytes()

        code, out, err = run(cfg, "fleet", "init", "--json")  # again: nothing new
        doc = json.loads(out)
        assert code == 0 and doc["key_made"] is False and doc["ok"] is True
        assert doc["schema_before"] == doc["schema"] == postgres.SCHEMA_VERSION
        assert key.read_bytes() == made

        code, out, _ = run(cfg, "check")
        assert code == 0 and "fleet: ok (server web1)" in out

        # a server whose key is not the fleet's is refused
        key.write_bytes(b"x" * 43 + b"=\n")
        from cryptography.fernet import Fernet

        key.write_bytes(Fernet.generate_key() + b"\n")
        code, out, _ = run(cfg, "check")
        assert code == 1
        assert f"the fleet key {key} cannot open what other servers sealed" in out
    finally:
        postgres.close_pools()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def test_an_unreachable_database_is_one_line_within_the_connect_timeout(tmp_path, sandbox):
    port = closed_port_url().rsplit(":", 1)[1]
    cfg = sandbox_config(tmp_path, sandbox)
    key = tmp_path / "fleet.key"
    table = {
        "url": f"postgresql://u@127.0.0.1:{port}/x",
        "key": {"file": str(key)},
        "connect_timeout": 2,
    }
    add_table(cfg, "fleet", table)
    postgres.FleetKey(key).make()
    code, out, _ = run(cfg, "check")
    line = next(x for x in out.splitlines() if x.startswith("fleet:"))
    assert code == 1 and f"the fleet database postgresql://u@127.0.0.1:{port}/x cannot be" in line
    assert "check [fleet] url and password" in line


def test_a_schema_newer_than_the_code_is_refused(fleet_db, tmp_path):
    with postgres.connect(fleet_db.config()) as db:
        db.execute("INSERT INTO fleet_schema (version) VALUES (%s)", (postgres.SCHEMA_VERSION + 1,))
    with postgres.PostgresQueue(tmp_path, fleet_db.config()) as queue:
        problem = queue.check()
    assert problem and "newer than this release knows" in problem and "upgrade" in problem


def test_join_moves_a_servers_own_queue_once(tmp_path, sandbox, fleet_db):
    cfg = sandbox_config(tmp_path, sandbox)  # a server on its own, before fleet mode
    emit(DomainCreated(domain="done.example"), cfg)
    emit(PasswordReset(domain="done.example", password="Secret-Pw-1"), cfg)
    Worker(load_runtime(cfg)).drain()
    emit(DomainCreated(domain="later.example"), cfg)  # still pending
    # pending too, at SpamPort and at Rackspace (which both handle suspensions)
    emit(DomainSuspended(domain="done.example", reason="Unpaid #3"), cfg)
    from spamfilter_plugin.queue import mx_store
    from spamfilter_plugin.redaction import Secret

    own = load_runtime(cfg)  # what the vendors kept on this server
    own.contexts["spamport"].vault.put("info@done.example", Secret("Kept-Secret-9"))
    with own.contexts["spamport"].state.editing() as data:
        data["done.example"] = {"verified": True}
    mx_store(own.config).put("done.example", "spamport", state="verified", recorded=[[5, "m"]])
    add_table(cfg, "fleet", fleet_db.table("web1"))

    code, out, err = run(cfg, "fleet", "join", "--dry-run", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["moved"]["done"] == 2 and doc["moved"]["pending"] == 3
    with queue_of(load_runtime(cfg).config) as fleet:
        assert fleet.counts()["done"] == 0  # a dry run moves nothing

    code, out, err = run(cfg, "fleet", "join")
    assert code == 0 and "moved 5 rows (2 done, 3 pending)" in out, (out, err)
    assert "1 vault entry, 1 vendor state entry and the MX state of 1 domain(s)" in out
    code, out, err = run(cfg, "fleet", "join")  # again: nothing doubled
    assert code == 0
    with queue_of(load_runtime(cfg).config) as fleet:
        counts = fleet.counts()
        assert counts["done"] == 2 and counts["pending"] == 3
        assert fleet.provisioned("spamport") == {"done.example"}
        assert fleet.suspensions()["done.example"][1] == "Unpaid #3"
        assert fleet.holders() == {"done.example": "web1", "later.example": "web1"}
    shared = load_runtime(cfg)  # what the vendors kept is the fleet's now
    assert shared.contexts["spamport"].vault.get("info@done.example").reveal() == "Kept-Secret-9"
    assert shared.contexts["spamport"].state.read() == {"done.example": {"verified": True}}
    assert mx_store(shared.config).get("done.example").recorded == [[5, "m"]]
    # the worker goes on from the fleet: the pending row is delivered once
    stats = Worker(load_runtime(cfg)).drain()
    assert stats.done == 3 and "later.example" in sandbox["spamport"].emulator.domains
    assert (tmp_path / "state" / "queue.sqlite3").exists()  # left in place


# -- the relay ------------------------------------------------------------------------


def test_the_panel_hook_queues_locally_while_the_database_is_down(tmp_path, sandbox):
    port = closed_port_url().rsplit(":", 1)[1]
    cfg = sandbox_config(tmp_path, sandbox)
    key = tmp_path / "fleet.key"
    postgres.FleetKey(key).make()
    table = {"url": f"postgresql://u@127.0.0.1:{port}/x", "key": {"file": str(key)}}
    add_table(cfg, "fleet", table)
    code, out, err = run(cfg, "emit", "domain-created", "--domain", "down.example")
    assert code == 0 and out.startswith("queued domain-created for spamport"), (out, err)
    code, out, err = run(cfg, "queue", "list")
    assert code == 1
    assert "not relayed to the fleet yet (this server's local outbox): 1" in out
    assert "domain:down.example" in out and "cannot be reached" in err


def test_a_relay_interrupted_anywhere_neither_loses_nor_doubles_a_row(
    tmp_path, sandbox, fleet_db, monkeypatch
):
    cfg = server_config(tmp_path, sandbox, fleet_db, "web1")
    for i in range(5):
        emit(DomainCreated(domain=f"r{i}.example"), cfg)
    state = cfg.parent / "state"
    # 1. the relay fails half-way through writing to the fleet: nothing of it is written
    copy, calls = postgres.PostgresQueue._copy, []

    def failing(self, db, row, secret):
        calls.append(row.id)
        if len(calls) == 3:
            raise psycopg.OperationalError("the connection broke")
        return copy(self, db, row, secret)

    monkeypatch.setattr(postgres.PostgresQueue, "_copy", failing)
    with open_queue(state, fleet=fleet_db.config()) as fleet, pytest.raises(QueueError):
        fleet.relay()
    monkeypatch.setattr(postgres.PostgresQueue, "_copy", copy)
    with open_queue(state, fleet=fleet_db.config()) as fleet:
        assert fleet.rows() == [] and len(fleet.local_waiting()) == 5
        # 2. written to the fleet, but the process dies before the local rows go
        with open_queue(state) as local:
            fleet._take(local, local.rows_after(0, 100), mark=True)  # type: ignore[attr-defined]
    with open_queue(state, fleet=fleet_db.config()) as fleet:
        assert fleet.relay() == 0  # below the mark: removed locally, not sent again
        targets = sorted(r.target for r in fleet.rows())
        assert targets == [f"domain:r{i}.example" for i in range(5)]
        assert fleet.local_waiting() == []
        assert {r.server for r in fleet.rows()} == {"web1"}


# -- ownership: an account that moved is not deleted at the vendor -----------------------


def test_an_account_moved_to_another_server_is_not_deleted_by_the_old_one(
    tmp_path, sandbox, fleet_db
):
    web1 = server_config(tmp_path, sandbox, fleet_db, "web1")
    web2 = server_config(tmp_path, sandbox, fleet_db, "web2")
    emit(DomainCreated(domain="moved.example"), web1)
    assert Worker(load_runtime(web1)).drain().done == 1
    # the account is restored on web2 (its mail now goes there), then removed from web1
    emit(DomainCreated(domain="moved.example", destination="192.0.2.9"), web2)
    assert Worker(load_runtime(web2)).drain().done == 1
    receipt = emit(DomainDeleted(domain="moved.example"), web1)
    emit(MailboxDeleted(mailbox="info@moved.example"), web1)
    Worker(load_runtime(web1)).drain()
    held = sandbox["spamport"].emulator.domains
    assert "moved.example" in held and held["moved.example"]["transport"].endswith("192.0.2.9")
    with queue_of(load_runtime(web1).config) as fleet:
        local_id = receipt.rows["spamport"]
        row = fleet.get(fleet.relayed([local_id])[local_id])
        assert row.state == "skipped" and row.server == "web1"
        assert row.last_error.startswith("web2 holds moved.example since ")
        assert fleet.holders() == {"moved.example": "web2"}
    code, out, _ = run(web1, "queue", "show", str(row.id))
    assert code == 0 and "skipped" in out and "web2 holds moved.example" in out


def test_a_creation_goes_to_its_own_servers_mail_host_whichever_worker_delivers_it(
    tmp_path, sandbox, fleet_db
):
    web1 = server_config(tmp_path, sandbox, fleet_db, "web1", general={"mail_host": "192.0.2.1"})
    web2 = server_config(tmp_path, sandbox, fleet_db, "web2", general={"mail_host": "192.0.2.2"})
    emit(DomainCreated(domain="mine.example"), web1)
    with queue_of(load_runtime(web1).config) as fleet:
        assert fleet.relay() == 1
    assert Worker(load_runtime(web2)).drain().done == 1  # web2's worker delivers web1's row
    assert sandbox["spamport"].emulator.domains["mine.example"]["transport"].endswith("192.0.2.1")
    with queue_of(load_runtime(web2).config) as fleet:
        assert fleet.destinations("spamport", "mine.example") == {"192.0.2.1"}
    # web1's deletion passes the destination check on any worker
    emit(DomainDeleted(domain="mine.example"), web1)
    with queue_of(load_runtime(web1).config) as fleet:
        assert fleet.relay() == 1
    assert Worker(load_runtime(web2)).drain().done == 1
    assert "mine.example" not in sandbox["spamport"].emulator.domains


def test_a_deletion_still_waiting_when_another_server_creates_the_domain_is_skipped(
    tmp_path, sandbox, fleet_db
):
    web1 = server_config(tmp_path, sandbox, fleet_db, "web1")
    web2 = server_config(tmp_path, sandbox, fleet_db, "web2")
    emit(DomainCreated(domain="race.example"), web1)
    assert Worker(load_runtime(web1)).drain().done == 1
    emit(DomainDeleted(domain="race.example"), web1)
    with queue_of(load_runtime(web1).config) as fleet:
        assert fleet.relay() == 1  # in the fleet, not delivered yet
    emit(DomainCreated(domain="race.example"), web2)
    for cfg in (web2, web1):
        Worker(load_runtime(cfg)).drain()
    assert "race.example" in sandbox["spamport"].emulator.domains
    deletions = [r for r in sandbox["spamport"].emulator.requests if "function=delete" in r["body"]]
    assert deletions == []
    with queue_of(load_runtime(web1).config) as fleet:
        (row,) = [r for r in fleet.rows() if r.hook == "domain_deleted"]
        assert row.state == "skipped" and row.last_error.startswith("web2 holds race.example")


def test_a_deletion_by_the_holder_reaches_the_vendor_and_an_older_creation_cannot_undo_it(
    tmp_path, sandbox, fleet_db
):
    web1 = server_config(tmp_path, sandbox, fleet_db, "web1")
    web2 = server_config(tmp_path, sandbox, fleet_db, "web2")
    at = "2026-12-01T10:00:{:02d}+00:00".format
    emit(DomainCreated(domain="gone.example", occurred_at=at(0)), web1)
    emit(DomainCreated(domain="gone.example", occurred_at=at(5)), web2)  # moved to web2
    emit(DomainDeleted(domain="gone.example", occurred_at=at(10)), web2)  # removed there
    Worker(load_runtime(web2)).drain()
    assert "gone.example" not in sandbox["spamport"].emulator.domains
    # web1's worker was down: its creation, older than the deletion, arrives late
    Worker(load_runtime(web1)).drain()
    assert "gone.example" not in sandbox["spamport"].emulator.domains
    with queue_of(load_runtime(web1).config) as fleet:
        assert fleet.holders() == {}
        assert fleet.provisioned("spamport") == set()
        (stale,) = [r for r in fleet.rows() if r.server == "web1"]
        assert stale.state == "skipped"
        assert stale.last_error == (
            "web2 deleted gone.example at 2026-12-01 10:00 UTC, after this event"
        )


# -- one guard for the fleet ----------------------------------------------------------


def test_five_workers_on_three_servers_with_a_wrong_password_send_one_login(
    tmp_path, sandbox, fleet_db
):
    import threading

    configs = []
    for server in ("web1", "web2", "web3"):
        cfg = server_config(tmp_path, sandbox, fleet_db, server, spamport={"password": "wrong-pw"})
        for i in range(3):
            emit(DomainCreated(domain=f"{server}-{i}.example"), cfg)
        configs.append(cfg)
    workers = [Worker(load_runtime(configs[i % 3]), owner=f"w{i}") for i in range(5)]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run_forever, args=(stop, 0.05)) for w in workers]
    for t in threads:
        t.start()
    stop.wait(4.0)
    stop.set()
    for t in threads:
        t.join(30)
    spamport = sandbox["spamport"].emulator
    assert len(spamport.requests) == 1  # one login refused; every server then held back
    assert spamport.blocked == set()
    for cfg in configs:  # each server sees the suspension
        assert load_runtime(cfg).contexts["spamport"].suspension() is not None
    with queue_of(load_runtime(configs[0]).config) as fleet:
        counts = fleet.counts()
        assert counts["pending"] + counts["dead"] == 9 and counts["done"] == 0


# -- the console shows the fleet ----------------------------------------------------------


def test_the_console_shows_every_servers_rows_with_their_server(tmp_path, sandbox, fleet_db):
    web1 = server_config(tmp_path, sandbox, fleet_db, "web1")
    web2 = server_config(tmp_path, sandbox, fleet_db, "web2")
    emit(DomainCreated(domain="one.example"), web1)
    emit(DomainCreated(domain="two.example"), web2)
    for cfg in (web1, web2):
        with queue_of(load_runtime(cfg).config) as fleet:
            fleet.relay()
    client = admin_client(web1)
    page = client.get("/queue").get_data(as_text=True)
    assert "<th>Server</th>" in page
    rows = dict(re.findall(r"<td>(web\d)</td><td>spamport</td><td>domain created</td>\s*"
                           r"<td>([a-z.]+)</td>", page))  # fmt: skip
    assert rows == {"web1": "one.example", "web2": "two.example"}


def test_a_step_is_taken_only_by_the_workers_of_the_server_whose_row_queued_it(tmp_path, fleet_db):
    """An MX switch or a TXT record to publish needs that server's panel; a vendor's
    lifecycle event can go from any server."""
    from queue_helpers import put

    from spamfilter_plugin.events import VendorStep

    with (
        open_queue(tmp_path / "web1", fleet=fleet_db.config("web1")) as web1,
        open_queue(tmp_path / "web2", fleet=fleet_db.config("web2")) as web2,
    ):
        (step,) = put(web1, VendorStep(domain="a.example", step="mx_check"), ["spamport"])
        (created,) = put(web1, DomainCreated(domain="b.example"), ["spamport"])
        taken = web2.claim_batch("w2", 30, {"spamport": 5})
        assert [row.id for row, _ in taken] == [created]
        assert web2.claim("w2", 30) is None
        (mine,) = web1.claim_batch("w1", 30, {"spamport": 5})
        assert mine[0].id == step and mine[0].server == "web1"


def test_a_vendors_concurrency_holds_for_the_whole_fleet(tmp_path, fleet_db):
    from queue_helpers import put

    with (
        open_queue(tmp_path / "web1", fleet=fleet_db.config("web1")) as web1,
        open_queue(tmp_path / "web2", fleet=fleet_db.config("web2")) as web2,
    ):
        for i in range(8):
            put(web1 if i % 2 else web2, DomainCreated(domain=f"c{i}.example"), ["spamport"])
        limits = {"spamport": 3}
        first = web1.claim_batch("w1", 30, {"spamport": 5}, limits=limits)
        assert len(first) == 3 and web1.full == {"spamport"}  # it took the last places
        assert web2.claim_batch("w2", 30, {"spamport": 5}, limits=limits) == []
        assert web2.full == {"spamport"}  # so web2's worker waits for a place to free
        row, token = first[0]
        assert web1.complete(row, token)  # one place free in the fleet
        (taken,) = web2.claim_batch("w2", 30, {"spamport": 5}, limits=limits)
        assert taken[0].id not in {r.id for r, _ in first}
        for row, token in [*first[1:], taken]:
            assert web1.complete(row, token)
        assert len(web2.claim_batch("w2", 30, {"spamport": 2}, limits=limits)) == 2
        assert web2.full == set()  # room to spare


def test_a_draining_worker_waits_while_other_workers_hold_the_fleets_places(
    tmp_path, sandbox, fleet_db
):
    web1 = server_config(tmp_path, sandbox, fleet_db, "web1", spamport={"concurrency": 1})
    with queue_of(load_runtime(web1).config) as other:
        from queue_helpers import put

        for i in range(3):
            put(other, DomainCreated(domain=f"w{i}.example"), ["spamport"])
        held = other.claim_batch("elsewhere", 30, {"spamport": 1}, limits={"spamport": 1})
        assert len(held) == 1  # another server's worker holds the one place
        import threading

        freed = threading.Timer(1.0, lambda: other.complete(*held[0]))
        freed.start()
        stats = Worker(load_runtime(web1)).drain()
        freed.join()
    # it did not give up while the place was held: it delivered the rest once it freed
    assert stats.done == 2
    assert {d.row.target for d in stats.deliveries} == {"domain:w1.example", "domain:w2.example"}


def test_a_waiting_worker_is_woken_by_another_servers_rows(tmp_path, sandbox, fleet_db):
    """LISTEN/NOTIFY: a worker that would next look in 30 seconds delivers what another
    server queued at once (polling stays the fallback)."""
    import threading
    import time

    from queue_helpers import put

    web1 = server_config(tmp_path, sandbox, fleet_db, "web1")
    rt = load_runtime(web1)
    rt.check("spamport")
    worker = Worker(rt)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop, 30.0))
    thread.start()
    try:
        time.sleep(1.0)  # the worker found nothing and waits
        with open_queue(tmp_path / "web2", fleet=fleet_db.config("web2")) as web2:
            put(web2, DomainCreated(domain="woken.example"), ["spamport"])
        for _ in range(100):
            if "woken.example" in sandbox["spamport"].emulator.domains:
                break
            time.sleep(0.1)
        assert "woken.example" in sandbox["spamport"].emulator.domains
    finally:
        stop.set()
        thread.join(40)


def test_rackspaces_request_rate_holds_for_the_whole_fleet(tmp_path, sandbox, fleet_db):
    from spamfilter_plugin.events import MailboxAdded

    emulator = sandbox["rackspace"].emulator
    emulator.seed_data(
        {
            "rate_limit": 5,
            "mailboxes": [{"domain": "example.com", "mailbox": f"user{i}"} for i in range(12)],
        }
    )
    configs = []
    for server in ("web1", "web2"):
        rackspace = {"rate_limit": 5, "concurrency": 8}
        configs.append(server_config(tmp_path, sandbox, fleet_db, server, rackspace=rackspace))
    for i in range(12):
        emit(MailboxAdded(mailbox=f"user{i}@example.com"), configs[i % 2])
    for cfg in configs:  # each server's worker in a process of its own
        code, out, err = run(cfg, "worker", "--drain")
        assert code == 0, (out, err)
    sent = [r for r in emulator.requests if r["fault"] is None]
    # five requests in the minute for the account, whichever server sent them
    assert len(sent) == 5 and all(r["status"] != 403 for r in sent)


# -- reconcile for the fleet --------------------------------------------------------------


def test_fleet_sync_removes_only_what_no_server_holds_and_a_stale_list_holds_removals_back(
    tmp_path, sandbox, fleet_db
):
    web1 = server_config(tmp_path, sandbox, fleet_db, "web1")
    web2 = server_config(tmp_path, sandbox, fleet_db, "web2")
    web3 = server_config(tmp_path, sandbox, fleet_db, "web3")
    for name, cfg in (("a", web1), ("c", web2), ("gone", web1)):  # the fleet provisions them
        emit(DomainCreated(domain=f"{name}.example"), cfg)
    for cfg in (web1, web2):
        Worker(load_runtime(cfg)).drain()
    sandbox["spamport"].emulator.domains["hand.example"] = dict(
        sandbox["spamport"].emulator.domains["a.example"], domain="hand.example"
    )  # added at the vendor by hand: foreign
    lists = {"web1": "a.example\n", "web2": "c.example\nnew2.example\n", "web3": ""}
    for server, cfg in (("web1", web1), ("web2", web2), ("web3", web3)):
        listing = tmp_path / f"{server}.txt"
        listing.write_text(lists[server])
        code, out, err = run(cfg, "fleet", "publish", "--domains-from", str(listing))
        assert code == 0 and f"as {server}'s panel list" in out, (out, err)
    mine = tmp_path / "web1.txt"

    # web3 published long ago: nothing is removed, and the plan says why
    with postgres.connect(fleet_db.config()) as db:
        db.execute("UPDATE inventory_published SET at = at - 30 * 3600 WHERE server='web3'")
    code, out, err = run(web1, "sync", "--domains-from", str(mine), "--dry-run", "--json")
    changes = {c["domain"]: c for c in json.loads(out)["changes"]}
    assert changes["gone.example"]["action"] == "held"
    assert "web3's is 30 h old; inventory_max_age_hours = 24" in changes["gone.example"]["reason"]
    assert changes["new2.example"]["action"] == "elsewhere"
    assert "on web2's panel" in changes["new2.example"]["reason"]
    assert "c.example" not in changes  # web2 holds it: not removed, not reported
    assert changes["hand.example"]["action"] == "foreign"

    # web3 publishes again: the domain on no panel is removed, the others stay
    run(web3, "fleet", "publish", "--domains-from", str(tmp_path / "web3.txt"))
    code, out, err = run(web1, "sync", "--domains-from", str(mine), "--json")
    assert code == 0, (out, err)
    changes = {c["domain"]: c for c in json.loads(out)["changes"]}
    assert changes["gone.example"]["action"] == "remove"
    assert changes["gone.example"]["outcome"] == "done"
    held = sandbox["spamport"].emulator.domains
    assert "gone.example" not in held
    assert {"a.example", "c.example", "hand.example"} <= set(held)


# -- what vendors keep is the fleet's -----------------------------------------------------


def test_what_a_vendor_keeps_is_shared_by_the_fleet_and_sealed(tmp_path, sandbox, fleet_db):
    from spamfilter_plugin.queue import mx_store
    from spamfilter_plugin.redaction import Secret

    web1 = load_runtime(server_config(tmp_path, sandbox, fleet_db, "web1"))
    web2 = load_runtime(server_config(tmp_path, sandbox, fleet_db, "web2"))
    one, two = web1.contexts["spamport"], web2.contexts["spamport"]
    one.vault.put("info@a.example", Secret("Vault-Secret-77"))
    assert two.vault.get("info@a.example").reveal() == "Vault-Secret-77"
    with one.state.editing() as data:
        data["a.example"] = {"verified": True}
    assert two.state.read() == {"a.example": {"verified": True}}
    mx_store(web1.config).put("a.example", "spamport", state="switching", recorded=[[10, "mx.a"]])
    seen = mx_store(web2.config).get("a.example")
    assert seen.state == "switching" and seen.recorded == [[10, "mx.a"]]
    # nothing of it in the servers' own folders, and the secret sealed in the database
    assert not list((tmp_path / "web1" / "state").glob("vault-*"))
    with postgres.connect(fleet_db.config()) as db:
        stored = str(db.execute("SELECT * FROM documents").fetchall())
    assert "info@a.example" in stored and "Vault-Secret-77" not in stored


def test_the_console_lists_every_servers_domains_and_acts_for_their_server(
    tmp_path, sandbox, fleet_db
):
    web1 = server_config(tmp_path, sandbox, fleet_db, "web1")
    web2 = server_config(tmp_path, sandbox, fleet_db, "web2")
    for server, cfg, names in (("web1", web1, "one.example\n"), ("web2", web2, "two.example\n")):
        listing = tmp_path / f"{server}.txt"
        listing.write_text(names)
        assert run(cfg, "fleet", "publish", "--domains-from", str(listing))[0] == 0
        run(cfg, "emit", "domain-created", "--domain", names.strip())
        assert run(cfg, "worker", "--drain")[0] == 0
    client = admin_client(web1)
    page = client.get("/").get_data(as_text=True)
    assert re.search(r'<select [^>]*name="server"', page) and '<th scope="col">Server</th>' in page
    found = dict(re.findall(r'<tr data-domain="([a-z.]+)">.*?sfc-server">(web\d)<', page, re.S))
    assert found == {"one.example": "web1", "two.example": "web2"}
    only = client.get("/?server=web2").get_data(as_text=True)
    assert 'data-domain="two.example"' in only and 'data-domain="one.example"' not in only
    # the admin unprotects web2's domain from web1's console: queued as web2's, delivered
    token = csrf_of(page)
    client.post(
        "/selection",
        data={
            "csrf_token": token,
            "shown": "two.example",
            "selected": "two.example",
            "action": "unprotect",
            "confirm": "yes",  # as the confirmation page posts it
        },
    )
    with queue_of(load_runtime(web1).config) as fleet:
        (row,) = [r for r in fleet.rows() if r.hook == "domain_deleted"]
        assert row.server == "web2" and row.state == "pending"
    assert run(web1, "worker", "--drain")[0] == 0
    assert "two.example" not in sandbox["spamport"].emulator.domains


# -- chaos across the fleet -----------------------------------------------------------------


def _local_cluster(url: str) -> bool:
    """Whether the test server is this machine's Debian PostgreSQL cluster."""
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or "localhost"
    local = host in ("127.0.0.1", "localhost") and shutil.which("pg_ctlcluster") is not None
    return local and os.geteuid() == 0  # root may restart it


def _restart_postgres(url: str) -> bool:
    """Restart the machine's PostgreSQL cluster when the test server is it; whether it did."""
    if not _local_cluster(url):
        return False
    for version in sorted(os.listdir("/etc/postgresql")):
        done = subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            capture_output=True,
            timeout=120,
        )
        if done.returncode != 0:
            return False
    return True


def test_two_servers_lose_nothing_under_faults_worker_kills_and_a_database_restart(
    tmp_path, sandbox, fleet_db, postgres_url
):
    import random
    import signal
    import threading
    import time

    from spamfilter_plugin.events import DomainUpdated

    rng = random.Random(20261202)
    spamport = sandbox["spamport"].emulator
    spamport.seed_data({"license_limit": 10000})
    spamport.faults.configure(
        rates={"error": 0.08, "reset": 0.05, "reset_after": 0.05, "timeout": 0.02},
        hang_seconds=0.6,
        seed=11,
    )
    http = {"retries": 0, "connect_timeout": 0.5, "read_timeout": 0.3, "deadline": 1.0}
    general = {"lease_seconds": 1.5, "max_attempts": 1000, "retry_base": 0.02, "retry_cap": 0.2}
    servers = {}
    for name in ("web1", "web2"):
        servers[name] = server_config(
            tmp_path, sandbox, fleet_db, name, general=general, spamport=http, rackspace=http
        )
    # each server's own domains, a valid history each
    plans, expected = {}, {}
    for n, name in enumerate(servers):
        events = []
        for i in range(120):
            d = f"f{n}-{i % 30}.example"
            if expected.get(d) is None:
                expected[d] = f"192.0.2.{rng.randint(1, 250)}"
                events.append(DomainCreated(domain=d, destination=expected[d]))
            elif rng.random() < 0.6:
                expected[d] = f"mx{rng.randint(1, 99)}.example.net"
                events.append(DomainUpdated(domain=d, destination=expected[d]))
            else:
                events.append(DomainDeleted(domain=d))
                expected[d] = None
        plans[name] = events

    def start(cfg):
        return subprocess.Popen(
            [SPAMFILTER, "--config", str(cfg), "worker", "--poll", "0.05"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    workers = [start(cfg) for cfg in servers.values() for _ in range(2)]
    emitters = [
        threading.Thread(target=lambda n=n: [emit(e, servers[n]) for e in plans[n]])
        for n in servers
    ]
    for t in emitters:
        t.start()
    kills, restarted = 0, False
    while any(t.is_alive() for t in emitters) or kills < 6:
        time.sleep(rng.uniform(0.3, 0.7))
        i = rng.randrange(len(workers))
        workers[i].send_signal(signal.SIGKILL)
        workers[i].wait()
        workers[i] = start(list(servers.values())[i // 2])
        kills += 1
        if kills == 3:
            restarted = _restart_postgres(postgres_url)
    for t in emitters:
        t.join()

    config = load_runtime(servers["web1"]).config
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with queue_of(config) as fleet:
                counts = fleet.counts()
        except QueueError:  # a connection the restart ended: the next one is new
            continue
        waiting = 0
        for n, cfg in servers.items():
            with open_queue(cfg.parent / "state", fleet=fleet_db.config(n)) as queue:
                waiting += len(queue.local_waiting())
        if counts["pending"] == counts["leased"] == waiting == 0:
            break
        time.sleep(0.3)
    for w in workers:
        w.send_signal(signal.SIGTERM)
        w.wait(timeout=30)
    spamport.faults.clear()
    time.sleep(1.6)  # any lease of a killed worker has run out
    for cfg in servers.values():
        Worker(load_runtime(cfg)).drain(ignore_schedule=True)

    with queue_of(config) as fleet:
        counts = fleet.counts()
        rows = fleet.rows(limit=10000)
    assert counts["pending"] == counts["leased"] == counts["dead"] == 0, counts
    assert len(rows) == sum(len(e) for e in plans.values())  # every event once, none lost
    assert {r.server for r in rows} == {"web1", "web2"}
    actual = {name: d["transport"] for name, d in spamport.domains.items()}
    assert actual == {d: f"smtp:{dest}" for d, dest in expected.items() if dest is not None}
    faulted = [r for r in spamport.requests if r["fault"]]
    assert len(faulted) > 20, "the run saw too few faults to prove anything"
    assert restarted == _local_cluster(postgres_url)  # the database went away mid-run


def test_the_worker_daemon_publishes_its_panels_domains(tmp_path, sandbox, fleet_db):
    import threading
    import time

    from spamfilter_plugin.cli.worker import publish_every

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "userdomains").write_text("bob.example: bob\nshop.example: bob\n")
    (root / "var" / "cpanel" / "users").mkdir(parents=True)
    (root / "var" / "cpanel" / "users" / "bob").write_text("DNS=bob.example\n")
    cfg = add_table(
        server_config(tmp_path, sandbox, fleet_db, "web1"),
        "panel",
        {"kind": "cpanel", "root": str(root)},
    )
    rt = load_runtime(cfg)
    stop = threading.Event()
    thread = threading.Thread(target=publish_every, args=(rt, stop))
    thread.start()
    try:
        for _ in range(100):
            with queue_of(rt.config) as fleet:
                domains, published = fleet.fleet_inventory()
            if published:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert set(published) == {"web1"}
    assert domains == {
        "bob.example": ("web1", "mx.provider.example"),
        "shop.example": ("web1", "mx.provider.example"),
    }
