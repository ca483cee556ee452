"""The panel-hook entry: :func:`emit` queues an event and returns in milliseconds.

It writes one queue row per enabled vendor that handles the event, in one
transaction, and never contacts a vendor.

Every command validates the config the same way (:func:`validated`): fully, by
loading the runtime, unless a cache in ``state_dir`` says that this very file was
validated.  The cache, written by :func:`refresh_capabilities` whenever a runtime
is loaded, is keyed on what was validated (the package version, the file's
content, mode and owner, and the secret files it names; see
:attr:`~spamfilter_plugin.config.RawConfig.fingerprint`) and also records which
vendor handles which hook, so the panel-hook path imports no plugin (and with
them requests, Jinja2, marshmallow and pluggy) when nothing changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import intake
from .config import cache
from .config.cache import CAPABILITIES, cached_handlers
from .config.model import RawConfig, config_path, read_file
from .events import Event
from .manager import load_runtime
from .queue import open_queue

if TYPE_CHECKING:
    from .manager import Runtime

__all__ = ["CAPABILITIES", "Receipt", "emit", "emit_all", "refresh_capabilities", "validated"]


@dataclass
class Receipt:
    """What :func:`emit` queued: the event, and a row id per vendor."""

    event: Event
    rows: dict[str, int]


def refresh_capabilities(runtime: Runtime) -> None:
    """Record which enabled vendor of *runtime* handles which lifecycle hook, for the next
    calls (see :func:`~.config.cache.record`).  Called by whoever loads the runtime (the
    CLI, and :func:`emit` on a cache miss)."""
    cache.record(runtime.config, runtime.capabilities())


def validated(
    config: str | os.PathLike | None = None, raw: RawConfig | None = None
) -> tuple[RawConfig, dict[str, list[str]]]:
    """The config file (or *raw*, the file read already), validated, and the lifecycle
    hooks each enabled vendor handles.

    The full validation runs (loading the plugins) unless the cache says this exact file
    was validated; a ConfigError or PluginError names the problem and the fix."""
    raw = raw if raw is not None else read_file(config_path(config))
    cached = cached_handlers(raw.state_dir, raw.fingerprint)
    if cached is not None:
        return raw, cached

    runtime = load_runtime(raw.path)
    refresh_capabilities(runtime)
    return raw, runtime.capabilities()


def emit(event: Event, config: str | os.PathLike | None = None) -> Receipt:
    """Queue *event* for every enabled vendor that handles it; return at once.

    The call a panel hook makes.  It never contacts a vendor."""
    return emit_all([event], config)[0]


def emit_all(
    events: list[Event], config: str | os.PathLike | None = None, raw: RawConfig | None = None
) -> list[Receipt]:
    """Queue each of *events*, in order, for every enabled vendor that handles it; the
    config is validated (or found validated in the cache) once for all of them."""
    raw, handlers = validated(config, raw)
    queue = open_queue(raw.state_dir)
    try:
        queued = intake.enqueue(queue, events, capabilities=handlers)
    finally:
        queue.close()
    return [Receipt(event, rows) for event, (_, rows) in zip(events, queued, strict=True)]
