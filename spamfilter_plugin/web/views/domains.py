"""The domains the viewer may see, with each vendor's state, and the admin's bulk actions on a
selection kept across pages (no JavaScript: the page buttons submit the ticks of the page
being left)."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import replace

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ... import audit, intake
from ...events import DomainCreated, DomainDeleted
from ...queue import mx_store
from .. import status
from ..access import Refused, Viewer
from ..site import api_domains, console, known_domain, log, me, queue, records, servers

bp = Blueprint("domains", __name__)


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def domain_vendors() -> list[str]:
    return console().runtime.handlers("domain_created")


def fleet_servers() -> list[str]:
    return sorted(set(servers().values())) if console().runtime.config.fleet else []


def rows_for(viewer: Viewer, domains: list[str] | None = None) -> list[status.DomainStatus]:
    """The status rows of the domains *viewer* may see (of *domains*, when given)."""
    the_records = records()
    if domains is None:
        domains = the_records.domains_for(viewer)
    mx = {m.domain: m.to_dict() for m in mx_store(console().runtime.config).all()}
    latest = queue().latest(status.DOMAIN_HOOKS)
    held = servers() if console().runtime.config.fleet is not None else None
    suspended = queue().suspensions()
    owners = the_records.owners() if viewer.role != "user" else {}
    api = api_domains() if viewer.role == "admin" else {}
    rows = status.statuses(domains, domain_vendors(), latest, mx, held, suspended, owners, api)
    return rows if viewer.role in ("admin", "reseller") else status.for_customer(rows)


def asked(args) -> status.ListQuery:
    """The domain list's search, filters, sort and paging from *args*."""
    return status.ListQuery.read(args, domain_vendors(), fleet_servers())


def listed(viewer: Viewer, query: status.ListQuery) -> list[status.DomainStatus]:
    """Every row of *viewer*'s domains that *query* matches, in its order."""
    return query.apply(rows_for(viewer))


@bp.get("/")
def dashboard():
    viewer = me()
    if viewer.role == "mailbox":
        return redirect(url_for("settings.page", scope="mailbox", target=viewer.name))
    query = asked(request.args)
    rows = listed(viewer, query)
    shown, page, pages = status.page_of(rows, query.page, query.size)
    query = replace(query, page=page)
    demo = console().demo
    fleet = fleet_servers()
    return render_template(
        "dashboard.html",
        drift=drift_summary() if viewer.is_admin else None,
        rows=shown,
        total=len(rows),
        page=page,
        pages=pages,
        query=query,
        sorts=status.SORTS,
        sizes=status.PAGE_SIZES,
        servers=fleet,
        owners_shown=viewer.role != "user" and any(r.owner for r in rows),
        states=status.STATES,
        domain_vendors=domain_vendors(),
        selected=set(session.get("selected", [])),
        owners=demo.accounts() if demo else [],
    )


@bp.get("/domains.csv")
def export():
    """The filtered, sorted list (every page of it) as CSV, for a spreadsheet."""
    viewer = me()
    if viewer.role == "mailbox":
        raise Refused("the domain list is for the panel's users")
    rows = listed(viewer, asked(request.args))
    vendors = domain_vendors()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["domain", "name", "owner", "server", *vendors, "mx", "last event", "last change (UTC)"]
    )
    for row in rows:
        last = row.last
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(last.updated_at)) if last else ""
        cells = [
            row.domain,
            row.unicode,
            row.owner or "",
            row.server or "",
            *(_state_text(row.vendors[v]) for v in vendors),
            (row.mx or {}).get("state", ""),
            f"{status.event_words(last)} at {last.vendor}" if last else "",
            when,
        ]
        writer.writerow([_cell(c) for c in cells])
    name = time.strftime("domains-%Y%m%d-%H%M.csv", time.gmtime())
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _state_text(state: status.VendorState) -> str:
    return state.state + (f": {state.detail}" if state.detail else "")


def _cell(text: str) -> str:
    """A cell a spreadsheet shows as text: one that starts like a formula (a vendor's
    message could) is prefixed with an apostrophe."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


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
    query = asked(request.form)
    back = query.params(page=1)
    if action == "clear":
        chosen = set()
    elif action == "select_all":  # every domain the search and filters match, all pages
        chosen |= {row.domain for row in listed(viewer, query)} & allowed
    elif action in ("protect", "unprotect", "retry"):
        if not viewer.is_admin:
            raise Refused("bulk actions are for the admin")
        targets = sorted(chosen & allowed)
        if action == "unprotect" and targets and request.form.get("confirm") != "yes":
            session["selected"] = targets  # what the confirmation acts on
            return render_template("confirm.html", **unprotect_plan(targets, back))
        done = bulk(action, targets)
        _audited(viewer, f"bulk {action}", targets, f"{done} ({len(targets)} selected)")
        flash(done, "ok")
        chosen = set()
    session["selected"] = sorted(chosen)
    page = _int(request.form.get("goto") or request.form.get("page"), 1)
    return redirect(url_for("domains.dashboard", **query.params(page=page)))


@bp.post("/domain/<name>/<action>")
def act(name: str, action: str):
    """Protect, unprotect (after a confirmation) or retry one domain, from its page."""
    viewer = me()
    if action not in ("protect", "unprotect", "retry"):
        abort(404)
    if not viewer.is_admin:
        raise Refused("protecting and unprotecting are for the admin")
    domain = known_domain(viewer, name)
    if domain is None:
        abort(404)
    here = url_for("settings.page", scope="domain", target=domain)
    if action == "unprotect" and request.form.get("confirm") != "yes":
        plan = unprotect_plan([domain], {})
        plan.update(
            action=url_for("domains.act", name=domain, action="unprotect"),
            fields={"confirm": "yes"},
            cancel=here,
        )
        return render_template("confirm.html", **plan)
    done = bulk(action, [domain])
    _audited(viewer, action, [domain], done)
    flash(done, "ok")
    return redirect(here)


def _audited(viewer: Viewer, action: str, targets: list[str], outcome: str) -> None:
    for target in targets:  # one entry a domain: each domain's history shows it
        audit.record(
            queue(),
            actor=viewer.name,
            role=viewer.role,
            origin=request.remote_addr or "",
            action=action,
            scope="domain",
            target=target,
            outcome=outcome,
        )


def summary(domain: str) -> dict:
    """What a domain's page opens with: its row (each vendor's state with its reason and
    time, the MX state, the owner, the server) and what the viewer may do."""
    viewer = me()
    (row,) = rows_for(viewer, [domain])
    failed = any(v.state == "failed" for v in row.vendors.values())
    return {"row": row, "actions": viewer.is_admin, "failed": failed}


def unprotect_plan(domains: list[str], back: dict) -> dict:
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
        "cancel": url_for("domains.dashboard", **back),
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
    rows = act_on(action, domains)
    if action == "retry":
        return f"Retrying {len(rows)} failed deliver{'y' if len(rows) == 1 else 'ies'}."
    verb = "Protecting" if action == "protect" else "Removing protection from"
    count = len(domains)
    return f"{verb} {count} domain{'s' if count != 1 else ''} ({len(rows)} queued)."


def act_on(action: str, domains: list[str]) -> list[int]:
    """Queue *action* (``protect``, ``unprotect`` or ``retry``) for *domains*, committed when
    this returns: the queue rows that carry it (for a retry, the failed rows retried)."""
    if action == "retry":
        targets = {f"domain:{d}" for d in domains}
        dead = [r for r in queue().rows(state="dead", limit=100000) if r.target in targets]
        return [r.id for r in dead if queue().retry(r.id)]
    kind = DomainCreated if action == "protect" else DomainDeleted
    owned = api_domains()  # protected again: to the destination the API gave
    rows = queue_events(
        [DomainCreated(domain=d, destination=owned[d]["destination"])
         if kind is DomainCreated and d in owned else kind(domain=d) for d in domains]
    )  # fmt: skip
    if kind is DomainDeleted:  # a domain the API owned is no one's now: nothing keeps it
        for d in set(domains) & set(owned):
            queue().api_domain_drop(d)
    log.info("console: %s %s (%d rows)", action, ", ".join(domains), len(rows))
    return rows


def queue_events(events: list, vendors: list[str] | None = None) -> list[int]:
    """Queue domain *events* (for every vendor that takes each, or for *vendors*), committed
    when this returns; in the fleet, each on behalf of the server whose panel holds its
    domain.  The queue rows that carry them."""
    held = servers() if console().runtime.config.fleet is not None else {}
    by_server: dict[str | None, list] = {}
    for event in events:
        by_server.setdefault(held.get(event.domain.name), []).append(event)
    rows: list[int] = []
    for server, batch in by_server.items():
        with queue().on_behalf_of(server):
            if vendors is None:
                queued = intake.enqueue(
                    queue(), batch, capabilities=console().runtime.capabilities()
                )
            else:
                queued = intake.enqueue(queue(), batch, vendors=vendors)
        rows += [i for _, ids in queued for i in ids.values()]
    return rows
