"""``spamfilter install-hooks PANEL`` and ``spamfilter uninstall-hooks PANEL``: register
our panel hooks the panel's documented way, or remove them; only ours are touched."""

from __future__ import annotations

import os
import shlex
import sys

from ..config.model import config_path, read_file
from ..errors import SpamFilterError
from ..panels import KINDS, Panel, configured
from ..panels.steps import Steps
from ._common import EXIT_OK, EXIT_USAGE


def register(sub) -> None:
    for name, verb in (("install-hooks", "register"), ("uninstall-hooks", "remove")):
        p = sub.add_parser(
            name,
            help=f"{verb} spamfilter-plugin's hooks in a panel",
            description=f"{verb.capitalize()} the hooks through which PANEL tells us of its "
            "events, the panel's documented way (cPanel manage_hooks; DirectAdmin "
            "scripts/custom/<hook>/spamfilter.sh; Plesk event_handler; Virtualmin "
            "post_command, chained with the admin's). Each step is printed; running it "
            "twice changes nothing more; hooks that are not ours are never changed. Files "
            "are read and written under [panel] root.",
        )
        p.add_argument("panel", choices=KINDS, help="the panel")
        p.add_argument("--dry-run", action="store_true", help="print the steps, take none")
        p.set_defaults(func=_install if name == "install-hooks" else _uninstall)


def panel_and_command(args) -> tuple[Panel, list[str]]:
    """The configured panel adapter of ``args.panel``, and the command its hooks and pages
    run (``[panel] hook_command``, else the ``spamfilter`` beside this Python)."""
    path = config_path(args.config)
    panel, mismatch = configured(read_file(path).data, args.panel)
    if mismatch:
        print(f"spamfilter: {mismatch}", file=sys.stderr)
    if panel.conf["hook_command"]:
        command = shlex.split(panel.conf["hook_command"])
    else:
        exe = os.path.join(os.path.dirname(sys.executable), "spamfilter")
        command = [exe if os.path.exists(exe) else "spamfilter", "--config", str(path.resolve())]
    return panel, command


def run_steps(args, action: str) -> int:
    try:
        panel, command = panel_and_command(args)
        getattr(panel, action)(command, Steps(args.dry_run, print))
    except (ValueError, RuntimeError, OSError, SpamFilterError) as exc:
        print(f"spamfilter: {args.panel}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _install(args) -> int:
    return run_steps(args, "install")


def _uninstall(args) -> int:
    return run_steps(args, "uninstall")
