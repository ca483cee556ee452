"""Registering cPanel's hooks: a wrapper script in ``/usr/local/cpanel/3rdparty/bin``
(root, 0755) that describes itself (``--describe``), registered with ``manage_hooks add
script``; ``manage_hooks list --output JSON`` tells whether it is registered already."""

from __future__ import annotations

import json

from .. import Panel
from ..steps import MARK, Steps, read, run, wrapper
from . import CPANEL_SCRIPT


def _registered(panel: Panel, script: str) -> bool:
    out = run([panel.conf["manage_hooks"], "list", "--output", "JSON"])
    found = []

    def walk(value):
        if isinstance(value, dict):
            if value.get("hook", "").split(" ")[0] == script:
                found.append(value)
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    try:
        walk(json.loads(out or "null"))
    except ValueError:
        raise RuntimeError("manage_hooks list --output JSON did not print JSON") from None
    return bool(found)


def install(panel: Panel, command: list[str], steps: Steps) -> None:
    script = panel.path(CPANEL_SCRIPT)
    steps.write(script, wrapper(command, "panel-hook", "cpanel"), 0o755)
    if _registered(panel, script):
        steps.note(f"unchanged: {script} is registered with manage_hooks")
        return
    steps.run([panel.conf["manage_hooks"], "add", "script", script])


def uninstall(panel: Panel, command: list[str], steps: Steps) -> None:
    script = panel.path(CPANEL_SCRIPT)
    if _registered(panel, script):
        steps.run([panel.conf["manage_hooks"], "delete", "script", script])
    else:
        steps.note(f"unchanged: {script} is not registered")
    if MARK in (read(script) or ""):
        steps.remove(script)
