"""cPanel & WHM's DNS: WHM API 1 through ``whmapi1``: ``parse_dns_zone`` to read (records
with their line index, names and data in base64) and ``mass_edit_dns_zone`` to change, which
takes the SOA serial read with the records and refuses the edit when the zone changed in
between, so a stale line index can never remove the wrong record.
https://api.docs.cpanel.net/openapi/whm/operation/parse_dns_zone/ and
https://api.docs.cpanel.net/openapi/whm/operation/mass_edit_dns_zone/
"""

from __future__ import annotations

import base64
import json

from ...errors import PanelError
from ..dns import TTL, Record, Zones, absolute, mx_value
from ..steps import run_command


class CpanelZones(Zones):
    atomic = True

    def _whmapi1(self, function: str, *args: str) -> dict:
        out = run_command([self.conf["whmapi1"], "--output=json", function, *args])
        try:
            doc = json.loads(out)
        except ValueError:
            raise PanelError(f"whmapi1 {function} did not print JSON") from None
        meta = doc.get("metadata") or {}
        if str(meta.get("result")) != "1":
            raise PanelError(f"whmapi1 {function} failed: {meta.get('reason', 'no reason given')}")
        return doc.get("data") or {}

    def _parsed(self, domain: str) -> tuple[list[Record], str]:
        payload = self._whmapi1("parse_dns_zone", f"zone={domain}").get("payload") or []
        records, serial = [], ""
        for item in payload:
            if item.get("type") != "record":
                continue
            rtype = str(item.get("record_type", "")).upper()
            name = absolute(_b64(item.get("dname_b64", "")), domain)
            data = [_b64(d) for d in item.get("data_b64") or []]
            if rtype == "SOA" and len(data) > 2:
                serial = data[2]
            elif rtype == "MX" and len(data) == 2:
                records.append(Record(name, rtype, mx_value(data[0], data[1]), item["line_index"]))
            elif rtype == "TXT":
                records.append(Record(name, rtype, "".join(data), item["line_index"]))
        if not serial:
            raise PanelError(f"whmapi1 parse_dns_zone zone={domain}: the zone has no SOA serial")
        return records, serial

    def records(self, domain: str, rtype: str | None = None) -> list[Record]:
        return self._parsed(domain)[0]

    def apply(self, domain: str, remove: list[Record], add: list[Record]) -> None:
        _, serial = self._parsed(domain)
        args = [f"zone={domain}", f"serial={serial}"]
        args += [f"remove={r.raw}" for r in remove]
        for r in add:
            data = list(map(str, r.mx)) if r.type == "MX" else [r.value]
            if r.type == "MX":
                data[1] += "."
            entry = {"dname": f"{r.name}.", "ttl": TTL, "record_type": r.type, "data": data}
            args.append("add=" + json.dumps(entry))
        self._whmapi1("mass_edit_dns_zone", *args)

    def exists(self, domain: str) -> bool:
        zones = self._whmapi1("listzones").get("zone") or []
        return any(str(z.get("domain", "")).lower() == domain for z in zones)

    def remote_mail(self, domain: str) -> str | None:
        # Email Routing: the domains whose mail another server handles are listed in
        # /etc/remotedomains (the local ones in /etc/localdomains)
        if domain in (line.strip().lower() for line in self.panel.read_lines("etc/remotedomains")):
            return "cPanel routes its mail to a remote exchanger (/etc/remotedomains)"
        return None


def _b64(text: str) -> str:
    return base64.b64decode(text).decode("utf-8", "replace")


ZONES = CpanelZones
