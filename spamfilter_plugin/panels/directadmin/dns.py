"""DirectAdmin's DNS: ``CMD_API_DNS_ADMIN`` (an admin login key; "works exactly the same as
CMD_API_DNS_CONTROL ... on any domain"): a GET with ``domain`` returns the raw zone; a POST
with ``action=add`` (``type``, ``name``, ``value``; for MX ``value`` is the priority and
``mx_value`` the host) adds; ``action=select`` with ``mxrecs0`` / ``txtrecs0`` set to
``name=...&value=...`` deletes.  Answers are ``error=0&text=...``.
https://docs.directadmin.com/changelog/version-1.24.2.html (API for DNS administration)
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs

import dns.exception
import dns.rdatatype
import dns.zone
import requests

from ...errors import PanelError
from ..dns import Record, Zones, mx_value, relative
from ..steps import TIMEOUT


def _da_name(name: str, zone: str) -> str:
    """*name* as DirectAdmin writes it in *zone*: relative when inside the zone, else fully
    qualified with the final dot (the zone itself included)."""
    name = name.rstrip(".").lower()
    return relative(name, zone) if name.endswith("." + zone) else f"{name}."


class DirectAdminZones(Zones):
    def _call(self, method: str, params: dict[str, str]) -> str:
        conf = self.conf
        problem = key_file_problem(conf["api_key_file"])
        if problem:
            raise PanelError(problem, temporary=False)
        try:
            with open(conf["api_key_file"], encoding="utf-8") as fh:
                key = fh.read().strip()
        except OSError as exc:
            raise PanelError(
                f"api_key_file: cannot read {conf['api_key_file']!r} ({exc.strerror}); "
                "create a DirectAdmin login key allowed CMD_API_DNS_ADMIN and put it there",
                temporary=False,
            ) from None
        if not key:
            raise PanelError(
                f"api_key_file {conf['api_key_file']} is empty; put the DirectAdmin login key "
                "allowed CMD_API_DNS_ADMIN there",
                temporary=False,
            )
        url = conf["api_url"].rstrip("/") + "/CMD_API_DNS_ADMIN"
        try:
            response = requests.request(
                method,
                url,
                params=params if method == "GET" else None,
                data=None if method == "GET" else params,
                auth=(conf["api_user"], key),
                timeout=(5, TIMEOUT),
                verify=conf["api_ca_file"] or True,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise PanelError(f"DirectAdmin at {conf['api_url']}: {type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise PanelError(
                f"DirectAdmin refused the login key of {conf['api_user']!r} (HTTP "
                f"{response.status_code}); check api_user and api_key_file",
                temporary=False,
            )
        if response.status_code != 200:
            raise PanelError(f"DirectAdmin answered HTTP {response.status_code}")
        text = response.text
        if text.startswith("error="):
            answer = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
            if answer.get("error") != "0":
                said = f"{answer.get('text', '')} {answer.get('details', '')}".strip()
                raise PanelError(f"DirectAdmin CMD_API_DNS_ADMIN {params.get('action')}: {said}")
        return text

    def records(self, domain: str, rtype: str | None = None) -> list[Record]:
        text = self._call("GET", {"domain": domain})
        try:
            zone = dns.zone.from_text(text, origin=domain + ".", relativize=False)
        except dns.exception.DNSException as exc:
            raise PanelError(f"DirectAdmin's zone of {domain} could not be read: {exc}") from None
        out = []
        for name, rdataset in zone.iterate_rdatasets():
            fq = name.to_text().rstrip(".").lower()
            raw_name = _da_name(fq, domain)
            for rdata in rdataset:
                if rdataset.rdtype == dns.rdatatype.MX:
                    exchange = rdata.exchange.to_text()
                    raw = f"name={raw_name}&value={rdata.preference} {_da_name(exchange, domain)}"
                    out.append(Record(fq, "MX", mx_value(rdata.preference, exchange), raw))
                elif rdataset.rdtype == dns.rdatatype.TXT:
                    value = b"".join(rdata.strings).decode("utf-8", "replace")
                    raw = f'name={raw_name}&value="{value}"'
                    out.append(Record(fq, "TXT", value, raw))
        return out

    def apply(self, domain: str, remove: list[Record], add: list[Record]) -> None:
        for r in add:
            params = {"domain": domain, "action": "add", "type": r.type, "name": f"{r.name}."}
            if r.type == "MX":
                priority, host = r.mx
                params.update(value=str(priority), mx_value=f"{host}.")
            else:
                params["value"] = f'"{r.value}"'
            self._call("POST", params)
        for r in remove:
            field_name = "mxrecs0" if r.type == "MX" else "txtrecs0"
            params = {"domain": domain, "action": "select", "delete": "yes", field_name: r.raw}
            self._call("POST", params)

    def exists(self, domain: str) -> bool:
        return self.panel.owner_of(domain) is not None

    def remote_mail(self, domain: str) -> str | None:
        # a domain whose mail this server handles is listed in /etc/virtual/domains; the
        # "use this server to handle my e-mails" switch takes it out
        local = {line.strip().lower() for line in self.panel.read_lines("etc/virtual/domains")}
        if domain not in local:
            return "DirectAdmin does not handle its mail here (not in /etc/virtual/domains)"
        return None


ZONES = DirectAdminZones


def key_file_problem(path: str) -> str | None:
    """Why the DirectAdmin key file at *path* is unsafe, or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_mode & 0o077:
        return f"api_key_file {path} is readable by group or others; run: chmod 600 {path}"
    return None
