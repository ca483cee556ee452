"""The console: a Flask application of Blueprints (:mod:`.views`).

A session is a random id in Flask's signed cookie (``HttpOnly``, ``SameSite=Lax``, ``Secure``
when the console's ``public_url`` is https) and a row in the store, checked on every request
(:mod:`.sessions`); every POST carries a CSRF token checked by Flask-WTF; changes are made by
POST only; the Content-Security-Policy allows no script at all and frames only the settings
pages, only inside the panel's own origin (``panel_origin``).  Every page works without
JavaScript.
"""

from __future__ import annotations

from flask import Flask, flash, g, get_flashed_messages, redirect, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from jinja2 import StrictUndefined

from ..templating import format_time, format_when
from . import status
from .access import LinkRedeemer, Refused
from .console import Console, hash_password
from .sessions import Ended, SessionKeeper
from .site import Site, close_queue, console, log, page_error, queue, records, site, viewer
from .views import BLUEPRINTS, api
from .views.auth import OPEN

__all__ = ["Console", "create_app", "hash_password"]

#: the pages the panel may show in a frame of its own origin
FRAMED = ("settings.page", "settings.submit")


def create_app(the_console: Console) -> Flask:
    """The console's application for *the_console*."""
    app = Flask(__name__)
    app.jinja_options = {"undefined": StrictUndefined}
    # every template is autoescaped, .j2 or not
    app.select_jinja_autoescape = lambda filename: True  # type: ignore[method-assign]
    app.config.update(
        SECRET_KEY=the_console.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=the_console.secure_cookies,
        SESSION_COOKIE_NAME="spamfilter_console",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    csrf = CSRFProtect(app)
    app.extensions["spamfilter"] = Site(
        the_console, LinkRedeemer(the_console.secret_key), SessionKeeper(the_console)
    )
    app.jinja_env.filters["shown"] = status.shown_name
    app.jinja_env.filters["sfp_time"] = format_time
    app.jinja_env.filters["sfp_when"] = format_when
    app.jinja_env.filters["event_words"] = status.event_words
    app.jinja_env.globals["csrf_token"] = generate_csrf
    app.jinja_env.globals["messages"] = lambda: get_flashed_messages(with_categories=True)
    app.teardown_appcontext(close_queue)
    app.before_request(_session)
    app.after_request(_headers)
    app.context_processor(_globals)
    app.register_error_handler(CSRFError, _csrf)
    app.register_error_handler(Refused, lambda exc: page_error(403, str(exc)))
    app.register_error_handler(404, _not_found)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    csrf.exempt(api.bp)  # token calls: no cookie authenticates them, so no CSRF applies
    return app


def _session():
    """Who is asking, from the server-side session, checked again; a login for the rest."""
    if request.endpoint == "auth.stylesheet" or request.blueprint == "api":
        return None  # the API authenticates by token alone (views.api), never by cookie
    found = site().keeper.current(queue(), session.get("sid"), records())
    if isinstance(found, Ended):
        session.clear()
        flash(found.reason, "error")
        found = None
    g.viewer = found
    if request.endpoint in OPEN or request.endpoint is None:
        return None
    if found is None:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return None


def _headers(response):
    ancestors = "'none'"
    if request.endpoint in FRAMED and console().panel_origin:
        ancestors = f"'self' {console().panel_origin}"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        f"frame-ancestors {ancestors}"
    )
    if ancestors == "'none'":
        response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _globals() -> dict:
    the = console()
    return {"viewer": viewer(), "demo": the.demo, "vendors": the.runtime.vendors}


def _not_found(exc):
    if request.path.startswith(api.bp.url_prefix or "/api/"):
        return api.problem(404, "Not Found", "There is no such resource.")
    return page_error(404, "There is no such page.")


def _csrf(exc):
    log.warning("refused a POST to %s without a valid CSRF token", request.path)
    return page_error(
        403,
        "This form was not sent from this console (its security token is missing "
        "or old). Nothing was changed; open the page again and resend it.",
    )
