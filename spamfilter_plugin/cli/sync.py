"""``spamfilter sync``: bring each vendor's domain list in line with the panel's."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any

from ._common import EXIT_OK, EXIT_VENDOR, CliError, audited, note, runtime


def register(sub) -> None:
    s = sub.add_parser(
        "sync",
        help="bring each vendor's domains in line with the panel's (add, remove, fix routes)",
        description="Compare the panel's domains with each enabled vendor's domain list and "
        "fix the difference: add what the vendor lacks, remove what the plugin added that the "
        "panel no longer has, and update a domain whose mail goes to the wrong host. A domain "
        "someone added at the vendor by hand is never removed unless --prune-foreign is "
        "given. The changes go through the queue and are delivered up to each vendor's "
        "concurrency at once; what fails temporarily is left to the worker, and running sync "
        "again continues where it stopped without doing anything twice.",
        epilog="Exit status: 0 when every vendor is in line (or the dry run planned), 1 when "
        "a change failed, is still being retried, or a vendor's list could not be read, 2 for "
        "a bad option, config or domain list.",
    )
    s.add_argument(
        "--domains-from",
        metavar="FILE",
        help="read the panel's domains from FILE (- for standard input), one a line: a "
        "domain, optionally followed by its destination host; # starts a comment. Default: "
        "ask the panel of the [panel] table",
    )
    s.add_argument(
        "--vendor",
        action="append",
        metavar="NAME",
        help="reconcile only this vendor (repeatable; default every enabled vendor that "
        "keeps a domain list)",
    )
    s.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    s.add_argument(
        "--prune-foreign",
        action="store_true",
        help="also remove domains held at the vendor that the plugin did not add",
    )
    s.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document: every change with its outcome, then a summary",
    )
    s.add_argument("--quiet", action="store_true", help="print the summary only, not each change")
    s.set_defaults(func=cmd_sync)


def wanted_domains(args, rt):
    from ..sync import panel_domains, read_domains

    if args.domains_from is None:
        return panel_domains(rt)
    if args.domains_from == "-":
        return read_domains(sys.stdin, "stdin")
    try:
        with open(args.domains_from, encoding="utf-8") as fh:
            return read_domains(fh, args.domains_from)
    except OSError as exc:
        raise CliError(
            f"--domains-from {args.domains_from}: cannot read it ({exc.strerror})"
        ) from None
    except UnicodeDecodeError:
        raise CliError(f"--domains-from {args.domains_from}: not UTF-8 text") from None


class Printer:
    """Each outcome as a line (or a JSON entry) as it is known, a progress bar on a
    terminal, and the summary at the end.  Keeps counts, never the outcomes."""

    def __init__(self, as_json: bool, quiet: bool, dry_run: bool) -> None:
        self.as_json, self.quiet, self.dry_run = as_json, quiet, dry_run
        self.first = True
        self.bar: Any = None  # a tqdm bar on a terminal
        if as_json:
            sys.stdout.write('{"dry_run": ' + json.dumps(dry_run) + ', "changes": [')

    def start(self, vendor: str, total: int) -> None:
        self.close_bar()
        if total and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=vendor, unit="domain", file=sys.stderr, leave=False)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def outcome(self, out) -> None:
        from ..redaction import redact
        from ..sync import printable

        doc = out.to_dict()
        doc["reason"] = redact(doc["reason"])
        if self.bar is not None and out.state != "left":
            self.bar.update(1)
        if self.as_json:
            sys.stdout.write(("\n  " if self.first else ",\n  ") + json.dumps(doc))
            self.first = False
        elif not self.quiet:
            line = printable(
                f"{doc['vendor']:<12} {doc['action']:<8} {doc['domain']:<40} "
                f"{doc['outcome']}: {doc['reason']}"
            )
            if self.bar is not None:
                self.bar.write(line, file=sys.stdout)
            else:
                print(line)

    def finish(self, reports) -> None:
        from ..sync import printable

        self.close_bar()
        if self.as_json:
            summary = json.dumps([r.to_dict() for r in reports], indent=2)
            sys.stdout.write(("\n" if not self.first else "") + '], "vendors": ' + summary + "}\n")
            return
        for r in reports:
            if r.skipped:
                print(f"{r.vendor}: skipped: {r.skipped}")
            elif r.error:
                print(f"{r.vendor}: FAILED: {printable(r.error)}")
            else:
                counts = ", ".join(f"{n} {k}" for k, n in sorted(r.planned.items())) or "nothing"
                done = ", ".join(f"{n} {k}" for k, n in sorted(r.outcomes.items()))
                verb = "would change" if self.dry_run else "changes"
                print(
                    f"{r.vendor}: holds {r.held} domains; {verb}: {counts}"
                    + (f"; outcomes: {done}" if done and not self.dry_run else "")
                )


def cmd_sync(args) -> int:
    from ..errors import SpamFilterError
    from ..sync import ChangeOutcome, Reconcile, VendorReport

    rt = runtime(args)
    wanted = wanted_domains(args, rt)
    sync = Reconcile.of(rt, wanted, prune_foreign=args.prune_foreign)
    vendors = sync.vendors(args.vendor)
    printer = Printer(args.json, args.quiet, args.dry_run)
    reports = []
    if not args.json:
        note(f"spamfilter: {len(wanted)} domains on the panel; vendors: {', '.join(vendors)}")
    try:
        for vendor in vendors:
            report = VendorReport(vendor)
            reports.append(report)
            if not sync.keeps_list(vendor):
                report.skipped = "keeps no domain list (mailbox-level vendor)"
                continue

            def counted(out, report=report):
                report.outcomes[out.state] += 1
                printer.outcome(out)

            def planned(changes, report=report):
                for change in changes:
                    report.planned[change.action] += 1
                    yield change

            try:
                changes = planned(sync.plan(vendor))
                if args.dry_run:
                    for change in changes:
                        counted(ChangeOutcome(change, "planned", change.reason))
                else:
                    sync.apply(
                        vendor,
                        changes,
                        counted,
                        started=functools.partial(printer.start, vendor),
                    )
            except SpamFilterError as exc:
                report.error = str(exc)
            report.held = sync.held
            printer.close_bar()
            if not args.dry_run and not report.skipped:
                done = ", ".join(f"{n} {state}" for state, n in sorted(report.outcomes.items()))
                audited(rt.config, action="sync", scope="vendor", target=vendor, vendor=vendor,
                        changed={a: {"new": n} for a, n in sorted(report.planned.items())},
                        outcome=(f"failed: {report.error}" if report.error
                                 else f"ok: {done or 'nothing to change'}"))  # fmt: skip
    finally:
        printer.finish(reports)
    bad = any(r.error or r.outcomes.get("failed") or r.outcomes.get("retrying") for r in reports)
    return EXIT_VENDOR if bad else EXIT_OK
