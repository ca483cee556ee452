"""What every request of the console shares: the console, the request's queue, the panel's
records, who is asking, and the answer to a refusal.  The views (:mod:`.views`) use these;
:func:`~.app.create_app` puts the :class:`Site` in the application."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

from flask import current_app, g, render_template, request

from ..queue import Queue, queue_of
from .access import LinkRedeemer, Records, Refused, Viewer
from .console import Console
from .sessions import SessionKeeper
from .settings import SettingsService

log = logging.getLogger("spamfilter_plugin.web")


@dataclass
class Site:
    """The console, its login links and its sessions."""

    console: Console
    links: LinkRedeemer
    keeper: SessionKeeper


def site() -> Site:
    return current_app.extensions["spamfilter"]


def console() -> Console:
    return site().console


def queue() -> Queue:
    """The queue, opened once per request (closed by :func:`close_queue`)."""
    if "queue" not in g:
        g.queue = queue_of(console().runtime.config)
    return g.queue


def close_queue(_exc: BaseException | None = None) -> None:
    opened = g.pop("queue", None)
    if opened is not None:
        opened.close()


def records() -> Records:
    """The domains and mailboxes there are, as the panel's records (or the queue) give them;
    made once per request, so the panel's records are read once (a Plesk inventory is a
    command)."""
    if "records" not in g:
        fleet = console().runtime.config.fleet
        g.records = Records(
            console().adapter,
            queue().targets,
            servers if fleet is not None else None,
            api=api_domains,
        )
    return g.records


def api_domains() -> dict[str, dict]:
    """The domains the API owns (no panel holds them), read once per request."""
    if "api_domains" not in g:
        g.api_domains = queue().api_domains()
    return g.api_domains


def known_domain(viewer: Viewer, name: str) -> str | None:
    """*name* normalised when *viewer* may see it (Refused otherwise) and the panel has it;
    None when it has not (an admin may ask for any name, but only one there is exists)."""
    checked = records().check(viewer, "domain", name)
    return checked if checked is not None and checked in records().all_domains() else None


def servers() -> dict[str, str]:
    """In fleet mode: the server whose panel holds each domain (this server's own panel
    first, then every server's published list), read once per request."""
    if "servers" not in g:
        fleet = console().runtime.config.fleet
        assert fleet is not None  # asked in fleet mode only
        domains, _ = queue().fleet_inventory()
        held = {d: server for d, (server, _) in domains.items()}
        adapter = console().adapter
        own = adapter.all_domains() if adapter is not None else None
        held.update(dict.fromkeys(own or (), fleet.server))
        g.servers = held
    return g.servers


def settings() -> SettingsService:
    return SettingsService(
        console().runtime,
        records(),
        queue().suspensions,
        audit=queue(),
        origin=request.remote_addr or "",
    )


def viewer() -> Viewer | None:
    """Who is asking (None before login); set from the session before each request."""
    return g.get("viewer")


def me() -> Viewer:
    """Who is asking, on a page that needs a login (the login check ran before it)."""
    who = viewer()
    if who is None:  # the before-request check redirects first; this is a bug
        raise Refused("log in first")
    return who


def admin_only() -> None:
    if not me().is_admin:
        log.warning("refused: %s asked for %s", viewer(), request.path)
        raise Refused("this page is for the admin")


def page_error(code: int, message: str):
    return render_template("error.html", code=code, message=message), code


def console_css() -> str:
    """The console's own stylesheet (beside the fragments' shared one)."""
    return resources.files(__package__).joinpath("console.css").read_text("utf-8")
