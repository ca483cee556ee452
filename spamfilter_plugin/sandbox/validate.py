"""Syntax checks the emulators apply, independent of the client's own checks
(so an emulator catches a client that sends what the vendor would refuse)."""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


def is_domain(value: str) -> bool:
    """An ASCII (punycode) domain name with at least two labels and a non-numeric TLD."""
    if not value or len(value) > 253 or value != value.strip():
        return False
    labels = value.lower().split(".")
    return (
        len(labels) >= 2
        and all(_LABEL.fullmatch(lbl) for lbl in labels)
        and not labels[-1].isdigit()
    )


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_email(value: str) -> bool:
    local, at, domain = (value or "").rpartition("@")
    return (
        bool(at)
        and bool(local)
        and len(local) <= 64
        and bool(_LOCAL.fullmatch(local))
        and is_domain(domain)
    )
