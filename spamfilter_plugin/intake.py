"""The one way events go into the queue.

Whoever queues an event (a panel's hook, ``spamfilter emit``, the console's bulk actions,
``sync``, the MX flow) calls :func:`enqueue`, which decides which vendors get it
(:func:`vendors_for`: each enabled vendor that handles the event's hook, from the same
capability map the runtime and the panel-hook cache give) and appends the rows through the
queue's store in one transaction.  Nothing else writes rows (a test holds the package to it).

This module imports the standard library alone and :mod:`.eventdata`'s normalisers: a
panel waits while its hook runs.
"""

from __future__ import annotations

from .eventdata import panel_event, target_key

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the hook path
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any, Protocol

    class Appends(Protocol):
        """A queue store, or the panel hook's :class:`~.store.outbox.Outbox`."""

        def append(self, items: list) -> list[list[int]]: ...


def vendors_for(capabilities: Mapping[str, Iterable[str]], hook: str) -> list[str]:
    """The vendors an event of *hook* goes to: each whose lifecycle hooks (in
    *capabilities*, ``{vendor: [hook, ...]}``) include it, sorted."""
    return sorted(vendor for vendor, hooks in capabilities.items() if hook in hooks)


def item_of(event: Any, vendors: Sequence[str]) -> tuple[dict, str, str | None, list[str]]:
    """What the store appends for *event*: an :class:`~.events.Event`, or a panel's
    ``(hook, fields)`` pair (its plain-text password in ``fields``, sealed by the store)."""
    if isinstance(event, tuple):
        stored, password = panel_event(*event)
        return stored, target_key(stored), password, list(vendors)
    secret = getattr(event, "password", None)
    password = secret.reveal() if secret is not None else None
    return event.to_dict(), event.target_key, password, list(vendors)


def _hook(event: Any) -> str:
    return event[0] if isinstance(event, tuple) else event.hook


def enqueue(
    queue: Appends,
    events: Iterable[Any],
    *,
    capabilities: Mapping[str, Iterable[str]] | None = None,
    vendors: Sequence[str] | None = None,
    allow: Callable[[Any], Iterable[str] | None] | None = None,
) -> list[tuple[str, dict[str, int]]]:
    """Queue *events* in one transaction, each for the vendors whose *capabilities* include
    its hook (or for *vendors*, when given: a step for the vendor that asked for it, say).
    Every event is checked before anything is written.  *allow*, when given, narrows each
    event's vendors to those it returns (None: no narrowing): an account's plan, say.  Per
    event, its target key (``domain:example.com``) and ``{vendor: row id}``."""
    if (capabilities is None) == (vendors is None):
        raise ValueError("give capabilities or vendors, not both and not neither")
    items = []
    for e in events:
        chosen = vendors if vendors is not None else vendors_for(capabilities or {}, _hook(e))
        narrowed = allow(e) if allow is not None else None
        if narrowed is not None:
            kept = set(narrowed)
            chosen = [v for v in chosen if v in kept]
        items.append(item_of(e, chosen))
    if not items:
        return []
    ids = queue.append(items)
    return [
        (item[1], dict(zip(item[3], rows, strict=True)))
        for item, rows in zip(items, ids, strict=True)
    ]
