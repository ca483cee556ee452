"""A stand-in for ``systemctl``, written from its manual: ``is-enabled`` and ``is-active``
answer by exit status (0: yes) and change nothing; ``daemon-reload``, ``enable [--now]``
and ``disable [--now]`` change the state kept in ``$FAKE_SYSTEMD_DIR/state.json``; every
call is logged in ``calls.jsonl``.  ``$FAKE_SYSTEMCTL_FAIL`` names a unit whose ``enable``
fails (exit 1), as a unit with a broken ExecStart would."""

import json
import os
import sys
from pathlib import Path

base = Path(os.environ["FAKE_SYSTEMD_DIR"])
args = sys.argv[1:]
with (base / "calls.jsonl").open("a") as log:
    log.write(json.dumps(args) + "\n")
state_file = base / "state.json"
state = json.loads(state_file.read_text()) if state_file.exists() else {}
verb, rest = args[0], [a for a in args[1:] if not a.startswith("-")]
units = state.setdefault("units", {})
if verb in ("is-enabled", "is-active"):
    key = "enabled" if verb == "is-enabled" else "active"
    sys.exit(0 if all(units.get(u, {}).get(key) for u in rest) else 1)
if verb == "daemon-reload":
    state["reloads"] = state.get("reloads", 0) + 1
elif verb in ("enable", "disable"):
    on = verb == "enable"
    for name in rest:
        if on and name == os.environ.get("FAKE_SYSTEMCTL_FAIL"):
            print(f"Failed to enable unit {name}: broken", file=sys.stderr)
            sys.exit(1)
        units[name] = {"enabled": on, "active": on if "--now" in args else False}
else:
    print(f"unknown verb {verb}", file=sys.stderr)
    sys.exit(1)
state_file.write_text(json.dumps(state))
