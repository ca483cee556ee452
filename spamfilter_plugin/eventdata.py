"""Events as plain data: the normalisers of domains, addresses and hosts, the fields each
hook's payload carries, and event ids and times.

This is the light half of :mod:`.events` (whose dataclasses build on it).  The
panel-hook path, which a panel waits for, turns a payload into queue rows with it alone:
it imports the standard library's ``re`` and :mod:`.errors`, and ``idna`` or
``ipaddress`` only when a name needs them (a non-ASCII or ``xn--`` domain, an IP
literal).
"""

from __future__ import annotations

import functools
import os
import re
import time

from .errors import InvalidInput

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the hook path
if TYPE_CHECKING:
    from typing import Any

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# RFC 5322 dot-atom local part (the subset mail servers accept in practice).
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")

#: the fields of each hook's payload, in the order they are stored
PAYLOAD_FIELDS: dict[str, tuple[str, ...]] = {
    "domain_created": ("domain", "destination"),
    "domain_deleted": ("domain",),
    "domain_updated": ("domain", "destination"),
    "domain_suspended": ("domain", "reason"),
    "domain_unsuspended": ("domain",),
    "mailbox_added": ("mailbox",),
    "mailbox_deleted": ("mailbox",),
    "password_reset": ("domain", "mailbox"),
    "vendor_step": ("domain", "step", "data"),
}


#: the longest suspension reason kept (a panel's reason is free text)
REASON_MAX = 200


def normalise_reason(value: Any, field_name: str = "reason") -> str | None:
    """A panel's free-text reason (a suspension's), trimmed, at most :data:`REASON_MAX`
    characters, without control characters; None when empty."""
    if not isinstance(value, str):
        raise InvalidInput(field_name, f"{value!r} is not text")
    text = " ".join(value.split())[:REASON_MAX]
    no_control(text, field_name)
    return text or None


def _control(value: str) -> int | None:
    """The first control character of *value* (C0, DEL, C1, the line and paragraph
    separators) as a code point, or None.  Printable ASCII, the usual case, is told by one
    string method (no pattern to compile: the panel hook checks its values this way)."""
    if value.isascii() and value.isprintable():
        return None
    for c in value:
        o = ord(c)
        if o < 32 or 127 <= o < 160 or o in (0x2028, 0x2029):
            return o
    return None


def no_control(value: str, field_name: str) -> None:
    """Refuse control characters anywhere in *value* (line breaks split logs and headers)."""
    o = _control(value)
    if o is not None:
        raise InvalidInput(
            field_name, f"{value!r} contains a control character (U+{o:04X}); remove it"
        )


def _plain_ascii(name: str) -> str | None:
    """*name* in lower case when it is a valid all-ASCII host name that IDNA leaves as it
    is (letters, digits and inner hyphens, and no ``--`` in the third and fourth place,
    which also rules out ``xn--`` labels); None when IDNA must look at it."""
    if not name.isascii():
        return None
    lower = name.lower()
    labels = lower.split(".")
    if len(lower) > 253 or len(labels) < 2 or labels[-1].isdigit():
        return None
    for label in labels:
        if not _LABEL.fullmatch(label) or label[2:4] == "--":
            return None
    return lower


def normalise_domain(value: object, field_name: str = "domain") -> str:
    """Return *value* as a lower-case IDNA domain name, or raise InvalidInput.

    Accepts Unicode (``bücher.example``) and punycode alike; a trailing dot is dropped.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field_name, "a domain name is required, e.g. example.com")
    no_control(value, field_name)
    name = value.strip()
    if name.endswith("."):  # one trailing dot (the root) is fine; "example.com.." is not
        name = name[:-1]
    # white space (as str.isspace has it: what split() splits on) or / @ :
    if len(name.split()) != 1 or "/" in name or "@" in name or ":" in name:
        raise InvalidInput(
            field_name, f"{value!r} is not a domain name (give a name like example.com)"
        )
    plain = _plain_ascii(name)
    if plain is not None:  # what IDNA would return, without loading its tables
        return plain
    import idna

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
    no_control(value, field_name)
    text = value.strip()
    if "%" in text:
        raise InvalidInput(
            field_name,
            f"{value!r} has a zone id (%...), which only means something on this machine; "
            "give an address the vendor can reach",
        )
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    found = _canonical_ip(text)
    if found is None:
        raise InvalidInput(field_name, f"{value!r} is not an IPv4 or IPv6 address")
    return found


@functools.lru_cache(maxsize=4096)
def _canonical_ip(text: str) -> str | None:
    """*text* as its address's canonical form, or None when it is not one (memoised: a
    server's mail hosts are asked about on every delivery)."""
    import ipaddress

    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def is_ip(value: str) -> bool:
    """True when *value* is an IPv4 or IPv6 literal (what :func:`normalise_ip` takes)."""
    if not isinstance(value, str) or "%" in value or _control(value) is not None:
        return False
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return _canonical_ip(text) is not None


def normalise_host(value: object, field_name: str = "destination") -> str:
    """A mail host: an IP literal (canonicalised) or a host name (lower-case IDNA)."""
    if isinstance(value, str):
        no_control(value, field_name)
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
    no_control(value, field_name)
    local, _, domain = value.strip().rpartition("@")
    if not local or len(local) > 64 or not _LOCAL.fullmatch(local):
        raise InvalidInput(field_name, f"{value!r} has an invalid part before the @")
    try:
        domain = normalise_domain(domain, field_name)
    except InvalidInput:
        raise InvalidInput(field_name, f"{value!r} has an invalid domain after the @") from None
    return f"{local}@{domain}"


def new_id() -> str:
    """A new event id: a random (version 4) UUID in hex, as ``uuid.uuid4().hex`` gives."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return b.hex()


def now() -> str:
    """The time, in UTC to the second, ISO 8601 (``2026-11-21T09:30:00+00:00``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


def payload(hook: str, event_id: str, occurred_at: str, values: dict[str, Any]) -> dict[str, Any]:
    """An event as it is stored: its hook, id and time, then each of the hook's fields
    (None when absent)."""
    out: dict[str, Any] = {"event": hook, "id": event_id, "occurred_at": occurred_at}
    for name in PAYLOAD_FIELDS[hook]:
        out[name] = values.get(name)
    return out


def target_key(stored: dict[str, Any]) -> str:
    """What ordering is kept per: ``mailbox:a@example.com`` when the event names a
    mailbox, else ``domain:example.com``."""
    mailbox = stored.get("mailbox")
    return f"mailbox:{mailbox}" if mailbox else f"domain:{stored['domain']}"


def panel_event(hook: str, fields: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A panel's event (*hook* and its *fields*, as an adapter reports them) as it is
    stored, with a new id and the time, and the plain-text password apart (or None).

    Domains and addresses are normalised; InvalidInput names a field that is missing,
    unknown or wrong."""
    fields = dict(fields)
    password = fields.pop("password", None) if hook == "password_reset" else None
    names = PAYLOAD_FIELDS.get(hook)
    if names is None or hook == "vendor_step":
        raise InvalidInput("event", f"{hook!r} is not a panel event")
    unknown = sorted(set(fields) - set(names))
    if unknown:
        raise InvalidInput(unknown[0], f"is not a field of {hook}")
    values: dict[str, str | None] = {}
    for name, value in fields.items():
        if value is None:
            continue
        if name == "mailbox":
            values[name] = normalise_email(value, name)
        elif name == "domain":
            values[name] = normalise_domain(value, name)
        elif name == "reason":
            values[name] = normalise_reason(value, name)
        else:
            values[name] = normalise_host(value, name)
    if hook == "domain_updated" and "destination" not in values:
        raise InvalidInput("destination", "domain_updated needs the new destination")
    targets = [n for n in ("domain", "mailbox") if n in values]
    if len(targets) != 1:
        raise InvalidInput(
            names[0], f"{hook} names one domain or mailbox, not {' and '.join(targets) or 'none'}"
        )
    if password is not None and (not isinstance(password, str) or not password):
        raise InvalidInput("password", "the new password must be a non-empty string")
    return payload(hook, new_id(), now(), values), password
