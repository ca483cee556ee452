"""The admin's queue page: dead, retrying, waiting and in-delivery rows, with retry and drop."""

from __future__ import annotations

import time

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ... import audit
from ..site import admin_only, log, me, queue

bp = Blueprint("queue", __name__)

#: what the queue page's buttons do (a Queue method of the same name): the message when it
#: was done, and when the row was not in a state to allow it
QUEUE_ACTIONS = {
    "retry": ("will be delivered again now.", "is not a failed row (only dead rows are retried)."),
    "drop": ("was dropped.", "is gone already or being delivered right now."),
}


#: the queue's states in the words an admin uses
STATE_WORDS = {
    "pending": "waiting",
    "leased": "being delivered",
    "done": "delivered",
    "dead": "failed for good",
    "superseded": "replaced by a later event",
    "skipped": "skipped on purpose",
}


@bp.get("/queue")
def page():
    admin_only()
    pending = queue().rows(state="pending", limit=200)
    return render_template(
        "queue.html",
        waiting=[r for r in pending if not r.attempts],
        retrying=[r for r in pending if r.attempts],
        leased=queue().rows(state="leased", limit=200),
        dead=queue().rows(state="dead", limit=200),
        counts=queue().counts(),
        state_words=STATE_WORDS,
        now=time.time(),
    )


@bp.post("/queue/<int:row_id>/<action>")
def action(row_id: int, action: str):
    admin_only()
    if action not in QUEUE_ACTIONS:
        abort(404)
    row = queue().get(row_id)
    if action == "drop" and row is not None and request.form.get("confirm") != "yes":
        target = row.target.partition(":")[2]
        return render_template(
            "confirm.html",
            title=f"Drop row #{row_id}?",
            effects=[
                f"The {row.hook.replace('_', ' ')} of {target} is never delivered to "
                f"{row.vendor}; nothing is changed there. Queue the event again to deliver it."
            ],
            items=[],
            action=url_for("queue.action", row_id=row_id, action="drop"),
            fields={"confirm": "yes"},
            button="Drop",
            cancel=url_for("queue.page"),
        )
    ok, said = change_row(row_id, action, me().name, me().role)
    flash(said, "ok" if ok else "error")
    return redirect(url_for("queue.page"))


def change_row(row_id: int, action: str, actor: str, role: str, via: str = "") -> tuple[bool, str]:
    """Retry or drop queue row *row_id* for *actor* (the console's admin, an API token),
    written to the audit log (as ``<via>queue <action>``): whether it was done, and what
    happened in words."""
    row = queue().get(row_id)
    done, refused = QUEUE_ACTIONS[action]
    ok = getattr(queue(), action)(row_id)
    audit.record(
        queue(),
        actor=actor,
        role=role,
        origin=request.remote_addr or "",
        action=f"{via}queue {action}",
        scope="queue",
        target=row.target.partition(":")[2] if row is not None else f"row {row_id}",
        vendor=row.vendor if row is not None else "",
        form=f"row {row_id}",
        outcome=("ok: " if ok else "refused: ") + (done if ok else refused),
    )
    log.info("%s: %s row #%d: %s", actor, action, row_id, "ok" if ok else "refused")
    return ok, f"Row #{row_id} {done if ok else refused}"
