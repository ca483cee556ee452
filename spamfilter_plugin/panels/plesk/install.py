"""Registering Plesk's hooks: ``plesk bin event_handler --create`` per event, found again in
``--list``."""

from __future__ import annotations

import shlex

from .. import Panel
from ..steps import Steps, run
from . import HOOKS


def _command(command, event) -> str:
    return shlex.join([*command, "panel-hook", "plesk", event])


def _handlers(panel) -> dict[str, str]:
    """Our registered handlers: their command -> id, read from ``--list``."""
    out = run([panel.conf["plesk"], "bin", "event_handler", "--list"])
    found, marker = {}, "panel-hook plesk "
    for line in out.splitlines():
        if marker in line:
            ident = next((w for w in line.split() if w.isdigit()), None)
            words = line[line.index(marker) + len(marker) :].split()
            if ident and words:
                found[words[0].strip("'\"")] = ident
    return found


def install(panel: Panel, command: list[str], steps: Steps) -> None:
    have = _handlers(panel)
    for event in HOOKS:
        if event in have:
            steps.note(f"unchanged: the {event} handler (id {have[event]})")
            continue
        steps.run(
            [
                panel.conf["plesk"],
                "bin",
                "event_handler",
                "--create",
                "-command",
                _command(command, event),
                "-priority",
                "50",
                "-user",
                "root",
                "-event",
                event,
            ]
        )


def uninstall(panel: Panel, command: list[str], steps: Steps) -> None:
    for event, ident in sorted(_handlers(panel).items()):
        steps.run([panel.conf["plesk"], "bin", "event_handler", "--delete", ident])
        steps.note(f"  (that was the {event} handler)")
