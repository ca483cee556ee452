#!/usr/bin/env python3
"""How long a panel hook waits: a fresh process running the panel-hook entry
(``spamfilter emit domain-created ...``, which queues and returns) against a bare
``python -c pass``, plus the in-process cost of ``queue.emit()``.

Run from a checkout with the package installed:  python bench/emit_path.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def summary(values: list[float]) -> dict:
    values = sorted(values)
    return {
        "median_ms": round(statistics.median(values), 1),
        "p95_ms": round(values[int(len(values) * 0.95) - 1], 1),
        "min_ms": round(values[0], 1),
    }


def spamfilter_path() -> str:
    """The ``spamfilter`` command installed with this Python (else the one on PATH): the
    install being measured, not another that happens to come first on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "spamfilter")
    return beside if os.path.exists(beside) else shutil.which("spamfilter") or beside


def bytecode_env() -> dict:
    """The environment, letting an installed package's .pyc files be written and used."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def bench_config(tmp: Path, vendors: dict) -> Path:
    """A 0600 config in *tmp* enabling *vendors* (unreachable URLs: nothing is delivered),
    with this process's and its children's panel-hook cache kept in *tmp* too."""
    from spamfilter_plugin.config.model import write_config

    os.environ["SPAMFILTER_CACHE_DIR"] = str(tmp / "cache")  # not the system's cache
    return write_config(tmp / "config.toml", {"mail_host": "mx.example.net"}, vendors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    spamfilter = spamfilter_path()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = bench_config(
            Path(tmp),
            {
                "spamport": {"api_url": "http://127.0.0.1:9/api", "username": "u", "password": "p"},
                "rackspace": {
                    "api_url": "http://127.0.0.1:9/v1",
                    "customer_id": "1",
                    "user_key": "k",
                    "secret_key": "s",
                },
            },
        )
        env = bytecode_env()
        emit_cmd = [
            spamfilter,
            "--config",
            str(cfg),
            "emit",
            "domain-created",
            "--domain",
            "bench.example",
        ]
        for _ in range(2):  # warm the capability cache and the bytecode
            subprocess.run(emit_cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        bare = [timed([sys.executable, "-c", "pass"], env) for _ in range(args.runs)]
        hook = [timed(emit_cmd, env) for _ in range(args.runs)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run(emit_cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        max_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

        from spamfilter_plugin.emit import emit
        from spamfilter_plugin.events import DomainCreated

        inproc = []
        for i in range(200):
            start = time.perf_counter()
            emit(DomainCreated(domain=f"in{i}.example"), cfg)
            inproc.append((time.perf_counter() - start) * 1000)
        heavy = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, spamfilter_plugin.cli, spamfilter_plugin.emit, "
                "spamfilter_plugin.events; print(sorted(m for m in ('requests', 'jinja2', "
                "'marshmallow', 'pluggy', 'cryptography', 'urllib3') if m in sys.modules))",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp,
        ).stdout.strip()
    result = {
        "python -c pass": summary(bare),
        "spamfilter emit (fresh process, queued)": summary(hook),
        "overhead over bare python, median ms": round(
            statistics.median(hook) - statistics.median(bare), 1
        ),
        "queue.emit() in process": summary(inproc),
        "max RSS of an emit process, MiB": round(max(before, max_rss) / 1024, 1),
        "heavy modules imported on the emit path": heavy,
        "runs": args.runs,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
