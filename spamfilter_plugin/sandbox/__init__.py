"""Vendor emulators served over loopback HTTP, for tests, the demo and users' own tests.

Each vendor has one WSGI emulator (``sandbox/<vendor>.py``) written from the
vendor's API document.  :class:`Sandbox` serves them on ``127.0.0.1``, one port
each, and prints the config that points the vendors at them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..config import toml_table
from .base import FAULT_KINDS, Emulator, Faults
from .rackspace import RackspaceEmulator
from .server import LoopbackServer
from .spambarrier import SpamBarrierEmulator
from .spamport import SpamPortEmulator
from .spamwall import SpamWallEmulator
from .tornevall import TornevallEmulator

#: vendor name -> emulator class, in port order
EMULATORS: dict[str, type[Emulator]] = {
    "spamport": SpamPortEmulator,
    "spamwall": SpamWallEmulator,
    "spambarrier": SpamBarrierEmulator,
    "tornevall": TornevallEmulator,
    "rackspace": RackspaceEmulator,
}

__all__ = ["EMULATORS", "FAULT_KINDS", "Emulator", "Faults", "Running", "Sandbox"]


@dataclass
class Running:
    """One emulator being served: ``url`` is the value for ``api_url``."""

    name: str
    emulator: Emulator
    server: LoopbackServer

    @property
    def root(self) -> str:
        return self.server.url

    @property
    def url(self) -> str:
        return self.server.url + self.emulator.api_path

    def config_table(self) -> dict[str, Any]:
        return {"api_url": self.url, **self.emulator.credentials()}


class Sandbox:
    """Serve the emulators on loopback, one port each.

    :param port: the first port (``spamport`` gets it, the next vendors the
        following ports in the order of :data:`EMULATORS`); 0 picks free ports.
    :param vendors: which emulators to serve (default: all five).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        vendors: Iterable[str] | None = None,
        seed: int = 0,
    ) -> None:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ValueError(
                f"host: {host} is not a loopback address; the sandbox serves 127.0.0.1 or ::1 only "
                "(its credentials are public)"
            )
        names = list(vendors) if vendors else list(EMULATORS)
        unknown = [n for n in names if n not in EMULATORS]
        if unknown:
            raise ValueError(f"vendor: unknown {', '.join(unknown)}; one of {', '.join(EMULATORS)}")
        if not 0 <= port <= 65535 - len(EMULATORS):
            raise ValueError(f"port: {port} is out of range")
        self.host, self.port, self.seed = host, port, seed
        self.names = names
        self.running: dict[str, Running] = {}

    def start(self) -> Sandbox:
        try:
            for name in self.names:
                offset = list(EMULATORS).index(name)
                emulator = EMULATORS[name](seed=self.seed)
                server = LoopbackServer(
                    emulator, host=self.host, port=self.port + offset if self.port else 0
                )
                server.start()
                self.running[name] = Running(name, emulator, server)
        except OSError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for running in self.running.values():
            running.server.stop()
        self.running.clear()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __getitem__(self, name: str) -> Running:
        return self.running[name]

    def config_snippet(self, state_dir: str = "/tmp/spamfilter-sandbox") -> str:
        """A ready-to-use config file pointing every served vendor whose plugin is installed
        at its emulator (the others are listed as comments, so the file loads as it is)."""
        from ..manager import installed_vendors

        installed = installed_vendors()
        lines = [
            "# spamfilter-plugin sandbox: public test credentials, loopback only",
            *toml_table("general", {"state_dir": state_dir, "mail_host": "mail.example.net"}),
        ]
        for name, running in self.running.items():
            lines.append("")
            if name not in installed:
                lines.append(
                    f"# no {name} vendor plugin is installed; its emulator answers at {running.url}"
                )
            lines += toml_table(
                f"vendors.{name}", running.config_table(), "" if name in installed else "# "
            )
        return "\n".join(lines) + "\n"

    def configure_faults(self, **settings: Any) -> None:
        for running in self.running.values():
            running.emulator.faults.configure(**settings)
