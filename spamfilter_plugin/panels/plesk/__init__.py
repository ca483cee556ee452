"""Plesk: Event Manager handlers (``plesk bin event_handler``).

Plesk runs the handler after the action, in the background, with ``NEW_*`` (create,
update) and ``OLD_*`` (delete, update) environment variables and no event-name
variable, so the event's name is put in the command line.  It cannot veto anything and
its output is lost: the entry logs to a file.  Domain names come as Unicode; they are
turned into IDNA here.  Plesk sends one event per domain, so its hooks need no look-ups;
``sync``, plans and the console read the server's domains from Plesk's database through
``plesk db`` (:data:`INVENTORY_SQL`).
"""

from __future__ import annotations

from .. import Found, Panel, PayloadError, address, created, deleted, domain_name, mailbox_events

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

#: the command the adapter uses, with its documented default (docs/panels/index.md)
DEFAULTS = {"plesk": "/usr/sbin/plesk"}

#: the events ``install-hooks plesk`` registers
HOOKS = (
    "domain_create",
    "site_create",
    "domain_delete",
    "site_delete",
    "domain_update",
    "site_update",
    "subdomain_create",
    "subdomain_delete",
    "domain_alias_create",
    "domain_alias_delete",
    "mailname_create",
    "mailname_update",
    "mailname_delete",
)


#: a domain's subscription plan: the service plan (``Templates`` of type ``domain``) its
#: subscription (the domain itself, or the webspace it belongs to) is on
_PLAN = (
    "COALESCE((SELECT t.name FROM Subscriptions s"
    " JOIN PlansSubscriptions ps ON ps.subscription_id = s.id"
    " JOIN Templates t ON t.id = ps.plan_id AND t.type = 'domain'"
    " WHERE s.object_type = 'domain'"
    " AND s.object_id = CASE WHEN d.webspace_id = 0 THEN d.id ELSE d.webspace_id END), '')"
)

#: every domain of the server from Plesk's own database (``plesk db``), as
#: ``name, kind, owner's login, plan``: a subscription's domain and an additional site are
#: what ``domain_create``/``site_create`` protect (main); a subdomain (a domain with a parent)
#: and a domain alias are secondary, as ``subdomain_create`` and ``domain_alias_create`` treat
#: them.  The tables and columns are those of Plesk's ``psa`` database as integrations read
#: them (docs/panels/plesk.md); names are kept in their ASCII (IDNA) form there.
INVENTORY_SQL = (
    "SELECT d.name, CASE WHEN d.parentDomainId = 0 THEN 'main' ELSE 'secondary' END,"
    f" c.login, {_PLAN} FROM domains d JOIN clients c ON c.id = d.cl_id"
    " UNION ALL"
    f" SELECT a.name, 'secondary', c.login, {_PLAN} FROM domain_aliases a"
    " JOIN domains d ON d.id = a.dom_id JOIN clients c ON c.id = d.cl_id"
)


def read_rows(text: str) -> list[tuple[str, str, str, str]]:
    """``plesk db -Ne`` output (the MySQL client's batch form: one row a line, columns
    separated by tabs, no header) as ``(domain, kind, owner, plan)``; a line that is not four
    columns is skipped."""
    rows = []
    for line in text.splitlines():
        cols = line.split("\t")
        if len(cols) == 4 and cols[0].strip():
            name, kind, owner, plan = (c.strip() for c in cols)
            rows.append((name, kind, owner, "" if plan == "NULL" else plan))
    return rows


def _sub(label, parent, field: str) -> str:
    if not isinstance(label, str) or not label.strip():
        raise PayloadError(field, "missing")
    label = label.strip()
    return label if "." in label and parent is None else f"{label}.{domain_name(parent, 'parent')}"


def _status(value) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _status_change(domain: str, env: dict) -> list[tuple[str, dict]]:
    """A suspension or its end, from the ``OLD_STATUS``/``NEW_STATUS`` pair Plesk passes
    with an update: 0 is active, anything else a suspended state (by the admin, the
    reseller, the customer, or an expired subscription)."""
    before, after = _status(env.get("OLD_STATUS")), _status(env.get("NEW_STATUS"))
    if before is None or after is None or (before == 0) == (after == 0):
        return []
    if after == 0:
        return [("domain_unsuspended", {"domain": domain})]
    return [("domain_suspended", {"domain": domain, "reason": f"Plesk status {after}"})]


class Plesk(Panel):
    name = "plesk"

    # -- records: Plesk keeps them in its database, read with ``plesk db`` ----------------

    def domain_rows(self) -> list[tuple[str, str, str, str]]:
        """Every domain as ``(domain, kind, owner, plan)`` (see :data:`INVENTORY_SQL`);
        PanelError naming the command when it fails."""
        from ..steps import run_command

        text = run_command([self.conf["plesk"], "db", "-Ne", INVENTORY_SQL])
        return [(domain_name(d, "domain"), k, o, p) for d, k, o, p in read_rows(text)]

    def inventory(self) -> list[tuple[str, str, str]] | None:
        return [(d, owner, kind) for d, kind, owner, _ in self.domain_rows()]

    def account_inventory(self, account: str) -> list[tuple[str, str]]:
        return [(d, kind) for d, kind, owner, _ in self.domain_rows() if owner == account]

    def owner_of(self, domain: str) -> str | None:
        return next((o for d, _, o, _ in self.domain_rows() if d == domain and o), None)

    def plans_of(self, domains: Iterable[str]) -> dict[str, str | None]:
        """Each domain's own subscription plan, from one reading."""
        plans = {d: p or None for d, _, _, p in self.domain_rows()}
        return {d: plans.get(d) for d in domains}

    def plan_of(self, account: str) -> str | None:
        """The plan of the account's subscriptions when they are all on one (a Plesk
        customer may hold several subscriptions on different plans); None otherwise."""
        found = {p for _, _, o, p in self.domain_rows() if o == account}
        return found.pop() or None if len(found) == 1 else None

    def plan_of_domain(self, domain: str) -> str | None:
        try:
            return self.plans_of([domain])[domain]
        except Exception:  # noqa: BLE001 - as Panel.plan_of_domain: default applies
            return None

    def events(self, argv: list[str], env: dict, stdin: str) -> Found:
        if not argv:
            raise PayloadError("EVENT", "missing; run as 'spamfilter panel-hook plesk EVENT'")
        event = argv[0]
        what = event
        if event in ("domain_create", "site_create"):
            return Found(
                what, [created(domain_name(env.get("NEW_DOMAIN_NAME"), "NEW_DOMAIN_NAME"))]
            )
        if event in ("domain_delete", "site_delete"):
            return Found(
                what, [deleted(domain_name(env.get("OLD_DOMAIN_NAME"), "OLD_DOMAIN_NAME"))]
            )
        if event in ("domain_update", "site_update"):
            old = domain_name(env.get("OLD_DOMAIN_NAME"), "OLD_DOMAIN_NAME")
            new = domain_name(env.get("NEW_DOMAIN_NAME"), "NEW_DOMAIN_NAME")
            found = [] if old == new else [deleted(old), created(new)]
            found += _status_change(new, env)
            if not found:
                return Found(what, note="neither the domain's name nor its status changed")
            return Found(what, found)
        if event in ("subdomain_create", "subdomain_delete"):
            side = "NEW" if event.endswith("create") else "OLD"
            name = _sub(
                env.get(f"{side}_SUBDOMAIN_NAME"),
                env.get(f"{side}_DOMAIN_NAME"),
                f"{side}_SUBDOMAIN_NAME",
            )
            kind = "domain_created" if side == "NEW" else "domain_deleted"
            return self.secondary(what, kind, name)
        if event == "domain_alias_create":
            return self.secondary(what, "domain_created", env.get("NEW_DOMAIN_ALIAS_NAME"))
        if event == "domain_alias_delete":
            return self.secondary(what, "domain_deleted", env.get("OLD_DOMAIN_ALIAS_NAME"))
        if event == "mailname_create":
            mailbox = address(env.get("NEW_MAILNAME"), None, "NEW_MAILNAME")
            return Found(what, mailbox_events("mailbox_added", mailbox, env.get("NEW_PASSWORD")))
        if event == "mailname_delete":
            mailbox = address(env.get("OLD_MAILNAME"), None, "OLD_MAILNAME")
            return Found(what, mailbox_events("mailbox_deleted", mailbox))
        if event == "mailname_update":
            return self._mail_update(what, env)
        return Found(what, note="not an event spamfilter-plugin acts on")

    def _mail_update(self, what: str, env: dict) -> Found:
        new = address(env.get("NEW_MAILNAME"), None, "NEW_MAILNAME")
        old_name = env.get("OLD_MAILNAME")
        old = address(old_name, None, "OLD_MAILNAME") if old_name else new
        old_pw, new_pw = env.get("OLD_PASSWORD") or "", env.get("NEW_PASSWORD") or ""
        if old != new:  # renamed: the old mailbox goes, the new one comes
            return Found(
                what,
                mailbox_events("mailbox_deleted", old)
                + mailbox_events("mailbox_added", new, new_pw or None),
            )
        if old_pw and new_pw and old_pw != new_pw:
            return Found(what, [("password_reset", {"mailbox": new, "password": new_pw})])
        return Found(what, note=f"{new}: no password change Plesk reported")


ADAPTER = Plesk
