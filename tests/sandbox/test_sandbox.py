"""Fault injection, inspection and control shared by every emulator; the
``spamfilter sandbox`` command; the pytest fixtures of the pytest11 entry point."""

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import requests

from spamfilter_plugin.sandbox import FAULT_KINDS, Sandbox, emulators
from spamfilter_plugin.sandbox.spamport import PASSWORD, USERNAME

SPAMFILTER = shutil.which("spamfilter") or os.path.join(
    os.path.dirname(sys.executable), "spamfilter"
)
FORM = {"username": USERNAME, "password": PASSWORD, "version": "1.8", "function": "get_domains"}
ADD_FORM = dict(
    FORM,
    function="add",
    domain="a.example",
    transport="m.example.com",
    transport_type="hostname",
    archive="14",
)


def control(running, action, payload=None, method=None):
    method = method or ("POST" if payload is not None or action == "reset" else "GET")
    return requests.request(method, f"{running.root}/_sandbox/{action}", json=payload, timeout=5)


@pytest.mark.parametrize("name", list(emulators()))
def test_every_emulator_has_state_request_log_and_reset(sandbox, name):
    running = sandbox[name]
    requests.post(running.url + "/anything", data=b"password=hunter22&x=1", timeout=5)
    log = control(running, "requests").json()
    assert log and log[-1]["method"] == "POST" and "hunter22" not in json.dumps(log)
    assert isinstance(control(running, "state").json(), dict)
    assert control(running, "reset").json() == {"reset": True}
    assert control(running, "requests").json() == []


@pytest.mark.parametrize("name", list(emulators()))
@pytest.mark.parametrize("kind", ["error", "html"])
def test_error_faults_on_every_emulator(sandbox, name, kind):
    running = sandbox[name]
    control(running, "faults", {"queue": [kind]})
    resp = requests.post(running.url, data=FORM, timeout=5)
    assert resp.status_code == (503 if kind == "error" else 502)
    if kind == "html":
        assert (
            resp.headers["Content-Type"].startswith("text/html")
            and "<h1>Bad Gateway</h1>" in resp.text
        )
    assert control(running, "requests").json()[-1]["fault"] == kind


def test_reset_fault_drops_the_connection_without_processing(spamport_sandbox):
    control(spamport_sandbox, "faults", {"queue": ["reset"]})
    with pytest.raises(requests.ConnectionError):
        requests.post(
            spamport_sandbox.url,
            data=ADD_FORM,
            timeout=5,
        )
    assert spamport_sandbox.emulator.domains == {}


def test_reset_after_processes_then_drops_the_reply(spamport_sandbox):
    control(spamport_sandbox, "faults", {"queue": ["reset_after"]})
    with pytest.raises(requests.ConnectionError):
        requests.post(
            spamport_sandbox.url,
            data=ADD_FORM,
            timeout=5,
        )
    assert (
        "a.example" in spamport_sandbox.emulator.domains
    )  # the change happened; only the answer was lost


def test_truncated_body(spamport_sandbox):
    control(spamport_sandbox, "faults", {"queue": ["truncate"]})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.post(spamport_sandbox.url, data=FORM, timeout=5)


def test_throttle_asks_the_client_to_wait_and_processes_nothing(spamport_sandbox):
    control(spamport_sandbox, "faults", {"queue": ["throttle"]})
    resp = requests.post(spamport_sandbox.url, data=ADD_FORM, timeout=5)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "1"
    assert spamport_sandbox.emulator.domains == {}


def test_malformed_body(spamport_sandbox):
    control(spamport_sandbox, "faults", {"queue": ["malformed"]})
    resp = requests.post(spamport_sandbox.url, data=FORM, timeout=5)
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()


def test_timeout_fault_answers_nothing(spamport_sandbox):
    control(spamport_sandbox, "faults", {"queue": ["timeout"], "hang_seconds": 2})
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(spamport_sandbox.url, data=FORM, timeout=(1, 0.3))


def test_latency_is_added(spamport_sandbox):
    control(spamport_sandbox, "faults", {"latency": 0.3})
    started = time.monotonic()
    assert requests.post(spamport_sandbox.url, data=FORM, timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_rates_are_seeded_and_repeatable(spamport_sandbox):
    def run():
        control(spamport_sandbox, "reset")
        control(spamport_sandbox, "faults", {"rates": {"error": 0.3}, "seed": 7})
        return [
            requests.post(spamport_sandbox.url, data=FORM, timeout=5).status_code for _ in range(40)
        ]

    first = run()
    assert first == run()
    assert 4 <= first.count(503) <= 24 and first.count(200) >= 16


def test_fault_settings_are_validated(spamport_sandbox):
    resp = control(spamport_sandbox, "faults", {"rates": {"meteor": 0.1}})
    assert resp.status_code == 400 and "meteor" in resp.json()["error"]
    resp = control(spamport_sandbox, "faults", {"rates": {"error": 2}})
    assert resp.status_code == 400 and "rates.error" in resp.json()["error"]
    resp = control(spamport_sandbox, "faults", {"latency": -1})
    assert resp.status_code == 400 and "latency" in resp.json()["error"]
    resp = control(spamport_sandbox, "seed", {"bogus": 1})
    assert resp.status_code == 400 and "bogus" in resp.json()["error"]
    assert control(spamport_sandbox, "nothing").status_code == 404
    assert set(FAULT_KINDS) == {
        "error",
        "html",
        "timeout",
        "reset",
        "reset_after",
        "truncate",
        "malformed",
        "throttle",
        "unclear",
    }


def test_faults_can_be_cleared(spamport_sandbox):
    control(spamport_sandbox, "faults", {"rates": {"error": 1.0}})
    assert requests.post(spamport_sandbox.url, data=FORM, timeout=5).status_code == 503
    control(spamport_sandbox, "faults", {"clear": True})
    assert requests.post(spamport_sandbox.url, data=FORM, timeout=5).status_code == 200


def test_sandbox_refuses_non_loopback_and_unknown_vendors():
    with pytest.raises(ValueError, match="host"):
        Sandbox(host="0.0.0.0")
    with pytest.raises(ValueError, match="vendor"):
        Sandbox(vendors=["spamprot"])


def test_sandbox_config_snippet_loads_and_checks(tmp_path):
    import tomllib

    from spamfilter_plugin.manager import installed_vendors, load_runtime

    with Sandbox() as sb:
        snippet = sb.config_snippet(state_dir=str(tmp_path / "state"))
        doc = tomllib.loads(snippet)
        assert set(doc["vendors"]) == set(emulators()) & set(installed_vendors())
        assert "toy" in doc["vendors"]  # a third-party emulator, registered by entry point
        assert doc["vendors"]["spamport"]["password"] == PASSWORD
        assert doc["vendors"]["rackspace"]["api_url"].endswith("/v1")
        for name in set(emulators()) - set(installed_vendors()):
            assert f"# [vendors.{name}]" in snippet
        cfg = tmp_path / "sandbox.toml"
        cfg.write_text(snippet)
        cfg.chmod(0o600)
        rt = load_runtime(cfg)  # the printed config works as it is
        assert all(rt.check(v).ok for v in rt.vendors)


def test_cli_serves_prints_config_and_stops_on_sigterm(tmp_path):
    out_cfg = tmp_path / "sandbox.toml"
    proc = subprocess.Popen(
        [
            SPAMFILTER,
            "sandbox",
            "--json",
            "--fault",
            "error=1",
            "--vendor",
            "spamport",
            "--write-config",
            str(out_cfg),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "the sandbox printed nothing"
        text = line = ""
        while line.rstrip("\n") != "}":  # the document ends with a closing brace alone on its line
            line = proc.stdout.readline()
            text += line
        doc = json.loads(text)
        url = doc["spamport"]["api_url"]
        assert doc["spamport"]["username"] == USERNAME
        assert (
            requests.post(url, data=FORM, timeout=5).status_code == 503
        )  # --fault error=1 applied
        assert oct(out_cfg.stat().st_mode & 0o777) == "0o600" and url in out_cfg.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert proc.returncode == 0


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--host", "192.0.2.1"], "host: 192.0.2.1 is not a loopback address"),
        (["--fault", "meteor=1"], "--fault meteor=1"),
        (["--fault", "error=lots"], "RATE must be a number"),
        (["--vendor", "spamprot"], "vendor: unknown spamprot"),
    ],
)
def test_cli_bad_options_exit_2(args, needle):
    proc = subprocess.run(
        [SPAMFILTER, "sandbox", *args], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2 and needle in proc.stderr


def test_fixtures_reach_other_test_suites(tmp_path):
    """A user's own suite gets the fixtures through the pytest11 entry point, with no conftest."""
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent("""
        import requests

        def test_uses_the_sandbox(spamport_sandbox, sandbox):
            resp = requests.post(spamport_sandbox.url, data={"username": "x"}, timeout=5)
            assert resp.json() == {"message": "No password supplied", "status": "failure"}
            assert sandbox["rackspace"].url.endswith("/v1")
    """)
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


@pytest.mark.parametrize(
    "payload",
    [
        {"rates": "abc"},
        {"rates": ["error"]},
        {"queue": "error"},
        {"queue": 5},
        {"latency": "x"},
        {"seed": "x"},
        {"bogus": 1},
        ["not", "an", "object"],
    ],
)
def test_bad_fault_settings_answer_400_naming_the_field(spamport_sandbox, payload):
    resp = control(spamport_sandbox, "faults", payload)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]
    assert control(spamport_sandbox, "faults").json()["rates"] == {}  # nothing was changed
