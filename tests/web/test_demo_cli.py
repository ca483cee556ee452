"""``spamfilter demo`` as a newcomer runs it: it starts, serves, provisions the seeded
domains, and stops cleanly on SIGINT and on SIGTERM."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest
import requests
from console_helpers import csrf_of, wait_until

SPAMFILTER = shutil.which("spamfilter") or os.path.join(
    os.path.dirname(sys.executable), "spamfilter"
)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_demo_starts_serves_provisions_and_stops(stop):
    env = {k: v for k, v in os.environ.items() if k != "SPAMFILTER_CONFIG"}
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "spamfilter-demo-*")))
    proc = subprocess.Popen(
        [SPAMFILTER, "demo", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        login = json.loads(line)
        assert set(login) == {"url", "username", "password"}
        s = requests.Session()
        token = csrf_of(s.get(login["url"] + "login", timeout=10).text)
        s.post(
            login["url"] + "login",
            data={"csrf_token": token, "username": login["username"],
                  "password": login["password"], "next": "/"},
            timeout=10,
        )  # fmt: skip

        def all_protected():
            page = s.get(login["url"], timeout=10).text
            states = re.findall(r'data-vendor="(\w+)" data-state="([^"]+)"', page)
            return len(states) >= 12 and all(state == "protected" for _, state in states)

        wait_until(all_protected, timeout=60, every=0.5)
        page = s.get(login["url"], timeout=10).text
        assert {"spamport", "spamwall", "spambarrier"} <= set(
            re.findall(r'data-vendor="(\w+)"', page)
        )
        assert "bücher.example" in page
        proc.send_signal(stop)
        assert proc.wait(timeout=30) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(login["url"], timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in proc.stderr.read()
    after = set(glob.glob(os.path.join(tempfile.gettempdir(), "spamfilter-demo-*")))
    assert after <= before  # its files are removed


def test_demo_refuses_a_bad_port():
    proc = subprocess.run(
        [SPAMFILTER, "demo", "--port", "70000"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "--port" in proc.stderr
