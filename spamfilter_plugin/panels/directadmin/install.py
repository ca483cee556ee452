"""Registering DirectAdmin's hooks: ``scripts/custom/<hook>/spamfilter.sh`` per hook (the
folder form, DirectAdmin 1.60 and later), so the admin's own ``<hook>.sh`` and other
scripts in the folder are left alone."""

from __future__ import annotations

import os

from .. import Panel
from ..steps import MARK, Steps, read, wrapper
from . import HOOKS


def _paths(panel):
    base = panel.path(panel.conf["scripts_dir"])
    return [(hook, os.path.join(base, hook, "spamfilter.sh")) for hook in HOOKS]


def install(panel: Panel, command: list[str], steps: Steps) -> None:
    for hook, path in _paths(panel):
        steps.write(path, wrapper(command, "panel-hook", "directadmin", hook), 0o700)


def uninstall(panel: Panel, command: list[str], steps: Steps) -> None:
    for _hook, path in _paths(panel):
        text = read(path)
        if text is None:
            continue
        if MARK not in text:
            steps.note(f"left alone (not ours): {path}")
            continue
        steps.remove(path)
        folder = os.path.dirname(path)
        if not steps.dry_run and not os.listdir(folder):
            os.rmdir(folder)
