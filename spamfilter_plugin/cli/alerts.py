"""``spamfilter alerts test``: send one message to every ``[alerts] urls``."""

from __future__ import annotations

from ._common import EXIT_OK, EXIT_VENDOR, CliError, print_json, runtime


def register(sub) -> None:
    p = sub.add_parser(
        "alerts",
        help="alerts: send a test message",
        description="Alerts go to the [alerts] urls (apprise URLs) from the worker daemon and "
        "the console; see docs/operations.md.",
    )
    asub = p.add_subparsers(dest="alerts_command", metavar="ACTION")
    asub.required = True
    t = asub.add_parser("test", help="send one message to every [alerts] url, now")
    t.add_argument("--json", action="store_true", help="print the outcome as JSON")
    t.set_defaults(func=cmd_test)


def cmd_test(args) -> int:
    from ..alerts import send_test

    rt = runtime(args)
    count = len(rt.config.alerts["urls"])
    if not count:
        raise CliError('[alerts] urls: none set; add urls = [{ env = "SPAMFILTER_ALERT_URL" }]')
    why = send_test(rt)
    if args.json:
        print_json({"sent": why is None, "urls": count, "error": why})
    else:
        print(f"sent to {count} url(s)" if why is None else f"not sent: {why}")
    return EXIT_OK if why is None else EXIT_VENDOR
