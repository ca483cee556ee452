"""Virtualmin's DNS: ``virtualmin get-dns --domain D --multiline`` (a name line, then ``Type:``
and ``Value:`` lines) and ``virtualmin modify-dns --domain D --remove-record "name type
values" --add-record "name type values"``: one call, removals first, values compared as
written.  virtualmin-gpl ``get-dns.pl`` and ``modify-dns.pl``.
"""

from __future__ import annotations

from ...errors import PanelError
from ..dns import Record, Zones, absolute, mx_value
from ..steps import run_command


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


ZONES = VirtualminZones
