"""cPanel & WHM: Standardized Hooks.

The panel writes one JSON document to the script's standard input (``context``,
``data``, ``hook``; ``data`` may be absent) and reads one line back, ``1 <message>``
(``0 <reason>`` from a non-blocking hook is logged in cPanel's error log, and blocks
nothing).  Whostmgr events run as root; ``Cpanel``-category (API 2 / UAPI) events run as
the cPanel user unless the hook asks for ``escalateprivs``, which :data:`HOOKS` does.

The panel's records: ``/etc/userdomains`` (``domain: user``) and
``/var/cpanel/users/<user>`` (``DNS=`` the main domain); mailboxes in
``/home/<user>/etc/<domain>/passwd``.
"""

from __future__ import annotations

import json
import os

from .. import (
    Found,
    Panel,
    PayloadError,
    address,
    created,
    deleted,
    domain_name,
    mailbox_events,
)

#: the commands and files the adapter uses, with their documented defaults (docs/panels)
DEFAULTS = {
    "manage_hooks": "/usr/local/cpanel/bin/manage_hooks",
    "whmapi1": "/usr/local/cpanel/bin/whmapi1",
    "register_appconfig": "/usr/local/cpanel/bin/register_appconfig",
    "install_plugin": "/usr/local/cpanel/scripts/install_plugin",
    "theme": "jupiter",
    "sudo": "/usr/bin/sudo",
}
#: the hook wrapper ``install-hooks cpanel`` writes (``install.py``)
CPANEL_SCRIPT = "usr/local/cpanel/3rdparty/bin/spamfilter-panel-hook"

#: what ``--describe`` lists: (category, event, stage); Cpanel-category ones escalate
HOOKS = (
    ("Whostmgr", "Accounts::Create", "post"),
    ("Whostmgr", "Accounts::Remove", "pre"),
    ("Whostmgr", "Accounts::Modify", "post"),
    ("PkgAcct", "Restore", "post"),
    ("Whostmgr", "Accounts::change_package", "post"),
    ("Whostmgr", "Accounts::suspendacct", "post"),
    ("Whostmgr", "Accounts::unsuspendacct", "post"),
    ("Whostmgr", "ParkAdmin::park", "post"),
    ("Whostmgr", "ParkAdmin::unpark", "post"),
    ("Whostmgr", "Domain::addsubdomain", "post"),
    ("Whostmgr", "Domain::delsubdomain", "post"),
    ("Cpanel", "Api2::SubDomain::addsubdomain", "post"),
    ("Cpanel", "Api2::SubDomain::delsubdomain", "post"),
    ("Cpanel", "UAPI::SubDomain::addsubdomain", "post"),
    ("Cpanel", "Api2::AddonDomain::addaddondomain", "post"),
    ("Cpanel", "Api2::AddonDomain::deladdondomain", "post"),
    ("Cpanel", "UAPI::Email::add_pop", "post"),
    ("Cpanel", "UAPI::Email::delete_pop", "post"),
    ("Cpanel", "UAPI::Email::passwd_pop", "post"),
    ("Cpanel", "Api2::Email::addpop", "post"),
    ("Cpanel", "Api2::Email::delpop", "post"),
    ("Cpanel", "Api2::Email::passwdpop", "post"),
)


def _flag(value) -> bool:
    """A cPanel number, which may come as a JSON number or a string."""
    return str(value).strip() not in ("", "0", "None", "False", "false")


def _api2_failed(data: dict) -> bool:
    """API 2 post hooks run even when the call failed: ``output[0].result`` says."""
    output = data.get("output")
    if isinstance(output, list) and output and isinstance(output[0], dict):
        return not _flag(output[0].get("result", 1))
    return False


def _dotted(value) -> str:
    """An API 2 deletion's ``label_rootdomain`` form as a domain name (``_`` is never part
    of a host name, so every ``_`` is a dot)."""
    return value.replace("_", ".") if isinstance(value, str) else value


class CPanel(Panel):
    name = "cpanel"
    quiet = False

    def reply(self, ok: bool, message: str) -> tuple[str, int]:
        text = " ".join(message.split())[:300] or ("queued" if ok else "not queued")
        return f"{1 if ok else 0} {text}", 0

    reads_stdin = True
    describes = True

    def describe(self, command: str) -> list[dict]:
        """The hooks to register (``manage_hooks add script`` runs ``--describe``): each
        runs the installed wrapper (:data:`CPANEL_SCRIPT`), else *command*."""
        script = self.path(CPANEL_SCRIPT)
        command = script if os.path.exists(script) else f"{command} panel-hook cpanel"
        return [
            {
                "category": category,
                "event": event,
                "stage": stage,
                "exectype": "script",
                "hook": command,
                **({"escalateprivs": 1} if category == "Cpanel" else {}),
            }
            for category, event, stage in HOOKS
        ]

    # -- records -------------------------------------------------------------------

    def _userdomains(self) -> list[tuple[str, str]]:
        pairs = []
        for line in self.read_lines("etc/userdomains"):
            domain, sep, user = line.partition(":")
            if sep and domain.strip() and domain.strip() != "*":
                pairs.append((domain.strip().lower(), user.strip()))
        return pairs

    def account_inventory(self, account: str) -> list[tuple[str, str]]:
        """The account's domains in ``/etc/userdomains``: its ``DNS=`` domain is the main
        one, every other (addon, parked, sub, an addon's own subdomain) is secondary."""
        main = self.main_domain(account)
        return [
            (d, "main" if d == main else "secondary")
            for d, u in self._userdomains()
            if u == account
        ]

    def inventory(self) -> list[tuple[str, str, str]] | None:
        pairs = self._userdomains()
        mains: dict[str, str | None] = {}
        for _, user in pairs:
            if user not in mains:
                mains[user] = self.main_domain(user)
        return [(d, u, "main" if d == mains[u] else "secondary") for d, u in pairs]

    def owner_of(self, domain: str) -> str | None:
        return next((u for d, u in self._userdomains() if d == domain), None)

    def _account_field(self, user: str, key: str) -> str | None:
        """``KEY=`` of ``/var/cpanel/users/<user>``; None when there is none (or *user* is
        not a plain account name)."""
        try:
            lines = self.read_lines("var/cpanel/users", user)
        except PayloadError:
            return None
        for line in lines:
            if line.startswith(key + "="):
                return line[len(key) + 1 :].strip() or None
        return None

    def role_of(self, user: str) -> str | None:
        """``root`` is the admin; resellers are listed in ``/var/cpanel/resellers``
        (``name:acl,...``); an account has a file in ``/var/cpanel/users``."""
        if user == "root":
            return "admin"
        if any(line.split(":", 1)[0] == user for line in self.read_lines("var/cpanel/resellers")):
            return "reseller"
        return "user" if self._account_field(user, "DNS") is not None else None

    def accounts_of(self, reseller: str) -> list[str]:
        """Accounts whose ``OWNER=`` in ``/var/cpanel/users/<user>`` is *reseller*."""
        users = {u for _, u in self._userdomains()}
        return sorted(
            u for u in users if u == reseller or self._account_field(u, "OWNER") == reseller
        )

    def plan_of(self, account: str) -> str | None:
        """``PLAN=`` of ``/var/cpanel/users/<user>`` (the package)."""
        return self._account_field(account, "PLAN")

    def main_domain(self, user: str) -> str | None:
        main = self._account_field(user, "DNS")
        return main.lower() if main else None

    def mailboxes_of(self, domain: str) -> list[str] | None:
        user = self.owner_of(domain)
        if user is None:
            return None
        locals_ = [
            line.split(":", 1)[0] for line in self.read_lines("home", user, "etc", domain, "passwd")
        ]
        return sorted(f"{local}@{domain}" for local in locals_ if local)

    # -- events --------------------------------------------------------------------

    def events(self, argv: list[str], env: dict, stdin: str) -> Found:
        try:
            payload = json.loads(stdin or "")
        except ValueError:
            raise PayloadError("stdin", "is not the JSON document cPanel sends") from None
        if not isinstance(payload, dict):
            raise PayloadError("stdin", "is not a JSON object with context, data and hook")
        ctx = payload.get("context")
        given = payload.get("hook")
        hook: dict = given if isinstance(given, dict) else {}
        if isinstance(ctx, dict):
            category, event, stage = ctx.get("category"), ctx.get("event"), ctx.get("stage")
        elif isinstance(ctx, str):  # the documentation's table shows it as a string
            category, event, stage = None, ctx, hook.get("stage")
        else:
            raise PayloadError("context", "missing; cannot tell which event this is")
        if not isinstance(event, str) or not event:
            raise PayloadError("context.event", "missing")
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        what = f"{category or '?'}/{event} {stage or '?'}"
        handler = _HANDLERS.get((event, str(stage)))
        if handler is None:
            return Found(what, note="not an event spamfilter-plugin acts on")
        return handler(self, what, data)

    # -- one method per hooked event -------------------------------------------------

    def account_created(self, what, data):
        return Found(what, [created(domain_name(data.get("domain"), "data.domain"))])

    def account_removed(self, what, data):
        return self.account_removal(what, "data.user", data.get("user"), "/etc/userdomains")

    def account_modified(self, what, data):
        old, new = data.get("domain"), data.get("newdomain") or data.get("DNS")
        if not new or not old or str(new).lower() == str(old).lower():
            return Found(what, note="the account's domain did not change")
        return Found(
            what,
            [deleted(domain_name(old, "data.domain")), created(domain_name(new, "data.newdomain"))],
        )

    def account_restored(self, what, data):
        # a restore or a transfer in: every protected domain the restored account has now
        return self.account_events(
            what, "data.user", data.get("user"), "/etc/userdomains", "domain_created"
        )

    def package_changed(self, what, data):
        user, old, new = data.get("user"), data.get("cur_pkg"), data.get("new_pkg")
        if not isinstance(user, str) or not user:
            raise PayloadError("data.user", "missing")
        if not isinstance(new, str) or not new:
            raise PayloadError("data.new_pkg", "missing")
        if old == new:
            return Found(what, note=f"{user} stays on plan {new}")
        return Found(what, note=f"{user}: plan {old} -> {new}", plan_change=(user, old, new))

    def account_suspended(self, what, data):
        reason = data.get("reason") if isinstance(data.get("reason"), str) else None
        return self.account_events(
            what, "data.user", data.get("user"), "/etc/userdomains", "domain_suspended",
            reason=reason or None,
        )  # fmt: skip

    def account_unsuspended(self, what, data):
        return self.account_events(
            what, "data.user", data.get("user"), "/etc/userdomains", "domain_unsuspended"
        )

    def parked(self, what, data):
        return self.secondary(what, "domain_created", data.get("new_domain"))

    def unparked(self, what, data):
        return self.secondary(what, "domain_deleted", data.get("domain"))


# -- handlers made per event: (adapter, what, data) -> Found ---------------------------


def _subdomain(hook):
    def handle(self, what, data):
        name = data.get("subdomain")
        if isinstance(name, str) and "." not in name and data.get("rootdomain"):
            name = f"{name}.{data['rootdomain']}"
        return self.secondary(what, hook, name)

    return handle


def _addon(hook, key):
    def handle(self, what, data):
        args = data.get("args") if isinstance(data.get("args"), dict) else {}
        if _api2_failed(data):
            return Found(what, note="the API 2 call failed; nothing changed")
        return self.secondary(what, hook, _dotted(args.get(key)))

    return handle


def _user_subdomain(hook, api2=True):
    """A cPanel user's own subdomain call: at creation ``args.domain`` is the label and
    ``args.rootdomain`` the parent; at deletion ``args.domain`` is ``label_rootdomain``,
    where the last ``_`` ends the label (which may hold dots: ``sub.part_example.com``)."""

    def handle(self, what, data):
        args = data.get("args") if isinstance(data.get("args"), dict) else {}
        if api2 and _api2_failed(data):
            return Found(what, note="the API 2 call failed; nothing changed")
        label, root = args.get("domain"), args.get("rootdomain")
        if hook == "domain_deleted" and isinstance(label, str) and "_" in label:
            label, _, root = label.rpartition("_")
        if not isinstance(label, str) or not label.strip():
            raise PayloadError("args.domain", "missing")
        if not isinstance(root, str) or not root.strip():
            raise PayloadError("args.rootdomain", "missing")
        return self.secondary(what, hook, f"{label.strip()}.{root.strip()}")

    return handle


def _mailbox(hook, api2=False):
    def handle(self, what, data):
        args = data.get("args") if isinstance(data.get("args"), dict) else {}
        if api2 and _api2_failed(data):
            return Found(what, note="the API 2 call failed; nothing changed")
        local, domain = args.get("email"), args.get("domain")
        if isinstance(local, str) and "@" not in local and not domain:
            domain = self.main_domain(str(data.get("user", "")))
            if not domain:
                raise PayloadError(
                    "args.domain", "missing, and the account's main domain is unknown"
                )
        mailbox = address(local, domain, "args.email")
        password = args.get("password") if isinstance(args.get("password"), str) else None
        if hook == "password_reset":
            if not password:
                return Found(what, note=f"{mailbox}: no plain-text password in the payload")
            return Found(what, [("password_reset", {"mailbox": mailbox, "password": password})])
        return Found(
            what, mailbox_events(hook, mailbox, password if hook == "mailbox_added" else None)
        )

    return handle


_HANDLERS = {
    ("Accounts::Create", "post"): CPanel.account_created,
    ("Accounts::Remove", "pre"): CPanel.account_removed,
    ("Accounts::Modify", "post"): CPanel.account_modified,
    ("Restore", "post"): CPanel.account_restored,
    ("Accounts::change_package", "post"): CPanel.package_changed,
    ("Accounts::suspendacct", "post"): CPanel.account_suspended,
    ("Accounts::unsuspendacct", "post"): CPanel.account_unsuspended,
    ("ParkAdmin::park", "post"): CPanel.parked,
    ("Domain::park", "post"): CPanel.parked,
    ("ParkAdmin::unpark", "post"): CPanel.unparked,
    ("Domain::unpark", "post"): CPanel.unparked,
    ("Domain::addsubdomain", "post"): _subdomain("domain_created"),
    ("Domain::delsubdomain", "post"): _subdomain("domain_deleted"),
    ("Api2::SubDomain::addsubdomain", "post"): _user_subdomain("domain_created"),
    ("Api2::SubDomain::delsubdomain", "post"): _user_subdomain("domain_deleted"),
    ("UAPI::SubDomain::addsubdomain", "post"): _user_subdomain("domain_created", api2=False),
    ("Api2::AddonDomain::addaddondomain", "post"): _addon("domain_created", "newdomain"),
    ("Api2::AddonDomain::deladdondomain", "post"): _addon("domain_deleted", "domain"),
    ("UAPI::Email::add_pop", "post"): _mailbox("mailbox_added"),
    ("UAPI::Email::delete_pop", "post"): _mailbox("mailbox_deleted"),
    ("UAPI::Email::passwd_pop", "post"): _mailbox("password_reset"),
    ("Api2::Email::addpop", "post"): _mailbox("mailbox_added", api2=True),
    ("Api2::Email::delpop", "post"): _mailbox("mailbox_deleted", api2=True),
    ("Api2::Email::passwdpop", "post"): _mailbox("password_reset", api2=True),
}

ADAPTER = CPanel
