#!/usr/bin/env python3
"""Processor time per delivery: ``spamfilter worker --drain`` beside a bare ``requests``
loop that sends the same requests to the same emulator, in the same run.

For each vendor, against its emulator in its own process with a fixed latency added to
every answer (a vendor on the network):

1. the worker's requests are recorded once (an in-process drain with ``requests``'
   ``HTTPAdapter.send`` wrapped: method, URL, headers, body);
2. ``spamfilter worker --drain`` delivers N queued events (the queue filled beforehand, on
   the SQLite store or, with ``--postgres URL``, the fleet's PostgreSQL);
3. the bare loop sends the recorded requests from ``--threads`` threads with a
   ``requests.Session`` each and nothing else.

Each of 2 and 3 runs in its own process; its processor time (user + system, from the
operating system's accounting of the finished process) minus that of the same command with
nothing to do (start-up and imports) is divided by the deliveries (2) or the requests (3).
The emulator is reset before each run.  ``--sync N`` also times ``spamfilter sync`` of N
new domains (domain vendors) against its latency bound and the bare loop.

Run from a checkout with the package installed:
    python bench/cpu_per_delivery.py [--vendor spamport] [--events 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from concurrency import Emulator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from emit_path import spamfilter_path

from spamfilter_plugin import intake
from spamfilter_plugin.config.model import toml_table, write_config
from spamfilter_plugin.events import DomainCreated, MailboxAdded
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.queue import queue_of
from spamfilter_plugin.worker import Worker

SPAMFILTER = spamfilter_path()
HERE = Path(__file__).resolve()

#: per vendor: what its emulator is seeded with, its config beyond the emulator's table, and
#: the events delivered (a domain vendor's creations; a mailbox vendor's new mailboxes).
#: Not measured here: spambarrier, whose creation is followed by a DNS verification step (a
#: delivery is not requests a loop could send alike), and Tornevall, whose new mailbox is
#: a read and then a write of its preferences that depends on what the vendor holds.
MAILBOXES = 50
VENDORS = {
    "spamport": ({"license_limit": 10**7}, {}, "domain"),
    "spamwall": ({}, {}, "domain"),
    "rackspace": (
        {
            "rate_limit": 10**9,
            "mailboxes": [{"domain": "example.com", "mailbox": f"u{i}"} for i in range(MAILBOXES)],
        },
        {"rate_limit": 10000},  # the most the config takes: Rackspace's client paces to it
        "mailbox",
    ),
}


def events(kind: str, n: int) -> list:
    if kind == "domain":
        return [DomainCreated(domain=f"c{i}.example") for i in range(n)]
    return [MailboxAdded(mailbox=f"u{i % MAILBOXES}@example.com") for i in range(n)]


def config(tmp: Path, name: str, vendor: str, emulator: Emulator, args) -> Path:
    general: dict = {"state_dir": str(tmp / name), "mail_host": "192.0.2.25"}
    table = {**emulator.table, **VENDORS[vendor][1], "retries": 0,
             "concurrency": args.concurrency}  # fmt: skip
    cfg = write_config(tmp / f"{name}.toml", general, {vendor: table})
    if args.fleet is not None:  # the fleet's store: a schema of its own on the server
        with cfg.open("a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(toml_table("fleet", {**args.fleet, "server": name})) + "\n")
    return cfg


def fleet_schema(tmp: Path, url: str) -> tuple[dict, str]:
    """A fresh schema on the PostgreSQL server *url*, migrated, with a fleet key: the
    ``[fleet]`` table to use, and the schema (dropped at the end)."""
    import uuid
    from urllib.parse import quote

    import psycopg

    from spamfilter_plugin.config.model import FleetConfig
    from spamfilter_plugin.store import postgres

    schema = f"sfp_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in url else "?"
    scoped = f"{url}{joiner}options={quote(f'-csearch_path={schema}')}"
    key = tmp / "fleet.key"
    postgres.FleetKey(key).make()
    with postgres.connect(FleetConfig(url=scoped, server="bench", key_file=key)) as db:
        postgres.migrate(db)
    return {"url": scoped, "key": {"file": str(key)}}, schema


def fill(cfg: Path, vendor: str, n: int) -> None:
    rt = load_runtime(cfg)
    rt.check(vendor)  # proven credentials: deliveries go side by side from the start
    with queue_of(rt.config) as queue:
        intake.enqueue(queue, events(VENDORS[vendor][2], n), vendors=[vendor])


def record(cfg: Path, vendor: str, n: int) -> list[dict]:
    """The requests the worker sends to deliver *n* events (recorded, not timed)."""
    seen: list[dict] = []
    lock = threading.Lock()
    send = requests.adapters.HTTPAdapter.send

    def recording(self, prepared, *args, **kwargs):
        body = prepared.body or b""
        body = body.encode() if isinstance(body, str) else body
        with lock:
            seen.append({"method": prepared.method, "url": prepared.url,
                         "headers": dict(prepared.headers),
                         "body": base64.b64encode(body).decode()})  # fmt: skip
        return send(self, prepared, *args, **kwargs)

    fill(cfg, vendor, n)
    requests.adapters.HTTPAdapter.send = recording  # type: ignore[method-assign]
    try:
        Worker(load_runtime(cfg)).drain(keep=False)
    finally:
        requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign]
    return seen


def measured(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Run *command* to its end: its processor time (user + system) and wall time in
    seconds, and what it printed."""
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        started = time.perf_counter()  # output to files: a full pipe would stop the command
        proc = subprocess.Popen(command, stdout=out_file, stderr=err_file, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read().decode(), err_file.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {out}{err}")
    return usage.ru_utime + usage.ru_stime, wall, out


def bare_loop(path: str, threads: int) -> None:
    """The bare loop itself (run as ``--bare FILE``): the recorded requests, *threads* at a
    time, a Session each."""
    calls = json.loads(Path(path).read_text())
    for call in calls:
        call["body"] = base64.b64decode(call["body"])
    sessions = [requests.Session() for _ in range(threads)]
    failures = []

    def run(index: int) -> None:
        session = sessions[index]
        for call in calls[index::threads]:
            resp = session.request(call["method"], call["url"], headers=call["headers"],
                                   data=call["body"] or None, timeout=30)  # fmt: skip
            resp.content  # noqa: B018 - read the answer, as a client would
            if resp.status_code >= 400:
                failures.append(resp.status_code)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. HTTP {failures[0]}")


def one_vendor(tmp: Path, vendor: str, args) -> dict:
    seed, _, kind = VENDORS[vendor]
    emulator = Emulator(args.latency, vendor, seed)
    try:
        emulator.fresh()
        calls = record(config(tmp, f"{vendor}-rec", vendor, emulator, args), vendor, args.events)
        calls_file = tmp / f"{vendor}-calls.json"
        calls_file.write_text(json.dumps(calls))
        empty_file = tmp / "none.json"
        empty_file.write_text("[]")
        env = dict(os.environ, SPAMFILTER_CACHE_DIR=str(tmp / "cache"))
        rounds = []
        for r in range(args.rounds):
            emulator.fresh()
            idle = config(tmp, f"{vendor}-idle{r}", vendor, emulator, args)
            load_runtime(idle).check(vendor)
            base_cpu, base_wall, _ = measured(  # before the queue is filled: a fleet's is shared
                [SPAMFILTER, "--config", str(idle), "worker", "--drain"], env
            )
            cfg = config(tmp, f"{vendor}-w{r}", vendor, emulator, args)
            fill(cfg, vendor, args.events)
            cpu, wall, _ = measured([SPAMFILTER, "--config", str(cfg), "worker", "--drain"], env)
            emulator.fresh()
            bare = [sys.executable, str(HERE), "--bare", str(calls_file), "--threads",
                    str(args.threads)]  # fmt: skip
            idle_bare = [*bare[:3], str(empty_file), *bare[4:]]
            bare_base_cpu, bare_base_wall, _ = measured(idle_bare)
            bare_cpu, bare_wall, _ = measured(bare)
            worker_ms = (cpu - base_cpu) / args.events * 1000
            loop_ms = (bare_cpu - bare_base_cpu) / len(calls) * 1000
            worker_rate = args.events / max(wall - base_wall, 1e-9)
            loop_rate = len(calls) / max(bare_wall - bare_base_wall, 1e-9)
            rounds.append({
                "worker_cpu_ms_per_delivery": round(worker_ms, 3),
                "loop_cpu_ms_per_request": round(loop_ms, 3),
                "cpu_ratio": round(worker_ms / loop_ms, 2),
                "worker_deliveries_per_s": round(worker_rate, 1),
                "loop_requests_per_s": round(loop_rate, 1),
                "rate_ratio": round(worker_rate / loop_rate, 2),
            })  # fmt: skip
        result: dict = {
            "events": args.events,
            "requests_per_delivery": round(len(calls) / args.events, 2),
            "rounds": rounds,
            "median_cpu_ratio": statistics.median(r["cpu_ratio"] for r in rounds),
            "median_rate_ratio": statistics.median(r["rate_ratio"] for r in rounds),
        }
        if args.sync and kind == "domain":
            result["sync"] = sync_run(tmp, vendor, emulator, args, env, calls_file)
        return result
    finally:
        emulator.stop()


def sync_run(tmp: Path, vendor: str, emulator: Emulator, args, env: dict, calls_file) -> dict:
    """``spamfilter sync`` of ``--sync`` new domains: processor time per domain, and the wall
    time against the latency bound (requests x latency / concurrency) and against the bare
    loop sending as many creations (the recorded one, for each new domain's name)."""
    emulator.fresh()
    cfg = config(tmp, f"{vendor}-sync", vendor, emulator, args)
    load_runtime(cfg).check(vendor)
    listing = tmp / f"{vendor}-sync.txt"
    listing.write_text("".join(f"s{i}.example\n" for i in range(args.sync)))
    empty = tmp / "empty.txt"
    empty.write_text("")
    base_cpu, base_wall, _ = measured(
        [SPAMFILTER, "--config", str(cfg), "sync", "--domains-from", str(empty), "--quiet"], env
    )
    emulator.fresh()
    load_runtime(cfg).check(vendor)
    before = emulator.requests_seen()
    cpu, wall, _ = measured(
        [SPAMFILTER, "--config", str(cfg), "sync", "--domains-from", str(listing), "--quiet"], env
    )
    sent = emulator.requests_seen() - before
    bound = sent * args.latency / args.concurrency
    seconds = wall - base_wall
    # the bare loop: the recorded creation of c0.example, once for each domain synced
    first = json.loads(Path(calls_file).read_text())[0]
    body = base64.b64decode(first["body"])
    loop_calls = [
        {**first, "body": base64.b64encode(body.replace(b"c0.example", f"s{i}.example".encode()))
         .decode(), "headers": {k: v for k, v in first["headers"].items()
                                if k.lower() != "content-length"}}
        for i in range(args.sync)
    ]  # fmt: skip
    loop_file = tmp / f"{vendor}-sync-calls.json"
    loop_file.write_text(json.dumps(loop_calls))
    emulator.fresh()
    bare = [sys.executable, str(HERE), "--bare", str(loop_file), "--threads", str(args.threads)]
    _, loop_wall, _ = measured(bare)
    empty_calls = tmp / "none.json"
    _, loop_base, _ = measured([*bare[:3], str(empty_calls), *bare[4:]])
    loop_seconds = loop_wall - loop_base
    return {
        "domains": args.sync,
        "requests": sent,
        "seconds": round(seconds, 2),
        "bound_seconds": round(bound, 2),
        "over_bound": round(seconds / bound, 2),
        "cpu_ms_per_domain": round((cpu - base_cpu) / args.sync * 1000, 3),
        "loop_seconds": round(loop_seconds, 2),
        "loop_over_bound": round(loop_seconds / bound, 2),
        "over_loop": round(seconds / loop_seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendor", action="append", choices=sorted(VENDORS),
                        help="vendors to measure (repeatable; default every one)")  # fmt: skip
    parser.add_argument("--events", type=int, default=1000, help="deliveries per run")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added per answer")
    parser.add_argument("--concurrency", type=int, default=16, help="the worker's, per vendor")
    parser.add_argument("--threads", type=int, default=16, help="the bare loop's threads")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each, side by side")
    parser.add_argument("--sync", type=int, default=0, help="also sync this many domains")
    parser.add_argument("--postgres", metavar="URL", help="the fleet's store instead of SQLite")
    parser.add_argument("--bare", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_loop(args.bare, args.threads)
        return
    results: dict = {
        "latency": args.latency,
        "concurrency": args.concurrency,
        "threads": args.threads,
        "store": "postgresql" if args.postgres else "sqlite",
        "machine": f"{os.cpu_count()} cores",
        "vendors": {},
    }
    schema = None
    args.fleet = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if args.postgres:
                args.fleet, schema = fleet_schema(Path(tmp), args.postgres)
            for vendor in args.vendor or list(VENDORS):
                results["vendors"][vendor] = one_vendor(Path(tmp), vendor, args)
                print(json.dumps({vendor: results["vendors"][vendor]}), file=sys.stderr)
        finally:
            if schema is not None:
                import psycopg

                from spamfilter_plugin.store import postgres

                postgres.close_pools()
                with psycopg.connect(args.postgres, autocommit=True) as admin:
                    admin.execute(f"DROP SCHEMA {schema} CASCADE")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
