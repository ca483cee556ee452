"""Vendor emulators served over loopback HTTP, for tests, the demo and users' own tests.

Each vendor has one WSGI emulator written from the vendor's API document (the
built-in vendors' in ``sandbox/<vendor>.py``), registered under the entry-point
group ``spamfilter_plugin.emulators`` with the vendor's name, so a third-party
vendor's emulator is served, configured and offered as a pytest fixture just as
the built-in ones are.  :class:`Sandbox` serves them on ``127.0.0.1``, one port
each, and prints the config that points the vendors at them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from .. import EMULATOR_ENTRY_POINT_GROUP
from ..config.model import toml_table
from ..manager import installed_vendors
from .base import FAULT_KINDS, Emulator, Faults
from .server import LoopbackServer

__all__ = ["FAULT_KINDS", "Emulator", "Faults", "Running", "Sandbox", "emulators"]


def emulators() -> dict[str, type[Emulator]]:
    """The installed emulators (entry-point group ``spamfilter_plugin.emulators``), by vendor
    name, in port order: those that declare a ``port_offset`` by it, then the rest by name.

    Loading an emulator loads no vendor plugin: the sandbox serves the emulator of a vendor
    whose plugin is not installed as well as any other."""
    found: dict[str, type[Emulator]] = {}
    for ep in entry_points(group=EMULATOR_ENTRY_POINT_GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Emulator)):
            raise TypeError(
                f"entry point {ep.name} = {ep.value} in {EMULATOR_ENTRY_POINT_GROUP} is not an "
                "Emulator subclass"
            )
        found.setdefault(ep.name, cls)
    unset = float("inf")

    def order(name: str) -> tuple[float, str]:
        offset = found[name].port_offset
        return (unset if offset is None else offset, name)

    return {name: found[name] for name in sorted(found, key=order)}


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

    :param port: the first port; each emulator gets ``port`` plus its place in the order
        of :func:`emulators`; 0 picks free ports.
    :param vendors: which emulators to serve (default: every installed one).
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
        known = emulators()
        names = list(vendors) if vendors else list(known)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(
                f"vendor: unknown {', '.join(unknown)}; no emulator of that name is installed "
                f"(installed: {', '.join(known)})"
            )
        if not 0 <= port <= 65535 - len(known):
            raise ValueError(f"port: {port} is out of range")
        self.host, self.port, self.seed = host, port, seed
        self.names = names
        self.running: dict[str, Running] = {}

    def start(self) -> Sandbox:
        try:
            known = emulators()
            order = list(known)
            for name in self.names:
                offset = order.index(name)
                emulator = known[name](seed=self.seed)
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

        installed = installed_vendors()
        lines = [
            "# spamfilter-plugin sandbox: public test credentials, loopback only",
            # an IP (a documentation address): SpamWall routes domains to an IP, and a host
            # name would have to resolve
            *toml_table("general", {"state_dir": state_dir, "mail_host": "192.0.2.25"}),
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
