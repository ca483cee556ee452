"""The JSON API under ``/api/v1``, for scripts and billing systems (docs/api.md).

A call carries a token in ``Authorization: Bearer`` (never in the URL; a console cookie
authenticates nothing here, and the console's CSRF check does not apply).  The token stands
for a console user (:data:`~...tokens.CONSOLE_ROLE`): what it may see is decided by the
console's own rules (:class:`~..access.Records`), and the rows are the dashboard's
(:mod:`.domains`).  Errors are RFC 9457 ``application/problem+json``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from html.parser import HTMLParser
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request, url_for

from ... import __version__, audit, tokens
from ...errors import InvalidInput
from ...events import (
    DomainCreated,
    DomainDeleted,
    DomainSuspended,
    DomainUnsuspended,
    normalise_domain,
    normalise_host,
)
from .. import apischema, status
from ..access import LINK_SECONDS, Refused, Viewer, login_token
from ..settings import SCOPES
from ..site import api_domains, console, known_domain, log, queue, records, settings
from .domains import act_on, asked, domain_vendors, fleet_servers, listed, queue_events, rows_for
from .queue import QUEUE_ACTIONS, change_row

bp = Blueprint("api", __name__, url_prefix="/api/v1")

PROBLEM = "application/problem+json"


class Problem(Exception):
    """An API error: its HTTP status, a short title and what to do."""

    def __init__(self, status_code: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status_code, self.title, self.detail, self.extra = status_code, title, detail, extra


def problem(status_code: int, title: str, detail: str, **extra: Any):
    body = {"type": "about:blank", "title": title, "status": status_code, "detail": detail}
    response = jsonify({**body, **extra})
    response.status_code = status_code
    response.mimetype = PROBLEM
    if status_code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="spamfilter"'
    if "retry_after" in extra:
        response.headers["Retry-After"] = str(extra["retry_after"])
    return response


def invalid(errors: dict[str, str], detail: str = "") -> Problem:
    """A 422 naming each bad field: ``errors`` is ``[{"field", "message"}]``."""
    listed = [{"field": k, "message": v} for k, v in errors.items()]
    said = detail or "; ".join(f"{k}: {v}" for k, v in errors.items())
    return Problem(422, "Unprocessable Content", said, errors=listed)


def _audited(action: str, domain: str, outcome: str) -> None:
    """A token's change to *domain*, in the audit log as ``token:<name>``."""
    g.audited = True
    audit.record(queue(), actor=f"token:{g.token}", role=g.viewer.role,
                 origin=request.remote_addr or "", action=action, scope="domain",
                 target=domain, outcome=outcome)  # fmt: skip


@bp.errorhandler(Problem)
def _problem(exc: Problem):
    return problem(exc.status_code, exc.title, exc.detail, **exc.extra)


@bp.errorhandler(apischema.BadFields)
def _bad_fields(exc: apischema.BadFields):
    return _problem(invalid(exc.errors))


@bp.errorhandler(Refused)
def _refused(exc: Refused):
    return problem(403, "Forbidden", str(exc))


@bp.errorhandler(404)
def _not_found(exc):
    return problem(404, "Not Found", "There is no such resource.")


#: calls a token may make a minute (the application's ``SFP_API_RATE`` overrides it), and
#: the largest body a call may send
RATE_PER_MINUTE = 300
MAX_BODY = 64 * 1024


class RateWindow:
    """Calls per token in the last minute, shared by the console's threads."""

    def __init__(self) -> None:
        self.calls: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def wait(self, token: str, per_minute: int, now: float) -> float:
        """0 when *token* may call now (the call is counted), else the seconds to wait."""
        with self.lock:
            seen = self.calls.setdefault(token, deque())
            while seen and seen[0] <= now - 60:
                seen.popleft()
            if len(seen) >= per_minute:
                return seen[0] + 60 - now
            seen.append(now)
            return 0.0


def _rate_limited(token: str) -> None:
    window = current_app.extensions.setdefault("spamfilter_api_rate", RateWindow())
    per_minute = int(current_app.config.get("SFP_API_RATE", RATE_PER_MINUTE))
    wait = window.wait(token, per_minute, time.monotonic())
    if wait > 0:
        said = f"at most {per_minute} calls a minute per token; try again in {wait:.0f} s"
        raise Problem(429, "Too Many Requests", said, retry_after=round(wait + 0.5))


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3.1 document of this API (no token needed: it holds nothing of the
    server's)."""
    return jsonify(apischema.openapi(__version__, url_for("api.domains").rsplit("/", 1)[0]))


@bp.before_request
def authenticate():
    """The token's console user, or a 401 problem; a token in the URL is refused; a body
    over :data:`MAX_BODY` and calls over the token's rate are refused."""
    if request.endpoint == "api.openapi_document":
        return
    if (request.content_length or 0) > MAX_BODY:
        raise Problem(413, "Content Too Large", f"a call may send at most {MAX_BODY} bytes")
    if {"token", "access_token"} & set(request.args):
        raise Problem(400, "Bad Request", "Send the token in the Authorization header "
                      "('Authorization: Bearer <token>'), never in the URL.")  # fmt: skip
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise Problem(401, "Unauthorized", "Send a token: 'Authorization: Bearer <token>' "
                      "(spamfilter token create).")  # fmt: skip
    record = tokens.found(queue(), presented.strip())
    if record is None:
        log.warning("api: refused a token from %s", request.remote_addr or "-")
        raise Problem(401, "Unauthorized", "The token is not valid: unknown, revoked or "
                      "expired.")  # fmt: skip
    name = record["subject"] or f"token:{record['name']}"
    _rate_limited(record["name"])
    g.viewer = Viewer(tokens.CONSOLE_ROLE[record["role"]], name)
    g.token = record["name"]


@bp.after_request
def audit_call(response):
    """Every call a token made is in the audit log: a change with what it queued (by the
    view), any other call (a read, a refusal) here, with its answer's status."""
    if "token" in g and not g.get("audited"):
        view = request.view_args or {}
        target = view.get("name") or view.get("target") or view.get("row_id") or ""
        rule = request.url_rule.rule if request.url_rule is not None else request.path
        audit.record(queue(), actor=f"token:{g.token}", role=g.viewer.role,
                     origin=request.remote_addr or "", action=f"api {request.method} {rule}",
                     scope="api", target=str(target),
                     outcome=str(response.status_code))  # fmt: skip
    return response


def domain_doc(row: status.DomainStatus) -> dict[str, Any]:
    """A domain as the API gives it: each vendor's state with its reason and time, the MX
    state, the owner, the server, the suspension."""
    return {
        "domain": row.domain,
        "name": row.unicode,
        "owner": row.owner,
        "server": row.server,
        "vendors": {
            v: {"state": s.state, "detail": s.detail or None, "at": s.at}
            for v, s in row.vendors.items()
        },
        "mx": row.mx,
        "suspended": (
            {"since": row.suspended[0], "reason": row.suspended[1]} if row.suspended else None
        ),
        "last_change": row.last_change or None,
        "api": {k: row.api[k] for k in ("destination", "owner", "added_by", "added_at")}
        if row.api
        else None,
    }


@bp.get("/domains")
def domains():
    """The domains the token's user may see: the dashboard's search (``q``), filters
    (``state``, ``vendor``, ``server``), sort (``sort``, ``order``) and paging (``size``,
    ``page``)."""
    viewer: Viewer = g.viewer
    apischema.loaded(apischema.DomainListQuery(), request.args)
    query = asked(request.args)
    rows = listed(viewer, query)
    shown, page, pages = status.page_of(rows, query.page, query.size)
    return jsonify(
        {
            "domains": [domain_doc(r) for r in shown],
            "total": len(rows),
            "page": page,
            "pages": pages,
            "size": query.size,
            "servers": fleet_servers(),
        }
    )


@bp.get("/domains/<name>")
def domain(name: str):
    viewer: Viewer = g.viewer
    (row,) = rows_for(viewer, [_own_domain(viewer, name)])
    return jsonify(domain_doc(row))


#: the word of each row state in the API (the queue's own)
FINISHED = ("done", "dead", "superseded", "skipped")


def row_doc(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "vendor": row.vendor,
        "event": row.hook,
        "target": row.target,
        "state": row.state,
        "finished": row.state in FINISHED,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "updated_at": row.updated_at,
    }


def _admin_only(viewer: Viewer, what: str) -> None:
    if not viewer.is_admin:
        raise Refused(f"{what} is for the admin (as in the console)")


def _own_domain(viewer: Viewer, name: str) -> str:
    checked = known_domain(viewer, name)
    if checked is None:
        raise Problem(404, "Not Found", f"{name} is not a domain of this panel")
    return checked


#: what a change may do to a domain (POST /domains/{domain}/<change>)
CHANGES = ("protect", "unprotect", "retry", "suspend", "unsuspend")


@bp.post("/domains/<name>/<action>")
def change(name: str, action: str):
    """Protect, unprotect, retry, suspend or unsuspend a domain: ``202 Accepted`` with the
    queue rows once they are committed, and where to follow them."""
    viewer: Viewer = g.viewer
    if action not in CHANGES:
        raise Problem(404, "Not Found", f"{action!r}: use {', '.join(CHANGES)}")
    _admin_only(viewer, action)
    body = apischema.loaded(apischema.ChangeBody(), request.get_json(silent=True))
    wait = apischema.loaded(apischema.WaitQuery(), request.args).get("wait")
    domain_name, owned = _changed_domain(viewer, name, action, body)
    if action == "retry":
        rows = act_on("retry", [domain_name])
    else:
        rows = _queued(action, domain_name, owned, body)
    _audited(f"api {action}", domain_name, f"queued rows {rows}")
    follow = url_for("api.queue_rows", rows=",".join(map(str, rows)))
    finished = _waited(rows, wait)
    if finished is not None:  # ?wait=SECONDS, and every row finished in time
        return jsonify({"rows": rows, "outcomes": finished, "follow": follow})
    response = jsonify({"rows": rows, "follow": follow})
    response.status_code = 202
    response.headers["Location"] = follow
    return response


def _changed_domain(viewer: Viewer, name: str, action: str, body: dict) -> tuple[str, dict | None]:
    """The domain a change is for, and its record when the API owns it.  A domain no panel
    holds is the API's to protect when the call names its destination."""
    destination = body.get("destination")
    checked = known_domain(viewer, name)
    owned = api_domains().get(checked) if checked else None
    if body.get("owner") is not None and destination is None:
        raise invalid({"owner": "give it with destination (an owner is for a domain no panel "
                       "holds)"})  # fmt: skip
    if checked is not None and destination is not None and owned is None:
        raise invalid({"destination": f"{checked} is on the panel, which says where its mail "
                       "goes; leave destination out"})  # fmt: skip
    if checked is not None:
        return checked, owned
    if action != "protect" or destination is None:
        hint = " (to protect a domain no panel holds, give its destination)"
        raise Problem(404, "Not Found", f"{name} is not a domain of this panel" +
                      (hint if action == "protect" else ""))  # fmt: skip
    try:
        domain_name = normalise_domain(name, "domain")
    except InvalidInput as exc:
        raise invalid({"domain": exc.message.split(": ", 1)[-1]}) from None
    return domain_name, None


def _queued(action: str, domain: str, owned: dict | None, body: dict) -> list[int]:
    """Queue *action* for *domain* (committed when this returns): the queue rows."""
    if action == "suspend":
        return queue_events([DomainSuspended(domain=domain, reason=body.get("reason"))])
    if action == "unprotect":
        return act_on("unprotect", [domain])  # a domain the API owned is then no one's
    if action == "unsuspend":
        return queue_events([DomainUnsuspended(domain=domain)])
    vendors = body.get("vendors")
    offered = domain_vendors()
    if vendors is not None:
        unknown = [v for v in vendors if v not in offered]
        if unknown or not vendors:
            raise invalid({"vendors": f"{', '.join(unknown) or 'none given'}: give some of "
                           f"{', '.join(offered) or 'no vendor (none is enabled)'}"})  # fmt: skip
    destination = body.get("destination")
    if destination is not None:  # the API's (again: a vendor then takes the new host)
        destination = normalise_host(destination, "destination")
        owner = body.get("owner")
        queue().api_domain_keep(domain, destination, owner, f"token:{g.token}", time.time())
    elif owned is not None:
        destination = owned["destination"]
    rows = queue_events([DomainCreated(domain=domain, destination=destination)], vendors)
    if vendors is not None:  # a product changed: removed where it is no longer sold
        dropped = [v for v in _holding(domain, offered) if v not in vendors]
        if dropped:
            rows += queue_events([DomainDeleted(domain=domain)], dropped)
    return rows


def _holding(domain: str, vendors: list[str]) -> list[str]:
    """Those of *vendors* at which *domain* is protected or on its way there."""
    (row,) = rows_for(g.viewer, [domain])
    return [v for v in vendors if row.vendors[v].state in ("protected", "pending", "failed")]


def _waited(rows: list[int], wait: float | None) -> list[dict[str, Any]] | None:
    """With ``?wait=SECONDS``: each row once all are finished within that time; None when
    no wait was asked for or the time ran out (the answer is then 202)."""
    if wait is None:
        return None
    deadline = time.monotonic() + wait
    while True:
        found = [queue().get(i) for i in rows]
        if all(r is not None and r.state in FINISHED for r in found):
            return [row_doc(r) for r in found if r is not None]
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


@bp.get("/queue")
def queue_rows():
    """Queue rows: ``rows=1,2,3`` (what a change answered), else the newest (``limit``); the
    admin's only."""
    viewer: Viewer = g.viewer
    _admin_only(viewer, "the queue")
    asked_for = apischema.loaded(apischema.QueueQuery(), request.args)
    if asked_for.get("rows"):
        ids = [int(x) for x in asked_for["rows"].split(",")]
        found = [r for r in (queue().get(i) for i in ids[:500]) if r is not None]
    else:
        found = queue().rows(limit=asked_for.get("limit", 100))
    return jsonify({"rows": [row_doc(r) for r in found]})


@bp.get("/queue/<int:row_id>")
def queue_row(row_id: int):
    viewer: Viewer = g.viewer
    _admin_only(viewer, "the queue")
    row = queue().get(row_id)
    if row is None:
        raise Problem(404, "Not Found", f"there is no queue row {row_id}")
    return jsonify(row_doc(row))


@bp.post("/queue/<int:row_id>/<action>")
def queue_action(row_id: int, action: str):
    """Retry a failed row, or drop a waiting one (the admin's token only)."""
    viewer: Viewer = g.viewer
    _admin_only(viewer, "the queue")
    if action not in QUEUE_ACTIONS:
        raise Problem(404, "Not Found", f"{action!r}: use retry or drop")
    row = queue().get(row_id)
    if row is None:
        raise Problem(404, "Not Found", f"there is no queue row {row_id}")
    ok, said = change_row(row_id, action, f"token:{g.token}", viewer.role, via="api ")
    if not ok:
        raise Problem(409, "Conflict", said)
    found = queue().get(row_id)
    return jsonify({"id": row_id, "done": said, "row": row_doc(found) if found else None})


@bp.get("/domains/<name>/mailboxes")
def mailboxes(name: str):
    """The mailboxes of a domain the token's user may see."""
    domain_name = _own_domain(g.viewer, name)
    return jsonify({"domain": domain_name, "mailboxes": records().mailboxes_of(domain_name)})


class _Forms(HTMLParser):
    """The forms of a rendered fragment that post to *action* (``vendor/form``): each form's
    name and its fields' current values (a checkbox: ``1`` ticked, ``0`` not; a select: the
    chosen option; a password: never)."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.forms: list[dict[str, Any]] = []
        self._fields: dict[str, Any] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._fields = None
            if a.get("action", "").endswith(self.action):
                self._fields = {}
                self.forms.append({"name": a.get("name", ""), "fields": self._fields})
            return
        fields = self._fields
        if fields is None:
            return
        if tag == "option" and self._select is not None:
            if "selected" in a or fields.get(self._select) is None:
                fields[self._select] = a.get("value", "")
            return
        name = a.get("name", "")
        if not name or name == "csrf_token":
            return
        if tag == "input" and a.get("type") == "checkbox":
            fields[name] = "1" if "checked" in a else "0"
        elif tag == "input" and a.get("type") != "password":
            fields.setdefault(name, a.get("value", ""))
        elif tag == "textarea":
            fields[name] = ""
        elif tag == "select":
            self._select = name
            fields[name] = None

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._fields = None
        elif tag == "select":
            self._select = None


def settings_forms(html: str, action: str) -> list[dict[str, Any]]:
    parser = _Forms(action)
    parser.feed(str(html))
    return parser.forms


@bp.route("/settings/<scope>/<target>/<vendor>/<form>", methods=["GET", "POST"])
def settings_form(scope: str, target: str, vendor: str, form: str):
    """A vendor's settings form of a domain, a mailbox (or, with target ``-``, the admin
    page): GET its forms' current values; POST a JSON object of fields to submit it."""
    viewer: Viewer = g.viewer
    if scope not in SCOPES:
        raise Problem(404, "Not Found", f"{scope!r}: use admin, domain or mailbox")
    name = None if scope == "admin" else target
    service = settings()
    try:
        if request.method == "GET":
            _, found = service.fragments(viewer, scope, name, csrf_token="", vendor=vendor)
            forms = [f for frag in found for f in settings_forms(frag.html, f"{vendor}/{form}")]
            if not forms:
                raise Problem(404, "Not Found", f"{vendor} has no {form!r} form here")
            return jsonify({"scope": scope, "target": name, "vendor": vendor, "forms": forms})
        fields = apischema.settings_fields(request.get_json(silent=True))
        _, result = service.submit(viewer, scope, name, vendor, fields)
        g.audited = True  # the settings service wrote the change, field by field
    except InvalidInput as exc:
        raise Problem(404, "Not Found", exc.message) from None
    if result.errors:
        raise invalid(result.errors, result.message)
    if not result.ok:
        raise Problem(409, "Conflict", result.message)
    return jsonify({"ok": True, "message": result.message, "changed": list(result.changed),
                    "redirect": result.redirect})  # fmt: skip


@bp.post("/domains/<name>/login-link")
def login_link(name: str):
    """A one-use link (two minutes) that logs the domain's owner in to the console, on the
    domain's page: for a client area's single sign-on.  The token's user must be allowed to
    see the domain; the owner is the panel account that holds it."""
    viewer: Viewer = g.viewer
    domain_name = _own_domain(viewer, name)
    owner = records().owners().get(domain_name)
    if viewer.role == "user":
        owner = viewer.name  # an account's own domain (checked above)
    if not owner:
        raise Problem(409, "Conflict", f"the panel's records name no owner of {domain_name}")
    page = url_for("settings.page", scope="domain", target=domain_name)
    link = login_token(console().secret_key, Viewer("user", owner), page)
    base = console().runtime.config.console["public_url"] or request.host_url
    _audited("api login-link", domain_name, f"ok: for {owner}")
    url = base.rstrip("/") + "/enter/" + link
    return jsonify({"url": url, "user": owner, "expires_in": LINK_SECONDS})
