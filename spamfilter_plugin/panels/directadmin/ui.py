"""DirectAdmin's settings pages: a plugin folder, ``plugins/spamfilter/`` with ``plugin.conf``
and executable ``admin/``, ``reseller/`` and ``user/index.html`` scripts whose output
DirectAdmin puts into its skin; the logged-in user is ``$USERNAME``, the query
``$QUERY_STRING`` and a POST body ``$POST`` (DirectAdmin passes everything in the
environment)."""

from __future__ import annotations

import os

from ... import __version__
from .. import Panel
from ..steps import MARK, Steps, prune, remove_ours
from ..ui import page_command, remove_sudoers, sudoers


def _base(panel: Panel) -> str:
    return os.path.join(panel.path(panel.conf["plugins_dir"]), "spamfilter")


def install_ui(panel: Panel, command: list[str], steps: Steps) -> None:
    base = _base(panel)
    steps.write(
        os.path.join(base, "plugin.conf"),
        "name=Spam filtering\nid=spamfilter\nauthor=spamfilter-plugin\n"
        f"version={__version__}\nactive=yes\ninstalled=yes\n",
        0o644,
    )
    for level in ("admin", "reseller", "user"):
        body = page_command(command, "USERNAME", level, panel.conf["sudo"])
        steps.write(
            os.path.join(base, level, "index.html"),
            f"#!/bin/sh\n{MARK}\nprintf '%s' \"${{POST:-}}\" | {body}\n",
            0o755,
        )
        steps.write(os.path.join(base, "hooks", f"{level}_txt.html"), "Spam filtering\n", 0o644)
    sudoers(panel, command, steps)


def uninstall_ui(panel: Panel, command: list[str], steps: Steps) -> None:
    base = _base(panel)
    for level in ("admin", "reseller", "user"):
        remove_ours(steps, os.path.join(base, level, "index.html"))
        remove_ours(steps, os.path.join(base, "hooks", f"{level}_txt.html"), "Spam filtering")
        prune(steps, os.path.join(base, level), base)
    prune(steps, os.path.join(base, "hooks"), base)
    remove_ours(steps, os.path.join(base, "plugin.conf"), "id=spamfilter")
    prune(steps, base, os.path.dirname(base))
    remove_sudoers(panel, steps)
