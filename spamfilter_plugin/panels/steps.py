"""The steps of changing a panel's files and registrations (installing hooks and pages):
each is idempotent, printed before it is taken (``--dry-run`` only prints), and touches only
what is ours: an admin's own hooks and files are never overwritten or removed.  Each panel's
``<panel>/install.py`` and ``<panel>/ui.py`` take their steps through :class:`Steps`.
"""

from __future__ import annotations

import os
import shlex
import subprocess

from ..errors import PanelError

MARK = "# spamfilter-plugin panel hook"


#: seconds a panel command or call may take
TIMEOUT = 60.0


def run_command(argv: list[str], timeout: float = TIMEOUT) -> str:
    """Run a panel command; its standard output, or PanelError naming the command, its exit
    status and what it printed on standard error."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise PanelError(f"{argv[0]} not found; check the [panel] table", temporary=False) from None
    except subprocess.TimeoutExpired:
        raise PanelError(f"{shlex.join(argv)} did not finish within {timeout:g}s") from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip())[:300]
        raise PanelError(f"{shlex.join(argv)} failed (exit {done.returncode}): {said}")
    return done.stdout


class Steps:
    """What is done (or would be, with *dry_run*), one line each."""

    def __init__(self, dry_run: bool, say) -> None:
        self.dry_run, self.say = dry_run, say
        self.lines: list[str] = []

    def note(self, text: str) -> None:
        self.lines.append(text)
        self.say(text)

    def run(self, argv: list[str]) -> str:
        self.note(("would run: " if self.dry_run else "run: ") + shlex.join(argv))
        return "" if self.dry_run else run(argv)

    def write(self, path: str, text: str, mode: int) -> None:
        if read(path) == text:
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


def run(argv: list[str]) -> str:
    """Run a panel command (two minutes at most); its output, or PanelError."""
    return run_command(argv, timeout=120)


def read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def wrapper(command: list[str], *extra: str) -> str:
    """A hook script that runs ``spamfilter ...`` with the panel's arguments after *extra*."""
    return f'#!/bin/sh\n{MARK}\nexec {shlex.join([*command, *extra])} "$@"\n'
