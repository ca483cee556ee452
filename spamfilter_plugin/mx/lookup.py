"""What MX records DNS gives for a domain, and whether they are the vendor's.

The answer is asked of a chosen server (the panel's authoritative one, so a switch is
seen at once rather than when caches expire) or of the system's resolvers, with a bounded
time, through dnspython.  Host names are compared in lower case without the trailing dot;
an MX set matches when it holds exactly the expected (priority, host) pairs.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import dns.exception
import dns.rdatatype
import dns.resolver

MxSet = tuple[tuple[int, str], ...]


def mx_set(records) -> MxSet:
    """*records* (``(priority, host)`` pairs) as a sorted set: host names in lower case,
    without the trailing dot."""
    return tuple(sorted({(int(p), str(h).rstrip(".").lower()) for p, h in records}))


@dataclass(frozen=True)
class Answer:
    """What DNS said: ``status`` is ``found``, ``none`` (the name exists, no MX),
    ``nxdomain`` (no such name) or ``error`` (no answer; ``detail`` says why)."""

    domain: str
    status: str
    records: MxSet = ()
    detail: str = ""

    def matches(self, expected) -> bool:
        return self.status == "found" and self.records == mx_set(expected)

    def describe(self) -> str:
        if self.status == "found":
            return ", ".join(f"{p} {h}" for p, h in self.records)
        return {"none": "no MX records", "nxdomain": "no such domain"}.get(
            self.status, f"no answer ({self.detail})"
        )


def _addresses(servers: list[str]) -> list[str]:
    """The IP addresses of *servers* (names or addresses): dnspython asks addresses."""
    out = []
    for server in servers:
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in server else socket.AF_INET, server)
            out.append(server)
        except OSError:
            for info in socket.getaddrinfo(server, 53, type=socket.SOCK_DGRAM):
                address = str(info[4][0])
                if address not in out:
                    out.append(address)
    return out


def lookup(
    domain: str,
    *,
    nameservers: list[str] | None = None,
    port: int = 53,
    timeout: float = 5.0,
) -> Answer:
    """The MX records of *domain*, asked of *nameservers* (the system's when None)."""
    try:
        resolver = dns.resolver.Resolver(configure=not nameservers)
        if nameservers:
            resolver.nameservers = _addresses(nameservers)
            resolver.port = port
        resolver.lifetime = resolver.timeout = timeout
        resolver.cache = None
        answer = resolver.resolve(domain, dns.rdatatype.MX, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return Answer(domain, "nxdomain")
    except (dns.exception.DNSException, OSError) as exc:
        return Answer(domain, "error", detail=str(exc) or type(exc).__name__)
    if answer.rrset is None:
        return Answer(domain, "none")
    return Answer(domain, "found", mx_set((r.preference, r.exchange.to_text()) for r in answer))
