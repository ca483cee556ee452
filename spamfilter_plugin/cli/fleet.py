"""``spamfilter fleet``: set up the shared queue on PostgreSQL (``init``) and move a server's
own queue into it (``join``)."""

from __future__ import annotations

from ._common import EXIT_OK, EXIT_VENDOR, CliError, note, print_json, runtime


def register(sub) -> None:
    f = sub.add_parser(
        "fleet",
        help="set up fleet mode: many servers sharing one queue on PostgreSQL",
        description="Fleet mode ([fleet] in the config) keeps the queue of many panel servers "
        "in one PostgreSQL database. 'init' makes the fleet key (when its file does not "
        "exist) and the database's tables; 'join' moves this server's own queue into the "
        "fleet.",
    )
    fsub = f.add_subparsers(dest="fleet_command", metavar="ACTION")
    fsub.required = True
    init = fsub.add_parser(
        "init",
        help="make the fleet key if missing, and create or upgrade the tables",
        description="Make the key file [fleet] key names when it does not exist (mode 0600; "
        "copy it to every server of the fleet), then create or upgrade the database's "
        "tables (safe to run again, and on several servers at once), and check that the key "
        "opens what other servers sealed.",
    )
    init.set_defaults(action=_init)
    join = fsub.add_parser(
        "join",
        help="move this server's own queue (rows and provisioned domains) into the fleet",
        description="Copy every row of this server's SQLite queue (pending, dead and "
        "delivered) and the domains it provisioned into the fleet's queue. Rows already "
        "moved are left, so running it again moves nothing twice; the SQLite file stays "
        "where it is.",
    )
    join.add_argument(
        "--dry-run", action="store_true", help="say what would be moved, move nothing"
    )
    join.set_defaults(action=_join)
    publish = fsub.add_parser(
        "publish",
        help="publish this server's panel domains to the fleet now",
        description="Replace this server's domain list in the fleet with the panel's (or the "
        "file's). 'spamfilter sync' on any server plans against every server's list; a list "
        "older than [fleet] inventory_max_age_hours holds every removal back. A running "
        "'spamfilter worker' (the daemon) publishes its panel's list every hour on its own, "
        "where the panel lists its domains in files (cPanel, DirectAdmin).",
    )
    publish.add_argument(
        "--domains-from",
        metavar="FILE",
        help="the domains, one a line with an optional destination (- for standard input); "
        "default: ask the panel of the [panel] table",
    )
    publish.set_defaults(action=_publish)
    for sp in (init, join, publish):
        sp.add_argument("--json", action="store_true", help="print JSON instead of text")
    f.set_defaults(func=cmd_fleet)


def cmd_fleet(args) -> int:
    rt = runtime(args)
    if rt.config.fleet is None:
        raise CliError(
            f"{rt.config.path} has no [fleet] table; add one (url, key, server) to use fleet "
            "mode (docs/fleet.md)"
        )
    return args.action(rt, args)


def _init(rt, args) -> int:
    from ..store import postgres

    config = rt.config
    fleet = config.fleet
    key = postgres.FleetKey(fleet.key_file)
    made = key.make()
    if made:
        note(
            f"made the fleet key {fleet.key_file} (mode 0600): copy it to every server of the "
            "fleet, to the path their [fleet] key names"
        )
    with postgres.connect(fleet) as db:
        before, after = postgres.migrate(db)
    with postgres.PostgresQueue(config.general.state_dir, fleet) as queue:
        problem = queue.check()
    doc = {
        "key": str(fleet.key_file),
        "key_made": made,
        "schema_before": before,
        "schema": after,
        "server": fleet.server,
        "ok": problem is None,
        "problem": problem,
    }
    if args.json:
        print_json(doc)
    else:
        change = "created" if before == 0 else ("upgraded" if before < after else "up to date")
        print(f"fleet database {postgres.shown(fleet.url)}: schema version {after} ({change})")
        print(f"this server: {fleet.server}; key {fleet.key_file}: {problem or 'opens the fleet'}")
    return EXIT_OK if problem is None else EXIT_VENDOR


def _join(rt, args) -> int:
    from ..queue import open_queue
    from ..store import postgres

    config = rt.config
    with (
        open_queue(config.general.state_dir) as local,
        postgres.PostgresQueue(config.general.state_dir, config.fleet) as fleet,
    ):
        counts = fleet.join(local, dry_run=args.dry_run)
    if args.json:
        print_json({"dry_run": args.dry_run, "server": config.fleet.server, "moved": counts})
        return EXIT_OK
    verb = "would move" if args.dry_run else "moved"
    kept = ("provisioned", "vault_entries", "state_entries", "mx_domains")
    rows = sum(n for k, n in counts.items() if k not in kept)
    states = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()) if k not in kept)
    print(
        f"{verb} {rows} row{'s' * (rows != 1)} ({states or 'none'}), "
        f"{counts['provisioned']} provisioned domain record(s), {counts['vault_entries']} "
        f"vault entr{'y' if counts['vault_entries'] == 1 else 'ies'}, "
        f"{counts['state_entries']} vendor state entr"
        f"{'y' if counts['state_entries'] == 1 else 'ies'} and the MX state of "
        f"{counts['mx_domains']} domain(s) into the fleet as {config.fleet.server}"
    )
    return EXIT_OK


def _publish(rt, args) -> int:
    from ..queue import queue_of
    from .sync import wanted_domains

    config = rt.config
    domains = wanted_domains(args, rt)
    mail_host = config.general.mail_host
    with queue_of(config) as queue:
        count = queue.publish_inventory({d: dest or mail_host for d, dest in domains.items()})
    if args.json:
        print_json({"server": config.fleet.server, "published": count})
    else:
        print(f"published {count} domain(s) as {config.fleet.server}'s panel list")
    return EXIT_OK
