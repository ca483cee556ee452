"""``spamfilter drift``: what changed behind the plugin's back, checked now."""

from __future__ import annotations

from ._common import EXIT_OK, EXIT_VENDOR, print_json, runtime


def register(sub) -> None:
    p = sub.add_parser(
        "drift",
        help="check each vendor against the panel and the verified MX records now",
        description="The checks the worker runs every [general] drift_hours and [mx] "
        "recheck_hours: domains the panel has that a vendor lacks (missing), domains the "
        "plugin put at a vendor that the panel no longer has (orphan), wrong routes (route), "
        "and verified MX records changed since (mx_wrong). Nothing is changed unless "
        "[general] drift_repair = true, which queues the fixes. Exit 1 when anything is found.",
    )
    p.add_argument(
        "--vendor",
        action="append",
        metavar="V",
        help="check this vendor's list only (repeatable; the MX check covers every domain)",
    )
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(func=cmd_drift)


def cmd_drift(args) -> int:
    from ..drift import check
    from ..queue import queue_of

    rt = runtime(args)
    with queue_of(rt.config) as queue:
        doc = check(rt, queue, vendors=args.vendor)
    if args.json:
        print_json(doc)
    else:
        for note in doc["notes"]:
            print(f"note: {note}")
        for f in doc["findings"]:
            print(f"{f['vendor']}: {f['kind']}: {f['domain']}: {f['reason']}")
        if doc["repaired"]:
            print(f"{doc['repaired']} fix(es) queued (drift_repair)")
        if not doc["findings"]:
            print("no drift found")
    return EXIT_VENDOR if doc["findings"] else EXIT_OK
