"""The ``spamfilter`` command.

Exit status: 0 success; 1 a vendor failed; 2 bad input or configuration.
Secrets are never read from argv (``--password-stdin``) and never printed.

Each command group is a module of this package (``check.py``, ``emit.py``, ...)
with a ``register(subparsers)`` function that adds its subcommands and sets
``func`` to its handler (``handler(args) -> exit status``).  :func:`main`
discovers the modules, so a new command is a new module and nothing else
changes.  Modules whose names start with ``_`` are shared helpers, not commands.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..config.model import DEFAULT_PATH, ENV_VAR
from ..errors import InvalidInput, SpamFilterError
from ..panels.hook import panel_hook_call, run
from ..redaction import redact, redacting_handler
from ._common import EXIT_OK, EXIT_USAGE, EXIT_VENDOR, CliError, join_dashed_values

__all__ = ["EXIT_OK", "EXIT_USAGE", "EXIT_VENDOR", "CliError", "build_parser", "main"]


def command_modules() -> list[str]:
    """The command modules of this package, by name (read from its folders; pkgutil would
    cost the panel-hook path milliseconds)."""
    names: set[str] = set()
    for folder in __path__:
        with os.scandir(folder) as entries:
            names.update(e.name[:-3] for e in entries if e.name.endswith(".py"))
    return sorted(n for n in names if not n.startswith("_"))


def build_parser() -> argparse.ArgumentParser:
    """The parser: the global options, then each command module's subcommands."""
    p = argparse.ArgumentParser(
        prog="spamfilter",
        description="Provision inbound spam filtering for the domains and mailboxes "
        "of a hosting panel.",
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
    for name in command_modules():
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return p


def _setup_logging(verbosity: int) -> None:
    handler = redacting_handler(logging.StreamHandler(sys.stderr))
    handler.setFormatter(logging.Formatter("spamfilter: %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    hook = panel_hook_call(argv)
    if hook is not None:
        config, (panel, *rest) = hook
        return run(panel, rest, config=config)
    argv = join_dashed_values(argv)
    args = build_parser().parse_args(argv)
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
