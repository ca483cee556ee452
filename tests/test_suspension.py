"""Suspended accounts at the vendors (docs/accounts.md): each ``on_suspend`` policy
against the emulators, over loopback HTTP, through the queue and the worker."""

from __future__ import annotations

import pytest

from spamfilter_plugin.emit import emit
from spamfilter_plugin.errors import ConfigError
from spamfilter_plugin.events import DomainCreated, DomainSuspended, DomainUnsuspended
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.queue import queue_of
from spamfilter_plugin.testing import write_config
from spamfilter_plugin.worker import Worker


def config(tmp_path, sandbox, vendor: str, **table):
    vendors = {vendor: {**sandbox[vendor].config_table(), "retries": 0, **table}}
    return write_config(tmp_path / "config.toml", {"mail_host": "192.0.2.25"}, vendors)


def deliver(cfg, event) -> list:
    emit(event, cfg)
    stats = Worker(load_runtime(cfg)).drain()
    return [d for d in stats.deliveries if d.row.hook == event.hook]


def calls(sandbox, vendor: str, *functions: str) -> list[str]:
    """The emulator's requests that changed something of these kinds."""
    return [
        r["body"] or r.get("path", "")
        for r in sandbox[vendor].emulator.requests
        if any(f in (r["body"] or "") for f in functions)
    ]


def test_keep_queues_the_suspension_and_changes_nothing_at_the_vendor(tmp_path, sandbox):
    cfg = config(tmp_path, sandbox, "spamport")
    deliver(cfg, DomainCreated(domain="owed.example"))
    sandbox["spamport"].emulator.requests.clear()
    (suspended,) = deliver(cfg, DomainSuspended(domain="owed.example", reason="Unpaid #4411"))
    assert suspended.final_state == "done"
    assert "filtering goes on (on_suspend = keep)" in suspended.outcome.result["message"]
    assert "Unpaid #4411" in suspended.outcome.result["message"]
    assert sandbox["spamport"].emulator.requests == []  # keep sends nothing
    assert sandbox["spamport"].emulator.domains["owed.example"]["noscan"] == "0"
    with queue_of(load_runtime(cfg).config) as queue:
        (row,) = [r for r in queue.rows() if r.hook == "domain_suspended"]
        assert row.payload["reason"] == "Unpaid #4411"
    (lifted,) = deliver(cfg, DomainUnsuspended(domain="owed.example"))
    assert lifted.final_state == "done" and "changed nothing" in lifted.outcome.result["message"]
    assert sandbox["spamport"].emulator.requests == []


@pytest.mark.parametrize("before", ["0", "1"])
def test_spamport_bypass_turns_scanning_off_and_puts_back_what_was_there(tmp_path, sandbox, before):
    cfg = config(tmp_path, sandbox, "spamport", on_suspend="bypass")
    deliver(cfg, DomainCreated(domain="owed.example"))
    held = sandbox["spamport"].emulator.domains["owed.example"]
    held["noscan"] = before  # filtering was already off for "1"
    deliver(cfg, DomainSuspended(domain="owed.example"))
    assert held["noscan"] == "1"
    # delivered twice (at least once): what was there before is still what comes back
    deliver(cfg, DomainSuspended(domain="owed.example"))
    assert held["noscan"] == "1"
    (lifted,) = deliver(cfg, DomainUnsuspended(domain="owed.example"))
    assert lifted.final_state == "done"
    assert held["noscan"] == before
    # a second unsuspension finds nothing to put back and changes nothing
    held["noscan"] = "1" if before == "0" else "0"
    deliver(cfg, DomainUnsuspended(domain="owed.example"))
    assert held["noscan"] == ("1" if before == "0" else "0")


def test_spamport_bypass_of_a_domain_it_does_not_hold_sends_no_change(tmp_path, sandbox):
    cfg = config(tmp_path, sandbox, "spamport", on_suspend="bypass")
    (suspended,) = deliver(cfg, DomainSuspended(domain="elsewhere.example"))
    assert suspended.final_state == "done"
    assert "nothing to bypass" in suspended.outcome.result["message"]
    assert calls(sandbox, "spamport", "function=set_filter") == []


def test_spambarrier_bypass_tags_spam_and_restores_the_treatment_it_had(tmp_path, sandbox):
    cfg = config(tmp_path, sandbox, "spambarrier", on_suspend="bypass")
    deliver(cfg, DomainCreated(domain="owed.example"))
    domains = sandbox["spambarrier"].emulator.domains
    domains["owed.example"]["filter"].update(spam_treatment="reject", greylisting=1)  # not defaults
    (suspended,) = deliver(cfg, DomainSuspended(domain="owed.example", reason="expired"))
    assert "relayed unfiltered" in suspended.outcome.result["message"]
    settings = domains["owed.example"]["filter"]
    assert settings["spam_treatment"] == "tag" and not settings["greylisting"]
    assert settings["spam_threshold"] == 5 and settings["virus_treatment"] == "quarantine"
    deliver(cfg, DomainUnsuspended(domain="owed.example"))
    settings = domains["owed.example"]["filter"]
    assert settings["spam_treatment"] == "reject" and settings["greylisting"]
    assert settings["spam_threshold"] == 5


def test_a_vendor_that_cannot_bypass_refuses_it_in_the_config(tmp_path, sandbox):
    cfg = config(tmp_path, sandbox, "spamwall", on_suspend="bypass")
    with pytest.raises(ConfigError) as info:
        load_runtime(cfg)
    assert "[vendors.spamwall] on_suspend" in str(info.value)
    assert "SpamWall can only keep filtering a suspended domain" in str(info.value)
    cfg = config(tmp_path, sandbox, "spamport", on_suspend="pause")
    with pytest.raises(ConfigError) as info:
        load_runtime(cfg)
    assert "on_suspend: must be keep (filtering goes on) or bypass" in str(info.value)


def test_hook_domain_suspended(tmp_path, sandbox):
    cfg = config(tmp_path, sandbox, "spamport", on_suspend="bypass")
    rt = load_runtime(cfg)
    rt.deliver(DomainCreated(domain="owed.example"))
    done = rt.call("spamport", "domain_suspended", event=DomainSuspended(domain="owed.example"))
    assert done == {"message": "owed.example suspended; mail is relayed unfiltered (on_suspend = "
                    "bypass)"}  # fmt: skip
    assert rt.contexts["spamport"].state.read()["suspended"] == {
        "owed.example": {"filtering": True}
    }


def test_hook_domain_unsuspended(tmp_path, sandbox):
    cfg = config(tmp_path, sandbox, "spamport", on_suspend="bypass")
    rt = load_runtime(cfg)
    rt.deliver(DomainCreated(domain="owed.example"))
    rt.call("spamport", "domain_suspended", event=DomainSuspended(domain="owed.example"))
    done = rt.call("spamport", "domain_unsuspended", event=DomainUnsuspended(domain="owed.example"))
    assert done == {"message": "owed.example unsuspended; its filtering is as it was before"}
    assert rt.contexts["spamport"].state.read()["suspended"] == {}
    assert sandbox["spamport"].emulator.domains["owed.example"]["noscan"] == "0"


def test_a_burst_of_suspensions_is_one_write_per_account_and_all_delivered(tmp_path, sandbox):
    import json as _json

    from queue_helpers import add_table

    from spamfilter_plugin.panels.hook import run

    names = [f"d{i:03}.example" for i in range(200)]
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/userdomains").write_text("".join(f"{n}: dave\n" for n in names))
    (root / "var/cpanel/users").mkdir(parents=True)
    (root / "var/cpanel/users/dave").write_text("USER=dave\nDNS=d000.example\n")
    cfg = config(tmp_path, sandbox, "spamport", concurrency=8)
    add_table(cfg, "panel", {"kind": "cpanel", "root": str(root)})
    payload = {
        "context": {"category": "Whostmgr", "event": "Accounts::suspendacct", "stage": "post"},
        "data": {"user": "dave", "reason": "expired"},
    }
    assert run("cpanel", [], config=str(cfg), env={}, stdin=_json.dumps(payload)) == 0
    with queue_of(load_runtime(cfg).config) as queue:
        rows = [r for r in queue.rows(limit=500) if r.hook == "domain_suspended"]
        assert len(rows) == 200 and len({r.created_at for r in rows}) == 1  # one transaction
        assert len(queue.suspensions()) == 200
    stats = Worker(load_runtime(cfg)).drain()
    assert stats.done == 200 and sandbox["spamport"].emulator.requests == []  # keep: no call


def cpanel_root(tmp_path, domain: str, user: str, mailboxes: list[str]):
    """A cPanel server's records: *user* owns *domain* and its *mailboxes* (local parts)."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/userdomains").write_text(f"{domain}: {user}\n")
    (root / "var/cpanel/users").mkdir(parents=True)
    (root / "var/cpanel/users" / user).write_text(f"USER={user}\nDNS={domain}\n")
    passwd = root / "home" / user / "etc" / domain / "passwd"
    passwd.parent.mkdir(parents=True)
    passwd.write_text("".join(f"{m}:x:1000:1000::/home/{user}/mail/{domain}/{m}:/bin/false\n"
                              for m in mailboxes))  # fmt: skip
    return root


def test_rackspace_bypass_turns_each_mailbox_off_and_puts_back_what_each_had(tmp_path, sandbox):
    from queue_helpers import add_table

    boxes = sandbox["rackspace"].emulator.mailboxes

    def settings(mailbox: str) -> dict:  # the emulator replaces the dict on each change
        return boxes[("12345678", "example.com", mailbox)]["settings"]

    # not the defaults: jane's filtering was already off, alex's went to the domain quarantine
    settings("alex.smith").update(filterLevel="exclusive", sendToDomainQuarantine=True,
                                  quarantineOwner="boss@example.com")  # fmt: skip
    settings("jane.doe").update(filterLevel="off")
    before = {m: dict(settings(m)) for m in ("alex.smith", "jane.doe")}
    # the panel lists a third mailbox that Rackspace does not host: skipped, not failed
    root = cpanel_root(tmp_path, "example.com", "ex", ["alex.smith", "jane.doe", "local.only"])
    cfg = config(tmp_path, sandbox, "rackspace", on_suspend="bypass")
    add_table(cfg, "panel", {"kind": "cpanel", "root": str(root)})
    (suspended,) = deliver(cfg, DomainSuspended(domain="example.com", reason="unpaid"))
    assert suspended.final_state == "done", suspended.outcome
    assert "relayed unfiltered" in suspended.outcome.result["message"]
    assert settings("alex.smith")["filterLevel"] == "off"
    assert settings("alex.smith")["sendToDomainQuarantine"] is False  # what "off" forces
    assert settings("jane.doe")["filterLevel"] == "off"
    deliver(cfg, DomainSuspended(domain="example.com"))  # twice: the memory is the first one's
    (lifted,) = deliver(cfg, DomainUnsuspended(domain="example.com"))
    assert lifted.final_state == "done", lifted.outcome
    assert {m: settings(m) for m in before} == before


def test_rackspace_bypass_without_a_panel_list_of_mailboxes_changes_nothing(tmp_path, sandbox):
    cfg = config(tmp_path, sandbox, "rackspace", on_suspend="bypass")  # no [panel]: no list
    sandbox["rackspace"].emulator.requests.clear()
    (suspended,) = deliver(cfg, DomainSuspended(domain="example.com"))
    assert suspended.final_state == "done"
    assert "nothing to bypass" in suspended.outcome.result["message"]
    assert sandbox["rackspace"].emulator.requests == []
    key = ("12345678", "example.com", "alex.smith")
    assert sandbox["rackspace"].emulator.mailboxes[key]["settings"]["filterLevel"] == "on"


def test_tornevall_keeps_filtering_and_refuses_bypass(tmp_path, sandbox):
    cfg = config(tmp_path, sandbox, "tornevall", on_suspend="bypass")
    with pytest.raises(ConfigError) as info:
        load_runtime(cfg)
    assert "[vendors.tornevall] on_suspend" in str(info.value)
    assert "no switch that stops filtering" in str(info.value)
    cfg = config(tmp_path, sandbox, "tornevall")
    sandbox["tornevall"].emulator.requests.clear()
    (suspended,) = deliver(cfg, DomainSuspended(domain="example.com", reason="unpaid"))
    assert suspended.final_state == "done"
    assert "filtering goes on (on_suspend = keep)" in suspended.outcome.result["message"]
    assert sandbox["tornevall"].emulator.requests == []
