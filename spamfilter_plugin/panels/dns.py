"""The panel's DNS: read a domain's records, change its MX set, add and remove a TXT record.

The panel owns its zones, so records change only through its documented interface (a
zone file edited behind its back is overwritten at its next rewrite), one per panel:

* cPanel & WHM: WHM API 1 through ``whmapi1``: ``parse_dns_zone`` to read (records with
  their line index, names and data in base64) and ``mass_edit_dns_zone`` to change, which
  takes the SOA serial read with the records and refuses the edit when the zone changed in
  between, so a stale line index can never remove the wrong record.
  https://api.docs.cpanel.net/openapi/whm/operation/parse_dns_zone/ and
  https://api.docs.cpanel.net/openapi/whm/operation/mass_edit_dns_zone/
* DirectAdmin: ``CMD_API_DNS_ADMIN`` (an admin login key; "works exactly the same as
  CMD_API_DNS_CONTROL ... on any domain"): a GET with ``domain`` returns the raw zone; a
  POST with ``action=add`` (``type``, ``name``, ``value``; for MX ``value`` is the
  priority and ``mx_value`` the host) adds; ``action=select`` with ``mxrecs0`` /
  ``txtrecs0`` set to ``name=...&value=...`` deletes.  Answers are ``error=0&text=...``.
  https://docs.directadmin.com/changelog/version-1.24.2.html (API for DNS administration)
* Plesk: ``plesk bin dns --info DOMAIN`` lists the records; ``--add`` / ``--del`` with
  ``-mx SUB -mailexchanger HOST -priority N`` or ``-txt TEXT -domain SUB``.
  https://docs.plesk.com/en-US/obsidian/cli-linux/using-command-line-utilities/dns-dns-zones-on-domains.37771
* Virtualmin: ``virtualmin get-dns --domain D --multiline`` (a name line, then ``Type:``
  and ``Value:`` lines) and ``virtualmin modify-dns --domain D --remove-record "name type
  values" --add-record "name type values"``: one call, removals first, values compared as
  written.  virtualmin-gpl ``get-dns.pl`` and ``modify-dns.pl``.

Records are :class:`Record` (``name`` fully qualified, lower case, no trailing dot; MX
``value`` ``"10 host"``; TXT ``value`` the text), each keeping the panel's own form in
``raw`` so a removal names the record exactly as the panel stores it.  A change is read
back: when the zone does not hold what was asked, :class:`~..errors.PanelError` says what
it holds instead.  Panels that change records one call at a time add before they remove,
read the zone back after each addition and before each removal, and never remove the last
MX record, so a zone is never without MX, even when the panel misbehaves.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
from dataclasses import dataclass, field
from typing import Any

from ..errors import PanelError
from ..mx.lookup import MxSet, mx_set
from ..mx.plan import EmptyZone

#: seconds a panel command or call may take
TIMEOUT = 60.0
#: the TTL of records we add, where the panel asks for one (cPanel's default)
TTL = 14400


def run_command(argv: list[str], timeout: float = TIMEOUT) -> str:
    """Run a panel command; its standard output, or PanelError naming the command, its exit
    status and what it printed on standard error."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise PanelError(f"{argv[0]} not found; check the [panel] table", temporary=False) from None
    except subprocess.TimeoutExpired:
        raise PanelError(f"{shlex.join(argv)} did not finish within {timeout:g}s") from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip())[:300]
        raise PanelError(f"{shlex.join(argv)} failed (exit {done.returncode}): {said}")
    return done.stdout


@dataclass(frozen=True)
class Record:
    name: str
    type: str
    value: str
    raw: Any = field(default=None, compare=False, hash=False)

    @property
    def mx(self) -> tuple[int, str]:
        priority, host = self.value.split(None, 1)
        return int(priority), host


def absolute(name: str, zone: str) -> str:
    """*name* as written in a zone (relative, ``@``, or with the final dot) made fully
    qualified, lower case, without the final dot."""
    name = name.strip().lower()
    if name in ("", "@"):
        return zone
    if name.endswith("."):
        return name[:-1]
    return f"{name}.{zone}"


def relative(name: str, zone: str) -> str:
    """The part of *name* before *zone* ('' for the zone itself)."""
    name = name.lower().rstrip(".")
    return "" if name == zone else name[: -len(zone) - 1]


def mx_value(priority, host: str) -> str:
    return f"{int(priority)} {host.rstrip('.').lower()}"


class Zones:
    """One panel's DNS service: subclasses read (:meth:`records`) and change
    (:meth:`apply`); the MX and TXT operations are built on those two."""

    #: whether :meth:`apply` is one call (else it adds before it removes)
    atomic = False

    def __init__(self, conf: dict, panel=None) -> None:
        self.conf = conf
        self.panel = panel

    def records(self, domain: str, rtype: str | None = None) -> list[Record]:
        raise NotImplementedError

    def apply(self, domain: str, remove: list[Record], add: list[Record]) -> None:
        raise NotImplementedError

    def exists(self, domain: str) -> bool:
        """Whether the panel still has *domain* (its zone goes with it)."""
        raise NotImplementedError

    def remote_mail(self, domain: str) -> str | None:
        """Why this server does not handle *domain*'s mail (the panel's "remote mail"
        setting), or None when it does."""
        raise NotImplementedError

    # -- built on records() and apply() --------------------------------------------------

    def of_type(self, domain: str, rtype: str) -> list[Record]:
        return [r for r in self.records(domain, rtype) if r.type == rtype]

    def mx(self, domain: str) -> MxSet:
        """The MX set of the zone apex of *domain*."""
        return mx_set(r.mx for r in self.of_type(domain, "MX") if r.name == domain)

    def change_mx(self, domain: str, remove, add) -> MxSet:
        """Take the (priority, host) pairs *remove* out of the zone and put *add* in; the
        set the zone holds afterwards (read back).  EmptyZone when the zone would be left
        without MX; PanelError when the panel did not do what was asked."""
        held = [r for r in self.of_type(domain, "MX") if r.name == domain]
        current = mx_set(r.mx for r in held)
        remove, add = set(mx_set(remove)), set(mx_set(add))
        expected = mx_set((set(current) - remove) | add)
        if not expected:
            raise EmptyZone(f"{domain}: the zone would be left without an MX record")
        if expected == current:
            return current
        gone = [r for r in held if r.mx in remove and r.mx not in add]
        new = [Record(domain, "MX", mx_value(p, h)) for p, h in sorted(add - set(current))]
        if self.atomic:
            self.apply(domain, gone, new)
        else:
            self._one_at_a_time(domain, gone, new)
        after = self.mx(domain)
        if after != expected:
            raise PanelError(
                f"{domain}: after the MX change the panel holds {_shown(after)}; "
                f"expected {_shown(expected)}"
            )
        return after

    def _one_at_a_time(self, domain: str, gone: list[Record], new: list[Record]) -> None:
        """For a panel that changes one record per call: add each record and read the zone
        back, then remove each only after reading that another MX record stays.  At the
        first surprise (a record the panel did not keep, a removal that would empty the
        zone) PanelError, and nothing more is changed."""
        for record in new:
            self.apply(domain, [], [record])
            held = self.mx(domain)
            if record.mx not in held:
                raise PanelError(
                    f"{domain}: the panel did not keep the MX record {record.value} it was "
                    f"asked to add (it holds {_shown(held)}); stopped before removing anything"
                )
        for record in gone:
            held = self.mx(domain)
            if record.mx not in held:
                continue  # gone already
            if not set(held) - {record.mx}:
                raise PanelError(
                    f"{domain}: removing {record.value} would leave the zone without an MX "
                    f"record (it holds {_shown(held)}); stopped"
                )
            self.apply(domain, [record], [])

    def txt(self, domain: str, name: str) -> list[str]:
        """The values of the TXT records at *name* (fully qualified)."""
        name = name.rstrip(".").lower()
        return [r.value for r in self.of_type(domain, "TXT") if r.name == name]

    def add_txt(self, domain: str, name: str, value: str) -> bool:
        """Publish the TXT record *name* (fully qualified) = *value*; False when it was
        there already."""
        name = name.rstrip(".").lower()
        if value in self.txt(domain, name):
            return False
        self.apply(domain, [], [Record(name, "TXT", value)])
        if value not in self.txt(domain, name):
            raise PanelError(f"{domain}: the panel did not keep the TXT record {name}")
        return True

    def remove_txt(self, domain: str, name: str, value: str) -> bool:
        """Remove that TXT record; False when it was not there."""
        name = name.rstrip(".").lower()
        found = [r for r in self.of_type(domain, "TXT") if r.name == name and r.value == value]
        if not found:
            return False
        self.apply(domain, found, [])
        return True


def _shown(records: MxSet) -> str:
    return ", ".join(f"{p} {h}" for p, h in records) or "no MX records"


# ---------------------------------------------------------------------------------------
# cPanel & WHM
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Plesk
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Virtualmin
# ---------------------------------------------------------------------------------------


class VirtualminZones(Zones):
    atomic = True

    def records(self, domain: str, rtype: str | None = None) -> list[Record]:
        argv = [self.conf["virtualmin"], "get-dns", "--domain", domain, "--multiline"]
        if rtype:
            argv += ["--type", rtype]
        blocks: list[dict] = []
        for line in run_command(argv).splitlines():
            if line and not line[0].isspace():
                blocks.append({"name": line.strip(), "values": []})
            elif blocks and ":" in line:
                key, _, value = line.strip().partition(":")
                if key == "Value":
                    blocks[-1]["values"].append(value.strip())
                elif key == "Type":
                    blocks[-1]["type"] = value.strip().upper()
        out = []
        for b in blocks:
            name, kind, values = absolute(b["name"], domain), b.get("type", ""), b["values"]
            raw = f"{b['name']} {kind} {' '.join(values)}"
            if kind == "MX" and len(values) == 2:
                out.append(Record(name, kind, mx_value(*values), raw))
            elif kind == "TXT":
                out.append(Record(name, kind, " ".join(v.strip('"') for v in values), raw))
        return out

    def apply(self, domain: str, remove: list[Record], add: list[Record]) -> None:
        argv = [self.conf["virtualmin"], "modify-dns", "--domain", domain]
        for r in remove:
            argv += ["--remove-record", r.raw]
        for r in add:
            if r.type == "TXT" and len(r.value.split()) != 1:
                raise PanelError(
                    f"virtualmin modify-dns splits a record's value at spaces, so the TXT "
                    f"value for {r.name} cannot be added as one string; publish it by hand",
                    temporary=False,
                )
            value = "{} {}.".format(*r.mx) if r.type == "MX" else r.value
            argv += ["--add-record", f"{r.name}. {r.type} {value}"]
        run_command(argv)

    def exists(self, domain: str) -> bool:
        out = run_command([self.conf["virtualmin"], "list-domains", "--name-only"])
        return domain in {d.strip().lower() for d in out.splitlines()}

    def remote_mail(self, domain: str) -> str | None:
        # list-domains --multiline shows a "Features:" line; without "mail" the server does
        # not handle the domain's mail
        argv = [self.conf["virtualmin"], "list-domains", "--domain", domain, "--multiline"]
        for line in run_command(argv).splitlines():
            key, _, value = line.strip().partition(":")
            if key == "Features":
                return None if "mail" in value.split() else "the mail feature is off in Virtualmin"
        return None


# ---------------------------------------------------------------------------------------
# DirectAdmin
# ---------------------------------------------------------------------------------------


def _da_name(name: str, zone: str) -> str:
    """*name* as DirectAdmin writes it in *zone*: relative when inside the zone, else fully
    qualified with the final dot (the zone itself included)."""
    name = name.rstrip(".").lower()
    return relative(name, zone) if name.endswith("." + zone) else f"{name}."


class DirectAdminZones(Zones):
    def _call(self, method: str, params: dict[str, str]) -> str:
        import requests

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
        send = {"params": params} if method == "GET" else {"data": params}
        try:
            response = requests.request(
                method,
                url,
                auth=(conf["api_user"], key),
                timeout=(5, TIMEOUT),
                verify=conf["api_ca_file"] or True,
                allow_redirects=False,
                **send,
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
            from urllib.parse import parse_qs

            answer = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
            if answer.get("error") != "0":
                said = f"{answer.get('text', '')} {answer.get('details', '')}".strip()
                raise PanelError(f"DirectAdmin CMD_API_DNS_ADMIN {params.get('action')}: {said}")
        return text

    def records(self, domain: str, rtype: str | None = None) -> list[Record]:
        import dns.exception
        import dns.rdatatype
        import dns.zone

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


KINDS = {
    "cpanel": CpanelZones,
    "directadmin": DirectAdminZones,
    "plesk": PleskZones,
    "virtualmin": VirtualminZones,
}


def zones_for(panel) -> Zones:
    """The DNS service of the panel adapter *panel*."""
    return KINDS[panel.name](panel.conf, panel)


def key_file_problem(path: str) -> str | None:
    """Why the DirectAdmin key file at *path* is unsafe, or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_mode & 0o077:
        return f"api_key_file {path} is readable by group or others; run: chmod 600 {path}"
    return None
