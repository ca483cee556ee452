"""The panel-hook entry: :func:`emit` queues an event and returns in milliseconds.

It writes one queue row per enabled vendor that handles the event, in one
transaction, and never contacts a vendor.  To know which vendors handle which
hook without importing the plugins (and with them requests, Jinja2, marshmallow
and pluggy), it reads a capability cache in ``state_dir``, written by
:func:`refresh_capabilities` whenever the runtime is loaded and keyed by the
config file's identity and the package version; when the cache is missing or
stale, :func:`emit` loads the runtime once and refreshes it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .config import config_path, read_file
from .events import LIFECYCLE_HOOKS, Event
from .queue import Queue

if TYPE_CHECKING:
    from .manager import Runtime

CAPABILITIES = "capabilities.json"


@dataclass
class Receipt:
    """What :func:`emit` queued: the event, and a row id per vendor."""

    event: Event
    rows: dict[str, int]


def _fingerprint(config_file: Path) -> str:
    st = config_file.stat()
    return f"{__version__}:{config_file.resolve()}:{st.st_mtime_ns}:{st.st_size}"


def refresh_capabilities(runtime: Runtime) -> None:
    """Record which enabled vendor of *runtime* handles which lifecycle hook.

    Called by whoever loads the runtime (the CLI, and :func:`emit` on a cache miss)."""
    handlers = {v: [h for h in LIFECYCLE_HOOKS if runtime.handles(v, h)] for v in runtime.vendors}
    state_dir = Path(runtime.config.general.state_dir)
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = state_dir / (CAPABILITIES + ".tmp")
        doc = {"fingerprint": _fingerprint(runtime.config.path), "handlers": handlers}
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, state_dir / CAPABILITIES)
    except OSError:
        pass  # only a cache: emit falls back to loading the plugins


def _handlers(config_file: Path, state_dir: Path, hook: str) -> list[str]:
    try:
        cached = json.loads((state_dir / CAPABILITIES).read_text())
        if cached.get("fingerprint") == _fingerprint(config_file):
            return sorted(v for v, hooks in cached["handlers"].items() if hook in hooks)
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    from .manager import load_runtime  # the slow path: loads the plugins

    runtime = load_runtime(config_file)
    refresh_capabilities(runtime)
    return runtime.handlers(hook)


def emit(event: Event, config: str | os.PathLike | None = None) -> Receipt:
    """Queue *event* for every enabled vendor that handles it; return at once.

    The call a panel hook makes.  It never contacts a vendor."""
    raw = read_file(config_path(config))
    vendors = _handlers(raw.path, raw.state_dir, event.hook)
    queue = Queue(raw.state_dir)
    try:
        ids = queue.enqueue(event, vendors)
    finally:
        queue.close()
    return Receipt(event, dict(zip(vendors, ids, strict=True)))
