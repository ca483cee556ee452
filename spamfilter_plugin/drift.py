"""Drift watch, as a built-in plugin: what changed behind the plugin's back.

Two checks, run by the worker daemon when due (:func:`worker_chores`) and by ``spamfilter
drift`` at once (:func:`check`):

* each vendor against the panel's list, a dry run of ``sync`` every ``[general]
  drift_hours``: a panel domain the vendor lacks (``missing``), a domain the plugin put
  there that the panel no longer has (``orphan``), a domain whose mail goes elsewhere than
  it should (``route``).  Nothing is changed unless ``[general] drift_repair = true``, which
  queues the fixes as ``sync`` would (the worker delivers them).
* the MX of every domain whose MX the plugin verified, every ``[mx] recheck_hours``: one
  that no longer gives the vendor's set becomes ``wrong`` (``mx_wrong``).

The findings are kept (in the queue's store's documents: the fleet's in fleet mode) for the
console's banner, counted in ``spamfilter_drift_findings`` and raised as alerts.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, SpamFilterError
from .hookspecs import hookimpl
from .redaction import get_logger

if TYPE_CHECKING:
    from .context import Host
    from .store.base import Queue

log = get_logger(__name__)

#: what a finding is, from the plan's action (``sync``'s words) or the MX check
KINDS = {"add": "missing", "remove": "orphan", "update": "route"}
MX_WRONG = "mx_wrong"
ALL_KINDS = ("missing", "orphan", "route", MX_WRONG)


@dataclass
class Finding:
    vendor: str
    kind: str
    domain: str
    reason: str


def findings_store(config):
    """Where the last check's findings are kept: a document of the queue's store."""
    if config.fleet is not None:
        from .store.postgres import FleetJsonStore  # needs the [fleet] extra

        return FleetJsonStore(config.fleet, "drift")
    from pathlib import Path

    from .files import JsonStore

    return JsonStore(Path(config.general.state_dir) / "drift.json")


def last(config) -> dict[str, Any]:
    """The last check's findings: ``{"at": ..., "findings": [...], "notes": [...]}`` (empty
    when none ran yet)."""
    return findings_store(config).read()


def vendor_drift(host, vendors=None) -> tuple[list[Finding], list[str], dict]:
    """The dry run of ``sync`` per vendor that keeps a domain list: the findings, notes (a
    panel that cannot list, a vendor that could not be read), and each vendor's changes."""
    from .sync import Reconcile, panel_domains

    findings: list[Finding] = []
    notes: list[str] = []
    fixes: dict[str, list] = {}
    try:
        wanted = panel_domains(host)
    except (ConfigError, SpamFilterError) as exc:
        return [], [f"the panel's domains could not be listed: {exc}"], {}
    sync = Reconcile.of(host, wanted)
    try:
        for vendor in sync.vendors(vendors):
            if not sync.keeps_list(vendor):
                continue
            try:
                for change in sync.plan(vendor):
                    kind = KINDS.get(change.action)
                    if kind is None or change.row is not None:  # left alone, or on its way
                        continue
                    findings.append(Finding(vendor, kind, change.domain, change.reason))
                    fixes.setdefault(vendor, []).append(change)
            except SpamFilterError as exc:
                notes.append(f"{vendor}: its domain list could not be read: {exc}")
    finally:
        sync.queue.close()
    return findings, notes, fixes


def mx_drift(host) -> list[Finding]:
    """The verified MX sets looked at again (:func:`.mx.flow.recheck`)."""
    from .mx import flow

    found = []
    for state in flow.store(host).all():
        if state.state != "verified":
            continue
        why = flow.recheck(host, state.domain, state.vendor)
        if why is not None:
            found.append(Finding(state.vendor, MX_WRONG, state.domain, why))
    return found


def check(host, queue: Queue, *, vendors=None, lists=True, mx=True, now=None) -> dict:
    """Run the checks now; keep and count what they found; with ``drift_repair`` queue the
    fixes.  The document kept (see :func:`last`)."""
    now = time.time() if now is None else now
    findings, notes, fixes = vendor_drift(host, vendors) if lists else ([], [], {})
    if mx:
        findings += mx_drift(host)
    kept = last(host.config)
    before = kept.get("findings", [])
    # a check not run this time keeps what it found last time
    findings += [
        Finding(**f)
        for f in before
        if (not mx and f["kind"] == MX_WRONG) or (not lists and f["kind"] != MX_WRONG)
    ]
    if not lists:
        notes = list(kept.get("notes", []))
    repaired = 0
    if host.config.general.drift_repair and fixes:
        from . import intake

        for vendor, changes in fixes.items():
            intake.enqueue(queue, [c.event() for c in changes], vendors=[vendor])
            repaired += len(changes)
    counts = Counter((f.vendor, f.kind) for f in findings)
    from .metrics import DRIFT, labels

    checked = sorted(set(host.contexts) | {v for v, _ in counts})
    queue.add_metrics(
        {},
        {(DRIFT, labels(vendor=v, kind=k)): counts.get((v, k), 0) for v in checked
         for k in ALL_KINDS},
    )  # fmt: skip
    doc = {
        "at": now,
        "findings": [asdict(f) for f in findings],
        "notes": notes,
        "repaired": repaired,
    }
    with findings_store(host.config).editing() as kept:
        kept.clear()
        kept.update(doc)
    return doc


#: when each check last ran in this process (the daemon's)
_ran = {"lists": float("-inf"), "mx": float("-inf")}


@hookimpl
def worker_chores(host: Host, queue: Queue, now: float) -> None:
    lists = now - _ran["lists"] >= host.config.general.drift_hours * 3600
    mx = now - _ran["mx"] >= float(host.config.mx["recheck_hours"]) * 3600
    if not (lists or mx):
        return
    if lists:
        _ran["lists"] = now
    if mx:
        _ran["mx"] = now
    doc = check(host, queue, lists=lists, mx=mx, now=now)
    if doc["findings"]:
        log.warning("drift: %d finding(s); see spamfilter drift", len(doc["findings"]))
