#!/usr/bin/env python3
"""Fleet mode against a single server, in one run: delivery to the SpamPort emulator (in its
own process, with a fixed latency added to every answer) by worker processes on the
PostgreSQL store (two servers, two workers each) and on the SQLite store (one server, two
workers), with the same number of deliveries in flight in all (``--concurrency``: the
fleet holds it for all its workers, one server's workers split it); and what claiming and
completing one row costs each store.

Needs a PostgreSQL server (``--postgres URL``, default ``$SPAMFILTER_TEST_POSTGRES``); the
run makes a schema of its own there and drops it.

Run from a checkout with the package installed (with the fleet extra):
    python bench/fleet.py [--latency 0.02] [--concurrency 16] [--events 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
from concurrency import Emulator
from emit_path import spamfilter_path

from spamfilter_plugin import intake
from spamfilter_plugin.config.model import FleetConfig, toml_table, write_config
from spamfilter_plugin.events import DomainCreated
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.queue import open_queue
from spamfilter_plugin.store import postgres

SPAMFILTER = spamfilter_path()


def server(tmp: Path, name: str, emulator: Emulator, per_worker: int, fleet: dict | None):
    cfg = write_config(
        tmp / f"{name}.toml",
        {"state_dir": str(tmp / name), "mail_host": "192.0.2.25"},
        {"spamport": {**emulator.table, "retries": 0, "concurrency": per_worker}},
    )
    if fleet is not None:
        with open(cfg, "a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(toml_table("fleet", {**fleet, "server": name})) + "\n")
    return cfg


def fill(cfg: Path, events: int, prefix: str) -> None:
    rt = load_runtime(cfg)
    rt.check("spamport")  # proven credentials: deliveries go side by side from the start
    queue = open_queue(rt.config.general.state_dir, fleet=rt.config.fleet)
    for start in range(0, events, 500):
        batch = [DomainCreated(domain=f"{prefix}{i}.example") for i in range(start, start + 500)]
        intake.enqueue(queue, batch[: events - start], vendors=["spamport"])
    queue.close()


def drain(configs: list[Path], workers_each: int, tmp: Path) -> float:
    """Start every worker at once (``worker --drain``); seconds until the last is done."""
    env = dict(os.environ, SPAMFILTER_CACHE_DIR=str(tmp / "cache"))
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [SPAMFILTER, "--config", str(cfg), "worker", "--drain"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        for cfg in configs
        for _ in range(workers_each)
    ]
    for proc in procs:
        if proc.wait(600) != 0:
            raise SystemExit("a worker failed")
    return time.perf_counter() - started


def delivery(tmp: Path, emulator: Emulator, args, fleet: dict | None) -> dict:
    emulator.fresh()
    servers = ["web1", "web2"] if fleet else ["solo"]
    workers = 2 * len(servers)
    # the fleet holds a vendor's concurrency in all; one server's workers each their own
    per_worker = args.concurrency if fleet else max(1, args.concurrency // workers)
    configs = [server(tmp, name, emulator, per_worker, fleet) for name in servers]
    for cfg, name in zip(configs, servers, strict=True):
        fill(cfg, args.events // len(servers), f"{name}-")
    before = emulator.requests_seen()
    seconds = drain(configs, 2, tmp)
    sent = emulator.requests_seen() - before
    bound = sent * args.latency / args.concurrency
    return {
        "servers": len(servers),
        "workers": workers,
        "in_flight": args.concurrency,
        "events": sent,
        "seconds": round(seconds, 2),
        "per_second": round(sent / seconds, 1),
        "latency_bound_per_second": round(sent / bound, 1),
        "of_bound": round(bound / seconds, 2),
    }


def claim_cost(tmp: Path, rows: int, fleet_config: FleetConfig | None) -> dict:
    """Microseconds per row to claim (50 at a time) and complete (the 50 together), no
    vendor call."""
    state = tmp / ("claims-pg" if fleet_config else "claims-sqlite")
    queue = open_queue(state, fleet=fleet_config)
    items = [DomainCreated(domain=f"c{i}.example") for i in range(rows)]
    for start in range(0, rows, 500):
        intake.enqueue(queue, items[start : start + 500], vendors=["spamport"])
    started = time.perf_counter()
    done = 0
    while True:
        with queue.batch():
            claimed = queue.claim_batch("bench", 60, {"spamport": 50})
        if not claimed:
            break
        # as the worker records the deliveries that ended together: one write for them all
        queue.complete_many([(row, token, {"message": "ok"}) for row, token in claimed])
        done += len(claimed)
    elapsed = time.perf_counter() - started
    queue.close()
    return {"rows": done, "microseconds_per_row": round(elapsed / done * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added per answer")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="deliveries in flight in all (split)"
    )
    parser.add_argument("--events", type=int, default=4000, help="domain creations per run")
    parser.add_argument("--claims", type=int, default=5000, help="rows for the claim cost")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SPAMFILTER_TEST_POSTGRES", "postgresql://root@127.0.0.1/test"),
        help="libpq URL of a PostgreSQL server to make a schema on",
    )
    args = parser.parse_args()
    schema = f"sfp_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.postgres, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in args.postgres else "?"
    url = f"{args.postgres}{joiner}options={quote(f'-csearch_path={schema}')}"
    emulator = Emulator(args.latency)
    results: dict = {"latency": args.latency, "concurrency": args.concurrency}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            key = tmp / "fleet.key"
            fleet_config = FleetConfig(url=url, server="bench", key_file=key)
            postgres.FleetKey(key).make()
            with postgres.connect(fleet_config) as db:
                postgres.migrate(db)
            fleet = {"url": url, "key": {"file": str(key)}}
            results["postgres"] = delivery(tmp, emulator, args, fleet)
            results["sqlite"] = delivery(tmp, emulator, args, None)
            results["claim_and_complete"] = {
                "postgres": claim_cost(tmp, args.claims, fleet_config),
                "sqlite": claim_cost(tmp, args.claims, None),
            }
    finally:
        emulator.stop()
        postgres.close_pools()
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
    results["machine"] = f"{os.cpu_count()} cores"
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
