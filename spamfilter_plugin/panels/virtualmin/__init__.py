"""Virtualmin: the server and mailbox pre/post commands.

Virtualmin runs one configured command for every virtual-server action, with the domain
record in ``VIRTUALSERVER_*`` variables (``VIRTUALSERVER_ACTION`` says which action), and
the Users and Groups module's command for mailboxes (``USERADMIN_*``).  Pre and post
get the same variables, so our commands pass ``pre`` or ``post``.  A pre command's
failure aborts the action: the entry exits 0 and prints nothing.  Only post stages are
acted on; a server's deletion sends a ``DELETE_USER`` per mailbox and one
``DELETE_DOMAIN`` per server, so no look-up is needed.
"""

from __future__ import annotations

from .. import Found, Panel, PayloadError, address, created, deleted, domain_name, mailbox_events

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

#: the command the adapter uses, with its documented default (docs/panels/index.md)
DEFAULTS = {"virtualmin": "/usr/sbin/virtualmin"}


def mailbox_of(user: str, domain: str) -> str:
    """The address of a mailbox from its Unix login (``info@example.com``,
    ``info.example``, ``info-example``, ``info.example.com``...) and its domain.
    ``USERADMIN_EMAIL`` is not used: Virtualmin fills it with the server owner's address."""
    user = user.strip()
    local = user.partition("@")[0] if "@" in user else user
    if "@" not in user:
        first = domain.split(".", 1)[0]
        for suffix in (domain, first):
            for sep in (".", "-"):
                if local.endswith(sep + suffix) and len(local) > len(sep + suffix):
                    local = local[: -len(sep + suffix)]
                    break
            else:
                continue
            break
    return address(local, domain, "USERADMIN_USER")


def read_servers(text: str) -> list[dict[str, str]]:
    """``virtualmin list-domains --simple-multiline`` as one dict per virtual server: its
    name under ``dom``, then each ``    Key: value`` line below it (``Type``, ``Username``,
    ``Parent domain``, ``Plan``, ``Disabled``...), as list-domains.pl prints them."""
    servers: list[dict[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            servers.append({"dom": line.strip()})
        elif servers:
            key, sep, value = line.strip().partition(": ")
            if sep:
                servers[-1].setdefault(key, value.strip())
    return servers


class Virtualmin(Panel):
    name = "virtualmin"

    # -- records: the panel's own listing (Virtualmin keeps its servers in its config) --

    def servers(self) -> list[dict[str, str]]:
        """Every virtual server, from ``virtualmin list-domains --simple-multiline``;
        PanelError naming the command when it fails."""
        from ..steps import run_command

        return read_servers(
            run_command([self.conf["virtualmin"], "list-domains", "--simple-multiline"])
        )

    def inventory(self) -> list[tuple[str, str, str]] | None:
        """A top-level server is main (what ``CREATE_DOMAIN`` without a parent protects);
        a sub-server or an alias server is secondary."""
        return [
            (
                domain_name(s["dom"], "dom"),
                s.get("Username", ""),
                "main" if s.get("Type") == "Top-level server" else "secondary",
            )
            for s in self.servers()
        ]

    def account_inventory(self, account: str) -> list[tuple[str, str]]:
        return [(d, kind) for d, user, kind in self.inventory() or () if user == account]

    def plans_of(self, domains: Iterable[str]) -> dict[str, str | None]:
        """From one listing: each server's owner, and the plan of the owner's top-level
        server."""
        servers = self.servers()
        plans = {
            s.get("Username"): s.get("Plan") for s in servers if s.get("Type") == "Top-level server"
        }
        owners = {domain_name(s["dom"], "dom"): s.get("Username") for s in servers}
        return {d: plans.get(owners.get(d)) for d in domains}

    def plan_of(self, account: str) -> str | None:
        """The ``Plan`` of the account's top-level server."""
        return next(
            (
                s.get("Plan")
                for s in self.servers()
                if s.get("Username") == account and s.get("Type") == "Top-level server"
            ),
            None,
        )

    def plan_of_domain(self, domain: str) -> str | None:
        try:
            return self.plans_of([domain])[domain]
        except Exception:  # noqa: BLE001 - as Panel.plan_of_domain: default applies
            return None

    def owner_of(self, domain: str) -> str | None:
        return next((u for d, u, _ in self.inventory() or () if d == domain and u), None)

    def events(self, argv: list[str], env: dict, stdin: str) -> Found:
        stage = argv[0] if argv else ""
        if stage not in ("pre", "post"):
            raise PayloadError(
                "stage", "missing; run as 'spamfilter panel-hook virtualmin pre|post'"
            )
        if env.get("USERADMIN_ACTION"):
            return self._mailbox(stage, env)
        action = env.get("VIRTUALSERVER_ACTION")
        if not action:
            raise PayloadError("VIRTUALSERVER_ACTION", "missing; is this Virtualmin's command?")
        what = f"{action} {stage}"
        if stage != "post":
            return Found(what, note="acted on at the post stage")
        secondary = bool(env.get("VIRTUALSERVER_PARENT") or env.get("VIRTUALSERVER_ALIAS"))
        dom = env.get("VIRTUALSERVER_DOM")
        if action in ("CREATE_DOMAIN", "CLONE_DOMAIN", "RESTORE_DOMAIN"):
            if secondary:
                return self.secondary(what, "domain_created", dom)
            return Found(what, [created(domain_name(dom, "VIRTUALSERVER_DOM"))])
        if action == "DELETE_DOMAIN":
            if secondary:
                return self.secondary(what, "domain_deleted", dom)
            return Found(what, [deleted(domain_name(dom, "VIRTUALSERVER_DOM"))])
        if action in ("DISABLE_DOMAIN", "ENABLE_DOMAIN"):
            # each server, sub-servers too, runs the command itself (disable-domain.pl)
            if secondary and not self.protect_secondary:
                return Found(what, note="secondary domains are skipped (secondary_domains)")
            name = domain_name(dom, "VIRTUALSERVER_DOM")
            if action == "ENABLE_DOMAIN":
                return Found(what, [("domain_unsuspended", {"domain": name})])
            why = env.get("VIRTUALSERVER_DISABLED_WHY") or env.get("VIRTUALSERVER_DISABLED_REASON")
            return Found(what, [("domain_suspended", {"domain": name, "reason": why or None})])
        if action == "MODIFY_DOMAIN":
            new = domain_name(dom, "VIRTUALSERVER_DOM")
            old_name = env.get("VIRTUALSERVER_OLDSERVER_DOM")
            old = domain_name(old_name, "VIRTUALSERVER_OLDSERVER_DOM") if old_name else new
            moved = self._plan_change(env) if not secondary else None
            if old == new:
                return Found(what, note="the domain name did not change", plan_change=moved)
            if secondary and not self.protect_secondary:
                return Found(what, note="secondary domains are skipped (secondary_domains)")
            return Found(what, [deleted(old), created(new)], plan_change=moved)
        return Found(what, note="not an event spamfilter-plugin acts on")

    def _plan_change(self, env: dict):
        """``(account, old plan, new plan)`` when a top-level server's plan changed: the
        post command gets the plan IDs (``VIRTUALSERVER_PLAN``, ``_OLDSERVER_PLAN``), named
        by ``virtualmin list-plans --id N --name-only``; None otherwise."""
        new, old = env.get("VIRTUALSERVER_PLAN"), env.get("VIRTUALSERVER_OLDSERVER_PLAN")
        if not new or not old or new == old or not env.get("VIRTUALSERVER_USER"):
            return None
        from ..steps import run_command

        def name(plan_id: str) -> str:
            argv = [self.conf["virtualmin"], "list-plans", "--id", plan_id, "--name-only"]
            return run_command(argv).strip() or plan_id

        return env["VIRTUALSERVER_USER"], name(old), name(new)

    def _mailbox(self, stage: str, env: dict) -> Found:
        action = env["USERADMIN_ACTION"]
        what = f"{action} {stage}"
        if not env.get("USERADMIN_DOM"):
            return Found(what, note="a Unix user that is not a mailbox (the server owner's)")
        if stage != "post":
            return Found(what, note="acted on at the post stage")
        if not env.get("USERADMIN_USER"):
            raise PayloadError("USERADMIN_USER", "missing")
        domain = domain_name(env.get("USERADMIN_DOM"), "USERADMIN_DOM")
        mailbox = mailbox_of(env["USERADMIN_USER"], domain)
        password = env.get("USERADMIN_PASS") or None
        if action == "CREATE_USER":
            return Found(what, mailbox_events("mailbox_added", mailbox, password))
        if action == "DELETE_USER":
            return Found(what, mailbox_events("mailbox_deleted", mailbox))
        if action == "MODIFY_USER":
            old_user = env.get("USERADMIN_OLD_USER")
            if old_user and old_user != env["USERADMIN_USER"]:
                old = mailbox_of(old_user, domain)
                if old != mailbox:
                    return Found(
                        what,
                        mailbox_events("mailbox_deleted", old)
                        + mailbox_events("mailbox_added", mailbox, password),
                    )
            old_pw = env.get("USERADMIN_OLD_PASS")
            if password and (not old_pw or old_pw != password):
                return Found(what, [("password_reset", {"mailbox": mailbox, "password": password})])
            return Found(what, note=f"{mailbox}: not a password change")
        return Found(what, note="not an event spamfilter-plugin acts on")


ADAPTER = Virtualmin
