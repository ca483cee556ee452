"""DirectAdmin: custom hook scripts.

The panel runs ``scripts/custom/<hook>/*.sh`` with the event's values in the environment
(no arguments); the hook's name is passed on by our script as ``HOOK``.  A pre script's
non-zero exit aborts the action and what it prints is shown to the user, so the entry
prints nothing and exits 0.  We register post hooks, and ``user_destroy_pre`` because the
user's domains must be read before they are gone.

The panel's records: ``/etc/virtual/domainowners`` (``domain: user``),
``data/users/<user>/domains.list`` (the user's domains), ``domains/<domain>.pointers``
(``alias=type``, a line each) and ``domains/<domain>.subdomains`` (a label a line), and the
mailboxes in ``/etc/virtual/<domain>/passwd``.
"""

from __future__ import annotations

from .. import (
    Found,
    Panel,
    PayloadError,
    address,
    created,
    deleted,
    domain_name,
    mailbox_events,
    plain_name,
)

DATA = "usr/local/directadmin/data/users"

#: the commands and files the adapter uses, with their documented defaults (docs/panels/index.md)
DEFAULTS = {
    "scripts_dir": "/usr/local/directadmin/scripts/custom",
    "api_url": "https://127.0.0.1:2222",
    "api_user": "admin",
    "api_key_file": "/etc/spamfilter-plugin/directadmin.key",
    "api_ca_file": "",
    "plugins_dir": "/usr/local/directadmin/plugins",
    "sudo": "/usr/bin/sudo",
}

#: the hooks ``install-hooks directadmin`` registers
HOOKS = (
    "domain_create_post",
    "domain_destroy_post",
    "domain_change_post",
    "domain_pointer_create_post",
    "domain_pointer_destroy_post",
    "subdomain_create_post",
    "subdomain_destroy_post",
    "user_destroy_pre",
    "user_create_post",
    "user_modify_post",
    "user_restore_post",
    "user_suspend_post",
    "user_activate_post",
    "email_create_post",
    "email_destroy_post",
    "email_change_pass_post",
)


def _plain_password(env: dict) -> str | None:
    """The plain-text password, or None when there is none or it is crypted (a Multi-Server
    peer passes a hash, which must never be sent on as if it were the password)."""
    if str(env.get("passwd_is_crypted", "0")).strip() == "1":
        return None
    return env.get("passwd") or None


class DirectAdmin(Panel):
    name = "directadmin"

    def _owners(self) -> list[tuple[str, str]]:
        """``/etc/virtual/domainowners`` as (domain, user) pairs."""
        pairs = []
        for line in self.read_lines("etc/virtual/domainowners"):
            domain, sep, user = line.partition(":")
            if sep and domain.strip() and user.strip():
                pairs.append((domain.strip().lower(), user.strip()))
        return pairs

    def account_inventory(self, account: str) -> list[tuple[str, str]]:
        """The account's ``domains.list`` (main), and per domain its
        ``domains/<domain>.pointers`` (``alias=type`` a line) and
        ``domains/<domain>.subdomains`` (one label a line), both secondary."""
        found: list[tuple[str, str]] = []
        for line in self.read_lines(DATA, account, "domains.list"):
            domain = line.strip().lower()
            if not domain:
                continue
            found.append((domain, "main"))
            for pointer in self.read_lines(DATA, account, "domains", f"{domain}.pointers"):
                name = pointer.split("=", 1)[0].strip().lower()
                if name:
                    found.append((name, "secondary"))
            for label in self.read_lines(DATA, account, "domains", f"{domain}.subdomains"):
                if label.strip():
                    found.append((f"{label.strip().lower()}.{domain}", "secondary"))
        return found

    def inventory(self) -> list[tuple[str, str, str]] | None:
        out = []
        for user in sorted({u for _, u in self._owners()}):
            try:
                out += [(d, user, kind) for d, kind in self.account_inventory(user)]
            except PayloadError:  # a name in domainowners that is not a plain account name
                continue
        return out

    def _user_conf(self, user: str) -> dict[str, str]:
        conf = {}
        try:
            lines = self.read_lines(DATA, user, "user.conf")
        except PayloadError:
            return {}
        for line in lines:
            key, sep, value = line.partition("=")
            if sep:
                conf[key.strip()] = value.strip()
        return conf

    def plan_of(self, account: str) -> str | None:
        """``package`` in ``data/users/<user>/user.conf``."""
        return self._user_conf(account).get("package") or None

    def _plan_seen(self, env: dict) -> tuple[str, str] | None:
        """``(username, package)``: the package from the hook's environment (the contents of
        ``user.conf``), else from ``user.conf`` itself; None when neither names one."""
        user = env.get("username")
        if not isinstance(user, str) or not user.strip():
            raise PayloadError("username", "missing")
        user = plain_name(user.strip(), "username")
        package = env.get("package") or self.plan_of(user)
        return (user, package.strip()) if isinstance(package, str) and package.strip() else None

    def role_of(self, user: str) -> str | None:
        """``usertype`` in ``data/users/<user>/user.conf``: admin, reseller or user."""
        kind = self._user_conf(user).get("usertype")
        return kind if kind in ("admin", "reseller", "user") else None

    def accounts_of(self, reseller: str) -> list[str]:
        """The reseller's ``users.list``, and the reseller's own account."""
        try:
            listed = self.read_lines(DATA, reseller, "users.list")
        except PayloadError:
            return []
        return sorted({u.strip() for u in listed if u.strip()} | {reseller})

    def owner_of(self, domain: str) -> str | None:
        return next((u for d, u in self._owners() if d == domain), None)

    def mailboxes_of(self, domain: str) -> list[str] | None:
        lines = self.read_lines("etc/virtual", domain, "passwd")
        return sorted(f"{line.split(':', 1)[0]}@{domain}" for line in lines if line.strip())

    def events(self, argv: list[str], env: dict, stdin: str) -> Found:
        if not argv:
            raise PayloadError("HOOK", "missing; run as 'spamfilter panel-hook directadmin HOOK'")
        hook = argv[0]
        what = hook
        if hook == "domain_create_post":
            return Found(what, [created(domain_name(env.get("domain"), "domain"))])
        if hook == "domain_destroy_post":
            return Found(what, [deleted(domain_name(env.get("domain"), "domain"))])
        if hook == "domain_change_post":
            old = domain_name(env.get("domain"), "domain")
            new = domain_name(env.get("newdomain"), "newdomain")
            if old == new:
                return Found(what, note="the domain name did not change")
            return Found(what, [deleted(old), created(new)])
        if hook in ("domain_pointer_create_post", "domain_pointer_destroy_post"):
            kind = "domain_created" if "create" in hook else "domain_deleted"
            return self.secondary(what, kind, env.get("from"))
        if hook in ("subdomain_create_post", "subdomain_destroy_post"):
            label, parent = env.get("subdomain"), domain_name(env.get("domain"), "domain")
            if not isinstance(label, str) or not label.strip():
                raise PayloadError("subdomain", "missing")
            kind = "domain_created" if "create" in hook else "domain_deleted"
            return self.secondary(what, kind, f"{label.strip()}.{parent}")
        if hook == "user_destroy_pre":
            return self.account_removal(what, "username", env.get("username"), "its domains.list")
        if hook == "user_restore_post":  # a restore or a transfer in: every domain it has now
            found = self.account_events(
                what, "username", env.get("username"), "its domains.list", "domain_created"
            )
            found.plan_seen = self._plan_seen(env)
            return found
        if hook in ("user_create_post", "user_modify_post"):
            # the plan as the account has it now; DirectAdmin does not say what it was before
            seen = self._plan_seen(env)
            if seen is None:
                return Found(what, note="the account's package is not known")
            return Found(what, plan_seen=seen)
        if hook in ("user_suspend_post", "user_activate_post"):
            kind = "domain_suspended" if hook == "user_suspend_post" else "domain_unsuspended"
            return self.account_events(
                what, "username", env.get("username"), "its domains.list", kind
            )
        if hook in ("email_create_post", "email_destroy_post", "email_change_pass_post"):
            mailbox = address(env.get("user"), env.get("domain"), "user")
            if hook == "email_destroy_post":
                return Found(what, mailbox_events("mailbox_deleted", mailbox))
            password = _plain_password(env)
            if hook == "email_create_post":
                return Found(what, mailbox_events("mailbox_added", mailbox, password))
            if password is None:
                return Found(what, note=f"{mailbox}: the password is crypted or absent")
            return Found(what, [("password_reset", {"mailbox": mailbox, "password": password})])
        return Found(what, note="not an event spamfilter-plugin acts on")


ADAPTER = DirectAdmin
