"""Tornevall SpamAssassin emulator: ``POST /3.0/spamassassin/<verb>`` with a JSON
body (form-encoded is accepted too).

Where the document is silent, Tornevall's own generic client (``torneApi()`` in
Tornevall/tornevall-wp-dnsbl ``includes/api.php``) is the evidence followed:

* authentication (``auth_scheme``): ``basic`` (default), HTTP Basic with the application
  id and key, as that client sends; ``bearer`` (``Authorization: Bearer <api_key>``) and
  ``header`` (``X-Api-Key: <api_key>``) stay available;
* answers (``answer_shape``): ``response`` (default) wraps the document's object in a
  top-level ``response`` key, ``{"response": {"<verb>Response": ...}}``, which is where
  that client reads it; ``document`` answers ``{"<verb>Response": ...}`` as the document
  shows;
* an exception is ``{"errors": {"code": <status>, "faultstring": <text>}}`` with that HTTP
  status (the client reads ``errors.code`` and ``faultstring``); ``error_field`` =
  ``message`` names the text ``message`` instead.

"true/false/exception" verbs answer ``true`` or ``false``: ``false`` when the intent is met
already (a host or mask that is there, or not there) or when the verb is seeded to refuse
(``{"refuse": ["setAddressWhiteList"]}``, which answers false and changes nothing).
Exceptions: 401 bad credentials, 400 missing or invalid parameter, 403 a strict
preference, 404 unknown verb or e-mail account, 405 not POST.  Only accounts hosted here
(seeded) have per-address settings.
"""

from __future__ import annotations

import base64
import copy
import re
from typing import Any

from ..redaction import register_name
from .base import Emulator, Reply, Request
from .validate import is_domain, is_email

register_name("X-Api-Key", header=True)  # the "header" authentication scheme

APPLICATION = "sandbox-app"
API_KEY = "sandbox-tornevall-key-0123456789"
ACCOUNTS = {
    "test@tornevall-domain.com": "sandbox-mail-Pw1",
    "other@tornevall-domain.com": "sandbox-mail-Pw2",
}
PREFIX = "/3.0/spamassassin"

DEFAULT_PREFERENCES = {
    "bayes_auto_learn": "1",
    "fold_headers": "1",
    "normalize_charset": "1",
    "ok_languages": "sv se en",
    "ok_locales": "sv se en",
    "report_safe": "2",
    "rewrite_header": "Subject [SPAMASSASSIN]",
    "skip_rbl_checks": "0",
    "use_auto_whitelist": "1",
    "use_bayes": "1",
    "use_pyzor": "1",
    "use_razor2": "1",
    "required_hits": "5",
}
DESCRIPTIONS = {
    "bayes_auto_learn": "Whether SpamAssassin should automatically feed high-scoring mails (or "
    "low-scoring mails, "
    "for non-spam) into its learning systems",
    "fold_headers": "By default, headers added by SpamAssassin will be whitespace folded. In "
    "other words, they will "
    "be broken up into multiple lines instead of one very long one and each continuation line will "
    "have a tabulator prepended to mark it as a continuation of the preceding one.",
    "normalize_charset": "Whether to decode non- UTF-8 and non-ASCII textual parts and recode "
    "them to UTF-8 before "
    "the text is given over to rules processing",
    "ok_languages": "This option is used to specify which languages are considered okay for "
    "incoming mail. "
    "SpamAssassin will try to detect the language used in the message text.",
    "ok_locales": "This option is used to specify which locales are considered OK for incoming "
    "mail. Mail using "
    "the character sets that are allowed by this option will not be marked as possibly being spam "
    "in a foreign language.",
    "report_safe": "0=Flagged spam: SpamAssassin will only add X-Spam-header in original "
    "message\n1=Flagged spam: "
    "SpamAssassin will create a new report with original message inside\n2=Flagged spam: "
    "SpamAssassin will attach original message as plain message. This setting may be required for "
    "safety reasons on certain broken mail clients that automatically load attachments without any "
    "action by the user. This setting may also make it somewhat more difficult to extract or view "
    "the original message.",
    "rewrite_header": "Adds a specific string to the mail when spam is detected",
    "skip_rbl_checks": "By default, SpamAssassin will run RBL (blacklist) checks. You need spam? "
    "Then you should "
    "skip the checks.",
    "use_auto_whitelist": "Whether to use auto-whitelists. Auto-whitelists track the long-term "
    "average score for "
    "each sender and then shift the score of new messages toward that long-term average.",
    "use_bayes": "Whether to use the naive-Bayesian-style classifier built into SpamAssassin. "
    "This is a master "
    "on/off switch for all Bayes-related operations",
    "use_pyzor": "Not described",
    "use_razor2": "Not described",
}
BOOLEANS = {
    "bayes_auto_learn": "1",
    "fold_headers": "1",
    "normalize_charset": "1",
    "ok_languages": "0",
    "ok_locales": "0",
    "report_safe": "0",
    "rewrite_header": "0",
    "skip_rbl_checks": "1",
    "use_auto_whitelist": "1",
    "use_bayes": "1",
    "use_pyzor": "1",
    "use_razor2": "1",
}
STRICT = {"bayes_auto_learn": "1", "use_auto_whitelist": "1"}
GLOBAL_WHITELIST_HOSTS = ("eff.org", "facebookmail.com", "jetbrains.com", "youtube.com")
GLOBAL_BLACKLIST = [
    "*@fritt-val.se",
    "*@nam-mail.com",
    "*@spinxdigitalmedia.com",
    "*@sverigeerbjudanden.com",
    "*@tilbud-nu.net",
    "*yachtmarket*",
    "d.green@virgin.net",
]
USER_WHITELIST = {
    "test@tornevall-domain.com": [
        "*@*.whitelisted.com",
        "*@marvel.com",
        "tomas.tornevall@second.domain.com",
    ]
}
_MASK = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@(\*\.)?[A-Za-z0-9*.-]+$")
_LANGS = re.compile(r"^(all|[a-z]{2}( [a-z]{2})*)$")


AUTH_SCHEMES = ("basic", "bearer", "header")
ANSWER_SHAPES = ("response", "document")


def _one_of(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: one of {', '.join(choices)}")
    return value


class Raise(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


def _pair(host: str) -> tuple[str, str]:
    return f"*@{host}", f"*@*.{host}"


class TornevallEmulator(Emulator):
    name = "tornevall"
    port_offset = 3
    api_path = PREFIX
    settings = ("auth_scheme", "answer_shape", "error_field")

    def __init__(
        self,
        *,
        auth_scheme: str = "basic",
        answer_shape: str = "response",
        application: str = APPLICATION,
        api_key: str = API_KEY,
        **kw,
    ):
        self.auth_scheme = _one_of("auth_scheme", auth_scheme, AUTH_SCHEMES)
        self.answer_shape = _one_of("answer_shape", answer_shape, ANSWER_SHAPES)
        self.error_field = "faultstring"
        self.application = application
        self.api_key = self.secret(api_key)
        super().__init__(**kw)

    def initial_state(self) -> None:
        self.accounts = {email: self.secret(pw) for email, pw in ACCOUNTS.items()}
        self.global_whitelist = sorted(p for h in GLOBAL_WHITELIST_HOSTS for p in _pair(h))
        self.global_blacklist = list(GLOBAL_BLACKLIST)
        self.user_whitelists = copy.deepcopy(USER_WHITELIST)
        self.preferences: dict[str, dict[str, str]] = {}
        self.refuse: set[str] = set()

    def credentials(self) -> dict[str, Any]:
        creds: dict[str, Any] = {"api_key": self.api_key, "auth_scheme": self.auth_scheme}
        if self.auth_scheme == "basic":
            creds["application"] = self.application
        return creds

    def seed_data(self, data: dict[str, Any]) -> None:
        for email, password in data.pop("accounts", {}).items():
            self.accounts[email.lower()] = self.secret(password)
        for email in data.pop("remove_accounts", []):
            self.accounts.pop(email.lower(), None)
        if "auth_scheme" in data:
            self.auth_scheme = _one_of("auth_scheme", data.pop("auth_scheme"), AUTH_SCHEMES)
        if "answer_shape" in data:
            self.answer_shape = _one_of("answer_shape", data.pop("answer_shape"), ANSWER_SHAPES)
        if "error_field" in data:
            field = data.pop("error_field")
            self.error_field = _one_of("error_field", field, ("faultstring", "message"))
        refuse = data.pop("refuse", [])
        if not isinstance(refuse, list) or not all(isinstance(v, str) for v in refuse):
            raise ValueError("refuse: a list of verbs")
        self.refuse |= set(refuse)
        if data:
            raise ValueError(f"unknown seed keys: {', '.join(sorted(data))}")

    def snapshot(self) -> dict[str, Any]:
        return {
            "accounts": sorted(self.accounts),
            "global_whitelist": self.global_whitelist,
            "global_blacklist": self.global_blacklist,
            "user_whitelists": self.user_whitelists,
            "preferences": self.preferences,
            "auth_scheme": self.auth_scheme,
            "answer_shape": self.answer_shape,
        }

    def _authenticated(self, req: Request) -> bool:
        if self.auth_scheme == "bearer":
            return req.headers.get("Authorization") == f"Bearer {self.api_key}"
        if self.auth_scheme == "header":
            return req.headers.get("X-Api-Key") == self.api_key
        expected = base64.b64encode(f"{self.application}:{self.api_key}".encode()).decode()
        return req.headers.get("Authorization") == f"Basic {expected}"

    # -- the API -------------------------------------------------------------

    def handle(self, req: Request) -> Reply:
        if not req.path.startswith(PREFIX + "/"):
            return self._error(404, "Unknown endpoint")
        verb = req.path[len(PREFIX) + 1 :].strip("/")
        try:
            if req.method != "POST":
                raise Raise(405, "Use POST")
            if not self._authenticated(req):
                raise Raise(401, "Missing or invalid API credentials for this endpoint")
            handler = getattr(self, f"v_{verb}", None) if re.fullmatch(r"[A-Za-z]+", verb) else None
            if handler is None:
                raise Raise(404, f"Unknown verb: {verb}")
            if req.content_type == "application/x-www-form-urlencoded":
                params = req.form()
            else:
                try:
                    params = req.json() if req.body else {}
                except ValueError:
                    raise Raise(400, "The request body is not JSON") from None
                if not isinstance(params, dict):
                    raise Raise(400, "The request body must be a JSON object")
            if verb in self.refuse:
                return self._answer({f"{verb}Response": False})
            return self._answer({f"{verb}Response": handler(params)})
        except Raise as exc:
            return self._error(exc.status, exc.message)

    def _answer(self, doc: dict) -> Reply:
        return Reply.json({"response": doc} if self.answer_shape == "response" else doc)

    def _error(self, status: int, message: str) -> Reply:
        return Reply.json({"errors": {"code": status, self.error_field: message}}, status)

    @staticmethod
    def need(params: dict, name: str) -> str:
        value = params.get(name)
        if value is None or value == "":
            raise Raise(400, f"Missing parameter: {name}")
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise Raise(400, f"Invalid parameter: {name}")
        return str(value)

    def _account(self, params: dict) -> str:
        email = self.need(params, "email").lower()
        if not is_email(email):
            raise Raise(400, f"Invalid parameter: email ({email})")
        if email not in self.accounts:
            raise Raise(404, f"No such account: {email}")
        return email

    def _host(self, params: dict) -> str:
        host = self.need(params, "host").lower()
        if not is_domain(host):
            raise Raise(400, f"Invalid parameter: host ({host})")
        return host

    def v_getUserWhiteList(self, params):
        return sorted(self.user_whitelists.get(self._account(params), []))

    def v_getGlobalWhiteList(self, params):
        return sorted(self.global_whitelist)

    def v_getGlobalBlackListSender(self, params):
        return sorted(self.global_blacklist)

    def v_setGlobalWhitelistHost(self, params):
        pair = _pair(self._host(params))
        if all(p in self.global_whitelist for p in pair):
            return False
        self.global_whitelist = sorted(set(self.global_whitelist) | set(pair))
        return True

    def v_delGlobalWhitelistHost(self, params):
        pair = _pair(self._host(params))
        if not any(p in self.global_whitelist for p in pair):
            return False
        self.global_whitelist = [p for p in self.global_whitelist if p not in pair]
        return True

    def v_verifyAccount(self, params):
        email = self.need(params, "email").lower()
        password = self.need(params, "password")
        return self.accounts.get(email) == password

    def _mask(self, params) -> str:
        mask = self.need(params, "emailmask").lower()
        if not _MASK.match(mask) or mask.count("@") != 1:
            raise Raise(400, f"Invalid parameter: emailmask ({mask})")
        return mask

    def v_setAddressWhiteList(self, params):
        email, mask = self._account(params), self._mask(params)
        entries = self.user_whitelists.setdefault(email, [])
        if mask in entries:
            return False
        entries.append(mask)
        return True

    def v_removeAddressWhiteList(self, params):
        email, mask = self._account(params), self._mask(params)
        entries = self.user_whitelists.get(email, [])
        if mask not in entries:
            return False
        entries.remove(mask)
        return True

    def v_getSpamAssassinOptions(self, params):
        email = self._account(params)
        prefs = dict(DEFAULT_PREFERENCES, **self.preferences.get(email, {}))
        return {
            "preferences": prefs,
            "descriptions": DESCRIPTIONS,
            "booleans": BOOLEANS,
            "strict": STRICT,
        }

    def v_updateSpamAssassinOption(self, params):
        email = self._account(params)
        pref = self.need(params, "preference")
        value = str(params.get("value", ""))
        if pref not in DEFAULT_PREFERENCES:
            raise Raise(400, f"Unknown preference: {pref}")
        if STRICT.get(pref) == "1":
            raise Raise(403, f"Preference {pref} is strict and can only be changed globally")
        if BOOLEANS.get(pref) == "1" and value not in ("0", "1"):
            raise Raise(400, f"Invalid value for {pref}: must be 0 or 1")
        if pref == "report_safe" and value not in ("0", "1", "2"):
            raise Raise(400, "Invalid value for report_safe: must be 0, 1 or 2")
        if pref == "required_hits" and not re.fullmatch(r"-?\d{1,3}(\.\d{1,2})?", value):
            raise Raise(400, "Invalid value for required_hits: must be a number like 5 or 4.5")
        if pref in ("ok_languages", "ok_locales") and not _LANGS.match(value):
            raise Raise(
                400, f"Invalid value for {pref}: two-letter codes separated by spaces, or all"
            )
        if pref == "rewrite_header" and (not value.startswith("Subject ") or len(value) > 200):
            raise Raise(400, "Invalid value for rewrite_header: must look like 'Subject [SPAM]'")
        self.preferences.setdefault(email, {})[pref] = value
        return True
