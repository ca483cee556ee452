#!/usr/bin/env python3
"""How long each panel waits for its hook: a fresh ``spamfilter panel-hook PANEL ...``
process fed a documented payload (tests/panels/fixtures), against a bare ``python -c pass``.

The runs are interleaved (one bare run, then one run of each form, round after round), so
a change in the machine's load touches every figure alike.  Reported: the median of each
form and its cost over bare Python; a mailbox created with its password (the password is
sealed with the queue key, which loads ``cryptography``); and the first call after the
config file changed (it validates the file in full, loading every plugin, once).

Run from a checkout with the package installed:  python bench/panel_hook.py [--runs N]

To compare with another release, install it in a virtual environment of its own and name
its command: ``--baseline /path/to/old-venv/bin/spamfilter``.  Each form then runs once on
each install in every round (which goes first alternates), each install with its own config
and state directory, and the report adds the baseline's median and the median of the
paired ratios (this release over the baseline): pairing keeps the ratio meaningful when the
machine's speed drifts during the runs.
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


def forms_of(spamfilter: str, tmp: Path, base_env: dict) -> tuple[Path, dict[str, tuple]]:
    """A config of its own in *tmp* for the install whose command is *spamfilter*, and
    each form's call through it."""
    tmp.mkdir()
    table = {"api_url": "http://127.0.0.1:9/api", "username": "u", "password": "p"}
    cfg = bench_config(tmp, {"spamport": table, "spamwall": table})
    env = {**base_env, "SPAMFILTER_CACHE_DIR": str(tmp / "cache")}  # not the system's cache
    forms = {f"{p} ({n})": call(spamfilter, cfg, p, n, env) for p, n in FORMS.items()}
    forms[f"directadmin mailbox with password ({PASSWORD_FORM[1]})"] = call(
        spamfilter, cfg, *PASSWORD_FORM, env
    )
    for cmd in forms.values():  # warm the caches, the bytecode and the queue key
        timed(*cmd)
    return cfg, forms


def cold_start(cfg: Path, cmd: tuple, runs: int) -> float:
    """The median of the first call after the config file changed (a full validation)."""
    cold = []
    for _ in range(max(3, runs // 10)):
        os.utime(cfg)  # a changed file: validated in full on the next call
        cold.append(timed(*cmd))
    return round(statistics.median(cold), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="rounds of every form")
    parser.add_argument(
        "--baseline",
        metavar="SPAMFILTER",
        help="another install's spamfilter command, run side by side for comparison",
    )
    args = parser.parse_args()
    base_env = bytecode_env()
    bare_cmd = ([sys.executable, "-c", "pass"], base_env, "")
    with tempfile.TemporaryDirectory() as tmp:
        cfg, forms = forms_of(spamfilter_path(), Path(tmp) / "this", base_env)
        old_cfg, old_forms = (
            forms_of(args.baseline, Path(tmp) / "baseline", base_env)
            if args.baseline
            else (cfg, {})
        )
        times: dict[str, list[float]] = {"bare": [], **{k: [] for k in forms}}
        old_times: dict[str, list[float]] = {k: [] for k in old_forms}
        for round_ in range(args.runs):
            times["bare"].append(timed(*bare_cmd))
            for key, cmd in forms.items():
                if key not in old_forms:
                    times[key].append(timed(*cmd))
                elif round_ % 2:
                    old_times[key].append(timed(*old_forms[key]))
                    times[key].append(timed(*cmd))
                else:
                    times[key].append(timed(*cmd))
                    old_times[key].append(timed(*old_forms[key]))
        bare = statistics.median(times["bare"])
        result: dict[str, object] = {"python -c pass, median ms": round(bare, 1)}
        for key in forms:
            median = statistics.median(times[key])
            result[f"{key}, median ms"] = round(median, 1)
            result[f"{key}, over bare python, ms"] = round(median - bare, 1)
            if key in old_times:
                pairs = zip(times[key], old_times[key], strict=True)
                result[f"{key}, baseline median ms"] = round(statistics.median(old_times[key]), 1)
                result[f"{key}, over baseline, median ratio"] = round(
                    statistics.median(new / old for new, old in pairs), 3
                )
        first = next(iter(forms))
        result["first call after a config change (full validation), median ms"] = cold_start(
            cfg, forms[first], args.runs
        )
        if old_forms:
            result["baseline: first call after a config change, median ms"] = cold_start(
                old_cfg, old_forms[first], args.runs
            )
    result["runs"] = args.runs
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
