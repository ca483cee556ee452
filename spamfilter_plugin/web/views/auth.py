"""Logging in (the console's own admin by password, a panel user by a login link) and out;
and the stylesheet, which needs no login."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, session, url_for

from ... import templating
from ..access import Viewer, safe_next
from ..sessions import password_stamp
from ..site import console, console_css, log, queue, site, viewer

bp = Blueprint("auth", __name__)

#: the endpoints a visitor reaches without a session
OPEN = ("auth.stylesheet", "auth.login", "auth.enter", "auth.enter_confirm", "metrics.scrape")


def start_session(who: Viewer, stamp: str) -> None:
    """A new server-side session for *who* (the old one of this browser ends)."""
    keeper = site().keeper
    keeper.end(queue(), session.get("sid"))
    session.clear()
    session["sid"] = keeper.open(queue(), who, stamp)
    g.viewer = who


@bp.get("/style.css")
def stylesheet():
    body = templating.stylesheet() + "\n" + console_css()
    return body, 200, {"Content-Type": "text/css; charset=utf-8", "Cache-Control": "max-age=300"}


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_path = safe_next(request.values.get("next", "/"))
    if request.method == "GET":
        return render_template("login.html", message="", next=next_path)
    the = console()
    who = request.remote_addr or "-"
    username = request.form.get("username", "")
    # tries for the console's account are counted together, whatever their address
    account = username if username == the.username else "?"
    wait = the.throttle.begin(who, account)
    if wait > 0:
        message = (
            f"Too many failed logins; try again in {wait:.0f} seconds. On the server, "
            "'spamfilter ui link' makes a link that logs you in without the password."
        )
        log.warning("console login refused (throttled) from %s", who)
        return render_template("login.html", message=message, next=next_path), 429
    if the.check_password(username, request.form.get("password", "")):
        the.throttle.succeeded(who, account)
        start_session(Viewer("admin", the.username), password_stamp(the.password_hash))
        log.info("console login: %s from %s", the.username, who)
        return redirect(next_path)
    the.throttle.failed()
    log.warning("console login failed from %s", who)
    message = "The user name or the password is wrong."
    return render_template("login.html", message=message, next=next_path), 401


@bp.get("/enter/<token>")
def enter(token: str):
    other, current = site().links.peek(token).viewer, viewer()
    if current is not None and current != other:  # ask before replacing this session
        return render_template("switch.html", current=current, other=other, token=token)
    return enter_confirm(token)


@bp.post("/enter/<token>")
def enter_confirm(token: str):
    link = site().links.redeem(token)
    stamp = password_stamp(console().password_hash) if link.console else "panel"
    start_session(link.viewer, stamp)
    log.info("%s opened the console with a login link", link.viewer)
    return redirect(link.next_path)


@bp.post("/logout")
def logout():
    site().keeper.end(queue(), session.get("sid"))
    session.clear()
    g.viewer = None
    return redirect(url_for("auth.login"))
