"""The demo's panel (``spamfilter demo``): create a domain or a mailbox the way the panel
does; 404 outside the demo, and the admin's only."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for

from ..site import admin_only, console

bp = Blueprint("demo", __name__)


def demo_panel():
    if console().demo is None:
        abort(404)
    admin_only()
    return console().demo


@bp.post("/demo/domain")
def domain():
    form = request.form
    flash(*demo_panel().add_domain(form.get("owner", ""), form.get("domain", "")))
    return redirect(url_for("domains.dashboard"))


@bp.post("/demo/mailbox")
def mailbox():
    message, kind, domain = demo_panel().add_mailbox(
        request.form.get("address", ""), request.form.get("password", "")
    )
    flash(message, kind)
    if domain:
        return redirect(url_for("settings.page", scope="domain", target=domain))
    return redirect(url_for("domains.dashboard"))
