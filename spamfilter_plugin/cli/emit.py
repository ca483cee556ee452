"""``spamfilter emit``: queue a panel event for every enabled vendor that handles it
(what a panel hook runs); ``--now`` also delivers it and waits."""

from __future__ import annotations

import sys
import time
from typing import Any

from ..events import (
    BY_CLI_NAME,
    DomainCreated,
    DomainDeleted,
    DomainSuspended,
    DomainUnsuspended,
    DomainUpdated,
    PasswordReset,
)
from ..redaction import Secret
from ._common import EXIT_OK, CliError, note, print_json, print_outcomes, runtime


def register(sub) -> None:
    e = sub.add_parser(
        "emit",
        help="queue a panel event (domain created, ...) for every enabled vendor",
        description="Queue one lifecycle event for every enabled vendor that handles it and "
        "return at once; the worker delivers it. With --now, deliver it at once and wait for "
        "the result (what fails is retried by the worker later). Each vendor is handled on "
        "its own.",
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
        "--reason", help="domain-suspended: the panel's reason (free text, kept as shown)"
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


def build_event(args):
    """The event the options describe; CliError naming the option when they do not fit."""
    cls = BY_CLI_NAME[args.event]
    needs_domain = cls in (
        DomainCreated,
        DomainDeleted,
        DomainUpdated,
        DomainSuspended,
        DomainUnsuspended,
    )
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
    if args.reason and cls is not DomainSuspended:
        raise CliError(f"--reason does not apply to {args.event}")
    if args.password_stdin and cls is not PasswordReset:
        raise CliError(f"--password-stdin does not apply to {args.event}")
    kwargs: dict[str, Any] = {}
    if cls is PasswordReset:
        if args.domain:
            kwargs["domain"] = args.domain
        else:
            kwargs["mailbox"] = args.mailbox
        if args.password_stdin:
            raw = sys.stdin.buffer.readline(65536)
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise CliError(
                    "--password-stdin: standard input is not UTF-8 text; send the password as UTF-8"
                ) from None
            if not line:
                raise CliError("--password-stdin: standard input held no password")
            kwargs["password"] = Secret(line)
    elif needs_domain:
        kwargs["domain"] = args.domain
        if args.destination:
            kwargs["destination"] = args.destination
        if args.reason:
            kwargs["reason"] = args.reason
    else:
        kwargs["mailbox"] = args.mailbox
    return cls(**kwargs)


def cmd_emit(args) -> int:
    from ..emit import emit

    event = build_event(args)
    receipt = emit(event, args.config)
    if not args.now:
        if args.json:
            print_json({"event": event.to_dict(), "queued": receipt.rows})
        elif receipt.rows:
            rows = ", ".join(str(i) for i in receipt.rows.values())
            print(f"queued {args.event} for {', '.join(receipt.rows)} (rows {rows})")
        else:
            print(f"no enabled vendor handles {args.event}; nothing to do")
        return EXIT_OK
    from ..worker import Worker

    rt = runtime(args)
    worker = Worker(rt)
    try:
        ids = worker.queue.relayed(receipt.rows.values())  # in the fleet: its rows there
        receipt.rows = {v: ids[i] for v, i in receipt.rows.items() if i in ids}
        mine = {d.row.id: d for d in worker.deliver_now(receipt.rows.values())}
        outcomes = []
        for vendor, row_id in receipt.rows.items():
            delivery = mine.get(row_id)
            if delivery is not None:
                outcomes.append(delivery.outcome)
                if not delivery.outcome.ok and delivery.final_state == "pending":
                    note(f"{vendor}: will be retried by the worker (queue row {row_id})")
                continue
            suspended = rt.suspended(vendor) if vendor in rt.contexts else None
            if suspended is not None:  # not attempted: say why, and count it as a failure
                outcomes.append(suspended)
                note(f"{vendor}: not delivered, left queued (row {row_id}): {suspended.error}")
                continue
            wait = rt.config.general.lease_seconds + 2.0
            outcomes.append(followed(worker.queue, vendor, row_id, wait))
    finally:
        worker.queue.close()
    return print_outcomes(outcomes, args.json, {"event": event.to_dict(), "queued": receipt.rows})


def followed(queue, vendor: str, row_id: int, wait: float, poll: float = 0.1):
    """The outcome of a row this command did not deliver itself: another worker had it, or an
    earlier event of its target goes first.  Waits up to *wait* seconds for another worker's
    delivery to end; says plainly what is left and how to follow it."""
    from ..errors import VendorError, VendorHeld
    from ..manager import Outcome

    deadline = time.monotonic() + wait
    follow = f"follow it with 'spamfilter queue show {row_id}'"
    while True:
        row = queue.get(row_id)
        if row is None:
            return Outcome(
                vendor, False, error=VendorHeld(vendor, f"queue row {row_id} was dropped")
            )
        if row.state == "done":
            result = row.result if isinstance(row.result, dict) else {}
            message = f"delivered by another worker (queue row {row_id})"
            return Outcome(vendor, True, result={**result, "message": message})
        if row.state == "superseded":
            return Outcome(vendor, True, result={"message": f"row {row_id}: {row.last_error}"})
        if row.state == "dead":
            return Outcome(vendor, False, error=VendorError(vendor, row.last_error or "failed"))
        if row.state == "pending" and row.attempts:
            text = f"{row.last_error}; the worker retries it (queue row {row_id}); {follow}"
            return Outcome(vendor, False, error=VendorError(vendor, text))
        ahead = queue.ahead_of(row) if row.state == "pending" else None
        if ahead is not None:
            text = (
                f"not delivered yet: queued behind row {ahead.id} ({ahead.hook} of "
                f"{ahead.target.split(':', 1)[1]}, {ahead.state}); the worker delivers both in "
                f"order; {follow}"
            )
            return Outcome(vendor, False, error=VendorHeld(vendor, text))
        if time.monotonic() >= deadline:
            who = f"another worker ({row.lease_owner})" if row.lease_owner else "another worker"
            text = f"not finished: {who} is delivering queue row {row_id}; {follow}"
            return Outcome(vendor, False, error=VendorHeld(vendor, text))
        time.sleep(poll)
