"""``/metrics``: the operations metrics in Prometheus' text format (:mod:`...metrics`).

A scraper is not a console user: it has no session.  With ``[console] metrics_token`` set it
must send ``Authorization: Bearer <token>``; without one, only a scrape from this machine
(loopback) is answered."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, request

from ...redaction import reveal
from ..site import console, queue

bp = Blueprint("metrics", __name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _refused(status: int, why: str) -> Response:
    answer = Response(why + "\n", status=status, content_type="text/plain; charset=utf-8")
    if status == 401:
        answer.headers["WWW-Authenticate"] = 'Bearer realm="spamfilter metrics"'
    return answer


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@bp.get("/metrics")
def scrape():
    token = console().runtime.config.console.get("metrics_token")
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        expected = str(reveal(token)).encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            return _refused(401, "a bearer token is required: [console] metrics_token")
    elif not _loopback(request.remote_addr):
        return _refused(403, "set [console] metrics_token to scrape from another machine")
    from ...metrics import exposition

    return Response(exposition(console().runtime, queue()), content_type=CONTENT_TYPE)
