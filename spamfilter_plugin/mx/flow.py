"""Switching a domain's MX to the vendor that manages MX, and back, as queued steps.

After that vendor accepts a domain (``domain_created`` done), :func:`follow_up` queues
``mx_check``; each step queues the next when it is done, and each is retried like any
delivery when the panel or DNS fails:

1. ``mx_check``: a domain whose mail the panel sends elsewhere ("remote mail") is
   ``skipped`` with the panel's reason.  Otherwise the destination (the domain's, else
   ``[general] mail_host``) must accept ``RCPT TO:<postmaster@domain>``; a refusal or no
   answer leaves MX alone and marks the domain ``destination refused`` with the reply.
2. ``mx_record``: the current MX set goes into the MX state database (a retry keeps what
   the first attempt recorded; the vendor's own hosts are never recorded).
3. ``mx_switch``: the zone's MX set becomes exactly the vendor's, through the panel.
4. ``mx_verify``: DNS is asked (``[mx] nameservers``, the panel's own server by default)
   until it gives exactly the vendor's set (``verified``) or ``[mx] verify_hours`` pass
   (``wrong``, with what DNS gave); in between the domain is ``pending``.

When the vendor deletes a domain that was switched, ``mx_restore`` puts back the recorded
set (see :func:`~.plan.restore`); a domain whose zone left the panel needs nothing
(``gone``).  ``spamfilter mx restore`` runs the same restore at once (before uninstalling).
"""

from __future__ import annotations

import datetime as dt
import socket
import time
from typing import Any

from .. import intake
from ..config.schema import mx_managers
from ..errors import PanelError, VendorRejected, VendorWaiting
from ..events import Domain, VendorStep
from ..queue import mx_store, queue_of
from ..store.mx import MxStore, shown
from . import plan
from .lookup import lookup, mx_set
from .probe import probe

STEPS = ("mx_check", "mx_record", "mx_switch", "mx_verify", "mx_restore")
#: the states after which a domain's MX points (or may point) at the vendor
SWITCHED = ("switching", "pending", "verified", "wrong")


def manager(config) -> str | None:
    """The vendor that manages MX records (``manage_mx``), or None."""
    names = mx_managers(config.vendors)
    return names[0] if names else None


def vendor_mx(table: dict[str, Any]):
    return mx_set((h["priority"], h["host"]) for h in table.get("mx", []))


def store(runtime) -> MxStore:
    return mx_store(runtime.config)


def follow_up(runtime, vendor: str, hook: str, event) -> list[VendorStep]:
    """The MX step to queue after *vendor* handled *event* with success."""
    domain = getattr(event, "domain", None)
    if vendor != manager(runtime.config) or not isinstance(domain, Domain):
        return []
    name = domain.name
    if hook == "domain_created":
        store(runtime).put(name, vendor, state="queued", detail="destination check queued")
        data = {"destination": event.destination} if getattr(event, "destination", None) else {}
        return [VendorStep(domain=name, step="mx_check", data=data)]
    if hook == "domain_deleted":
        known = store(runtime).get(name)
        if known is not None and known.state in SWITCHED:
            return [VendorStep(domain=name, step="mx_restore", data={})]
    return []


def _zones(runtime, vendor: str):
    adapter = runtime.panel_adapter
    if adapter is None:
        raise VendorRejected(
            vendor,
            "MX records are changed through the panel, and the config has no [panel] table; "
            "add one (kind = cpanel, directadmin, plesk or virtualmin) or set manage_mx = false",
        )
    return adapter.dns()


def run(runtime, ctx, event: VendorStep) -> dict[str, Any]:
    """Carry out one MX step for the vendor *ctx*; the result to record (with the next
    step, if any), or VendorWaiting while verification waits for DNS."""
    step = {
        "mx_check": _check,
        "mx_record": _record,
        "mx_switch": _switch,
        "mx_verify": _verify,
        "mx_restore": _restore,
    }[event.step]
    name = event.domain.name
    try:
        return step(runtime, ctx, name, event.data)
    except plan.EmptyZone as exc:
        store(runtime).put(name, ctx.name, detail=str(exc))
        raise VendorRejected(ctx.name, str(exc)) from None
    except PanelError as exc:  # a surprise: say where the zone was left, then fail as usual
        _stopped(runtime, ctx.name, name, exc)
        raise


def _stopped(runtime, vendor: str, name: str, exc: PanelError) -> None:
    """Record what the zone holds after a change stopped half-way (when it can be read)."""
    db = store(runtime)
    if db.get(name) is None:
        return
    try:
        seen = list(_zones(runtime, vendor).mx(name))
    except (PanelError, VendorRejected):
        seen = None
    fields: dict[str, Any] = {"detail": f"stopped: {exc}"}
    if seen is not None:
        fields["seen"] = seen
    db.put(name, vendor, **fields)


def _next(name: str, step: str, message: str, **data: Any) -> dict[str, Any]:
    return {"message": message, "steps": [VendorStep(domain=name, step=step, data=data)]}


def _check(runtime, ctx, name: str, data: dict) -> dict[str, Any]:
    db, zones = store(runtime), _zones(runtime, ctx.name)
    reason = zones.remote_mail(name)
    if reason:
        db.put(name, ctx.name, state="skipped", detail=f"remote mail: {reason}")
        return {"message": f"{name}: MX left alone: {reason}"}
    destination = data.get("destination") or runtime.config.general.mail_host
    if not destination:
        raise VendorRejected(
            ctx.name,
            f"no destination to check for {name}: set [general] mail_host to the host that "
            "receives this server's mail",
        )
    mx = runtime.config.mx
    answer = probe(
        destination,
        name,
        port=mx["smtp_port"],
        timeout=mx["smtp_timeout"],
        helo_name=mx["helo_name"] or socket.getfqdn(),
    )
    if not answer.accepted:
        db.put(name, ctx.name, state="destination refused", detail=str(answer))
        return {"message": f"{name}: MX left alone: destination refused: {answer}"}
    db.put(name, ctx.name, state="queued", detail=str(answer))
    return _next(name, "mx_record", f"{name}: {answer}")


def _record(runtime, ctx, name: str, data: dict) -> dict[str, Any]:
    db, zones = store(runtime), _zones(runtime, ctx.name)
    known = db.get(name)
    if known is None or known.recorded is None or known.state not in SWITCHED:
        hosts = {h for _, h in vendor_mx(ctx.config)}
        current = [r for r in zones.mx(name) if r[1] not in hosts]
        db.put(name, ctx.name, state="switching", recorded=current, detail="MX set recorded")
    else:
        current = known.recorded
    return _next(name, "mx_switch", f"{name}: recorded MX {shown(current)}")


def _switch(runtime, ctx, name: str, data: dict) -> dict[str, Any]:
    db, zones = store(runtime), _zones(runtime, ctx.name)
    wanted = vendor_mx(ctx.config)
    change = plan.switch(zones.mx(name), wanted)
    after = zones.change_mx(name, change.remove, change.add)
    now = time.time()
    until = now + runtime.config.mx["verify_hours"] * 3600
    db.put(name, ctx.name, state="pending", switched_at=now, detail=f"switched to {shown(after)}")
    return _next(name, "mx_verify", f"{name}: MX switched to {shown(after)}", until=until)


def _verify(runtime, ctx, name: str, data: dict) -> dict[str, Any]:
    db, mx = store(runtime), runtime.config.mx
    wanted = vendor_mx(ctx.config)
    answer = lookup(
        name, nameservers=mx["nameservers"], port=mx["dns_port"], timeout=mx["dns_timeout"]
    )
    now, until = time.time(), float(data.get("until", 0))
    seen = list(answer.records) if answer.status == "found" else []
    if answer.matches(wanted):
        db.put(name, ctx.name, state="verified", seen=seen, checked_at=now, detail="")
        return {"message": f"{name}: MX verified by lookup ({answer.describe()})"}
    detail = f"DNS gives {answer.describe()}; expected {shown(wanted)}"
    if now >= until:
        db.put(name, ctx.name, state="wrong", seen=seen, checked_at=now, detail=detail)
        return {"message": f"{name}: MX is wrong: {detail}"}
    db.put(name, ctx.name, state="pending", seen=seen, checked_at=now, detail=detail)
    stamp = dt.datetime.fromtimestamp(until, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    raise VendorWaiting(
        ctx.name,
        f"{name}: {detail}; asked again with backoff until {stamp}",
        retry_within=until - now,
    )


def recheck(runtime, name: str, vendor: str) -> str | None:
    """Look again at a verified domain's MX: None while DNS still gives the vendor's set (the
    time of the check is kept); else why it is wrong now (the domain becomes ``wrong``).  A
    lookup that gets no answer says nothing (None, nothing changed)."""
    ctx = runtime.contexts.get(vendor)
    if ctx is None:
        return None
    mx = runtime.config.mx
    answer = lookup(
        name, nameservers=mx["nameservers"], port=mx["dns_port"], timeout=mx["dns_timeout"]
    )
    if answer.status not in ("found", "none"):
        return None
    wanted, now = vendor_mx(ctx.config), time.time()
    seen = list(answer.records) if answer.status == "found" else []
    db = store(runtime)
    if answer.matches(wanted):
        db.put(name, vendor, state="verified", seen=seen, checked_at=now)
        return None
    detail = f"DNS gives {answer.describe()} since it was verified; expected {shown(wanted)}"
    db.put(name, vendor, state="wrong", seen=seen, checked_at=now, detail=detail)
    return detail


def _restore(runtime, ctx, name: str, data: dict) -> dict[str, Any]:
    return {"message": restore(runtime, ctx.name, name)}


def restore(runtime, vendor: str, name: str, *, dry_run: bool = False) -> str:
    """Put back what was recorded for *name* (see :func:`~.plan.restore`); what was done.
    PanelError / EmptyZone when the panel cannot or the zone would end without MX."""
    db, zones = store(runtime), _zones(runtime, vendor)
    known = db.get(name)
    if not zones.exists(name):
        if known is None:  # never managed here: nothing to record either
            return f"{name}: not on the panel, and its MX was never managed; nothing to restore"
        if not dry_run:
            db.put(name, vendor, state="gone", detail="the domain and its zone left the panel")
        return f"{name}: the domain left the panel with its zone; nothing to restore"
    table = runtime.config.vendors.get(vendor, {})
    recorded = known.recorded if known else None
    change = plan.restore(
        zones.mx(name), recorded or (), vendor_mx(table), runtime.config.general.mail_host
    )
    if dry_run:
        removed = shown(change.remove) if change.remove else "nothing"
        added = shown(change.add) if change.add else "nothing"
        return f"{name}: would remove {removed}, add {added}; ends with {shown(change.result)}"
    after = zones.change_mx(name, change.remove, change.add)
    db.put(name, vendor, state="restored", seen=list(after), detail=f"restored {shown(after)}")
    return f"{name}: MX restored to {shown(after)}"


def queue_switch(runtime, name: str, destination: str | None = None) -> list[int]:
    """Queue the switch of *name* from its first step (``spamfilter mx switch``)."""
    vendor = manager(runtime.config)
    if vendor is None:
        raise VendorRejected(
            "mx", "no vendor manages MX records: give one gateway vendor mx = [...] in its table"
        )
    store(runtime).put(name, vendor, state="queued", detail="switch queued by hand")
    data = {"destination": destination} if destination else {}
    step = VendorStep(domain=Domain(name), step="mx_check", data=data)
    with queue_of(runtime.config) as queue:
        ((_, rows),) = intake.enqueue(queue, [step], vendors=[vendor])
    return list(rows.values())
