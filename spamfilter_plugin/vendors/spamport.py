"""SpamPort API client: ``POST`` form fields to ``api_url``, JSON ``{"message", "status"}`` back.

One method per documented function.  Success is read from ``status``; a
failure's ``message`` (the only thing SpamPort says about it) is mapped to a
typed error in :func:`error_for`.  HTTP, timeouts, retries and redaction are
:mod:`spamfilter_plugin.http`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from marshmallow import fields, post_load

from .. import settle
from ..errors import (
    VendorAuthError,
    VendorConflict,
    VendorError,
    VendorNotFound,
    VendorRejected,
    VendorResponseError,
    VendorUnavailable,
    VendorUnclear,
)
from ..events import is_ip, normalise_domain, normalise_email, normalise_host
from ..http import HttpClient, Response
from ..redaction import Secret
from .response import ResponseSchema, read_response

VENDOR = "spamport"
API_VERSION = "1.8"
DEFAULT_URL = "https://www.spamport.com/api"
SPAMSCORES = ("veryhigh", "high", "normal", "low", "verylow")
ARCHIVE_DAYS = (14, 365)


#: what a login code may be before it goes into the login URL (no /, .., %, CR or LF)
_LOGIN_CODE = re.compile(r"[A-Za-z0-9_-]{1,256}")


class SpamPortLoginBlocked(VendorAuthError):
    """SpamPort blocked this server's IP after too many failed logins."""


# Documented failure messages -> (error class, what to tell the admin).  Matched
# exactly, or by prefix for the ones that end with the offending value.
_EXACT: dict[str, tuple[type[VendorError], str]] = {
    "No username supplied": (
        VendorAuthError,
        "no username was sent; set username in [vendors.spamport]",
    ),
    "No password supplied": (
        VendorAuthError,
        "no password was sent; set password in [vendors.spamport]",
    ),
    "Login blocked": (
        SpamPortLoginBlocked,
        "SpamPort blocked this server's IP after repeated login failures; "
        "fix the credentials, ask info@spamport.com to unblock the IP, then run 'spamfilter check'",
    ),
    "No domain supplied": (VendorRejected, "no domain was sent"),
    "Invalid domain name supplied": (VendorRejected, "SpamPort refused the domain name"),
    "Domain not found": (VendorNotFound, "the domain is not in the SpamPort account"),
    "License fully used": (
        VendorRejected,
        "the SpamPort licence is fully used; extend it or remove domains",
    ),
    "Archive license fully used": (
        VendorRejected,
        "the SpamPort archiving licence is fully used; extend it or set archive = 14",
    ),
    "transport_type can be either 'hostname' or 'ip'": (
        VendorRejected,
        "SpamPort refused the transport type",
    ),
    "No domains found": (VendorNotFound, "the SpamPort account holds no domains"),
    "Unknown error": (
        VendorUnavailable,
        "SpamPort reported an unknown error; it will be tried again later",
    ),
    "Unknown action": (
        VendorRejected,
        "SpamPort did not recognise the function; upgrade spamfilter-plugin",
    ),
}
_PREFIX: dict[str, tuple[type[VendorError], str]] = {
    "Outdated version of Spamport_API": (
        VendorRejected,
        f"SpamPort no longer supports API version {API_VERSION}; upgrade spamfilter-plugin",
    ),
    "Invalid domain: ": (VendorRejected, "SpamPort refused the domain"),
    "Invalid transport: ": (VendorRejected, "SpamPort refused the destination mail server"),
    "Domain already exists: ": (VendorConflict, "the domain is already in the SpamPort account"),
    "Invalid data for archiving": (
        VendorRejected,
        "SpamPort refused the archive period (14 or 365 days)",
    ),
    "Invalid reporting mail address supplied: ": (
        VendorRejected,
        "SpamPort refused the report address",
    ),
}
# Bad credentials: SpamPort's document lists no message for them, so anything
# that speaks of the login is taken as refused credentials (never retried).
_AUTHISH = re.compile(r"(?i)\b(password|username|login|credential|authenticat|unauthori[sz]ed)")


def error_for(
    message: str, status: int | None = None, body: bytes | str | None = None
) -> VendorError:
    """The typed error for a SpamPort failure message."""
    found = _EXACT.get(message)
    if found is None:
        found = next((v for k, v in _PREFIX.items() if message.startswith(k)), None)
    if found is None:  # not a message the document lists: its meaning is not known
        unknown: type[VendorError] = VendorAuthError if _AUTHISH.search(message) else VendorUnclear
        found = (unknown, "SpamPort refused the request")
    cls, advice = found
    # a failure SpamPort reports is an answer, not a transport fault: never repeated at once
    # (a temporary one, "Unknown error", is left to a later delivery)
    return cls(
        VENDOR, f"{advice} (SpamPort said: {message})", status=status, body=body, retry=False
    )


def _classify(resp: Response) -> VendorError | None:
    """Read the envelope of a 200 answer.

    Failures become typed errors; the rest is left to http.py."""
    if resp.status != 200:
        return None
    doc = resp.json()
    if (
        not isinstance(doc, dict)
        or doc.get("status") not in ("success", "failure")
        or "message" not in doc
    ):
        return VendorResponseError(
            VENDOR,
            "answered with JSON that is not SpamPort's {message, status} envelope",
            status=resp.status,
            body=resp.body,
        )
    if doc["status"] == "failure":
        return error_for(str(doc["message"]), resp.status, resp.body)
    return None


def transport_type(destination: str) -> str:
    """``ip`` for an IPv4/IPv6 literal, else ``hostname``."""
    return "ip" if is_ip(destination) else "hostname"


@dataclass(frozen=True)
class DomainInfo:
    domain: str
    transport: str
    added: str
    report_to: str
    spamscore: str | None = None
    noscan: bool | None = None
    greylist: bool | None = None

    @property
    def destination(self) -> str:
        """The mail host without SpamPort's ``smtp:`` prefix and IPv6 brackets."""
        host = self.transport.removeprefix("smtp:")
        return host[1:-1] if host.startswith("[") and host.endswith("]") else host

    @classmethod
    def from_api(cls, data: Any) -> DomainInfo:
        return cls(**read_response(VENDOR, _DomainInfoSchema(), data, "domain info"))


def _flag(value: Any) -> bool | None:
    return None if value is None else str(value) == "1"


class _DomainInfoSchema(ResponseSchema):
    """SpamPort's domain info (unknown keys ignored; noscan/greylist "0"/"1" become booleans)."""

    domain = fields.String(required=True)
    transport = fields.String(required=True)
    added = fields.String(load_default="")
    report_to = fields.String(load_default="", allow_none=True)
    spamscore = fields.String(load_default=None, allow_none=True)
    noscan = fields.Raw(load_default=None, allow_none=True)
    greylist = fields.Raw(load_default=None, allow_none=True)

    @post_load
    def _convert(self, data: dict, **kwargs) -> dict:
        data["report_to"] = data["report_to"] or ""
        data["noscan"], data["greylist"] = _flag(data["noscan"]), _flag(data["greylist"])
        return data


class SpamPortClient:
    """Typed access to every documented SpamPort function.

    :param http: the HTTP client (its ``base_url`` is the API URL).
    :param username: the SpamPort account.
    :param password: its password (sent form-encoded; never logged).
    """

    def __init__(self, http: HttpClient, username: str, password: Secret) -> None:
        self.http = http
        http.classify = _classify
        self.username = username
        self.password = password

    def _call(self, function: str, **fields: Any) -> Any:
        data = {
            "username": self.username,
            "password": self.password.reveal(),
            "version": API_VERSION,
            "function": function,
        }
        data.update({k: v for k, v in fields.items() if v is not None})
        return self.http.request("POST", data=data).json()["message"]

    def add(
        self,
        domain: str,
        destination: str,
        *,
        archive: int = 14,
        report_to: str = "",
        weekly: bool = False,
        noscan: bool = False,
        spamscore: str = "normal",
        greylist: bool = False,
    ) -> None:
        """Add a domain with all its settings in one call."""
        if archive not in ARCHIVE_DAYS:
            raise VendorRejected(VENDOR, f"archive must be 14 or 365 days, not {archive}")
        if spamscore not in SPAMSCORES:
            raise VendorRejected(
                VENDOR, f"spamscore must be one of {', '.join(SPAMSCORES)}, not {spamscore!r}"
            )
        destination = normalise_host(destination, "destination")
        self._call(
            "add",
            domain=normalise_domain(domain),
            transport=destination,
            transport_type=transport_type(destination),
            archive=str(archive),
            report_to=normalise_email(report_to, "report_to") if report_to else "",
            weekly="1" if weekly else "0",
            noscan="1" if noscan else "0",
            spamscore=spamscore,
            greylist="1" if greylist else "0",
        )

    def remove(self, domain: str) -> None:
        """Remove a domain and all its archived mail (cannot be undone); one that is not
        there raises VendorNotFound, and an unclear refusal is settled against the domain
        list (not held: done)."""
        domain = normalise_domain(domain)
        settle.deleted(
            VENDOR, domain, lambda: self._call("remove", domain=domain), route_of=self.route_of
        )

    def route_of(self, domain: str) -> Any:
        """The mail host SpamPort delivers *domain* to, or :data:`~..settle.NOT_HELD`."""
        name = normalise_domain(domain)
        held = (d.destination for d in self.get_domains() if d.domain.lower() == name)
        return next(held, settle.NOT_HELD)

    def login(self, domain: str) -> str:
        """A login code, valid for at most one minute."""
        return str(self._call("login", domain=normalise_domain(domain)))

    def login_url(self, domain: str) -> str:
        """Fetch a login code and build the documented login URL (valid one minute)."""
        domain = normalise_domain(domain)
        code = self.login(domain)
        if not _LOGIN_CODE.fullmatch(code):
            raise VendorResponseError(
                VENDOR,
                "answered login with a code that is not letters, digits, - or _; "
                "no login link was made",
            )
        parts = urlsplit(self.http.base_url)
        return urlunsplit((parts.scheme, parts.netloc, f"/login/{domain}/{code}", "", ""))

    def info(self, domain: str) -> DomainInfo:
        return DomainInfo.from_api(self._call("info", domain=normalise_domain(domain)))

    def get_domains(self) -> list[DomainInfo]:
        """Every domain in the account ([] when there are none)."""
        try:
            rows = self._call("get_domains")
        except VendorNotFound:  # "No domains found"
            return []
        if not isinstance(rows, list):
            raise VendorResponseError(VENDOR, "answered get_domains without a list", body=str(rows))
        return [DomainInfo.from_api(r) for r in rows]

    def new_password(self, domain: str) -> Secret:
        """Generate a new password for the domain's SpamPort login; returned as a Secret.

        The answer carries the new password, so it is a secret as a whole: an answer we
        cannot read is never quoted, and the error says the password may have changed."""
        domain = normalise_domain(domain)
        try:
            return Secret(str(self._call("new_password", domain=domain)))
        except VendorResponseError as exc:
            if exc.body:
                Secret(exc.body)  # whatever it held is masked from here on
            raise VendorResponseError(
                VENDOR,
                f"answered new_password for {domain} with something we cannot read, so the "
                "new password is unknown; SpamPort may have changed the domain's password. "
                f"Ask for a new one: spamfilter emit password-reset --domain {domain}",
                status=exc.status,
            ) from None

    def set_outgoing(self, domain: str, destination: str) -> None:
        destination = normalise_host(destination, "destination")
        self._call(
            "set_outgoing",
            domain=normalise_domain(domain),
            outgoing=destination,
            transport=transport_type(destination),
        )

    def set_report_to(self, domain: str, report_to: str, weekly: bool = False) -> None:
        """Send reports to *report_to* (empty disables them), daily or weekly."""
        self._call(
            "set_report_to",
            domain=normalise_domain(domain),
            report_to=normalise_email(report_to, "report_to") if report_to else "",
            weekly="1" if weekly else "0",
        )

    def set_filter(self, domain: str, enabled: bool) -> None:
        """Turn the spam filter on or off (SpamPort's ``noscan`` is the inverse)."""
        self._call("set_filter", domain=normalise_domain(domain), noscan="0" if enabled else "1")

    def set_spamscore(self, domain: str, spamscore: str) -> None:
        if spamscore not in SPAMSCORES:
            raise VendorRejected(
                VENDOR, f"spamscore must be one of {', '.join(SPAMSCORES)}, not {spamscore!r}"
            )
        self._call("set_spamscore", domain=normalise_domain(domain), spamscore=spamscore)

    def set_greylist(self, domain: str, enabled: bool) -> None:
        self._call(
            "set_greylist", domain=normalise_domain(domain), greylist="1" if enabled else "0"
        )
