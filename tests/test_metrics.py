"""The operations metrics (docs/operations.md): counted by the worker in the queue's store,
read at scrape time, served at ``/metrics`` by the console and written by ``spamfilter
metrics --textfile``; parsed with prometheus_client's own text parser."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from queue_helpers import add_table, run_cli

from spamfilter_plugin.emit import emit
from spamfilter_plugin.events import DomainCreated
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.metrics import exposition
from spamfilter_plugin.queue import queue_of
from spamfilter_plugin.testing import write_config
from spamfilter_plugin.web.app import create_app
from spamfilter_plugin.web.serve import console_for
from spamfilter_plugin.worker import Worker

TOKEN = "scrape-token-7f3a91c2"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of an exposition, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def cfg(tmp_path, sandbox):
    """SpamPort that works and gives up after two attempts; spambarrier with refused
    credentials."""
    vendors = {
        "spamport": {**sandbox["spamport"].config_table(), "retries": 0},
        "spambarrier": {**sandbox["spambarrier"].config_table(), "retries": 0,
                        "api_token": "not-the-token"},
    }  # fmt: skip
    path = write_config(tmp_path / "config.toml", {"mail_host": "192.0.2.25", "max_attempts": 2},
                        vendors)  # fmt: skip
    return path


def delivered(cfg, sandbox) -> None:
    """Two successes and a row that fails twice (a retry, then dead) at SpamPort; one
    refused delivery at spambarrier, which suspends it."""
    emit(DomainCreated(domain="one.example"), cfg)
    emit(DomainCreated(domain="two.example"), cfg)
    Worker(load_runtime(cfg)).drain()
    sandbox["spamport"].emulator.faults.configure(queue=["error", "error"])
    emit(DomainCreated(domain="bad.example"), cfg)
    Worker(load_runtime(cfg)).drain()  # attempt 1: a retry
    Worker(load_runtime(cfg)).drain(ignore_schedule=True)  # attempt 2 of 2: dead


def test_the_worker_counts_outcomes_and_the_scrape_reads_the_queue(cfg, sandbox):
    delivered(cfg, sandbox)
    rt = load_runtime(cfg)
    with queue_of(rt.config) as queue:
        got = samples(exposition(rt, queue).decode())

    def value(name, **labels):
        return got.get((name, tuple(sorted(labels.items()))))

    done = value("spamfilter_deliveries_total", vendor="spamport", hook="domain_created",
                 outcome="done")  # fmt: skip
    assert done == 2
    assert value("spamfilter_deliveries_total", vendor="spamport", hook="domain_created",
                 outcome="retry") == 1  # fmt: skip
    assert value("spamfilter_deliveries_total", vendor="spamport", hook="domain_created",
                 outcome="dead") == 1  # fmt: skip
    # the refused credentials: the delivery waits (held or retried), the vendor is suspended
    assert value("spamfilter_vendor_suspended", vendor="spambarrier") == 1
    assert value("spamfilter_vendor_suspended", vendor="spamport") == 0
    assert value("spamfilter_queue_rows", vendor="spamport", state="done") == 2
    assert value("spamfilter_queue_rows", vendor="spamport", state="dead") == 1
    barrier = {state: value("spamfilter_queue_rows", vendor="spambarrier", state=state)
               for state in ("pending", "dead", "done")}  # fmt: skip
    assert barrier["done"] == 0 and barrier["pending"] + barrier["dead"] == 3, barrier
    asked = [
        v
        for (name, lab), v in got.items()
        if name == "spamfilter_vendor_requests_total" and ("vendor", "spambarrier") in lab
    ]
    assert sum(asked) >= 1  # the request that was refused, whatever its status  # fmt: skip
    assert value("spamfilter_oldest_pending_age_seconds", vendor="spambarrier") >= 0
    assert value("spamfilter_oldest_pending_age_seconds", vendor="spamport") == 0
    # every attempt is one request: 2 successes, 2 server errors at SpamPort
    assert value("spamfilter_vendor_requests_total", vendor="spamport", status_class="2xx") == 2
    assert value("spamfilter_vendor_requests_total", vendor="spamport", status_class="5xx") == 2
    assert value("spamfilter_delivery_duration_seconds_count", vendor="spamport") == 4
    assert value("spamfilter_delivery_duration_seconds_bucket", vendor="spamport", le="+Inf") == 4
    assert value("spamfilter_delivery_duration_seconds_sum", vendor="spamport") > 0
    assert value("spamfilter_worker_last_seen_timestamp_seconds") > 0
    assert value("spamfilter_mx_domains", state="verified") == 0
    # no domain is ever a label
    assert not [k for k in got if any("example" in str(v) for _, v in k[1])]


def test_console_metrics_ask_for_the_token_and_loopback_without_one(cfg, sandbox):
    delivered(cfg, sandbox)
    console, _ = console_for(load_runtime(cfg), host="127.0.0.1")
    client = create_app(console).test_client()
    far = {"REMOTE_ADDR": "203.0.113.9"}
    # without a token: this machine only
    assert client.get("/metrics", environ_overrides=far).status_code == 403
    local = client.get("/metrics")
    assert local.status_code == 200 and local.content_type.startswith("text/plain; version=0.0.4")
    assert (
        samples(local.text)[
            (
                "spamfilter_deliveries_total",
                (("hook", "domain_created"), ("outcome", "done"), ("vendor", "spamport")),
            )
        ]
        == 2
    )
    # with a token: only with it, from anywhere
    add_table(cfg, "console", {"metrics_token": TOKEN})
    console, _ = console_for(load_runtime(cfg), host="127.0.0.1")
    client = create_app(console).test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401 and "Bearer" in refused.headers["WWW-Authenticate"]
    wrong = {"Authorization": "Bearer not-" + TOKEN}
    assert client.get("/metrics", headers=wrong, environ_overrides=far).status_code == 401
    good = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                      environ_overrides=far)  # fmt: skip
    assert good.status_code == 200 and "spamfilter_queue_rows" in good.text
    assert TOKEN not in good.text


def test_the_textfile_is_written_whole_for_node_exporter(cfg, sandbox, tmp_path):
    delivered(cfg, sandbox)
    target = tmp_path / "collector" / "spamfilter.prom"
    target.parent.mkdir()
    code, out, err = run_cli(cfg, "metrics", "--textfile", str(target))
    assert code == 0, err
    got = samples(target.read_text())
    key = ("spamfilter_queue_rows", (("state", "dead"), ("vendor", "spamport")))
    assert got[key] == 1
    assert [p.name for p in target.parent.iterdir()] == ["spamfilter.prom"]  # no temp left
    code, out, err = run_cli(cfg, "metrics", "--textfile", str(tmp_path / "none" / "x.prom"))
    assert code == 2 and "--textfile: cannot write" in err
    code, out, err = run_cli(cfg, "metrics")
    assert code == 0 and samples(out)[key] == 1


def test_a_batch_counts_each_delivery_in_one_bucket_and_the_scrape_makes_them_cumulative():
    """``counted`` over deliveries of known durations: each delivery is stored in the first
    bucket within its bound (one row, not one a bound), a bucket nothing falls within is
    not written, outcomes are summed per label set; the scrape's buckets are Prometheus'
    cumulative ones, with what a release before stored cumulatively added in."""
    from types import SimpleNamespace

    from spamfilter_plugin.manager import Outcome
    from spamfilter_plugin.metrics import DELIVERIES, DURATION, WITHIN, _histogram, counted, labels

    def delivery(seconds, state="done", vendor="spamport"):
        row = SimpleNamespace(vendor=vendor, hook="domain_created")
        return SimpleNamespace(row=row, outcome=Outcome(vendor, state == "done"),
                               final_state=state, lease_lost=False, seconds=seconds)  # fmt: skip

    found = counted([delivery(0.03), delivery(0.05), delivery(0.2), delivery(7.0, "dead"),
                     delivery(500.0), delivery(0.01, vendor="spamwall")])  # fmt: skip
    stored = {
        (le.split('"le":"')[1].split('"')[0], "spamwall" if "spamwall" in le else "spamport"): n
        for (name, le), n in found.items()
        if name == WITHIN
    }
    assert stored == {("0.05", "spamport"): 2, ("0.25", "spamport"): 1,
                      ("10.0", "spamport"): 1, ("+Inf", "spamport"): 1,
                      ("0.05", "spamwall"): 1}  # fmt: skip
    assert found[(f"{DURATION}_count", labels(vendor="spamport"))] == 5
    assert found[(f"{DURATION}_sum", labels(vendor="spamport"))] == pytest.approx(507.28)
    done = labels(vendor="spamport", hook="domain_created", outcome="done")
    assert found[(DELIVERIES, done)] == 4
    nothing = counted([delivery(0.2)])
    assert (WITHIN, labels(vendor="spamport", le="0.1")) not in nothing
    # the scrape: cumulative, with a release before's cumulative buckets added in
    import json

    rows = [(name, raw, value) for (name, raw), value in found.items()]
    from spamfilter_plugin.metrics import BOUNDS

    for le in BOUNDS:  # a release before: ten deliveries within 0.05 s, stored cumulative
        rows.append((f"{DURATION}_bucket", labels(vendor="spamport", le=le), 10.0))
    by_name: dict = {}
    for name, raw, value in rows:
        by_name.setdefault(name, []).append((json.loads(raw), value))
    buckets = {
        (s.labels["vendor"], s.labels["le"]): s.value
        for s in _histogram(by_name).samples
        if s.name.endswith("_bucket")
    }
    assert [buckets[("spamport", le)] for le in ("0.05", "0.1", "0.25", "5.0", "10.0",
                                                  "120.0", "+Inf")] == [
        12, 12, 13, 13, 14, 14, 15
    ]  # fmt: skip
    assert buckets[("spamwall", "0.05")] == 1 and buckets[("spamwall", "+Inf")] == 1
