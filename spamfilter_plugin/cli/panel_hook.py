"""``spamfilter panel-hook PANEL ...``: the command a panel runs on its events.

:func:`spamfilter_plugin.cli.main` hands a ``panel-hook`` call straight to
:func:`spamfilter_plugin.panels.hook.run` without building the parser; this module gives
the command its ``--help`` and its place in ``spamfilter --help``.
"""

from __future__ import annotations

import argparse

from ..panels import KINDS


def register(sub) -> None:
    p = sub.add_parser(
        "panel-hook",
        help="what a panel runs on its events: queue them, never block the panel",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read a panel's hook call, queue the events it means for every enabled "
        "vendor, and answer the panel in its convention. It always exits 0 and never blocks "
        "or fails the panel's action; what it cannot use or queue is logged (state_dir/"
        "panel-hook.log and syslog).\n\n"
        "  spamfilter panel-hook cpanel            Standardized Hooks JSON on stdin\n"
        "  spamfilter panel-hook cpanel --describe the hooks to register, as JSON (manage_hooks)\n"
        "  spamfilter panel-hook directadmin HOOK  e.g. email_create_post (environment)\n"
        "  spamfilter panel-hook plesk EVENT       e.g. site_create (NEW_*, OLD_*)\n"
        "  spamfilter panel-hook virtualmin pre|post  VIRTUALSERVER_*, USERADMIN_*\n\n"
        "Register it with 'spamfilter install-hooks PANEL'.",
    )
    p.add_argument("panel", choices=KINDS, help="which panel is calling")
    p.add_argument("args", nargs="*", help="what the panel passes (see above)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..panels.hook import run

    return run(args.panel, args.args, config=args.config)
