"""Registering Virtualmin's hooks: the server and mailbox ``post_command`` (we act at the post
stage only), chained in front of a command the admin set: ``ours ; theirs``, so the exit
status is still the admin command's."""

from __future__ import annotations

import os
import shlex

from .. import Panel
from ..steps import Steps, read

VIRTUALMIN_CONFIGS = ("etc/webmin/virtual-server/config", "etc/webmin/useradmin/config")


def _config(panel, rel):
    path = panel.path(rel)
    lines = (read(path) or "").splitlines()
    return path, lines


def _set(lines, key, value):
    out, seen = [], False
    for line in lines:
        if line.startswith(key + "="):
            if not seen:
                out.append(f"{key}={value}")
            seen = True
        else:
            out.append(line)
    if not seen:
        out.append(f"{key}={value}")
    return out


def _get(lines, key) -> str:
    return next((ln[len(key) + 1 :] for ln in lines if ln.startswith(key + "=")), "")


def install(panel: Panel, command: list[str], steps: Steps) -> None:
    ours = shlex.join([*command, "panel-hook", "virtualmin", "post"])
    for rel in VIRTUALMIN_CONFIGS:
        path, lines = _config(panel, rel)
        if not lines and not os.path.exists(path):
            steps.note(f"skipped: {path} does not exist (is Virtualmin installed under root?)")
            continue
        current = _get(lines, "post_command")
        if current == ours or current.startswith(ours + " ; "):
            steps.note(f"unchanged: {path} post_command")
            continue
        value = f"{ours} ; {current}" if current else ours
        steps.write(path, "\n".join(_set(lines, "post_command", value)) + "\n", 0o600)


def uninstall(panel: Panel, command: list[str], steps: Steps) -> None:
    for rel in VIRTUALMIN_CONFIGS:
        path, lines = _config(panel, rel)
        current = _get(lines, "post_command")
        if "panel-hook virtualmin" not in current:
            continue
        parts = [p for p in current.split(" ; ") if "panel-hook virtualmin" not in p]
        steps.write(path, "\n".join(_set(lines, "post_command", " ; ".join(parts))) + "\n", 0o600)
