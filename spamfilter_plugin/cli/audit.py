"""``spamfilter audit``: who changed what, when and from where (the audit log)."""

from __future__ import annotations

import time

from ._common import EXIT_OK, CliError, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "audit",
        help="show the audit log: the changes people made, newest first",
        description="Every change a person made: settings submitted (console, panel pages, "
        "ui submit), bulk protect and unprotect, queue retry and drop, sync applied, MX "
        "switch and restore, password hashes made. A secret field shows only 'changed'.",
    )
    p.add_argument(
        "--since",
        metavar="WHEN",
        help="only entries since WHEN: a number of days (7, 0.5) or a date (2026-12-01, "
        "2026-12-01T10:00) in UTC",
    )
    p.add_argument("--target", metavar="NAME", help="one domain (with its mailboxes) or mailbox")
    p.add_argument(
        "--actor", metavar="WHO", help="one actor: a console or panel user, or cli:<unix user>"
    )
    p.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    p.add_argument("--json", action="store_true", help="print a JSON list for scripts")
    p.set_defaults(func=cmd_audit)


def since_of(value: str | None, now: float) -> float | None:
    """``--since``: days back, or an ISO 8601 date or time in UTC; CliError naming the fix."""
    if value is None:
        return None
    try:
        days = float(value)
    except ValueError:
        pass
    else:
        if days < 0:
            raise CliError("--since: give days back (0 or more) or a date such as 2026-12-01")
        return now - days * 86400
    import calendar

    for form in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return float(calendar.timegm(time.strptime(value.rstrip("Z"), form)))
        except ValueError:
            continue
    raise CliError(f"--since: {value!r} is neither days (7) nor a date (2026-12-01T10:00)")


def cmd_audit(args) -> int:
    from .. import audit
    from ..errors import InvalidInput
    from ..events import normalise_domain, normalise_email
    from ..manager import load_runtime
    from ..queue import queue_of

    if args.limit < 1:
        raise CliError("--limit: give 1 or more")
    since = since_of(args.since, time.time())
    target = args.target
    if target:
        try:
            target = normalise_email(target, "--target") if "@" in target else (
                normalise_domain(target, "--target"))  # fmt: skip
        except InvalidInput as exc:
            raise CliError(str(exc)) from None
    with queue_of(load_runtime(args.config).config) as queue:
        found = queue.audit_entries(since=since, target=target, actor=args.actor, limit=args.limit)
    entries = [audit.shown(e) for e in found]
    if args.json:
        print_json(entries)
        return EXIT_OK
    if not entries:
        print("no entries")
    for e in entries:
        who = e["actor"] + (f" ({e['role']})" if e["role"] else "")
        where = f" from {e['origin']}" if e["origin"] else ""
        what = " ".join(x for x in (e["action"], e["target"], e["vendor"], e["form"]) if x)
        changed = audit.change_text(e["changes"])
        print(f"{e['time']}  {who}{where}: {what}" + (f": {changed}" if changed else ""))
        print(f"    {e['outcome']}")
    return EXIT_OK
