"""``spamfilter metrics``: the operations metrics in Prometheus' text format, printed or
written for node_exporter's textfile collector (servers that run no console)."""

from __future__ import annotations

import sys

from ._common import EXIT_OK, CliError, runtime


def register(sub) -> None:
    p = sub.add_parser(
        "metrics",
        help="print the operations metrics, or write them for node_exporter",
        description="The metrics /metrics serves (see docs/operations.md), read "
        "from the queue now. Without --textfile they are printed.",
    )
    p.add_argument(
        "--textfile",
        metavar="PATH",
        help="write them to PATH (a .prom file in node_exporter's --collector.textfile."
        "directory), atomically: a temporary file beside it, then renamed over it",
    )
    p.set_defaults(func=cmd_metrics)


def cmd_metrics(args) -> int:
    from ..metrics import exposition, write_textfile
    from ..queue import queue_of

    rt = runtime(args)
    queue = queue_of(rt.config)
    try:
        if args.textfile:
            try:
                write_textfile(rt, queue, args.textfile)
            except OSError as exc:
                raise CliError(
                    f"--textfile: cannot write {args.textfile} ({exc.strerror}); give a path "
                    "in a directory this user can write"
                ) from None
        else:
            sys.stdout.write(exposition(rt, queue).decode())
    finally:
        queue.close()
    return EXIT_OK
