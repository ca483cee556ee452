"""spambarrier API client: a JSON ``{"method", "params"}`` POST to one endpoint, with
``user_id`` and ``api_token`` in ``params``; ``{"result": "success", "params": ...}`` back.

One typed method per documented method.  Where the document is silent, the vendor's own
PHP client is the evidence followed (docs/vendors/spambarrier.md):

* a failure is ``{"result": "error", "params": {"message": ...}}`` (the client throws
  ``params->message``); an ``error`` object in its place is read as well, and a
  machine-readable ``code`` beside the message, when there is one, picks the typed error;
* the whitelist methods are spelled ``get-whitelistentries`` in the document and
  ``get-whitelist-entries`` in the client: the document's spelling is sent first, and on an
  unknown-method answer the other once; the spelling that worked is remembered
  (:attr:`SpamBarrierClient.spelling`, handed to ``on_spelling`` to keep across processes);
* ``edit-domain`` answers ``{"result": "success"}`` with no ``params``.

Success is ``result == "success"``; never the wording.  The real endpoint is only
reachable over HTTPS, and a plain ``http://`` URL is refused unless it is a loopback
address (an emulator on this machine).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marshmallow import fields, post_load

from .. import settle
from ..errors import (
    ConfigError,
    VendorAuthError,
    VendorConflict,
    VendorError,
    VendorNotFound,
    VendorRejected,
    VendorResponseError,
    VendorUnclear,
)
from ..events import normalise_domain, normalise_email, normalise_host
from ..http import ACCEPT, HttpClient, Response
from ..redaction import Secret, register_name
from ..urls import plain_http_problem
from .response import ResponseSchema, read_response

VENDOR = "spambarrier"
DEFAULT_URL = "https://www.spambarrier.de/api/"
SPAM_TREATMENTS = ("reject", "quarantine", "tag")
VIRUS_TREATMENTS = ("reject", "quarantine")
INTERVALS = ("hour", "day", "month")
#: the whitelist methods: the document's spelling, then the vendor client's
SPELLINGS = {
    "document": ("get-whitelistentries", "add-whitelistentry", "delete-whitelistentry"),
    "client": ("get-whitelist-entries", "add-whitelist-entry", "delete-whitelist-entry"),
}

register_name("api_token")


# -- what the API answers ------------------------------------------------------------


@dataclass(frozen=True)
class SbDomain:
    id: str
    name: str
    host: str
    has_authentication: bool
    confirmed: bool
    created: int
    quarantine_mail_count: int


@dataclass(frozen=True)
class Added:
    domain_id: str
    txt_record: str


@dataclass(frozen=True)
class FilterSettings:
    spam_treatment: str
    spam_threshold: float
    virus_treatment: str
    greylisting: bool


@dataclass(frozen=True)
class QuarantineMessage:
    message_id: str
    sender: str
    recipient: str
    subject: str
    date: int
    seen: bool
    body: str


@dataclass(frozen=True)
class Counts:
    total: int
    passed: int
    spam: int
    virus: int


@dataclass(frozen=True)
class Statistics:
    intervals: list[tuple[str, Counts]]
    totals: Counts
    total_traffic: int
    passed_traffic: int
    saved_traffic: int


@dataclass(frozen=True)
class WhitelistEntry:
    id: str
    sender: str
    recipient: str
    created: str


class _Domain(ResponseSchema):
    into = SbDomain
    id = fields.String(required=True)
    name = fields.String(required=True)
    host = fields.String(load_default="")
    has_authentication = fields.Boolean(load_default=False)
    confirmed = fields.Boolean(load_default=False)
    created = fields.Integer(load_default=0)
    quarantine_mail_count = fields.Integer(load_default=0)


class _Filter(ResponseSchema):
    into = FilterSettings
    spam_treatment = fields.String(required=True)
    spam_threshold = fields.Float(required=True)
    virus_treatment = fields.String(required=True)
    greylisting = fields.Boolean(required=True)


class _Message(ResponseSchema):
    into = QuarantineMessage
    message_id = fields.String(required=True)
    sender = fields.String(data_key="from", load_default="")
    recipient = fields.String(data_key="to", load_default="")
    subject = fields.String(load_default="")
    date = fields.Integer(load_default=0)
    seen = fields.Boolean(load_default=False)
    body = fields.String(load_default="")


class _Counts(ResponseSchema):
    total_count = fields.Integer(required=True)
    pass_count = fields.Integer(required=True)
    spam_count = fields.Integer(required=True)
    virus_count = fields.Integer(required=True)

    @post_load
    def _make(self, d, **kwargs):
        return Counts(d["total_count"], d["pass_count"], d["spam_count"], d["virus_count"])


class _Interval(ResponseSchema):
    label = fields.String(required=True)
    values = fields.Nested(_Counts, required=True)


class _Total(ResponseSchema):
    statistics = fields.Nested(_Counts, required=True)
    totalTraffic = fields.Integer(load_default=0)
    passedTraffic = fields.Integer(load_default=0)
    savedTraffic = fields.Integer(load_default=0)


class _Statistics(ResponseSchema):
    intervals = fields.List(fields.Nested(_Interval), required=True)
    total = fields.Nested(_Total, required=True)

    @post_load
    def _make(self, d, **kwargs):
        t = d["total"]
        return Statistics(
            [(i["label"], i["values"]) for i in d["intervals"]],
            t["statistics"],
            t["totalTraffic"],
            t["passedTraffic"],
            t["savedTraffic"],
        )


class _Entry(ResponseSchema):
    into = WhitelistEntry
    id = fields.String(required=True)
    sender = fields.String(data_key="from", required=True)
    recipient = fields.String(data_key="to", required=True)
    created = fields.String(load_default="")


# -- errors ---------------------------------------------------------------------------


class UnknownMethod(VendorRejected):
    """The server does not know the method (under this spelling)."""


class NotVisibleYet(VendorRejected):
    """confirm-txt-record did not find the TXT record (yet)."""


_BY_CODE: dict[str, type[VendorError]] = {
    "authentication_failed": VendorAuthError,
    "unknown_method": UnknownMethod,
    "domain_exists": VendorConflict,
    "domain_not_found": VendorNotFound,
    "message_not_found": VendorNotFound,
    "entry_not_found": VendorNotFound,
    "txt_record_not_found": NotVisibleYet,
}


def error_for(method: str, doc: dict, resp: Response) -> VendorError:
    """The typed error for a ``{"result": "error"}`` answer, read the way the vendor's client
    reads it (``params.message``), or from an ``error`` object."""
    detail = doc.get("params") if isinstance(doc.get("params"), dict) else None
    if detail is None and isinstance(doc.get("error"), dict):
        detail = doc["error"]
    detail = detail or {}
    message, code = str(detail.get("message") or "no message"), detail.get("code")
    said = f"(spambarrier said: {message})"
    # a code the client knows says what the refusal means; no code, or one it does not
    # know, leaves the meaning unclear (settled by reading back where that is possible)
    known = ("invalid_request", "missing_parameter", "invalid_parameter")
    cls = _BY_CODE.get(code) if isinstance(code, str) else None
    if cls is None:
        cls = VendorRejected if code in known else VendorUnclear
    if cls is VendorAuthError:
        text = (
            f"refused user_id and api_token {said}; fix them in [vendors.spambarrier] and run "
            "'spamfilter check'"
        )
    elif code in ("invalid_request", "missing_parameter"):
        text = f"called {method} a malformed request {said}; please report this bug"
    else:
        text = f"{method} was refused {said}"
    error = cls(VENDOR, text, status=resp.status, body=resp.body, retry=False)
    error.code = code if isinstance(code, str) else None  # type: ignore[attr-defined]
    return error


def _classify(resp: Response) -> VendorError | None:
    """An answer in spambarrier's envelope is read by :meth:`SpamBarrierClient.call`,
    whatever its HTTP status; anything else is left to the status."""
    if 200 <= resp.status < 300 or resp.body.lstrip()[:1] != b"{":
        return None
    try:
        doc = resp.json()
    except VendorResponseError:
        return None
    return ACCEPT if isinstance(doc, dict) and doc.get("result") == "error" else None


class SpamBarrierClient:
    """Typed access to every documented spambarrier method.

    :param http: the HTTP client (``base_url`` is the endpoint).
    :param user_id: the account's user id.
    :param api_token: its API token (sent in the body; never logged).
    :param spelling: the whitelist spelling the server is known to take (``"document"``
        or ``"client"``), or None when not known yet.
    :param on_spelling: called with the spelling once a whitelist call has worked with it.
    """

    def __init__(
        self,
        http: HttpClient,
        user_id: int,
        api_token: Secret,
        *,
        spelling: str | None = None,
        on_spelling: Callable[[str], None] | None = None,
    ) -> None:
        problem = plain_http_problem(http.base_url, DEFAULT_URL)
        if problem:
            raise ConfigError(problem, location="[vendors.spambarrier] api_url")
        self.http, self.user_id, self.api_token = http, user_id, api_token
        self.spelling = spelling if spelling in SPELLINGS else None
        self.on_spelling = on_spelling
        http.classify = _classify

    def call(self, method: str, **params: Any) -> Any:
        """Run *method*; its answer's ``params`` (None when there are none), or the typed error."""
        body = {
            "method": method,
            "params": {"user_id": self.user_id, "api_token": self.api_token.reveal(), **params},
        }
        resp = self.http.request("POST", json=body, headers={"Accept": "application/json"})
        doc = resp.json()
        if not isinstance(doc, dict) or doc.get("result") not in ("success", "error"):
            raise VendorResponseError(
                VENDOR,
                f"answered {method} without spambarrier's result envelope; check api_url",
                status=resp.status,
                body=resp.body,
            )
        if doc["result"] == "error":
            raise error_for(method, doc, resp)
        return doc.get("params")

    def _listing(self, method: str, domain: str, key: str) -> list:
        found = self.call(method, domain=normalise_domain(domain))
        rows = found.get(key) if isinstance(found, dict) else None
        if not isinstance(rows, list):
            raise VendorResponseError(VENDOR, f"answered {method} without {key}", body=str(found))
        return rows

    # -- domains ------------------------------------------------------------------

    def get_domains(self) -> list[SbDomain]:
        found = self.call("get-domains")
        rows = found.get("domains") if isinstance(found, dict) else None
        if not isinstance(rows, list):
            raise VendorResponseError(
                VENDOR, "answered get-domains without domains", body=str(found)
            )
        return read_response(VENDOR, _Domain(), rows, "get-domains", many=True)

    def add_domain(
        self, domain: str, host: str, username: str | None = None, password: Secret | None = None
    ) -> Added:
        found = self.call("add-domain", **_route(domain, host, username, password))
        if not isinstance(found, dict) or not found.get("txt_record_for_confirmation"):
            raise VendorResponseError(
                VENDOR, "answered add-domain without txt_record_for_confirmation", body=str(found)
            )
        return Added(str(found.get("domain_id", "")), str(found["txt_record_for_confirmation"]))

    def edit_domain(
        self, domain: str, host: str, username: str | None = None, password: Secret | None = None
    ) -> None:
        self.call("edit-domain", **_route(domain, host, username, password))

    def delete_domain(self, domain: str) -> None:
        """Remove a domain; one that is not there is a success (an unclear refusal is
        settled against the domain list, never read from its wording)."""
        domain = normalise_domain(domain)

        def delete() -> None:
            try:
                self.call("delete-domain", domain=domain)
            except VendorNotFound:
                pass

        settle.deleted(VENDOR, domain, delete, route_of=self.route_of)

    def route_of(self, domain: str) -> Any:
        """The host spambarrier sends *domain*'s mail to, or :data:`~..settle.NOT_HELD`."""
        name = normalise_domain(domain)
        return next((d.host for d in self.get_domains() if d.name == name), settle.NOT_HELD)

    def confirm_txt_record(self, domain: str) -> bool:
        """True when spambarrier found the TXT record and the domain is verified; False when
        the record is not visible to it yet.  A refusal without a machine-readable code is
        taken as "not yet" too: it is what this method's refusal means."""
        try:
            self.call("confirm-txt-record", domain=normalise_domain(domain))
        except NotVisibleYet:
            return False
        except VendorError as exc:
            if isinstance(exc, VendorUnclear):  # no code: this method's one refusal
                return False
            raise
        return True

    # -- filter settings ---------------------------------------------------------------

    def get_filter_settings(self, domain: str) -> FilterSettings:
        found = self.call("get-filter-settings", domain=normalise_domain(domain))
        return read_response(VENDOR, _Filter(), found, "get-filter-settings")

    def set_filter_settings(self, domain: str, settings: FilterSettings) -> None:
        """Greylisting is sent as ``0``/``1``, as the document's example does."""
        if settings.spam_treatment not in SPAM_TREATMENTS:
            raise VendorRejected(VENDOR, "spam_treatment must be reject, quarantine or tag")
        if settings.virus_treatment not in VIRUS_TREATMENTS:
            raise VendorRejected(VENDOR, "virus_treatment must be reject or quarantine")
        threshold = settings.spam_threshold
        self.call(
            "set-filter-settings",
            domain=normalise_domain(domain),
            spam_treatment=settings.spam_treatment,
            spam_threshold=int(threshold) if float(threshold).is_integer() else threshold,
            virus_treatment=settings.virus_treatment,
            greylisting=1 if settings.greylisting else 0,
        )

    # -- quarantine ----------------------------------------------------------------

    def get_quarantine(self, domain: str) -> list[QuarantineMessage]:
        rows = self._listing("get-quarantine", domain, "messages")
        return read_response(VENDOR, _Message(), rows, "get-quarantine", many=True)

    def resend_quarantine_message(self, domain: str, message_id: str) -> None:
        self.call(
            "resend-quarantine-message", domain=normalise_domain(domain), message_id=_id(message_id)
        )

    def delete_quarantine_message(self, domain: str, message_id: str) -> None:
        self.call(
            "delete-quarantine-message", domain=normalise_domain(domain), message_id=_id(message_id)
        )

    # -- statistics --------------------------------------------------------------------

    def get_domain_statistics(
        self, domain: str, start: dt.date, end: dt.date, interval: str = "day"
    ) -> Statistics:
        if interval not in INTERVALS:
            raise VendorRejected(VENDOR, "interval must be hour, day or month")
        if end < start:
            raise VendorRejected(VENDOR, "the range ends before it starts")
        found = self.call(
            "get-domain-statistics",
            domain=normalise_domain(domain),
            **{"from": start.isoformat(), "to": end.isoformat(), "interval": interval},
        )
        return read_response(VENDOR, _Statistics(), found, "get-domain-statistics")

    # -- whitelist -------------------------------------------------------------------

    def _whitelist(self, index: int, **params: Any) -> Any:
        """Call the whitelist method *index* under the known spelling; with none known, the
        document's first, then (on an unknown-method answer) the client's, once."""
        order = [self.spelling] if self.spelling else ["document", "client"]
        for n, spelling in enumerate(order):
            try:
                found = self.call(SPELLINGS[spelling][index], **params)
            except UnknownMethod:
                if n + 1 == len(order):
                    raise
                continue
            if spelling != self.spelling:
                self.spelling = spelling
                if self.on_spelling is not None:
                    self.on_spelling(spelling)
            return found
        raise AssertionError("unreachable")  # pragma: no cover

    def get_whitelist_entries(self, domain: str) -> list[WhitelistEntry]:
        found = self._whitelist(0, domain=normalise_domain(domain))
        rows = found.get("entries") if isinstance(found, dict) else None
        if not isinstance(rows, list):
            raise VendorResponseError(
                VENDOR, "answered the whitelist without entries", body=str(found)
            )
        return read_response(VENDOR, _Entry(), rows, "get-whitelistentries", many=True)

    def add_whitelist_entry(self, domain: str, sender: str, recipient: str) -> None:
        """Let mail from *sender* (an address or a domain) to *recipient* (an address at
        *domain*) through; an entry that is there already is a success."""
        domain = normalise_domain(domain)
        sender = _sender(sender)
        recipient = normalise_email(recipient, "to")
        existing = self.get_whitelist_entries(domain)
        if any(e.sender.lower() == sender.lower() and e.recipient == recipient for e in existing):
            return
        self._whitelist(1, domain=domain, **{"from": sender, "to": recipient})

    def delete_whitelist_entry(self, domain: str, entry_id: str) -> None:
        """Remove an entry; one that is not there is a success (checked as for a domain)."""
        domain = normalise_domain(domain)
        try:
            self._whitelist(2, domain=domain, id=_id(entry_id))
        except VendorNotFound:
            pass
        except VendorUnclear:
            if any(e.id == str(entry_id) for e in self.get_whitelist_entries(domain)):
                raise


def _route(domain: str, host: str, username: str | None, password: Secret | None) -> dict:
    if (username is None) != (password is None):
        raise VendorRejected(VENDOR, "SMTP authentication needs both a username and a password")
    return {
        "domain": normalise_domain(domain),
        "host": normalise_host(host, "host"),
        "username": username,
        "password": password.reveal() if password is not None else None,
    }


def _id(value: Any) -> int | str:
    """An id as the document sends it: a number when it is one."""
    text = str(value).strip()
    return int(text) if text.isascii() and text.isdigit() else text


def _sender(value: str) -> str:
    """A whitelisted sender: an address or a whole domain."""
    value = str(value).strip()
    return normalise_email(value, "from") if "@" in value else normalise_domain(value, "from")
