"""spambarrier emulator: ``POST /api/`` with a JSON ``{"method", "params"}`` body,
``user_id``/``api_token`` in ``params``; answers ``{"result": "success", ...}``.

The document shows only successes.  spambarrier's own PHP client reads a failure as
``{"result": "error", "params": {"message": <text>}}``, so the emulator answers failures
with HTTP 200 in that shape, a machine-readable ``code`` beside the message:
``authentication_failed``, ``unknown_method``, ``invalid_request`` (body not JSON or not
the envelope), ``missing_parameter``, ``invalid_parameter``, ``domain_exists``,
``domain_not_found``, ``txt_record_not_found``, ``message_not_found``, ``entry_not_found``.
Seeding ``{"error_shape": "error"}`` answers ``{"result": "error", "error": {"code",
"message"}}`` instead, and ``"message_only"`` the PHP client's shape with no code at all.
A request that is not a POST gets HTTP 405.

Where the document and the vendor's client disagree, both are accepted: ``greylisting``
as ``0``/``1`` (the document) or ``false``/``true`` (the vendor's README), and the
whitelist methods spelled ``get-whitelistentries`` (the document) or
``get-whitelist-entries`` (the client).  Seeding ``{"whitelist_spelling": "document"}`` or
``"client"`` makes the server know only that spelling.

``confirm-txt-record`` succeeds once the TXT record returned by ``add-domain``
has been published in the sandbox's DNS (``POST /_sandbox/seed`` with
``{"dns": {"example.org": ["spambarrier-verify-54321"]}}``; the record is
looked up at the domain itself).  Quarantine messages and statistics are
generated deterministically from the domain name; there is no mail before the day the
domain was added.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from ..redaction import register_name
from .base import Emulator, Reply, Request
from .validate import is_domain, is_email, is_ip

register_name("api_token")

USER_ID = 12345
API_TOKEN = "sandbox-spambarrier-token-0123456789"
SPAM_TREATMENTS = ("reject", "quarantine", "tag")
VIRUS_TREATMENTS = ("reject", "quarantine")
INTERVALS = ("hour", "day", "month")
ERROR_SHAPES = ("params", "error", "message_only")
#: the whitelist methods as the document spells them -> as the vendor's client does
WHITELIST_SPELLINGS = {
    "get-whitelistentries": "get-whitelist-entries",
    "add-whitelistentry": "add-whitelist-entry",
    "delete-whitelistentry": "delete-whitelist-entry",
}
AS_DOCUMENTED = {v: k for k, v in WHITELIST_SPELLINGS.items()}


class Fail(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message


def success(params: Any = None, *, with_params: bool = True) -> Reply:
    doc: dict[str, Any] = {"result": "success"}
    if with_params:
        doc["params"] = params if params is not None else {}
    return Reply.json(doc)


def _digest(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


class SpamBarrierEmulator(Emulator):
    name = "spambarrier"
    port_offset = 2
    api_path = "/api/"

    def __init__(self, *, user_id: int = USER_ID, api_token: str = API_TOKEN, **kw) -> None:
        self.user_id = user_id
        self.api_token = self.secret(api_token)
        super().__init__(**kw)

    def initial_state(self) -> None:
        self.domains: dict[str, dict[str, Any]] = {}
        self.next_id = 54321
        self.dns: dict[str, list[str]] = {}
        self.quarantine: dict[str, list[dict[str, Any]]] = {}
        self.resent: list[tuple[str, str]] = []
        self.whitelist: dict[str, list[dict[str, Any]]] = {}
        self.next_entry_id = 123456789
        self.error_shape = "params"
        self.whitelist_spelling = "both"

    def credentials(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "api_token": self.api_token}

    def seed_data(self, data: dict[str, Any]) -> None:
        """``dns`` ({name: [TXT values]}, added), ``dns_remove`` ({name: [values]}),
        ``quarantine`` ({domain: [messages]}, replacing the generated ones), ``error_shape``
        and ``whitelist_spelling``."""
        for name, values in data.pop("dns", {}).items():
            self.dns.setdefault(name.lower(), []).extend(values)
        for name, values in data.pop("dns_remove", {}).items():
            self.dns[name.lower()] = [v for v in self.dns.get(name.lower(), []) if v not in values]
        for name, messages in data.pop("quarantine", {}).items():
            self.quarantine[name.lower()] = [
                {
                    "message_id": str(m["message_id"]),
                    "from": m.get("from", "sender@spam.example"),
                    "to": m.get("to", f"user@{name.lower()}"),
                    "subject": m.get("subject", ""),
                    "date": str(m.get("date", 1363209203)),
                    "seen": m.get("seen", "false"),
                    "body": m.get("body", ""),
                }
                for m in messages
            ]
        if "error_shape" in data:
            shape = data.pop("error_shape")
            if shape not in ERROR_SHAPES:
                raise ValueError(f"error_shape: one of {', '.join(ERROR_SHAPES)}")
            self.error_shape = shape
        if "whitelist_spelling" in data:
            spelling = data.pop("whitelist_spelling")
            if spelling not in ("both", "document", "client"):
                raise ValueError("whitelist_spelling: one of both, document, client")
            self.whitelist_spelling = spelling
        if data:
            raise ValueError(f"unknown seed keys: {', '.join(sorted(data))}")

    def snapshot(self) -> dict[str, Any]:
        return {
            "domains": {
                n: {k: v for k, v in d.items() if k != "password"} for n, d in self.domains.items()
            },
            "dns": self.dns,
            "quarantine": self.quarantine,
            "resent": self.resent,
            "whitelist": self.whitelist,
        }

    # -- the API -------------------------------------------------------------

    def handle(self, req: Request) -> Reply:
        if req.path not in ("/api", "/api/"):
            return Reply.text("Not Found", 404, "text/html; charset=utf-8")
        if req.method != "POST":
            reply = self.failure(Fail("invalid_request", "POST only"))
            return Reply(405, reply.body, headers=[("Allow", "POST")])
        try:
            try:
                doc = req.json()
            except ValueError:
                raise Fail("invalid_request", "the request body is not JSON") from None
            if (
                not isinstance(doc, dict)
                or not isinstance(doc.get("params"), dict)
                or not isinstance(doc.get("method"), str)
            ):
                raise Fail("invalid_request", 'the body must be {"method": "...", "params": {...}}')
            params = doc["params"]
            if (
                str(params.get("user_id")) != str(self.user_id)
                or params.get("api_token") != self.api_token
            ):
                raise Fail("authentication_failed", "user_id or api_token is wrong")
            handler = self.handler(doc["method"])
            if handler is None:
                raise Fail("unknown_method", f"unknown method: {doc['method']}")
            return handler(params)
        except Fail as exc:
            return self.failure(exc)

    def unclear(self) -> Reply:
        # the vendor's PHP client's shape: a message, no code
        return Reply.json({"result": "error", "params": {"message": "request failed"}})

    def failure(self, exc: Fail) -> Reply:
        if self.error_shape == "error":
            return Reply.json(
                {"result": "error", "error": {"code": exc.code, "message": exc.message}}
            )
        params = {"message": exc.message}
        if self.error_shape == "params":
            params["code"] = exc.code
        return Reply.json({"result": "error", "params": params})

    def handler(self, method: str):
        """The method's handler, under either whitelist spelling the server knows."""
        if method in AS_DOCUMENTED:
            if self.whitelist_spelling == "document":
                return None
            method = AS_DOCUMENTED[method]
        elif method in WHITELIST_SPELLINGS and self.whitelist_spelling == "client":
            return None
        return getattr(self, "m_" + method.replace("-", "_"), None)

    @staticmethod
    def need(params: dict, name: str, kind: type | tuple = str) -> Any:
        if params.get(name) is None:
            raise Fail("missing_parameter", f"missing parameter: {name}")
        value = params[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise Fail("invalid_parameter", f"invalid parameter: {name}")
        return value

    def _domain(self, params: dict, must_exist: bool = True) -> str:
        name = self.need(params, "domain")
        if not is_domain(name):
            raise Fail("invalid_parameter", f"invalid domain: {name}")
        name = name.lower()
        if must_exist and name not in self.domains:
            raise Fail("domain_not_found", f"domain not found: {name}")
        return name

    def _host_and_auth(self, params: dict) -> dict[str, Any]:
        host = self.need(params, "host")
        if not (is_domain(host) or is_ip(host)):
            raise Fail("invalid_parameter", f"invalid host: {host}")
        username, password = params.get("username"), params.get("password")
        for key, value in (("username", username), ("password", password)):
            if value is not None and not isinstance(value, str):
                raise Fail("invalid_parameter", f"invalid parameter: {key}")
        if (username is None) != (password is None):
            raise Fail("invalid_parameter", "username and password go together")
        if password:
            self.secret(password)
        return {"host": host, "username": username, "password": password}

    def m_get_domains(self, params):
        rows = [
            {
                "id": str(d["id"]),
                "name": n,
                "host": d["host"],
                "has_authentication": d["username"] is not None,
                "confirmed": d["confirmed"],
                "created": str(d["created"]),
                "quarantine_mail_count": len(self._quarantine(n)),
            }
            for n, d in sorted(self.domains.items())
        ]
        return success({"count": len(rows), "domains": rows})

    def m_add_domain(self, params):
        name = self._domain(params, must_exist=False)
        fields = self._host_and_auth(params)
        if name in self.domains:
            raise Fail("domain_exists", f"domain already exists: {name}")
        domain_id = self.next_id
        self.next_id += 1
        self.domains[name] = dict(
            fields,
            id=domain_id,
            confirmed=False,
            created=int(self.clock()),
            txt=f"spambarrier-verify-{domain_id}",
            filter={
                "spam_treatment": "quarantine",
                "spam_threshold": 5,
                "virus_treatment": "quarantine",
                "greylisting": 0,
            },
        )
        return success(
            {
                "domain_id": domain_id,
                "txt_record_for_confirmation": f"spambarrier-verify-{domain_id}",
            }
        )

    def m_edit_domain(self, params):
        name = self._domain(params)
        self.domains[name].update(self._host_and_auth(params))
        return success(with_params=False)

    def m_delete_domain(self, params):
        name = self._domain(params)
        del self.domains[name]
        self.quarantine.pop(name, None)
        self.whitelist.pop(name, None)
        return success(with_params=False)

    def m_get_filter_settings(self, params):
        return success(dict(self.domains[self._domain(params)]["filter"]))

    def m_set_filter_settings(self, params):
        name = self._domain(params)
        spam = self.need(params, "spam_treatment")
        if spam not in SPAM_TREATMENTS:
            raise Fail("invalid_parameter", "spam_treatment must be reject, quarantine or tag")
        threshold = self.need(params, "spam_threshold", (int, float))
        if not 0 < threshold <= 100:
            raise Fail("invalid_parameter", "spam_threshold must be between 0 and 100")
        virus = self.need(params, "virus_treatment")
        if virus not in VIRUS_TREATMENTS:
            raise Fail("invalid_parameter", "virus_treatment must be reject or quarantine")
        greylisting = params.get("greylisting")
        if greylisting is None:
            raise Fail("missing_parameter", "missing parameter: greylisting")
        if greylisting not in (0, 1):  # 0/1 as the document sends, false/true as the README
            raise Fail("invalid_parameter", "greylisting must be 0 or 1 (or false or true)")
        greylisting = int(greylisting)
        self.domains[name]["filter"] = {
            "spam_treatment": spam,
            "spam_threshold": threshold,
            "virus_treatment": virus,
            "greylisting": greylisting,
        }
        return success(with_params=False)

    def m_confirm_txt_record(self, params):
        name = self._domain(params)
        if self.domains[name]["txt"] not in self.dns.get(name, []):
            raise Fail(
                "txt_record_not_found",
                f"TXT record {self.domains[name]['txt']} not found at {name}; publish it and try "
                "again",
            )
        self.domains[name]["confirmed"] = True
        return success(with_params=False)

    def _quarantine(self, name: str) -> list[dict[str, Any]]:
        if name not in self.quarantine:
            count = _digest(name, "count") % 4 + 2
            base = 1363209203
            self.quarantine[name] = [
                {
                    "message_id": str(98765 + i),
                    "from": f"sender{i}@spam-source{i}.example",
                    "to": f"user{i % 2}@{name}",
                    "subject": f"Offer number {i} for {name}",
                    "date": str(base + i * 3600),
                    "seen": "false",
                    "body": f"From: sender{i}@spam-source{i}.example\r\nTo: user{i % 2}@{name}\r\n"
                    f"Subject: Offer number {i} for {name}\r\n\r\nBuy now.\r\n",
                }
                for i in range(count)
            ]
        return self.quarantine[name]

    def m_get_quarantine(self, params):
        messages = self._quarantine(self._domain(params))
        return success({"count": len(messages), "messages": messages})

    def _message(self, params) -> tuple[str, dict[str, Any]]:
        name = self._domain(params)
        message_id = str(self.need(params, "message_id", (int, str)))
        for msg in self._quarantine(name):
            if msg["message_id"] == message_id:
                return name, msg
        raise Fail("message_not_found", f"message not found: {message_id}")

    def m_resend_quarantine_message(self, params):
        name, msg = self._message(params)
        self.resent.append((name, msg["message_id"]))
        self.quarantine[name].remove(msg)
        return success({})

    def m_delete_quarantine_message(self, params):
        name, msg = self._message(params)
        self.quarantine[name].remove(msg)
        return success({})

    def m_get_domain_statistics(self, params):
        name = self._domain(params)
        try:
            start = dt.date.fromisoformat(self.need(params, "from"))
            end = dt.date.fromisoformat(self.need(params, "to"))
        except ValueError:
            raise Fail("invalid_parameter", "from and to are dates written YYYY-MM-DD") from None
        interval = self.need(params, "interval")
        if interval not in INTERVALS:
            raise Fail("invalid_parameter", "interval must be hour, day or month")
        if end < start or (end - start).days > 366:
            raise Fail("invalid_parameter", "to must be on or after from, at most 366 days later")
        # (label, the last day it covers); no mail before the domain was added
        labels: list[tuple[str, dt.date]] = []
        day = start
        while day <= end:
            if interval == "hour":
                labels += [(f"{day.isoformat()} {h:02d}:00", day) for h in range(24)]
            elif interval == "day":
                labels.append((day.isoformat(), day))
            elif not labels or labels[-1][0] != day.strftime("%Y-%m"):
                labels.append((day.strftime("%Y-%m"), day))
            else:
                labels[-1] = (labels[-1][0], day)
            day += dt.timedelta(days=1)
        added = dt.date.fromtimestamp(self.domains[name]["created"])
        totals = {"total_count": 0, "pass_count": 0, "spam_count": 0, "virus_count": 0}
        intervals = []
        for label, last in labels:
            h = _digest(name, label) if last >= added else 0
            spam, virus, passed = h % 7, (h >> 8) % 2, (h >> 16) % 11
            values = {
                "total_count": spam + virus + passed,
                "pass_count": passed,
                "spam_count": spam,
                "virus_count": virus,
            }
            for k, v in values.items():
                totals[k] += v
            intervals.append({"label": label, "values": {k: str(v) for k, v in values.items()}})
        size = 3086
        return success(
            {
                "intervals": intervals,
                "total": {
                    "statistics": {k: str(v) for k, v in totals.items()},
                    "totalTraffic": totals["total_count"] * size,
                    "passedTraffic": totals["pass_count"] * size,
                    "savedTraffic": (totals["spam_count"] + totals["virus_count"]) * size,
                },
            }
        )

    def m_get_whitelistentries(self, params):
        return success({"entries": self.whitelist.get(self._domain(params), [])})

    def m_add_whitelistentry(self, params):
        name = self._domain(params)
        sender, recipient = self.need(params, "from"), self.need(params, "to")
        if not (is_email(sender) or is_domain(sender)):
            raise Fail("invalid_parameter", f"invalid from: {sender}")
        if not is_email(recipient) or recipient.rpartition("@")[2].lower() != name:
            raise Fail("invalid_parameter", f"invalid to: {recipient} (an address at {name})")
        self.whitelist.setdefault(name, []).append(
            {
                "id": str(self.next_entry_id),
                "from": sender,
                "to": recipient,
                "created": dt.datetime.fromtimestamp(self.clock()).strftime("%d.%m.%Y %H:%M:%S"),
            }
        )
        self.next_entry_id += 1
        return success([])

    def m_delete_whitelistentry(self, params):
        name = self._domain(params)
        entry_id = str(self.need(params, "id", (int, str)))
        entries = self.whitelist.get(name, [])
        for entry in entries:
            if entry["id"] == entry_id:
                entries.remove(entry)
                return success([])
        raise Fail("entry_not_found", f"whitelist entry not found: {entry_id}")
