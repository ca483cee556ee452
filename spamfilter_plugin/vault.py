"""Credentials a vendor keeps to act for someone later (a SpamWall user's password, say).

Each vendor has one file, ``state_dir/vault-<vendor>.json`` (0600 in the 0700 state
directory), mapping a name (a mailbox address) to its secret encrypted with the queue's key
(``state_dir/queue.key``, Fernet: AES-128-CBC and HMAC-SHA256).  No secret is ever in the
file in plain text, nor in a log, a page or command output: :meth:`Vault.get` returns a
:class:`~spamfilter_plugin.redaction.Secret`.  Writers take an exclusive lock on the file,
and each write replaces it atomically (:class:`~spamfilter_plugin.files.JsonStore`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .files import JsonStore
from .redaction import Secret
from .store.outbox import SecretBox


class Vault:
    """The stored credentials of one vendor."""

    def __init__(
        self, vendor: str, state_dir: str | os.PathLike, store: Any = None, box: Any = None
    ) -> None:
        """*store* and *box* (default: the file and the queue's key in *state_dir*) are
        where the sealed entries are kept and what seals them (the fleet's, in fleet mode)."""
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / f"vault-{vendor}.json"
        self._store = store if store is not None else JsonStore(self.path)
        self._box = box if box is not None else SecretBox(self.state_dir)

    def put(self, name: str, secret: Secret) -> None:
        with self._store.editing() as data:
            data[name] = self._box.seal(secret.reveal()).decode("ascii")

    def get(self, name: str) -> Secret | None:
        sealed = self._store.read().get(name)
        return None if sealed is None else Secret(self._box.open(sealed.encode("ascii")))

    def delete(self, name: str) -> None:
        with self._store.editing() as data:
            data.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._store.read())
