"""Fake panel commands, written from the panels' documentation, that record their
arguments (one JSON line per call in $FAKE_PANEL_DIR/calls.jsonl) and keep their
registrations in $FAKE_PANEL_DIR/<command>.json.

  manage_hooks list --output JSON | add script PATH | delete script PATH
      (cPanel: 'add script' without --manual runs 'PATH --describe' and registers what it
      prints; 'delete script PATH' removes the hooks of that script)
  plesk bin event_handler --list | --create -command C -priority N -user U -event E |
      --delete ID
"""

import json
import os
import subprocess
import sys

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


if __name__ == "__main__":
    name, args = sys.argv[1], sys.argv[2:]
    with open(os.path.join(DIR, "calls.jsonl"), "a") as fh:
        fh.write(json.dumps([name, *args]) + "\n")
    {"manage_hooks": manage_hooks, "plesk": plesk}[name](args)
