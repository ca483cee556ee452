"""``spamfilter sync`` against the emulators: the plan (missing, extra and owned, extra and
foreign, wrong destination), a dry run that changes nothing, a re-run that does nothing, a
partial failure and its resume, a throttling vendor, and the command as an admin runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from queue_helpers import sandbox_config

from spamfilter_plugin.emit import emit
from spamfilter_plugin.errors import ConfigError, InvalidInput
from spamfilter_plugin.events import DomainCreated
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.queue import open_queue
from spamfilter_plugin.sync import Reconcile, read_domains
from spamfilter_plugin.testing import write_config
from spamfilter_plugin.worker import Worker

SPAMFILTER = str(Path(sys.executable).with_name("spamfilter"))


@pytest.fixture
def cfg(tmp_path, sandbox):
    return sandbox_config(tmp_path, sandbox, spamport={"retries": 3, "concurrency": 4})


def spamport_calls(sandbox, function):
    """The domains SpamPort processed *function* for (faulted requests left out)."""
    out = []
    for r in sandbox["spamport"].emulator.requests:
        fields = dict(p.split("=", 1) for p in r["body"].split("&"))
        if fields.get("function") == function and r["fault"] is None:
            out.append(fields.get("domain"))
    return out


@pytest.fixture
def drifted(cfg, sandbox):
    """SpamPort holds: kept.example (mail to the wrong host), owned.example (added by the
    plugin, since gone from the panel) and foreign.example (added by hand at SpamPort)."""
    emit(DomainCreated(domain="owned.example"), cfg)
    emit(DomainCreated(domain="kept.example", destination="192.0.2.50"), cfg)
    assert Worker(load_runtime(cfg)).drain().done == 2
    sandbox["spamport"].emulator.seed_data(
        {"domains": {"foreign.example": {"transport": "smtp:192.0.2.99"}}}
    )
    sandbox["spamport"].emulator.requests.clear()
    # the panel: kept.example should go to mx.provider.example (mail_host), new.example is new
    return {"kept.example": None, "new.example": None}


def plan_of(cfg, wanted, **kw):
    sync = Reconcile(load_runtime(cfg), wanted, **kw)
    return {(c.domain, c.action) for c in sync.plan("spamport")}


def test_the_plan_adds_removes_what_it_owns_fixes_routes_and_leaves_the_foreign(cfg, drifted):
    assert plan_of(cfg, drifted) == {
        ("new.example", "add"),
        ("owned.example", "remove"),
        ("kept.example", "update"),
        ("foreign.example", "foreign"),
    }
    assert ("foreign.example", "remove") in plan_of(cfg, drifted, prune_foreign=True)


def test_a_dry_run_changes_nothing(cfg, sandbox, drifted, tmp_path):
    before = json.dumps(sandbox["spamport"].emulator.snapshot(), sort_keys=True)
    rows = open_queue(tmp_path / "state").counts()
    domains = tmp_path / "domains.txt"
    domains.write_text("kept.example\nnew.example\n")
    out = run_sync(cfg, "--vendor", "spamport", "--domains-from", str(domains), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "spamport: holds 3 domains; would change: 1 add, 1 foreign, 1 remove, 1 update" in (
        out.stdout
    )
    assert json.dumps(sandbox["spamport"].emulator.snapshot(), sort_keys=True) == before
    assert spamport_calls(sandbox, "get_domains") and not spamport_calls(sandbox, "add")
    assert open_queue(tmp_path / "state").counts() == rows


def test_apply_then_a_rerun_is_a_no_op(cfg, sandbox, drifted):
    rt = load_runtime(cfg)
    outcomes = []
    sync = Reconcile(rt, drifted)
    sync.apply("spamport", sync.plan("spamport"), outcomes.append)
    assert {(o.change.domain, o.change.action, o.state) for o in outcomes} == {
        ("new.example", "add", "done"),
        ("owned.example", "remove", "done"),
        ("kept.example", "update", "done"),
        ("foreign.example", "foreign", "left"),
    }
    domains = sandbox["spamport"].emulator.domains
    assert set(domains) == {"kept.example", "new.example", "foreign.example"}
    assert domains["kept.example"]["transport"] == "smtp:mx.provider.example"
    assert open_queue(rt.config.general.state_dir).provisioned("spamport") == {
        "kept.example",
        "new.example",
    }
    sandbox["spamport"].emulator.requests.clear()
    again = Reconcile(load_runtime(cfg), drifted)
    assert [c.action for c in again.plan("spamport")] == ["foreign"]
    assert spamport_calls(sandbox, "get_domains") == [None]  # one look, nothing else


def test_a_partial_failure_then_a_resume_does_nothing_twice(sandbox, tmp_path):
    # no retry within the call, and the worker's next try a minute away: what fails is left
    cfg = sandbox_config(
        tmp_path, sandbox, general={"retry_base": 60, "retry_cap": 120}, spamport={"retries": 0}
    )
    wanted = {f"d{i}.example": None for i in range(30)}
    emulator = sandbox["spamport"].emulator
    emulator.license_limit = 1000
    rt = load_runtime(cfg)
    rt.check("spamport")  # credentials proven: the run goes side by side from the start
    emulator.requests.clear()
    outcomes = []
    first = Reconcile(rt, wanted)
    changes = list(first.plan("spamport"))
    emulator.faults.configure(rates={"error": 0.3}, seed=7)  # then SpamPort fails 30% of calls
    first.apply("spamport", changes, outcomes.append)
    failed = {o.change.domain for o in outcomes if o.state == "retrying"}
    assert failed and len(failed) < 30
    assert {o.change.domain for o in outcomes if o.state == "done"} == set(emulator.domains)
    rows = open_queue(rt.config.general.state_dir).counts()
    # the vendor is back; the admin runs sync again
    emulator.faults.clear()
    outcomes.clear()
    again = Reconcile(load_runtime(cfg), wanted)
    changes = list(again.plan("spamport"))
    assert {c.domain for c in changes} == failed
    assert all(c.row is not None for c in changes)  # the rows of the first run, continued
    again.apply("spamport", changes, outcomes.append)
    assert {o.change.domain: o.state for o in outcomes} == dict.fromkeys(failed, "done")
    assert set(emulator.domains) == set(wanted)
    assert open_queue(rt.config.general.state_dir).counts()["done"] == rows["done"] + len(failed)
    adds = spamport_calls(sandbox, "add")
    assert sorted(adds) == sorted(wanted)  # every domain added exactly once


def test_a_throttling_vendor_is_waited_for(cfg, sandbox):
    emulator = sandbox["spamport"].emulator
    rt = load_runtime(cfg)
    rt.check("spamport")
    emulator.requests.clear()
    emulator.faults.configure(queue=["throttle", "throttle", "throttle"])
    wanted = {f"t{i}.example": None for i in range(6)}
    outcomes = []
    sync = Reconcile(rt, wanted)
    sync.apply("spamport", sync.plan("spamport"), outcomes.append)
    assert [o.state for o in outcomes] == ["done"] * 6
    log = emulator.requests
    throttled = [r for r in log if r["fault"] == "throttle"]
    assert len(throttled) == 3
    for r in throttled:  # each throttled request was sent again no sooner than Retry-After
        body = r["body"]
        later = [x for x in log if x["body"] == body and x["time"] > r["time"]]
        assert later and later[0]["time"] - r["time"] >= 0.95
    assert sorted(spamport_calls(sandbox, "add")) == sorted(wanted)


def test_spamwall_routes_are_compared_as_ip_and_port(tmp_path, sandbox):
    cfg = write_config(
        tmp_path / "sw.toml",
        {"state_dir": str(tmp_path / "state"), "mail_host": "192.0.2.25"},
        {"spamwall": {**sandbox["spamwall"].config_table(), "retries": 0}},
    )
    emit(DomainCreated(domain="a.example"), cfg)
    emit(DomainCreated(domain="b.example", destination="192.0.2.26"), cfg)
    assert Worker(load_runtime(cfg)).drain().done == 2
    sync = Reconcile(load_runtime(cfg), {"a.example": None, "b.example": None})
    assert [(c.domain, c.action) for c in sync.plan("spamwall")] == [("b.example", "update")]


def test_hook_domain_route(tmp_path, sandbox):
    cfg = write_config(
        tmp_path / "sw.toml",
        {"state_dir": str(tmp_path / "state"), "mail_host": "192.0.2.25"},
        {"spamwall": sandbox["spamwall"].config_table()},
    )
    rt = load_runtime(cfg)
    assert rt.call("spamwall", "domain_route", destination="192.0.2.7") == "192.0.2.7:25"
    sync = Reconcile(rt, {})
    assert sync.route("spamwall", None) == "192.0.2.25:25"  # general.mail_host


def test_the_domain_list_names_each_bad_line():
    assert read_domains(["A.Example.", "# note", "", "b.example 192.0.2.1  # hand"], "f") == {
        "a.example": None,
        "b.example": "192.0.2.1",
    }
    with pytest.raises(InvalidInput) as info:
        read_domains(["ok.example", "-bad.example", "c.example d e"], "list.txt")
    assert "list.txt line 2" in str(info.value) and "list.txt line 3" in str(info.value)


def test_without_a_panel_or_a_list_the_command_says_what_to_give(cfg):
    with pytest.raises(ConfigError, match="--domains-from"):
        from spamfilter_plugin.sync import panel_domains

        panel_domains(load_runtime(cfg))


def run_sync(cfg, *args, stdin=None):
    env = dict(os.environ)
    return subprocess.run(
        [SPAMFILTER, "--config", str(cfg), "sync", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        timeout=120,
    )


def test_the_command_reads_stdin_and_prints_json_for_scripts(cfg, sandbox, drifted):
    out = run_sync(
        cfg, "--vendor", "spamport", "--domains-from", "-", "--json", stdin="kept.example\n"
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["dry_run"] is False
    assert {(c["domain"], c["action"], c["outcome"]) for c in doc["changes"]} == {
        ("owned.example", "remove", "done"),
        ("kept.example", "update", "done"),
        ("foreign.example", "foreign", "left"),
    }
    (spamport,) = doc["vendors"]
    assert spamport["held"] == 3 and spamport["outcomes"] == {"done": 2, "left": 1}
    assert set(sandbox["spamport"].emulator.domains) == {"kept.example", "foreign.example"}


def test_the_command_refuses_bad_input_naming_the_fix(cfg, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("good.example\nnot a domain at all\n")
    out = run_sync(cfg, "--domains-from", str(bad))
    assert out.returncode == 2 and f"{bad} line 2" in out.stderr
    out = run_sync(cfg, "--domains-from", str(tmp_path / "missing.txt"))
    assert out.returncode == 2 and "cannot read it" in out.stderr
    out = run_sync(cfg, "--vendor", "spamwall", "--domains-from", str(bad))
    assert out.returncode == 2
    out = run_sync(cfg, "--vendor", "nosuch", "--domains-from", "-", stdin="a.example\n")
    assert out.returncode == 2 and "--vendor nosuch: not enabled" in out.stderr
    out = run_sync(cfg)
    assert out.returncode == 2 and "--domains-from" in out.stderr


def test_a_vendor_whose_list_cannot_be_read_fails_alone(tmp_path, sandbox):
    cfg = sandbox_config(tmp_path, sandbox, spamport={"password": "wrong-password"})
    out = run_sync(cfg, "--domains-from", "-", stdin="a.example\n")
    assert out.returncode == 1
    assert "spamport: FAILED:" in out.stdout
    assert "rackspace: skipped: keeps no domain list" in out.stdout


HOSTILE = {
    "evil\x1b[31m.example": {},  # an ESC sequence
    "two\nlines.example": {},  # a newline
    "tab\there.example": {},
    "KEPT.Example.": {"transport": "192.0.2.99"},  # a spelling of the panel's kept.example
    "-bad-.example": {},
}


def test_a_hostile_inventory_is_refused_name_by_name_and_printed_escaped(cfg, sandbox):
    emit(DomainCreated(domain="kept.example"), cfg)
    emit(DomainCreated(domain="owned.example"), cfg)
    assert Worker(load_runtime(cfg)).drain().done == 2
    emulator = sandbox["spamport"].emulator
    emulator.seed_data({"domains": dict(HOSTILE, **{"foreign.example": {}})})
    emulator.requests.clear()
    out = run_sync(
        cfg, "--vendor", "spamport", "--prune-foreign", "--domains-from", "-",
        stdin="kept.example\n",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "\x1b" not in out.stdout and "\\x1b[31m" in out.stdout
    assert "two\\nlines.example" in out.stdout and "tab\\there.example" in out.stdout
    lines = out.stdout.splitlines()
    for name in ("evil", "two", "tab", "-bad-"):
        (line,) = [x for x in lines if name in x]
        assert " invalid " in line and "left: " in line
    (variant,) = [x for x in lines if "KEPT.Example." in x]
    assert " variant " in variant and "left alone" in variant
    # every valid change was applied; none was made of the refused names
    held = set(emulator.domains)
    assert set(HOSTILE) <= held and "owned.example" not in held and "foreign.example" not in held
    assert spamport_calls(sandbox, "set_outgoing") == []  # the real kept.example untouched
    assert emulator.domains["kept.example"]["transport"] == "smtp:mx.provider.example"


def test_the_hostile_inventory_in_json(cfg, sandbox):
    sandbox["spamport"].emulator.seed_data({"domains": HOSTILE})
    out = run_sync(
        cfg, "--vendor", "spamport", "--dry-run", "--json", "--domains-from", "-",
        stdin="kept.example\n",
    )  # fmt: skip
    doc = json.loads(out.stdout)
    actions = {c["domain"]: c["action"] for c in doc["changes"]}
    assert actions["KEPT.Example."] == "variant"
    assert "kept.example" not in actions  # held under another spelling: neither added nor fixed
    assert sum(a == "invalid" for a in actions.values()) == 4
