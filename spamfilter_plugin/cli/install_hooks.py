"""``spamfilter install-hooks PANEL`` and ``spamfilter uninstall-hooks PANEL``: register
our panel hooks the panel's documented way, or remove them; only ours are touched."""

from __future__ import annotations

import os
import shlex
import sys

from ..config.model import config_path, read_file
from ..errors import SpamFilterError
from ..panels import KINDS, Panel, configured
from ..panels.steps import Checkpoint, Steps
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
    """Take *action*'s steps (``install``, ``uninstall``, ``install_ui``); every file they
    change is checkpointed first, and a run that fails half-way is rolled back (an install's
    registrations by the panel's own uninstall, which removes only ours)."""
    steps = None
    try:
        panel, command = panel_and_command(args)
        what = f"{action.replace('_', '-')}-{args.panel}"
        checkpoint = None if args.dry_run else Checkpoint.under(state_dir_of(args), what)
        steps = Steps(args.dry_run, print, checkpoint)
        getattr(panel, action)(command, steps)
    except (ValueError, RuntimeError, OSError, SpamFilterError) as exc:
        print(f"spamfilter: {args.panel}: {exc}", file=sys.stderr)
        if steps is not None and steps.checkpoint is not None:
            roll_back(panel, command, action, steps)
        return EXIT_USAGE
    if steps.checkpoint is not None and steps.checkpoint.kept:
        print(f"checkpoint: the files as they were before are kept in {steps.checkpoint.folder}")
    return EXIT_OK


def roll_back(panel: Panel, command: list[str], action: str, steps: Steps) -> None:
    """Undo a run that failed half-way: the registrations it made with the panel's commands
    (an install that ran any: the panel's uninstall, which removes only ours), then every
    file it changed, as it was."""
    assert steps.checkpoint is not None
    if action == "install" and any(line.startswith("run: ") for line in steps.lines):
        _undo_registrations(panel, command)
    steps.checkpoint.rollback(print)
    if steps.checkpoint.kept:
        print(
            f"spamfilter: {panel.name}: rolled back; the files as they were before are kept in "
            f"{steps.checkpoint.folder}",
            file=sys.stderr,
        )


def _undo_registrations(panel: Panel, command: list[str]) -> None:
    """A half-done install's registrations made by panel commands, removed (ours only)."""
    try:
        panel.uninstall(command, Steps(False, lambda line: print("rolling back: " + line)))
    except (ValueError, RuntimeError, OSError, SpamFilterError) as exc:
        print(f"spamfilter: rolling back the registrations failed too: {exc}", file=sys.stderr)


def state_dir_of(args) -> str:
    """``[general] state_dir`` of the config file (its default when it names none)."""
    from ..config.file import DEFAULT_STATE_DIR

    general = read_file(config_path(args.config)).data.get("general", {})
    return str(general.get("state_dir") or DEFAULT_STATE_DIR)


def _install(args) -> int:
    return run_steps(args, "install")


def _uninstall(args) -> int:
    return run_steps(args, "uninstall")
