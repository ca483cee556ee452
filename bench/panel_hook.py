#!/usr/bin/env python3
"""How long each panel waits for its hook: a fresh ``spamfilter panel-hook PANEL ...``
process fed a documented payload (tests/panels/fixtures), against a bare ``python -c pass``.

Run from a checkout with the package installed:  python bench/panel_hook.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emit_path import bytecode_env, spamfilter_path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "panels" / "fixtures"
FORMS = {
    "cpanel": "accounts_create_post",
    "directadmin": "domain_create_post",
    "plesk": "domain_create",
    "virtualmin": "create_domain_post",
}


def timed(cmd, env, stdin) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, input=stdin, check=True, capture_output=True, text=True)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    spamfilter = spamfilter_path()
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.toml"
        cfg.write_text(
            f'[general]\nstate_dir = "{tmp}/state"\nmail_host = "mx.example.net"\n\n'
            '[vendors.spamport]\napi_url = "http://127.0.0.1:9/api"\nusername = "u"\n'
            'password = "p"\n'
        )
        cfg.chmod(0o600)
        base_env = bytecode_env()
        bare = [timed([sys.executable, "-c", "pass"], base_env, "") for _ in range(args.runs)]
        result["python -c pass, median ms"] = round(statistics.median(bare), 1)
        for panel, name in FORMS.items():
            case = json.loads((FIXTURES / panel / f"{name}.json").read_text())
            env = {**base_env, **case["env"]}
            stdin = json.dumps(case["stdin"]) if panel == "cpanel" else ""
            cmd = [spamfilter, "--config", str(cfg), "panel-hook", panel, *case["argv"]]
            for _ in range(2):  # warm the capability cache and the bytecode
                timed(cmd, env, stdin)
            runs = [timed(cmd, env, stdin) for _ in range(args.runs)]
            result[f"{panel} ({name}), median ms"] = round(statistics.median(runs), 1)
            result[f"{panel}, over bare python, ms"] = round(
                statistics.median(runs) - statistics.median(bare), 1
            )
    result["runs"] = args.runs
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
