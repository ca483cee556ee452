"""``spamfilter install-hooks PANEL`` and ``spamfilter uninstall-hooks PANEL``: register
our panel hooks the panel's documented way, or remove them; only ours are touched."""

from __future__ import annotations

import os
import sys

from ..errors import SpamFilterError
from ..panels import KINDS
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


def _setup(args):
    import shlex

    from ..config.model import config_path, read_file
    from ..panels import configured

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


def _go(args, action) -> int:
    from ..panels.install import Steps

    try:
        panel, command = _setup(args)
        steps = Steps(args.dry_run, print)
        action(panel, command, steps)
    except (ValueError, RuntimeError, OSError, SpamFilterError) as exc:
        print(f"spamfilter: {args.panel}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _install(args) -> int:
    from ..panels.install import install

    return _go(args, install)


def _uninstall(args) -> int:
    from ..panels.install import uninstall

    return _go(args, uninstall)
