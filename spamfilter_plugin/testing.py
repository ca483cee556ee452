"""Test support: the shared vendor contract, and helpers to run emulators on loopback.

``LoopbackServer`` and ``AbortConnection`` (from :mod:`.sandbox.server`) serve
WSGI apps on ``127.0.0.1``; ``write_config`` writes a private config file.

``VendorContract`` is the test class every vendor's test file subclasses in a
few lines (``tests/vendors/test_<vendor>.py``); it drives the vendor through the
real plugin manager, its real client and real HTTP against its emulator.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pytest

from .config.model import write_config
from .errors import VendorAuthError, VendorUnavailable, VendorUnclear
from .events import (
    Domain,
    DomainCreated,
    DomainDeleted,
    DomainUpdated,
    Event,
    Mailbox,
    MailboxAdded,
    MailboxDeleted,
    PasswordReset,
)
from .manager import Runtime, load_runtime
from .redaction import Secret
from .sandbox.server import AbortConnection, LoopbackServer
from .sync import inventory_entries

__all__ = ["AbortConnection", "LoopbackServer", "VendorContract", "closed_port_url", "write_config"]


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class VendorContract:
    """The shared contract every vendor passes (subclass it as ``Test<Vendor>``).

    A subclass sets ``vendor_name`` and provides:

    * an ``emulator`` fixture yielding an object with a ``url`` attribute: a sandbox
      emulator (``spamport_sandbox``...) or a started :class:`LoopbackServer` serving an
      :class:`~spamfilter_plugin.sandbox.base.Emulator`;
    * ``vendor_table(url)``: the ``[vendors.<name>]`` table that reaches it;
    * ``bad_credentials_table(url)``: the same with credentials the emulator refuses;
    * ``held(emulator, target)``: what the emulator now holds for a domain or mailbox
      (see its docstring), so the contract checks what each event did at the vendor;
    * ``no_op(event)`` (optional): True for an event the vendor handles by sending nothing;
    * ``secrets``: the secret values that must never be logged.

    Every check asserts on what the emulator received or holds, never only on the
    vendor's own answer.  Tests of behaviour a vendor does not implement (a hook it has
    no hookimpl for) are skipped, so the contract fits vendors that filter per domain
    and vendors that filter per mailbox alike.
    """

    vendor_name: ClassVar[str] = ""
    domain: ClassVar[str] = "contract-example.com"
    idn_domain: ClassVar[str] = "bücher-contract.example"
    mailbox: ClassVar[str] = "alice@contract-example.com"
    destination: ClassVar[str] = "mail.contract-example.net"
    #: ``general.mail_host`` of the contract's config (a vendor that resolves host names
    #: to route mail sets an IP here and as ``destination``)
    mail_host: ClassVar[str] = "mail.provider.example"
    secrets: ClassVar[tuple[str, ...]] = ()
    #: plugins to register directly, as ``(name, plugin)`` pairs (a vendor under test that
    #: is not installed); by default the installed entry point of ``vendor_name`` is used
    plugins: ClassVar[tuple[tuple[str, object], ...]] = ()

    # -- to override ------------------------------------------------------

    @pytest.fixture
    def emulator(self, request):
        """The sandbox emulator registered under ``vendor_name`` (its ``<name>_sandbox``
        fixture); override to serve another (a :class:`LoopbackServer`)."""
        name = f"{self.vendor_name}_sandbox"
        try:
            return request.getfixturevalue(name)
        except pytest.FixtureLookupError:
            raise NotImplementedError(
                f"no {name} fixture: register an emulator under {self.vendor_name!r} or give "
                f"{type(self).__name__} an 'emulator' fixture"
            ) from None

    def vendor_table(self, url: str) -> dict[str, Any]:  # pragma: no cover - always overridden
        raise NotImplementedError

    def bad_credentials_table(self, url: str) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def held(self, emulator: Any, target: Domain | Mailbox) -> dict[str, Any] | None:
        """What the emulator holds for *target*: None when it holds nothing for it, else a
        dict with whichever of these the vendor keeps: ``destination`` (the host or IP that
        receives the domain's clean mail, as the event gave it), ``password`` (the current
        password, revealed), ``settings`` (anything else the vendor stores for it)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement held(emulator, target): what the "
            "emulator holds for a domain or mailbox, so the contract can check each event"
        )

    def no_op(self, event: Event) -> bool:
        """True when the vendor handles *event* by design without calling its API (a
        per-domain vendor's mailbox events); the contract then checks nothing was sent."""
        return False

    # -- helpers ------------------------------------------------------------

    def make_runtime(self, tmp_path: Path, table: dict[str, Any]) -> Runtime:
        general = {"state_dir": str(tmp_path / "state"), "mail_host": self.mail_host}
        path = write_config(tmp_path / "config.toml", general, {self.vendor_name: table})
        return load_runtime(path, plugins=self.plugins)

    @pytest.fixture
    def runtime(self, emulator, tmp_path) -> Runtime:
        return self.make_runtime(tmp_path, self.vendor_table(emulator.url))

    def require(self, runtime: Runtime, *hooks: str) -> None:
        for hook in hooks:
            if not runtime.handles(self.vendor_name, hook):
                pytest.skip(f"{self.vendor_name} does not implement {hook}")

    def inventory(self, runtime: Runtime) -> list[str]:
        """The vendor's domain names, sorted (whether it reports routes or not)."""

        out = runtime.call_isolated(self.vendor_name, "inventory_domains")
        assert out.ok, out.error
        return sorted(entry.name or entry.raw for entry in inventory_entries(out.result))

    def deliver_ok(self, runtime: Runtime, event) -> Any:
        (out,) = runtime.deliver(event, vendors=[self.vendor_name])
        assert out.ok, f"{event.hook} failed: {out.error}"
        return out.result

    @staticmethod
    def received(emulator: Any) -> list[str]:
        """Every request the emulator received, one line each (method, path, query, body;
        secrets masked)."""
        app = getattr(emulator, "emulator", None) or getattr(emulator, "app", None)
        log = getattr(app, "requests", None)
        if app is None or log is None:
            raise TypeError(
                "the emulator fixture must be a sandbox emulator or a LoopbackServer serving "
                "an Emulator, whose request log the contract reads"
            )
        with app.lock:
            return [f"{r['method']} {r['path']} {r['query']} {r['body']}" for r in log]

    # -- the contract ---------------------------------------------------------

    def test_check_succeeds(self, runtime, emulator):
        before = len(self.received(emulator))
        out = runtime.check(self.vendor_name)
        assert out.ok, out.error
        assert isinstance(out.result, str) and out.result
        assert len(self.received(emulator)) > before, "the check made no call to the vendor"

    def test_check_with_bad_credentials_is_auth_error(self, emulator, tmp_path):
        rt = self.make_runtime(tmp_path, self.bad_credentials_table(emulator.url))
        out = rt.check(self.vendor_name)
        assert not out.ok
        assert isinstance(out.error, VendorAuthError), out.error
        assert out.error.permanent
        assert len(self.received(emulator)) == 1, "refused credentials must never be retried"

    def test_unreachable_vendor_is_temporary_failure(self, emulator, tmp_path):
        table = dict(self.vendor_table(closed_port_url()), retries=0, connect_timeout=1.0)
        rt = self.make_runtime(tmp_path, table)
        out = rt.check(self.vendor_name)
        assert not out.ok
        assert isinstance(out.error, VendorUnavailable), out.error
        assert not out.error.permanent

    def test_domain_created_is_listed(self, runtime, emulator):
        self.require(runtime, "domain_created", "inventory_domains")
        self.deliver_ok(runtime, DomainCreated(domain=self.domain, destination=self.destination))
        assert self.domain in self.inventory(runtime)
        held = self.held(emulator, Domain(self.domain))
        assert held is not None, f"the emulator holds nothing for {self.domain}"

    def test_domain_created_twice_succeeds(self, runtime, emulator):
        self.require(runtime, "domain_created", "inventory_domains")
        self.deliver_ok(runtime, DomainCreated(domain=self.domain))
        self.deliver_ok(runtime, DomainCreated(domain=self.domain, destination=self.destination))
        assert self.inventory(runtime).count(self.domain) == 1
        held = self.held(emulator, Domain(self.domain))
        assert held is not None
        if "destination" in held:  # the second creation brought the destination up to date
            assert held["destination"] == self.destination

    def test_domain_deleted_is_gone(self, runtime, emulator):
        self.require(runtime, "domain_created", "domain_deleted", "inventory_domains")
        self.deliver_ok(runtime, DomainCreated(domain=self.domain))
        self.deliver_ok(runtime, DomainDeleted(domain=self.domain))
        assert self.domain not in self.inventory(runtime)
        assert self.held(emulator, Domain(self.domain)) is None

    def test_domain_deleted_when_absent_succeeds(self, runtime, emulator):
        self.require(runtime, "domain_deleted")
        before = len(self.received(emulator))
        event = DomainDeleted(domain="never-created-" + self.domain)
        self.deliver_ok(runtime, event)
        if self.no_op(event):
            assert len(self.received(emulator)) == before, "a deletion with nothing to do sent"
        else:
            assert len(self.received(emulator)) > before, "the deletion was never sent"

    @staticmethod
    def _app(emulator: Any) -> Any:
        return getattr(emulator, "emulator", None) or getattr(emulator, "app", None)

    def unclear_next(self, emulator: Any) -> int:
        """The emulator's next answer is an ``unclear`` refusal; how many requests it had."""
        app = self._app(emulator)
        app.faults.configure(queue=["unclear"])
        with app.lock:
            return len(app.requests)

    def refused_first(self, emulator: Any, since: int) -> None:
        """The first request after *since* was the one refused with an unclear answer, and
        the vendor was asked again after it (its list read back)."""
        app = self._app(emulator)
        with app.lock:
            sent = app.requests[since:]
        assert sent and sent[0]["fault"] == "unclear", "the unclear answer was not sent"
        assert len(sent) > 1, "the unclear answer was not settled by reading the vendor back"

    def test_an_unclear_refusal_of_a_creation_is_settled_by_reading_back(self, runtime, emulator):
        self.require(runtime, "domain_created", "inventory_domains")
        self.deliver_ok(runtime, DomainCreated(domain=self.domain, destination=self.destination))
        # held with our destination: a success, and nothing else changes
        since = self.unclear_next(emulator)
        self.deliver_ok(runtime, DomainCreated(domain=self.domain, destination=self.destination))
        self.refused_first(emulator, since)
        held = self.held(emulator, Domain(self.domain))
        assert held is not None and held.get("destination", self.destination) == self.destination
        # held with another destination: brought up to date
        since = self.unclear_next(emulator)
        self.deliver_ok(runtime, DomainCreated(domain=self.domain, destination="192.0.2.25"))
        self.refused_first(emulator, since)
        held = self.held(emulator, Domain(self.domain))
        assert held is not None and held.get("destination", "192.0.2.25") == "192.0.2.25"
        # not held: the refusal stands, permanent, and nothing is held
        other = "unclear-" + self.domain
        since = self.unclear_next(emulator)
        (out,) = runtime.deliver(DomainCreated(domain=other), vendors=[self.vendor_name])
        assert not out.ok and isinstance(out.error, VendorUnclear), out.error
        assert out.error.permanent
        assert self.held(emulator, Domain(other)) is None

    def test_an_unclear_refusal_of_a_deletion_is_settled_by_reading_back(self, runtime, emulator):
        self.require(runtime, "domain_created", "domain_deleted", "inventory_domains")
        self.deliver_ok(runtime, DomainCreated(domain=self.domain))
        since = self.unclear_next(emulator)
        (out,) = runtime.deliver(DomainDeleted(domain=self.domain), vendors=[self.vendor_name])
        self.refused_first(emulator, since)
        assert not out.ok and isinstance(out.error, VendorUnclear), out.error
        assert self.held(emulator, Domain(self.domain)) is not None  # still there: it stands
        since = self.unclear_next(emulator)
        self.deliver_ok(runtime, DomainDeleted(domain="never-created-" + self.domain))
        self.refused_first(emulator, since)

    def test_idn_domain_is_sent_as_punycode(self, runtime, emulator):
        self.require(runtime, "domain_created")
        event = DomainCreated(domain=self.idn_domain)
        self.deliver_ok(runtime, event)
        sent = "\n".join(self.received(emulator))
        assert event.domain.name in sent, f"{event.domain.name} was not sent:\n{sent}"
        label = self.idn_domain.split(".")[0]
        for form in (label, quote(label), quote(label).lower(), json_escaped(label)):
            assert form not in sent, f"the Unicode name was sent ({form!r}):\n{sent}"
        assert self.held(emulator, event.domain) is not None

    def lifecycle_events(self) -> list[Event]:
        """The events :meth:`test_every_lifecycle_hook_changes_the_vendor` delivers, in order."""
        return [
            DomainCreated(domain=self.domain, destination=self.destination),
            DomainUpdated(domain=self.domain, destination="192.0.2.25"),
            MailboxAdded(mailbox=self.mailbox),
            PasswordReset(mailbox=Mailbox(self.mailbox), password=Secret("Contract-pw-&#%+=1")),
            PasswordReset(domain=Domain(self.domain)),
            MailboxDeleted(mailbox=self.mailbox),
            DomainDeleted(domain=self.domain),
        ]

    def test_every_lifecycle_hook_changes_the_vendor(self, runtime, emulator):
        handled = [e for e in self.lifecycle_events() if runtime.handles(self.vendor_name, e.hook)]
        if not handled:
            pytest.skip(f"{self.vendor_name} implements no lifecycle hook")
        for event in handled:
            target = event.target
            sent_before, before = len(self.received(emulator)), self.held(emulator, target)
            result = self.deliver_ok(runtime, event)
            after = self.held(emulator, target)
            what = f"after {event.hook} of {event.target}: the emulator holds {after!r}"
            if self.no_op(event):
                assert len(self.received(emulator)) == sent_before, f"{event.hook} sent a call"
                assert after == before, what
            elif event.hook == "domain_created":
                assert after is not None, what
                if "destination" in after:
                    assert after["destination"] == getattr(event, "destination", None), what
            elif event.hook == "domain_updated":
                destination = getattr(event, "destination", None)
                assert after is not None and after.get("destination") == destination, what
            elif event.hook in ("domain_deleted", "mailbox_deleted"):
                assert after is None, what
            elif event.hook == "mailbox_added":
                assert after is not None and after != before, what
            elif event.hook == "password_reset":
                expected = getattr(event, "password", None) or (result or {}).get("password")
                assert expected is not None, f"{event.hook} of {event.target} returned no password"
                assert after is not None and after.get("password") == expected.reveal(), (
                    f"after {event.hook} of {event.target}: the vendor does not hold the password"
                )

    def test_secrets_never_logged(self, runtime, caplog):
        caplog.set_level(logging.DEBUG)
        runtime.check(self.vendor_name)
        if runtime.handles(self.vendor_name, "domain_created"):
            runtime.deliver(DomainCreated(domain=self.domain), vendors=[self.vendor_name])
        assert caplog.records, "the vendor logged nothing at DEBUG; the HTTP layer should"
        for secret in self.secrets:
            assert secret not in caplog.text

    def test_settings_fragments_are_safe(self, runtime, emulator):
        self.require(runtime, "settings_fragments")
        if runtime.handles(self.vendor_name, "domain_created"):
            self.deliver_ok(runtime, DomainCreated(domain=self.domain))
        token = "csrf-<contract>"
        fragments = []
        for scope, target in (
            ("admin", None),
            ("domain", Domain(self.domain)),
            ("mailbox", Mailbox(self.mailbox)),
        ):
            out = runtime.call_isolated(
                self.vendor_name,
                "settings_fragments",
                scope=scope,
                target=target,
                csrf_token=token,
                query={},
            )
            assert out.ok, out.error
            fragments += (
                out.result if isinstance(out.result, list) else [out.result] if out.result else []
            )
        assert fragments
        for frag in fragments:
            html = str(frag.html)
            lower = html.lower()
            assert "<script" not in lower
            assert "<html" not in lower and "<body" not in lower
            forms = FORM.findall(html)
            if CONTROL.search(html):
                assert forms, f"{frag.name}: the fragment has inputs but no form"
            outside = FORM.sub("", html)
            assert not CONTROL.search(outside), f"{frag.name}: a control outside any form"
            for form in forms:
                assert 'name="csrf_token" value="csrf-&lt;contract&gt;"' in form, (
                    f"{frag.name}: a form without the panel's CSRF token"
                )


FORM = re.compile(r"<form\b.*?</form>", re.S | re.I)
CONTROL = re.compile(r"<(input|select|textarea|button)\b", re.I)


def json_escaped(text: str) -> str:
    """*text* as JSON writes it by default (non-ASCII as \\uXXXX), without the quotes."""
    return json.dumps(text)[1:-1]
