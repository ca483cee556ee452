"""Protection per hosting plan: the ``[plans]`` table.

::

    [plans]
    default = true                # accounts on plans not listed below
    "basic" = false               # not protected
    "business" = ["spamport"]     # protected at these vendors only

A plan's value is ``true`` (every enabled vendor), ``false`` (none) or a list of vendors.
An account's plan is what the panel's records say (cPanel's package, DirectAdmin's
``package``, Virtualmin's plan); a panel that does not tell (Plesk) gets ``default``.  Without
a ``[plans]`` table every account is protected.

The panel hook uses this module, so it imports the standard library alone.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the hook path
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

#: the events a plan decides (what protects); deletions and suspensions always go, so
#: nothing is left behind at a vendor when a plan lost its protection
PLANNED_HOOKS = ("domain_created", "domain_updated", "mailbox_added", "password_reset")


def check(table: Mapping[str, Any], vendors: Iterable[str]) -> list[str]:
    """The problems of a ``[plans]`` table, each naming the key and the fix; [] when none."""
    enabled = sorted(vendors)
    problems = []
    if "default" not in table:
        problems.append("default: missing; add default = true (or false) for unlisted plans")
    for key, value in table.items():
        if isinstance(value, bool):
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(
                f"{key!r}: must be true, false or a list of vendors such as "
                f'["{enabled[0] if enabled else "spamport"}"]'
            )
            continue
        unknown = [v for v in value if v not in enabled]
        if unknown:
            problems.append(
                f"{key!r}: {', '.join(unknown)} is not an enabled vendor (enabled: "
                f"{', '.join(enabled) or 'none'})"
            )
    return problems


def allowed(table: Mapping[str, Any] | None, plan: str | None) -> list[str] | None:
    """The vendors at which an account on *plan* is protected: None for every vendor."""
    if not table:
        return None
    value = table.get(plan, table.get("default", True)) if plan else table.get("default", True)
    if value is True:
        return None
    return [] if value is False else list(value)


def protected(table: Mapping[str, Any] | None, plan: str | None, vendors: Iterable[str]):
    """The vendors among *vendors* at which an account on *plan* is protected."""
    only = allowed(table, plan)
    return [v for v in vendors if only is None or v in only]


def reason(table: Mapping[str, Any] | None, plan: str | None, vendor: str) -> str:
    """Why *vendor* does not protect an account on *plan*, in a few words."""
    if plan and table and plan in table:
        return f"plan {plan} is not protected at {vendor}"
    return f"plan {plan or '(none)'} falls under [plans] default, not protected at {vendor}"
