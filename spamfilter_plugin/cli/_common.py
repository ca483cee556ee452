"""What every command module shares: exit codes, the usage error, loading the runtime,
and printing results with secrets masked."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any

from ..logformat import note_line
from ..redaction import MASK, Secret, redact

EXIT_OK, EXIT_VENDOR, EXIT_USAGE = 0, 1, 2

#: options whose value is checked by our own validation, which names the field, even when
#: it starts with "-" (argparse would take "--domain -bad.com" for a missing value)
DASHED_VALUES = frozenset({"--domain", "--mailbox", "--destination"})


def join_dashed_values(argv: list[str]) -> list[str]:
    """``--domain -bad.com`` becomes ``--domain=-bad.com``, so the value reaches validation."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        value = argv[i + 1] if i + 1 < len(argv) else ""
        if argv[i] in DASHED_VALUES and value.startswith("-") and not value.startswith("--"):
            out.append(f"{argv[i]}={value}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


log = logging.getLogger(__name__)


class CliError(Exception):
    """A one-line reason to stop with exit status 2 (name the option or value at fault)."""


def runtime(args):
    """Load the config and the enabled vendors, apply ``general.log_level`` (unless -v was
    given), and refresh the capability cache that ``emit`` reads."""
    from ..emit import refresh_capabilities
    from ..manager import load_runtime

    rt = load_runtime(args.config)
    if not args.verbose:  # -v/-vv on the command line win over general.log_level
        logging.getLogger().setLevel(rt.config.general.log_level.upper())
    from ..logformat import use

    use(rt.config.general.log_format)
    refresh_capabilities(rt)
    return rt


def public(value: Any) -> Any:
    """A result made safe to print: secrets masked, objects turned into strings."""
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [public(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(value)


def print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2))


def print_outcomes(outcomes, as_json: bool, extra: dict | None = None) -> int:
    """One line (or one JSON entry) per vendor; EXIT_VENDOR when any failed."""
    failed = [o for o in outcomes if not o.ok]
    if as_json:
        doc = dict(extra or {})
        doc["ok"] = not failed
        doc["vendors"] = [
            {
                "vendor": o.vendor,
                "ok": o.ok,
                "result": public(o.result),
                "error": str(o.error) if o.error else None,
                "error_type": type(o.error).__name__ if o.error else None,
            }
            for o in outcomes
        ]
        print_json(doc)
    else:
        for o in outcomes:
            if o.ok:
                detail = public(o.result)
                shown = f" ({detail})" if detail not in (None, "", {}) else ""
                print(f"{o.vendor}: ok{shown}")
            else:
                print(f"{o.vendor}: FAILED: {o.error}")
    return EXIT_VENDOR if failed else EXIT_OK


def stop_event() -> threading.Event:
    """An event set by SIGTERM or Ctrl-C, for commands that run until stopped."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def wait_until_stopped(stop: threading.Event) -> None:
    """Wait for *stop* in the main thread, waking every half second: a signal the kernel
    hands to another thread only marks its handler as due, and a main thread blocked in a
    plain wait would not run it until something else woke it."""
    while not stop.wait(0.5):
        pass


def note(message: str, **fields: object) -> None:
    """Progress and notes go to standard error, so standard output stays parseable (as JSON
    objects with ``log_format = "json"``, *fields* then as fields of their own)."""
    notes([(message, fields)])


def notes(lines: Iterable[tuple[str, dict[str, object]]]) -> None:
    """:func:`note` for each ``(message, fields)``, all in one write (one system call)."""
    sys.stderr.write("".join(note_line(message, **fields) + "\n" for message, fields in lines))


def audited(config, **entry) -> None:
    """Write an audit entry (:func:`~..audit.record`) for a command run by a person, as
    ``cli:<unix user>``, into the queue *config* names (a path, or a loaded Config); a config
    that cannot be read leaves nothing to write to, and the command goes on."""
    from .. import audit
    from ..errors import SpamFilterError
    from ..queue import queue_of

    try:
        if not hasattr(config, "general"):
            from ..manager import load_runtime

            config = load_runtime(config).config
        with queue_of(config) as queue:
            audit.record(queue, actor=audit.cli_actor(), origin="cli", **entry)
    except SpamFilterError as exc:
        log.warning("not written to the audit log: %s", exc)
