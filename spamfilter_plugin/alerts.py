"""Alerts, as a built-in plugin: what an operations team must hear of, through apprise (one
library for e-mail, Slack, Teams, webhooks...).

On the worker daemon's chores thread (never a panel hook, never in a delivery's way), each
round looks for what is new since it last looked: deliveries that ended dead, vendors
suspended after refused credentials, MX records found wrong, drift found, a worker not seen
for ``stall_minutes``.  What it finds waits per kind and goes out grouped, at most one
message per kind every ``every_minutes`` (fifty dead rows in a burst are one message that
says 50 and names the first few).  A message that cannot be sent within
:data:`SEND_TIMEOUT` is logged and counted, not retried: the next finding sends again.
Messages hold domains, vendors and reasons, redacted; never a secret.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .hookspecs import hookimpl
from .redaction import get_logger, redact

if TYPE_CHECKING:
    from .context import Host
    from .store.base import Queue

log = get_logger(__name__)

#: seconds a message may take to go out
SEND_TIMEOUT = 10.0
#: how many of a group's items a message names
SHOWN = 5

TITLES = {
    "dead": "deliveries failed for good",
    "suspended": "vendor calls suspended (credentials refused)",
    "mx_wrong": "MX records wrong",
    "drift": "drift found",
    "worker_stalled": "worker stalled",
    "test": "test message",
}


def state_store(config):
    """What the alerts remember between rounds and restarts (what was said already)."""
    if config.fleet is not None:
        from .store.postgres import FleetJsonStore  # needs the [fleet] extra

        return FleetJsonStore(config.fleet, "alerts")
    from .files import JsonStore

    return JsonStore(Path(config.general.state_dir) / "alerts.json")


def send(urls, kind: str, items: list[str], timeout: float = SEND_TIMEOUT) -> str | None:
    """One message of *items* to every URL; None when it went out, else why not."""
    import apprise

    title = f"spamfilter: {len(items)} {TITLES[kind]}"
    shown = items[:SHOWN]
    body = "\n".join(redact(i) for i in shown)
    if len(items) > SHOWN:
        body += f"\n... and {len(items) - SHOWN} more"
    notifier = apprise.Apprise()
    for url in urls:
        notifier.add(url.reveal() if hasattr(url, "reveal") else url)
    outcome: dict[str, Any] = {}

    def deliver() -> None:
        try:
            outcome["ok"] = notifier.notify(title=redact(title), body=body)
        except Exception as exc:  # noqa: BLE001 - any failure of a service is a failed send
            outcome["error"] = f"{type(exc).__name__}"

    sender = threading.Thread(target=deliver, name="alert", daemon=True)
    sender.start()
    sender.join(timeout)
    if sender.is_alive():
        return f"not sent within {timeout:g}s"
    if outcome.get("ok"):
        return None
    return outcome.get("error") or "a notification service refused it (see the log)"


def found(host, queue: Queue, seen: dict[str, Any], now: float) -> dict[str, list[str]]:
    """What is new since *seen* (which it updates), per kind."""
    from .drift import last
    from .metrics import WORKER_SEEN
    from .mx.flow import store as mx_store

    cfg, new = host.config.alerts, {}
    after = float(seen.get("dead_after", 0.0))
    dead = [r for r in queue.rows(state="dead", limit=1000) if r.updated_at > after]
    if dead:
        seen["dead_after"] = max(r.updated_at for r in dead)
        new["dead"] = [
            f"{r.target.partition(':')[2]} at {r.vendor} ({r.hook}): {r.last_error or '-'}"
            for r in sorted(dead, key=lambda r: r.updated_at)
        ]
    suspended = {
        v: ctx.suspension() for v, ctx in sorted(host.contexts.items()) if ctx.suspension()
    }
    told = set(seen.get("suspended", []))
    new["suspended"] = [
        f"{v}: {s.get('reason', '')}" for v, s in suspended.items() if v not in told
    ]
    seen["suspended"] = sorted(suspended)
    wrong = {s.domain: s for s in mx_store(host).all() if s.state == "wrong"}
    told = set(seen.get("mx_wrong", []))
    new["mx_wrong"] = [f"{d}: {s.detail}" for d, s in sorted(wrong.items()) if d not in told]
    seen["mx_wrong"] = sorted(wrong)
    drift = last(host.config)
    if drift.get("findings") and float(drift.get("at", 0)) > float(seen.get("drift_at", 0)):
        new["drift"] = [
            f"{f['vendor']}: {f['kind']}: {f['domain']}: {f['reason']}" for f in drift["findings"]
        ]
        seen["drift_at"] = drift["at"]
    beats = [v for n, _, v in queue.metrics() if n == WORKER_SEEN]
    if beats and now - max(beats) > float(cfg["stall_minutes"]) * 60:
        if not seen.get("stalled"):
            minutes = (now - max(beats)) / 60
            new["worker_stalled"] = [f"no worker has written to the queue for {minutes:.0f} min"]
        seen["stalled"] = True
    else:
        seen["stalled"] = False
    return {k: v for k, v in new.items() if v and k in cfg["on"]}


def round_of(host, queue: Queue, now: float, send=send) -> dict[str, str | None]:
    """One round: what is new is added to what waits; each kind whose time has come goes
    out as one message.  What was sent, per kind: None, or why it failed."""
    from .metrics import ALERTS, labels

    cfg = host.config.alerts
    if not cfg["urls"]:
        return {}
    sent: dict[str, str | None] = {}
    with state_store(host.config).editing() as seen:
        waiting: dict[str, list[str]] = seen.setdefault("waiting", {})
        for kind, items in found(host, queue, seen, now).items():
            waiting.setdefault(kind, []).extend(items)
        last_sent: dict[str, float] = seen.setdefault("sent_at", {})
        for kind in sorted(waiting):
            items = waiting[kind]
            if not items or now - last_sent.get(kind, float("-inf")) < cfg["every_minutes"] * 60:
                continue
            why = send(cfg["urls"], kind, items)
            sent[kind] = why
            last_sent[kind] = now
            waiting[kind] = []  # sent or not, never retried forever: the next finding says it
            if why:
                log.error("alert %s (%d item(s)) not sent: %s", kind, len(items), why)
    if sent:
        queue.add_metrics(
            {
                (ALERTS, labels(kind=k, outcome="failed" if why else "sent")): 1
                for k, why in sent.items()
            }
        )
    return sent


@hookimpl
def worker_chores(host: Host, queue: Queue, now: float) -> None:
    round_of(host, queue, now)


def send_test(host) -> str | None:
    """``spamfilter alerts test``: one message to every URL; None when it went out."""
    import socket

    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    line = f"spamfilter-plugin on {socket.gethostname()} can send alerts ({stamp})"
    return send(host.config.alerts["urls"], "test", [line])
