"""Tornevall SpamAssassin client: ``POST <api_url>/<verb>`` (``api_url`` ends in
``/3.0/spamassassin``) with a JSON body; the key parameter is the e-mail address.

One typed method per documented verb.  Where the document is silent, Tornevall's own
generic client (``torneApi()`` in Tornevall/tornevall-wp-dnsbl ``includes/api.php``) is the
evidence followed (docs/vendors/tornevall.md):

* authentication is HTTP Basic with the application id and key (``auth_scheme = "basic"``,
  the default); ``bearer`` and ``header`` (``X-Api-Key``) are there for endpoints set up so;
* the document shows answers as ``{"<verb>Response": ...}``, while that client reads the
  same object inside a top-level ``response`` key: both are accepted;
* an exception is an ``errors`` object whose ``code`` is 400 or more, with its text in
  ``faultstring`` (or ``message``), whatever the HTTP status; the code picks the typed error.

"true/false/exception" verbs: ``true`` is done; ``false`` is checked against what the
vendor now holds (the intent met already is a success, never guessed from wording), and is
otherwise a :class:`NotDone` refusal.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from ..errors import (
    ConfigError,
    VendorAuthError,
    VendorError,
    VendorForbidden,
    VendorNotFound,
    VendorRejected,
    VendorResponseError,
    VendorUnavailable,
)
from ..events import normalise_domain, normalise_email
from ..http import ACCEPT, HttpClient, Response
from ..redaction import Secret, register_name
from ..urls import plain_http_problem

VENDOR = "tornevall"
DEFAULT_URL = "https://api.tornevall.net/3.0/spamassassin"
AUTH_SCHEMES = ("basic", "bearer", "header")

register_name("X-Api-Key", header=True)
register_name("password")  # verifyAccount's

#: the preferences the document's getSpamAssassinOptions example lists, with their kind
PREFERENCES = {
    "bayes_auto_learn": "boolean",
    "fold_headers": "boolean",
    "normalize_charset": "boolean",
    "ok_languages": "languages",
    "ok_locales": "languages",
    "report_safe": "report_safe",
    "rewrite_header": "header",
    "skip_rbl_checks": "boolean",
    "use_auto_whitelist": "boolean",
    "use_bayes": "boolean",
    "use_pyzor": "boolean",
    "use_razor2": "boolean",
    "required_hits": "score",
}
#: the preferences the document marks strict (only globally configurable)
STRICT = frozenset({"bayes_auto_learn", "use_auto_whitelist"})

_SCORE = re.compile(r"-?\d{1,3}(\.\d{1,2})?")
_LANGS = re.compile(r"all|[a-z]{2}( [a-z]{2})*")
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'+/=?^_`{|}~.-]+")


class NotDone(VendorRejected):
    """A verb answered ``false`` and the vendor does not hold what was asked."""


class StrictPreference(VendorForbidden):
    """A preference only Tornevall may change (``strict``)."""


@dataclass(frozen=True)
class SpamOptions:
    """getSpamAssassinOptions: the mailbox's preferences, each one's description, which are
    booleans (checkboxes) and which are strict (read-only)."""

    preferences: dict[str, str]
    descriptions: dict[str, str]
    booleans: frozenset[str]
    strict: frozenset[str]


# -- checks shared by the config, the pages and the client ------------------------------


def preference_value(name: str, value: Any) -> str:
    """*value* as the API takes it for preference *name* (``"1"``/``"0"`` for booleans);
    ValueError naming the preference and the fix when it is not one."""
    if name not in PREFERENCES:
        raise ValueError(
            f"{name!r} is not a SpamAssassin preference Tornevall documents; use one of "
            + ", ".join(sorted(PREFERENCES))
        )
    if name in STRICT:
        raise ValueError(f"{name} is strict at Tornevall (only globally configurable); remove it")
    kind = PREFERENCES[name]
    if isinstance(value, bool):
        if kind != "boolean":
            raise ValueError(f"{name} is not a yes/no preference")
        return "1" if value else "0"
    text = str(value).strip()
    if kind == "boolean" and text not in ("0", "1"):
        raise ValueError(f"{name} must be 1 (on) or 0 (off), or true/false")
    if kind == "report_safe" and text not in ("0", "1", "2"):
        raise ValueError(f"{name} must be 0, 1 or 2")
    if kind == "score" and not _SCORE.fullmatch(text):
        raise ValueError(f"{name} must be a score such as 5 or 4.5")
    if kind == "languages" and not _LANGS.fullmatch(text):
        raise ValueError(f"{name} must be two-letter codes separated by spaces (sv en), or all")
    if kind == "header" and (not text.startswith("Subject ") or not 9 <= len(text) <= 200):
        raise ValueError(f"{name} must be 'Subject ' and a tag, such as 'Subject [SPAM]'")
    return text


def sender_mask(value: str) -> str:
    """A whitelist mask (``name@example.com``, ``*@example.com`` or ``*@*.example.com``),
    lower-case with the domain in IDNA; ValueError naming the forms otherwise."""
    text = str(value).strip()
    local, at, domain = text.rpartition("@")
    problem = (
        f"{text!r} is not a sender mask; use name@example.com, *@example.com or *@*.example.com"
    )
    if not at or not local or not domain or "@" in local:
        raise ValueError(problem)
    if local != "*" and not _LOCAL.fullmatch(local):
        raise ValueError(problem)
    wild = domain.startswith("*.")
    try:
        name = normalise_domain(domain[2:] if wild else domain, "emailmask")
    except ValueError:
        raise ValueError(problem) from None
    return f"{local.lower()}@{'*.' if wild else ''}{name}"


def host_pair(host: str) -> tuple[str, str]:
    """The two global whitelist entries Tornevall keeps for a host."""
    name = normalise_domain(host, "host")
    return f"*@{name}", f"*@*.{name}"


# -- errors ---------------------------------------------------------------------------


def error_for(verb: str, errors: dict, resp: Response) -> VendorError:
    """The typed error for an ``errors`` object (``code`` 400 or more)."""
    code = errors.get("code")
    text = errors.get("faultstring") or errors.get("message") or "no message"
    said = f"(Tornevall said: {text})"
    status = resp.status
    if code == 401:
        return VendorAuthError(
            VENDOR,
            f"refused the API credentials {said}; fix application, api_key or auth_scheme in "
            "[vendors.tornevall] and run 'spamfilter check'",
            status=status,
            body=resp.body,
            retry=False,
        )
    if code == 403 and verb == "updateSpamAssassinOption":
        return StrictPreference(VENDOR, f"refused the change {said}", status=status, body=resp.body)
    if code == 403:
        return VendorAuthError(
            VENDOR,
            f"refused {verb} {said}; this endpoint needs special API permissions: ask Tornevall "
            "Networks to grant them to the application, then run 'spamfilter check'",
            status=status,
            body=resp.body,
            retry=False,
        )
    if code == 404:
        return VendorNotFound(VENDOR, f"{verb}: not found {said}", status=status, body=resp.body)
    if isinstance(code, int) and code >= 500:
        return VendorUnavailable(
            VENDOR, f"failed {verb} {said}; it is tried again later", status=status, body=resp.body
        )
    return VendorRejected(
        VENDOR, f"refused {verb} {said}", status=status, body=resp.body, retry=False
    )


def _errors(doc: Any) -> dict | None:
    """The ``errors`` object of an answer, when it reports an exception."""
    if not isinstance(doc, dict) or not isinstance(doc.get("errors"), dict):
        return None
    code = doc["errors"].get("code")
    return doc["errors"] if isinstance(code, int) and code >= 400 else None


def _classify(resp: Response) -> VendorError | None:
    """An exception below 500 in Tornevall's ``errors`` object is read by
    :meth:`TornevallClient.call`; 5xx and anything else are left to the HTTP status (so a
    server error is retried)."""
    if 200 <= resp.status < 300 or resp.status >= 500 or resp.body.lstrip()[:1] != b"{":
        return None
    try:
        doc = resp.json()
    except VendorResponseError:
        return None
    return ACCEPT if _errors(doc) is not None else None


class TornevallClient:
    """Typed access to every documented verb of ``/3.0/spamassassin``.

    :param http: the HTTP client (``base_url`` is the endpoint, ``.../3.0/spamassassin``).
    :param api_key: the application's key.
    :param application: the application id (HTTP Basic's user name).
    :param auth_scheme: ``basic`` (the default), ``bearer`` or ``header``.
    """

    def __init__(
        self,
        http: HttpClient,
        api_key: Secret,
        *,
        application: str | None = None,
        auth_scheme: str = "basic",
    ) -> None:
        problem = plain_http_problem(http.base_url, DEFAULT_URL)
        if problem:
            raise ConfigError(problem, location="[vendors.tornevall] api_url")
        if auth_scheme not in AUTH_SCHEMES:
            raise ConfigError(
                "must be basic, bearer or header", location="[vendors.tornevall] auth_scheme"
            )
        if auth_scheme == "basic" and not application:
            raise ConfigError(
                'HTTP Basic needs the application id; add application = "..."',
                location="[vendors.tornevall] application",
            )
        self.http, self.api_key = http, api_key
        self.application, self.auth_scheme = application, auth_scheme
        http.classify = _classify

    def _auth(self) -> dict[str, str]:
        key = self.api_key.reveal()
        if self.auth_scheme == "bearer":
            return {"Authorization": f"Bearer {key}"}
        if self.auth_scheme == "header":
            return {"X-Api-Key": key}
        pair = base64.b64encode(f"{self.application}:{key}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}

    def call(self, verb: str, **params: Any) -> Any:
        """Run *verb*; its answer (the value of ``<verb>Response``), or the typed error."""
        headers = {"Accept": "application/json", **self._auth()}
        resp = self.http.request("POST", verb, json=params, headers=headers)
        doc = resp.json()
        errors = _errors(doc)
        if errors is not None:
            raise error_for(verb, errors, resp)
        key = f"{verb}Response"
        if isinstance(doc, dict) and key not in doc and isinstance(doc.get("response"), dict):
            doc = doc["response"]  # the shape Tornevall's own client reads
        if not isinstance(doc, dict) or key not in doc:
            raise VendorResponseError(
                VENDOR,
                f"answered {verb} without {key}; check api_url (it ends in /3.0/spamassassin)",
                status=resp.status,
                body=resp.body,
            )
        return doc[key]

    def _flag(self, verb: str, **params: Any) -> bool:
        found = self.call(verb, **params)
        if not isinstance(found, bool):
            raise VendorResponseError(VENDOR, f"answered {verb} with {found!r}, not true/false")
        return found

    def _strings(self, verb: str, **params: Any) -> list[str]:
        found = self.call(verb, **params)
        if not isinstance(found, list) or not all(isinstance(v, str) for v in found):
            raise VendorResponseError(VENDOR, f"answered {verb} without a list of entries")
        return found

    # -- the verbs, one method each -------------------------------------------------

    def get_user_whitelist(self, email: str) -> list[str]:
        return self._strings("getUserWhiteList", email=normalise_email(email, "email"))

    def get_global_whitelist(self) -> list[str]:
        return self._strings("getGlobalWhiteList")

    def get_global_blacklist_sender(self) -> list[str]:
        return self._strings("getGlobalBlackListSender")

    def set_global_whitelist_host(self, host: str) -> bool:
        return self._flag("setGlobalWhitelistHost", host=normalise_domain(host, "host"))

    def del_global_whitelist_host(self, host: str) -> bool:
        return self._flag("delGlobalWhitelistHost", host=normalise_domain(host, "host"))

    def verify_account(self, email: str, password: Secret) -> bool:
        return self._flag(
            "verifyAccount", email=normalise_email(email, "email"), password=password.reveal()
        )

    def set_address_whitelist(self, email: str, emailmask: str) -> bool:
        return self._flag(
            "setAddressWhiteList", email=normalise_email(email, "email"), emailmask=_mask(emailmask)
        )

    def remove_address_whitelist(self, email: str, emailmask: str) -> bool:
        return self._flag(
            "removeAddressWhiteList",
            email=normalise_email(email, "email"),
            emailmask=_mask(emailmask),
        )

    def get_spamassassin_options(self, email: str) -> SpamOptions:
        found = self.call("getSpamAssassinOptions", email=normalise_email(email, "email"))
        if not isinstance(found, dict) or not isinstance(found.get("preferences"), dict):
            raise VendorResponseError(
                VENDOR, "answered getSpamAssassinOptions without preferences", body=str(found)
            )

        def table(name: str) -> dict[str, str]:
            value = found.get(name) or {}
            return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

        def flagged(name: str) -> frozenset[str]:
            return frozenset(k for k, v in table(name).items() if v in ("1", "True", "true"))

        return SpamOptions(
            table("preferences"), table("descriptions"), flagged("booleans"), flagged("strict")
        )

    def update_spamassassin_option(self, email: str, preference: str, value: Any) -> bool:
        if preference in STRICT:
            raise StrictPreference(VENDOR, f"{preference} is strict: only Tornevall changes it")
        try:
            text = preference_value(preference, value)
        except ValueError as exc:
            raise VendorRejected(VENDOR, str(exc)) from None
        return self._flag(
            "updateSpamAssassinOption",
            email=normalise_email(email, "email"),
            preference=preference,
            value=text,
        )

    # -- the intent, checked: false is a success only when it is met already ------------

    def add_global_host(self, host: str) -> bool:
        """Whitelist *host* globally (both entries of its pair); True when it was added,
        False when it was there already."""
        if self.set_global_whitelist_host(host):
            return True
        if set(host_pair(host)) <= set(self.get_global_whitelist()):
            return False
        raise NotDone(
            VENDOR, f"answered false to setGlobalWhitelistHost {host}, and it is not listed"
        )

    def remove_global_host(self, host: str) -> bool:
        """Remove both entries of *host*'s pair; True when removed, False when not there."""
        if self.del_global_whitelist_host(host):
            return True
        if not set(host_pair(host)) & set(self.get_global_whitelist()):
            return False
        raise NotDone(
            VENDOR, f"answered false to delGlobalWhitelistHost {host}, and it is still listed"
        )

    def add_mask(self, email: str, emailmask: str) -> bool:
        mask = _mask(emailmask)
        if self.set_address_whitelist(email, mask):
            return True
        if mask in self.get_user_whitelist(email):
            return False
        raise NotDone(VENDOR, f"answered false to whitelisting {mask} for {email}")

    def remove_mask(self, email: str, emailmask: str) -> bool:
        mask = _mask(emailmask)
        if self.remove_address_whitelist(email, mask):
            return True
        if mask not in self.get_user_whitelist(email):
            return False
        raise NotDone(VENDOR, f"answered false to removing {mask} for {email}, and it is listed")

    def set_preference(self, email: str, preference: str, value: Any) -> None:
        """Set one preference; a false answer is a success only when it holds the value."""
        if self.update_spamassassin_option(email, preference, value):
            return
        wanted = preference_value(preference, value)
        if self.get_spamassassin_options(email).preferences.get(preference) != wanted:
            raise NotDone(VENDOR, f"answered false to setting {preference} for {email}")


def _mask(value: str) -> str:
    try:
        return sender_mask(value)
    except ValueError as exc:
        raise VendorRejected(VENDOR, f"emailmask: {exc}") from None
