"""The queue: one interface (:class:`Queue`) with a store behind it.

Events go in only through :func:`spamfilter_plugin.intake.enqueue`; everything else (the
worker, the console, ``sync``, the MX flow, the CLI) reads and changes rows through the
:class:`Queue` that :func:`open_queue` gives for a state directory.  Today's store is SQLite
(:mod:`.store.sqlite`), one per server; the interface (:mod:`.store.base`) is what another
store implements.
"""

from __future__ import annotations

import os
import time

from .config.model import Config, FleetConfig
from .store import STATES, STEP_HOOK, SUPERSEDES
from .store.base import Item, Queue, Row
from .store.mx import MxStore
from .store.outbox import BOOT_ID_FILE, DB_NAME, KEY_NAME, SecretBox, boot_id
from .store.sqlite import SqliteQueue

__all__ = [
    "BOOT_ID_FILE",
    "DB_NAME",
    "KEY_NAME",
    "STATES",
    "STEP_HOOK",
    "SUPERSEDES",
    "Item",
    "Queue",
    "Row",
    "SecretBox",
    "boot_id",
    "mx_store",
    "open_queue",
    "queue_of",
]


def open_queue(
    state_dir: str | os.PathLike,
    *,
    fleet: FleetConfig | None = None,
    clock=time.time,
    monotonic=None,
    boot: str | None = None,
    mail_host: str | None = None,
) -> Queue:
    """The queue of *state_dir* (opened on first use; :meth:`Queue.close` it when done):
    its own SQLite queue, or with *fleet* (``[fleet]``) the fleet's queue on PostgreSQL,
    which the rows of the local outbox in *state_dir* are relayed into.

    :param clock: the wall clock (times shown to people).
    :param monotonic: the clock that orders and expires work (default: the machine's
        monotonic clock; in the fleet, the database's clock).
    :param boot: this boot's identity (default: the kernel's boot id; SQLite only).
    :param mail_host: ``[general] mail_host``; in the fleet, written into this server's
        domain creations that name no destination, as any server's worker may deliver them.
    """
    if fleet is not None:
        from .store.postgres import PostgresQueue  # needs the [fleet] extra

        return PostgresQueue(
            state_dir, fleet, clock=clock, monotonic=monotonic, mail_host=mail_host
        )
    return SqliteQueue(state_dir, clock=clock, monotonic=monotonic or time.monotonic, boot=boot)


def mx_store(config: Config) -> MxStore:
    """The MX state *config* names: this server's file, or in fleet mode the fleet's."""
    if config.fleet is not None:
        from .store.postgres import FleetMxStore  # needs the [fleet] extra

        return FleetMxStore(config.fleet)
    return MxStore(config.general.state_dir)


def queue_of(config: Config, **kwargs) -> Queue:
    """The queue *config* names: ``[general] state_dir`` and, in fleet mode, ``[fleet]``."""
    return open_queue(
        config.general.state_dir, fleet=config.fleet, mail_host=config.general.mail_host, **kwargs
    )
