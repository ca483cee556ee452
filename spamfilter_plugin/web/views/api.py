"""The JSON API under ``/api/v1``, for scripts and billing systems (docs/api.md).

A call carries a token in ``Authorization: Bearer`` (never in the URL; a console cookie
authenticates nothing here, and the console's CSRF check does not apply).  The token stands
for a console user (:data:`~...tokens.CONSOLE_ROLE`): what it may see is decided by the
console's own rules (:class:`~..access.Records`), and the rows are the dashboard's
(:mod:`.domains`).  Errors are RFC 9457 ``application/problem+json``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from ... import tokens
from .. import status
from ..access import Refused, Viewer
from ..site import log, queue, records
from .domains import asked, fleet_servers, listed, rows_for

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
    return response


@bp.errorhandler(Problem)
def _problem(exc: Problem):
    return problem(exc.status_code, exc.title, exc.detail, **exc.extra)


@bp.errorhandler(Refused)
def _refused(exc: Refused):
    return problem(403, "Forbidden", str(exc))


@bp.errorhandler(404)
def _not_found(exc):
    return problem(404, "Not Found", "There is no such resource.")


@bp.before_request
def authenticate():
    """The token's console user, or a 401 problem; a token in the URL is refused."""
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
    g.viewer = Viewer(tokens.CONSOLE_ROLE[record["role"]], name)
    g.token = record["name"]


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
    }


@bp.get("/domains")
def domains():
    """The domains the token's user may see: the dashboard's search (``q``), filters
    (``state``, ``vendor``, ``server``), sort (``sort``, ``order``) and paging (``size``,
    ``page``)."""
    viewer: Viewer = g.viewer
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
    checked = records().check(viewer, "domain", name)
    if checked is None or (viewer.is_admin and checked not in records().all_domains()):
        raise Problem(404, "Not Found", f"{name} is not a domain of this panel")
    (row,) = rows_for(viewer, [checked])
    return jsonify(domain_doc(row))
