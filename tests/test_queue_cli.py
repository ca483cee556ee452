"""'spamfilter emit' (queued), 'spamfilter worker' and 'spamfilter queue' as an admin runs them."""

import json
import subprocess
import sys

import pytest
from queue_helpers import run_cli as run
from queue_helpers import sandbox_config


@pytest.fixture
def cfg(tmp_path, sandbox):
    return sandbox_config(tmp_path, sandbox)


def test_emit_queues_without_calling_the_vendor(cfg, sandbox):
    code, out, _ = run(cfg, "emit", "domain-created", "--domain", "q.example")
    assert code == 0 and out.startswith("queued domain-created for spamport (rows ")
    assert sandbox["spamport"].emulator.requests == []
    code, out, _ = run(
        cfg, "emit", "mailbox-added", "--mailbox", "alex.smith@example.com", "--json"
    )
    doc = json.loads(out)
    assert (
        list(doc["queued"]) == ["rackspace"] and doc["event"]["mailbox"] == "alex.smith@example.com"
    )


def test_emit_while_the_vendor_is_down_loses_nothing(tmp_path, sandbox):
    cfg = sandbox_config(tmp_path, sandbox, general={"retry_base": 60, "retry_cap": 120})
    sandbox["spamport"].emulator.faults.configure(rates={"error": 1.0})
    code, out, err = run(cfg, "emit", "domain-created", "--domain", "down.example", "--now")
    assert code == 1 and "FAILED" in out and "will be retried by the worker" in err
    sandbox["spamport"].emulator.faults.clear()
    code, _, err = run(cfg, "worker", "--drain")
    assert "down.example" not in sandbox["spamport"].emulator.domains  # not due yet: backoff
    code, out, _ = run(cfg, "queue", "list", "--json")
    (row,) = json.loads(out)["rows"]
    assert (
        row["state"] == "pending"
        and row["attempts"] == 1
        and row["error_type"] == "VendorUnavailable"
    )
    assert len(sandbox["spamport"].emulator.requests) == 1


def test_worker_drain_delivers_and_exits_1_when_something_died(cfg, sandbox):
    run(cfg, "emit", "domain-created", "--domain", "ok.example")
    sandbox["spamport"].emulator.seed_data({"license_limit": 1})
    run(cfg, "emit", "domain-created", "--domain", "over.example")
    code, _, err = run(cfg, "worker", "--drain")
    assert code == 1 and "delivered 1, retrying later 0, dead 1" in err
    assert "row 2 spamport domain_created domain:over.example: dead:" in err
    code, out, _ = run(cfg, "queue", "list", "--state", "dead")
    assert (
        "over.example" in out
        and "licence is fully used" in out
        and "ok.example" not in out.split("\n", 1)[1]
    )


def test_worker_once(cfg, sandbox):
    code, _, err = run(cfg, "worker", "--once")
    assert code == 0 and "nothing due" in err
    run(cfg, "emit", "domain-created", "--domain", "a.example")
    run(cfg, "emit", "domain-created", "--domain", "b.example")
    assert run(cfg, "worker", "--once")[0] == 0
    assert set(sandbox["spamport"].emulator.domains) == {"a.example"}


def test_queue_show_retry_drop(cfg, sandbox):
    sandbox["spamport"].emulator.seed_data({"license_limit": 0})
    run(cfg, "emit", "domain-created", "--domain", "a.example")
    run(cfg, "worker", "--drain")
    code, out, _ = run(cfg, "queue", "show", "1", "--json")
    doc = json.loads(out)
    assert (
        doc["state"] == "dead" and doc["payload"]["domain"] == "a.example" and doc["attempts"] == 1
    )
    code, out, _ = run(cfg, "queue", "show", "1")
    assert "state        dead" in out and "VendorRejected" in out
    assert run(cfg, "queue", "retry", "1")[0] == 0
    assert run(cfg, "queue", "retry", "1")[0] == 2  # not dead any more
    sandbox["spamport"].emulator.seed_data({"license_limit": 10})
    assert (
        run(cfg, "worker", "--drain")[0] == 0
        and "a.example" in sandbox["spamport"].emulator.domains
    )
    assert json.loads(run(cfg, "queue", "retry", "--all-dead", "--json")[1]) == {"retried": 0}
    code, _, err = run(cfg, "queue", "retry")
    assert code == 2 and "needs a row id or --all-dead" in err
    assert run(cfg, "queue", "drop", "1")[0] == 0
    code, _, err = run(cfg, "queue", "show", "1")
    assert code == 2 and "no queue row 1" in err


def test_generated_password_is_stored_but_never_printed(cfg, sandbox):
    run(cfg, "emit", "domain-created", "--domain", "a.example")
    run(cfg, "emit", "password-reset", "--domain", "a.example")
    code, out, _err = run(cfg, "worker", "--drain")
    assert code == 0
    password = sandbox["spamport"].emulator.domain_passwords["a.example"]
    for args in (
        ["queue", "show", "2"],
        ["queue", "show", "2", "--json"],
        ["queue", "list", "--json"],
    ):
        code, out, _ = run(cfg, *args)
        assert password not in out
    assert '"password": "***"' in run(cfg, "queue", "show", "2", "--json")[1]
    from spamfilter_plugin.queue import open_queue

    assert open_queue(cfg.parent / "state").secret_result(2)["password"].reveal() == password


def test_password_from_stdin_is_queued_encrypted(cfg, sandbox, tmp_path):
    code, _, _ = run(
        cfg,
        "emit",
        "password-reset",
        "--mailbox",
        "alex.smith@example.com",
        "--password-stdin",
        stdin="Queued-Pa55!\n",
    )
    assert code == 0
    raw = b"".join(p.read_bytes() for p in (tmp_path / "state").glob("queue.sqlite3*"))
    assert b"Queued-Pa55!" not in raw


def test_systemd_unit(cfg):
    code, out, _ = run(cfg, "worker", "--systemd-unit")
    assert code == 0
    assert f"--config {cfg.resolve()} worker" in out and "ExecStart=/" in out
    assert f"ReadWritePaths={cfg.parent / 'state'}" in out and "Restart=always" in out


def test_queue_purge(cfg):
    run(cfg, "emit", "domain-created", "--domain", "a.example")
    run(cfg, "worker", "--drain")
    assert json.loads(run(cfg, "queue", "purge", "--older-than", "0", "--json")[1]) == {"purged": 1}


def test_a_damaged_queue_is_one_clear_line_not_a_traceback(cfg):
    state = cfg.parent / "state"
    state.mkdir(mode=0o700, exist_ok=True)
    (state / "queue.sqlite3").write_bytes(b"this is not a database" * 100)
    for args in (["emit", "domain-created", "--domain", "a.example"], ["queue", "list"]):
        code, _, err = run(cfg, *args)
        assert code == 2 and "Traceback" not in err, err
        assert "queue.sqlite3 is damaged" in err and "move the file aside" in err
        assert len(err.strip().splitlines()) == 1


FULL_DISK = """
import resource, signal, sys
from spamfilter_plugin.emit import emit
from spamfilter_plugin.events import DomainCreated
emit(DomainCreated(domain="first.example"), sys.argv[1])  # the database exists, then the disk fills
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
from spamfilter_plugin.cli import main
sys.exit(main(["--config", sys.argv[1], "emit", "domain-created", "--domain", "b.example"]))
"""


def test_a_full_disk_is_one_clear_line(cfg):

    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "disk is full" in proc.stderr and "free space" in proc.stderr


def test_a_worker_waits_out_a_full_disk(cfg, monkeypatch):
    import threading

    from spamfilter_plugin import worker as worker_module
    from spamfilter_plugin.errors import QueueError
    from spamfilter_plugin.manager import load_runtime

    w = worker_module.Worker(load_runtime(cfg))
    calls = []

    def full(*args, **kwargs):
        calls.append(1)
        if len(calls) >= 3:
            stop.set()
        raise QueueError("the queue x cannot be written: the disk is full", temporary=True)

    stop = threading.Event()
    monkeypatch.setattr(worker_module, "QUEUE_WAIT", 0.01)
    monkeypatch.setattr(w.queue, "claim_batch", full)  # every claim meets the full disk
    w.run_forever(stop, poll=0.01)  # returns when stopped; the full disk never crashed it
    assert len(calls) >= 3


@pytest.fixture
def busy_worker(tmp_path, sandbox):
    """A worker already running for the config (as 'spamfilter worker' would be), taking
    each row as it comes; the vendor answers slowly, so the worker still has a row when
    'emit --now' looks for it."""
    import threading

    from spamfilter_plugin.manager import load_runtime
    from spamfilter_plugin.worker import Worker

    cfg = sandbox_config(
        tmp_path, sandbox, general={"lease_seconds": 30.0}, spamport={"deadline": 20.0}
    )
    rt = load_runtime(cfg)
    rt.check("spamport")
    sandbox["spamport"].emulator.faults.configure(latency=1.5)
    stop = threading.Event()

    def work():
        worker = Worker(rt)
        try:
            worker.run_forever(stop, 0.02)
        finally:
            worker.queue.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    yield cfg
    stop.set()
    thread.join(timeout=30)


def test_emit_now_reports_its_own_rows_when_another_worker_has_them(busy_worker, sandbox):
    sandbox["spamport"].emulator.seed_data({"license_limit": 0})  # the vendor refuses it
    code, out, err = run(busy_worker, "emit", "domain-created", "--domain", "busy.example",
                         "--now", "--json")  # fmt: skip
    doc = json.loads(out)
    spamport = next(v for v in doc["vendors"] if v["vendor"] == "spamport")
    assert code == 1 and doc["ok"] is False, (out, err)
    assert spamport["ok"] is False and "licence is fully used" in spamport["error"]
    assert "queued behind" not in out + err
    rows = sandbox["spamport"].emulator.requests
    assert sum('"add"' in r["body"] or "function=add" in r["body"] for r in rows) == 1


def test_emit_now_says_when_another_worker_delivered_it(cfg):
    """What 'emit --now' says of its row when a running worker took it first (a race the
    worker usually wins): the row is followed to its end, and that is said."""
    import threading
    import time

    from spamfilter_plugin.cli.emit import followed
    from spamfilter_plugin.emit import emit
    from spamfilter_plugin.events import DomainCreated
    from spamfilter_plugin.queue import open_queue

    row_id = emit(DomainCreated(domain="busy2.example"), cfg).rows["spamport"]
    queue = open_queue(cfg.parent / "state")
    row, token = queue.claim("other-worker", 30)
    assert row.id == row_id

    unfinished = followed(queue, "spamport", row_id, wait=0.2, poll=0.05)
    assert not unfinished.ok
    assert str(unfinished.error).startswith(
        f"spamport: not finished: another worker ({token}) is delivering queue row {row_id}; "
        f"follow it with 'spamfilter queue show {row_id}'"
    )

    def finish():
        time.sleep(0.3)
        with open_queue(cfg.parent / "state") as other:
            assert other.complete(row, token, {"message": "added"})

    thread = threading.Thread(target=finish)
    thread.start()
    outcome = followed(queue, "spamport", row_id, wait=10, poll=0.05)
    thread.join()
    queue.close()
    assert outcome.ok
    assert outcome.result == {"message": f"delivered by another worker (queue row {row_id})"}
