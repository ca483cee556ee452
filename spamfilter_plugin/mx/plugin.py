"""The MX flow as a built-in plugin: it queues the destination check after the managing
vendor accepts a domain (and the restore after it deletes one), and carries out the
``mx_*`` steps (see :mod:`.flow`)."""

from __future__ import annotations

from typing import Any

from ..context import Host, VendorContext
from ..events import Event, VendorStep
from ..hookspecs import hookimpl
from . import flow


@hookimpl
def delivery_succeeded(
    host: Host, vendor: VendorContext, hook: str, event: Event
) -> list[VendorStep] | None:
    return flow.follow_up(host, vendor.name, hook, event) or None


@hookimpl
def step_run(host: Host, vendor: VendorContext, event: VendorStep) -> dict[str, Any] | None:
    if event.step not in flow.STEPS:
        return None
    return flow.run(host, vendor, event)
