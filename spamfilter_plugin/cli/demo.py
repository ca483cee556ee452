"""``spamfilter demo``: the whole product on loopback in one command."""

from __future__ import annotations

import json

from ._common import EXIT_OK, CliError, note, stop_event, wait_until_stopped


def register(sub) -> None:
    d = sub.add_parser(
        "demo",
        help="run the whole product on loopback: vendor emulators, a demo panel, the console",
        description="Start the five vendor emulators, a temporary state directory, a demo "
        "DirectAdmin panel with a reseller, accounts, domains and mailboxes (created through "
        "the panel's hook, as on a server), the worker and the console, all on 127.0.0.1. "
        "Prints the console's address and login; stops and removes everything on Ctrl-C or "
        "SIGTERM. Needs no config file and no network.",
    )
    d.add_argument(
        "--port", type=int, default=8025, help="the console's port (default 8025; 0: any free one)"
    )
    d.add_argument(
        "--json",
        action="store_true",
        help='print one line {"url", "username", "password", "emulators", "dns"} once it is '
        "ready to serve (emulators: each vendor emulator's API address; dns: the loopback "
        "name server's host:port)",
    )
    d.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from ..web.demo import Demo

    if not 0 <= args.port < 65536:
        raise CliError(f"--port: {args.port} is not a port (0 to 65535)")
    stop = stop_event()
    if not args.json:
        note("starting the emulators, the demo panel and the console...")
    demo = Demo(port=args.port)
    try:
        demo.start()
    except OSError as exc:
        raise CliError(f"--port: cannot listen on 127.0.0.1:{args.port} ({exc.strerror})") from None
    try:
        if args.json:
            print(json.dumps(demo.described()), flush=True)
        else:
            print(f"Console:  {demo.url}\nLogin:    {demo.username} / {demo.password}", flush=True)
            for name, url in demo.described()["emulators"].items():
                print(f"{name + ':':<13} {url}", flush=True)
            note("the seeded domains are being provisioned; press Ctrl-C to stop")
        wait_until_stopped(stop)
    finally:
        demo.stop()
    if not args.json:
        note("demo stopped; its files are removed")
    return EXIT_OK
