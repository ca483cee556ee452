"""Rackspace Email "Exchange Mailbox Spam" emulator (``/v1/customers/<id>/domains/<domain>
/ex/mailboxes/<mailbox>/spam/...``), JSON or XML by the Accept header.

Every request must carry ``X-Api-Signature: <UserKey>:<YYYYMMDDHHmmss>:<Base64(SHA1(UserKey +
UserAgent + Timestamp + SecretKey))>`` where UserAgent is the request's own User-Agent
header, byte for byte.  A timestamp further than ``tolerance`` seconds (300) from the
emulator's clock, read in ``timestamp_timezone`` (UTC; seedable, like the client's
setting, for clients that sign in another zone), or a bad signature answers 403;
more than ``rate_limit`` requests (60) per user key within a minute answer 403
"Exceeded request limits".

Where the document is silent: errors are Rackspace fault documents
(``{"badRequestFault": {"message": ..., "code": 400}}``, ``itemNotFoundFault``,
``unauthorizedFault``, ``methodNotAllowedFault``, in XML alike); an answer without
``application/json`` in Accept is XML; successful changes answer 200 with an empty
body; adding an entry already on a list succeeds; a bulk ``removeList`` skips entries
not on the list; address-list entries are an address (``a@b.com``, no wildcards) or a
domain (``b.com`` / ``@b.com``, ``%`` wildcards allowed in any label but the TLD);
IP-list entries are IPv4 with ``%`` only in trailing octets, or IPv6 without wildcards.
Form field names are matched case-insensitively: the document mixes ``filterlevel`` and
``removeQuarantineOwner``, and real clients send ``filterLevel``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections import deque
from typing import Any, ClassVar
from urllib.parse import parse_qs
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..redaction import register_name
from .base import Emulator, Reply, Request
from .validate import is_email, is_ip

register_name("X-Api-Signature", header=True)
register_name("user_key")
register_name("secret_key")

CUSTOMER = "12345678"
USER_KEY = "sandbox-rackspace-user-key"
SECRET_KEY = "sandbox-rackspace-secret-key"
MAILBOXES = (("12345678", "example.com", "alex.smith"), ("12345678", "example.com", "jane.doe"))
FILTER_LEVELS = ("on", "off", "exclusive")
#: URL name -> (storage, word used in messages, XML root, XML item tag)
LISTS = {
    "blocklist": ("blocklist", "blocklist", "blocklist", "address"),
    "blacklist": ("blocklist", "blacklist", "blacklist", "address"),
    "ipblocklist": ("ipblocklist", "blocklist", "ipBlocklist", "ip"),
    "ipblacklist": ("ipblocklist", "blacklist", "ipBlacklist", "ip"),
    "safelist": ("safelist", "safelist", "safelist", "address"),
    "ipsafelist": ("ipsafelist", "safelist", "ipSafelist", "ip"),
}
_PATH = re.compile(
    r"^/v1/customers/([^/]+)/domains/([^/]+)/ex/mailboxes/([^/]+)/spam/([a-z]+)(?:/(.+))?$"
)
_WILD_LABEL = re.compile(r"^[a-z0-9%]([a-z0-9%-]{0,61}[a-z0-9%])?$")
_TLD = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$|^xn--[a-z0-9-]+$")
_XMLNS = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"'


def signature(user_key: str, user_agent: str, timestamp: str, secret_key: str) -> str:
    """Base64(SHA1(UserKey + UserAgent + Timestamp + SecretKey)), as the API documents it."""
    digest = hashlib.sha1((user_key + user_agent + timestamp + secret_key).encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


class Fault(Exception):
    KINDS: ClassVar[dict[int, str]] = {
        400: "badRequestFault",
        403: "unauthorizedFault",
        404: "itemNotFoundFault",
        405: "methodNotAllowedFault",
    }

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


def wildcard_domain_ok(domain: str) -> bool:
    labels = domain.split(".")
    if len(labels) < 2 or not _TLD.match(labels[-1]):
        return False
    return all(_WILD_LABEL.match(lbl) for lbl in labels[:-1])


def valid_address_entry(entry: str) -> bool:
    if "@" in entry and not entry.startswith("@"):
        return "%" not in entry and is_email(entry)
    return wildcard_domain_ok(entry.lstrip("@"))


def valid_ip_entry(entry: str) -> bool:
    if ":" in entry:
        return "%" not in entry and is_ip(entry)
    octets = entry.split(".")
    if len(octets) != 4 or octets[0] == "%":
        return False
    seen_wild = False
    for octet in octets:
        if octet == "%":
            seen_wild = True
        elif (
            seen_wild
            or not octet.isdigit()
            or int(octet) > 255
            or (len(octet) > 1 and octet[0] == "0")
        ):
            return False
    return True


class RackspaceEmulator(Emulator):
    name = "rackspace"
    port_offset = 4
    api_path = "/v1"
    settings = ("rate_limit", "tolerance", "timestamp_timezone")

    def __init__(
        self,
        *,
        keys: dict[str, str] | None = None,
        rate_limit: int = 60,
        tolerance: float = 300,
        timestamp_timezone: str = "UTC",
        **kw,
    ) -> None:
        self.keys = {k: self.secret(v) for k, v in (keys or {USER_KEY: SECRET_KEY}).items()}
        self.rate_limit = rate_limit
        self.tolerance = tolerance
        self.timestamp_timezone = timestamp_timezone
        super().__init__(**kw)

    def initial_state(self) -> None:
        self.mailboxes: dict[tuple[str, str, str], dict[str, Any]] = {}
        for key in MAILBOXES:
            self.add_mailbox(*key)
        self.recent: dict[str, deque[float]] = {}

    def add_mailbox(self, customer: str, domain: str, mailbox: str) -> None:
        self.mailboxes[(customer, domain.lower(), mailbox.lower())] = {
            "settings": {
                "filterLevel": "on",
                "sendToDomainQuarantine": False,
                "quarantineOwner": "",
            },
            "lists": {"blocklist": [], "ipblocklist": [], "safelist": [], "ipsafelist": []},
        }

    def credentials(self) -> dict[str, Any]:
        user_key, secret_key = next(iter(self.keys.items()))
        return {"customer_id": CUSTOMER, "user_key": user_key, "secret_key": secret_key}

    def seed_data(self, data: dict[str, Any]) -> None:
        for item in data.pop("mailboxes", []):
            self.add_mailbox(str(item.get("customer", CUSTOMER)), item["domain"], item["mailbox"])
        for key in ("rate_limit", "tolerance"):
            if key in data:
                setattr(self, key, data.pop(key))
        if "timestamp_timezone" in data:
            zone = str(data.pop("timestamp_timezone"))
            if zone != "UTC":
                try:
                    ZoneInfo(zone)
                except (ZoneInfoNotFoundError, ValueError):
                    raise ValueError(
                        f"timestamp_timezone: {zone!r} is not a time zone name"
                    ) from None
            self.timestamp_timezone = zone
        if data:
            raise ValueError(f"unknown seed keys: {', '.join(sorted(data))}")

    def snapshot(self) -> dict[str, Any]:
        return {
            "mailboxes": {"/".join(k): v for k, v in self.mailboxes.items()},
            "rate_limit": self.rate_limit,
            "tolerance": self.tolerance,
            "timestamp_timezone": self.timestamp_timezone,
        }

    # -- authentication and throttling -----------------------------------------

    def _now(self) -> dt.datetime:
        zone: dt.tzinfo = dt.UTC
        if self.timestamp_timezone != "UTC":
            zone = ZoneInfo(self.timestamp_timezone)
        return dt.datetime.fromtimestamp(self.clock(), zone).replace(tzinfo=None)

    def _authenticate(self, req: Request) -> str:
        header = req.headers.get("X-Api-Signature", "")
        parts = header.split(":")
        if len(parts) != 3 or parts[0] not in self.keys:
            raise Fault(403, "Authentication failed: missing or unknown X-Api-Signature")
        user_key, stamp, sig = parts
        try:
            when = dt.datetime.strptime(stamp, "%Y%m%d%H%M%S")
        except ValueError:
            raise Fault(403, "Authentication failed: timestamp must be YYYYMMDDHHmmss") from None
        if len(stamp) != 14 or abs((self._now() - when).total_seconds()) > self.tolerance:
            raise Fault(403, "Authentication failed: timestamp is outside the allowed window")
        expected = signature(
            user_key, req.headers.get("User-Agent", ""), stamp, self.keys[user_key]
        )
        if sig != expected:
            raise Fault(403, "Authentication failed: signature does not match")
        window = self.recent.setdefault(user_key, deque())
        now = self.clock()
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.rate_limit:
            raise Fault(403, "Exceeded request limits")
        window.append(now)
        return user_key

    # -- rendering ---------------------------------------------------------------

    @staticmethod
    def _wants_json(req: Request) -> bool:
        return "application/json" in req.headers.get("Accept", "")

    def _fault(self, req: Request, fault: Fault) -> Reply:
        kind = Fault.KINDS.get(fault.status, "serviceFault")
        if self._wants_json(req):
            return Reply.json(
                {kind: {"message": fault.message, "code": fault.status}}, fault.status
            )
        body = (
            f'<?xml version="1.0" encoding="utf-8"?>\n<{kind} xmlns="http://fault.common.api.rackspace.com/">'
            f"<message>{escape(fault.message)}</message><code>{fault.status}</code></{kind}>"
        )
        return Reply(fault.status, body.encode(), "text/xml; charset=utf-8")

    def _settings_reply(self, req: Request, s: dict[str, Any]) -> Reply:
        if self._wants_json(req):
            return Reply.json(s)
        owner = (
            f"<quarantineOwner>{escape(s['quarantineOwner'])}</quarantineOwner>"
            if s["quarantineOwner"]
            else "<quarantineOwner />"
        )
        body = (
            f'<?xml version="1.0" encoding="utf-8"?>\n<MailboxSpamSettings {_XMLNS} '
            'xmlns="urn:xml:MailboxSpamSettings">\n  '
            f"<filterLevel>{s['filterLevel']}</filterLevel>\n"
            "  "
            f"<sendToDomainQuarantine>{str(s['sendToDomainQuarantine']).lower()}</sendToDomainQuarantine>\n"
            f"  {owner}\n</MailboxSpamSettings>"
        )
        return Reply(200, body.encode(), "text/xml; charset=utf-8")

    def _list_reply(self, req: Request, url_name: str, entries: list[str]) -> Reply:
        if self._wants_json(req):
            return Reply.json({"addresses": entries})
        _, _, root, item = LISTS[url_name]
        rows = "".join(f"\n    <{item}>{escape(e)}</{item}>" for e in entries)
        body = (
            f'<?xml version="1.0" encoding="utf-8"?>\n<{root} {_XMLNS} xmlns="urn:xml:{root}">\n'
            f"  <addresses>{rows}\n  </addresses>\n</{root}>"
        )
        return Reply(200, body.encode(), "text/xml; charset=utf-8")

    # -- the API -------------------------------------------------------------------

    def handle(self, req: Request) -> Reply:
        try:
            self._authenticate(req)
            m = _PATH.match(req.path)
            if not m:
                raise Fault(404, f"Resource not found: {req.path}")
            customer, domain, mailbox, what, entry = m.groups()
            box = self.mailboxes.get((customer, domain.lower(), mailbox.lower()))
            if box is None:
                raise Fault(404, f"Mailbox not found: {mailbox}@{domain}")
            if what == "settings" and entry is None:
                return self._settings(req, box)
            if what in LISTS:
                return self._list(req, box, what, entry, domain.lower())
            raise Fault(404, f"Resource not found: {req.path}")
        except Fault as fault:
            return self._fault(req, fault)

    def _fields(self, req: Request) -> dict[str, str]:
        """The form fields, keyed by their lower-case names: field names are matched
        case-insensitively (the document itself writes filterlevel and
        removeQuarantineOwner, real clients and Rackspace's sibling pages filterLevel)."""
        body = req.body.decode("utf-8", "replace")
        return {k.lower(): v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}

    def _settings(self, req: Request, box: dict[str, Any]) -> Reply:
        settings = box["settings"]
        if req.method == "GET":
            return self._settings_reply(req, settings)
        if req.method != "PUT":
            raise Fault(405, "The Show operation only supports GET; Edit uses PUT")
        f = self._fields(req)
        level = f.get("filterlevel", "")
        if level not in FILTER_LEVELS:
            raise Fault(400, "Invalid filterLevel, input must be: on/off/exclusive")
        new = dict(settings, filterLevel=level)
        if "sendtodomainquarantine" in f:
            if f["sendtodomainquarantine"].lower() not in ("true", "false"):
                raise Fault(400, "Invalid sendToDomainQuarantine, input must be: true/false")
            new["sendToDomainQuarantine"] = f["sendtodomainquarantine"].lower() == "true"
        if f.get("quarantineowner"):
            if not is_email(f["quarantineowner"]):
                raise Fault(400, f"invalid email address: {f['quarantineowner']}")
            new["quarantineOwner"] = f["quarantineowner"]
        if f.get("removequarantineowner", "").lower() == "true":
            new["quarantineOwner"] = ""
        if level == "off":
            new["sendToDomainQuarantine"] = False
        box["settings"] = new
        return Reply(200, b"", "text/plain")

    def _list(
        self, req: Request, box: dict[str, Any], url_name: str, entry: str | None, domain: str
    ) -> Reply:
        storage, word, _, item = LISTS[url_name]
        entries: list[str] = box["lists"][storage]
        is_ip_list = item == "ip"

        def check(value: str, adding: bool) -> str:
            value = value.strip().lower()
            if is_ip_list:
                if not valid_ip_entry(value):
                    raise Fault(400, f"invalid ip address: {value}")
                return value
            if not valid_address_entry(value):
                raise Fault(400, f"invalid email address: {value}")
            if adding and storage == "blocklist" and value.lstrip("@") == domain:
                raise Fault(
                    400,
                    f"Adding {value} would {'blacklist' if word == 'blacklist' else 'block'} "
                    "the current domain",
                )
            return value

        if entry is None:
            if req.method == "GET":
                return self._list_reply(req, url_name, entries)
            if req.method != "PUT":
                raise Fault(405, "The Index operation only supports GET; Edit uses PUT")
            f = self._fields(req)
            if "addlist" not in f and "removelist" not in f:
                raise Fault(400, "addList or removeList is required")
            add = [check(v, True) for v in f.get("addlist", "").split(",") if v.strip()]
            remove = [check(v, False) for v in f.get("removelist", "").split(",") if v.strip()]
            for value in add:
                if value not in entries:
                    entries.append(value)
            for value in remove:
                if value in entries:
                    entries.remove(value)
            return Reply(200, b"", "text/plain")
        value = check(entry, req.method == "POST")
        if req.method == "POST":
            if value not in entries:
                entries.append(value)
            return Reply(200, b"", "text/plain")
        if req.method == "DELETE":
            if value not in entries:
                raise Fault(400, f"{value} is not found on the {word}")
            entries.remove(value)
            return Reply(200, b"", "text/plain")
        raise Fault(405, "Entries support POST (add) and DELETE (remove)")
