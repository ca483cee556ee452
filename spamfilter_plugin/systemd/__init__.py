"""The systemd units of the worker and the console (package data, :class:`string.Template`
files), filled in with an installation's paths, and ``systemctl`` as ``setup`` uses it."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from string import Template

#: the units, by file name, in the order they are enabled
UNITS = ("spamfilter-worker.service", "spamfilter-console.service")
#: the first line of every unit we ship: how ``teardown`` knows a unit file is ours
MARK = "# spamfilter-plugin "


def template(name: str) -> Template:
    return Template(resources.files(__package__).joinpath(name).read_text("utf-8"))


def _word(value: str) -> str:
    """A path as one word of a unit file (quoted when it holds spaces)."""
    if any(c.isspace() for c in value) or '"' in value:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def unit(name: str, exe: str, config: str, state_dir: str, port: int = 8025) -> str:
    """The shipped unit *name* with this installation's executable, config file, state
    directory and console port."""
    values = {"exe": exe, "config": config, "state_dir": state_dir, "port": str(port)}
    return template(name).substitute({k: _word(v) for k, v in values.items()})


class Systemctl:
    """``systemctl`` (the one on ``PATH``): reads a unit's state, and changes it."""

    def __init__(self, say) -> None:
        self.say = say
        self.exe = shutil.which("systemctl") or "systemctl"

    def _call(self, *args: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                [self.exe, *args], capture_output=True, text=True, timeout=120, check=False
            )
        except FileNotFoundError:
            raise RuntimeError("systemctl not found: is this a systemd system?") from None

    def enabled(self, name: str) -> bool:
        return self._call("is-enabled", "--quiet", name).returncode == 0

    def active(self, name: str) -> bool:
        return self._call("is-active", "--quiet", name).returncode == 0

    def change(self, *args: str) -> None:
        """``systemctl ARGS`` (printed first); RuntimeError naming what it said on failure."""
        self.say("run: systemctl " + " ".join(args))
        done = self._call(*args)
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip())[:300]
            command = " ".join(args)
            raise RuntimeError(f"systemctl {command} failed (exit {done.returncode}): {said}")
