"""Domain ownership proved by a TXT record, for any vendor that asks for one.

The vendor hands over the record it wants and a ``confirm(domain) -> bool`` call; this
module asks the panel to publish the record, confirms once at once and, while the record
is not visible, queues the :data:`STEP` step, which confirms again with the worker's
backoff (:class:`~spamfilter_plugin.errors.VendorWaiting`) until the record is seen or the
time allowed has passed; the domain is then left "unverified" with its record shown.

What is known of each domain is kept in the vendor's state file (``state-<vendor>.json``,
key ``domains``): ``state`` (``pending``, ``verified`` or ``unverified``), ``record``
(type, name, value), ``published`` (the panel's answer), ``until``, ``checks`` and
``checked`` (Unix times), for the domain page and ``spamfilter queue show``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from .errors import VendorWaiting
from .events import Domain, VendorStep

#: the name of the queued confirmation step
STEP = "confirm_txt"


def known(vendor, name: str) -> dict[str, Any]:
    """What is known of *name*'s verification (empty when nothing is)."""
    return dict(vendor.state.read().get("domains", {}).get(name) or {})


def note(vendor, name: str, **changes: Any) -> None:
    """Record *changes* for *name* (under the state file's lock)."""
    with vendor.state.editing() as state:
        state.setdefault("domains", {}).setdefault(name, {}).update(changes, updated=time.time())


def forget(vendor, name: str) -> None:
    with vendor.state.editing() as state:
        state.setdefault("domains", {}).pop(name, None)


def record(name: str, value: str) -> dict[str, str]:
    """A TXT record at *name* (its owner name, without the final dot)."""
    return {"type": "TXT", "name": name, "value": value}


def shown(rec: dict[str, str]) -> str:
    """The record as a zone file line: ``example.org. TXT "value"``."""
    return f'{rec["name"]}. {rec["type"]} "{rec["value"]}"'


def start(
    vendor, name: str, rec: dict[str, str], confirm: Callable[[str], bool], hours: float
) -> dict[str, Any]:
    """Publish *rec* through the panel and confirm it once; the hook result to return:
    verified, or the record and the queued confirmation step."""
    published = vendor.panel.publish_dns_record(
        Domain(name), rec["type"], rec["name"], rec["value"]
    )
    if confirm(name):
        note(vendor, name, state="verified", record=rec, published=published, checks=1)
        return {"message": f"{name} is verified (its TXT record is visible)"}
    until = time.time() + hours * 3600
    note(vendor, name, state="pending", record=rec, published=published, until=until, checks=1)
    how = "the panel published it" if published else "publish it: the panel could not"
    return {
        "message": f"{name} is verified once its TXT record is visible ({how}): {shown(rec)}",
        "dns_records": [dict(rec, published=published)],
        "steps": [VendorStep(domain=name, step=STEP, data={"record": rec, "until": until})],
    }


def step(vendor, event: VendorStep, confirm: Callable[[str], bool], hours: float) -> dict:
    """Carry out a queued confirmation: the hook result when done (verified, or left
    unverified once ``until`` has passed), else VendorWaiting until it."""
    name, rec, until = event.domain.name, event.data["record"], float(event.data["until"])
    visible, now = confirm(name), time.time()
    checks = known(vendor, name).get("checks", 0) + 1
    if visible:
        note(vendor, name, state="verified", checked=now, checks=checks)
        return {"message": f"{name} is verified (TXT record found after {checks} checks)"}
    if now >= until:
        note(vendor, name, state="unverified", checked=now, checks=checks)
        return {
            "message": f"{name} is left unverified: its TXT record ({shown(rec)}) was not "
            f"visible after {hours:g} h; publish it and use Verify now on the domain page",
            "dns_records": [rec],
        }
    note(vendor, name, state="pending", checked=now, checks=checks)
    stamp = dt.datetime.fromtimestamp(until, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    raise VendorWaiting(
        vendor.name,
        f"the TXT record of {name} is not visible yet: {shown(rec)}; checked again with "
        f"backoff until {stamp}",
        retry_within=until - now,
    )


def verify_now(vendor, name: str, confirm: Callable[[str], bool]) -> tuple[bool, str]:
    """The domain page's "Verify now": (verified?, what to tell the user)."""
    if confirm(name):
        note(vendor, name, state="verified", checked=time.time())
        return True, f"{name} is verified."
    rec = known(vendor, name).get("record")
    wanted = f" ({shown(rec)})" if rec else ""
    return False, f"The TXT record{wanted} is not visible yet; DNS can take hours."
