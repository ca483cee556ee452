"""Lifecycle events and their targets.

Everything a panel reports is turned into one of the frozen dataclasses below.
Values are checked and normalised when the object is built, so a bad domain,
address or IP is refused at the edge with :class:`~.errors.InvalidInput`
naming the field, and every vendor sees domains as lower-case IDNA (punycode).

The normalisers, the fields of each payload and event ids and times are in
:mod:`.eventdata` (plain data, for the panel-hook path, which builds no dataclass); this
module re-exports the normalisers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar, overload

import idna

from .errors import InvalidInput
from .eventdata import (
    PAYLOAD_FIELDS,
    is_ip,
    new_id,
    normalise_domain,
    normalise_email,
    normalise_host,
    normalise_ip,
    normalise_reason,
    now,
    payload,
    target_key,
)
from .redaction import Secret

__all__ = ["is_ip", "normalise_domain", "normalise_email", "normalise_host", "normalise_ip"]


@dataclass(frozen=True)
class Domain:
    """A domain hosted on the panel.  ``name`` is lower-case IDNA."""

    name: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", normalise_domain(self.name, "domain"))

    @property
    def unicode_name(self) -> str:
        """The name for display (``bücher.example``)."""
        try:
            return idna.decode(self.name)
        except idna.IDNAError:
            return self.name

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Mailbox:
    """A mailbox (e-mail account) on the panel.

    ``address`` is ``local@domain`` with an IDNA domain."""

    address: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", normalise_email(self.address, "mailbox"))

    @property
    def local_part(self) -> str:
        return self.address.rpartition("@")[0]

    @property
    def domain(self) -> Domain:
        return Domain(self.address.rpartition("@")[2])

    @property
    def unicode_address(self) -> str:
        """The address for display (``kontakt@bücher.example``)."""
        return f"{self.local_part}@{self.domain.unicode_name}"

    def __str__(self) -> str:
        return self.address


T = TypeVar("T", "Domain", "Mailbox")


class Target(Generic[T]):
    """An event's target field: a :class:`Domain` (or :class:`Mailbox`) given as one, or as
    its name, which is checked and normalised when the event is made.  (A descriptor, so the
    field reads as the target and is written as either.)"""

    def __init__(self, kind: type[T]) -> None:
        self.kind: type[T] = kind

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    @overload
    def __get__(self, obj: None, owner: type) -> Target[T]: ...

    @overload
    def __get__(self, obj: object, owner: type) -> T: ...

    def __get__(self, obj: object | None, owner: type) -> Any:
        if obj is None:  # on the class: no default, so the field is required
            raise AttributeError(self.slot[1:])
        return getattr(obj, self.slot)

    def __set__(self, obj: object, value: T | str) -> None:
        target = value if isinstance(value, self.kind) else self.kind(str(value))
        object.__setattr__(obj, self.slot, target)


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of the lifecycle events.  ``hook`` is the hookspec the event calls."""

    hook: ClassVar[str] = ""
    #: the CLI spelling (``domain-created``)
    cli_name: ClassVar[str] = ""

    id: str = field(default_factory=new_id)
    occurred_at: str = field(default_factory=now)

    @property
    def target(self) -> Domain | Mailbox:
        raise NotImplementedError

    @property
    def target_key(self) -> str:
        """What ordering is kept per: ``domain:example.com`` or ``mailbox:a@example.com``."""
        return target_key(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of the event, without secrets (see ``PasswordReset``)."""
        values = {}
        for name in self._payload_fields:
            value = getattr(self, name)
            values[name] = str(value) if isinstance(value, (Domain, Mailbox)) else value
        return payload(self.hook, self.id, self.occurred_at, values)

    _payload_fields: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True, kw_only=True)
class DomainCreated(Event):
    """A domain was created on the panel.  ``destination`` is where clean mail goes
    (host name or IP); None means the configured ``general.mail_host``."""

    hook: ClassVar[str] = "domain_created"
    cli_name: ClassVar[str] = "domain-created"
    _payload_fields: ClassVar[tuple[str, ...]] = PAYLOAD_FIELDS["domain_created"]

    domain: Target[Domain] = Target(Domain)
    destination: str | None = None

    def __post_init__(self) -> None:
        if self.destination is not None:
            object.__setattr__(self, "destination", normalise_host(self.destination, "destination"))

    @property
    def target(self) -> Domain:
        return self.domain


@dataclass(frozen=True, kw_only=True)
class DomainDeleted(Event):
    """A domain was deleted on the panel."""

    hook: ClassVar[str] = "domain_deleted"
    cli_name: ClassVar[str] = "domain-deleted"
    _payload_fields: ClassVar[tuple[str, ...]] = PAYLOAD_FIELDS["domain_deleted"]

    domain: Target[Domain] = Target(Domain)

    @property
    def target(self) -> Domain:
        return self.domain


@dataclass(frozen=True, kw_only=True)
class DomainUpdated(Event):
    """A domain's destination (the host that receives its clean mail) changed."""

    hook: ClassVar[str] = "domain_updated"
    cli_name: ClassVar[str] = "domain-updated"
    _payload_fields: ClassVar[tuple[str, ...]] = PAYLOAD_FIELDS["domain_updated"]

    domain: Target[Domain] = Target(Domain)
    destination: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "destination", normalise_host(self.destination, "destination"))

    @property
    def target(self) -> Domain:
        return self.domain


@dataclass(frozen=True, kw_only=True)
class DomainSuspended(Event):
    """The panel suspended the account that holds the domain (an unpaid invoice, an expired
    subscription, abuse), with the panel's reason when it gives one.  What a vendor does is
    its ``on_suspend`` policy: ``keep`` filtering as it is, or ``bypass`` the filter while
    relaying mail; never removal (see :mod:`~spamfilter_plugin.suspension`)."""

    hook: ClassVar[str] = "domain_suspended"
    cli_name: ClassVar[str] = "domain-suspended"
    _payload_fields: ClassVar[tuple[str, ...]] = PAYLOAD_FIELDS["domain_suspended"]

    domain: Target[Domain] = Target(Domain)
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.reason is not None:
            object.__setattr__(self, "reason", normalise_reason(self.reason))

    @property
    def target(self) -> Domain:
        return self.domain


@dataclass(frozen=True, kw_only=True)
class DomainUnsuspended(Event):
    """The panel lifted the suspension of the account that holds the domain: what its
    suspension changed at a vendor is put back as it was."""

    hook: ClassVar[str] = "domain_unsuspended"
    cli_name: ClassVar[str] = "domain-unsuspended"
    _payload_fields: ClassVar[tuple[str, ...]] = PAYLOAD_FIELDS["domain_unsuspended"]

    domain: Target[Domain] = Target(Domain)

    @property
    def target(self) -> Domain:
        return self.domain


@dataclass(frozen=True, kw_only=True)
class MailboxAdded(Event):
    """A mailbox was created on the panel."""

    hook: ClassVar[str] = "mailbox_added"
    cli_name: ClassVar[str] = "mailbox-added"
    _payload_fields: ClassVar[tuple[str, ...]] = PAYLOAD_FIELDS["mailbox_added"]

    mailbox: Target[Mailbox] = Target(Mailbox)

    @property
    def target(self) -> Mailbox:
        return self.mailbox


@dataclass(frozen=True, kw_only=True)
class MailboxDeleted(Event):
    """A mailbox was deleted on the panel."""

    hook: ClassVar[str] = "mailbox_deleted"
    cli_name: ClassVar[str] = "mailbox-deleted"
    _payload_fields: ClassVar[tuple[str, ...]] = PAYLOAD_FIELDS["mailbox_deleted"]

    mailbox: Target[Mailbox] = Target(Mailbox)

    @property
    def target(self) -> Mailbox:
        return self.mailbox


@dataclass(frozen=True, kw_only=True)
class PasswordReset(Event):
    """A password was reset for a domain account or a mailbox.

    ``password`` is the new password when the panel chose it, or None when the
    vendor should generate one (a vendor that does hands it back in its hook
    result).  It is a :class:`~.redaction.Secret` and is left out of ``to_dict()``.
    """

    hook: ClassVar[str] = "password_reset"
    cli_name: ClassVar[str] = "password-reset"
    _payload_fields: ClassVar[tuple[str, ...]] = PAYLOAD_FIELDS["password_reset"]

    domain: Domain | None = None
    mailbox: Mailbox | None = None
    password: Secret | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mailbox is not None:
            _coerce(self, "mailbox", Mailbox)
        if self.domain is not None:
            _coerce(self, "domain", Domain)
        if (self.domain is None) == (self.mailbox is None):
            raise InvalidInput(
                "domain", "a password reset names either a domain or a mailbox, not both"
            )
        if self.password is not None and not isinstance(self.password, Secret):
            if not isinstance(self.password, str) or not self.password:
                raise InvalidInput("password", "the new password must be a non-empty string")
            object.__setattr__(self, "password", Secret(self.password))

    @property
    def target(self) -> Domain | Mailbox:
        return self.mailbox if self.mailbox is not None else self.domain  # type: ignore[return-value]


@dataclass(frozen=True, kw_only=True)
class VendorStep(Event):
    """A step a vendor queued for itself after one of its events succeeded (confirming a TXT
    record once DNS has propagated, switching MX after a domain was accepted).  It is
    delivered to that vendor only, through the ``vendor_step`` hook, in order with the
    domain's events; while it waits to be tried again it holds no later event up.

    ``step`` names what to do (the vendor's own word); ``data`` is JSON-safe and holds no
    secret (it is stored in the queue in plain text and shown by ``spamfilter queue show``).
    """

    hook: ClassVar[str] = "vendor_step"
    cli_name: ClassVar[str] = "vendor-step"
    _payload_fields: ClassVar[tuple[str, ...]] = PAYLOAD_FIELDS["vendor_step"]

    domain: Target[Domain] = Target(Domain)
    step: str
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.step, str) or not _STEP.fullmatch(self.step):
            raise InvalidInput("step", f"{self.step!r} is not a step name (a-z, 0-9 and _)")
        if not isinstance(self.data, dict):
            raise InvalidInput("data", "a step's data is a JSON object")

    @property
    def target(self) -> Domain:
        return self.domain


_STEP = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _coerce(obj: Event, name: str, cls: type) -> None:
    value = getattr(obj, name)
    if not isinstance(value, cls):
        object.__setattr__(obj, name, cls(value))


EVENT_TYPES: tuple[type[Event], ...] = (
    DomainCreated,
    DomainDeleted,
    DomainUpdated,
    DomainSuspended,
    DomainUnsuspended,
    MailboxAdded,
    MailboxDeleted,
    PasswordReset,
)
#: every event a queue row can hold: the panel's events and the vendors' own steps
_ALL_TYPES: tuple[type[Event], ...] = (*EVENT_TYPES, VendorStep)
BY_HOOK: dict[str, type[Event]] = {cls.hook: cls for cls in _ALL_TYPES}
BY_CLI_NAME: dict[str, type[Event]] = {cls.cli_name: cls for cls in EVENT_TYPES}
#: the lifecycle hooks, one per event type a panel reports
LIFECYCLE_HOOKS: tuple[str, ...] = tuple(cls.hook for cls in EVENT_TYPES)


def event_from_dict(data: dict[str, Any], password: Secret | None = None) -> Event:
    """Rebuild an event from :meth:`Event.to_dict` output (plus its password, kept apart)."""
    kind = data.get("event")
    cls = BY_HOOK.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise InvalidInput("event", f"unknown event {kind!r}; one of {', '.join(BY_HOOK)}")
    kwargs = {k: data[k] for k in cls._payload_fields if data.get(k) is not None}
    for k in ("id", "occurred_at"):
        if k in data:
            kwargs[k] = data[k]
    if cls is PasswordReset and password is not None:
        kwargs["password"] = password
    return cls(**kwargs)
