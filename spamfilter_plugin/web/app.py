"""The console: a Flask application.

A session is a random id in Flask's signed cookie (``HttpOnly``, ``SameSite=Lax``, ``Secure``
when the console's ``public_url`` is https) and a row in the store, checked on every request
(:mod:`.sessions`); every POST carries a CSRF token checked by Flask-WTF;
changes are made by POST only; the Content-Security-Policy allows no script at all and
frames only the settings pages, only inside the panel's own origin (``panel_origin``).
Every page works without JavaScript.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from flask import (
    Flask,
    abort,
    flash,
    g,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from jinja2 import StrictUndefined
from markupsafe import Markup

from .. import intake
from ..events import Domain as DomainName
from ..events import DomainCreated, DomainDeleted, Mailbox
from ..queue import Queue, open_queue
from ..store.mx import MxStore
from ..templating import format_time, stylesheet
from . import status
from .access import LinkRedeemer, Records, Refused, Viewer, safe_next
from .sessions import Ended, SessionKeeper, Throttle, password_stamp

log = logging.getLogger("spamfilter_plugin.web")

SCOPES = ("admin", "domain", "mailbox")


@dataclass
class Console:
    """What the application serves: the runtime (vendors, config), the panel adapter (or
    None), the login, and in the demo the panel it can add to."""

    runtime: Any
    secret_key: bytes
    password_hash: str
    username: str = "admin"
    adapter: Any = None
    panel_origin: str = ""
    secure_cookies: bool = False
    demo: Any = None
    throttle: Throttle = field(default_factory=Throttle)

    @property
    def state_dir(self):
        return self.runtime.config.general.state_dir

    def check_password(self, username: str, password: str) -> bool:
        from argon2 import PasswordHasher
        from argon2.exceptions import InvalidHashError, VerificationError

        name_ok = hmac.compare_digest(username.encode(), self.username.encode())
        try:
            pw_ok = bool(self.password_hash) and PasswordHasher().verify(
                self.password_hash, password
            )
        except (VerificationError, InvalidHashError):
            pw_ok = False
        return name_ok and pw_ok


def hash_password(password: str) -> str:
    """An argon2 hash for ``[console] password_hash``."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


#: what the queue page's buttons do (a Queue method of the same name): the message when it
#: was done, and when the row was not in a state to allow it
QUEUE_ACTIONS = {
    "retry": ("will be delivered again now.", "is not a failed row (only dead rows are retried)."),
    "drop": ("was dropped.", "is gone already or being delivered right now."),
}


def create_app(console: Console) -> Flask:
    app = Flask(__name__)
    app.jinja_options = {"undefined": StrictUndefined}
    app.select_jinja_autoescape = lambda filename: True  # every template, .j2 or not
    app.config.update(
        SECRET_KEY=console.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=console.secure_cookies,
        SESSION_COOKIE_NAME="spamfilter_console",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    CSRFProtect(app)
    links = LinkRedeemer(console.secret_key)
    keeper = SessionKeeper(console)
    app.jinja_env.filters["shown"] = status.shown_name
    app.jinja_env.filters["sfp_time"] = format_time
    app.jinja_env.globals["csrf_token"] = generate_csrf

    # -- per request ---------------------------------------------------------------------

    def queue() -> Queue:
        if "queue" not in g:
            g.queue = open_queue(console.state_dir)
        return g.queue

    @app.teardown_appcontext
    def _close(_exc) -> None:
        q = g.pop("queue", None)
        if q is not None:
            q.close()

    def records() -> Records:
        return Records(console.adapter, queue().targets)

    def viewer() -> Viewer | None:
        return g.get("viewer")

    def start_session(who: Viewer, stamp: str) -> None:
        keeper.end(queue(), session.get("sid"))
        session.clear()
        session["sid"] = keeper.open(queue(), who, stamp)
        g.viewer = who

    def framed_page() -> bool:
        return request.endpoint in ("settings", "settings_submit")

    @app.after_request
    def _headers(response):
        ancestors = "'none'"
        if framed_page() and console.panel_origin:
            ancestors = f"'self' {console.panel_origin}"
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

    @app.before_request
    def _login_required():
        if request.endpoint == "stylesheet":
            return None
        found = keeper.current(queue(), session.get("sid"), records())
        if isinstance(found, Ended):
            session.clear()
            flash(found.reason, "error")
            found = None
        g.viewer = found
        if request.endpoint in ("login", "enter", "enter_confirm") or request.endpoint is None:
            return None
        if found is None:
            return redirect(url_for("login", next=request.full_path.rstrip("?")))
        return None

    @app.context_processor
    def _globals():
        return {"viewer": viewer(), "demo": console.demo, "vendors": console.runtime.vendors}

    @app.errorhandler(CSRFError)
    def _csrf(exc):
        log.warning("refused a POST to %s without a valid CSRF token", request.path)
        return page_error(
            403,
            "This form was not sent from this console (its security token is missing "
            "or old). Nothing was changed; open the page again and resend it.",
        )

    @app.errorhandler(Refused)
    def _refused(exc):
        return page_error(403, str(exc))

    @app.errorhandler(404)
    def _missing(exc):
        return page_error(404, "There is no such page.")

    def page_error(code: int, message: str):
        return render_template("error.html", code=code, message=message), code

    # -- login ---------------------------------------------------------------------------

    @app.get("/style.css", endpoint="stylesheet")
    def style():
        body = stylesheet() + "\n" + console_css()
        return (
            body,
            200,
            {"Content-Type": "text/css; charset=utf-8", "Cache-Control": "max-age=300"},
        )

    @app.route("/login", methods=["GET", "POST"])
    def login():
        next_path = safe_next(request.values.get("next", "/"))
        if request.method == "GET":
            return render_template("login.html", message="", next=next_path)
        who = request.remote_addr or "-"
        username = request.form.get("username", "")
        # tries for the console's account are counted together, whatever their address
        account = username if username == console.username else "?"
        wait = console.throttle.begin(who, account)
        if wait > 0:
            message = (
                f"Too many failed logins; try again in {wait:.0f} seconds. On the server, "
                "'spamfilter ui link' makes a link that logs you in without the password."
            )
            log.warning("console login refused (throttled) from %s", who)
            return render_template("login.html", message=message, next=next_path), 429
        if console.check_password(username, request.form.get("password", "")):
            console.throttle.succeeded(who, account)
            start_session(Viewer("admin", console.username), password_stamp(console.password_hash))
            log.info("console login: %s from %s", console.username, who)
            return redirect(next_path)
        console.throttle.failed()
        log.warning("console login failed from %s", who)
        message = "The user name or the password is wrong."
        return render_template("login.html", message=message, next=next_path), 401

    @app.get("/enter/<token>")
    def enter(token: str):
        other, current = links.peek(token).viewer, viewer()
        if current is not None and current != other:  # ask before replacing this session
            return render_template("switch.html", current=current, other=other, token=token)
        return enter_confirm(token)

    @app.post("/enter/<token>", endpoint="enter_confirm")
    def enter_confirm(token: str):
        link = links.redeem(token)
        start_session(
            link.viewer, password_stamp(console.password_hash) if link.console else "panel"
        )
        log.info("%s opened the console with a login link", link.viewer)
        return redirect(link.next_path)

    @app.post("/logout")
    def logout():
        keeper.end(queue(), session.get("sid"))
        session.clear()
        g.viewer = None
        return redirect(url_for("login"))

    # -- the dashboard -------------------------------------------------------------------

    def domain_vendors() -> list[str]:
        return console.runtime.handlers("domain_created")

    def dashboard_rows(me: Viewer) -> list[status.DomainStatus]:
        domains = records().domains_for(me)
        mx = {m.domain: m.to_dict() for m in MxStore(console.state_dir).all()}
        latest = queue().latest(status.DOMAIN_HOOKS)
        return status.statuses(domains, domain_vendors(), latest, mx)

    @app.get("/")
    def dashboard():
        me = viewer()
        if me.role == "mailbox":
            return redirect(url_for("settings", scope="mailbox", target=me.name))
        state = request.args.get("state", "")
        vendor = request.args.get("vendor", "")
        if state and state not in status.STATES:
            state = ""
        if vendor and vendor not in domain_vendors():
            vendor = ""
        rows = status.filtered(dashboard_rows(me), state, vendor)
        shown, page, pages = status.page_of(rows, _int(request.args.get("page"), 1))
        return render_template(
            "dashboard.html",
            rows=shown,
            total=len(rows),
            page=page,
            pages=pages,
            state=state,
            vendor=vendor,
            states=status.STATES,
            domain_vendors=domain_vendors(),
            selected=set(session.get("selected", [])),
            owners=console.demo.accounts() if console.demo else [],
        )

    @app.post("/selection")
    def selection():
        """Keep the boxes ticked on this page (the selection survives paging), then go to
        another page or apply a bulk action to the whole selection."""
        me = viewer()
        allowed = set(records().domains_for(me))
        chosen = set(session.get("selected", []))
        shown = set(request.form.getlist("shown")) & allowed
        ticked = set(request.form.getlist("selected")) & allowed
        chosen = (chosen - shown) | ticked
        action = request.form.get("action", "")
        back = {k: request.form.get(k, "") for k in ("state", "vendor")}
        back = {k: v for k, v in back.items() if v}
        if action == "clear":
            chosen = set()
        elif action in ("protect", "unprotect", "retry"):
            if not me.is_admin:
                raise Refused("bulk actions are for the admin")
            done = bulk(action, sorted(chosen & allowed))
            flash(done, "ok")
            chosen = set()
        session["selected"] = sorted(chosen)
        page = _int(request.form.get("goto") or request.form.get("page"), 1)
        return redirect(url_for("dashboard", page=page, **back))

    def bulk(action: str, domains: list[str]) -> str:
        if not domains:
            return "Nothing is selected."
        if action == "retry":
            dead = [
                r
                for r in queue().rows(state="dead", limit=100000)
                if r.target in {f"domain:{d}" for d in domains}
            ]
            retried = sum(queue().retry(r.id) for r in dead)
            return f"Retrying {retried} failed deliver{'y' if retried == 1 else 'ies'}."
        kind = DomainCreated if action == "protect" else DomainDeleted
        events = [kind(domain=d) for d in domains]
        queued = intake.enqueue(queue(), events, capabilities=console.runtime.capabilities())
        rows = sum(len(ids) for _, ids in queued)
        log.info("console: %s %s (%d rows)", action, ", ".join(domains), rows)
        verb = "Protecting" if action == "protect" else "Removing protection from"
        return f"{verb} {len(domains)} domain{'s' if len(domains) != 1 else ''} ({rows} queued)."

    # -- settings pages ------------------------------------------------------------------

    def target_of(scope: str, name: str | None):
        if scope == "domain":
            return DomainName(name)
        if scope == "mailbox":
            return Mailbox(name)
        return None

    @app.get("/settings/admin/", defaults={"scope": "admin", "target": None}, endpoint="settings")
    @app.get("/settings/<scope>/<target>/", endpoint="settings")
    def settings_page(scope: str, target: str | None):
        if scope not in SCOPES or (scope == "admin") != (target is None):
            abort(404)
        me = viewer()
        name = records().check(me, scope, target)
        query = dict(request.args.items())
        fragments = console.runtime.settings_fragments(
            scope, target_of(scope, name), generate_csrf(), query
        )
        mailboxes = records().mailboxes_of(name) if scope == "domain" else []
        return render_template(
            "settings.html",
            scope=scope,
            name=name,
            fragments=[Markup(f.html) for f in fragments],
            mailboxes=mailboxes,
        )

    @app.post("/settings/admin/<vendor>/<form>", defaults={"scope": "admin", "target": None})
    @app.post("/settings/<scope>/<target>/<vendor>/<form>")
    def settings_submit(scope: str, target: str | None, vendor: str, form: str):
        if scope not in SCOPES or vendor not in console.runtime.vendors:
            abort(404)
        me = viewer()
        name = records().check(me, scope, target)
        # a checkbox sends a hidden "0" and, when ticked, "1" after it: the last value wins
        fields = {key: request.form.getlist(key)[-1] for key in request.form}
        result = console.runtime.settings_submitted(vendor, scope, target_of(scope, name), fields)
        log.info(
            "%s submitted %s/%s on the %s page of %s: %s",
            me,
            vendor,
            form,
            scope,
            name or "-",
            "ok" if result.ok else "refused",
        )
        if result.ok and result.redirect:
            return redirect(result.redirect)
        flash(result.message, "ok" if result.ok else "error")
        for key, text in result.errors.items():
            flash(f"{key}: {text}", "error")
        if scope == "admin":
            return redirect(url_for("settings", scope="admin"))
        return redirect(url_for("settings", scope=scope, target=name))

    # -- the queue -----------------------------------------------------------------------

    def admin_only() -> None:
        if not viewer().is_admin:
            log.warning("refused: %s asked for %s", viewer(), request.path)
            raise Refused("this page is for the admin")

    @app.get("/queue")
    def queue_page():
        admin_only()
        pending = queue().rows(state="pending", limit=200)
        return render_template(
            "queue.html",
            waiting=[r for r in pending if not r.attempts],
            retrying=[r for r in pending if r.attempts],
            leased=queue().rows(state="leased", limit=200),
            dead=queue().rows(state="dead", limit=200),
            counts=queue().counts(),
            now=time.time(),
        )

    @app.post("/queue/<int:row_id>/<action>")
    def queue_action(row_id: int, action: str):
        admin_only()
        if action not in QUEUE_ACTIONS:
            abort(404)
        done, refused = QUEUE_ACTIONS[action]
        ok = getattr(queue(), action)(row_id)
        flash(f"Row #{row_id} {done if ok else refused}", "ok" if ok else "error")
        log.info("console: %s row #%d: %s", action, row_id, "ok" if ok else "refused")
        return redirect(url_for("queue_page"))

    # -- the demo's panel ----------------------------------------------------------------

    def demo_panel():
        """The demo's panel (the admin's only); 404 outside the demo."""
        if console.demo is None:
            abort(404)
        admin_only()
        return console.demo

    @app.post("/demo/domain")
    def demo_domain():
        form = request.form
        flash(*demo_panel().add_domain(form.get("owner", ""), form.get("domain", "")))
        return redirect(url_for("dashboard"))

    @app.post("/demo/mailbox")
    def demo_mailbox():
        message, kind, domain = demo_panel().add_mailbox(
            request.form.get("address", ""), request.form.get("password", "")
        )
        flash(message, kind)
        if domain:
            return redirect(url_for("settings", scope="domain", target=domain))
        return redirect(url_for("dashboard"))

    app.jinja_env.globals["messages"] = lambda: get_flashed_messages(with_categories=True)
    return app


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def console_css() -> str:
    from importlib import resources

    return resources.files(__package__).joinpath("console.css").read_text("utf-8")
