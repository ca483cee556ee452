"""SpamWall API client: ``api.php?command=NAME&param=...`` with ``username`` and ``password``
in the POST body; an XML ``<Result><Code>..</Code><Message>..</Message>`` document back.

One method per documented command.  Success is the ``<Code>`` in the document (never the
HTTP status, never the wording); each documented code maps to one typed error
(:func:`error_for`).  Where the intent of a call is met already ("Email already in
whitelist", "Entry not in Spam bypass list", "Recipient does not exist", a domain that is
not in the domain list when deleting it), the call succeeds.  Parameters are sent with
exactly the document's names (they are case-sensitive).  XML is parsed by defusedxml only.

SpamWall keeps white/black lists and spam scores per caller: the admin's are global, a
domain admin's belong to their domain, a user's to that user.  :meth:`SpamWallClient.acting_as`
gives a client with another account's credentials over the same connection.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from .. import settle
from ..errors import (
    VendorAuthError,
    VendorConflict,
    VendorError,
    VendorForbidden,
    VendorNotFound,
    VendorRejected,
    VendorResponseError,
    VendorUnavailable,
    VendorUnclear,
)
from ..events import normalise_domain, normalise_email, normalise_ip
from ..http import ACCEPT, HttpClient, Response, parse_xml
from ..redaction import Secret, register_name

VENDOR = "spamwall"
DEFAULT_URL = "https://spamwall.example.com/api/api.php"
LISTS = ("whitelist", "blacklist")
BYPASS = ("spam", "rbl")
LEVELS = ("spam_tag_level", "spam_tag2_level", "spam_kill_level")
VERIFICATION_METHODS = {1: "none", 2: "dynamic", 3: "allowed recipients"}
#: a spam score as SpamWall takes it: -999 to 999, at most two decimals
SCORE = re.compile(r"-?\d{1,3}(\.\d{1,2})?")

register_name("newpass")  # change_user_password's new password, in the query string

# 406 answers that mean the intent is met already: (command, message) -> success
_ALREADY = (
    re.compile(r"Email already in (white|black)list"),
    re.compile(r"Email not in (white|black)list"),
    re.compile(r"Entry already in (Spam|RBL) bypass list"),
    re.compile(r"Entry not in (Spam|RBL) bypass list"),
    re.compile(r"Recipient already exists"),
    re.compile(r"Recipient does not exist"),
)
_IN_DOMAIN_LIST = re.compile(r"Domain '.*' is already in domain list")
_NOT_IN_DOMAIN_LIST = re.compile(r"Domain '.*' is not in domain list")
#: every 406 message the document lists; any other one's meaning is unclear
_DOCUMENTED_406 = re.compile(
    r"Invalid domain name|Invalid IP address|Invalid port|Invalid Email|Invalid Value"
    r"|Not a valid IP|Invalid Recipient Verification Method|Username already in use"
    r"|Domain '.*' is (already|not) in domain list|Email (already|not) in (white|black)list"
    r"|Entry (already|not) in (Spam|RBL) bypass list|Recipient (already exists|does not exist)"
)


@dataclass(frozen=True)
class Reply:
    """A successful answer: its message, and the document for commands that list things."""

    message: str
    doc: ET.Element


@dataclass(frozen=True)
class DomainRoute:
    host: str
    type: str
    ip: str
    port: int


@dataclass(frozen=True)
class User:
    username: str
    name: str
    email: str
    last_login: str


@dataclass(frozen=True)
class Recipient:
    id: str
    address: str


def error_for(
    code: int, message: str, command: str, account: str, status: int | None, body: bytes
) -> VendorError:
    """The typed error for a ``<Code>`` other than 200."""
    said = f"(SpamWall said: {message or 'nothing'})"
    if code == 401:
        return VendorAuthError(
            VENDOR,
            f"refused the login of {account!r} {said}; fix username and password in "
            "[vendors.spamwall] and run 'spamfilter check'",
            status=status,
            body=body,
            retry=False,
        )
    if code == 403:
        return VendorForbidden(
            VENDOR,
            f"account {account!r} may not run {command} here {said}; this needs the admin "
            "account, or the domain admin or user it concerns",
            status=status,
            body=body,
            retry=False,
        )
    if code == 406:
        cls: type[VendorError] = (
            VendorRejected if _DOCUMENTED_406.fullmatch(message) else VendorUnclear
        )
        if _IN_DOMAIN_LIST.fullmatch(message) or message == "Username already in use":
            cls = VendorConflict
        elif _NOT_IN_DOMAIN_LIST.fullmatch(message):
            cls = VendorNotFound
        return cls(VENDOR, f"{command} was refused {said}", status=status, body=body, retry=False)
    if code == 400:
        return VendorRejected(
            VENDOR,
            f"called {command} a malformed request {said}; this is a bug in spamfilter-plugin, "
            "please report it",
            status=status,
            body=body,
            retry=False,
        )
    if code == 500:
        return VendorUnavailable(
            VENDOR,
            f"had an internal error running {command} {said}; it is tried again later",
            status=status,
            body=body,
            retry=False,
        )
    return VendorResponseError(
        VENDOR,
        f"answered {command} with code {code}, which is not documented {said}",
        status=status,
        body=body,
    )


def _classify(resp: Response) -> VendorError | None:
    """A ``<Result>`` document is SpamWall's answer whatever the HTTP status: it is read by
    its ``<Code>`` (in :meth:`SpamWallClient.call`, which parses every accepted answer).
    A 2xx answer needs no look here; anything else that is not such a document is left to
    the HTTP status."""
    if 200 <= resp.status < 300 or resp.body.lstrip()[:1] != b"<":
        return None
    try:
        doc = parse_xml(VENDOR, resp.body, status=resp.status)
    except VendorResponseError:
        return None
    return ACCEPT if doc.tag == "Result" else None


def _text(el: ET.Element, tag: str) -> str:
    found = el.find(tag)
    return (found.text or "").strip() if found is not None else ""


class SpamWallClient:
    """Typed access to every documented SpamWall command, as one account.

    :param http: the HTTP client (its ``base_url`` is ``.../api/api.php``).
    :param username: the account (the admin, a domain admin or a user).
    :param password: its password (sent in the POST body; never logged).
    """

    def __init__(self, http: HttpClient, username: str, password: Secret) -> None:
        self.http, self.username, self.password = http, username, password
        http.classify = _classify

    def acting_as(self, username: str, password: Secret) -> SpamWallClient:
        """The same connection, with another account's credentials."""
        return SpamWallClient(self.http, username, password)

    def call(self, command: str, **params: Any) -> Reply:
        """Run *command*; a Reply on ``<Code>200``, else the typed error (or success when
        the intent is met already)."""
        query = {"command": command, **{k: str(v) for k, v in params.items()}}
        resp = self._post(query)
        doc = self._document(resp, command)
        code_text, message = _text(doc, "Code"), _text(doc, "Message")
        if not code_text.isascii() or not code_text.isdigit():
            raise VendorResponseError(
                VENDOR,
                f"answered {command} without a numeric <Code>",
                status=resp.status,
                body=resp.body,
            )
        code = int(code_text)
        if code == 200 or (code == 406 and any(p.fullmatch(message) for p in _ALREADY)):
            return Reply(message, doc)
        raise error_for(code, message, command, self.username, resp.status, resp.body)

    def _post(self, query: dict[str, str]) -> Response:
        data = {"username": self.username, "password": self.password.reveal()}
        return self.http.request("POST", params=query, data=data)

    @staticmethod
    def _document(resp: Response, command: str) -> ET.Element:
        doc = resp.xml()
        if doc.tag != "Result":
            raise VendorResponseError(
                VENDOR,
                f"answered {command} with <{doc.tag}>, not SpamWall's <Result> document",
                status=resp.status,
                body=resp.body,
            )
        return doc

    # -- 4.1 domains (admin only) ----------------------------------------------------

    def list_domains(self) -> list[DomainRoute]:
        doc = self.call("list_domains").doc
        routes = []
        for d in doc.iter("Domain"):
            port = _text(d, "Port")
            routes.append(
                DomainRoute(
                    _text(d, "Host"),
                    _text(d, "Type"),
                    _text(d, "IP"),
                    int(port) if port.isdigit() else 0,
                )
            )
        return routes

    def add_domain(self, name: str, ip: str, port: int = 25) -> None:
        self.call("add_domain", name=normalise_domain(name), ip=normalise_ip(ip), port=_port(port))

    def change_domain(self, name: str, ip: str, port: int = 25) -> None:
        self.call(
            "change_domain", name=normalise_domain(name), ip=normalise_ip(ip), port=_port(port)
        )

    def delete_domain(self, name: str) -> None:
        """Remove a domain; one that is not there is a success (an unclear refusal is
        settled against the domain list)."""
        name = normalise_domain(name)

        def delete() -> None:
            try:
                self.call("delete_domain", name=name)
            except VendorNotFound:
                pass

        settle.deleted(VENDOR, name, delete, route_of=self.route_of)

    def route_of(self, name: str) -> Any:
        """Where SpamWall sends *name*'s mail, ``ip:port``, or :data:`~..settle.NOT_HELD`."""
        name = normalise_domain(name)
        held = (f"{d.ip}:{d.port}" for d in self.list_domains() if d.host.lower() == name)
        return next(held, settle.NOT_HELD)

    # -- 4.2 users -------------------------------------------------------------------

    def list_users(self, user: str = "all") -> list[User]:
        """``all`` (a domain admin's all is their domain), or one ``name@domain``."""
        if user != "all":
            user = normalise_email(user, "user")
        doc = self.call("list_users", user=user).doc
        return [
            User(_text(u, "Username"), _text(u, "Name"), _text(u, "Email"), _text(u, "Last_login"))
            for u in doc.iter("User")
        ]

    def add_user(self, username: str, password: Secret, email: str, full_name: str) -> None:
        self.call(
            "add_user",
            username=username,
            password=password.reveal(),
            email=normalise_email(email, "email"),
            full_name=full_name,
        )

    def change_user(self, user: str, username: str, email: str, full_name: str) -> None:
        """Modify an account; *username* equal to *user* keeps its name."""
        self.call(
            "change_user",
            user=user,
            username=username,
            email=normalise_email(email, "email"),
            full_name=full_name,
        )

    def change_user_password(self, user: str, newpass: Secret) -> None:
        self.call("change_user_password", user=user, newpass=newpass.reveal())

    def delete_user(self, user: str) -> None:
        self.call("delete_user", user=user)

    # -- 4.3 white/black lists (the caller's own) -----------------------------------

    def list_add(self, which: str, email: str) -> None:
        """Add to the caller's whitelist or blacklist (already there is a success)."""
        self.call(f"{_list(which)}_add", email=normalise_email(email, "email"))

    def list_del(self, which: str, email: str) -> None:
        """Remove from the caller's whitelist or blacklist (not there is a success)."""
        self.call(f"{_list(which)}_del", email=normalise_email(email, "email"))

    def whitelist_add(self, email: str) -> None:
        self.list_add("whitelist", email)

    def blacklist_add(self, email: str) -> None:
        self.list_add("blacklist", email)

    def whitelist_del(self, email: str) -> None:
        self.list_del("whitelist", email)

    def blacklist_del(self, email: str) -> None:
        self.list_del("blacklist", email)

    # -- 4.4 trusted IPs (admin only) ------------------------------------------------

    def add_bypass(self, which: str, ip: str, full: bool = True) -> None:
        """Trust *ip* for the spam or RBL check; ``full=False`` takes a partial address
        (``192.0.2.`` matches the whole block)."""
        ip = normalise_ip(ip) if full else _partial_ip(ip)
        self.call(f"add_{_bypass(which)}_bypass", ip=ip, full="1" if full else "0")

    def del_bypass(self, which: str, ip: str) -> None:
        self.call(f"del_{_bypass(which)}_bypass", ip=ip.strip())

    # -- 4.5 recipient verification (admin only) --------------------------------------

    def verification_method(self) -> int:
        message = self.call("verification_method").message
        if message not in ("1", "2", "3"):
            raise VendorResponseError(
                VENDOR, "answered verification_method with no method 1, 2 or 3", body=message
            )
        return int(message)

    def set_verification_method(self, method: int) -> None:
        if method not in VERIFICATION_METHODS:
            raise VendorRejected(VENDOR, f"method must be 1, 2 or 3, not {method!r}")
        self.call("set_verification_method", method=method)

    def recipient_add(self, email: str) -> None:
        self.call("recipient_add", email=normalise_email(email, "email"))

    def recipient_del(self, email: str) -> None:
        self.call("recipient_del", email=normalise_email(email, "email"))

    def recipients_clear(self) -> None:
        self.call("recipients_clear")

    def recipients_list(self) -> list[Recipient]:
        doc = self.call("recipients_list").doc
        return [Recipient(_text(r, "id"), _text(r, "address")) for r in doc.iter("Recipient")]

    def recipients_transport_sync(self) -> None:
        self.call("recipients_transport_sync")

    # -- 4.6 spam scores (the caller's own) -------------------------------------------

    def spam_level(self, level: str) -> str:
        value = self.call(_level(level)).message
        if not SCORE.fullmatch(value):
            raise VendorResponseError(VENDOR, f"answered {level} without a score", body=value)
        return value

    def spam_levels(self) -> dict[str, str]:
        return {level: self.spam_level(level) for level in LEVELS}

    def set_spam_level(self, level: str, value: str) -> None:
        value = str(value).strip()
        if not SCORE.fullmatch(value):
            raise VendorRejected(
                VENDOR, f"{level} must be a number from -999 to 999 with at most two decimals"
            )
        self.call(f"set_{_level(level)}", value=value)


def _port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise VendorRejected(VENDOR, f"the destination port must be 1 to 65535, not {port!r}")
    return port


def _one_of(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise VendorRejected(VENDOR, f"{what} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _list(which: str) -> str:
    return _one_of(which, LISTS, "list")


def _bypass(which: str) -> str:
    return _one_of(which, BYPASS, "bypass list")


def _level(level: str) -> str:
    return _one_of(level, LEVELS, "level")


_PARTIAL = re.compile(r"(\d{1,3}\.){1,3}")


def _partial_ip(value: str) -> str:
    """A partial IPv4 address (``192.0.2.`` or ``10.``), as SpamWall's partial entries are."""
    value = str(value).strip()
    if not _PARTIAL.fullmatch(value) or any(int(p) > 255 for p in value.strip(".").split(".")):
        raise VendorRejected(
            VENDOR, f"{value!r} is not a partial IPv4 address such as 192.0.2. (ending in a dot)"
        )
    return value
