"""Small private JSON files in ``state_dir``, written whole or not at all.

Imports only the standard library (the capability cache writes through it); the key files
are in :mod:`.keyfile`.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def write_private_json(path: Path, data: Any) -> None:
    """Write *data* as JSON to *path*, mode 0600, atomically: a private temporary file
    (named for this process, so concurrent writers never share one) is synced, then renamed
    over *path*.  The directory is made 0700 if missing.  Raises OSError."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class JsonStore:
    """A JSON object in a private file (0600 in the 0700 state directory) that several
    processes share: readers see a whole version (each write replaces the file atomically),
    and writers take turns on an exclusive lock, so no edit is lost."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any]:
        """The stored object; empty when there is none yet (or it is not an object)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    @contextmanager
    def editing(self) -> Iterator[dict[str, Any]]:
        """The stored object under the lock; what the block leaves in it is written back."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = os.open(
            self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600
        )
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self.read()
            yield data
            write_private_json(self.path, data)
        finally:
            os.close(lock)
