"""The settings pages (admin, a domain's, a mailbox's): each vendor's fragments, and the forms
they post, through the settings service (:mod:`..settings`), which the panel pages share."""

from __future__ import annotations

import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from ...errors import InvalidInput
from ...templating import SettingsResult, retarget_forms, submitted
from ..settings import SCOPES
from ..site import known_domain, log, me, records, settings
from .domains import summary
from .history import of_domain

bp = Blueprint("settings", __name__)

#: a vendor's "log in to our panel" form in its fragment (named ``<vendor>-login``), which
#: the domain's summary offers beside the other actions
#: a fragment form's action relative to the settings page (``vendor/form``, or none)
RELATIVE_ACTION = re.compile(r"(?:[a-z0-9_-]+/[a-z0-9_-]+)?")
LOGIN_FORM = re.compile(r'<form [^>]*name="[a-z0-9_]+-login">.*?</form>', re.S)


@bp.get("/settings/admin/", defaults={"scope": "admin", "target": None})
@bp.get("/settings/<scope>/<target>/")
def page(scope: str, target: str | None):
    if scope not in SCOPES or (scope == "admin") != (target is None):
        abort(404)
    return _page(scope, target)


def _page(scope: str, target: str | None, refused: SettingsResult | None = None, sent=None):
    """The settings page; after a refused form (*refused*), with *sent* (a
    :class:`~...templating.Submitted`) current, so its fields show what was typed."""
    if scope == "domain" and target and known_domain(me(), target) is None:
        abort(404)  # an admin may look at any domain, but only at one there is
    query = dict(request.args.items())
    name, found = settings().fragments(me(), scope, target, csrf_token=generate_csrf(), query=query)
    here = url_for("settings.page", scope=scope, target=name)
    fragments = [_anchored(f.html, here) for f in found]
    return render_template(
        "settings.html",
        scope=scope,
        name=name,
        summary=summary(name) if scope == "domain" and name else None,
        logins=[Markup(m) for f in fragments for m in LOGIN_FORM.findall(str(f))],
        suspended=settings().suspension_notice(me(), scope, name),
        fragments=fragments,
        mailboxes=records().mailboxes_of(name) if scope == "domain" and name else [],
        history=of_domain(name, plain=me().role not in ("admin", "reseller"))
        if scope == "domain" and name
        else [],
        refused=refused,
        problems=sent.problems() if sent is not None else [],
    )


def _anchored(fragment_html: str, page_url: str) -> Markup:
    """*fragment_html* with its forms' actions (``<vendor>/<form>``, relative to the page)
    made absolute, so the page may be shown at another address: after a refused form, at
    the address the form was posted to."""

    def anchor(action: str, method: str) -> tuple[str, str] | None:
        return (page_url + action, "") if RELATIVE_ACTION.fullmatch(action) else None

    return retarget_forms(fragment_html, anchor)


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
    if not result.ok:  # the page again, as the user left it, each error beside its field
        with submitted(vendor, fields, result.errors) as sent:
            page_html = _page(scope, None if scope == "admin" else name, result, sent)
        return page_html, 422 if result.errors else 200
    flash(result.message, "ok")
    if scope == "admin":
        return redirect(url_for("settings.page", scope="admin"))
    return redirect(url_for("settings.page", scope=scope, target=name))
