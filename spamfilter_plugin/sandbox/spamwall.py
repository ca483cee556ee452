"""SpamWall emulator: ``/api/api.php?command=...`` with ``username``/``password``
in the POST body; XML ``<Result><Code>..</Code>...`` answers (HTTP 200, the
code inside the document, as the document describes).

Accounts have one of three roles: ``admin`` (everything), ``domain_admin`` of
one domain (users, lists and spam scores of that domain), and ``user`` (their
own lists, scores and password).  Where the document is silent:

* the white/black lists and spam scores are kept per caller scope: the admin's
  are global, a domain admin's belong to their domain, a user's to that user;
* ``add_domain`` needs an IP literal for ``ip`` ("Invalid IP address" otherwise)
  and a port 1-65535; domain type is reported as ``smtp``;
* a missing parameter answers 400 "Missing parameter: <name>"; an admin-only
  command from another role answers 403 "Insufficient access";
* spam score defaults: tag 2.0, tag2 6.31, kill 6.9 (amavisd's); values are
  numbers between -999 and 999 with up to two decimals.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from xml.sax.saxutils import escape

from ..redaction import register_name
from .base import Emulator, Reply, Request
from .validate import is_domain, is_email, is_ip

register_name("newpass")  # change_user_password's new password

ADMIN = ("admin", "sandbox-admin-Pw1")
DOMAIN_ADMIN = ("domainadmin", "sandbox-domainadmin-Pw1", "example.com")
USER = ("user@example.com", "sandbox-user-Pw1")

ADMIN_ONLY = {
    "list_domains",
    "add_domain",
    "change_domain",
    "delete_domain",
    "add_spam_bypass",
    "add_rbl_bypass",
    "del_spam_bypass",
    "del_rbl_bypass",
    "verification_method",
    "set_verification_method",
    "recipient_add",
    "recipient_del",
    "recipients_clear",
    "recipients_list",
    "recipients_transport_sync",
}
USER_ADMIN = {"list_users", "add_user", "change_user", "delete_user"}
SCORE_LEVELS = ("spam_tag_level", "spam_tag2_level", "spam_kill_level")
SCORE_DEFAULTS = {"spam_tag_level": "2.0", "spam_tag2_level": "6.31", "spam_kill_level": "6.9"}
_SCORE = re.compile(r"^-?\d{1,3}(\.\d{1,2})?$")


class Answer(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code, self.message = code, message


def result(code: int, message: str | None = None, payload: str = "") -> Reply:
    parts = ['<?xml version="1.0" encoding="UTF-8" ?>', "<Result>", f"<Code>{code}</Code>"]
    if message is not None:
        parts.append(f"<Message>{escape(message)}</Message>")
    if payload:
        parts.append(payload)
    parts.append("</Result>")
    return Reply(200, "\n".join(parts).encode(), "text/xml; charset=UTF-8")


def element(tag: str, items: list[dict[str, Any]], item_tag: str) -> str:
    rows = "".join(
        f"<{item_tag}>"
        + "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in item.items())
        + f"</{item_tag}>"
        for item in items
    )
    return f"<{tag}>{rows}</{tag}>"


class SpamWallEmulator(Emulator):
    name = "spamwall"
    port_offset = 1
    api_path = "/api/api.php"

    def initial_state(self) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}
        self.add_account(ADMIN[0], ADMIN[1], "admin")
        self.add_account(DOMAIN_ADMIN[0], DOMAIN_ADMIN[1], "domain_admin", domain=DOMAIN_ADMIN[2])
        self.add_account(USER[0], USER[1], "user", email=USER[0], full_name="Sandbox User")
        self.domains: dict[str, dict[str, Any]] = {}
        self.lists: dict[str, dict[str, list[str]]] = {}
        self.bypass: dict[str, dict[str, dict[str, str]]] = {"spam": {}, "rbl": {}}
        self.verification = 1
        self.recipients: list[dict[str, Any]] = []
        self.next_recipient_id = 1
        self.scores: dict[str, dict[str, str]] = {}

    def add_account(
        self,
        username: str,
        password: str,
        role: str,
        *,
        domain: str | None = None,
        email: str | None = None,
        full_name: str = "",
    ) -> None:
        if role not in ("admin", "domain_admin", "user"):
            raise ValueError("role: one of admin, domain_admin, user")
        email = email or (
            username if "@" in username else f"{username}@{domain or 'localhost.localdomain'}"
        )
        self.accounts[username] = {
            "password": self.secret(password),
            "role": role,
            "domain": domain or email.rpartition("@")[2],
            "email": email,
            "full_name": full_name,
            "last_login": "",
        }

    def credentials(self) -> dict[str, Any]:
        return {"username": ADMIN[0], "password": ADMIN[1]}

    def seed_data(self, data: dict[str, Any]) -> None:
        for acct in data.pop("accounts", []):
            self.add_account(
                acct["username"],
                acct["password"],
                acct.get("role", "user"),
                domain=acct.get("domain"),
                email=acct.get("email"),
                full_name=acct.get("full_name", ""),
            )
        for name, fields in data.pop("domains", {}).items():
            self.domains[name] = {
                "Host": name,
                "Type": "smtp",
                "IP": fields.get("ip", "192.0.2.1"),
                "Port": str(fields.get("port", 25)),
            }
        if data:
            raise ValueError(f"unknown seed keys: {', '.join(sorted(data))}")

    def snapshot(self) -> dict[str, Any]:
        return {
            "domains": self.domains,
            "accounts": {
                u: {k: v for k, v in a.items() if k != "password"} for u, a in self.accounts.items()
            },
            "lists": self.lists,
            "bypass": self.bypass,
            "verification_method": self.verification,
            "recipients": self.recipients,
            "scores": self.scores,
        }

    # -- the API -----------------------------------------------------------

    def handle(self, req: Request) -> Reply:
        if req.path != self.api_path:
            return Reply.text("Not Found", 404, "text/html; charset=utf-8")
        form = req.form() if req.method == "POST" else {}
        account = self.accounts.get(form.get("username", ""))
        if account is None or account["password"] != form.get("password"):
            return result(401, "Login details were invalid")
        account["last_login"] = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        command = req.query.get("command", "")
        handler = (
            getattr(self, f"cmd_{command}", None) if re.fullmatch(r"[a-z0-9_]+", command) else None
        )
        if handler is None:
            return result(400, f"Unknown command: {command}" if command else "No command given")
        if command in ADMIN_ONLY and account["role"] != "admin":
            return result(403, "Insufficient access")
        try:
            return handler(req.query, account)
        except Answer as ans:
            return result(ans.code, ans.message)

    def unclear(self) -> Reply:
        return result(406, "Request could not be performed")

    @staticmethod
    def need(q: dict[str, str], *names: str) -> list[str]:
        for n in names:
            if n not in q:
                raise Answer(400, f"Missing parameter: {n}")
        return [q[n] for n in names]

    # 4.1 domains
    def cmd_list_domains(self, q, acct):
        return result(
            200,
            payload=element("Domains", [self.domains[d] for d in sorted(self.domains)], "Domain"),
        )

    def _domain_args(self, q) -> tuple[str, str, str]:
        name, ip, port = self.need(q, "name", "ip", "port")
        if not is_domain(name):
            raise Answer(406, "Invalid domain name")
        if not is_ip(ip):
            raise Answer(406, "Invalid IP address")
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise Answer(406, "Invalid port")
        return name.lower(), ip, str(int(port))

    def cmd_add_domain(self, q, acct):
        name, ip, port = self._domain_args(q)
        if name in self.domains:
            raise Answer(406, f"Domain '{name}' is already in domain list")
        self.domains[name] = {"Host": name, "Type": "smtp", "IP": ip, "Port": port}
        return result(200, "Domain added to domain list successfully")

    def cmd_change_domain(self, q, acct):
        name, ip, port = self._domain_args(q)
        if name not in self.domains:
            raise Answer(406, f"Domain '{name}' is not in domain list")
        self.domains[name].update(IP=ip, Port=port)
        return result(200, "Domain updated successfully")

    def cmd_delete_domain(self, q, acct):
        (name,) = self.need(q, "name")
        if not is_domain(name):
            raise Answer(406, "Invalid domain name")
        if name.lower() not in self.domains:
            raise Answer(406, f"Domain '{name}' is not in domain list")
        del self.domains[name.lower()]
        return result(200, "Domain removed from domain list successfully")

    # 4.2 users
    def _may_manage(self, acct, domain: str) -> bool:
        return acct["role"] == "admin" or (
            acct["role"] == "domain_admin" and acct["domain"] == domain
        )

    def _user_rows(self, users):
        return [
            {
                "Username": u,
                "Name": a["full_name"],
                "Email": a["email"],
                "Last_login": a["last_login"],
            }
            for u, a in users
        ]

    def cmd_list_users(self, q, acct):
        (user,) = self.need(q, "user")
        if acct["role"] == "user":
            raise Answer(403, "Insufficient access to specified domain")
        users = [(u, a) for u, a in sorted(self.accounts.items()) if a["role"] == "user"]
        if user == "all":
            if acct["role"] == "domain_admin":
                users = [(u, a) for u, a in users if a["domain"] == acct["domain"]]
        else:
            if not self._may_manage(acct, user.rpartition("@")[2]):
                raise Answer(403, "Insufficient access to specified domain")
            users = [(u, a) for u, a in users if a["email"] == user or u == user]
        return result(200, payload=element("Users", self._user_rows(users), "User"))

    def cmd_add_user(self, q, acct):
        username, password, email, full_name = self.need(
            q, "username", "password", "email", "full_name"
        )
        if acct["role"] == "user" or (
            is_email(email) and not self._may_manage(acct, email.rpartition("@")[2])
        ):
            raise Answer(403, "Insufficient access to specified domain")
        if not is_email(email):
            raise Answer(406, "Invalid Email")
        if username in self.accounts:
            raise Answer(406, "Username already in use")
        self.add_account(username, password, "user", email=email, full_name=full_name)
        return result(200, "User added successfully")

    def _target(self, acct, user: str, message: str) -> dict[str, Any]:
        target = self.accounts.get(user)
        allowed = target is not None and (
            user == self._name_of(acct)
            or (target["role"] == "user" and self._may_manage(acct, target["domain"]))
        )
        if target is None or not allowed:
            raise Answer(403, message)
        return target

    def _name_of(self, acct) -> str:
        return next(u for u, a in self.accounts.items() if a is acct)

    def cmd_change_user(self, q, acct):
        user, username, email, full_name = self.need(q, "user", "username", "email", "full_name")
        target = self._target(acct, user, "Insufficient access to specified username")
        if (
            is_email(email)
            and not self._may_manage(acct, email.rpartition("@")[2])
            and user != self._name_of(acct)
        ):
            raise Answer(403, "Insufficient access to specified domain")
        if not is_email(email):
            raise Answer(406, "Invalid Email")
        if username != user and username in self.accounts:
            raise Answer(406, "Username already in use")
        target.update(email=email, full_name=full_name, domain=email.rpartition("@")[2])
        self.accounts[username] = self.accounts.pop(user)
        return result(200, "User updated successfully")

    def cmd_change_user_password(self, q, acct):
        user, newpass = self.need(q, "user", "newpass")
        target = self._target(acct, user, "Insufficient access to specified user")
        target["password"] = self.secret(newpass)
        return result(200, "User updated successfully")

    def cmd_delete_user(self, q, acct):
        (user,) = self.need(q, "user")
        self._target(acct, user, "Insufficient access to specified user")
        if user == self._name_of(acct):
            raise Answer(403, "Insufficient access to specified user")
        del self.accounts[user]
        return result(200, "User deleted successfully")

    # 4.3 white/black lists
    def _scope(self, acct) -> str:
        return {"admin": "global", "domain_admin": acct["domain"]}.get(
            acct["role"]
        ) or self._name_of(acct)

    def _list(self, acct, which: str) -> list[str]:
        return self.lists.setdefault(self._scope(acct), {"whitelist": [], "blacklist": []})[which]

    def _list_add(self, q, acct, which):
        (email,) = self.need(q, "email")
        if not is_email(email):
            raise Answer(406, "Invalid Email")
        entries = self._list(acct, which)
        if email.lower() in entries:
            raise Answer(406, f"Email already in {which}")
        entries.append(email.lower())
        return result(200, f"Email added to {which} successfully")

    def _list_del(self, q, acct, which):
        (email,) = self.need(q, "email")
        if not is_email(email):
            raise Answer(406, "Invalid Email")
        entries = self._list(acct, which)
        if email.lower() not in entries:
            raise Answer(406, f"Email not in {which}")
        entries.remove(email.lower())
        return result(200, f"Email deleted from {which} successfully")

    def cmd_whitelist_add(self, q, acct):
        return self._list_add(q, acct, "whitelist")

    def cmd_blacklist_add(self, q, acct):
        return self._list_add(q, acct, "blacklist")

    def cmd_whitelist_del(self, q, acct):
        return self._list_del(q, acct, "whitelist")

    def cmd_blacklist_del(self, q, acct):
        return self._list_del(q, acct, "blacklist")

    # 4.4 trusted IPs
    def _bypass_add(self, q, which):
        ip, full = self.need(q, "ip", "full")
        full_ip = full in ("1", "true")
        valid = (
            is_ip(ip)
            if full_ip
            else bool(re.fullmatch(r"(\d{1,3}\.){0,3}\d{1,3}\.?", ip))
            and all(int(p) <= 255 for p in ip.strip(".").split("."))
        )
        if not valid:
            raise Answer(406, "Not a valid IP")
        if ip in self.bypass[which]:
            raise Answer(
                406, f"Entry already in {which.upper() if which == 'rbl' else 'Spam'} bypass list"
            )
        self.bypass[which][ip] = {"full": "1" if full_ip else "0"}
        return result(200, "IP added to Trusted IP list successfully")

    def _bypass_del(self, q, which):
        (ip,) = self.need(q, "ip")
        if ip not in self.bypass[which]:
            raise Answer(
                406, f"Entry not in {which.upper() if which == 'rbl' else 'Spam'} bypass list"
            )
        del self.bypass[which][ip]
        return result(200, "IP removed from Trusted IP list successfully")

    def cmd_add_spam_bypass(self, q, acct):
        return self._bypass_add(q, "spam")

    def cmd_add_rbl_bypass(self, q, acct):
        return self._bypass_add(q, "rbl")

    def cmd_del_spam_bypass(self, q, acct):
        return self._bypass_del(q, "spam")

    def cmd_del_rbl_bypass(self, q, acct):
        return self._bypass_del(q, "rbl")

    # 4.5 recipient verification
    def cmd_verification_method(self, q, acct):
        return result(200, str(self.verification))

    def cmd_set_verification_method(self, q, acct):
        (method,) = self.need(q, "method")
        if method not in ("1", "2", "3"):
            raise Answer(406, "Invalid Recipient Verification Method")
        self.verification = int(method)
        return result(200, "Recipient Verification Method changed successfully")

    def cmd_recipient_add(self, q, acct):
        (email,) = self.need(q, "email")
        if any(r["address"] == email.lower() for r in self.recipients):
            raise Answer(406, "Recipient already exists")
        if not is_email(email):
            raise Answer(406, "Invalid Email")
        self.recipients.append({"id": self.next_recipient_id, "address": email.lower()})
        self.next_recipient_id += 1
        return result(200, "Recipient added successfully")

    def cmd_recipient_del(self, q, acct):
        (email,) = self.need(q, "email")
        before = len(self.recipients)
        self.recipients = [r for r in self.recipients if r["address"] != email.lower()]
        if len(self.recipients) == before:
            raise Answer(406, "Recipient does not exist")
        return result(200, "Recipient deleted successfully")

    def cmd_recipients_clear(self, q, acct):
        self.recipients = []
        return result(200, "Allowed recipients list successfully cleared")

    def cmd_recipients_list(self, q, acct):
        return result(200, payload=element("Recipients", self.recipients, "Recipient"))

    def cmd_recipients_transport_sync(self, q, acct):
        return result(200, "Recipients list successfully synced with transport file")

    # 4.6 spam scores
    def _scores(self, acct) -> dict[str, str]:
        return self.scores.setdefault(self._scope(acct), dict(SCORE_DEFAULTS))

    def __getattr__(self, name: str):
        # cmd_spam_tag_level / cmd_set_spam_tag_level ... share two implementations
        if name.startswith("cmd_set_") and name[8:] in SCORE_LEVELS:
            return lambda q, acct: self._set_score(q, acct, name[8:])
        if name.startswith("cmd_") and name[4:] in SCORE_LEVELS:
            return lambda q, acct: result(200, self._scores(acct)[name[4:]])
        raise AttributeError(name)

    def _set_score(self, q, acct, level):
        (value,) = self.need(q, "value")
        if not _SCORE.match(value):
            raise Answer(406, "Invalid Value")
        self._scores(acct)[level] = value
        return result(200, "Spam Score saved successfully")
