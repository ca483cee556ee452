"""One test per hookspec (the meta-test in test_meta.py checks they exist),
each through the real manager, the toy vendor, its client and real HTTP."""

import pytest
import toyvendor_plugin
from marshmallow import Schema

from spamfilter_plugin.errors import VendorAuthError
from spamfilter_plugin.events import (
    Domain,
    DomainCreated,
    DomainDeleted,
    DomainUpdated,
    MailboxAdded,
    MailboxDeleted,
    PasswordReset,
)
from spamfilter_plugin.hookspecs import hookimpl
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.redaction import Secret
from spamfilter_plugin.templating import Fragment, SettingsResult


class FakePanel:
    def __init__(self, answer=True):
        self.published = []
        self.answer = answer

    @hookimpl
    def publish_dns_record(self, domain, record_type, name, value):
        self.published.append((str(domain), record_type, name, value))
        return self.answer


@pytest.fixture
def panel():
    return FakePanel()


@pytest.fixture
def rt(toy_config, panel):
    return load_runtime(toy_config, plugins=[("panel", panel)])


def test_hook_vendor_config_schema(rt):
    schema = rt.pm.hook.vendor_config_schema()
    assert issubclass(schema, Schema) and schema is toyvendor_plugin.ToySchema
    assert rt.config.vendors["toy"]["strict_default"] is False  # the schema's default was applied


def test_hook_vendor_check(rt, toy_emulator):
    out = rt.check("toy")
    assert out.ok and out.result == "authenticated as acme"
    toy_emulator.state.token = "rotated"
    out = rt.check("toy")
    assert isinstance(out.error, VendorAuthError)


def test_hook_domain_created(rt, toy_emulator, panel):
    result = rt.call("toy", "domain_created", event=DomainCreated(domain="Made.example"))
    assert toy_emulator.state.domains["made.example"]["destination"] == "mail.provider.example"
    assert result["dns_records"][0] == {
        "type": "TXT",
        "name": "_toy.made.example",
        "value": "toy-verify-12",
        "published": True,
    }
    assert panel.published == [("made.example", "TXT", "_toy.made.example", "toy-verify-12")]


def test_hook_domain_deleted(rt, toy_emulator):
    toy_emulator.state.domains["gone.example"] = {}
    assert rt.call("toy", "domain_deleted", event=DomainDeleted(domain="gone.example")) is None
    assert "gone.example" not in toy_emulator.state.domains
    again = rt.call("toy", "domain_deleted", event=DomainDeleted(domain="gone.example"))
    assert again == {"message": "was already absent"}


def test_hook_domain_updated(rt, toy_emulator):
    toy_emulator.state.domains["moved.example"] = {"destination": "old.example"}
    rt.call(
        "toy",
        "domain_updated",
        event=DomainUpdated(domain="moved.example", destination="2001:db8::25"),
    )
    assert toy_emulator.state.domains["moved.example"]["destination"] == "2001:db8::25"


def test_hook_mailbox_added(rt, toy_emulator):
    assert rt.handles("toy", "mailbox_added")
    before = len(toy_emulator.state.requests)
    assert rt.call("toy", "mailbox_added", event=MailboxAdded(mailbox="a@example.com")) is None
    assert len(toy_emulator.state.requests) == before  # toy filters per domain: no API call


def test_hook_mailbox_deleted(rt, toy_emulator):
    before = len(toy_emulator.state.requests)
    assert rt.call("toy", "mailbox_deleted", event=MailboxDeleted(mailbox="a@example.com")) is None
    assert len(toy_emulator.state.requests) == before


def test_hook_password_reset(rt):
    generated = rt.call("toy", "password_reset", event=PasswordReset(domain="example.com"))
    assert isinstance(generated["password"], Secret) and len(generated["password"].reveal()) >= 12
    chosen = rt.call(
        "toy",
        "password_reset",
        event=PasswordReset(mailbox="a@example.com", password=Secret("Chosen&pw#1")),
    )
    assert chosen["password"].reveal() == "Chosen&pw#1"


def test_hook_settings_fragments(rt, toy_emulator):
    toy_emulator.state.domains["shown.example"] = {"destination": "<b>evil</b>", "strict": True}
    frags = rt.settings_fragments("domain", Domain("shown.example"), csrf_token='tok"en')
    assert len(frags) == 1 and isinstance(frags[0], Fragment)
    html = str(frags[0].html)
    assert "&lt;b&gt;evil&lt;/b&gt;" in html and "<b>evil" not in html
    assert 'name="csrf_token" value="tok&#34;en"' in html
    assert 'name="strict" type="checkbox" value="1" checked' in html
    admin = rt.settings_fragments("admin", None, csrf_token="t")
    assert "shown.example" in str(admin[0].html)
    assert rt.settings_fragments("mailbox", None, csrf_token="t") == []


def test_hook_settings_submitted(rt, toy_emulator):
    toy_emulator.state.domains["form.example"] = {"destination": "x.example", "strict": False}
    ok = rt.call(
        "toy",
        "settings_submitted",
        scope="domain",
        target=Domain("form.example"),
        form={"strict": "1"},
    )
    assert ok == SettingsResult(True, "Saved.", changed=("strict",))
    assert toy_emulator.state.domains["form.example"]["strict"] is True
    bad = rt.call(
        "toy",
        "settings_submitted",
        scope="domain",
        target=Domain("form.example"),
        form={"strict": "maybe"},
    )
    assert not bad.ok and "strict" in bad.errors


def test_hook_inventory_domains(rt, toy_emulator):
    assert rt.call("toy", "inventory_domains") == []
    toy_emulator.state.domains.update({"b.example": {}, "a.example": {}})
    assert rt.call("toy", "inventory_domains") == ["a.example", "b.example"]


def test_hook_publish_dns_record(rt, panel):
    ctx = rt.contexts["toy"]
    assert ctx.panel.publish_dns_record(Domain("z.example"), "TXT", "_v.z.example", "abc") is True
    assert panel.published[-1] == ("z.example", "TXT", "_v.z.example", "abc")
    panel.answer = None
    assert ctx.panel.publish_dns_record(Domain("z.example"), "TXT", "_v.z.example", "abc") is None


class Feature:
    """A built-in feature as the host registers one: it asks for a step after each
    domain creation, and carries out that step itself."""

    def __init__(self):
        self.seen, self.ran, self.recorded, self.chores = [], [], [], []

    @hookimpl
    def delivery_succeeded(self, host, vendor, hook, event):
        from spamfilter_plugin.events import VendorStep

        self.seen.append((vendor.name, hook, str(event.target)))
        if hook == "domain_created":
            return [VendorStep(domain=event.domain, step="feature_probe", data={"n": 1})]
        return None

    @hookimpl
    def step_run(self, host, vendor, event):
        if event.step != "feature_probe":
            return None
        self.ran.append((vendor.name, str(event.domain), event.data, host.config.general.mail_host))
        return {"message": "probed"}

    @hookimpl
    def deliveries_recorded(self, host, queue, deliveries):
        self.recorded.append([(d.row.hook, d.final_state) for d in deliveries])

    @hookimpl
    def worker_chores(self, host, queue, now):
        self.chores.append((now, len(queue.rows(limit=10))))
        if now < 0:
            raise RuntimeError("a chore that breaks")


def _with_feature(toy_config):
    from spamfilter_plugin.worker import Worker

    feature = Feature()
    return feature, Worker(load_runtime(toy_config, plugins=[("feature", feature)]))


def test_hook_delivery_succeeded(toy_config, toy_emulator):
    from spamfilter_plugin import intake

    feature, worker = _with_feature(toy_config)
    intake.enqueue(worker.queue, [DomainCreated(domain="f.example")], vendors=["toy"])
    stats = worker.drain()
    assert [d.row.hook for d in stats.deliveries] == ["domain_created", "vendor_step"]
    assert ("toy", "domain_created", "f.example") in feature.seen
    step = stats.deliveries[1].row
    assert step.payload["step"] == "feature_probe" and step.target == "domain:f.example"


def test_hook_step_run(toy_config, toy_emulator):
    from spamfilter_plugin import intake

    feature, worker = _with_feature(toy_config)
    intake.enqueue(worker.queue, [DomainCreated(domain="g.example")], vendors=["toy"])
    stats = worker.drain()
    assert feature.ran == [("toy", "g.example", {"n": 1}, "mail.provider.example")]
    assert stats.deliveries[-1].outcome.result == {"message": "probed"}
    # the vendor never saw the step: only its domain creation reached the emulator
    assert [r["method"] for r in toy_emulator.state.requests] == ["PUT"]


def test_hook_deliveries_recorded(toy_config, toy_emulator):
    from spamfilter_plugin import intake

    feature, worker = _with_feature(toy_config)
    intake.enqueue(worker.queue, [DomainCreated(domain="h.example")], vendors=["toy"])
    worker.drain()
    delivered = [d for batch in feature.recorded for d in batch]
    assert ("domain_created", "done") in delivered and ("vendor_step", "done") in delivered


def test_hook_worker_chores(toy_config, toy_emulator, caplog):
    from spamfilter_plugin import intake

    feature, worker = _with_feature(toy_config)
    intake.enqueue(worker.queue, [DomainCreated(domain="i.example")], vendors=["toy"])
    worker.runtime.chores(worker.queue, 1234.5)
    assert feature.chores == [(1234.5, 1)]
    worker.runtime.chores(worker.queue, -1.0)  # it fails: logged, the worker goes on
    assert "its periodic work failed" in caplog.text
