"""The settings pages (admin, a domain's, a mailbox's): each vendor's fragments, and the forms
they post, through the settings service (:mod:`..settings`), which the panel pages share."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from ...errors import InvalidInput
from ..settings import SCOPES
from ..site import log, me, records, settings
from .history import of_domain

bp = Blueprint("settings", __name__)


@bp.get("/settings/admin/", defaults={"scope": "admin", "target": None})
@bp.get("/settings/<scope>/<target>/")
def page(scope: str, target: str | None):
    if scope not in SCOPES or (scope == "admin") != (target is None):
        abort(404)
    query = dict(request.args.items())
    name, fragments = settings().fragments(
        me(), scope, target, csrf_token=generate_csrf(), query=query
    )
    return render_template(
        "settings.html",
        scope=scope,
        name=name,
        suspended=settings().suspension_notice(me(), scope, name),
        fragments=[Markup(f.html) for f in fragments],
        mailboxes=records().mailboxes_of(name) if scope == "domain" and name else [],
        history=of_domain(name) if scope == "domain" and name else [],
    )


@bp.post("/settings/admin/<vendor>/<form>", defaults={"scope": "admin", "target": None})
@bp.post("/settings/<scope>/<target>/<vendor>/<form>")
def submit(scope: str, target: str | None, vendor: str, form: str):
    if scope not in SCOPES:
        abort(404)
    # a checkbox sends a hidden "0" and, when ticked, "1" after it: the last value wins
    fields = {key: request.form.getlist(key)[-1] for key in request.form}
    try:
        name, result = settings().submit(me(), scope, target, vendor, fields)
    except InvalidInput:  # not an enabled vendor
        abort(404)
    outcome = "ok" if result.ok else "refused"
    log.info(
        "%s submitted %s/%s on the %s page of %s: %s", me(), vendor, form, scope, name or "-",
        outcome,
    )  # fmt: skip
    if result.ok and result.redirect:
        return redirect(result.redirect)
    flash(result.message, "ok" if result.ok else "error")
    for key, text in result.errors.items():
        flash(f"{key}: {text}", "error")
    if scope == "admin":
        return redirect(url_for("settings.page", scope="admin"))
    return redirect(url_for("settings.page", scope=scope, target=name))
