"""An authoritative DNS server on loopback, answering from a zone held in memory, for
tests and the demo: the MX verification asks it instead of the internet.

``ZoneServer({"example.org": {"MX": ["10 mx1.filter.example."]}})`` serves over UDP on
``127.0.0.1`` at :attr:`ZoneServer.port`; :meth:`ZoneServer.set` changes a record set
while it runs (a switch becoming visible), :attr:`ZoneServer.queries` counts the questions,
and ``silent = True`` makes it stop answering (a server that is down).  Given ``source`` (a
function returning the same shape), it answers from what that returns at each question, as
a panel's name server serves the zones the panel writes.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class ZoneServer:
    """UDP DNS on loopback, answering from ``{name: {type: [rdata text, ...]}}``."""

    def __init__(
        self,
        zone: dict[str, dict[str, list[str]]] | None = None,
        ttl: int = 60,
        source: Callable[[], dict[str, dict[str, list[str]]]] | None = None,
    ):
        self._zone: dict[str, dict[str, list[str]]] = {}
        self.source = source
        self._lock = threading.Lock()
        self.ttl = ttl
        self.queries = 0
        self.silent = False
        for name, sets in (zone or {}).items():
            for rtype, values in sets.items():
                self.set(name, rtype, values)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="zone-server", daemon=True)

    @staticmethod
    def _key(name: str) -> str:
        return name.rstrip(".").lower()

    def set(self, name: str, rtype: str, values: list[str]) -> None:
        """Replace the *rtype* records of *name* (an empty list removes them)."""
        with self._lock:
            sets = self._zone.setdefault(self._key(name), {})
            if values:
                sets[rtype.upper()] = list(values)
            else:
                sets.pop(rtype.upper(), None)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = self._key(question.name.to_text())
        with self._lock:
            zone = self._zone
            if self.source is not None:
                zone = {
                    self._key(n): {t.upper(): v for t, v in s.items()}
                    for n, s in self.source().items()
                }
            sets = zone.get(name)
            values = list(sets.get(dns.rdatatype.to_text(question.rdtype), [])) if sets else []
        if sets is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif values:
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name, self.ttl, dns.rdataclass.IN, question.rdtype, values
                )
            )
        return response

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.queries += 1
            if self.silent:
                continue
            try:
                reply = self._answer(dns.message.from_wire(data))
            except Exception:  # noqa: BLE001 - a bad query gets no answer, as on a real server
                continue
            self._sock.sendto(reply.to_wire(), peer)

    def __enter__(self) -> ZoneServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
