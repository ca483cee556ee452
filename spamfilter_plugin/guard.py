"""What every process must know about one vendor before it sends anything.

Refused credentials are dangerous to repeat (SpamPort blocks the server's IP after a few
failed logins), so a vendor's credentials are either *proven* (a call with exactly this
``[vendors.X]`` table has been accepted) or not:

* while they are not proven (a new or changed table, or after a refusal), at most one
  delivery to the vendor is in flight across all processes: it holds an exclusive lock
  file in ``state_dir`` while it works;
* a refusal suspends the vendor (a marker file in ``state_dir``) and forgets the proof;
  the suspension is checked just before each request is sent, so a delivery in another
  process stops before its next request;
* an accepted call proves the table; from then on deliveries run side by side.

An admin's ``spamfilter check`` that succeeds lifts the suspension (and proves the table).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

from . import deadline
from .errors import VendorBusy, VendorSuspended
from .files import write_private_json
from .redaction import Secret, get_logger, redact

log = get_logger(__name__)

#: longest wait, in seconds, for another process proving the same vendor's credentials
LOCK_WAIT = 10.0
_POLL = 0.025


def _canonical(table: Mapping[str, Any]) -> bytes:
    def plain(value: Any) -> Any:
        return value.reveal() if isinstance(value, Secret) else value

    return json.dumps({k: plain(v) for k, v in table.items()}, sort_keys=True, default=str).encode()


class VendorGuard:
    """The suspension, proof and lock of one vendor, shared through ``state_dir``."""

    def __init__(self, name: str, state_dir: str | os.PathLike, table: Mapping[str, Any]):
        self.name = name
        self.state_dir = Path(state_dir)
        self._table = table
        self._known_proven = False  # this process has seen the proof (or made it)
        self._local = threading.local()
        #: the verdict on the last proof read (its salt and fingerprint): the fingerprint
        #: is worked out again only when the proof changed
        self._verdict: tuple[Any, bool] = (None, False)
        #: each file's last reading, by its identity (see :func:`_read_json`)
        self._read: dict[Path, tuple[tuple[int, int, int], Any]] = {}

    # -- files -------------------------------------------------------------------

    @cached_property
    def suspension_file(self) -> Path:
        return self.state_dir / f"suspended-{self.name}.json"

    @cached_property
    def proof_file(self) -> Path:
        return self.state_dir / f"proven-{self.name}.json"

    @cached_property
    def lock_file(self) -> Path:
        return self.state_dir / f"lock-{self.name}"

    # -- suspension ----------------------------------------------------------------

    def suspension(self) -> dict[str, Any] | None:
        """Why and since when calls to this vendor are suspended, or None."""
        return self._read_suspension()

    def suspended_error(self) -> VendorSuspended | None:
        found = self.suspension()
        if found is None:
            return None
        return VendorSuspended(
            self.name,
            f"calls are suspended since {found.get('since')} after refused credentials "
            f"({found.get('reason')}); fix the credentials or the block at the vendor, "
            "then run 'spamfilter check' to resume",
        )

    def suspend(self, reason: str) -> None:
        """Suspend calls in every process, and forget that the credentials were good."""
        self.forget()
        self._write_suspension(
            {"reason": redact(reason), "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        )

    def resume(self) -> None:
        self._drop_suspension()

    @contextmanager
    def checking(self) -> Iterator[None]:
        """Within this block (an admin's ``spamfilter check``), a suspension does not stop
        requests: the check is how a suspended vendor is resumed."""
        self._local.checking = True
        try:
            yield
        finally:
            self._local.checking = False

    def admit(self) -> None:
        """Called just before each request: raise VendorSuspended if another delivery (in
        any process) has been refused since this one began."""
        if getattr(self._local, "checking", False):
            return
        error = self.suspended_error()
        if error is not None:
            raise error

    # -- proof -----------------------------------------------------------------------

    def _fingerprint(self, salt: bytes) -> str:
        return hashlib.blake2b(_canonical(self._table), key=salt, digest_size=32).hexdigest()

    def proven(self) -> bool:
        """True when a call with exactly this table has been accepted (and not refused since)."""
        stored = self._read_proof()
        seen = (stored.get("salt"), stored.get("fingerprint")) if isinstance(stored, dict) else None
        if seen is not None and self._verdict[0] == seen:
            proven = self._verdict[1]  # the same proof as last time: the same verdict
        else:
            try:
                proven = stored is not None and secrets.compare_digest(
                    stored["fingerprint"], self._fingerprint(bytes.fromhex(stored["salt"]))
                )
            except (ValueError, KeyError, TypeError):
                proven = False
            self._verdict = (seen, proven)
        self._known_proven = proven
        return proven

    def prove(self) -> None:
        """An answer was accepted: this table's credentials are good."""
        if self._known_proven:
            return
        salt = secrets.token_bytes(16)
        if self._write_proof({"salt": salt.hex(), "fingerprint": self._fingerprint(salt)}):
            self._known_proven = True

    def forget(self) -> None:
        self._known_proven = False
        self._drop_proof()

    # -- the one-at-a-time lock ----------------------------------------------------------

    @contextmanager
    def hold(self, *, admitted: bool = False) -> Iterator[bool]:
        """Around one delivery: exclusive across processes while the credentials are not
        proven, free otherwise.  Gives True when it took the lock (the delivery may have
        waited for it: look at the suspension again), False when proven.  Raises VendorBusy
        when the lock is not had in time.

        *admitted*: the caller's :meth:`admit` has just found no suspension.  Credentials
        this process knows to be proven are then taken as proven without reading the proof
        again: a refusal in any process writes the suspension as it drops the proof, so that
        look has just seen whether the proof still stands.  (A proof of other credentials, made
        since by a process with a changed config, is seen at the next :meth:`proven`: the
        worker asks every half second.)"""
        if (admitted and self._known_proven) or self.proven():
            yield False
            return
        with self._exclusive():
            yield True

    def busy(self) -> VendorBusy:
        return VendorBusy(
            self.name,
            "another delivery is trying its credentials (new or changed, or refused before); "
            "this event waits its turn",
        )

    # -- where it is kept: files in state_dir (the fleet keeps it in its database) ------

    def _read_suspension(self) -> dict[str, Any] | None:
        return self._read_json(self.suspension_file)

    def _write_suspension(self, doc: dict[str, Any]) -> None:
        try:
            write_private_json(self.suspension_file, doc)
        except OSError as exc:
            log.error(
                "%s: cannot record the suspension in %s (%s); fix state_dir",
                self.name,
                self.suspension_file,
                exc.strerror,
            )

    def _drop_suspension(self) -> None:
        self.suspension_file.unlink(missing_ok=True)

    def _read_proof(self) -> dict[str, Any] | None:
        return self._read_json(self.proof_file)

    def _read_json(self, path: Path) -> Any:
        """The JSON document in *path* as it is now (None when there is none, or it is not
        JSON).  Every call looks at the file (one ``stat``): a file written since, by any
        process, is read again (it is always replaced whole, so a new inode), and one that
        did not change is not parsed twice."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        last = self._read.get(path)
        if last is not None and last[0] == identity:
            return dict(last[1]) if isinstance(last[1], dict) else last[1]
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            doc = None
        self._read[path] = (identity, doc)
        return doc

    def _write_proof(self, doc: dict[str, Any]) -> bool:
        try:
            write_private_json(self.proof_file, doc)
        except OSError:
            return False  # unproven is the safe side: deliveries keep going one at a time
        return True

    def _drop_proof(self) -> None:
        self.proof_file.unlink(missing_ok=True)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The lock file, held until the block ends; VendorBusy when not had in time."""
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            until = time.monotonic() + deadline.bounded(LOCK_WAIT)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= until:
                        raise self.busy() from None
                    time.sleep(_POLL)
            yield  # released when the file is closed
        finally:
            os.close(fd)
