"""The key files (the queue's sealing key, the console's signing key).

A key file is made by writing a private temporary file, syncing it and linking it into
place, so a full disk or a crash leaves either the whole key or no file; the first of racing
processes wins and the others use its key.  A key that is unreadable, readable by others,
empty or short is refused with the fix, never used (:func:`read_key`).

Imports ``os`` and :mod:`.errors` alone: a panel hook that seals a password reads the queue's
key through it.
"""

from __future__ import annotations

import os

from .errors import ConfigError


def _synced(path: str, key: bytes) -> None:
    """Write *key* and a newline to the new private file *path*, synced to disk."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def _placed(path: str | os.PathLike, key: bytes, put) -> bool:
    """Write *key* to a temporary file beside *path*, then ``put(tmp, path)`` it in place;
    the temporary file never outlives the call.  What *put* returns (False: not placed)."""
    path = os.fspath(path)
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{os.urandom(4).hex()}")
    try:
        _synced(tmp, key)
        return put(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def _link(tmp: str, path: str) -> bool:
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    return True


def create_key(path: str | os.PathLike, key: bytes) -> bool:
    """Make the key file *path* (0600) holding *key*, whole or not at all; False when another
    process made it first (its key stands).  Raises OSError (a full disk, say), leaving no
    file behind."""
    return _placed(path, key, _link)


def replace_key(path: str | os.PathLike, key: bytes) -> None:
    """Put a new key file in place of *path*, whole or not at all (a key that never signed
    anything valid, an empty one, is replaced so)."""

    def put(tmp: str, dest: str) -> bool:
        os.replace(tmp, dest)
        return True

    _placed(path, key, put)


def read_key(path: str | os.PathLike, what: str, *, min_length: int, fix: str) -> bytes:
    """The key in the file *path* (surrounding white space removed).  ConfigError, naming
    *what* and the file and saying *fix*, when it cannot be read, is readable by group or
    others, or holds fewer than *min_length* bytes; FileNotFoundError when it is missing."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
        with open(path, "rb") as fh:
            key = fh.read(4096).strip()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read ({exc.strerror}); {fix}") from None
    if mode & 0o077:
        raise ConfigError(f"{what} {path} is readable by group or others; run: chmod 600 {path}")
    if len(key) < min_length:
        state = "empty" if not key else f"too short ({len(key)} bytes)"
        raise ConfigError(f"{what} {path} is {state}; {fix}")
    return key
