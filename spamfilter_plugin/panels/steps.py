"""The steps of changing a panel's files and registrations (installing hooks and pages):
each is idempotent, printed before it is taken (``--dry-run`` only prints), and touches only
what is ours: an admin's own hooks and files are never overwritten or removed.  Each panel's
``<panel>/install.py`` and ``<panel>/ui.py`` take their steps through :class:`Steps`.

Every file a step changes or removes is first kept in a :class:`Checkpoint` (its content and
mode, or that it did not exist), so a run that fails half-way is rolled back: the files are
put back as they were, newest change first.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time

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


class Checkpoint:
    """What the files looked like before a run changed them, kept in *folder*: a copy of
    each file (``0``, ``1``, ...) and ``manifest.json`` listing ``[path, copy or null,
    mode, folders]`` in the order they were first changed (null: the file did not exist;
    *folders*: those the run made for it)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.kept: list[tuple[str, str | None, int, list[str]]] = []

    @classmethod
    def under(cls, state_dir: str, what: str) -> Checkpoint:
        """A new checkpoint in ``state_dir/checkpoints/<UTC time>-<what>``."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        base = os.path.join(state_dir, "checkpoints", f"{stamp}-{what}")
        folder, n = base, 1
        while os.path.exists(folder):
            n += 1
            folder = f"{base}-{n}"
        return cls(folder)

    def keep(self, path: str) -> None:
        """Save *path* as it is now, unless it was saved already in this run."""
        if any(entry[0] == path for entry in self.kept):
            return
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        copy, mode, made = None, 0, []
        parent = os.path.dirname(path)
        while parent and not os.path.exists(parent):
            made.append(parent)
            parent = os.path.dirname(parent)
        if os.path.lexists(path):
            copy = str(len(self.kept))
            shutil.copyfile(path, os.path.join(self.folder, copy), follow_symlinks=False)
            mode = os.stat(path).st_mode & 0o7777
            os.chmod(os.path.join(self.folder, copy), 0o600)
        self.kept.append((path, copy, mode, made))
        with open(os.path.join(self.folder, "manifest.json"), "w", encoding="utf-8") as fh:
            json.dump(self.kept, fh, indent=1)

    def rollback(self, say) -> None:
        """Put every kept file back as it was (newest first): its content and mode, or gone
        when it did not exist; *say* gets one line per file."""
        for path, copy, mode, made in reversed(self.kept):
            if copy is None:
                if os.path.lexists(path):
                    os.unlink(path)
                    say(f"rolled back: removed {path}")
                for folder in made:  # innermost first; only if the run left them empty
                    if os.path.isdir(folder) and not os.listdir(folder):
                        os.rmdir(folder)
                continue
            tmp = f"{path}.spamfilter-tmp"
            shutil.copyfile(os.path.join(self.folder, copy), tmp)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
            say(f"rolled back: restored {path}")


class Steps:
    """What is done (or would be, with *dry_run*), one line each; each file changed is kept
    in *checkpoint* first, when one is given."""

    def __init__(self, dry_run: bool, say, checkpoint: Checkpoint | None = None) -> None:
        self.dry_run, self.say, self.checkpoint = dry_run, say, checkpoint
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
            if self.checkpoint is not None:
                self.checkpoint.keep(path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.spamfilter-tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)

    def remove(self, path: str) -> None:
        self.note(("would remove: " if self.dry_run else "remove: ") + path)
        if not self.dry_run:
            if self.checkpoint is not None:
                self.checkpoint.keep(path)
            os.unlink(path)


def remove_ours(steps: Steps, path: str, mark: str = MARK) -> bool:
    """Remove *path* when it holds *mark* (it is ours); a file that is not is left alone
    (and said so). Whether it was removed."""
    text = read(path)
    if text is None:
        return False
    if mark not in text:
        steps.note(f"left alone (not ours): {path}")
        return False
    steps.remove(path)
    return True


def prune(steps: Steps, folder: str, stop: str) -> None:
    """Remove *folder* and its parents up to (not including) *stop* while they are empty."""
    while not steps.dry_run and folder.startswith(stop) and folder != stop:
        if not os.path.isdir(folder) or os.listdir(folder):
            return
        os.rmdir(folder)
        folder = os.path.dirname(folder)


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
