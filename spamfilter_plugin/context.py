"""What a vendor's hook implementations receive as ``vendor`` (:class:`VendorContext`), and
the services the panel offers vendors (:class:`PanelServices`).

The host builds one context per enabled vendor (:class:`~.manager.Runtime`); a vendor's
hooks reach its validated table, an HTTP client, its credentials guard, its vault of
per-user secrets, its state, and the panel's DNS through it, and nothing of another vendor.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

from .errors import SpamFilterError, VendorRejected
from .events import Domain
from .files import JsonStore
from .guard import VendorGuard
from .http import HttpClient
from .ratelimit import limiter_for
from .redaction import get_logger
from .vault import Vault

if TYPE_CHECKING:
    from .config.model import Config, FleetConfig
    from .panels import Panel

log = get_logger(__name__)


class Host(Protocol):
    """What the host's own features (:mod:`.builtin`) see of the runtime."""

    config: Config
    panel_adapter: Panel | None
    contexts: dict[str, VendorContext]


class PanelServices:
    """What the panel offers vendors: a plugin implementing ``publish_dns_record``, else the
    configured panel adapter's DNS service (:meth:`~.panels.Panel.dns`)."""

    def __init__(self, pm: pluggy.PluginManager, adapter=None) -> None:
        self._pm = pm
        self._adapter = adapter

    def publish_dns_record(
        self, domain: Domain, record_type: str, name: str, value: str
    ) -> bool | None:
        """Ask the panel to publish a record: True when it did (or it was there), False when
        it could not (logged), None when no panel is configured."""
        published = self._pm.hook.publish_dns_record(
            domain=domain, record_type=record_type, name=name, value=value
        )
        if published is not None or self._adapter is None or record_type != "TXT":
            return published
        try:
            self._adapter.dns().add_txt(str(domain), name, value)
        except SpamFilterError as exc:
            log.warning("the panel could not publish the TXT record %s: %s", name, exc)
            return False
        return True

    def mailboxes_of(self, domain: str) -> list[str] | None:
        """The mailboxes of *domain* as the panel's records list them (cPanel, DirectAdmin);
        None where the panel keeps no such list or it cannot be read (logged)."""
        if self._adapter is None:
            return None
        try:
            return self._adapter.mailboxes_of(domain)
        except (SpamFilterError, OSError) as exc:
            log.warning("the panel's mailboxes of %s could not be read: %s", domain, exc)
            return None


@dataclass
class VendorContext:
    """What a vendor's hook implementations receive as ``vendor``.

    :ivar name: the vendor's name.
    :ivar config: its validated ``[vendors.<name>]`` table (secrets are Secret objects).
    :ivar general: the ``[general]`` settings.
    :ivar panel: the panel's services (:class:`PanelServices`).
    :ivar cache: per-process storage for the vendor (its API client, for instance).
    """

    name: str
    config: dict[str, Any]
    general: Any
    panel: PanelServices
    cache: dict[str, Any] = field(default_factory=dict)
    #: the ``[fleet]`` table in fleet mode: the guard is then the fleet's
    fleet: FleetConfig | None = None
    #: makes each :meth:`cached` value once, whatever the threads asking for it first
    _cache_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    @property
    def log(self):
        return get_logger(f"spamfilter_plugin.vendor.{self.name}")

    def http(self, **kwargs: Any):
        """A new :class:`~spamfilter_plugin.http.HttpClient` for this vendor's table."""
        kwargs.setdefault("admit", self.guard.admit)
        kwargs.setdefault("accepted", self.guard.prove)
        return HttpClient.from_config(self.name, self.config, **kwargs)

    def destination(self, event) -> str:
        """Where the domain's clean mail goes: the event's destination, else
        ``general.mail_host``; VendorRejected naming both fixes when neither is set."""
        host = getattr(event, "destination", None) or self.general.mail_host
        if not host:
            raise VendorRejected(
                self.name,
                f"no destination for {event.domain}: give the event a destination, or set "
                "general.mail_host in the config",
            )
        return host

    def cached(self, key: str, factory):
        """``cache[key]``, made by ``factory()`` the first time: once, however many of a
        worker's delivery threads ask at once (a second API client would open its own
        connections, and the first would be left unclosed)."""
        try:
            return self.cache[key]
        except KeyError:
            pass
        with self._cache_lock:
            if key not in self.cache:
                self.cache[key] = factory()
            return self.cache[key]

    # -- credentials: suspension, proof and the one-at-a-time lock (see guard.py) ------

    @cached_property
    def guard(self):
        """This vendor's :class:`~spamfilter_plugin.guard.VendorGuard` (shared through
        ``state_dir`` with every other process; in fleet mode, through the fleet's database
        with every server's)."""
        if self.fleet is not None:
            from .store.postgres import FleetGuard  # needs the [fleet] extra

            return FleetGuard(self.name, self.general.state_dir, self.config, self.fleet)
        return VendorGuard(self.name, self.general.state_dir, self.config)

    @cached_property
    def vault(self):
        """Credentials this vendor keeps to act for someone later, encrypted with the
        queue's key (:class:`~spamfilter_plugin.vault.Vault`)."""
        if self.fleet is not None:
            from .store.postgres import FleetJsonStore, FleetKey  # needs the [fleet] extra

            store = FleetJsonStore(self.fleet, f"vault-{self.name}")
            return Vault(self.name, self.general.state_dir, store, FleetKey(self.fleet.key_file))
        return Vault(self.name, self.general.state_dir)

    @cached_property
    def state(self):
        """What this vendor remembers between calls and processes that is not a secret (a
        domain's verification record, say): a :class:`~spamfilter_plugin.files.JsonStore` in
        ``state_dir/state-<vendor>.json``; read with ``read()``, change with ``editing()``."""
        if self.fleet is not None:
            from .store.postgres import FleetJsonStore  # needs the [fleet] extra

            return FleetJsonStore(self.fleet, f"state-{self.name}")
        return JsonStore(Path(self.general.state_dir) / f"state-{self.name}.json")

    def rate_limiter(self, account: str, per_minute: int):
        """The request budget of one vendor account (``per_minute`` requests in any 60
        seconds), shared by every client of it: in this process, or in fleet mode by the
        whole fleet (see :mod:`~spamfilter_plugin.ratelimit`)."""
        if self.fleet is not None:
            from .store.postgres import FleetRateLimiter  # needs the [fleet] extra

            return FleetRateLimiter(self.fleet, self.name, account, per_minute)
        return limiter_for(self.name, account, per_minute)

    def suspension(self) -> dict[str, Any] | None:
        """Why and since when calls to this vendor are suspended, or None."""
        return self.guard.suspension()

    def suspend(self, reason: str) -> None:
        self.guard.suspend(reason)

    def resume(self) -> None:
        self.guard.resume()
