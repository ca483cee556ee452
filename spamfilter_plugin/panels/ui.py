"""What the panels' settings pages share (``spamfilter install-ui``; each panel's
``<panel>/ui.py`` puts the pages in that panel's documented way).

The panels run user-level pages as that user, who cannot read the root-only config: the
pages call ``sudo -n spamfilter ... ui page``, allowed by a sudoers drop-in, and
``ui page`` refuses a ``--user`` other than the one sudo reports (``SUDO_USER``), so a
user cannot ask for another's pages from a shell.
"""

from __future__ import annotations

import shlex

from . import Panel
from .steps import MARK, Steps, remove_ours

SUDOERS = "etc/sudoers.d/spamfilter-plugin"


def page_command(command: list[str], user_var: str, level: str, sudo: str | None) -> str:
    """A shell line answering one page request as ``ui page``."""
    args = [*command, "ui", "page", "--level", level]
    prefix = shlex.join([sudo, "-n", *args]) if sudo else shlex.join(args)
    # --option=value: a value the browser controls (a query starting with "-") is never
    # read as an option
    return (
        f'{prefix} --user="${user_var}" --method="${{REQUEST_METHOD:-GET}}" '
        '--query="${QUERY_STRING:-}"'
    )


def sudoers(panel: Panel, command: list[str], steps: Steps) -> None:
    line = shlex.join([*command, "ui", "page"]).replace(",", "\\,").replace(":", "\\:")
    steps.write(
        panel.path(SUDOERS),
        f"{MARK}: panel users' settings pages (ui page checks SUDO_USER)\n"
        f"ALL ALL=(root) NOPASSWD: {line} *\n",
        0o440,
    )


def remove_sudoers(panel: Panel, steps: Steps) -> None:
    remove_ours(steps, panel.path(SUDOERS))
