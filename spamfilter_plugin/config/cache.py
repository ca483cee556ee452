"""The caches of the config file's last full validation, which let the panel hook skip it.

* ``state_dir/capabilities.json``: which vendor handles which lifecycle hook;
* the panel-hook cache (``/var/cache/spamfilter-plugin/config-<dev>-<inode>.json``, or under
  ``$SPAMFILTER_CACHE_DIR``): the same, with ``state_dir`` and the ``[panel]`` table, so that
  a panel's call need not even parse the TOML.  It holds no secret, and is used only while
  the file, and each secret file it names, is exactly as validated; deleting it is harmless.

Both are written by :func:`record` after each full validation (whoever loads the runtime),
and read on the standard library alone (the panel hook's path).
"""

from __future__ import annotations

import json
import os

from .file import fingerprint, identity

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the hook path
if TYPE_CHECKING:
    from typing import Any

    from .model import Config

#: in ``state_dir``: which vendor handles which hook, for the fingerprint validated
CAPABILITIES = "capabilities.json"
CACHE_ENV = "SPAMFILTER_CACHE_DIR"
DEFAULT_CACHE_DIR = "/var/cache/spamfilter-plugin"


def cached_handlers(directory: str | os.PathLike, key: str) -> dict[str, list[str]] | None:
    """The lifecycle hooks each enabled vendor handles, as recorded in *directory* (the
    state dir) by the last full validation of a file with fingerprint *key*; None when
    there is no such record (the caller validates in full)."""
    try:
        with open(os.path.join(directory, CAPABILITIES), encoding="utf-8") as fh:
            cached = json.load(fh)
        if cached.get("fingerprint") == key:
            return {v: list(hooks) for v, hooks in cached["handlers"].items()}
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        pass
    return None


def hook_cache_path(st: os.stat_result) -> str:
    """Where the panel-hook cache of the config file with status *st* is."""
    return os.path.join(
        os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR, f"config-{st.st_dev}-{st.st_ino}.json"
    )


def read_hook_cache(path: str | os.PathLike) -> dict[str, Any] | None:
    """What the last full validation of the config file at *path* recorded for panel hooks
    (``state_dir``, ``panel``, ``plans``, ``handlers``), if the file and its secret files
    are exactly as validated then and the cache is this user's own; None otherwise."""
    try:
        st = os.stat(path)
        with open(hook_cache_path(st), encoding="utf-8") as fh:
            own = os.fstat(fh.fileno())
            if own.st_uid != os.geteuid() or own.st_mode & 0o022:
                return None  # written by someone else: not to be trusted
            cached = json.load(fh)
        key = fingerprint(path, identity(st), cached["secret_files"])
        if cached["fingerprint"] == key and isinstance(cached["state_dir"], str):
            return cached
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def record(config: Config, capabilities: dict[str, list[str]]) -> None:
    """Record a full validation of *config*: which vendor handles which lifecycle hook
    (*capabilities*), in ``state_dir`` and in the panel-hook cache.  Only caches: a place
    that cannot be written is skipped (the next call validates in full)."""
    from pathlib import Path  # not on the panel's path: written after a full validation

    from ..files import write_private_json

    handlers = {v: list(hooks) for v, hooks in capabilities.items()}
    doc = {"fingerprint": config.fingerprint, "handlers": handlers}
    try:
        write_private_json(config.general.state_dir / CAPABILITIES, doc)
    except OSError:
        pass  # only a cache: emit falls back to loading the plugins
    hook_doc = {
        "fingerprint": config.fingerprint,
        "secret_files": list(config.secret_files),
        "state_dir": str(config.general.state_dir),
        "panel": config.panel,
        "plans": config.plans,
        "handlers": handlers,
    }
    try:
        write_private_json(Path(hook_cache_path(os.stat(config.path))), hook_doc)
    except OSError:
        pass  # only a cache: a user who cannot write there goes without
