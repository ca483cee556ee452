"""Fake panel commands, written from the panels' documentation, that record their
arguments (one JSON line per call in $FAKE_PANEL_DIR/calls.jsonl) and keep their
registrations in $FAKE_PANEL_DIR/<command>.json.

  manage_hooks list --output JSON | add script PATH | delete script PATH
      (cPanel: 'add script' without --manual runs 'PATH --describe' and registers what it
      prints; 'delete script PATH' removes the hooks of that script)
  plesk bin event_handler --list | --create -command C -priority N -user U -event E |
      --delete ID
  plesk bin dns --info D | --add D OPTS | --del D OPTS  (OPTS: -mx SUB -mailexchanger H
      -priority N, or -txt TEXT -domain SUB); --add of a record that exists exits 2;
      with {"add_keeps_nothing": true} in $FAKE_PANEL_DIR/faults.json, --add exits 0
      and keeps nothing (a broken panel, for the tests that a zone never ends empty)
  plesk bin domain --list | --info D  ("Mail service: On|Off")
  plesk db -Ne SQL  (runs SQL on $FAKE_PANEL_DIR/psa.sqlite3, the tables of Plesk's psa
      database the adapter reads, and prints the rows as the MySQL client's batch mode does:
      tab-separated, NULL for none, no header)
  whmapi1 --output=json parse_dns_zone zone=D | mass_edit_dns_zone zone=D serial=S
      [remove=LINE]... [add=JSON]... | listzones  (a stale serial is refused)
  virtualmin get-dns --domain D --multiline [--type T] | modify-dns --domain D
      [--remove-record "name type [values]"]... [--add-record "name type values"]... |
      list-domains --name-only | list-domains --domain D --multiline |
      list-domains --simple-multiline ($FAKE_PANEL_DIR/virtualmin_servers.json: dom, type,
      user, parent or real, plan, disabled) | list-plans --id N --name-only
      ($FAKE_PANEL_DIR/virtualmin_plans.json: {id: name})

The zones are kept by fake_zones.py in $FAKE_PANEL_DIR/zones.
"""

import base64
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_zones

DIR = os.environ["FAKE_PANEL_DIR"]


def state(name, default):
    try:
        with open(os.path.join(DIR, f"{name}.json")) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return default


def save(name, value):
    with open(os.path.join(DIR, f"{name}.json"), "w") as fh:
        json.dump(value, fh)


def manage_hooks(args):
    hooks = state("manage_hooks", [])
    if args[:3] == ["list", "--output", "JSON"]:
        tree = {}
        for h in hooks:
            tree.setdefault(h["category"], {}).setdefault(h["event"], []).append(h)
        print(json.dumps(tree))
    elif args[:2] == ["add", "script"] and "--manual" not in args:
        described = json.loads(subprocess.check_output([args[2], "--describe"], text=True))
        for n, h in enumerate(described):
            for key in ("category", "event", "stage", "exectype", "hook"):
                if key not in h:
                    sys.exit(f"--describe entry {n} lacks {key}")
            hooks.append({**h, "id": f"id{len(hooks)}"})
        save("manage_hooks", hooks)
        print(f"Added {len(described)} hooks")
    elif args[:2] == ["delete", "script"]:
        save("manage_hooks", [h for h in hooks if h["hook"].split(" ")[0] != args[2]])
    else:
        sys.exit(f"manage_hooks: unsupported {args}")


def plesk(args):
    if args[:2] == ["db", "-Ne"] and len(args) == 3:
        import sqlite3

        db = sqlite3.connect(os.path.join(DIR, "psa.sqlite3"))
        try:
            rows = db.execute(args[2]).fetchall()
        except sqlite3.Error as exc:
            sys.exit(f"ERROR 1064 (42000): {exc}")
        for row in rows:
            print("\t".join("NULL" if v is None else str(v) for v in row))
        return
    if args[:2] == ["bin", "dns"]:
        return plesk_dns(args[2:])
    if args[:2] == ["bin", "domain"]:
        return plesk_domain(args[2:])
    handlers = state("plesk", [])
    if args[:2] != ["bin", "event_handler"]:
        sys.exit(f"plesk: unsupported {args}")
    args = args[2:]
    if args == ["--list"]:
        print("Id   Priority  User  Event                Command")
        for h in handlers:
            print(f"{h['id']:<4} {h['priority']:<9} {h['user']:<5} {h['event']:<20} {h['command']}")
    elif args[:1] == ["--create"]:
        opts = dict(zip(args[1::2], args[2::2], strict=False))
        next_id = max((h["id"] for h in handlers), default=0) + 1
        handlers.append(
            {
                "id": next_id,
                "command": opts["-command"],
                "priority": opts["-priority"],
                "user": opts["-user"],
                "event": opts["-event"],
            }
        )
        save("plesk", handlers)
    elif args[:1] == ["--delete"]:
        save("plesk", [h for h in handlers if str(h["id"]) != args[1]])
    else:
        sys.exit(f"plesk: unsupported {args}")


def zone_or_exit(domain):
    zone = fake_zones.load(DIR, domain)
    if zone is None:
        print(f"Unable to find domain {domain}", file=sys.stderr)
        sys.exit(1)
    return zone


def plesk_domain(args):
    if args == ["--list"]:
        print("\n".join(fake_zones.domains(DIR)))
    elif args[:1] == ["--info"] and len(args) == 2:
        zone = zone_or_exit(args[1])
        print(f"Domain name:                     {args[1]}")
        print(f"Mail service:                    {'On' if zone['mail'] else 'Off'}")
    else:
        sys.exit(f"plesk bin domain: unsupported {args}")


def _plesk_record(domain, opts):
    sub = lambda key: f"{opts[key]}.{domain}." if opts[key] else f"{domain}."  # noqa: E731
    if "-mx" in opts:
        if not {"-mailexchanger", "-priority"} <= set(opts) or not opts["-priority"].isdigit():
            sys.exit("-mx needs -mailexchanger HOST and a numeric -priority")
        host = opts["-mailexchanger"].rstrip(".") + "."
        return {"name": sub("-mx"), "type": "MX", "values": [opts["-priority"], host]}
    if "-txt" in opts:
        return {
            "name": sub("-domain") if "-domain" in opts else f"{domain}.",
            "type": "TXT",
            "values": [opts["-txt"]],
        }
    sys.exit(f"unsupported record options {sorted(opts)}")


def plesk_dns(args):
    if len(args) < 2 or args[0] not in ("--info", "--add", "--del"):
        sys.exit(f"plesk bin dns: unsupported {args}")
    command, domain = args[0], args[1]
    zone = zone_or_exit(domain)
    if command == "--info":
        print(f"SUCCESS: Getting information for Domain '{domain}' complete.")
        print()
        for r in zone["records"]:
            print(f"{r['name']:<30} {r['type']:<6} {' '.join(r['values'])}")
        return
    opts = dict(zip(args[2::2], args[3::2], strict=True))
    rec = _plesk_record(domain, opts)
    present = rec in zone["records"]
    if command == "--add":
        if present:
            print("the record already exists", file=sys.stderr)
            sys.exit(2)
        if state("faults", {}).get("add_keeps_nothing"):
            print(f"SUCCESS: Creation of DNS record in Domain '{domain}' complete.")
            return  # a broken panel: says it added, keeps nothing
        zone["records"].append(rec)
    else:
        if not present:
            sys.exit(f"no such record: {rec}")
        zone["records"].remove(rec)
    zone["serial"] += 1
    fake_zones.save(DIR, domain, zone)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def whm_reply(function, data=None, reason="OK", result=1):
    print(
        json.dumps(
            {
                "data": data or {},
                "metadata": {"command": function, "reason": reason, "result": result, "version": 1},
            }
        )
    )


def whmapi1(args):
    if args[:1] != ["--output=json"] or len(args) < 2:
        sys.exit(f"whmapi1: unsupported {args}")
    function, params = args[1], [a.split("=", 1) for a in args[2:]]
    if any(len(p) != 2 for p in params):
        sys.exit(f"whmapi1: arguments are key=value: {args[2:]}")
    single = dict(params)
    if function == "listzones":
        whm_reply(
            function,
            {"zone": [{"domain": d, "zonefile": f"{d}.db"} for d in fake_zones.domains(DIR)]},
        )
        return
    if function not in ("parse_dns_zone", "mass_edit_dns_zone"):
        sys.exit(f"whmapi1: unknown function {function}")
    domain = single.get("zone", "")
    zone = fake_zones.load(DIR, domain)
    if zone is None:
        return whm_reply(function, reason=f"The zone {domain!r} does not exist.", result=0)
    if function == "parse_dns_zone":
        payload = [
            {"type": "control", "line_index": 0, "text_b64": b64("$TTL 14400")},
            {
                "type": "record",
                "line_index": 1,
                "record_type": "SOA",
                "ttl": 14400,
                "dname_b64": b64(f"{domain}."),
                "data_b64": [
                    b64(f"ns1.{domain}."),
                    b64(f"hostmaster.{domain}."),
                    b64(str(zone["serial"])),
                    b64("3600"),
                    b64("1800"),
                    b64("1209600"),
                    b64("86400"),
                ],
            },
        ]
        for i, r in enumerate(zone["records"]):
            name = r["name"]
            dname = name if name == f"{domain}." else name[: -len(domain) - 2]
            payload.append(
                {
                    "type": "record",
                    "line_index": i + 2,
                    "record_type": r["type"],
                    "ttl": 14400,
                    "dname_b64": b64(dname),
                    "data_b64": [b64(v) for v in r["values"]],
                }
            )
        return whm_reply(function, {"payload": payload})
    if single.get("serial") != str(zone["serial"]):
        return whm_reply(
            function,
            reason=f"The serial number {single.get('serial')} does not "
            f"match the zone's current serial {zone['serial']}.",
            result=0,
        )
    removes = [int(v) - 2 for k, v in params if k == "remove"]
    if any(i < 0 or i >= len(zone["records"]) for i in removes):
        return whm_reply(function, reason="A line index to remove is not a record.", result=0)
    adds = []
    for k, v in params:
        if k != "add":
            continue
        item = json.loads(v)
        if set(item) != {"dname", "ttl", "record_type", "data"} or not item["data"]:
            return whm_reply(function, reason=f"Invalid record: {v}", result=0)
        if item["record_type"] == "MX" and (
            len(item["data"]) != 2 or not item["data"][0].isdigit()
        ):
            return whm_reply(function, reason="MX data is [priority, exchange]", result=0)
        name = item["dname"] if item["dname"].endswith(".") else f"{item['dname']}.{domain}."
        adds.append({"name": name, "type": item["record_type"], "values": item["data"]})
    zone["records"] = [r for i, r in enumerate(zone["records"]) if i not in removes] + adds
    zone["serial"] += 1
    fake_zones.save(DIR, domain, zone)
    whm_reply(function, {"new_serial": zone["serial"]})


def _virtualmin_name(name, domain):
    return name if name.endswith(".") else f"{name}.{domain}."


def virtualmin(args):
    command, rest = args[0], args[1:]
    if command == "list-plans":  # --id N --name-only, as list-plans.pl prints it
        plans = state("virtualmin_plans", {})
        if len(rest) != 3 or rest[0] != "--id" or rest[2] != "--name-only":
            sys.exit(f"virtualmin list-plans: unsupported {rest}")
        if rest[1] not in plans:
            print(f"No plan with ID {rest[1]} was found")
            sys.exit(1)
        print(plans[rest[1]])
        return
    if command == "list-domains":
        if rest == ["--name-only"]:
            print("\n".join(fake_zones.domains(DIR)))
            return
        if rest == ["--simple-multiline"]:  # list-domains.pl's keys, in its order
            for d in state("virtualmin_servers", []):
                print(d["dom"])
                print(f"    Type: {d['type']}")
                if d.get("real"):
                    print(f"    Real domain: {d['real']}")
                elif d.get("parent"):
                    print(f"    Parent domain: {d['parent']}")
                if d.get("plan"):
                    print(f"    Plan: {d['plan']}")
                print(f"    Username: {d['user']}")
                if d.get("disabled"):
                    print(f"    Disabled: {d['disabled']}")
            return
        if rest[:1] == ["--domain"] and rest[2:] == ["--multiline"]:
            zone = zone_or_exit(rest[1])
            print(rest[1])
            print("    Features: unix dir dns web" + (" mail" if zone["mail"] else ""))
            return
        sys.exit(f"virtualmin list-domains: unsupported {rest}")
    opts, pairs = {}, []
    i = 0
    while i < len(rest):
        if rest[i] == "--multiline":
            opts["multiline"] = True
            i += 1
            continue
        if i + 1 >= len(rest):
            sys.exit(f"{rest[i]} needs a value")
        pairs.append((rest[i], rest[i + 1]))
        i += 2
    domain = dict(pairs).get("--domain")
    if not domain:
        sys.exit("Missing --domain parameter")
    zone = zone_or_exit(domain)
    if command == "get-dns":
        if not opts.get("multiline"):
            sys.exit("this fake prints --multiline only")
        rtype = dict(pairs).get("--type")
        for r in zone["records"]:
            if rtype and r["type"] != rtype.upper():
                continue
            print(r["name"])
            print(f"    Type: {r['type']}")
            print("    Class: IN")
            for v in r["values"]:
                print(f"    Value: {v}")
        return
    if command != "modify-dns":
        sys.exit(f"virtualmin: unsupported {command}")
    changed = False
    for flag, value in pairs:  # removals first, as modify-dns.pl does
        if flag == "--remove-record":
            name, rtype, *values = value.split()
            name = _virtualmin_name(name, domain)
            kept = [
                r
                for r in zone["records"]
                if not (
                    r["name"] == name
                    and r["type"].lower() == rtype.lower()
                    and (not values or " ".join(values) == " ".join(r["values"]))
                )
            ]
            changed |= len(kept) != len(zone["records"])
            zone["records"] = kept
    for flag, value in pairs:
        if flag == "--add-record":
            name, rtype, *values = value.split()
            if not values:
                sys.exit("--add-record must be followed by the record name, type and values")
            name = _virtualmin_name(name, domain)
            if not name.endswith(f".{domain}.") and name != f"{domain}.":
                print(f"record {name} is not in the domain")
                continue
            if rtype.upper() == "TXT":
                values = [" ".join(values)]
            zone["records"].append({"name": name, "type": rtype.upper(), "values": values})
            changed = True
        elif flag not in ("--remove-record", "--domain"):
            sys.exit(f"Unknown parameter {flag}")
    if changed:
        zone["serial"] += 1
        fake_zones.save(DIR, domain, zone)


if __name__ == "__main__":
    name, args = sys.argv[1], sys.argv[2:]
    with open(os.path.join(DIR, "calls.jsonl"), "a") as fh:
        fh.write(json.dumps([name, *args]) + "\n")
    {"manage_hooks": manage_hooks, "plesk": plesk, "whmapi1": whmapi1, "virtualmin": virtualmin}[
        name
    ](args)
