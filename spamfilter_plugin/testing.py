"""Test support: the shared vendor contract, and helpers to run emulators on loopback.

``LoopbackServer`` and ``AbortConnection`` (from :mod:`.sandbox.server`) serve
WSGI apps on ``127.0.0.1``; ``write_config`` writes a private config file.

``VendorContract`` is the test class every vendor's test file subclasses in a
few lines (``tests/vendors/test_<vendor>.py``); it drives the vendor through the
real plugin manager, its real client and real HTTP against its emulator.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any, ClassVar

import pytest

from .config import toml_table
from .errors import VendorAuthError, VendorUnavailable
from .events import (
    Domain,
    DomainCreated,
    DomainDeleted,
    DomainUpdated,
    Mailbox,
    MailboxAdded,
    MailboxDeleted,
    PasswordReset,
)
from .manager import Runtime, load_runtime
from .redaction import Secret
from .sandbox.server import AbortConnection, LoopbackServer

__all__ = ["AbortConnection", "LoopbackServer", "VendorContract", "closed_port_url", "write_config"]


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def write_config(path: Path, general: dict[str, Any], vendors: dict[str, dict[str, Any]]) -> Path:
    """Write a config file (mode 0600) with the given tables; return its path.

    ``state_dir`` defaults to a ``state`` folder beside the file, so a test never
    touches the system's state directory."""
    general = {"state_dir": str(path.parent / "state"), **general}
    lines = toml_table("general", general)
    for name, table in vendors.items():
        lines += ["", *toml_table(f"vendors.{name}", table)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


class VendorContract:
    """The shared contract every vendor passes (subclass it as ``Test<Vendor>``).

    A subclass sets ``vendor_name`` and provides:

    * an ``emulator`` fixture yielding an object with a ``url`` attribute (a
      started :class:`LoopbackServer` or a sandbox emulator);
    * ``vendor_table(url)``: the ``[vendors.<name>]`` table that reaches it;
    * ``bad_credentials_table(url)``: the same with credentials the emulator refuses;
    * ``secrets``: the secret values that must never be logged.

    Tests of behaviour a vendor does not implement (a hook it has no hookimpl
    for) are skipped, so the contract fits vendors that filter per domain and
    vendors that filter per mailbox alike.
    """

    vendor_name: ClassVar[str] = ""
    domain: ClassVar[str] = "contract-example.com"
    idn_domain: ClassVar[str] = "bücher-contract.example"
    mailbox: ClassVar[str] = "alice@contract-example.com"
    destination: ClassVar[str] = "mail.contract-example.net"
    secrets: ClassVar[tuple[str, ...]] = ()

    # -- to override ------------------------------------------------------

    @pytest.fixture
    def emulator(self):  # pragma: no cover - always overridden
        raise NotImplementedError("a VendorContract subclass must provide an 'emulator' fixture")

    def vendor_table(self, url: str) -> dict[str, Any]:  # pragma: no cover - always overridden
        raise NotImplementedError

    def bad_credentials_table(
        self, url: str
    ) -> dict[str, Any]:  # pragma: no cover - always overridden
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------

    def make_runtime(self, tmp_path: Path, table: dict[str, Any]) -> Runtime:
        general = {"state_dir": str(tmp_path / "state"), "mail_host": "mail.provider.example"}
        path = write_config(tmp_path / "config.toml", general, {self.vendor_name: table})
        return load_runtime(path)

    @pytest.fixture
    def runtime(self, emulator, tmp_path) -> Runtime:
        return self.make_runtime(tmp_path, self.vendor_table(emulator.url))

    def require(self, runtime: Runtime, *hooks: str) -> None:
        for hook in hooks:
            if not runtime.handles(self.vendor_name, hook):
                pytest.skip(f"{self.vendor_name} does not implement {hook}")

    def inventory(self, runtime: Runtime) -> list[str]:
        out = runtime.call_isolated(self.vendor_name, "inventory_domains")
        assert out.ok, out.error
        return out.result

    def deliver_ok(self, runtime: Runtime, event) -> Any:
        (out,) = runtime.deliver(event, vendors=[self.vendor_name])
        assert out.ok, f"{event.hook} failed: {out.error}"
        return out.result

    # -- the contract ---------------------------------------------------------

    def test_check_succeeds(self, runtime):
        out = runtime.check(self.vendor_name)
        assert out.ok, out.error
        assert isinstance(out.result, str) and out.result

    def test_check_with_bad_credentials_is_auth_error(self, emulator, tmp_path):
        rt = self.make_runtime(tmp_path, self.bad_credentials_table(emulator.url))
        out = rt.check(self.vendor_name)
        assert not out.ok
        assert isinstance(out.error, VendorAuthError), out.error
        assert out.error.permanent

    def test_unreachable_vendor_is_temporary_failure(self, emulator, tmp_path):
        table = dict(self.vendor_table(closed_port_url()), retries=0, connect_timeout=1.0)
        rt = self.make_runtime(tmp_path, table)
        out = rt.check(self.vendor_name)
        assert not out.ok
        assert isinstance(out.error, VendorUnavailable), out.error
        assert not out.error.permanent

    def test_domain_created_is_listed(self, runtime):
        self.require(runtime, "domain_created", "inventory_domains")
        self.deliver_ok(runtime, DomainCreated(domain=self.domain, destination=self.destination))
        assert self.domain in self.inventory(runtime)

    def test_domain_created_twice_succeeds(self, runtime):
        self.require(runtime, "domain_created", "inventory_domains")
        self.deliver_ok(runtime, DomainCreated(domain=self.domain))
        self.deliver_ok(runtime, DomainCreated(domain=self.domain))
        assert self.inventory(runtime).count(self.domain) == 1

    def test_domain_deleted_is_gone(self, runtime):
        self.require(runtime, "domain_created", "domain_deleted", "inventory_domains")
        self.deliver_ok(runtime, DomainCreated(domain=self.domain))
        self.deliver_ok(runtime, DomainDeleted(domain=self.domain))
        assert self.domain not in self.inventory(runtime)

    def test_domain_deleted_when_absent_succeeds(self, runtime):
        self.require(runtime, "domain_deleted")
        self.deliver_ok(runtime, DomainDeleted(domain="never-created-" + self.domain))

    def test_idn_domain_is_sent_as_punycode(self, runtime):
        self.require(runtime, "domain_created", "inventory_domains")
        event = DomainCreated(domain=self.idn_domain)
        self.deliver_ok(runtime, event)
        assert event.domain.name.startswith("xn--")
        assert event.domain.name in self.inventory(runtime)

    def test_every_lifecycle_hook_succeeds(self, runtime):
        events = [
            DomainCreated(domain=self.domain, destination=self.destination),
            DomainUpdated(domain=self.domain, destination="192.0.2.25"),
            MailboxAdded(mailbox=self.mailbox),
            PasswordReset(mailbox=self.mailbox, password=Secret("Contract-pw-&#%+=1")),
            MailboxDeleted(mailbox=self.mailbox),
            DomainDeleted(domain=self.domain),
        ]
        handled = [e for e in events if runtime.handles(self.vendor_name, e.hook)]
        if not handled:
            pytest.skip(f"{self.vendor_name} implements no lifecycle hook")
        for event in handled:
            self.deliver_ok(runtime, event)

    def test_secrets_never_logged(self, runtime, caplog):
        caplog.set_level(logging.DEBUG)
        runtime.check(self.vendor_name)
        if runtime.handles(self.vendor_name, "domain_created"):
            runtime.deliver(DomainCreated(domain=self.domain), vendors=[self.vendor_name])
        assert caplog.records, "the vendor logged nothing at DEBUG; the HTTP layer should"
        for secret in self.secrets:
            assert secret not in caplog.text

    def test_settings_fragments_are_safe(self, runtime):
        self.require(runtime, "settings_fragments")
        token = "csrf-<contract>"
        fragments = []
        for scope, target in (
            ("admin", None),
            ("domain", Domain(self.domain)),
            ("mailbox", Mailbox(self.mailbox)),
        ):
            out = runtime.call_isolated(
                self.vendor_name, "settings_fragments", scope=scope, target=target, csrf_token=token
            )
            assert out.ok, out.error
            fragments += (
                out.result if isinstance(out.result, list) else [out.result] if out.result else []
            )
        assert fragments
        for frag in fragments:
            html = str(frag.html)
            assert "<script" not in html.lower()
            assert "<html" not in html.lower() and "<body" not in html.lower()
            for form in html.split("<form")[1:]:
                assert 'name="csrf_token" value="csrf-&lt;contract&gt;"' in form
