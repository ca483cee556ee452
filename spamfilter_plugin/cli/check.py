"""``spamfilter check`` and ``spamfilter vendors``: is the config valid, do the credentials
work, which vendors are installed and enabled."""

from __future__ import annotations

from ..errors import SpamFilterError
from ._common import EXIT_OK, EXIT_VENDOR, note, print_json, print_outcomes, runtime


def register(sub) -> None:
    c = sub.add_parser(
        "check",
        help="validate the config and prove each vendor's credentials work",
        description="Validate the config file, then make one cheap authenticated call per "
        "enabled vendor. A vendor suspended after refused credentials is resumed when its "
        "check succeeds. Exit 0 when all succeed, 1 when a vendor fails, 2 for a bad config.",
    )
    c.add_argument("--json", action="store_true", help="print a JSON document instead of text")
    c.set_defaults(func=cmd_check)

    v = sub.add_parser(
        "vendors",
        help="list the installed vendors and which are enabled",
        description="List the vendor plugins installed in this environment, and which the "
        "config enables (a [vendors.NAME] table enables NAME).",
    )
    v.add_argument("--json", action="store_true", help="print a JSON document instead of text")
    v.set_defaults(func=cmd_vendors)


def cmd_check(args) -> int:
    rt = runtime(args)
    if not rt.vendors:
        note(f"{rt.config.path}: valid; no vendor is enabled (add a [vendors.NAME] table)")
    fleet = _fleet(rt.config)
    outcomes = [rt.check(v) for v in rt.vendors]
    wrong = _wrong_mx(rt)
    if not args.json:
        print(f"{rt.config.path}: valid")
        if fleet is not None:
            print(f"fleet: {fleet['problem'] or 'ok'} (server {fleet['server']})")
        for r in wrong:
            print(f"MX wrong: {r['domain']} [{r['vendor']}]: {r['detail']}")
    extra = {"config": str(rt.config.path), "mx_wrong": wrong, "fleet": fleet}
    status = print_outcomes(outcomes, args.json, extra)
    return EXIT_VENDOR if wrong or (fleet and fleet["problem"]) else status


def _fleet(config) -> dict | None:
    """In fleet mode: whether the database answers (within the connect timeout), has this
    release's schema, and opens with this server's key."""
    if config.fleet is None:
        return None
    from ..queue import queue_of

    with queue_of(config) as queue:
        problem = queue.check()
    return {"server": config.fleet.server, "url": queue.where, "problem": problem}


def _wrong_mx(rt) -> list[dict]:
    """The domains whose MX was found ``wrong`` (docs/mx.md)."""
    from ..errors import QueueError
    from ..queue import mx_store
    from ..store.mx import FILE

    if rt.config.fleet is None and not (rt.config.general.state_dir / FILE).exists():
        return []
    try:
        return [r.to_dict() for r in mx_store(rt.config).all() if r.state == "wrong"]
    except QueueError:  # the fleet's database: 'fleet:' says what is wrong with it
        return []


def cmd_vendors(args) -> int:
    from ..config.model import config_path, read_file
    from ..manager import installed_vendors

    installed = installed_vendors()
    enabled: list[str] = []
    problem = None
    try:
        enabled = read_file(config_path(args.config)).enabled_vendors
    except SpamFilterError as exc:
        problem = str(exc)
    rows = []
    for name in sorted(set(installed) | set(enabled)):
        ep = installed.get(name)
        dist = ep.dist if ep is not None else None
        rows.append(
            {
                "name": name,
                "installed": ep is not None,
                "enabled": name in enabled,
                "module": ep.value if ep is not None else None,
                "distribution": f"{dist.name} {dist.version}" if dist is not None else None,
            }
        )
    if args.json:
        print_json({"vendors": rows, "config_error": problem})
        return EXIT_OK
    if problem:
        note(f"spamfilter: note: {problem}")
    if not rows:
        print("no vendor plugins are installed")
    for r in rows:
        state = "enabled" if r["enabled"] else "disabled"
        if not r["installed"]:
            state = "enabled in config but NOT INSTALLED"
        print(f"{r['name']:<14} {state:<10} {r['distribution'] or ''}")
    return EXIT_OK
