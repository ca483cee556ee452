"""DirectAdmin's DNS administration (``CMD_API_DNS_ADMIN``) on loopback, for the demo panel,
written from DirectAdmin's documentation (changelog 1.24.2, "API for DNS administration",
and the legacy API page): basic authentication with a login key; a GET with ``domain``
answers the raw zone; a POST ``action=add`` (``type``, ``name``, ``value``; for MX ``value``
is the priority and ``mx_value`` the host) adds a record; ``action=select`` with
``delete=yes`` and ``mxrecs0`` / ``txtrecs0`` set to ``name=...&value=...`` (the record as
the zone writes it) deletes one.  Answers are ``error=0&text=...&details=``, or
``error=1&...`` naming the problem.

Each change is handed to *published* (``(domain, type, [rdata, ...])``), as DirectAdmin's
name server serves what it writes: the demo's loopback DNS answers the MX lookups from it.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode

PATH = "/CMD_API_DNS_ADMIN"


def _fq(name: str, zone: str) -> str:
    """A zone file name (relative, ``@``, or fully qualified with the dot) as ``a.b.``."""
    name = name.strip().lower()
    if name in ("", "@"):
        return f"{zone}."
    return name if name.endswith(".") else f"{name}.{zone}."


class DirectAdminDns:
    """The zones of the demo panel behind ``CMD_API_DNS_ADMIN`` (a WSGI application)."""

    def __init__(self, user: str, key: str, published: Callable[[str, str, list[str]], None]):
        self.user, self.key, self.published = user, key, published
        self.zones: dict[str, list[tuple[str, str, str]]] = {}
        self._lock = threading.Lock()

    def create_zone(self, domain: str, mail_ip: str = "127.0.0.1") -> None:
        """The zone DirectAdmin makes with a domain: its mail host as the one MX."""
        with self._lock:
            self.zones[domain] = [
                (f"{domain}.", "MX", f"10 mail.{domain}."),
                (f"mail.{domain}.", "A", mail_ip),
            ]
        self._publish(domain)

    def _publish(self, domain: str) -> None:
        mx = [value for name, rtype, value in self.zones.get(domain, [])
              if rtype == "MX" and name == f"{domain}."]  # fmt: skip
        self.published(domain, "MX", mx)

    def zone_text(self, domain: str) -> str:
        lines = [
            f"$ORIGIN {domain}.",
            f"@ 3600 IN SOA ns1.{domain}. hostmaster.{domain}. 1 3600 900 604800 3600",
            f"@ 3600 IN NS ns1.{domain}.",
        ]
        for name, rtype, value in self.zones[domain]:
            lines.append(f"{name} 3600 IN {rtype} {value}")
        return "\n".join(lines) + "\n"

    def answer(self, method: str, params: dict[str, str]) -> str:
        domain = params.get("domain", "").lower()
        if domain not in self.zones:
            return _said(1, "Cannot find that domain", domain)
        if method == "GET":
            return self.zone_text(domain)
        action = params.get("action")
        with self._lock:
            records = self.zones[domain]
            if action == "add":
                rtype = params.get("type", "").upper()
                name = _fq(params.get("name", ""), domain)
                if rtype == "MX":
                    value = f"{int(params['value'])} {_fq(params.get('mx_value', ''), domain)}"
                elif rtype == "TXT":
                    value = params.get("value", "")
                else:
                    return _said(1, "Unsupported record type", rtype)
                if (name, rtype, value) not in records:
                    records.append((name, rtype, value))
            elif action == "select" and params.get("delete") == "yes":
                for key, rtype in (("mxrecs0", "MX"), ("txtrecs0", "TXT")):
                    if key not in params:
                        continue
                    raw = {k: v[0] for k, v in parse_qs(params[key]).items()}
                    name = _fq(raw.get("name", ""), domain)
                    value = raw.get("value", "")
                    if rtype == "MX":
                        priority, host = value.split(None, 1)
                        value = f"{int(priority)} {_fq(host, domain)}"
                    if (name, rtype, value) not in records:
                        return _said(1, "No such record", params[key])
                    records.remove((name, rtype, value))
            else:
                return _said(1, "Unknown action", str(action))
        self._publish(domain)
        return _said(0, "Records Updated")

    def __call__(self, environ, start_response):
        expected = base64.b64encode(f"{self.user}:{self.key}".encode()).decode()
        if environ.get("HTTP_AUTHORIZATION") != f"Basic {expected}":
            return _reply(start_response, "401 Unauthorized", "unauthorized")
        if environ.get("PATH_INFO") != PATH:
            return _reply(start_response, "404 Not Found", "no such command")
        method = environ["REQUEST_METHOD"]
        if method == "GET":
            query = environ.get("QUERY_STRING", "")
        else:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            query = environ["wsgi.input"].read(length).decode("utf-8", "replace")
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        return _reply(start_response, "200 OK", self.answer(method, params))


def _said(error: int, text: str, details: str = "") -> str:
    return urlencode({"error": error, "text": text, "details": details})


def _reply(start_response, status: str, text: str):
    body = text.encode("utf-8")
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
