"""Lifecycle events and their targets.

Everything a panel reports is turned into one of the frozen dataclasses below.
Values are checked and normalised when the object is built, so a bad domain,
address or IP is refused at the edge with :class:`~.errors.InvalidInput`
naming the field, and every vendor sees domains as lower-case IDNA (punycode).

This module is on the panel-hook path: it imports only the standard library,
``idna`` and the package's own light modules.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import idna

from .errors import InvalidInput
from .redaction import Secret

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# RFC 5322 dot-atom local part (the subset mail servers accept in practice).
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


def _no_control(value: str, field_name: str) -> None:
    """Refuse control characters anywhere in *value* (line breaks split logs and headers)."""
    for c in value:
        o = ord(c)
        if o < 32 or 127 <= o < 160 or o in (0x2028, 0x2029):
            raise InvalidInput(
                field_name, f"{value!r} contains a control character (U+{o:04X}); remove it"
            )


def normalise_domain(value: object, field_name: str = "domain") -> str:
    """Return *value* as a lower-case IDNA domain name, or raise InvalidInput.

    Accepts Unicode (``bücher.example``) and punycode alike; a trailing dot is dropped.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field_name, "a domain name is required, e.g. example.com")
    _no_control(value, field_name)
    name = value.strip()
    if name.endswith("."):  # one trailing dot (the root) is fine; "example.com.." is not
        name = name[:-1]
    if any(c.isspace() for c in name) or "/" in name or "@" in name or ":" in name:
        raise InvalidInput(
            field_name, f"{value!r} is not a domain name (give a name like example.com)"
        )
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidInput(field_name, f"{value!r} is not a valid domain name ({exc})") from None
    ascii_name = ascii_name.lower()
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise InvalidInput(field_name, f"{value!r} needs at least two labels, e.g. example.com")
    if len(ascii_name) > 253:
        raise InvalidInput(field_name, f"{value!r} is longer than 253 characters")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise InvalidInput(
                field_name,
                f"{value!r} has an invalid label {label!r} (letters, digits and inner hyphens, "
                "1 to 63 characters)",
            )
    if labels[-1].isdigit():
        raise InvalidInput(field_name, f"{value!r} has an all-numeric top-level domain")
    return ascii_name


def normalise_ip(value: object, field_name: str = "ip") -> str:
    """Return *value* as a canonical IPv4/IPv6 address string, or raise InvalidInput."""
    if not isinstance(value, str):
        raise InvalidInput(field_name, "an IP address is required, e.g. 192.0.2.10")
    _no_control(value, field_name)
    text = value.strip()
    if "%" in text:
        raise InvalidInput(
            field_name,
            f"{value!r} has a zone id (%...), which only means something on this machine; "
            "give an address the vendor can reach",
        )
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise InvalidInput(field_name, f"{value!r} is not an IPv4 or IPv6 address") from None


def is_ip(value: str) -> bool:
    """True when *value* is an IPv4 or IPv6 literal."""
    try:
        normalise_ip(value)
    except InvalidInput:
        return False
    return True


def normalise_host(value: object, field_name: str = "destination") -> str:
    """A mail host: an IP literal (canonicalised) or a host name (lower-case IDNA)."""
    if isinstance(value, str):
        _no_control(value, field_name)
        if ":" in value:  # no host name has one: an IPv6 literal, with its own error if bad
            return normalise_ip(value, field_name)
        if is_ip(value):
            return normalise_ip(value, field_name)
    try:
        return normalise_domain(value, field_name)
    except InvalidInput as exc:
        raise InvalidInput(
            field_name, f"{value!r} is neither a host name (mail.example.com) nor an IP address"
        ) from exc


def normalise_email(value: object, field_name: str = "mailbox") -> str:
    """Return ``local@domain`` with the domain as lower-case IDNA, or raise InvalidInput."""
    if not isinstance(value, str) or "@" not in value:
        raise InvalidInput(
            field_name, f"{value!r} is not an e-mail address (give user@example.com)"
        )
    _no_control(value, field_name)
    local, _, domain = value.strip().rpartition("@")
    if not local or len(local) > 64 or not _LOCAL.fullmatch(local):
        raise InvalidInput(field_name, f"{value!r} has an invalid part before the @")
    try:
        domain = normalise_domain(domain, field_name)
    except InvalidInput:
        raise InvalidInput(field_name, f"{value!r} has an invalid domain after the @") from None
    return f"{local}@{domain}"


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

    def __str__(self) -> str:
        return self.address


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of the lifecycle events.  ``hook`` is the hookspec the event calls."""

    hook: ClassVar[str] = ""
    #: the CLI spelling (``domain-created``)
    cli_name: ClassVar[str] = ""

    id: str = field(default_factory=_new_id)
    occurred_at: str = field(default_factory=_now)

    @property
    def target(self) -> Domain | Mailbox:
        raise NotImplementedError

    @property
    def target_key(self) -> str:
        """What ordering is kept per: ``domain:example.com`` or ``mailbox:a@example.com``."""
        t = self.target
        return f"mailbox:{t}" if isinstance(t, Mailbox) else f"domain:{t}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of the event, without secrets (see ``PasswordReset``)."""
        out: dict[str, Any] = {"event": self.hook, "id": self.id, "occurred_at": self.occurred_at}
        for name in self._payload_fields:
            value = getattr(self, name)
            if isinstance(value, (Domain, Mailbox)):
                value = str(value)
            out[name] = value
        return out

    _payload_fields: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True, kw_only=True)
class DomainCreated(Event):
    """A domain was created on the panel.  ``destination`` is where clean mail goes
    (host name or IP); None means the configured ``general.mail_host``."""

    hook: ClassVar[str] = "domain_created"
    cli_name: ClassVar[str] = "domain-created"
    _payload_fields: ClassVar[tuple[str, ...]] = ("domain", "destination")

    domain: Domain
    destination: str | None = None

    def __post_init__(self) -> None:
        _coerce(self, "domain", Domain)
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
    _payload_fields: ClassVar[tuple[str, ...]] = ("domain",)

    domain: Domain

    def __post_init__(self) -> None:
        _coerce(self, "domain", Domain)

    @property
    def target(self) -> Domain:
        return self.domain


@dataclass(frozen=True, kw_only=True)
class DomainUpdated(Event):
    """A domain's destination (the host that receives its clean mail) changed."""

    hook: ClassVar[str] = "domain_updated"
    cli_name: ClassVar[str] = "domain-updated"
    _payload_fields: ClassVar[tuple[str, ...]] = ("domain", "destination")

    domain: Domain
    destination: str

    def __post_init__(self) -> None:
        _coerce(self, "domain", Domain)
        object.__setattr__(self, "destination", normalise_host(self.destination, "destination"))

    @property
    def target(self) -> Domain:
        return self.domain


@dataclass(frozen=True, kw_only=True)
class MailboxAdded(Event):
    """A mailbox was created on the panel."""

    hook: ClassVar[str] = "mailbox_added"
    cli_name: ClassVar[str] = "mailbox-added"
    _payload_fields: ClassVar[tuple[str, ...]] = ("mailbox",)

    mailbox: Mailbox

    def __post_init__(self) -> None:
        _coerce(self, "mailbox", Mailbox)

    @property
    def target(self) -> Mailbox:
        return self.mailbox


@dataclass(frozen=True, kw_only=True)
class MailboxDeleted(Event):
    """A mailbox was deleted on the panel."""

    hook: ClassVar[str] = "mailbox_deleted"
    cli_name: ClassVar[str] = "mailbox-deleted"
    _payload_fields: ClassVar[tuple[str, ...]] = ("mailbox",)

    mailbox: Mailbox

    def __post_init__(self) -> None:
        _coerce(self, "mailbox", Mailbox)

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
    _payload_fields: ClassVar[tuple[str, ...]] = ("domain", "mailbox")

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
    _payload_fields: ClassVar[tuple[str, ...]] = ("domain", "step", "data")

    domain: Domain
    step: str
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _coerce(self, "domain", Domain)
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
    MailboxAdded,
    MailboxDeleted,
    PasswordReset,
)
#: every event a queue row can hold: the panel's events and the vendors' own steps
BY_HOOK: dict[str, type[Event]] = {cls.hook: cls for cls in (*EVENT_TYPES, VendorStep)}
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
