"""Plesk's DNS: ``plesk bin dns --info DOMAIN`` lists the records; ``--add`` / ``--del`` with
``-mx SUB -mailexchanger HOST -priority N`` or ``-txt TEXT -domain SUB``, one record a call.
https://docs.plesk.com/en-US/obsidian/cli-linux/using-command-line-utilities/dns-dns-zones-on-domains.37771
"""

from __future__ import annotations

from ..dns import Record, Zones, absolute, mx_value, relative
from ..steps import run_command


class PleskZones(Zones):
    def _dns(self, *args: str) -> str:
        return run_command([self.conf["plesk"], "bin", "dns", *args])

    def records(self, domain: str, rtype: str | None = None) -> list[Record]:
        out = []
        for line in self._dns("--info", domain).splitlines():
            parts = line.split()
            if len(parts) < 3 or not parts[0].endswith("."):
                continue  # the "SUCCESS: ..." line and blank lines
            name, kind = absolute(parts[0], domain), parts[1].upper()
            if kind == "MX" and len(parts) >= 4:
                out.append(Record(name, kind, mx_value(parts[2].strip("()"), parts[3])))
            elif kind == "TXT":
                out.append(Record(name, kind, line.split(None, 2)[2].strip()))
        return out

    def _args(self, r: Record, domain: str) -> list[str]:
        sub = relative(r.name, domain)
        if r.type == "MX":
            priority, host = r.mx
            return ["-mx", sub, "-mailexchanger", host, "-priority", str(priority)]
        return ["-txt", r.value, "-domain", sub]

    def apply(self, domain: str, remove: list[Record], add: list[Record]) -> None:
        for r in add:
            self._dns("--add", domain, *self._args(r, domain))
        for r in remove:
            self._dns("--del", domain, *self._args(r, domain))

    def exists(self, domain: str) -> bool:
        listed = run_command([self.conf["plesk"], "bin", "domain", "--list"]).split()
        return domain in {d.lower() for d in listed}

    def remote_mail(self, domain: str) -> str | None:
        # "plesk bin domain --info" reports the mail service as a "Mail service: On|Off" field
        out = run_command([self.conf["plesk"], "bin", "domain", "--info", domain])
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "mail service" and value.strip().lower() == "off":
                return "the Plesk mail service of the domain is off"
        return None


ZONES = PleskZones
