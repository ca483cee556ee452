"""Rackspace Email "Exchange Mailbox Spam" API client.

Every request is signed with ``X-Api-Signature: UserKey:Timestamp:Base64(SHA1(UserKey +
UserAgent + Timestamp + SecretKey))`` computed afresh on every attempt (retries too),
over the very User-Agent header the session sends.  A per-account rate limiter keeps bulk
work under the API's per-minute limit; a 403 saying "Exceeded request limits" is a
rate-limit error (retried with backoff), any other 403 refused credentials (never retried).
Bodies are form-encoded; answers are JSON (``Accept: application/json``) or XML parsed by
defusedxml; path segments are percent-encoded.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import fields

from ..errors import (
    InvalidInput,
    VendorAuthError,
    VendorError,
    VendorNotFound,
    VendorRateLimited,
    VendorRejected,
    VendorResponseError,
)
from ..events import Mailbox, normalise_email, normalise_ip
from ..http import HttpClient, Response, quote_segment
from ..ratelimit import Limiter, RateLimiter, limiter_for
from ..redaction import Secret, register_name
from .response import ResponseSchema, read_response

# Rackspace's secret-bearing names: the signature header and the key fields.
register_name("X-Api-Signature", header=True)
register_name("user_key")
register_name("secret_key")

VENDOR = "rackspace"

__all__ = ["RackspaceClient", "RateLimiter", "signature", "validate_entry"]
DEFAULT_URL = "https://api.emailsrvr.com/v1"
FILTER_LEVELS = ("on", "off", "exclusive")
LISTS = ("blocklist", "ipblocklist", "safelist", "ipsafelist")
LEGACY_NAMES = {"blocklist": "blacklist", "ipblocklist": "ipblacklist"}
THROTTLED = "Exceeded request limits"


def signature(user_key: str, user_agent: str, timestamp: str, secret_key: str) -> str:
    """Base64(SHA1(UserKey + UserAgent + Timestamp + SecretKey)), as the API documents it."""
    digest = hashlib.sha1((user_key + user_agent + timestamp + secret_key).encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


# -- validation before sending ---------------------------------------------------


def _wildcard_domain(value: str, field: str) -> str:
    labels = value.split(".")
    if (
        len(labels) < 2
        or "%" in labels[-1]
        or (not labels[-1].isalpha() and not labels[-1].startswith("xn--"))
    ):
        raise InvalidInput(
            field,
            f"{value!r}: a domain needs a top-level domain without wildcards (@%.example.com)",
        )
    for label in labels:
        bare = label.replace("%", "a")
        if (
            not bare
            or len(bare) > 63
            or not all(c.isalnum() or c == "-" for c in bare)
            or bare[0] == "-"
            or bare[-1] == "-"
        ):
            raise InvalidInput(field, f"{value!r} has an invalid label {label!r}")
    return value


def validate_entry(list_name: str, value: str) -> str:
    """Check and normalise one list entry; raise InvalidInput naming the list.

    Address lists take an address (no wildcards) or a domain (``example.com`` or
    ``@example.com``; ``%`` allowed in any label but the TLD).  IP lists take an IPv4
    address whose trailing octets may be ``%`` (``216.12.%.%``), or an IPv6 address."""
    text = (value or "").strip().lower()
    if list_name.startswith("ip"):
        octets = text.split(".")
        if "%" in text and ":" not in text:
            first_wild = octets.index("%") if "%" in octets else -1
            if len(octets) != 4 or first_wild < 1 or any(o != "%" for o in octets[first_wild:]):
                raise InvalidInput(
                    list_name, f"{value!r}: '%' may only replace trailing octets (216.12.34.%)"
                )
            normalise_ip(".".join(o if o != "%" else "0" for o in octets), list_name)
            return text
        return normalise_ip(text, list_name)
    if "@" in text and not text.startswith("@"):
        if "%" in text:
            raise InvalidInput(
                list_name, f"{value!r}: wildcards are allowed in domains only, not in addresses"
            )
        return normalise_email(text, list_name)
    domain = text[1:] if text.startswith("@") else text
    _wildcard_domain(domain, list_name)
    return text


def split_entries(text: str) -> list[str]:
    """Entries pasted one per line, or separated by commas, semicolons or spaces."""
    for sep in ",;\n\r\t":
        text = text.replace(sep, " ")
    return [t for t in text.split(" ") if t]


class _SettingsSchema(ResponseSchema):
    """The JSON settings document (unknown keys ignored)."""

    filterLevel = fields.String(required=True)
    sendToDomainQuarantine = fields.Boolean(load_default=False)
    quarantineOwner = fields.String(load_default="", allow_none=True)


@dataclass(frozen=True)
class SpamSettings:
    filter_level: str
    send_to_domain_quarantine: bool
    quarantine_owner: str


def _text(node, name: str) -> str:
    found = node.find(f"{{*}}{name}")
    if found is None:
        found = node.find(name)
    return (found.text or "").strip() if found is not None else ""


def _fault_message(resp: Response) -> str:
    """The message of a Rackspace fault document (JSON or XML), else the raw text."""
    try:
        if resp.body.lstrip().startswith(b"<"):
            root = resp.xml()
            return _text(root, "message") or resp.text
        doc = resp.json()
        if isinstance(doc, dict) and len(doc) == 1:
            (inner,) = doc.values()
            if isinstance(inner, dict) and "message" in inner:
                return str(inner["message"])
    except VendorResponseError:
        pass
    return resp.text.strip()[:300]


class RackspaceClient:
    """Signed access to a customer's mailbox spam settings and lists.

    :param timestamp_timezone: the zone the timestamps are written in (UTC unless the
        account was set up otherwise).
    :param legacy_names: use the document's older list names (blacklist, ipblacklist).
    :param fmt: ``json`` or ``xml`` answers.
    :param rate_limit: requests per minute for this account (shared by every client of it).
    """

    def __init__(
        self,
        http: HttpClient,
        customer_id: str,
        user_key: Secret,
        secret_key: Secret,
        *,
        timestamp_timezone: str = "UTC",
        legacy_names: bool = False,
        fmt: str = "json",
        rate_limit: int = 60,
        now: Callable[[], float] = time.time,
        limiter: Limiter | None = None,
    ) -> None:
        self.http, self.customer_id = http, str(customer_id)
        self.user_key, self.secret_key = user_key, secret_key
        self.zone = dt.UTC if timestamp_timezone == "UTC" else ZoneInfo(timestamp_timezone)
        self.legacy_names, self.fmt, self.now = legacy_names, fmt, now
        self.limiter = limiter or limiter_for(VENDOR, user_key.reveal(), rate_limit)
        http.before_send = self._sign
        http.classify = self._classify

    def timestamp(self) -> str:
        return dt.datetime.fromtimestamp(self.now(), self.zone).strftime("%Y%m%d%H%M%S")

    def _sign(self, headers: dict[str, str]) -> None:
        self.limiter.acquire()
        stamp = self.timestamp()
        key = self.user_key.reveal()
        sig = signature(key, self.http.user_agent, stamp, self.secret_key.reveal())
        headers["X-Api-Signature"] = f"{key}:{stamp}:{sig}"
        headers["Accept"] = "application/json" if self.fmt == "json" else "text/xml"

    @staticmethod
    def _classify(resp: Response) -> VendorError | None:
        if resp.status < 400:
            return None
        message = _fault_message(resp)
        if resp.status == 403 and THROTTLED.lower() in message.lower():
            return VendorRateLimited(
                VENDOR,
                "Rackspace throttled us (Exceeded request limits); retrying later",
                status=403,
                body=resp.body,
            )
        if resp.status in (401, 403):
            return VendorAuthError(
                VENDOR,
                f"Rackspace refused the signature ({message}); check user_key, "
                "secret_key, user_agent and that this server's clock is right",
                status=resp.status,
                body=resp.body,
            )
        if resp.status == 404 or (resp.status == 400 and " is not found on the " in message):
            return VendorNotFound(VENDOR, message, status=resp.status, body=resp.body)
        if resp.status == 400:
            return VendorRejected(
                VENDOR, f"Rackspace refused the request: {message}", status=400, body=resp.body
            )
        return None

    def _path(self, mailbox: Mailbox, *rest: str) -> str:
        segments = [
            "customers",
            self.customer_id,
            "domains",
            mailbox.domain.name,
            "ex",
            "mailboxes",
            mailbox.local_part,
            "spam",
            *rest,
        ]
        return "/".join(quote_segment(s) for s in segments)

    def _list_name(self, list_name: str) -> str:
        if list_name not in LISTS:
            raise InvalidInput("list", f"{list_name!r} is not a list; one of {', '.join(LISTS)}")
        return LEGACY_NAMES.get(list_name, list_name) if self.legacy_names else list_name

    # -- settings -----------------------------------------------------------

    def get_settings(self, mailbox: Mailbox) -> SpamSettings:
        resp = self.http.request("GET", self._path(mailbox, "settings"))
        if self.fmt == "json":
            doc = read_response(VENDOR, _SettingsSchema(), resp.json(), "settings", body=resp.body)
            return SpamSettings(
                doc["filterLevel"], doc["sendToDomainQuarantine"], doc["quarantineOwner"] or ""
            )
        root = resp.xml()
        level = _text(root, "filterLevel")
        if not level:
            raise VendorResponseError(
                VENDOR, "answered settings without filterLevel", body=resp.body
            )
        return SpamSettings(
            level, _text(root, "sendToDomainQuarantine") == "true", _text(root, "quarantineOwner")
        )

    def edit_settings(
        self,
        mailbox: Mailbox,
        filter_level: str,
        *,
        send_to_domain_quarantine: bool | None = None,
        quarantine_owner: str | None = None,
        remove_quarantine_owner: bool = False,
    ) -> None:
        """Change the settings; ``filter_level`` is always sent (the API requires it)."""
        if filter_level not in FILTER_LEVELS:
            raise InvalidInput("filterlevel", f"{filter_level!r}: must be on, off or exclusive")
        form = {"filterlevel": filter_level}
        if send_to_domain_quarantine is not None:
            form["sendtodomainquarantine"] = "true" if send_to_domain_quarantine else "false"
        if quarantine_owner:
            form["quarantineowner"] = normalise_email(quarantine_owner, "quarantineowner")
        if remove_quarantine_owner:
            form["removeQuarantineOwner"] = "true"
        self.http.request("PUT", self._path(mailbox, "settings"), data=form)

    # -- lists --------------------------------------------------------------------

    def list_entries(self, mailbox: Mailbox, list_name: str) -> list[str]:
        resp = self.http.request("GET", self._path(mailbox, self._list_name(list_name)))
        if self.fmt == "json":
            doc = resp.json()
            if not isinstance(doc, dict) or not isinstance(doc.get("addresses"), list):
                raise VendorResponseError(
                    VENDOR, "answered a list without addresses", body=resp.body
                )
            return [str(a) for a in doc["addresses"]]
        root = resp.xml()
        holder = root.find("{*}addresses")
        if holder is None:
            raise VendorResponseError(VENDOR, "answered a list without <addresses>", body=resp.body)
        return [(e.text or "").strip() for e in holder]

    def add_entry(self, mailbox: Mailbox, list_name: str, entry: str) -> None:
        entry = validate_entry(list_name, entry)
        self.http.request("POST", self._path(mailbox, self._list_name(list_name), entry), data={})

    def delete_entry(self, mailbox: Mailbox, list_name: str, entry: str) -> None:
        """Remove an entry; one that is not on the list counts as removed."""
        entry = validate_entry(list_name, entry)
        try:
            self.http.request("DELETE", self._path(mailbox, self._list_name(list_name), entry))
        except VendorNotFound:
            pass

    def edit_list(
        self, mailbox: Mailbox, list_name: str, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> None:
        """One bulk edit (addList/removeList); every entry is checked before anything is sent."""
        add = [validate_entry(list_name, e) for e in add]
        remove = [validate_entry(list_name, e) for e in remove]
        if not add and not remove:
            raise InvalidInput(list_name, "nothing to add or remove")
        form: dict[str, Any] = {}
        if add:
            form["addList"] = ",".join(add)
        if remove:
            form["removeList"] = ",".join(remove)
        self.http.request("PUT", self._path(mailbox, self._list_name(list_name)), data=form)
