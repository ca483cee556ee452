"""``spamfilter worker``: deliver queued events (once, until drained, or until stopped), or
print the systemd unit that runs it."""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING

from ._common import EXIT_OK, EXIT_VENDOR, note, notes, runtime, stop_event

if TYPE_CHECKING:
    pass

#: the placeholders of the shipped unit template, all of which must be in it


def register(sub) -> None:
    w = sub.add_parser(
        "worker",
        help="deliver queued events to the vendors",
        description="Deliver queued events: claim each due row, call that vendor, retry "
        "temporary failures with backoff, and mark permanent ones dead. Without options it "
        "runs until SIGTERM or Ctrl-C. Several workers may run at once.",
    )
    mode = w.add_mutually_exclusive_group()
    mode.add_argument(
        "--once", action="store_true", help="deliver at most one due event, then exit"
    )
    mode.add_argument(
        "--drain",
        action="store_true",
        help="deliver everything due now, then exit; exit status 1 if any event ended dead",
    )
    mode.add_argument(
        "--systemd-unit",
        action="store_true",
        help="print a systemd unit that runs this worker with this config, and exit",
    )
    w.add_argument(
        "--poll",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often to look for work (default 1)",
    )
    w.set_defaults(func=cmd_worker)


def cmd_worker(args) -> int:
    from ..worker import Worker, chores_every

    rt = runtime(args)
    if args.systemd_unit:
        import shutil

        exe = shutil.which("spamfilter") or os.path.join(
            os.path.dirname(sys.executable), "spamfilter"
        )
        from ..systemd import unit

        text = unit(
            "spamfilter-worker.service",
            os.path.abspath(exe),
            str(rt.config.path.resolve()),
            str(rt.config.general.state_dir),
        )
        print(text, end="")
        return EXIT_OK

    def line(d) -> tuple[str, dict[str, object]]:
        state = "done" if d.outcome.ok else f"{d.final_state}: {d.outcome.error}"
        return f"row {d.row.id} {d.row.vendor} {d.row.hook} {d.row.target}: {state}", {
            "vendor": d.row.vendor,
            "row": d.row.id,
            "hook": d.row.hook,
            "target": d.row.target,
            "outcome": d.final_state,
            "duration_s": round(d.seconds, 4),
        }

    def report(deliveries) -> None:  # the lines of one commit in one write
        notes(line(d) for d in deliveries)

    worker = Worker(rt, on_deliveries=report)
    if args.once:
        delivery = worker.run_one()
        if delivery is None:
            note("nothing due")
            return EXIT_OK
        return EXIT_VENDOR if delivery.final_state == "dead" else EXIT_OK
    if args.drain:
        stats = worker.drain(stop=stop_event(), keep=False)  # counts only: flat memory
        note(f"delivered {stats.done}, retrying later {stats.pending}, dead {stats.dead}")
        return EXIT_VENDOR if stats.dead else EXIT_OK
    note(f"spamfilter: worker {worker.owner} running on {worker.queue.where}")
    stop = stop_event()
    if rt.config.fleet is not None:
        threading.Thread(target=publish_every, args=(rt, stop), daemon=True).start()
    threading.Thread(target=chores_every, args=(rt, stop), name="chores", daemon=True).start()
    worker.run_forever(stop, poll=args.poll)
    return EXIT_OK


#: how often a running worker publishes its panel's domains to the fleet (seconds)
PUBLISH_EVERY = 3600.0


def publish_every(rt, stop: threading.Event) -> None:
    """In fleet mode: this server's panel list, published now and every hour, so the fleet's
    ``sync`` sees it fresh (a panel that cannot list its domains is left to ``fleet
    publish --domains-from``)."""
    from ..errors import ConfigError, QueueError
    from ..queue import queue_of
    from ..sync import panel_domains

    while not stop.is_set():
        try:
            domains = panel_domains(rt)
            with queue_of(rt.config) as queue:
                mail_host = rt.config.general.mail_host
                queue.publish_inventory({d: dest or mail_host for d, dest in domains.items()})
        except ConfigError as exc:  # the panel cannot list: 'fleet publish' is the way
            note(f"spamfilter: the panel's domains are not published to the fleet: {exc}")
            return
        except QueueError as exc:  # the database is down: the next hour tries again
            note(f"spamfilter: the panel's domains could not be published now: {exc}")
        stop.wait(PUBLISH_EVERY)
