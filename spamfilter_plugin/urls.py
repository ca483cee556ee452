"""Checks on the addresses in the config (a vendor's ``api_url``)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def plain_http_problem(url: str, real: str) -> str | None:
    """Why *url* may not be a vendor's address when the vendor is reached only over HTTPS
    (plain HTTP to anything but a loopback address, where an emulator runs), or None.
    *real* is the vendor's documented address, offered as the fix."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return None
    host = (parts.hostname or "").lower()
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme == "http" and loopback:
        return None
    return (
        f"{url} is not HTTPS: this vendor's API is reached only over HTTPS (plain http:// "
        f"is for an emulator on a loopback address); use {real}"
    )
