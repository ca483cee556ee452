#!/usr/bin/env python3
"""How long each panel waits for its hook: a fresh ``spamfilter panel-hook PANEL ...``
process fed a documented payload (tests/panels/fixtures), against a bare ``python -c pass``.

The runs are interleaved (one bare run, then one run of each form, round after round), so
a change in the machine's load touches every figure alike.  Reported: the median of each
form and its cost over bare Python; a mailbox created with its password (the password is
sealed with the queue key, which loads ``cryptography``); and the first call after the
config file changed (it validates the file in full, loading every plugin, once).

Run from a checkout with the package installed:  python bench/panel_hook.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emit_path import bench_config, bytecode_env, spamfilter_path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "panels" / "fixtures"
FORMS = {
    "cpanel": "accounts_create_post",
    "directadmin": "domain_create_post",
    "plesk": "domain_create",
    "virtualmin": "create_domain_post",
}
#: a new mailbox with the panel's plain-text password (two events, one password sealed)
PASSWORD_FORM = ("directadmin", "email_create_post")


def timed(cmd, env, stdin) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, input=stdin, check=True, capture_output=True, text=True)
    return (time.perf_counter() - start) * 1000


def call(spamfilter: str, cfg: Path, panel: str, name: str, base_env: dict):
    case = json.loads((FIXTURES / panel / f"{name}.json").read_text())
    env = {**base_env, **case["env"]}
    stdin = json.dumps(case["stdin"]) if panel == "cpanel" else ""
    return [spamfilter, "--config", str(cfg), "panel-hook", panel, *case["argv"]], env, stdin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    spamfilter = spamfilter_path()
    with tempfile.TemporaryDirectory() as tmp:
        table = {"api_url": "http://127.0.0.1:9/api", "username": "u", "password": "p"}
        cfg = bench_config(Path(tmp), {"spamport": table, "spamwall": table})
        base_env = bytecode_env()
        bare_cmd = ([sys.executable, "-c", "pass"], base_env, "")
        forms = {f"{p} ({n})": call(spamfilter, cfg, p, n, base_env) for p, n in FORMS.items()}
        forms[f"directadmin mailbox with password ({PASSWORD_FORM[1]})"] = call(
            spamfilter, cfg, *PASSWORD_FORM, base_env
        )
        for cmd in forms.values():  # warm the caches, the bytecode and the queue key
            timed(*cmd)
        times: dict[str, list[float]] = {"bare": [], **{k: [] for k in forms}}
        for _ in range(args.runs):
            times["bare"].append(timed(*bare_cmd))
            for key, cmd in forms.items():
                times[key].append(timed(*cmd))
        bare = statistics.median(times["bare"])
        result: dict[str, object] = {"python -c pass, median ms": round(bare, 1)}
        for key in forms:
            median = statistics.median(times[key])
            result[f"{key}, median ms"] = round(median, 1)
            result[f"{key}, over bare python, ms"] = round(median - bare, 1)
        cold = []
        first = next(iter(forms.values()))
        for _ in range(max(3, args.runs // 10)):
            os.utime(cfg)  # a changed file: validated in full on the next call
            cold.append(timed(*first))
        result["first call after a config change (full validation), median ms"] = round(
            statistics.median(cold), 1
        )
    result["runs"] = args.runs
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
