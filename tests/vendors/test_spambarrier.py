"""spambarrier end to end: the shared contract, every method in every error shape and both
whitelist spellings, the TXT verification flow through the queue and the worker, and the
four settings pages, all against the emulator over loopback HTTP."""

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import requests
from queue_helpers import put

from spamfilter_plugin.errors import (
    ConfigError,
    VendorAuthError,
    VendorConflict,
    VendorNotFound,
    VendorRejected,
    VendorResponseError,
    VendorUnavailable,
)
from spamfilter_plugin.events import (
    Domain,
    DomainCreated,
    DomainDeleted,
    DomainUpdated,
    Mailbox,
    VendorStep,
)
from spamfilter_plugin.hookspecs import hookimpl
from spamfilter_plugin.http import HttpClient, HttpPolicy
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.queue import open_queue
from spamfilter_plugin.redaction import Secret
from spamfilter_plugin.sandbox.spambarrier import API_TOKEN, USER_ID
from spamfilter_plugin.testing import VendorContract, write_config
from spamfilter_plugin.vendors.spambarrier import FilterSettings, SpamBarrierClient
from spamfilter_plugin.worker import Worker

SPAMFILTER = shutil.which("spamfilter") or os.path.join(
    os.path.dirname(sys.executable), "spamfilter"
)


class TestSpamBarrier(VendorContract):
    vendor_name = "spambarrier"
    secrets = (API_TOKEN,)

    def vendor_table(self, url):
        return {"api_url": url, "user_id": USER_ID, "api_token": API_TOKEN}

    def bad_credentials_table(self, url):
        return {"api_url": url, "user_id": USER_ID, "api_token": "wrong-token"}

    def held(self, emulator, target):
        record = emulator.emulator.domains.get(target.name) if isinstance(target, Domain) else None
        return None if record is None else {"destination": record["host"], "settings": record}


# -- helpers ---------------------------------------------------------------------------


def api(sandbox, **kw):
    return SpamBarrierClient(
        HttpClient("spambarrier", sandbox.url), USER_ID, Secret(API_TOKEN), **kw
    )


def methods(sandbox):
    """The methods the emulator received, in order."""
    return [json.loads(r["body"])["method"] for r in sandbox.emulator.requests]


def seed(sandbox, **data):
    requests.post(f"{sandbox.root}/_sandbox/seed", json=data, timeout=5).raise_for_status()


class DnsPanel:
    """A panel that publishes DNS records: what it publishes becomes visible to the vendor
    (the emulator's DNS) at once, or only when the test says so (``visible=False``)."""

    def __init__(self, sandbox, visible=True, answer=True):
        self.sandbox, self.visible, self.answer, self.published = sandbox, visible, answer, []

    @hookimpl
    def publish_dns_record(self, domain, record_type, name, value):
        self.published.append((str(domain), record_type, name, value))
        if self.visible and self.answer:
            seed(self.sandbox, dns={name: [value]})
        return self.answer

    def propagate(self):
        for _domain, _type, name, value in self.published:
            seed(self.sandbox, dns={name: [value]})


@pytest.fixture
def make_rt(tmp_path, spambarrier_sandbox):
    def make(panel=None, **table):
        vendor = {
            "api_url": spambarrier_sandbox.url,
            "user_id": USER_ID,
            "api_token": API_TOKEN,
            "retries": 0,
            **table,
        }
        general = {"mail_host": "mx.provider.example", "retry_base": 60.0, "retry_cap": 600.0}
        path = write_config(tmp_path / "c.toml", general, {"spambarrier": vendor})
        return load_runtime(path, plugins=[("panel", panel)] if panel else [])

    return make


def worker_for(rt, clock):
    return Worker(rt, open_queue(rt.config.general.state_dir, monotonic=lambda: clock[0]))


def enqueue(worker, event):
    return put(worker.queue, event, ["spambarrier"])


# -- the client, method by method --------------------------------------------------------


@pytest.mark.parametrize("shape", ["params", "error", "message_only"])
def test_every_method_in_every_error_shape(spambarrier_sandbox, shape):
    sb = spambarrier_sandbox
    seed(sb, error_shape=shape)
    c = api(sb)
    added = c.add_domain("Example.ORG", "mail.example.org")
    assert added.txt_record == "spambarrier-verify-54321" and added.domain_id == "54321"
    with pytest.raises(VendorConflict if shape != "message_only" else VendorRejected) as exc:
        c.add_domain("example.org", "mail.example.org")
    assert "domain already exists: example.org" in str(exc.value)
    c.edit_domain("example.org", "192.0.2.9", "auth@example.org", Secret("smtp-Pw-1"))
    (listed,) = c.get_domains()
    assert (listed.name, listed.host, listed.has_authentication) == (
        "example.org",
        "192.0.2.9",
        True,
    )
    assert sb.emulator.domains["example.org"]["password"] == "smtp-Pw-1"
    c.set_filter_settings("example.org", FilterSettings("tag", 6.5, "reject", True))
    assert c.get_filter_settings("example.org") == FilterSettings("tag", 6.5, "reject", True)
    sent = json.loads(sb.emulator.requests[-2]["body"])["params"]
    assert sent["greylisting"] == 1 and sent["spam_threshold"] == 6.5  # as the document shows
    assert c.confirm_txt_record("example.org") is False
    seed(sb, dns={"example.org": ["spambarrier-verify-54321"]})
    assert c.confirm_txt_record("example.org") is True
    assert c.get_domains()[0].confirmed is True
    first, second, *_ = c.get_quarantine("example.org")
    c.resend_quarantine_message("example.org", first.message_id)
    c.delete_quarantine_message("example.org", second.message_id)
    assert sb.emulator.resent == [("example.org", first.message_id)]
    left = {m.message_id for m in c.get_quarantine("example.org")}
    assert first.message_id not in left and second.message_id not in left
    with pytest.raises(VendorNotFound if shape != "message_only" else VendorRejected):
        c.delete_quarantine_message("example.org", second.message_id)
    c.add_whitelist_entry("example.org", "partner.example", "ann@example.org")
    c.add_whitelist_entry("example.org", "partner.example", "ann@example.org")  # there already
    (entry,) = c.get_whitelist_entries("example.org")
    assert (entry.sender, entry.recipient) == ("partner.example", "ann@example.org")
    c.delete_whitelist_entry("example.org", entry.id)
    c.delete_whitelist_entry("example.org", entry.id)  # gone already: a success
    assert c.get_whitelist_entries("example.org") == []
    c.delete_domain("example.org")
    c.delete_domain("example.org")  # gone already: a success, in every shape
    assert c.get_domains() == []


def test_refused_credentials_in_every_shape_are_an_auth_error(spambarrier_sandbox):
    for shape in ("params", "error"):
        seed(spambarrier_sandbox, error_shape=shape)
        bad = SpamBarrierClient(
            HttpClient("spambarrier", spambarrier_sandbox.url), USER_ID, Secret("nope")
        )
        with pytest.raises(VendorAuthError) as exc:
            bad.get_domains()
        assert "(spambarrier said: user_id or api_token is " in str(exc.value)
        assert "nope" not in str(exc.value)


def test_edit_domain_answering_without_params_is_a_success(spambarrier_sandbox):
    c = api(spambarrier_sandbox)
    c.add_domain("example.org", "mail.example.org")
    assert c.edit_domain("example.org", "mail2.example.org") is None
    assert spambarrier_sandbox.emulator.domains["example.org"]["host"] == "mail2.example.org"
    assert spambarrier_sandbox.emulator.requests[-1]["status"] == 200


@pytest.mark.parametrize(
    "server,first_try,learned",
    [("both", "get-whitelistentries", "document"), ("client", "get-whitelistentries", "client")],
)
def test_whitelist_spelling_falls_back_once_and_is_remembered(
    spambarrier_sandbox, server, first_try, learned
):
    sb = spambarrier_sandbox
    api(sb).add_domain("example.org", "mail.example.org")
    seed(sb, whitelist_spelling=server)
    told = []
    c = api(sb, on_spelling=told.append)
    before = len(sb.emulator.requests)
    c.get_whitelist_entries("example.org")
    tried = methods(sb)[before:]
    assert tried[0] == first_try
    assert len(tried) == (1 if server == "both" else 2)
    assert c.spelling == learned and told == [learned]
    before = len(sb.emulator.requests)
    c.add_whitelist_entry("example.org", "a@b.example", "u@example.org")
    assert methods(sb)[before:] == (
        ["get-whitelistentries", "add-whitelistentry"]
        if learned == "document"
        else ["get-whitelist-entries", "add-whitelist-entry"]
    )  # the known spelling at once, no second try
    assert told == [learned]


def test_a_server_knowing_neither_spelling_is_a_clear_error(spambarrier_sandbox):
    c = api(spambarrier_sandbox, spelling="client")
    api(spambarrier_sandbox).add_domain("example.org", "mail.example.org")
    seed(spambarrier_sandbox, whitelist_spelling="document")
    with pytest.raises(VendorRejected, match="unknown method: get-whitelist-entries"):
        c.get_whitelist_entries("example.org")  # a known spelling is not second-guessed


def test_answers_outside_the_envelope_are_response_errors(spambarrier_sandbox):
    sb = spambarrier_sandbox
    sb.emulator.faults.configure(queue=["malformed"])
    with pytest.raises(VendorResponseError, match="not JSON"):
        api(sb).get_domains()
    seed(sb, error_shape="params")
    sb.emulator.faults.configure(queue=["html"])
    once = HttpClient("spambarrier", sb.url, policy=HttpPolicy(retries=0))
    with pytest.raises(VendorUnavailable, match="HTTP 502"):
        SpamBarrierClient(once, USER_ID, Secret(API_TOKEN)).get_domains()


@pytest.mark.parametrize(
    "url,ok",
    [
        ("https://www.spambarrier.de/api/", True),
        ("http://127.0.0.1:9/api/", True),
        ("http://localhost:9/api/", True),
        ("http://[::1]:9/api/", True),
        ("http://www.spambarrier.de/api/", False),
        ("http://192.0.2.1/api/", False),
    ],
)
def test_only_https_or_loopback(tmp_path, url, ok):
    path = write_config(
        tmp_path / "c.toml", {}, {"spambarrier": {"api_url": url, "user_id": 1, "api_token": "t"}}
    )
    if ok:
        assert load_runtime(path).contexts["spambarrier"].config["api_url"] == url
        SpamBarrierClient(HttpClient("spambarrier", url), 1, Secret("t"))
        return
    with pytest.raises(ConfigError, match=r"api_url.*only over HTTPS"):
        load_runtime(path)
    with pytest.raises(ConfigError, match="only over HTTPS"):
        SpamBarrierClient(HttpClient("spambarrier", url), 1, Secret("t"))


@pytest.mark.parametrize(
    "extra,named",
    [
        ({"spam_treatment": "delete"}, "spam_treatment: Must be one of: reject, quarantine, tag"),
        ({"smtp_username": "auth@example.org"}, "smtp_password: give both smtp_username"),
        ({"verify_hours": 0}, "verify_hours: must be over 0"),
        ({"user_id": "12345"}, "user_id: must be a whole number"),
    ],
)
def test_config_names_bad_keys(tmp_path, extra, named):
    table = {"user_id": 1, "api_token": "t", **extra}
    path = write_config(tmp_path / "c.toml", {}, {"spambarrier": table})
    with pytest.raises(ConfigError) as exc:
        load_runtime(path)
    assert f"[vendors.spambarrier] {named}" in str(exc.value)


# -- lifecycle and TXT verification ----------------------------------------------------------


def test_domain_created_with_a_panel_that_publishes_dns(make_rt, spambarrier_sandbox):
    panel = DnsPanel(spambarrier_sandbox)
    rt = make_rt(panel, spam_treatment="reject", spam_threshold=7, greylisting=True)
    (out,) = rt.deliver(DomainCreated(domain="example.org"))
    assert out.ok and "verified" in out.result["message"] and "steps" not in out.result
    assert panel.published == [("example.org", "TXT", "example.org", "spambarrier-verify-54321")]
    held = spambarrier_sandbox.emulator.domains["example.org"]
    assert held["confirmed"] is True and held["host"] == "mx.provider.example"
    assert held["filter"] == {
        "spam_treatment": "reject",
        "spam_threshold": 7,
        "virus_treatment": "quarantine",
        "greylisting": 1,
    }
    assert methods(spambarrier_sandbox) == [
        "add-domain",
        "set-filter-settings",
        "get-domains",
        "confirm-txt-record",
    ]


def test_domain_created_with_smtp_authentication(make_rt, spambarrier_sandbox):
    rt = make_rt(smtp_username="relay@example.org", smtp_password="Relay-Pw-9")
    (out,) = rt.deliver(DomainCreated(domain="example.org", destination="192.0.2.30"))
    assert out.ok
    held = spambarrier_sandbox.emulator.domains["example.org"]
    assert (held["host"], held["username"], held["password"]) == (
        "192.0.2.30",
        "relay@example.org",
        "Relay-Pw-9",
    )


def test_hook_vendor_step(make_rt, spambarrier_sandbox, tmp_path):
    """A record that becomes visible only after two failed confirms: the step is retried
    with backoff on its own, and the domain's other calls are not repeated."""
    panel = DnsPanel(spambarrier_sandbox, visible=False)
    rt, clock = make_rt(panel), [1000.0]
    w = worker_for(rt, clock)
    enqueue(w, DomainCreated(domain="example.org"))
    created = w.run_one()
    assert created.final_state == "done"
    assert w.queue.get(created.row.id).result["steps"] == ["confirm_txt"]
    assert created.outcome.result["dns_records"] == [
        {
            "type": "TXT",
            "name": "example.org",
            "value": "spambarrier-verify-54321",
            "published": True,
        }
    ]
    step_row = next(r for r in w.queue.rows() if r.hook == "vendor_step")
    clock[0] += 10_000
    attempt = w.run_one()  # the second failed confirm (the first was at once)
    assert attempt.row.id == step_row.id and attempt.final_state == "pending"
    row = w.queue.get(step_row.id)
    assert row.error_type == "VendorWaiting" and row.attempts == 1
    assert 'example.org. TXT "spambarrier-verify-54321"' in row.last_error
    assert 30 <= row.next_at - row.updated_at <= 60  # the worker's backoff (retry_base 60)
    panel.propagate()
    assert w.run_one() is None  # not due yet: the backoff holds
    clock[0] += 10_000
    done = w.run_one()
    assert done.final_state == "done" and "after 3 checks" in done.outcome.result["message"]
    assert methods(spambarrier_sandbox).count("add-domain") == 1
    assert methods(spambarrier_sandbox).count("set-filter-settings") == 1
    assert methods(spambarrier_sandbox).count("confirm-txt-record") == 3  # 2 failed, 1 found
    assert spambarrier_sandbox.emulator.domains["example.org"]["confirmed"] is True
    state = json.loads((tmp_path / "state" / "state-spambarrier.json").read_text())
    assert state["domains"]["example.org"]["state"] == "verified"


def test_without_a_panel_for_dns_the_record_is_shown_and_verify_now_works(
    make_rt, spambarrier_sandbox, tmp_path
):
    rt, clock = make_rt(), [1000.0]
    w = worker_for(rt, clock)
    enqueue(w, DomainCreated(domain="example.org"))
    w.run_one()
    clock[0] += 10_000
    w.run_one()
    step_row = next(r for r in w.queue.rows() if r.hook == "vendor_step")
    assert step_row.payload["data"]["record"] == {
        "type": "TXT",
        "name": "example.org",
        "value": "spambarrier-verify-54321",
    }
    assert "publish it: the panel could not" in w.queue.get(1).result["message"]
    page = html_of(rt.settings_fragments("domain", Domain("example.org"), "tok"), "domain")
    assert "Waiting for verification" in page and "spambarrier-verify-54321" in page
    assert "No panel on this server could publish it" in page and "Verify now" in page
    res = rt.settings_submitted(
        "spambarrier", "domain", Domain("example.org"), {"action": "verify"}
    )
    assert not res.ok and "spambarrier-verify-54321" in res.message
    seed(spambarrier_sandbox, dns={"example.org": ["spambarrier-verify-54321"]})
    res = rt.settings_submitted(
        "spambarrier", "domain", Domain("example.org"), {"action": "verify"}
    )
    assert res.ok and spambarrier_sandbox.emulator.domains["example.org"]["confirmed"]
    page = html_of(rt.settings_fragments("domain", Domain("example.org"), "tok"), "domain")
    assert "Verified" in page and "Verify now" not in page


def test_queue_show_shows_the_record(make_rt, tmp_path):
    rt = make_rt()
    w = Worker(rt)
    enqueue(w, DomainCreated(domain="example.org"))
    w.run_one()
    step_row = next(r for r in w.queue.rows() if r.hook == "vendor_step")
    proc = subprocess.run(
        [SPAMFILTER, "--config", str(tmp_path / "c.toml"), "queue", "show", str(step_row.id)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "spambarrier-verify-54321" in proc.stdout and "confirm_txt" in proc.stdout


def test_a_record_never_seen_leaves_the_domain_unverified(make_rt, spambarrier_sandbox):
    rt, clock = make_rt(verify_hours=1e-6), [1000.0]
    w = worker_for(rt, clock)
    enqueue(w, DomainCreated(domain="example.org"))
    w.run_one()
    time.sleep(0.01)
    clock[0] += 10_000
    step = w.run_one()
    assert step.final_state == "done" and "left unverified" in step.outcome.result["message"]
    assert step.outcome.result["dns_records"][0]["value"] == "spambarrier-verify-54321"
    page = html_of(rt.settings_fragments("domain", Domain("example.org"), "t"), "domain")
    assert "Not verified" in page and "spambarrier-verify-54321" in page


def test_deleting_the_domain_supersedes_its_waiting_step(make_rt, spambarrier_sandbox):
    rt, clock = make_rt(), [1000.0]
    w = worker_for(rt, clock)
    enqueue(w, DomainCreated(domain="example.org"))
    w.run_one()
    enqueue(w, DomainDeleted(domain="example.org"))
    deleted = w.run_one()
    assert deleted.row.hook == "domain_deleted" and deleted.final_state == "done"
    assert {r.state for r in w.queue.rows() if r.hook == "vendor_step"} == {"superseded"}
    assert "example.org" not in spambarrier_sandbox.emulator.domains


def test_a_step_for_a_domain_gone_meanwhile_ends_quietly(make_rt, spambarrier_sandbox):
    rt = make_rt()
    step = VendorStep(
        domain="gone.example",
        step="confirm_txt",
        data={"record": {"type": "TXT", "name": "gone.example", "value": "x"}, "until": 9e9},
    )
    (out,) = rt.deliver(step)
    assert out.ok and "no longer at spambarrier" in out.result["message"]


def test_created_twice_and_updated(make_rt, spambarrier_sandbox):
    rt = make_rt()
    rt.deliver(DomainCreated(domain="example.org"))
    (again,) = rt.deliver(DomainCreated(domain="example.org", destination="192.0.2.44"))
    assert again.ok and "steps" in again.result  # the record stored the first time is reused
    assert spambarrier_sandbox.emulator.domains["example.org"]["host"] == "192.0.2.44"
    (upd,) = rt.deliver(DomainUpdated(domain="example.org", destination="mail3.example.org"))
    assert upd.ok and spambarrier_sandbox.emulator.domains["example.org"]["host"] == (
        "mail3.example.org"
    )
    (new,) = rt.deliver(DomainUpdated(domain="fresh.example", destination="192.0.2.45"))
    assert new.ok and spambarrier_sandbox.emulator.domains["fresh.example"]["host"] == "192.0.2.45"


# -- the pages -------------------------------------------------------------------------------


def html_of(fragments, name):
    (frag,) = [f for f in fragments if f.name == name]
    return str(frag.html)


@pytest.fixture
def rt_with_domain(make_rt, spambarrier_sandbox):
    rt = make_rt(DnsPanel(spambarrier_sandbox))
    (out,) = rt.deliver(DomainCreated(domain="example.org"))
    assert out.ok
    return rt


def test_every_fragment_is_rendered_for_a_domain(rt_with_domain):
    frags = rt_with_domain.settings_fragments("domain", Domain("example.org"), "tok<1>")
    assert [f.name for f in frags] == ["domain", "quarantine", "statistics", "whitelist"]
    for frag in frags:
        html = str(frag.html)
        assert 'name="csrf_token" value="tok&lt;1&gt;"' in html
        assert "<script" not in html.lower()
    domain = html_of(frags, "domain")
    for explained in ("Reject: refused", "Quarantine: kept", "Tag: delivered", "Greylisting"):
        assert explained in domain


def test_filter_form_is_applied_and_bad_values_name_the_field(rt_with_domain, spambarrier_sandbox):
    rt, target = rt_with_domain, Domain("example.org")
    form = {
        "csrf_token": "t",
        "action": "filter",
        "spam_treatment": "tag",
        "spam_threshold": "4.5",
        "virus_treatment": "reject",
        "greylisting": "1",
    }
    res = rt.settings_submitted("spambarrier", "domain", target, form)
    assert res.ok, res.message
    assert spambarrier_sandbox.emulator.domains["example.org"]["filter"] == {
        "spam_treatment": "tag",
        "spam_threshold": 4.5,
        "virus_treatment": "reject",
        "greylisting": 1,
    }
    res = rt.settings_submitted("spambarrier", "domain", target, dict(form, spam_threshold="lots"))
    assert not res.ok and "spam_threshold" in res.errors
    page = html_of(rt.settings_fragments("domain", target, "t"), "domain")
    assert re.search(r'<option value="tag" selected>', page)


def test_quarantine_resend_and_delete(rt_with_domain, spambarrier_sandbox):
    rt, target = rt_with_domain, Domain("example.org")
    page = html_of(rt.settings_fragments("domain", target, "t"), "quarantine")
    ids = re.findall(r'name="message_id" value="(\d+)"', page)
    first, second = ids[0], ids[2]  # two forms (deliver, delete) per message
    res = rt.settings_submitted(
        "spambarrier", "domain", target, {"action": "resend", "message_id": first}
    )
    assert res.ok and spambarrier_sandbox.emulator.resent == [("example.org", first)]
    res = rt.settings_submitted(
        "spambarrier", "domain", target, {"action": "delete_message", "message_id": second}
    )
    assert res.ok
    left = [m["message_id"] for m in spambarrier_sandbox.emulator.quarantine["example.org"]]
    assert first not in left and second not in left
    res = rt.settings_submitted(
        "spambarrier", "domain", target, {"action": "delete_message", "message_id": second}
    )
    assert not res.ok and "not in the quarantine" in res.message


def test_a_mailbox_sees_and_touches_only_its_own_messages_and_entries(
    rt_with_domain, spambarrier_sandbox
):
    rt = rt_with_domain
    seed(
        spambarrier_sandbox,
        quarantine={
            "example.org": [
                {"message_id": 1, "to": "ann@example.org", "subject": "for ann"},
                {"message_id": 2, "to": "bob@example.org", "subject": "for bob"},
            ]
        },
    )
    ann = Mailbox("ann@example.org")
    frags = rt.settings_fragments("mailbox", ann, "t")
    assert [f.name for f in frags] == ["quarantine", "whitelist"]
    page = html_of(frags, "quarantine")
    assert "for ann" in page and "for bob" not in page
    res = rt.settings_submitted(
        "spambarrier", "mailbox", ann, {"action": "resend", "message_id": "2"}
    )
    assert not res.ok and spambarrier_sandbox.emulator.resent == []
    res = rt.settings_submitted(
        "spambarrier", "mailbox", ann, {"action": "whitelist_add", "sender": "friend.example"}
    )
    assert res.ok
    (entry,) = spambarrier_sandbox.emulator.whitelist["example.org"]
    assert (entry["from"], entry["to"]) == ("friend.example", "ann@example.org")
    bob = Mailbox("bob@example.org")
    assert "friend.example" not in html_of(rt.settings_fragments("mailbox", bob, "t"), "whitelist")
    res = rt.settings_submitted(
        "spambarrier", "mailbox", bob, {"action": "whitelist_delete", "entry_id": entry["id"]}
    )
    assert not res.ok and spambarrier_sandbox.emulator.whitelist["example.org"]
    res = rt.settings_submitted("spambarrier", "mailbox", ann, {"action": "verify"})
    assert not res.ok and "owner" in res.message


def test_a_hostile_message_body_is_shown_as_inert_text(rt_with_domain, spambarrier_sandbox):
    body = (
        'Subject: hi\r\n\r\n<script>alert("x")</script><img src=x onerror="alert(1)">'
        '<a href="javascript:alert(2)">click</a>'
    )
    seed(
        spambarrier_sandbox,
        quarantine={
            "example.org": [
                {"message_id": 7, "subject": "<b>bold</b>", "from": "x@evil.example", "body": body}
            ]
        },
    )
    page = html_of(
        rt_with_domain.settings_fragments("domain", Domain("example.org"), "t"), "quarantine"
    )
    lower = page.lower()
    assert "<script" not in lower and "<img" not in lower and "<a " not in lower
    assert "<b>" not in lower and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert re.search(r'<pre class="sfp-source">[^<]*&lt;script', page)


@pytest.mark.parametrize(
    "interval,start,end,bars",
    [("hour", -1, 0, 48), ("day", -6, 0, 7), ("month", -59, 0, None)],
)
def test_statistics_for_each_interval(rt_with_domain, interval, start, end, bars):
    today = dt.datetime.now(dt.UTC).date()
    query = {
        "stats_from": (today + dt.timedelta(days=start)).isoformat(),
        "stats_to": (today + dt.timedelta(days=end)).isoformat(),
        "stats_interval": interval,
    }
    rt = rt_with_domain
    page = html_of(rt.settings_fragments("domain", Domain("example.org"), "t", query), "statistics")
    client = SpamBarrierClient(
        HttpClient("spambarrier", rt.contexts["spambarrier"].config["api_url"]),
        USER_ID,
        Secret(API_TOKEN),
    )
    stats = client.get_domain_statistics(
        "example.org",
        dt.date.fromisoformat(query["stats_from"]),
        dt.date.fromisoformat(query["stats_to"]),
        interval,
    )
    if bars is not None:
        assert len(stats.intervals) == bars
    assert page.count("<g><title>") == len(stats.intervals)
    drawn = sum(1 for _, c in stats.intervals for v in (c.passed, c.spam, c.virus) if v)
    assert page.count("<rect ") == drawn
    t = stats.totals
    assert f"<td>{t.total}</td><td>{t.passed}</td><td>{t.spam}</td><td>{t.virus}</td>" in page
    assert "<svg" in page and "<script" not in page and "http://www.w3.org/2000/svg" in page
    assert "xlink" not in page and "href" not in page  # no external asset
    assert f'<option value="{interval}" selected>' in page


def test_statistics_for_an_empty_range_and_a_bad_query(rt_with_domain):
    rt, target = rt_with_domain, Domain("example.org")
    empty = {"stats_from": "2015-01-01", "stats_to": "2015-01-31", "stats_interval": "day"}
    page = html_of(rt.settings_fragments("domain", target, "t", empty), "statistics")
    assert "No mail for example.org from 2015-01-01 to 2015-01-31" in page
    assert "<svg" not in page and "<td>0</td><td>0</td><td>0</td><td>0</td>" in page
    bad = {"stats_from": "2026-02-30", "stats_interval": "week"}
    page = html_of(rt.settings_fragments("domain", target, "t", bad), "statistics")
    assert "stats_from" in page and "stats_interval" in page and "default range" in page
    too_long = {"stats_from": "2026-01-01", "stats_to": "2026-03-01", "stats_interval": "hour"}
    page = html_of(rt.settings_fragments("domain", target, "t", too_long), "statistics")
    assert "at most 14 days by hour" in page


def test_whitelist_page_add_and_delete(rt_with_domain, spambarrier_sandbox):
    rt, target = rt_with_domain, Domain("example.org")
    form = {"action": "whitelist_add", "sender": "customer@domain.com", "recipient": "x@other.org"}
    res = rt.settings_submitted("spambarrier", "domain", target, form)
    assert not res.ok and "recipient" in res.errors
    res = rt.settings_submitted(
        "spambarrier", "domain", target, dict(form, recipient="test@example.org")
    )
    assert res.ok
    page = html_of(rt.settings_fragments("domain", target, "t"), "whitelist")
    assert "customer@domain.com" in page and "test@example.org" in page
    (entry_id,) = re.findall(r'name="entry_id" value="(\d+)"', page)
    res = rt.settings_submitted(
        "spambarrier", "domain", target, {"action": "whitelist_delete", "entry_id": entry_id}
    )
    assert res.ok and spambarrier_sandbox.emulator.whitelist["example.org"] == []


def test_admin_page_lists_domains_and_their_verification(rt_with_domain, make_rt):
    (frag,) = rt_with_domain.settings_fragments("admin", None, "t")
    html = str(frag.html)
    assert "example.org" in html and "mx.provider.example" in html and "<td>yes</td>" in html
    res = rt_with_domain.settings_submitted("spambarrier", "admin", None, {"action": "filter"})
    assert not res.ok and "per domain" in res.message


def test_a_domain_not_at_spambarrier_gets_a_plain_note(make_rt):
    frags = make_rt().settings_fragments("domain", Domain("elsewhere.example"), "t")
    assert [f.name for f in frags] == ["absent"]
    assert "is not filtered by spambarrier" in str(frags[0].html)


def test_domain_exists_without_a_code_is_settled_by_reading_the_domain_list(
    make_rt, spambarrier_sandbox
):
    """The PHP client's error shape has no code: "domain already exists" cannot be told
    from another refusal by its words, so get-domains says what it means."""
    sb = spambarrier_sandbox
    seed(sb, error_shape="message_only")
    rt = make_rt()
    (first,) = rt.deliver(DomainCreated(domain="example.org", destination="mail.example.org"))
    assert first.ok
    # created again: spambarrier refuses with a bare message; it holds the domain with our
    # destination, so the event succeeds and nothing is edited
    (again,) = rt.deliver(DomainCreated(domain="example.org", destination="mail.example.org"))
    assert again.ok, again.error
    methods = [json.loads(r["body"])["method"] for r in sb.emulator.requests]
    assert "edit-domain" not in methods
    # with another destination: held elsewhere, so edit-domain brings it up to date
    (moved,) = rt.deliver(DomainCreated(domain="example.org", destination="192.0.2.9"))
    assert moved.ok, moved.error
    assert sb.emulator.domains["example.org"]["host"] == "192.0.2.9"
    # a bare refusal of a domain it does not hold stands (a dead row, with the vendor's words)
    sb.emulator.faults.configure(queue=["unclear"])
    (refused,) = rt.deliver(DomainCreated(domain="other.example", destination="192.0.2.9"))
    assert not refused.ok and refused.error.permanent
    assert "other.example" not in sb.emulator.domains
