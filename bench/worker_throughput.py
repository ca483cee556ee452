#!/usr/bin/env python3
"""Worker throughput: events delivered per second to the SpamPort and Rackspace
emulators on loopback, by one worker and by several worker processes at once.

Run from a checkout with the package installed:  python bench/worker_throughput.py [--events N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from emit_path import spamfilter_path
from queue_helpers import sandbox_config

from spamfilter_plugin.emit import emit
from spamfilter_plugin.events import DomainCreated, MailboxAdded
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.queue import open_queue
from spamfilter_plugin.sandbox import Sandbox
from spamfilter_plugin.worker import Worker

SPAMFILTER = spamfilter_path()


def fill(cfg: Path, n: int, prefix: str) -> None:
    for i in range(n):
        if i % 4 == 3:
            emit(MailboxAdded(mailbox=f"user{i % 50}@example.com"), cfg)
        else:
            emit(DomainCreated(domain=f"{prefix}{i}.example"), cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    results = {}
    with (
        Sandbox(vendors=["spamport", "rackspace"]) as sandbox,
        tempfile.TemporaryDirectory() as tmp,
    ):
        sandbox["spamport"].emulator.license_limit = 10**9
        sandbox["rackspace"].emulator.seed_data(
            {
                "rate_limit": 10**9,
                "mailboxes": [{"domain": "example.com", "mailbox": f"user{i}"} for i in range(50)],
            }
        )
        # one worker, in process
        cfg = sandbox_config(
            Path(tmp),
            sandbox,
            name="one.toml",
            general={"state_dir": f"{tmp}/one"},
            rackspace={"rate_limit": 10000},
        )
        fill(cfg, args.events, "one")
        start = time.perf_counter()
        stats = Worker(load_runtime(cfg)).drain()
        elapsed = time.perf_counter() - start
        results["one worker"] = {
            "events": stats.done,
            "seconds": round(elapsed, 2),
            "events_per_second": round(stats.done / elapsed, 1),
        }
        # several worker processes on one queue
        cfg = sandbox_config(
            Path(tmp),
            sandbox,
            name="many.toml",
            general={"state_dir": f"{tmp}/many"},
            rackspace={"rate_limit": 10000},
        )
        fill(cfg, args.events, "many")
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [SPAMFILTER, "--config", str(cfg), "worker", "--drain"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(args.workers)
        ]
        for p in procs:
            p.wait()
        elapsed = time.perf_counter() - start
        done = open_queue(Path(tmp) / "many").counts()["done"]
        results[f"{args.workers} worker processes"] = {
            "events": done,
            "seconds": round(elapsed, 2),
            "events_per_second": round(done / elapsed, 1),
        }
    results["machine"] = f"{os.cpu_count()} cores"
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
