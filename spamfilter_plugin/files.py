"""Small private files in ``state_dir``, written whole or not at all.

Imports only the standard library: the panel-hook path (the capability cache) uses it.
"""

from __future__ import annotations

import json
import os
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
