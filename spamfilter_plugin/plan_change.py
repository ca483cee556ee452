"""A downgraded account's removal, as a built-in plugin: the ``plan_removal`` step the panel
hook queues for each vendor the account's new plan no longer protects
(:func:`.panels.hook.plan_changed`).  It waits until ``[panel] plan_grace_hours`` have
passed, then asks the panel for the account's plan again: if the plan protects the account
at the vendor by now (an upgrade in between), nothing is removed; otherwise a
``domain_deleted`` is queued there for each of the account's domains."""

from __future__ import annotations

import time
from typing import Any

from . import intake
from .context import Host, VendorContext
from .errors import PanelError, VendorWaiting
from .events import VendorStep
from .hookspecs import hookimpl
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
    if domains:
        with queue_of(host.config) as queue:
            intake.enqueue(
                queue, [("domain_deleted", {"domain": d}) for d in domains], vendors=[vendor.name]
            )
    return {
        "message": f"{account} is on plan {now}, not protected at {vendor.name}: "
        f"{len(domains)} domain(s) queued for removal"
    }
