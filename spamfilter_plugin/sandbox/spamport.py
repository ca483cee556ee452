"""SpamPort emulator: ``POST /api`` with form fields, JSON ``{"message", "status"}`` answers.

Written from the SpamPort API document.  Where the document is silent the
emulator's choice is stated here and in docs/sandbox.md:

* a wrong username/password answers
  ``{"message":"Invalid username or password","status":"failure"}``
  (the document lists no message for it); after ``block_after`` (5) of them from
  one IP, every request from that IP answers ``Login blocked``, even with good
  credentials, until the emulator is reset;
* ``version`` 1.6 to 1.8 is accepted: the document lists 1.8 and promises backwards
  compatibility, and the PHP class it links (jordenc/SpamPort) sends 1.7 (1.6 added
  set_filter and set_spamscore, 1.7 greylisting and weekly reports); a version below
  ``min_version`` (default 1.6, seedable), above 1.8 or missing answers the documented
  "Outdated version" error;
* invalid values the document gives no message for (``noscan``, ``greylist``,
  ``spamscore``) answer ``Unknown error``;
* ``add`` reports a bad domain as ``Invalid domain: <domain>``, the other
  functions as ``Invalid domain name supplied``;
* ``GET /login/<domain>/<code>`` accepts a login code for 60 seconds, once.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from .base import Emulator, Reply, Request
from .validate import is_domain, is_email, is_ip

VERSION = "1.8"  # the newest version, the document's
MIN_VERSION = "1.6"  # the oldest accepted by default
USERNAME = "sandbox"
PASSWORD = "sandbox-Pa55&#%+="
SPAMSCORES = ("veryhigh", "high", "normal", "low", "verylow")
FUNCTIONS = (
    "add",
    "remove",
    "login",
    "info",
    "get_domains",
    "new_password",
    "set_outgoing",
    "set_report_to",
    "set_filter",
    "set_spamscore",
    "set_greylist",
)
OUTDATED = (
    "Outdated version of Spamport_API. Please upgrade via https://github.com/jordenc/SpamPort"
)
LOGIN_CODE_TTL = 60
#: functions that set one field: function -> (field, valid values)
FIELD_SETTERS = {
    "set_filter": ("noscan", ("0", "1")),
    "set_spamscore": ("spamscore", SPAMSCORES),
    "set_greylist": ("greylist", ("0", "1")),
}


class Failure(Exception):
    pass


def _version(text: str) -> tuple[int, ...] | None:
    """``"1.7"`` as ``(1, 7)``; None when it is not a dotted number."""
    parts = text.strip().split(".")
    if not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def ok(message: Any) -> Reply:
    return Reply.json({"message": message, "status": "success"})


def failure(message: str) -> Reply:
    return Reply.json({"message": message, "status": "failure"})


class SpamPortEmulator(Emulator):
    name = "spamport"
    port_offset = 0
    api_path = "/api"
    settings = ("block_after", "license_limit", "archive_license_limit", "min_version")

    def __init__(
        self,
        *,
        username: str = USERNAME,
        password: str = PASSWORD,
        block_after: int = 5,
        license_limit: int = 100,
        archive_license_limit: int = 10,
        min_version: str = MIN_VERSION,
        **kw,
    ) -> None:
        self.min_version = min_version
        self.username = username
        self.password = self.secret(password)
        self.block_after = block_after
        self.license_limit = license_limit
        self.archive_license_limit = archive_license_limit
        super().__init__(**kw)

    def initial_state(self) -> None:
        self.domains: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, int] = {}
        self.blocked: set[str] = set()
        self.login_codes: dict[str, tuple[str, float]] = {}
        self.domain_passwords: dict[str, str] = {}

    def snapshot(self) -> dict[str, Any]:
        return {
            "domains": self.domains,
            "blocked_ips": sorted(self.blocked),
            "failures": self.failures,
            "license_limit": self.license_limit,
            "archive_license_limit": self.archive_license_limit,
            "min_version": self.min_version,
        }

    def credentials(self) -> dict[str, Any]:
        return {"username": self.username, "password": self.password}

    def unclear(self) -> Reply:
        return failure("The request could not be completed")

    def seed_data(self, data: dict[str, Any]) -> None:
        for key in ("license_limit", "archive_license_limit", "block_after"):
            if key in data:
                setattr(self, key, int(data.pop(key)))
        if "min_version" in data:
            value = str(data.pop("min_version"))
            if _version(value) is None:
                raise ValueError(f"min_version: {value!r} is not a version like 1.7")
            self.min_version = value
        if data.pop("unblock", False):
            self.blocked.clear()
            self.failures.clear()
        for name, fields in data.pop("domains", {}).items():
            self.domains[name] = self._new_domain(name, **fields)
        if data:
            raise ValueError(f"unknown seed keys: {', '.join(sorted(data))}")

    @staticmethod
    def _new_domain(
        name: str, transport: str = "mail.example.net", **fields: Any
    ) -> dict[str, Any]:
        record = {
            "domain": name,
            "transport": f"smtp:[{transport}]" if ":" in transport else f"smtp:{transport}",
            "added": dt.date.today().isoformat(),
            "report_to": "",
            "weekly": "0",
            "archive": "14",
            "spamscore": "normal",
            "noscan": "0",
            "greylist": "0",
        }
        record.update({k: str(v) for k, v in fields.items()})
        return record

    # -- the API ---------------------------------------------------------

    def handle(self, req: Request) -> Reply:
        if req.path.startswith("/login/"):
            return self._login_page(req)
        if req.path.rstrip("/") != self.api_path:
            return Reply.text("Not Found", 404, "text/html; charset=utf-8")
        if req.method != "POST":
            return Reply(405, failure("Unknown error").body, headers=[("Allow", "POST")])
        f = req.form()
        if not f.get("username"):
            return failure("No username supplied")
        if not f.get("password"):
            return failure("No password supplied")
        ip = req.remote_addr
        if ip in self.blocked:
            return failure("Login blocked")
        if f["username"] != self.username or f["password"] != self.password:
            self.failures[ip] = self.failures.get(ip, 0) + 1
            if self.failures[ip] >= self.block_after:
                self.blocked.add(ip)
            return failure("Invalid username or password")
        self.failures.pop(ip, None)
        version = _version(f.get("version", ""))
        lowest, highest = _version(self.min_version) or (0,), _version(VERSION) or (0,)
        if version is None or not lowest <= version <= highest:
            return failure(OUTDATED)
        function = f.get("function", "")
        if function not in FUNCTIONS:
            return failure("Unknown action")
        if function == "get_domains":
            if not self.domains:
                return failure("No domains found")
            return ok(
                [
                    {k: d[k] for k in ("domain", "transport", "added", "report_to")}
                    for d in sorted(self.domains.values(), key=lambda d: d["domain"])
                ]
            )
        domain = f.get("domain", "")
        if not domain:
            return failure("No domain supplied")
        domain = domain.strip().lower()
        try:
            if function == "add":
                return self._add(domain, f)
            if not is_domain(domain):
                return failure("Invalid domain name supplied")
            if domain not in self.domains:
                return failure("Domain not found")
            if function in FIELD_SETTERS:
                return self._set_field(domain, f, *FIELD_SETTERS[function])
            return getattr(self, f"_{function}")(domain, f)
        except Failure as exc:
            return failure(str(exc))

    def _transport(self, value: str, kind: str | None) -> str:
        if kind not in ("hostname", "ip"):
            raise Failure("transport_type can be either 'hostname' or 'ip'")
        valid = is_ip(value) if kind == "ip" else is_domain(value)
        if not value or not valid:
            raise Failure(f"Invalid transport: {value}")
        return f"smtp:[{value}]" if kind == "ip" and ":" in value else f"smtp:{value}"

    @staticmethod
    def _flag(value: str | None, default: str = "0") -> str:
        value = default if value in (None, "") else value
        if value not in ("0", "1"):
            raise Failure("Unknown error")
        return value

    def _add(self, domain: str, f: dict[str, str]) -> Reply:
        if not is_domain(domain):
            return failure(f"Invalid domain: {f.get('domain', '')}")
        try:
            transport = self._transport(f.get("transport", ""), f.get("transport_type"))
            archive = f.get("archive", "")
            if archive not in ("14", "365"):
                raise Failure(f"Invalid data for archiving (must be 14 or 365): {archive}")
            report_to = f.get("report_to", "")
            if report_to and not is_email(report_to):
                raise Failure(f"Invalid reporting mail address supplied: {report_to}")
            spamscore = f.get("spamscore") or "normal"
            if spamscore not in SPAMSCORES:
                raise Failure("Unknown error")
            noscan, greylist = self._flag(f.get("noscan")), self._flag(f.get("greylist"))
            weekly = "1" if f.get("weekly") == "1" else "0"
        except Failure as exc:
            return failure(str(exc))
        if domain in self.domains:
            return failure(f"Domain already exists: {domain}")
        if len(self.domains) >= self.license_limit:
            return failure("License fully used")
        if (
            archive == "365"
            and sum(d["archive"] == "365" for d in self.domains.values())
            >= self.archive_license_limit
        ):
            return failure("Archive license fully used")
        self.domains[domain] = {
            "domain": domain,
            "transport": transport,
            "added": dt.date.today().isoformat(),
            "report_to": report_to,
            "weekly": weekly,
            "archive": archive,
            "spamscore": spamscore,
            "noscan": noscan,
            "greylist": greylist,
        }
        return ok("Domain added successfully")

    def _remove(self, domain: str, f: dict[str, str]) -> Reply:
        del self.domains[domain]
        self.domain_passwords.pop(domain, None)
        return ok("Domain deleted successfully")

    def _login(self, domain: str, f: dict[str, str]) -> Reply:
        code = secrets.token_hex(16)
        self.login_codes[code] = (domain, self.clock() + LOGIN_CODE_TTL)
        return ok(code)

    def _info(self, domain: str, f: dict[str, str]) -> Reply:
        d = self.domains[domain]
        return ok(
            {
                k: d[k]
                for k in (
                    "domain",
                    "transport",
                    "added",
                    "report_to",
                    "spamscore",
                    "noscan",
                    "greylist",
                )
            }
        )

    def _new_password(self, domain: str, f: dict[str, str]) -> Reply:
        password = self.secret(secrets.token_urlsafe(12))
        self.domain_passwords[domain] = password
        return ok(password)

    def _set_outgoing(self, domain: str, f: dict[str, str]) -> Reply:
        self.domains[domain]["transport"] = self._transport(
            f.get("outgoing", ""), f.get("transport")
        )
        return ok("Domain updated")

    def _set_report_to(self, domain: str, f: dict[str, str]) -> Reply:
        report_to = f.get("report_to", "")
        if report_to and not is_email(report_to):
            raise Failure(f"Invalid reporting mail address supplied: {report_to}")
        self.domains[domain].update(
            report_to=report_to, weekly="1" if f.get("weekly") == "1" else "0"
        )
        return ok("Domain updated")

    def _set_field(
        self, domain: str, f: dict[str, str], field: str, allowed: tuple[str, ...]
    ) -> Reply:
        """set_filter, set_spamscore, set_greylist: one field, one set of valid values."""
        if f.get(field) not in allowed:
            raise Failure("Unknown error")
        self.domains[domain][field] = f[field]
        return ok("Domain updated")

    def _login_page(self, req: Request) -> Reply:
        parts = req.path.strip("/").split("/")
        if req.method != "GET" or len(parts) != 3:
            return Reply.text("Not Found", 404, "text/html; charset=utf-8")
        _, domain, code = parts
        found = self.login_codes.pop(code, None)
        if found is None or found[0] != domain or found[1] < self.clock():
            return Reply.text(
                "<html><body>Login link expired or invalid</body></html>",
                403,
                "text/html; charset=utf-8",
            )
        return Reply.text(
            f"<html><body>Logged in to SpamPort for {domain}</body></html>",
            200,
            "text/html; charset=utf-8",
        )
