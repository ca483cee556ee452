"""``spamfilter queue``: inspect and manage the delivery queue (list, show, retry, drop,
purge), each with ``--json``."""

from __future__ import annotations

import json
import time

from ..errors import QueueError
from ..queue import STATES
from ._common import EXIT_OK, EXIT_VENDOR, CliError, note, print_json, public

TIMES = ("created_at", "updated_at", "next_at", "lease_until")


def register(sub) -> None:
    q = sub.add_parser(
        "queue",
        help="inspect and manage queued events",
        description="Inspect and manage the delivery queue. States: pending (waiting or "
        "retrying), leased (being delivered), done, dead (failed permanently; retry after "
        "fixing the cause), superseded (made pointless by a later event), skipped (in a "
        "fleet: a deletion from a server that no longer holds the domain).",
    )
    qsub = q.add_subparsers(dest="queue_command", metavar="ACTION")
    qsub.required = True
    ql = qsub.add_parser("list", help="list queue rows, newest first")
    ql.add_argument("--state", choices=STATES, help="only rows in this state (default: all)")
    ql.add_argument("--vendor", help="only this vendor's rows (default: every vendor's)")
    ql.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")
    ql.set_defaults(action=_list)
    qs = qsub.add_parser("show", help="show one row, with its result and last error")
    qs.add_argument("id", type=int, help="the row's id (queue list shows it)")
    qs.set_defaults(action=_show)
    qr = qsub.add_parser("retry", help="make a dead row (or every dead row) pending again")
    qr.add_argument("id", type=int, nargs="?", help="the dead row's id (or --all-dead)")
    qr.add_argument("--all-dead", action="store_true", help="retry every dead row")
    qr.set_defaults(action=_retry)
    qd = qsub.add_parser("drop", help="delete a row that is not being delivered")
    qd.add_argument("id", type=int, help="the row's id (queue list shows it)")
    qd.set_defaults(action=_drop)
    qp = qsub.add_parser(
        "purge", help="delete done, superseded and skipped rows older than some days"
    )
    qp.add_argument("--older-than", type=float, default=30, metavar="DAYS", help="default 30")
    qp.set_defaults(action=_purge)
    for sp in (ql, qs, qr, qd, qp):
        sp.add_argument("--json", action="store_true", help="print JSON instead of text")
    q.set_defaults(func=cmd_queue)


def cmd_queue(args) -> int:
    from ..emit import validated
    from ..queue import open_queue, queue_of

    raw, _ = validated(args.config)
    if "fleet" in raw.data:  # the fleet's queue: the whole config says where
        from ..manager import load_runtime

        queue = queue_of(load_runtime(raw.path).config)
    else:
        queue = open_queue(raw.state_dir)
    try:
        return args.action(queue, args)
    finally:
        queue.close()


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _row_line(r) -> str:
    error = f"  {r.last_error}" if r.last_error and r.state != "done" else ""
    head = f"{r.id:>6} {r.state:<10} {r.vendor:<12} {r.hook:<16} {r.target:<36}"
    server = f" {r.server}" if r.server else ""
    return f"{head} {_when(r.created_at)} x{r.attempts}{server}{error}"


def _list(queue, args) -> int:
    local = queue.local_waiting(args.limit)  # what the fleet has not seen yet, if any
    try:
        rows = queue.rows(state=args.state, vendor=args.vendor, limit=args.limit)
        counts, problem = queue.counts(), None
    except QueueError as exc:  # the fleet's database is down: the local rows still show
        if not local:
            raise
        rows, counts, problem = [], {}, str(exc)
    if args.json:
        doc = {"counts": counts, "rows": [public(r.to_dict()) for r in rows]}
        if local:
            doc["not_relayed"] = [public(r.to_dict()) for r in local]
        if problem:
            doc["error"] = problem
        print_json(doc)
        return EXIT_VENDOR if problem else EXIT_OK
    if local:
        print(f"not relayed to the fleet yet (this server's local outbox): {len(local)}")
        for r in local:
            print("local " + _row_line(r))
    if problem:
        note(problem)
        return EXIT_VENDOR
    print("  ".join(f"{k} {v}" for k, v in counts.items()))
    for r in rows:
        print(_row_line(r))
    return EXIT_OK


def _show(queue, args) -> int:
    row = queue.get(args.id)
    if row is None:
        raise CliError(f"id: no queue row {args.id}")
    doc = public(row.to_dict())
    if args.json:
        print_json(doc)
        return EXIT_OK
    for key, value in doc.items():
        if key in TIMES and value:
            value = _when(value)
        print(f"{key:<12} {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    if row.result and "***" in row.result.values():
        print("(*** values are stored encrypted; the panel reads them through Queue.secret_result)")
    return EXIT_OK


def _retry(queue, args) -> int:
    if args.all_dead == (args.id is not None):
        raise CliError("queue retry needs a row id or --all-dead (not both)")
    row = None if args.all_dead else queue.get(args.id)
    count = queue.retry_all_dead() if args.all_dead else int(queue.retry(args.id))
    if not args.all_dead and not count:
        raise CliError(f"id: row {args.id} is not dead (only dead rows can be retried)")
    text = f"{count} row{'s' * (count != 1)} pending again"
    _audited(queue, "queue retry", row, "every dead row" if args.all_dead else "", text)
    print(json.dumps({"retried": count}) if args.json else text)
    return EXIT_OK


def _audited(queue, action: str, row, form: str, outcome: str) -> None:
    from .. import audit

    audit.record(
        queue,
        actor=audit.cli_actor(),
        origin="cli",
        action=action,
        scope="queue",
        target=row.target.partition(":")[2] if row is not None else "",
        vendor=row.vendor if row is not None else "",
        form=form or (f"row {row.id}" if row is not None else ""),
        outcome="ok: " + outcome,
    )


def _drop(queue, args) -> int:
    row = queue.get(args.id)
    if not queue.drop(args.id):
        raise CliError(f"id: row {args.id} does not exist or is being delivered right now")
    _audited(queue, "queue drop", row, "", f"row {args.id} dropped")
    print(json.dumps({"dropped": args.id}) if args.json else f"row {args.id} dropped")
    return EXIT_OK


def _purge(queue, args) -> int:
    count = queue.purge(args.older_than * 86400)
    print(
        json.dumps({"purged": count})
        if args.json
        else f"{count} old done/superseded/skipped rows deleted"
    )
    return EXIT_OK
