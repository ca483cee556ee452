#!/usr/bin/env python3
"""Concurrent delivery and reconcile against the SpamPort emulator with a fixed latency
added to every answer (the emulator runs in its own process, as a vendor would):

* the worker's events per second, one delivery at a time against ``concurrency`` at once;
* ``spamfilter sync`` of N domains (the command an admin runs) against the naive loop that
  calls the vendor's hook for one domain after another, and against the latency bound
  (requests x latency / concurrency);
* the peak memory of ``spamfilter sync`` at 1,000 and 10,000 domains.

Run from a checkout with the package installed:
    python bench/concurrency.py [--latency 0.02] [--concurrency 8] [--domains 10000]
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

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from emit_path import spamfilter_path

from spamfilter_plugin import intake
from spamfilter_plugin.config.model import write_config
from spamfilter_plugin.events import DomainCreated
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.queue import open_queue
from spamfilter_plugin.worker import Worker

SPAMFILTER = spamfilter_path()


class Emulator:
    """``spamfilter sandbox --vendor VENDOR`` in its own process, with added latency."""

    def __init__(self, latency: float, vendor: str = "spamport", seed: dict | None = None) -> None:
        self.latency = latency  # put back by fresh(): a reset clears it
        self.seed = seed if seed is not None else {"license_limit": 10**7}
        self.proc = subprocess.Popen(
            [SPAMFILTER, "sandbox", "--vendor", vendor, "--json", "--latency", str(latency)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines = []
        while not lines or lines[-1] != "}":
            lines.append(self.proc.stdout.readline().rstrip("\n"))
        self.table = json.loads("\n".join(lines))[vendor]
        self.root = self.table.pop("root")

    def control(self, action: str, doc=None):
        url = f"{self.root}/_sandbox/{action}"
        resp = (
            requests.post(url, json=doc, timeout=60)
            if doc is not None or action == "reset"
            else requests.get(url, timeout=60)
        )
        resp.raise_for_status()
        return resp.json()

    def fresh(self) -> None:
        self.control("reset")
        if self.seed:
            self.control("seed", self.seed)
        # reset clears the added latency too: put it back
        self.control("faults", {"latency": self.latency})

    def requests_seen(self) -> int:
        return len(self.control("requests"))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def config(tmp: Path, name: str, emulator: Emulator, concurrency: int) -> Path:
    return write_config(
        tmp / f"{name}.toml",
        {"state_dir": str(tmp / name), "mail_host": "192.0.2.25"},
        {"spamport": {**emulator.table, "retries": 0, "concurrency": concurrency}},
    )


def worker_rate(tmp: Path, emulator: Emulator, events: int, concurrency: int) -> dict:
    emulator.fresh()
    cfg = config(tmp, f"worker{concurrency}", emulator, concurrency)
    rt = load_runtime(cfg)
    rt.check("spamport")  # proven credentials: deliveries go side by side from the start
    queue = open_queue(rt.config.general.state_dir)
    intake.enqueue(
        queue, [DomainCreated(domain=f"w{i}.example") for i in range(events)], vendors=["spamport"]
    )
    started = time.perf_counter()
    stats = Worker(rt, queue=queue).drain(keep=False)
    elapsed = time.perf_counter() - started
    return {
        "events": stats.done,
        "seconds": round(elapsed, 2),
        "per_second": round(stats.done / elapsed, 1),
    }


def naive_loop(tmp: Path, emulator: Emulator, domains: int) -> dict:
    """What a script without the engine does: call the hook for each domain in turn."""
    emulator.fresh()
    rt = load_runtime(config(tmp, "naive", emulator, 1))
    rt.check("spamport")
    started = time.perf_counter()
    for i in range(domains):
        rt.call("spamport", "domain_created", event=DomainCreated(domain=f"n{i}.example"))
    elapsed = time.perf_counter() - started
    return {
        "domains": domains,
        "seconds": round(elapsed, 2),
        "per_second": round(domains / elapsed, 1),
    }


def sync_run(tmp: Path, emulator: Emulator, domains: int, concurrency: int, latency: float) -> dict:
    """``spamfilter sync`` of *domains* new domains, in its own process; its peak memory."""
    emulator.fresh()
    name = f"sync{domains}"
    cfg = config(tmp, name, emulator, concurrency)
    listing = tmp / f"{name}.txt"
    listing.write_text("".join(f"s{i}.example\n" for i in range(domains)))
    load_runtime(cfg).check("spamport")
    before = emulator.requests_seen()
    env = dict(os.environ, SPAMFILTER_CACHE_DIR=str(tmp / "cache"))
    started = time.perf_counter()
    proc = subprocess.Popen(
        [SPAMFILTER, "--config", str(cfg), "sync", "--domains-from", str(listing), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    out = proc.stdout.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"sync failed: {out}")
    sent = emulator.requests_seen() - before
    bound = sent * latency / concurrency
    return {
        "domains": domains,
        "requests": sent,
        "seconds": round(elapsed, 2),
        "bound_seconds": round(bound, 2),
        "over_bound": round(elapsed / bound, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "summary": out.strip().splitlines()[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added per answer")
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--events", type=int, default=2000, help="events for the worker runs")
    parser.add_argument("--domains", type=int, default=10000, help="domains for the big sync")
    parser.add_argument("--naive", type=int, default=1000, help="domains for the naive loop")
    args = parser.parse_args()
    emulator = Emulator(args.latency)
    results: dict = {"latency": args.latency, "concurrency": args.concurrency}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            one = worker_rate(tmp, emulator, args.events // 4, 1)
            many = worker_rate(tmp, emulator, args.events, args.concurrency)
            results["worker"] = {
                "one_at_a_time": one,
                "concurrent": many,
                "speedup": round(many["per_second"] / one["per_second"], 2),
            }
            naive = naive_loop(tmp, emulator, args.naive)
            small = sync_run(tmp, emulator, 1000, args.concurrency, args.latency)
            big = sync_run(tmp, emulator, args.domains, args.concurrency, args.latency)
            results["sync"] = {
                "naive_loop": naive,
                "sync_1000": small,
                f"sync_{args.domains}": big,
                "vs_naive": round((args.domains / big["seconds"]) / naive["per_second"], 2),
                "over_bound": big["over_bound"],
                "memory_growth_mib": round(big["peak_rss_mib"] - small["peak_rss_mib"], 1),
            }
    finally:
        emulator.stop()
    results["machine"] = f"{os.cpu_count()} cores"
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
