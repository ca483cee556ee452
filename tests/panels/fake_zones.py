"""The zones the fake panels keep: ``$FAKE_PANEL_DIR/zones/<domain>.json`` with the SOA
serial, whether the panel handles the domain's mail, and the records as the panel writes
them (names fully qualified with the final dot, values as in a zone file).

Shared by the fake commands (run as scripts), the fake DirectAdmin server and the tests;
:func:`dns_view` is what the loopback DNS server answers from, as a panel's BIND serves
the zones the panel writes."""

import json
import os


def _path(base, domain):
    return os.path.join(base, "zones", f"{domain}.json")


def create(base, domain, mx=(), txt=(), mail=True):
    """A new zone for *domain* with the MX ``(priority, host)`` pairs *mx*."""
    os.makedirs(os.path.join(base, "zones"), exist_ok=True)
    records = [
        {"name": f"{domain}.", "type": "A", "values": ["192.0.2.10"]},
        *({"name": f"{domain}.", "type": "MX", "values": [str(p), f"{h}."]} for p, h in mx),
        *({"name": n, "type": "TXT", "values": [v]} for n, v in txt),
    ]
    save(base, domain, {"serial": 2026010101, "mail": mail, "records": records})


def load(base, domain):
    try:
        with open(_path(base, domain)) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def save(base, domain, zone):
    with open(_path(base, domain), "w") as fh:
        json.dump(zone, fh)


def domains(base):
    folder = os.path.join(base, "zones")
    return sorted(n[:-5] for n in os.listdir(folder)) if os.path.isdir(folder) else []


def mx(base, domain):
    """The zone's MX set as (priority, host) pairs, hosts without the final dot."""
    zone = load(base, domain) or {"records": []}
    return sorted(
        (int(r["values"][0]), r["values"][1].rstrip("."))
        for r in zone["records"]
        if r["type"] == "MX" and r["name"] == f"{domain}."
    )


def dns_view(base):
    """A function giving ``{name: {type: [rdata text]}}`` for every zone, read afresh."""

    def view():
        out = {}
        for domain in domains(base):
            for r in load(base, domain)["records"]:
                text = " ".join(r["values"]) if r["type"] != "TXT" else f'"{r["values"][0]}"'
                out.setdefault(r["name"], {}).setdefault(r["type"], []).append(text)
        return out

    return view


def zone_text(domain, zone):
    """The zone as a zone file (what DirectAdmin's raw dump gives)."""
    lines = [
        "$TTL 14400",
        f"{domain}. 14400 IN SOA ns1.{domain}. hostmaster.{domain}. {zone['serial']} 3600 "
        "3600 1209600 86400",
        f"{domain}. 14400 IN NS ns1.{domain}.",
    ]
    for r in zone["records"]:
        value = " ".join(r["values"]) if r["type"] != "TXT" else f'"{r["values"][0]}"'
        lines.append(f"{r['name']} 14400 IN {r['type']} {value}")
    return "\n".join(lines) + "\n"
