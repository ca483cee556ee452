"""A downgraded account's removal, as a built-in plugin: the ``plan_removal`` step the panel
hook queues for each vendor the account's new plan no longer protects
(:func:`.panels.hook.plan_changed`).  It waits until ``[panel] plan_grace_hours`` have
passed, then asks the panel for the account's plan again: if the plan protects the account
at the vendor by now (an upgrade in between), nothing is removed; otherwise a
``domain_deleted`` is queued there for each of the account's domains, after the MX flow
restored the MX records of those it switched to that vendor."""

from __future__ import annotations

import time
from typing import Any

from . import intake
from .context import Host, VendorContext
from .errors import PanelError, VendorWaiting
from .events import VendorStep
from .hookspecs import hookimpl
from .mx import flow as mx_flow
from .panels.hook import PLAN_STEP
from .plans import protected
from .queue import queue_of


@hookimpl
def step_run(host: Host, vendor: VendorContext, event: VendorStep) -> dict[str, Any] | None:
    if event.step != PLAN_STEP:
        return None
    account, plan, until = event.data["account"], event.data["plan"], event.data["until"]
    left = float(until) - time.time()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(until)))
    if left > 0:
        raise VendorWaiting(
            vendor.name,
            f"{account} moved to plan {plan}: its domains leave {vendor.name} at {when} unless "
            "its plan protects them there again by then",
            retry_within=left,
        )
    adapter = host.panel_adapter
    if adapter is None:
        raise PanelError("no [panel] table: cannot read the account's plan again")
    now = adapter.plan_of(account)
    if protected(host.config.plans, now, [vendor.name]):
        return {"message": f"{account} is on plan {now}, protected at {vendor.name}: kept"}
    domains = adapter.domains_of(account, every=True)
    restored = _restore_mx_first(host, vendor.name, domains)
    if domains:
        with queue_of(host.config) as queue:
            intake.enqueue(
                queue, [("domain_deleted", {"domain": d}) for d in domains], vendors=[vendor.name]
            )
    return {
        "message": f"{account} is on plan {now}, not protected at {vendor.name}: "
        f"{len(domains)} domain(s) queued for removal"
        + (f", their MX restored first ({restored})" if restored else "")
    }


def _restore_mx_first(host: Host, vendor: str, domains: list[str]) -> int:
    """Where *vendor* manages MX, put back each switched domain's recorded MX set before
    its removal is queued, so no mail reaches the filter for a domain it no longer holds
    (the MX flow's restore; a panel that fails leaves the step to be tried again, and
    nothing is removed meanwhile).  How many were restored."""
    if vendor != mx_flow.manager(host.config):
        return 0
    db, done = mx_flow.store(host), 0
    for name in domains:
        known = db.get(name)
        if known is not None and known.state in mx_flow.SWITCHED:
            mx_flow.restore(host, vendor, name)
            done += 1
    return done
