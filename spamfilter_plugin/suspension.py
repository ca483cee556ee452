"""A suspended account at a vendor: the rule every vendor's ``domain_suspended`` and
``domain_unsuspended`` hooks follow, once.

A panel suspends an account for an unpaid invoice or an expired subscription, and lifts the
suspension days later.  Removing the domain at an inbound filter while its MX points there
would bounce every message and lose the vendor's lists, so a suspension never removes.
Each vendor's ``on_suspend`` key chooses:

* ``keep`` (the default): nothing changes at the vendor; the suspension is still queued
  and delivered as a no-op, so the queue, the console and ``sync`` see it;
* ``bypass``: the vendor stops filtering the domain and goes on relaying its mail, where its
  API can.  What was there before is remembered (the vendor's state, per domain), and the
  unsuspension puts back exactly that: a domain whose filtering was off before stays off.

Both are safe to deliver twice: a repeated suspension keeps what the first one remembered,
and an unsuspension forgets the memory only after the vendor has its filtering back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

KEEP, BYPASS = "keep", "bypass"

#: the key of the vendor's state under which each suspended domain's prior state is kept
STATE_KEY = "suspended"


def policy(vendor) -> str:
    """The vendor's ``on_suspend`` (``keep`` when its table has none)."""
    return vendor.config.get("on_suspend", KEEP)


def suspended(
    vendor,
    event,
    *,
    read: Callable[[], dict[str, Any] | None] | None = None,
    bypass: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Carry out *event* (a :class:`~.events.DomainSuspended`) at *vendor*.

    :param read: what the vendor's filtering of the domain is now, as a JSON-ready dict
        (what :func:`unsuspended` gives back to *restore*, and what *bypass* finds in the
        vendor's state under :data:`STATE_KEY`); None when the vendor holds nothing of the
        domain (nothing to bypass).
    :param bypass: stop filtering the domain, mail still relayed.

    A vendor whose API cannot bypass its filter passes neither (its schema takes only
    ``on_suspend = "keep"``: :func:`keep_only`).
    """
    name = event.domain.name
    why = f" ({event.reason})" if event.reason else ""
    if policy(vendor) != BYPASS or read is None or bypass is None:
        return {"message": f"{name} suspended{why}; filtering goes on (on_suspend = keep)"}
    if name not in vendor.state.read().get(STATE_KEY, {}):
        before = read()
        if before is None:
            held = f"{vendor.name} holds nothing of it"
            return {"message": f"{name} suspended{why}; nothing to bypass: {held}"}
        with vendor.state.editing() as state:
            state.setdefault(STATE_KEY, {}).setdefault(name, before)
    bypass()
    return {"message": f"{name} suspended{why}; mail is relayed unfiltered (on_suspend = bypass)"}


def unsuspended(
    vendor, event, *, restore: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Carry out *event* (a :class:`~.events.DomainUnsuspended`) at *vendor*: *restore* what
    its suspension remembered, whatever ``on_suspend`` says now."""
    name = event.domain.name
    before = vendor.state.read().get(STATE_KEY, {}).get(name)
    if before is None or restore is None:
        return {"message": f"{name} unsuspended; its suspension changed nothing here"}
    restore(before)
    with vendor.state.editing() as state:
        state.get(STATE_KEY, {}).pop(name, None)
    return {"message": f"{name} unsuspended; its filtering is as it was before"}


def keep_only(vendor_label: str, why: str):
    """The ``on_suspend`` field of a vendor whose API cannot bypass its filter: only
    ``keep``, and the refusal of ``bypass`` says why."""
    from marshmallow import fields, validate

    return fields.String(
        load_default=KEEP,
        validate=validate.OneOf(
            (KEEP,),
            error=f"{vendor_label} can only keep filtering a suspended domain ({why}); "
            "set it to keep or leave it out (got {input})",
        ),
    )


def hookimpls(
    *,
    read: Callable[[Any, str], dict[str, Any] | None] | None = None,
    bypass: Callable[[Any, str], None] | None = None,
    restore: Callable[[Any, str, dict[str, Any]], None] | None = None,
):
    """A vendor's ``domain_suspended`` and ``domain_unsuspended`` hookimpls, from its own
    calls, each given the vendor's context and the domain's name: *read* what its filtering
    is, *bypass* it, *restore* what *read* gave.  Without them, the vendor only keeps::

        domain_suspended, domain_unsuspended = suspension.hookimpls(read=..., ...)
    """
    from .hookspecs import hookimpl

    @hookimpl
    def domain_suspended(vendor, event):
        name = event.domain.name
        return suspended(
            vendor,
            event,
            read=(lambda: read(vendor, name)) if read else None,
            bypass=(lambda: bypass(vendor, name)) if bypass else None,
        )

    @hookimpl
    def domain_unsuspended(vendor, event):
        name = event.domain.name
        return unsuspended(
            vendor, event, restore=(lambda was: restore(vendor, name, was)) if restore else None
        )

    return domain_suspended, domain_unsuspended
