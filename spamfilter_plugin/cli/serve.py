"""``spamfilter serve``: the web console on the real config, with the worker in the same
process; ``--hash-password`` makes the ``[console] password_hash`` value."""

from __future__ import annotations

import getpass
import sys

from ._common import EXIT_OK, CliError, audited, note, runtime, stop_event, wait_until_stopped


def register(sub) -> None:
    s = sub.add_parser(
        "serve",
        help="serve the web console (dashboard, settings pages, queue) and run the worker",
        description="Serve the web console on --host/--port with waitress, and deliver "
        "queued events in the same process (unless --no-worker). The console's admin logs "
        "in with [console] username and the password whose hash is [console] password_hash; "
        "without one, a password for this run is printed (loopback only: a non-loopback "
        "--host needs password_hash). Runs until SIGTERM or Ctrl-C.",
    )
    s.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)"
    )
    s.add_argument("--port", type=int, default=8025, help="the port to listen on (default 8025)")
    s.add_argument(
        "--no-worker",
        action="store_true",
        help="serve only; deliver with a separate 'spamfilter worker' (a systemd unit)",
    )
    s.add_argument(
        "--hash-password",
        action="store_true",
        help="read a password (prompted, or one line on standard input), print its argon2 "
        "hash for [console] password_hash, and exit",
    )
    s.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from ..web.console import hash_password

    if args.hash_password:
        if sys.stdin.isatty():
            password = getpass.getpass("Console password: ")
            if getpass.getpass("Again: ") != password:
                raise CliError("the two passwords differ; nothing was printed")
        else:
            password = sys.stdin.readline().rstrip("\n")
        if len(password) < 10:
            raise CliError("password: use at least 10 characters")
        print(hash_password(password))
        audited(args.config, action="password hash made", scope="console",
                changed={"password_hash": {"changed": True}}, outcome="ok: printed")  # fmt: skip
        return EXIT_OK
    if not 0 < args.port < 65536:
        raise CliError(f"--port: {args.port} is not a port (1 to 65535)")
    from ..web.serve import ConsoleServer, console_for

    rt = runtime(args)
    console, one_time = console_for(rt, host=args.host)
    try:
        server = ConsoleServer(console, args.host, args.port, worker=not args.no_worker)
    except OSError as exc:
        raise CliError(
            f"--port: cannot listen on {args.host}:{args.port} ({exc.strerror})"
        ) from None
    stop = stop_event()
    server.start()
    note(f"console: {server.url}" + ("" if args.no_worker else " (worker running)"))
    if one_time:
        note(
            f"no [console] password_hash is set: log in as {console.username} with the password "
            f"{one_time} (good until this console stops)"
        )
    wait_until_stopped(stop)
    note("stopping...")
    server.stop()
    return EXIT_OK
