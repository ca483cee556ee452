"""``[general] log_format = "json"`` (docs/operations.md): every line the command writes to
standard error is one JSON object with the time, level, logger, message and the delivery's
fields, redacted as the text format is."""

from __future__ import annotations

import json
import re

from queue_helpers import PASSWORD, run_cli, sandbox_config


def test_json_logs_carry_the_delivery_fields_and_no_secret(tmp_path, sandbox):
    general = {"log_format": "json", "log_level": "debug"}
    cfg = sandbox_config(tmp_path, sandbox, general=general)
    sandbox["spamport"].emulator.faults.configure(queue=["error"])
    for domain in ("ok.example", "later.example"):
        code, _, err = run_cli(cfg, "emit", "domain-created", "--domain", domain)
        assert code == 0, err
    code, _, err = run_cli(cfg, "worker", "--drain")
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]  # every line is one object
    for r in records:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"])
        assert r["level"] in ("debug", "info", "warning", "error") and r["logger"]
    ended = [r for r in records if r.get("row") is not None and "outcome" in r]
    outcomes = [(r["target"], r["outcome"]) for r in ended if r["logger"].endswith("delivery")]
    # the first attempt failed (to be retried), the other was delivered
    assert ("domain:ok.example", "pending") in outcomes
    assert ("domain:later.example", "done") in outcomes
    notes = [r for r in records if r["logger"] == "spamfilter" and r.get("row")]
    assert {"pending", "done"} <= {r["outcome"] for r in notes}  # the worker's progress too
    assert all(r["hook"] == "domain_created" and r["duration_s"] >= 0 for r in ended)
    assert PASSWORD not in err


def test_a_wrong_log_format_names_the_key(tmp_path, sandbox):
    cfg = sandbox_config(tmp_path, sandbox, general={"log_format": "xml"})
    code, _, err = run_cli(cfg, "check")
    assert code == 2 and "log_format" in err and "must be text or json" in err
