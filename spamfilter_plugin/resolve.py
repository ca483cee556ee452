"""Host names to IP addresses, for vendors that route mail by IP (SpamWall).

The system's resolver is used (``getaddrinfo``); IPv4 addresses come first.  A name that
does not exist is a permanent :class:`~spamfilter_plugin.errors.VendorRejected` naming
it; a resolver that is failing for now is a temporary
:class:`~spamfilter_plugin.errors.VendorUnavailable`.
"""

from __future__ import annotations

import socket

from .errors import VendorRejected, VendorUnavailable
from .events import is_ip


def resolve_ip(vendor: str, host: str, fix: str) -> str:
    """*host* itself when it is an IP, else its first address (IPv4 first).

    :param fix: what the admin can do instead, for the error message."""
    if is_ip(host):
        return host
    try:
        infos = socket.getaddrinfo(host, 25, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        cls = VendorUnavailable if exc.errno == socket.EAI_AGAIN else VendorRejected
        raise cls(
            vendor, f"the destination host name {host} does not resolve ({exc.strerror}); {fix}"
        ) from None
    return sorted({str(info[4][0]) for info in infos}, key=lambda a: (":" in a, a))[0]
