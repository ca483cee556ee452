"""Registering and removing our hooks, each panel's documented way.

Every step is idempotent, is printed before it is taken (``--dry-run`` only prints), and
touches only what is ours: an admin's own hooks are never overwritten or removed.

* cPanel: a wrapper script in ``/usr/local/cpanel/3rdparty/bin`` (root, 0755) that
  describes itself (``--describe``), registered with ``manage_hooks add script``;
  ``manage_hooks list --output JSON`` tells whether it is registered already.
* DirectAdmin: ``scripts/custom/<hook>/spamfilter.sh`` per hook (the folder form), so the
  admin's ``<hook>.sh`` and other scripts in the folder are left alone.
* Plesk: ``plesk bin event_handler --create`` per event, found again in ``--list``.
* Virtualmin: the server and mailbox ``post_command`` (we act at the post stage only),
  chained in front of a command the admin set: ``ours ; theirs``, so the exit status is
  still the admin command's.
"""

from __future__ import annotations

import json
import os
import shlex

from . import Panel

MARK = "# spamfilter-plugin panel hook"
CPANEL_SCRIPT = "usr/local/cpanel/3rdparty/bin/spamfilter-panel-hook"
VIRTUALMIN_CONFIGS = ("etc/webmin/virtual-server/config", "etc/webmin/useradmin/config")


class Steps:
    """What is done (or would be, with *dry_run*), one line each."""

    def __init__(self, dry_run: bool, say) -> None:
        self.dry_run, self.say, self.lines = dry_run, say, []

    def note(self, text: str) -> None:
        self.lines.append(text)
        self.say(text)

    def run(self, argv: list[str]) -> str:
        self.note(("would run: " if self.dry_run else "run: ") + shlex.join(argv))
        return "" if self.dry_run else _run(argv)

    def write(self, path: str, text: str, mode: int) -> None:
        if _read(path) == text:
            self.note(f"unchanged: {path}")
            return
        self.note(("would write: " if self.dry_run else "write: ") + path)
        if not self.dry_run:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.spamfilter-tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)

    def remove(self, path: str) -> None:
        self.note(("would remove: " if self.dry_run else "remove: ") + path)
        if not self.dry_run:
            os.unlink(path)


def _run(argv: list[str]) -> str:
    from .dns import run_command

    return run_command(argv, timeout=120)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def wrapper(command: list[str], *extra: str) -> str:
    return f'#!/bin/sh\n{MARK}\nexec {shlex.join([*command, *extra])} "$@"\n'


def install(panel: Panel, command: list[str], steps: Steps) -> None:
    """Register *panel*'s hooks; *command* runs ``spamfilter [--config X]``."""
    _BY_KIND[panel.name][0](panel, command, steps)


def uninstall(panel: Panel, command: list[str], steps: Steps) -> None:
    _BY_KIND[panel.name][1](panel, command, steps)


# -- cPanel ---------------------------------------------------------------------------


def _cpanel_registered(panel: Panel, script: str) -> bool:
    out = _run([panel.conf["manage_hooks"], "list", "--output", "JSON"])
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


def _cpanel_install(panel, command, steps):
    script = panel.path(CPANEL_SCRIPT)
    steps.write(script, wrapper(command, "panel-hook", "cpanel"), 0o755)
    if _cpanel_registered(panel, script):
        steps.note(f"unchanged: {script} is registered with manage_hooks")
        return
    steps.run([panel.conf["manage_hooks"], "add", "script", script])


def _cpanel_uninstall(panel, command, steps):
    script = panel.path(CPANEL_SCRIPT)
    if _cpanel_registered(panel, script):
        steps.run([panel.conf["manage_hooks"], "delete", "script", script])
    else:
        steps.note(f"unchanged: {script} is not registered")
    if MARK in (_read(script) or ""):
        steps.remove(script)


# -- DirectAdmin ------------------------------------------------------------------------


def _da_paths(panel):
    from .directadmin import HOOKS

    base = panel.path(panel.conf["scripts_dir"])
    return [(hook, os.path.join(base, hook, "spamfilter.sh")) for hook in HOOKS]


def _da_install(panel, command, steps):
    for hook, path in _da_paths(panel):
        steps.write(path, wrapper(command, "panel-hook", "directadmin", hook), 0o700)


def _da_uninstall(panel, command, steps):
    for _hook, path in _da_paths(panel):
        text = _read(path)
        if text is None:
            continue
        if MARK not in text:
            steps.note(f"left alone (not ours): {path}")
            continue
        steps.remove(path)
        folder = os.path.dirname(path)
        if not steps.dry_run and not os.listdir(folder):
            os.rmdir(folder)


# -- Plesk --------------------------------------------------------------------------------


def _plesk_command(command, event) -> str:
    return shlex.join([*command, "panel-hook", "plesk", event])


def _plesk_handlers(panel) -> dict[str, str]:
    """Our registered handlers: their command -> id, read from ``--list``."""
    out = _run([panel.conf["plesk"], "bin", "event_handler", "--list"])
    found, marker = {}, "panel-hook plesk "
    for line in out.splitlines():
        if marker in line:
            ident = next((w for w in line.split() if w.isdigit()), None)
            words = line[line.index(marker) + len(marker) :].split()
            if ident and words:
                found[words[0].strip("'\"")] = ident
    return found


def _plesk_install(panel, command, steps):
    from .plesk import HOOKS

    have = _plesk_handlers(panel)
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
                _plesk_command(command, event),
                "-priority",
                "50",
                "-user",
                "root",
                "-event",
                event,
            ]
        )


def _plesk_uninstall(panel, command, steps):
    for event, ident in sorted(_plesk_handlers(panel).items()):
        steps.run([panel.conf["plesk"], "bin", "event_handler", "--delete", ident])
        steps.note(f"  (that was the {event} handler)")


# -- Virtualmin -----------------------------------------------------------------------------


def _vm_config(panel, rel):
    path = panel.path(rel)
    lines = (_read(path) or "").splitlines()
    return path, lines


def _vm_set(lines, key, value):
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


def _vm_get(lines, key) -> str:
    return next((ln[len(key) + 1 :] for ln in lines if ln.startswith(key + "=")), "")


def _vm_install(panel, command, steps):
    ours = shlex.join([*command, "panel-hook", "virtualmin", "post"])
    for rel in VIRTUALMIN_CONFIGS:
        path, lines = _vm_config(panel, rel)
        if not lines and not os.path.exists(path):
            steps.note(f"skipped: {path} does not exist (is Virtualmin installed under root?)")
            continue
        current = _vm_get(lines, "post_command")
        if current == ours or current.startswith(ours + " ; "):
            steps.note(f"unchanged: {path} post_command")
            continue
        value = f"{ours} ; {current}" if current else ours
        steps.write(path, "\n".join(_vm_set(lines, "post_command", value)) + "\n", 0o600)


def _vm_uninstall(panel, command, steps):
    for rel in VIRTUALMIN_CONFIGS:
        path, lines = _vm_config(panel, rel)
        current = _vm_get(lines, "post_command")
        if "panel-hook virtualmin" not in current:
            continue
        parts = [p for p in current.split(" ; ") if "panel-hook virtualmin" not in p]
        steps.write(
            path, "\n".join(_vm_set(lines, "post_command", " ; ".join(parts))) + "\n", 0o600
        )


_BY_KIND = {
    "cpanel": (_cpanel_install, _cpanel_uninstall),
    "directadmin": (_da_install, _da_uninstall),
    "plesk": (_plesk_install, _plesk_uninstall),
    "virtualmin": (_vm_install, _vm_uninstall),
}
