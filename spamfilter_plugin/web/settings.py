"""Showing and changing vendors' settings for someone: one service for the console, the panel
pages (``spamfilter ui ...``) and whatever else asks.

Every request goes the same way: the target (a domain or a mailbox) is checked against what
the panel's records give the viewer (:meth:`~.access.Records.check`, Refused otherwise), the
vendors' fragments are asked for (``settings_fragments``), or a submitted form is handed to
the vendor's ``settings_submitted`` hook, which validates it with its schema and applies it
through its client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..errors import InvalidInput
from ..events import Domain, Mailbox
from ..manager import Runtime
from ..queue import Queue
from ..templating import Fragment, SettingsResult, one_page
from .access import Records, Viewer

SCOPES = ("admin", "domain", "mailbox")


def target_of(scope: str, name: str | None) -> Domain | Mailbox | None:
    """The hooks' target for a checked *name* of *scope*."""
    if name is None:
        return None
    if scope == "domain":
        return Domain(name)
    if scope == "mailbox":
        return Mailbox(name)
    return None


#: who may change the settings of a suspended account's domains (its own user may not)
SUSPENSION_LIFTERS = ("admin", "reseller")


class SettingsService:
    """The settings of *runtime*'s vendors, as *records* lets each viewer see them;
    *suspensions* gives the suspended domains (:meth:`~..queue.Queue.suspensions`)."""

    def __init__(
        self,
        runtime: Runtime,
        records: Records,
        suspensions: Callable[[], Mapping[str, tuple[float, str | None]]] = dict,
        *,
        audit: Queue | None = None,
        origin: str = "",
    ) -> None:
        self.runtime, self.records, self._suspensions = runtime, records, suspensions
        #: where each submission is written to the audit log, and from where it came (the
        #: console user's address, or ``panel <kind>``)
        self.audit, self.origin = audit, origin

    def suspension(self, scope: str, name: str | None) -> tuple[float, str | None] | None:
        """Since when and why the account of *name* (a domain, or a mailbox's domain) is
        suspended; None when it is not."""
        if name is None or scope == "admin":
            return None
        return self._suspensions().get(name.rsplit("@", 1)[-1])

    def suspension_notice(self, viewer: Viewer, scope: str, name: str | None) -> str | None:
        """What the pages say of a suspended account to *viewer* (and why its own user's
        form is refused); None when the account is not suspended."""
        held = self.suspension(scope, name)
        if held is None:
            return None
        text = suspended_text(name, held)
        if viewer.role not in SUSPENSION_LIFTERS:
            text += "; its settings cannot be changed until the suspension is lifted"
        return text

    def check(self, viewer: Viewer, scope: str, target: str | None) -> str | None:
        """The normalised target if *viewer* may see it; Refused (logged) otherwise."""
        return self.records.check(viewer, scope, target)

    def vendor(self, name: str | None) -> str:
        """*name* if it is an enabled vendor; InvalidInput naming the enabled ones."""
        if name not in self.runtime.vendors:
            enabled = ", ".join(self.runtime.vendors) or "none"
            raise InvalidInput("vendor", f"{name!r} is not enabled; enabled: {enabled}")
        return name

    def fragments(
        self,
        viewer: Viewer,
        scope: str,
        target: str | None,
        *,
        csrf_token: str,
        query: Mapping[str, str] | None = None,
        vendor: str | None = None,
    ) -> tuple[str | None, list[Fragment]]:
        """The checked target and the fragments *viewer* may see for it (one vendor's, when
        *vendor* is given)."""
        name = self.check(viewer, scope, target)
        if vendor is not None:
            self.vendor(vendor)
        with one_page():  # the fragments share a page: their fields' ids are unique on it
            found = self.runtime.settings_fragments(
                scope, target_of(scope, name), csrf_token, dict(query or {})
            )
        return name, [f for f in found if vendor is None or f.vendor == vendor]

    def submit(
        self,
        viewer: Viewer,
        scope: str,
        target: str | None,
        vendor: str,
        form: Mapping[str, str],
    ) -> tuple[str | None, SettingsResult]:
        """The checked target and what *vendor* made of the submitted *form* (the caller
        has checked its CSRF token)."""
        name = self.check(viewer, scope, target)
        vendor = self.vendor(vendor)
        notice = self.suspension_notice(viewer, scope, name)
        if notice is not None and viewer.role not in SUSPENSION_LIFTERS:
            result = SettingsResult(False, notice)
        else:
            result = self.runtime.settings_submitted(
                vendor, scope, target_of(scope, name), dict(form)
            )
        self._audited(viewer, scope, name, vendor, form, result)
        return name, result

    def _audited(self, viewer, scope, name, vendor, form, result: SettingsResult) -> None:
        if self.audit is None:
            return
        from .. import audit

        if result.ok:
            outcome = "ok: " + result.message
        elif result.errors:
            outcome = "refused: " + "; ".join(f"{k}: {v}" for k, v in result.errors.items())
        else:
            outcome = "refused: " + result.message
        audit.record(
            self.audit,
            actor=viewer.name,
            role=viewer.role,
            origin=self.origin,
            action="settings",
            scope=scope,
            target=name or "",
            vendor=vendor,
            form=str(form.get("action", "")),
            changed=audit.changes(form, result.before),
            outcome=outcome,
        )


def suspended_text(name: str | None, held: tuple[float, str | None]) -> str:
    """``example.com is suspended since 2026-12-01 10:00 UTC: Unpaid invoice``."""
    import time

    since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(held[0]))
    domain = (name or "").rsplit("@", 1)[-1]
    return f"{domain} is suspended since {since}" + (f": {held[1]}" if held[1] else "")
