"""The ``spamfilter`` command.

Exit status: 0 success; 1 a vendor failed; 2 bad input or configuration.
Secrets are never read from argv (``--password-stdin``) and never printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from . import __version__
from .config import DEFAULT_PATH, ENV_VAR
from .errors import InvalidInput, SpamFilterError
from .events import BY_CLI_NAME, DomainCreated, DomainDeleted, DomainUpdated, PasswordReset
from .redaction import MASK, Secret, redact, redacting_handler

EXIT_OK, EXIT_VENDOR, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A one-line reason to stop with exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spamfilter",
        description="Provision inbound spam filtering for the domains and mailboxes of a hosting "
        "panel.",
        epilog=f"The config file is --config, else ${ENV_VAR}, else {DEFAULT_PATH}. "
        "Exit status: 0 ok, 1 a vendor failed, 2 bad input or configuration.",
    )
    p.add_argument("--version", action="version", version=f"spamfilter-plugin {__version__}")
    p.add_argument("--config", metavar="PATH", help="the TOML config file")
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-vv for HTTP details)"
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser(
        "check",
        help="validate the config and prove each vendor's credentials work",
        description="Validate the config file, then make one cheap authenticated call per "
        "enabled vendor. Exit 0 when all succeed, 1 when a vendor fails, 2 for a bad config.",
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

    e = sub.add_parser(
        "emit",
        help="queue a panel event (domain created, ...) for every enabled vendor",
        description="Queue one lifecycle event for every enabled vendor that handles it and return "
        "at once; the worker delivers it. With --now, deliver it at once and wait for the result "
        "(what fails is retried by the worker later). Each vendor is handled on its own.",
    )
    e.add_argument("event", choices=sorted(BY_CLI_NAME), help="what happened")
    e.add_argument("--domain", help="the domain (Unicode or punycode)")
    e.add_argument("--mailbox", help="the mailbox address, user@example.com")
    e.add_argument(
        "--destination",
        help="host name or IP that receives clean mail "
        "(domain-created: optional, default general.mail_host; domain-updated: required)",
    )
    e.add_argument(
        "--password-stdin",
        action="store_true",
        help="password-reset: read the new password from the first line of standard input "
        "(without it the vendor generates one)",
    )
    e.add_argument(
        "--now", action="store_true", help="deliver at once and wait for each vendor's result"
    )
    e.add_argument("--json", action="store_true", help="print a JSON document instead of text")
    e.set_defaults(func=cmd_emit)

    w = sub.add_parser(
        "worker",
        help="deliver queued events to the vendors",
        description="Deliver queued events: claim each due row, call that vendor, retry temporary "
        "failures with backoff, and mark permanent ones dead. Without options it runs until "
        "SIGTERM or Ctrl-C. Several workers may run at once.",
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

    q = sub.add_parser(
        "queue",
        help="inspect and manage queued events",
        description="Inspect and manage the delivery queue. States: pending (waiting or retrying), "
        "leased (being delivered), done, dead (failed permanently; retry after fixing the cause), "
        "superseded (made pointless by a later event).",
    )
    qsub = q.add_subparsers(dest="queue_command", metavar="ACTION")
    qsub.required = True
    ql = qsub.add_parser("list", help="list queue rows, newest first")
    ql.add_argument("--state", choices=["pending", "leased", "done", "dead", "superseded"])
    ql.add_argument("--vendor")
    ql.add_argument("--limit", type=int, default=50)
    qs = qsub.add_parser("show", help="show one row, with its result and last error")
    qs.add_argument("id", type=int)
    qr = qsub.add_parser("retry", help="make a dead row (or every dead row) pending again")
    qr.add_argument("id", type=int, nargs="?")
    qr.add_argument("--all-dead", action="store_true", help="retry every dead row")
    qd = qsub.add_parser("drop", help="delete a row that is not being delivered")
    qd.add_argument("id", type=int)
    qp = qsub.add_parser("purge", help="delete done and superseded rows older than some days")
    qp.add_argument("--older-than", type=float, default=30, metavar="DAYS", help="default 30")
    for sp in (ql, qs, qr, qd, qp):
        sp.add_argument("--json", action="store_true", help="print JSON instead of text")
    q.set_defaults(func=cmd_queue)

    s = sub.add_parser(
        "sandbox",
        help="serve the vendor emulators on loopback for tests and demos",
        description="Serve an emulator of each vendor API on loopback, one port each (spamport on "
        "PORT, "
        "spamwall PORT+1, spambarrier PORT+2, tornevall PORT+3, rackspace PORT+4; PORT 0 picks "
        "free ports), "
        "and print a config file pointing the vendors at them. Runs until interrupted.",
        epilog="Fault kinds: error (503), html (502 HTML page), timeout (no answer), reset "
        "(connection reset), "
        "reset_after (processed, then reset), truncate (body cut short), malformed (garbage body). "
        "While running, GET/POST <root>/_sandbox/state|requests|reset|faults|seed control each "
        "emulator.",
    )
    s.add_argument(
        "--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)"
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
        help="give this share (0..1) of requests a fault, e.g. --fault error=0.1 (repeatable)",
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
    return p


def _setup_logging(verbosity: int) -> None:
    handler = redacting_handler(logging.StreamHandler(sys.stderr))
    handler.setFormatter(logging.Formatter("spamfilter: %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG))


def _runtime(args):
    from .manager import load_runtime

    rt = load_runtime(args.config)
    if not args.verbose:  # -v/-vv on the command line win over general.log_level
        logging.getLogger().setLevel(rt.config.general.log_level.upper())
    return rt


def _public(value: Any) -> Any:
    """A result made safe to print: secrets masked, objects turned into strings."""
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_public(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(value)


def _print_outcomes(outcomes, as_json: bool, extra: dict | None = None) -> int:
    failed = [o for o in outcomes if not o.ok]
    if as_json:
        doc = dict(extra or {})
        doc["ok"] = not failed
        doc["vendors"] = [
            {
                "vendor": o.vendor,
                "ok": o.ok,
                "result": _public(o.result),
                "error": str(o.error) if o.error else None,
                "error_type": type(o.error).__name__ if o.error else None,
            }
            for o in outcomes
        ]
        print(json.dumps(doc, indent=2))
    else:
        for o in outcomes:
            if o.ok:
                detail = _public(o.result)
                print(f"{o.vendor}: ok" + (f" ({detail})" if detail not in (None, "", {}) else ""))
            else:
                print(f"{o.vendor}: FAILED: {o.error}")
    return EXIT_VENDOR if failed else EXIT_OK


def cmd_check(args) -> int:
    rt = _runtime(args)
    if not rt.vendors:
        print(
            f"{rt.config.path}: valid; no vendor is enabled (add a [vendors.NAME] table)",
            file=sys.stderr,
        )
    outcomes = [rt.check(v) for v in rt.vendors]
    if not args.json:
        print(f"{rt.config.path}: valid")
    return _print_outcomes(outcomes, args.json, {"config": str(rt.config.path)})


def cmd_vendors(args) -> int:
    from .config import config_path, read_file
    from .manager import installed_vendors

    installed = installed_vendors()
    enabled: list[str] = []
    note = None
    try:
        enabled = read_file(config_path(args.config)).enabled_vendors
    except SpamFilterError as exc:
        note = str(exc)
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
        print(json.dumps({"vendors": rows, "config_error": note}, indent=2))
        return EXIT_OK
    if note:
        print(f"spamfilter: note: {note}", file=sys.stderr)
    if not rows:
        print("no vendor plugins are installed")
    for r in rows:
        state = "enabled" if r["enabled"] else "disabled"
        if not r["installed"]:
            state = "enabled in config but NOT INSTALLED"
        print(f"{r['name']:<14} {state:<10} {r['distribution'] or ''}")
    return EXIT_OK


def _build_event(args):
    cls = BY_CLI_NAME[args.event]
    needs_domain = cls in (DomainCreated, DomainDeleted, DomainUpdated)
    if needs_domain and not args.domain:
        raise CliError(f"{args.event} needs --domain")
    if cls is PasswordReset:
        if bool(args.domain) == bool(args.mailbox):
            raise CliError("password-reset needs exactly one of --domain or --mailbox")
    elif not needs_domain and not args.mailbox:
        raise CliError(f"{args.event} needs --mailbox")
    if args.destination and cls not in (DomainCreated, DomainUpdated):
        raise CliError(f"--destination does not apply to {args.event}")
    if cls is DomainUpdated and not args.destination:
        raise CliError("domain-updated needs --destination (the new mail host)")
    if args.password_stdin and cls is not PasswordReset:
        raise CliError(f"--password-stdin does not apply to {args.event}")
    kwargs: dict[str, Any] = {}
    if cls is PasswordReset:
        if args.domain:
            kwargs["domain"] = args.domain
        else:
            kwargs["mailbox"] = args.mailbox
        if args.password_stdin:
            line = sys.stdin.readline().rstrip("\r\n")
            if not line:
                raise CliError("--password-stdin: standard input held no password")
            kwargs["password"] = Secret(line)
    elif needs_domain:
        kwargs["domain"] = args.domain
        if args.destination:
            kwargs["destination"] = args.destination
    else:
        kwargs["mailbox"] = args.mailbox
    return cls(**kwargs)


def cmd_emit(args) -> int:
    from .queue import emit

    event = _build_event(args)
    receipt = emit(event, args.config)
    if not args.now:
        if args.json:
            print(json.dumps({"event": event.to_dict(), "queued": receipt.rows}, indent=2))
        elif receipt.rows:
            print(
                f"queued {args.event} for {', '.join(receipt.rows)} "
                f"(rows {', '.join(str(i) for i in receipt.rows.values())})"
            )
        else:
            print(f"no enabled vendor handles {args.event}; nothing to do")
        return EXIT_OK
    from .worker import Worker

    rt = _runtime(args)
    worker = Worker(rt)
    deliveries = []  # one attempt per row; what fails stays queued for the worker
    for row_id in receipt.rows.values():
        delivery = worker.run_one(only=[row_id], ignore_schedule=True)
        if delivery is not None:
            deliveries.append(delivery)
    outcomes = [d.outcome for d in deliveries]
    waiting = [v for v, i in receipt.rows.items() if i not in {d.row.id for d in deliveries}]
    for vendor in waiting:
        print(
            f"{vendor}: queued behind an earlier event for {event.target}; the worker will "
            "deliver it",
            file=sys.stderr,
        )
    for d in deliveries:
        if not d.outcome.ok and d.final_state == "pending":
            print(
                f"{d.row.vendor}: will be retried by the worker (queue row {d.row.id})",
                file=sys.stderr,
            )
    return _print_outcomes(outcomes, args.json, {"event": event.to_dict(), "queued": receipt.rows})


def _stop_event():
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def systemd_unit(exe: str, config: str, state_dir: str) -> str:
    """The shipped unit file with this installation's executable, config and state paths."""
    from importlib import resources

    unit = (
        resources.files("spamfilter_plugin.systemd")
        .joinpath("spamfilter-worker.service")
        .read_text("utf-8")
    )
    unit = unit.replace(
        "/usr/local/bin/spamfilter --config /etc/spamfilter-plugin/config.toml",
        f"{exe} --config {config}",
    )
    return unit.replace("ReadWritePaths=/var/lib/spamfilter-plugin", f"ReadWritePaths={state_dir}")


def cmd_worker(args) -> int:
    from .worker import Worker

    rt = _runtime(args)
    if args.systemd_unit:
        import shutil

        exe = shutil.which("spamfilter") or os.path.join(
            os.path.dirname(sys.executable), "spamfilter"
        )
        print(
            systemd_unit(
                os.path.abspath(exe),
                str(rt.config.path.resolve()),
                str(rt.config.general.state_dir),
            ),
            end="",
        )
        return EXIT_OK

    def report(d):
        state = "done" if d.outcome.ok else f"{d.final_state}: {d.outcome.error}"
        print(
            f"row {d.row.id} {d.row.vendor} {d.row.hook} {d.row.target}: {state}", file=sys.stderr
        )

    worker = Worker(rt, on_delivery=report)
    if args.once:
        delivery = worker.run_one()
        if delivery is None:
            print("nothing due", file=sys.stderr)
            return EXIT_OK
        return EXIT_VENDOR if delivery.final_state == "dead" else EXIT_OK
    if args.drain:
        stats = worker.drain(stop=_stop_event())
        print(
            f"delivered {stats.done}, retrying later {stats.retrying}, dead {stats.dead}",
            file=sys.stderr,
        )
        return EXIT_VENDOR if stats.dead else EXIT_OK
    print(f"spamfilter: worker {worker.owner} running on {worker.queue.path}", file=sys.stderr)
    worker.run_forever(_stop_event(), poll=args.poll)
    return EXIT_OK


def _row_line(r) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created_at))
    error = f"  {r.last_error}" if r.last_error and r.state != "done" else ""
    head = f"{r.id:>6} {r.state:<10} {r.vendor:<12} {r.hook:<16} {r.target:<36}"
    return f"{head} {when} x{r.attempts}{error}"


def cmd_queue(args) -> int:
    from .config import DEFAULT_STATE_DIR, config_path, read_file
    from .queue import Queue

    raw = read_file(config_path(args.config))
    queue = Queue((raw.data.get("general") or {}).get("state_dir", DEFAULT_STATE_DIR))
    action = args.queue_command
    if action == "list":
        rows = queue.rows(state=args.state, vendor=args.vendor, limit=args.limit)
        if args.json:
            print(
                json.dumps(
                    {"counts": queue.counts(), "rows": [_public(r.to_dict()) for r in rows]},
                    indent=2,
                )
            )
        else:
            print("  ".join(f"{k} {v}" for k, v in queue.counts().items()))
            for r in rows:
                print(_row_line(r))
        return EXIT_OK
    if action == "show":
        row = queue.get(args.id)
        if row is None:
            raise CliError(f"id: no queue row {args.id}")
        doc = _public(row.to_dict())
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            for key, value in doc.items():
                if key in ("created_at", "updated_at", "next_at", "lease_until") and value:
                    value = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
                print(
                    f"{key:<12} {json.dumps(value) if isinstance(value, (dict, list)) else value}"
                )
            if row.result and "***" in row.result.values():
                print(
                    "(*** values are stored encrypted; the panel reads them through "
                    "Queue.secret_result)"
                )
        return EXIT_OK
    if action == "retry":
        if args.all_dead == (args.id is not None):
            raise CliError("queue retry needs a row id or --all-dead (not both)")
        count = queue.retry_all_dead() if args.all_dead else int(queue.retry(args.id))
        if not args.all_dead and not count:
            raise CliError(f"id: row {args.id} is not dead (only dead rows can be retried)")
        print(
            json.dumps({"retried": count})
            if args.json
            else f"{count} row{'s' * (count != 1)} pending again"
        )
        return EXIT_OK
    if action == "drop":
        if not queue.drop(args.id):
            raise CliError(f"id: row {args.id} does not exist or is being delivered right now")
        print(json.dumps({"dropped": args.id}) if args.json else f"row {args.id} dropped")
        return EXIT_OK
    count = queue.purge(args.older_than * 86400)
    print(
        json.dumps({"purged": count}) if args.json else f"{count} old done/superseded rows deleted"
    )
    return EXIT_OK


def _fault_rates(specs: list[str]) -> dict[str, float]:
    from .sandbox import FAULT_KINDS

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


def cmd_sandbox(args) -> int:
    import signal
    import threading
    from pathlib import Path

    from .sandbox import Sandbox

    try:
        sandbox = Sandbox(host=args.host, port=args.port, vendors=args.vendor, seed=args.seed)
        rates = _fault_rates(args.fault)
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
            print(
                json.dumps(
                    {
                        name: {"root": r.root, **r.config_table()}
                        for name, r in sandbox.running.items()
                    },
                    indent=2,
                )
            )
        else:
            print(snippet, end="")
        sys.stdout.flush()
        for name, running in sandbox.running.items():
            print(
                f"spamfilter: sandbox {name} on {running.root} (api_url {running.url})",
                file=sys.stderr,
            )
        print("spamfilter: sandbox running; press Ctrl-C to stop", file=sys.stderr)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    finally:
        sandbox.stop()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return args.func(args)
    except (CliError, InvalidInput) as exc:
        print(f"spamfilter: {redact(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except SpamFilterError as exc:
        print(f"spamfilter: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
