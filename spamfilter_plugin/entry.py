"""The ``spamfilter`` console script.

A ``panel-hook`` call (what a panel runs, and waits for) goes straight to
:func:`spamfilter_plugin.panels.hook.run`, without the command-line parser, its
command modules or the logging set-up; everything else goes to
:func:`spamfilter_plugin.cli.main`.  This module imports only the standard library's
``sys`` (and the panel-hook entry, which is as light).
"""

from __future__ import annotations

import sys


def main() -> int:
    from .panels.hook import panel_hook_call, run

    argv = sys.argv[1:]
    hook = panel_hook_call(argv)
    if hook is not None:
        config, (panel, *rest) = hook
        return run(panel, rest, config=config)
    from .cli import main as cli_main

    return cli_main(argv)
