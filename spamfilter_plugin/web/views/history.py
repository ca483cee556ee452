"""The admin's History page: the audit log, newest first, filtered by target, actor and
days; and a domain's history (its queue rows and audit entries) for its settings page."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, render_template, request

from ... import audit
from ..site import admin_only, console, queue
from .queue import STATE_WORDS

bp = Blueprint("history", __name__)

#: the longest list a page shows
LIMIT = 200


@bp.get("/drift")
def drift():
    admin_only()
    from ...drift import last

    doc = last(console().runtime.config)
    return render_template("drift.html", doc=doc)


@bp.get("/history")
def page():
    admin_only()
    target = request.args.get("target", "").strip().lower() or None
    actor = request.args.get("actor", "").strip() or None
    try:
        days = float(request.args.get("days", "") or 30)
    except ValueError:
        days = 30.0
    since = time.time() - max(days, 0) * 86400
    found = queue().audit_entries(since=since, target=target, actor=actor, limit=LIMIT)
    entries = [audit.shown(e) for e in found]
    for e in entries:
        e["said"] = audit.change_text(e["changes"])
    return render_template(
        "history.html",
        entries=entries,
        target=target or "",
        actor=actor or "",
        days=days,
        limit=LIMIT,
    )


def of_domain(name: str, limit: int = 50, *, plain: bool = False) -> list[dict[str, Any]]:
    """*name*'s events, newest first: its queue rows and the audit entries of it and its
    mailboxes, as ``{at, kind, what, outcome}``; *plain* (for an end customer) leaves the
    vendors' reasons out."""
    items: list[dict[str, Any]] = [
        {
            "at": r.updated_at,
            "kind": "queue",
            "what": f"{r.hook.replace('_', ' ')} at {r.vendor} (row {r.id})",
            "outcome": STATE_WORDS.get(r.state, r.state)
            + (f": {r.last_error}" if r.last_error and not plain else ""),
        }
        for r in queue().rows(target=f"domain:{name}", limit=limit)
    ]
    for e in queue().audit_entries(target=name, limit=limit):
        shown = audit.shown(e)
        said = audit.change_text(shown["changes"])
        what = " ".join(x for x in (e["action"], e["vendor"], e["form"]) if x)
        items.append(
            {
                "at": e["at"],
                "kind": f"{e['actor']} ({e['role'] or e['origin']})",
                "what": what + (f": {said}" if said else ""),
                "outcome": e["outcome"],
            }
        )
    return sorted(items, key=lambda i: float(i["at"]), reverse=True)[:limit]
