"""Plesk: Event Manager handlers (``plesk bin event_handler``).

Plesk runs the handler after the action, in the background, with ``NEW_*`` (create,
update) and ``OLD_*`` (delete, update) environment variables and no event-name
variable, so the event's name is put in the command line.  It cannot veto anything and
its output is lost: the entry logs to a file.  Domain names come as Unicode; they are
turned into IDNA here.  Plesk sends one event per domain, so it needs no look-ups.
"""

from __future__ import annotations

from .. import Found, Panel, PayloadError, address, created, deleted, domain_name, mailbox_events

#: the command the adapter uses, with its documented default (README)
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
