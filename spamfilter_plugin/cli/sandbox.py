"""``spamfilter sandbox``: serve the installed vendor emulators on loopback and print a config
that points the vendors at them."""

from __future__ import annotations

import sys
from pathlib import Path

from ._common import EXIT_OK, CliError, note, print_json, stop_event, wait_until_stopped


def register(sub) -> None:
    s = sub.add_parser(
        "sandbox",
        help="serve the vendor emulators on loopback for tests and demos",
        description="Serve an emulator of each vendor API on loopback, one port each, and "
        "print a config file pointing the vendors at them. With --port N the emulators take "
        "N, N+1, ... in the order --list shows; 0 picks free ports. Runs until interrupted.",
        epilog="Fault kinds: error (503), html (502 HTML page), timeout (no answer), reset "
        "(connection reset), reset_after (processed, then reset), truncate (body cut short), "
        "malformed (garbage body), throttle (429 with Retry-After: 1). While running, GET/POST "
        "<root>/_sandbox/state|requests|reset|faults|seed control each emulator.",
    )
    s.add_argument(
        "--list",
        action="store_true",
        help="list the installed emulators with their port offsets, and exit",
    )
    s.add_argument(
        "--host",
        default="127.0.0.1",
        help="loopback address to listen on (default 127.0.0.1)",
    )
    s.add_argument("--port", type=int, default=0, help="first port (default 0: free ports)")
    s.add_argument(
        "--vendor", action="append", metavar="NAME", help="serve only this vendor (repeatable)"
    )
    s.add_argument(
        "--latency", type=float, default=0.0, metavar="SECONDS", help="delay every answer"
    )
    s.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="add up to this much random delay",
    )
    s.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=RATE",
        help="give this share (0..1) of requests a fault, e.g. --fault error=0.1 (repeatable; "
        "default none)",
    )
    s.add_argument(
        "--hang-seconds",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a timeout fault stays silent (default 30)",
    )
    s.add_argument("--seed", type=int, default=0, help="random seed of the fault draws (default 0)")
    s.add_argument(
        "--write-config", metavar="PATH", help="also write the config to PATH (mode 0600)"
    )
    s.add_argument("--json", action="store_true", help="print the URLs and config tables as JSON")
    s.set_defaults(func=cmd_sandbox)


def fault_rates(specs: list[str]) -> dict[str, float]:
    """``KIND=RATE`` options as a dict; CliError naming the bad one."""
    from ..sandbox import FAULT_KINDS

    rates = {}
    for spec in specs:
        kind, sep, rate = spec.partition("=")
        if not sep or kind not in FAULT_KINDS:
            raise CliError(
                f"--fault {spec}: write KIND=RATE with KIND one of {', '.join(FAULT_KINDS)}"
            )
        try:
            rates[kind] = float(rate)
        except ValueError:
            raise CliError(f"--fault {spec}: RATE must be a number between 0 and 1") from None
    return rates


def _list(as_json: bool) -> int:
    from ..sandbox import emulators

    rows = [
        {"name": name, "port_offset": i, "class": f"{cls.__module__}.{cls.__qualname__}"}
        for i, (name, cls) in enumerate(emulators().items())
    ]
    if as_json:
        print_json({"emulators": rows})
    else:
        for r in rows:
            print(f"{r['name']:<14} PORT+{r['port_offset']:<3} {r['class']}")
    return EXIT_OK


def cmd_sandbox(args) -> int:
    from ..sandbox import Sandbox

    if args.list:
        return _list(args.json)
    try:
        sandbox = Sandbox(host=args.host, port=args.port, vendors=args.vendor, seed=args.seed)
        rates = fault_rates(args.fault)
        sandbox.start()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(
            f"--port {args.port}: cannot listen ({exc.strerror}); choose another port or 0"
        ) from None
    try:
        try:
            sandbox.configure_faults(
                latency=args.latency,
                jitter=args.jitter,
                hang_seconds=args.hang_seconds,
                rates=rates,
            )
        except ValueError as exc:
            raise CliError(str(exc)) from None
        snippet = sandbox.config_snippet()
        if args.write_config:
            path = Path(args.write_config)
            path.write_text(snippet, encoding="utf-8")
            path.chmod(0o600)
        if args.json:
            doc = {
                name: {"root": r.root, **r.config_table()} for name, r in sandbox.running.items()
            }
            print_json(doc)
        else:
            print(snippet, end="")
        sys.stdout.flush()
        for name, running in sandbox.running.items():
            note(f"spamfilter: sandbox {name} on {running.root} (api_url {running.url})")
        note("spamfilter: sandbox running; press Ctrl-C to stop")
        wait_until_stopped(stop_event())
    finally:
        sandbox.stop()
    return EXIT_OK
