"""The domains the viewer may see, with each vendor's state, and the admin's bulk actions on a
selection kept across pages (no JavaScript: the page buttons submit the ticks of the page
being left)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from ... import audit, intake
from ...events import DomainCreated, DomainDeleted
from ...queue import mx_store
from .. import status
from ..access import Refused, Viewer
from ..site import console, log, me, queue, records, servers

bp = Blueprint("domains", __name__)


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def domain_vendors() -> list[str]:
    return console().runtime.handlers("domain_created")


def rows_for(viewer: Viewer) -> list[status.DomainStatus]:
    domains = records().domains_for(viewer)
    mx = {m.domain: m.to_dict() for m in mx_store(console().runtime.config).all()}
    latest = queue().latest(status.DOMAIN_HOOKS)
    held = servers() if console().runtime.config.fleet is not None else None
    suspended = queue().suspensions()
    return status.statuses(domains, domain_vendors(), latest, mx, held, suspended)


@bp.get("/")
def dashboard():
    viewer = me()
    if viewer.role == "mailbox":
        return redirect(url_for("settings.page", scope="mailbox", target=viewer.name))
    state = request.args.get("state", "")
    vendor = request.args.get("vendor", "")
    if state and state not in status.STATES:
        state = ""
    if vendor and vendor not in domain_vendors():
        vendor = ""
    fleet = sorted(set(servers().values())) if console().runtime.config.fleet else []
    server = request.args.get("server", "")
    if server not in fleet:
        server = ""
    rows = status.filtered(rows_for(viewer), state, vendor, server)
    shown, page, pages = status.page_of(rows, _int(request.args.get("page"), 1))
    demo = console().demo
    return render_template(
        "dashboard.html",
        drift=drift_summary() if viewer.is_admin else None,
        rows=shown,
        total=len(rows),
        page=page,
        pages=pages,
        state=state,
        vendor=vendor,
        server=server,
        servers=fleet,
        states=status.STATES,
        domain_vendors=domain_vendors(),
        selected=set(session.get("selected", [])),
        owners=demo.accounts() if demo else [],
    )


@bp.post("/selection")
def selection():
    """Keep the boxes ticked on this page (the selection survives paging), then go to
    another page or apply a bulk action to the whole selection."""
    viewer = me()
    allowed = set(records().domains_for(viewer))
    chosen = set(session.get("selected", []))
    shown = set(request.form.getlist("shown")) & allowed
    ticked = set(request.form.getlist("selected")) & allowed
    chosen = (chosen - shown) | ticked
    action = request.form.get("action", "")
    back = {k: request.form.get(k, "") for k in ("state", "vendor", "server")}
    back = {k: v for k, v in back.items() if v}
    if action == "clear":
        chosen = set()
    elif action in ("protect", "unprotect", "retry"):
        if not viewer.is_admin:
            raise Refused("bulk actions are for the admin")
        targets = sorted(chosen & allowed)
        if action == "unprotect" and targets and request.form.get("confirm") != "yes":
            session["selected"] = targets  # what the confirmation acts on
            return render_template("confirm.html", **unprotect_plan(targets, back))
        done = bulk(action, targets)
        for target in targets:  # one entry a domain: each domain's history shows it
            audit.record(
                queue(),
                actor=viewer.name,
                role=viewer.role,
                origin=request.remote_addr or "",
                action=f"bulk {action}",
                scope="domain",
                target=target,
                outcome=f"{done} ({len(targets)} selected)",
            )
        flash(done, "ok")
        chosen = set()
    session["selected"] = sorted(chosen)
    page = _int(request.form.get("goto") or request.form.get("page"), 1)
    return redirect(url_for("domains.dashboard", page=page, **back))  # type: ignore[arg-type]


def unprotect_plan(domains: list[str], back: dict[str, str]) -> dict:
    """What removing protection from *domains* will do, for the confirmation page."""
    from ...mx.flow import SWITCHED

    runtime = console().runtime
    vendors = runtime.handlers("domain_deleted")
    switched = [s.domain for s in mx_store(runtime.config).all()
                if s.domain in set(domains) and s.state in SWITCHED]  # fmt: skip
    effects = [f"Each domain is removed at {', '.join(vendors) or 'no vendor'}."]
    if switched:
        effects.append(
            f"The MX records of {len(switched)} of them are first put back as recorded before "
            "the switch, so their mail stops going through the filter."
        )
    return {
        "title": f"Remove protection from {len(domains)} domain{'s' * (len(domains) != 1)}?",
        "effects": effects,
        "items": domains,
        "action": url_for("domains.selection"),
        "fields": {"action": "unprotect", "confirm": "yes", **back},
        "button": "Remove protection",
        "cancel": url_for("domains.dashboard", **back),  # type: ignore[arg-type]
    }


def drift_summary() -> str | None:
    """The last drift check's findings in a line (``2 missing, 1 mx_wrong``), or None."""
    from collections import Counter

    from ...drift import last

    found = last(console().runtime.config).get("findings") or []
    if not found:
        return None
    counts = Counter(f["kind"] for f in found)
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


def bulk(action: str, domains: list[str]) -> str:
    """Protect, unprotect or retry the failed deliveries of *domains*; what was done."""
    if not domains:
        return "Nothing is selected."
    if action == "retry":
        targets = {f"domain:{d}" for d in domains}
        dead = [r for r in queue().rows(state="dead", limit=100000) if r.target in targets]
        retried = sum(queue().retry(r.id) for r in dead)
        return f"Retrying {retried} failed deliver{'y' if retried == 1 else 'ies'}."
    kind = DomainCreated if action == "protect" else DomainDeleted
    held = servers() if console().runtime.config.fleet is not None else {}
    by_server: dict[str | None, list[str]] = {}
    for d in domains:  # in the fleet, each on behalf of the server whose panel holds it
        by_server.setdefault(held.get(d), []).append(d)
    rows = 0
    for server, names in by_server.items():
        with queue().on_behalf_of(server):
            queued = intake.enqueue(
                queue(),
                [kind(domain=d) for d in names],
                capabilities=console().runtime.capabilities(),
            )
        rows += sum(len(ids) for _, ids in queued)
    log.info("console: %s %s (%d rows)", action, ", ".join(domains), rows)
    verb = "Protecting" if action == "protect" else "Removing protection from"
    return f"{verb} {len(domains)} domain{'s' if len(domains) != 1 else ''} ({rows} queued)."
