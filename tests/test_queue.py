"""The outbox: rows per handling vendor, ordering, superseding, leases, secrets at rest."""

import json
import os
import stat
import time
from pathlib import Path

import pytest
from queue_helpers import opened, put, sandbox_config

from spamfilter_plugin.emit import emit
from spamfilter_plugin.errors import VendorSkipped, VendorUnavailable
from spamfilter_plugin.events import (
    DomainCreated,
    DomainDeleted,
    DomainSuspended,
    DomainUnsuspended,
    DomainUpdated,
    MailboxAdded,
    MailboxDeleted,
    PasswordReset,
    VendorStep,
)
from spamfilter_plugin.queue import DB_NAME, KEY_NAME

pytestmark = pytest.mark.usefixtures("store")  # each test on SQLite and PostgreSQL


@pytest.fixture
def cfg(tmp_path, sandbox):
    return sandbox_config(tmp_path, sandbox)


@pytest.fixture
def queue(tmp_path):
    q = opened(tmp_path / "state")
    yield q
    q.close()


def test_emit_writes_one_row_per_vendor_that_handles_the_event(cfg, tmp_path):
    receipt = emit(DomainCreated(domain="a.example"), cfg)
    assert list(receipt.rows) == ["spamport"]  # rackspace does not handle domain events
    receipt = emit(MailboxAdded(mailbox="alex.smith@example.com"), cfg)
    assert list(receipt.rows) == ["rackspace"]
    receipt = emit(MailboxDeleted(mailbox="alex.smith@example.com"), cfg)
    assert receipt.rows == {}  # nobody handles it: nothing queued
    q = opened(tmp_path / "state")
    assert q.counts()["pending"] == 2


def test_emit_uses_the_capability_cache_without_loading_plugins(cfg, tmp_path, monkeypatch):
    emit(
        DomainCreated(domain="a.example"), cfg
    )  # the first call may load plugins and writes the cache
    import spamfilter_plugin.manager as manager

    monkeypatch.setattr(
        manager, "load_runtime", lambda *a, **k: pytest.fail("emit loaded the plugins")
    )
    assert list(emit(DomainCreated(domain="b.example"), cfg).rows) == ["spamport"]


def test_a_changed_config_refreshes_the_cache(cfg, tmp_path, sandbox):
    emit(DomainCreated(domain="a.example"), cfg)
    text = cfg.read_text().replace(
        "[vendors.spamport]",
        '[vendors.toy]\napi_url = "http://127.0.0.1:9"\n'
        'token = "t"\ndeadline = 2.0\n\n[vendors.spamport]',
    )
    cfg.write_text(text)
    assert sorted(emit(DomainCreated(domain="b.example"), cfg).rows) == ["spamport", "toy"]


def test_files_are_private(cfg, tmp_path):
    emit(
        PasswordReset(mailbox="alex.smith@example.com", password="S3cret-pw!"),
        sandbox_config(tmp_path, {"spamport": _Fake(), "rackspace": _Fake()}, name="other.toml"),
    )
    state = tmp_path / "state"
    for name in (DB_NAME, KEY_NAME):
        assert stat.S_IMODE(os.stat(state / name).st_mode) == 0o600, name
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700


def sqlite_only(store: str, what: str) -> None:
    if store != "sqlite":
        pytest.skip(f"SQLite only: {what}")


class _Fake:
    url = "http://127.0.0.1:9"


def stored_bytes(queue, store, tmp_path) -> bytes:
    """Everything the store holds: the database files (SQLite), or every column of every
    row of every table and the server's statement log (PostgreSQL)."""
    if store == "sqlite":
        return b"".join(p.read_bytes() for p in (tmp_path / "state").glob(DB_NAME + "*"))
    db = queue.db
    tables = [r["tablename"] for r in db.execute("SELECT tablename FROM pg_tables WHERE "
                                                 "schemaname = current_schema()")]  # fmt: skip
    text = [str(r) for t in tables for r in db.execute(f"SELECT * FROM {t}")]
    text += [str(r) for r in db.execute("SELECT query FROM pg_stat_activity")]
    return "".join(text).encode()


def test_no_plaintext_password_in_the_database_files(queue, tmp_path, store):
    password = "Pl4intext-Never-&#%"
    put(queue, PasswordReset(domain="a.example", password=password), ["spamport"])
    put(queue, PasswordReset(mailbox="b@a.example", password=password), ["toy"])
    raw = stored_bytes(queue, store, tmp_path)
    assert raw and password.encode() not in raw and b"a.example" in raw
    row, _token = queue.claim("w", 30)
    assert queue.event_of(row).password.reveal() == password


def test_password_is_wiped_when_done_dead_or_superseded(queue):
    ids = [
        put(queue, PasswordReset(mailbox=f"u{i}@a.example", password="pw-123456"), ["v"])[0]
        for i in range(2)
    ]
    row, token = queue.claim("w", 30)
    queue.complete(row, token)
    row, token = queue.claim("w", 30)
    queue.fail(row, token, VendorUnavailable("v", "x"), None)
    put(queue, PasswordReset(mailbox="u9@a.example", password="first-pw"), ["v"])
    put(queue, PasswordReset(mailbox="u9@a.example", password="second-pw"), ["v"])
    secrets = {r["id"]: r["secret"] for r in queue.db.execute("SELECT id, secret FROM events")}
    assert secrets[ids[0]] is None and secrets[ids[1]] is None
    states = [r.state for r in sorted(queue.rows(), key=lambda r: r.id)]
    assert states == ["done", "dead", "superseded", "pending"]
    assert [v is None for v in secrets.values()] == [True, True, True, False]


def test_same_target_is_delivered_in_order_other_targets_are_not_blocked(queue):
    first = put(queue, DomainCreated(domain="a.example"), ["v"])[0]
    second = put(queue, DomainUpdated(domain="a.example", destination="192.0.2.1"), ["v"])[0]
    other = put(queue, DomainCreated(domain="b.example"), ["v"])[0]
    row, token = queue.claim("w", 30)
    assert row.id == first
    row2, token2 = queue.claim("w", 30)
    assert row2.id == other  # a.example's second event waits for its first
    assert queue.claim("w", 30) is None
    queue.fail(row, token, VendorUnavailable("v", "down"), retry_in=3600)
    assert queue.claim("w", 30) is None  # still waiting: the first is retrying later
    queue.complete(row2, token2)
    assert queue.get(second).state == "pending"


def test_a_dead_row_does_not_block_its_target(queue):
    put(queue, DomainCreated(domain="a.example"), ["v"])
    later = put(queue, DomainUpdated(domain="a.example", destination="192.0.2.1"), ["v"])[0]
    row, token = queue.claim("w", 30)
    queue.fail(row, token, VendorUnavailable("v", "x"), None)
    assert queue.claim("w", 30)[0].id == later


@pytest.mark.parametrize(
    "events,expected",
    [
        (
            [DomainCreated(domain="a.example"), DomainDeleted(domain="a.example")],
            ["superseded", "pending"],
        ),
        (
            [
                DomainCreated(domain="a.example"),
                DomainUpdated(domain="a.example", destination="192.0.2.1"),
                DomainDeleted(domain="a.example"),
            ],
            ["superseded", "superseded", "pending"],
        ),
        (
            [
                DomainUpdated(domain="a.example", destination="192.0.2.1"),
                DomainUpdated(domain="a.example", destination="192.0.2.2"),
            ],
            ["superseded", "pending"],
        ),
        (
            [DomainDeleted(domain="a.example"), DomainCreated(domain="a.example")],
            ["pending", "pending"],
        ),
        (
            [MailboxAdded(mailbox="u@a.example"), MailboxDeleted(mailbox="u@a.example")],
            ["superseded", "pending"],
        ),
        (
            [DomainCreated(domain="a.example"), DomainDeleted(domain="b.example")],
            ["pending", "pending"],
        ),
    ],
)
def test_superseding(queue, events, expected):
    for event in events:
        put(queue, event, ["v"])
    assert [r.state for r in sorted(queue.rows(), key=lambda r: r.id)] == expected


def test_leased_rows_are_never_superseded(queue):
    put(queue, DomainCreated(domain="a.example"), ["v"])
    row, _token = queue.claim("w", 30)
    put(queue, DomainDeleted(domain="a.example"), ["v"])
    assert queue.get(row.id).state == "leased"


def test_expired_leases_are_claimed_again_and_the_old_holder_cannot_finish(tmp_path):
    now = [1000.0]
    q = opened(tmp_path / "s", monotonic=lambda: now[0])
    put(q, DomainCreated(domain="a.example"), ["v"])
    row, old = q.claim("w1", 10)
    assert q.claim("w2", 10) is None
    now[0] += 11
    again, new = q.claim("w2", 10)
    assert again.id == row.id and again.attempts == 2
    assert not q.complete(row, old)  # the first worker's lease is gone
    assert q.complete(again, new) and q.get(row.id).state == "done"


def test_a_batch_claims_rows_whose_lease_ran_out_before_waiting_ones(tmp_path):
    now = [1000.0]
    q = opened(tmp_path / "s", monotonic=lambda: now[0])
    ids = [put(q, DomainCreated(domain=f"b{i}.example"), ["v"])[0] for i in range(4)]
    for late in ids[2:]:  # the two newest leased, then left to run out
        assert q.claim("w1", 10, only=[late])[0].id == late
    now[0] += 11
    taken = q.claim_batch("w2", 10, {"v": 2})
    assert [(row.id, row.attempts) for row, _ in taken] == [(ids[2], 2), (ids[3], 2)]
    rest = q.claim_batch("w2", 10, {"v": 5})
    assert [(row.id, row.attempts) for row, _ in rest] == [(ids[0], 1), (ids[1], 1)]
    assert len({token for _, token in taken + rest}) == 4
    q.close()


def test_inside_a_batch_each_write_still_says_whether_it_held(queue):
    """The fleet's store pipelines a batch: a write's answer is still read before it is told."""
    a = put(queue, DomainCreated(domain="a.example"), ["v"])[0]
    b = put(queue, DomainCreated(domain="b.example"), ["w"])[0]
    row, token = queue.claim("x", 30, only=[a])
    with queue.batch():
        assert not queue.fail(row, "x:not-the-lease", VendorUnavailable("v", "x"), 5)
        assert queue.fail(row, token, VendorUnavailable("v", "x"), 5)
        assert queue.drop(b) and not queue.drop(b)
    assert queue.get(a).state == "pending" and queue.get(b) is None


def test_results_keep_secrets_encrypted(queue, tmp_path):
    from spamfilter_plugin.redaction import Secret

    put(queue, PasswordReset(domain="a.example"), ["spamport"])
    row, token = queue.claim("w", 30)
    queue.complete(row, token, {"password": Secret("Gener4ted-pw"), "message": "ok"})
    assert queue.get(row.id).result == {"password": "***", "message": "ok"}
    assert queue.secret_result(row.id)["password"].reveal() == "Gener4ted-pw"
    raw = b"".join(p.read_bytes() for p in (tmp_path / "state").glob(DB_NAME + "*"))
    assert b"Gener4ted-pw" not in raw


def test_retry_drop_and_purge(queue):
    a = put(queue, DomainCreated(domain="a.example"), ["v"])[0]
    b = put(queue, DomainCreated(domain="b.example"), ["v"])[0]
    for _ in range(2):
        row, token = queue.claim("w", 30)
        queue.fail(row, token, VendorUnavailable("v", "x"), None)
    assert queue.retry(a) and not queue.retry(a)
    assert queue.get(a).state == "pending" and queue.get(a).attempts == 0
    assert queue.retry_all_dead() == 1 and queue.get(b).state == "pending"
    row, token = queue.claim("w", 30)
    assert not queue.drop(row.id)  # being delivered
    assert queue.drop(b) and queue.get(b) is None
    queue.complete(row, token)
    assert queue.purge(-1) == 1


def test_key_file_with_loose_permissions_is_refused(queue, tmp_path):
    from spamfilter_plugin.errors import ConfigError

    put(queue, PasswordReset(domain="a.example", password="pw-123456"), ["v"])
    key = Path(queue.box.path)  # the queue's key, or the fleet's
    assert key.name in (KEY_NAME, "fleet.key")
    key.chmod(0o644)
    fresh = opened(tmp_path / "state")
    with pytest.raises(ConfigError) as info:
        put(fresh, PasswordReset(domain="a.example", password="pw-123456"), ["v"])
    assert f"chmod 600 {key}" in str(info.value)


RACE = """
import sys
from spamfilter_plugin.queue import SecretBox
box = SecretBox(sys.argv[1])
sealed = box.seal("pw")
print(open(box.path, "rb").read().strip().decode(), box.open(sealed))
"""


def test_the_first_key_is_created_atomically_under_a_race(tmp_path):
    import subprocess
    import sys

    for round_ in range(6):
        state = tmp_path / f"round{round_}"
        state.mkdir(mode=0o700)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", RACE, str(state)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(12)
        ]
        results = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err for _, err in results if err][:1]
        keys = {out.split()[0] for out, _ in results}
        assert len(keys) == 1 and all(out.split()[1] == "pw" for out, _ in results)


def test_an_empty_or_corrupt_key_is_a_clear_error(tmp_path):
    from spamfilter_plugin.errors import ConfigError
    from spamfilter_plugin.queue import SecretBox

    key = tmp_path / KEY_NAME
    key.write_bytes(b"")
    key.chmod(0o600)
    with pytest.raises(ConfigError, match=str(key)):
        SecretBox(tmp_path).seal("x")


def test_a_later_deletion_supersedes_a_dead_creation(queue):
    from spamfilter_plugin.errors import VendorRejected

    (created,) = put(queue, DomainCreated(domain="full.example"), ["v"])
    row, token = queue.claim("w", 30)
    queue.fail(row, token, VendorRejected("v", "licence fully used"), None)
    assert queue.get(created).state == "dead"
    (deleted,) = put(queue, DomainDeleted(domain="full.example"), ["v"])
    assert queue.get(created).state == "superseded"
    assert queue.retry_all_dead() == 0 and not queue.retry(created)
    row, _ = queue.claim("w", 30)
    assert row.id == deleted  # the deletion goes on; the creation never comes back


# -- clock steps: what orders and expires work ignores the wall clock --------------------


def test_an_emitter_whose_clock_is_a_day_ahead_does_not_delay_its_event(tmp_path):
    ahead = opened(tmp_path / "s", clock=lambda: time.time() + 86400)
    (row_id,) = put(ahead, DomainCreated(domain="a.example"), ["v"])
    claimed = opened(tmp_path / "s").claim("w", 30)
    assert claimed is not None and claimed[0].id == row_id


def test_a_worker_whose_clock_is_an_hour_ahead_cannot_take_a_live_lease(tmp_path):
    q = opened(tmp_path / "s")
    put(q, DomainCreated(domain="a.example"), ["v"])
    row, token = q.claim("w1", 300)
    ahead = opened(tmp_path / "s", clock=lambda: time.time() + 3600)
    assert ahead.claim("w2", 300) is None
    assert ahead.drop(row.id) is False  # nor drop it as if it were not being delivered
    assert q.complete(row, token)


def test_a_wall_clock_stepped_back_does_not_hold_a_retry(tmp_path):
    q = opened(tmp_path / "s")
    put(q, DomainCreated(domain="a.example"), ["v"])
    row, token = q.claim("w", 30)
    q.fail(row, token, VendorUnavailable("v", "down"), 0.0)  # retry at once
    behind = opened(tmp_path / "s", clock=lambda: time.time() - 86400)
    assert behind.claim("w", 30) is not None


def test_after_a_reboot_leases_are_void_and_pending_rows_due(tmp_path, store):
    sqlite_only(store, "the fleet's times are the database's clock, which has no boots")
    mono = [5_000_000.0]  # a machine up for two months
    before = opened(tmp_path / "s", monotonic=lambda: mono[0], boot="boot-1")
    put(before, DomainCreated(domain="a.example"), ["v"])
    put(before, DomainCreated(domain="b.example"), ["v"])
    leased, _ = before.claim("w1", 300)
    other, token = before.claim("w1", 300)
    before.fail(other, token, VendorUnavailable("v", "down"), 600)
    before.close()
    mono[0] = 40.0  # rebooted: the monotonic clock starts again
    after = opened(tmp_path / "s", monotonic=lambda: mono[0], boot="boot-2")
    first, _ = after.claim("w2", 300)
    second, _ = after.claim("w2", 300)
    assert {first.id, second.id} == {leased.id, other.id}
    # the same boot again changes nothing: the new leases hold
    assert opened(tmp_path / "s", monotonic=lambda: mono[0], boot="boot-2").claim("w3", 1) is None


def test_times_shown_are_wall_clock(tmp_path):
    q = opened(tmp_path / "s")
    put(q, DomainCreated(domain="a.example"), ["v"])
    row, _ = q.claim("w", 300)
    now = time.time()
    assert abs(row.lease_until - (now + 300)) < 5 and abs(row.next_at - now) < 5
    assert abs(q.get(row.id).lease_until - (now + 300)) < 5


def test_a_queue_from_an_earlier_release_keeps_its_schedule_and_leases(tmp_path, store):
    sqlite_only(store, "a SQLite file from an earlier release")
    import sqlite3

    q = opened(tmp_path / "s")
    put(q, DomainCreated(domain="a.example"), ["v"])
    put(q, DomainCreated(domain="b.example"), ["v"])
    q.close()
    db = sqlite3.connect(tmp_path / "s" / DB_NAME)  # as an earlier release wrote it
    db.execute("DROP TABLE meta")
    now = time.time()
    db.execute(
        "UPDATE events SET state='leased', lease_until=?, lease_owner='w1' WHERE id=1", (now + 300,)
    )
    db.execute("UPDATE events SET next_at=? WHERE id=2", (now + 3600,))
    db.commit()
    db.close()
    q = opened(tmp_path / "s")
    assert q.claim("w2", 30) is None  # the lease still holds, the retry is not yet due
    assert abs(q.get(1).lease_until - (now + 300)) < 5
    assert abs(q.get(2).next_at - (now + 3600)) < 5


def test_an_ownership_record_from_an_earlier_release_gains_its_destination(tmp_path, store):
    sqlite_only(store, "a SQLite file from an earlier release")
    import sqlite3

    q = opened(tmp_path / "s")
    _deliver(q, DomainCreated(domain="a.example", destination="192.0.2.5"))
    q.close()
    db = sqlite3.connect(tmp_path / "s" / DB_NAME)  # the table as an earlier release made it
    db.executescript(
        "DROP TABLE provisioned; CREATE TABLE provisioned (vendor TEXT NOT NULL, "
        "domain TEXT NOT NULL, since REAL NOT NULL, PRIMARY KEY (vendor, domain)) WITHOUT ROWID;"
        "INSERT INTO provisioned VALUES ('spamport', 'old.example', 1.0);"
    )
    db.close()
    q = opened(tmp_path / "s")
    assert q.provisioned("spamport") == {"old.example"}
    assert q.destinations("spamport", "old.example") == {None}  # general.mail_host's
    _deliver(q, DomainUpdated(domain="old.example", destination="192.0.2.6"))
    assert q.destinations("spamport", "old.example") == {"192.0.2.6"}


# -- steps a vendor queues for itself ------------------------------------------------------


def _step(name="confirm_txt", domain="a.example", **data):
    return VendorStep(domain=domain, step=name, data=data)


def test_a_completed_row_queues_its_steps_in_the_same_write(queue):
    put(queue, DomainCreated(domain="a.example"), ["v"])
    row, token = queue.claim("w", 30)
    assert queue.complete(row, token, {"steps": ["confirm_txt"]}, [_step(value="rec-1")])
    step_row = next(r for r in queue.rows() if r.hook == "vendor_step")
    assert (step_row.vendor, step_row.target, step_row.state) == (
        "v",
        "domain:a.example",
        "pending",
    )
    event = queue.event_of(step_row)
    assert isinstance(event, VendorStep) and event.data == {"value": "rec-1"}
    assert queue.get(row.id).result == {"steps": ["confirm_txt"]}


def test_a_lost_lease_queues_no_step(tmp_path):
    now = [1000.0]
    q = opened(tmp_path / "s", monotonic=lambda: now[0])
    put(q, DomainCreated(domain="a.example"), ["v"])
    row, old = q.claim("w1", 10)
    now[0] += 11
    q.claim("w2", 10)
    assert not q.complete(row, old, None, [_step()])
    assert [r.hook for r in q.rows()] == ["domain_created"]


def test_a_waiting_step_holds_no_later_event_up_but_a_running_one_does(queue):
    put(queue, DomainCreated(domain="a.example"), ["v"])
    row, token = queue.claim("w", 30)
    queue.complete(row, token, None, [_step()])
    step_row, step_token = queue.claim("w", 30)
    assert step_row.hook == "vendor_step"
    later = put(queue, DomainUpdated(domain="a.example", destination="192.0.2.1"), ["v"])[0]
    assert queue.claim("w", 30) is None  # the step is being tried: the update waits
    queue.fail(step_row, step_token, VendorUnavailable("v", "not yet"), retry_in=3600)
    assert queue.claim("w", 30)[0].id == later  # waiting for an hour: the update goes on


def test_a_step_waits_for_the_events_before_it(queue):
    put(queue, DomainCreated(domain="a.example"), ["v"])
    row, token = queue.claim("w", 30)
    update = put(queue, DomainUpdated(domain="a.example", destination="192.0.2.1"), ["v"])[0]
    queue.complete(row, token, None, [_step()])
    assert queue.claim("w", 30)[0].id == update


def test_a_deletion_supersedes_waiting_steps_and_a_newer_step_replaces_one(queue):
    put(queue, DomainCreated(domain="a.example"), ["v"])
    row, token = queue.claim("w", 30)
    queue.complete(row, token, None, [_step(value="old"), _step("switch_mx")])
    again = put(queue, DomainCreated(domain="a.example"), ["v"])
    row, token = queue.claim("w", 30, only=again)
    queue.complete(row, token, None, [_step(value="new")])
    states = {
        (r.payload["step"], r.payload["data"].get("value")): r.state
        for r in queue.rows()
        if r.hook == "vendor_step"
    }
    assert states == {
        ("confirm_txt", "old"): "superseded",
        ("switch_mx", None): "pending",
        ("confirm_txt", "new"): "pending",
    }
    put(queue, DomainDeleted(domain="a.example"), ["v"])
    assert {r.state for r in queue.rows() if r.hook == "vendor_step"} == {"superseded"}


def test_a_batch_is_one_transaction_all_or_nothing(queue):
    for name in ("a.example", "b.example", "c.example"):
        put(queue, DomainCreated(domain=name), ["spamport"])
    claimed = queue.claim_batch("w", 60, {"spamport": 2})
    assert [row.target for row, _ in claimed] == ["domain:a.example", "domain:b.example"]
    with pytest.raises(RuntimeError), queue.batch():
        for row, token in claimed:
            assert queue.complete(row, token, {"message": "ok"})
        queue.claim_batch("w", 60, {"spamport": 1})
        raise RuntimeError("the disk filled up before the commit")
    # nothing of the batch was written: both still leased, the third not claimed, no owner
    assert [queue.get(row.id).state for row, _ in claimed] == ["leased", "leased"]
    assert queue.counts()["pending"] == 1 and queue.provisioned("spamport") == set()
    with queue.batch():
        for row, token in claimed:
            assert queue.complete(row, token, {"message": "ok"})
    assert queue.provisioned("spamport") == {"a.example", "b.example"}


def _deliver(queue, event, vendor="spamport"):
    (row_id,) = put(queue, event, [vendor])
    row, token = queue.claim("w", 60)
    assert row.id == row_id and queue.complete(row, token)


def test_the_destinations_the_plugin_set_are_kept(queue):
    _deliver(queue, DomainCreated(domain="a.example", destination="mail.a.example"))
    _deliver(queue, DomainCreated(domain="b.example"))  # general.mail_host's: none named
    assert queue.destinations("spamport", "a.example") == {"mail.a.example"}
    assert queue.destinations("spamport", "b.example") == {None}
    _deliver(queue, DomainUpdated(domain="a.example", destination="192.0.2.7"))
    # an update on its way (it may have reached the vendor already) counts too
    put(queue, DomainUpdated(domain="a.example", destination="192.0.2.8"), ["spamport"])
    assert queue.destinations("spamport", "a.example") == {
        "mail.a.example",
        "192.0.2.7",
        "192.0.2.8",
    }
    assert queue.destinations("rackspace", "a.example") == set()  # never put there
    # the record outlives the rows: the latest delivered destination is kept
    row, token = queue.claim("w", 60)
    assert queue.complete(row, token)
    assert queue.purge(-1) == 4
    assert queue.destinations("spamport", "a.example") == {"192.0.2.8"}
    assert queue.provisioned("spamport") == {"a.example", "b.example"}
    _deliver(queue, DomainDeleted(domain="a.example"))
    assert queue.purge(-1) == 1
    assert queue.destinations("spamport", "a.example") == set()


def test_completing_many_rows_at_once_keeps_each_lease_and_ownership(queue):
    _deliver(queue, DomainCreated(domain="gone.example"))
    put(queue, DomainCreated(domain="a.example", destination="192.0.2.1"), ["spamport"])
    put(queue, DomainUpdated(domain="gone.example", destination="192.0.2.2"), ["spamport"])
    put(queue, MailboxAdded(mailbox="x@a.example"), ["rackspace"])
    put(queue, DomainCreated(domain="lost.example"), ["spamport"])
    claimed = queue.claim_batch("w", 60, {"spamport": 3, "rackspace": 1})
    assert len(claimed) == 4
    items = [
        (row, token if "lost" not in row.target else "a lease taken over", {"message": "ok"})
        for row, token in claimed
    ]
    held = queue.complete_many(items)
    assert held == {row.id for row, _ in claimed if "lost" not in row.target}
    assert {queue.get(row.id).state for row, _ in claimed if row.id in held} == {"done"}
    assert queue.get(next(r.id for r, _ in claimed if "lost" in r.target)).state == "leased"
    assert queue.get(next(iter(held))).result == {"message": "ok"}
    assert queue.provisioned("spamport") == {"a.example", "gone.example"}
    assert queue.destinations("spamport", "gone.example") == {None, "192.0.2.2"}
    assert queue.complete_many([]) == set()


def test_a_skipped_deletion_ends_skipped_and_gives_the_domain_up(queue):
    _deliver(queue, DomainCreated(domain="a.example", destination="192.0.2.7"))
    (row_id,) = put(queue, DomainDeleted(domain="a.example"), ["spamport"])
    row, token = queue.claim("w", 60)
    reason = VendorSkipped("spamport", "mail for a.example goes to 192.0.2.9 there")
    assert not queue.skip(row, "another lease", reason)  # a lost lease writes nothing
    assert queue.get(row_id).state == "leased"
    assert queue.skip(row, token, reason)
    skipped = queue.get(row_id)
    assert skipped.state == "skipped" and skipped.lease_owner is None
    assert skipped.last_error == "spamport: mail for a.example goes to 192.0.2.9 there"
    assert skipped.error_type == "VendorSkipped"
    assert queue.provisioned("spamport") == set()
    assert queue.counts()["skipped"] == 1 and queue.claim("w", 60) is None
    assert queue.purge(-1) == 2  # history like done rows


def test_ownership_is_kept_through_purge_and_filled_from_an_older_queue(queue, tmp_path, store):
    (row_id,) = put(queue, DomainCreated(domain="a.example"), ["spamport"])
    row, token = queue.claim("w", 60)
    assert queue.complete(row, token)
    assert queue.purge(-1) == 1 and queue.get(row_id) is None
    assert queue.provisioned("spamport") == {"a.example"}  # purge keeps the record
    put(queue, DomainDeleted(domain="a.example"), ["spamport"])
    row, token = queue.claim("w", 60)
    assert queue.complete(row, token)
    assert queue.provisioned("spamport") == set()
    if store != "sqlite":
        return
    # a queue from before the record: filled once from its delivered rows
    put(queue, DomainCreated(domain="b.example"), ["spamport"])
    row, token = queue.claim("w", 60)
    assert queue.complete(row, token)
    queue.db.execute("DELETE FROM provisioned")
    queue.db.execute("DELETE FROM meta WHERE key='provisioned'")
    queue.close()
    assert opened(queue.state_dir).provisioned("spamport") == {"b.example"}


def test_the_queue_keeps_which_domains_are_suspended_since_when_and_why(queue):
    put(queue, DomainSuspended(domain="a.example", reason="Unpaid #1"), ["spamport", "rackspace"])
    put(queue, DomainSuspended(domain="b.example"), ["spamport"])
    (since, reason) = queue.suspensions()["a.example"]
    assert reason == "Unpaid #1" and abs(since - time.time()) < 60
    put(queue, DomainSuspended(domain="a.example", reason="again"), ["spamport"])
    assert queue.suspensions()["a.example"] == (since, "Unpaid #1")  # the first one counts
    put(queue, DomainUnsuspended(domain="a.example"), ["spamport"])
    put(queue, DomainDeleted(domain="b.example"), ["spamport"])
    assert queue.suspensions() == {}
    # kept through purge: it is the panel's word, not a row's
    put(queue, DomainSuspended(domain="c.example"), ["spamport"])
    row, token = queue.claim("w", 60)
    while row is not None:
        queue.complete(row, token)
        row, token = queue.claim("w", 60) or (None, None)
    queue.purge(-1)
    assert set(queue.suspensions()) == {"c.example"}


def test_operations_counters_add_up_and_gauges_are_set_in_the_store(queue):
    from spamfilter_plugin.metrics import labels

    spamport = labels(vendor="spamport")
    queue.add_metrics({("spamfilter_lease_expired_total", spamport): 2})
    with queue.batch():  # inside the worker's transaction, as it writes outcomes
        queue.add_metrics(
            {("spamfilter_lease_expired_total", spamport): 3},
            {("spamfilter_worker_last_seen_timestamp_seconds", labels()): 1700000000.5},
        )
    queue.add_metrics({}, {("spamfilter_worker_last_seen_timestamp_seconds", labels()): 1.0})
    assert queue.metrics() == [
        ("spamfilter_lease_expired_total", spamport, 5.0),
        ("spamfilter_worker_last_seen_timestamp_seconds", "{}", 1.0),
    ]
    put(queue, DomainCreated(domain="a.example"), ["spamport", "rackspace"])
    before = time.time()
    put(queue, DomainCreated(domain="b.example"), ["spamport"])
    summary = {(v, s): (n, first) for v, s, n, first in queue.vendor_summary()}
    assert summary[("spamport", "pending")][0] == 2
    assert summary[("rackspace", "pending")][0] == 1
    assert summary[("spamport", "pending")][1] <= before


def test_the_audit_log_appends_finds_and_purges_in_the_store(queue):
    from spamfilter_plugin import audit

    for at, actor, target in ((100.0, "admin", "example.com"), (200.0, "alice", "a@example.com"),
                              (300.0, "admin", "other.example")):  # fmt: skip
        audit.record(queue, actor=actor, action="settings", target=target, outcome="ok", at=at,
                     changed={"password": {"changed": True}})  # fmt: skip
    found = queue.audit_entries(target="example.com")
    assert [(e["at"], e["target"]) for e in found] == [(200.0, "a@example.com"),
                                                      (100.0, "example.com")]  # fmt: skip
    assert [e["target"] for e in queue.audit_entries(actor="admin", since=150)] == ["other.example"]
    assert json.loads(found[0]["changes"]) == {"password": {"changed": True}}
    assert queue.audit_purge(250.0) == 2
    assert [e["target"] for e in queue.audit_entries()] == ["other.example"]


def test_api_tokens_are_kept_by_digest_found_used_and_removed(queue):
    record = {"name": "whmcs", "digest": "ab" * 32, "role": "admin", "subject": "",
              "created_at": 100.0, "expires_at": None, "last_used_at": None}  # fmt: skip
    assert queue.token_add(record) is True
    assert queue.token_add({**record, "digest": "cd" * 32}) is False  # the name is taken
    assert queue.token_by_digest("ab" * 32) == record
    assert queue.token_by_digest("ef" * 32) is None
    queue.token_used("whmcs", 150.0)
    assert queue.token_named("whmcs")["last_used_at"] == 150.0
    queue.token_add({**record, "name": "alice", "digest": "12" * 32, "role": "account",
                     "subject": "alice", "expires_at": 900.0})  # fmt: skip
    assert [t["name"] for t in queue.tokens()] == ["alice", "whmcs"]
    assert queue.token_remove("whmcs") is True and queue.token_remove("whmcs") is False
    assert queue.token_by_digest("ab" * 32) is None


def test_the_domains_the_api_owns_are_kept_changed_and_dropped(queue):
    assert queue.api_domains() == {}
    queue.api_domain_keep("elsewhere.example", "192.0.2.25", None, "token:whmcs", 100.0)
    queue.api_domain_keep("elsewhere.example", "mx.example.net", "c-12", "token:other", 200.0)
    assert queue.api_domains() == {
        "elsewhere.example": {
            "domain": "elsewhere.example",
            "destination": "mx.example.net",
            "owner": "c-12",
            "added_by": "token:whmcs",
            "added_at": 100.0,
        }
    }
    assert queue.api_domain_drop("elsewhere.example") is True
    assert queue.api_domain_drop("elsewhere.example") is False and queue.api_domains() == {}


def test_a_lease_reads_the_row_back_and_each_has_its_own_token(tmp_path):
    """A single claim and a batch's claims lease alike (one update, then the rows read back):
    the claimed row is the leased one, and every lease has its own token."""
    from spamfilter_plugin.store import sqlite

    with sqlite.SqliteQueue(tmp_path) as queue:
        ids = [put(queue, DomainCreated(domain=f"r{i}.example"), ["spamport"])[0] for i in range(4)]
        claimed = [queue.claim("w", 60), *queue.claim_batch("w", 60, {"spamport": 3})]
        assert [row.id for row, _ in claimed] == ids
        assert {(row.state, row.attempts) for row, _ in claimed} == {("leased", 1)}
        assert all(row.lease_owner == token for row, token in claimed)
        assert len({token for _, token in claimed}) == 4
        assert all(token.startswith("w:") for _, token in claimed)
