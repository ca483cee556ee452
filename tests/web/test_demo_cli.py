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
import threading
import time

import pytest
import requests
from console_helpers import csrf_of, wait_until

SPAMFILTER = shutil.which("spamfilter") or os.path.join(
    os.path.dirname(sys.executable), "spamfilter"
)


def start_demo(tmp_path):
    """``spamfilter demo`` with a private temporary directory (nothing else's files in it),
    its standard error read as it comes (a full pipe would stall it)."""
    env = {k: v for k, v in os.environ.items() if k != "SPAMFILTER_CONFIG"}
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.Popen(
        [SPAMFILTER, "demo", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    proc.errors = []
    proc.reader = threading.Thread(target=lambda: proc.errors.append(proc.stderr.read()))
    proc.reader.start()
    line = proc.stdout.readline()
    assert line, "the demo printed nothing"
    return proc, json.loads(line)


def stderr_of(proc) -> str:
    proc.reader.join(timeout=30)
    return "".join(proc.errors)


def folders(tmp_path):
    return sorted(glob.glob(os.path.join(tmp_path, "spamfilter-demo-*")))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_demo_starts_serves_provisions_and_stops(stop, tmp_path):
    proc, login = start_demo(tmp_path)
    busy = threading.Event()
    try:
        assert set(login) == {"url", "username", "password", "emulators", "dns"}
        assert set(login["emulators"]) == {
            "spamport", "spamwall", "spambarrier", "tornevall", "rackspace",
        }  # fmt: skip
        # each address is its emulator's API: its control endpoint answers beside it
        for name, url in login["emulators"].items():
            root = url.split("/", 3)[:3]
            state = requests.get("/".join(root) + "/_sandbox/state", timeout=10)
            assert state.status_code == 200, (name, url)
        assert len(folders(tmp_path)) == 1
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

        def browse():  # requests in flight when the signal comes
            other = requests.Session()
            while not busy.is_set():
                try:
                    other.get(login["url"] + "login", timeout=2)
                except requests.RequestException:
                    pass

        browsers = [threading.Thread(target=browse) for _ in range(4)]
        for b in browsers:
            b.start()
        time.sleep(0.5)
        proc.send_signal(stop)
        assert proc.wait(timeout=30) == 0
        busy.set()
        for b in browsers:
            b.join()
        with pytest.raises(requests.ConnectionError):
            requests.get(login["url"], timeout=5)
    finally:
        busy.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in stderr_of(proc)
    assert folders(tmp_path) == []  # its files are removed


def test_a_killed_demos_folder_is_removed_by_the_next_demo(tmp_path):
    first, _ = start_demo(tmp_path)
    (left,) = folders(tmp_path)
    first.kill()  # SIGKILL: no chance to clean up
    first.wait()
    stderr_of(first)
    assert folders(tmp_path) == [left]
    second, _ = start_demo(tmp_path)
    try:
        assert left not in folders(tmp_path) and len(folders(tmp_path)) == 1
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            code = second.wait(timeout=30)
        finally:
            if second.poll() is None:  # never leave a demo behind
                second.kill()
                second.wait()
    assert code == 0
    assert "Traceback" not in stderr_of(second)
    assert folders(tmp_path) == []


def test_demo_refuses_a_bad_port():
    proc = subprocess.run(
        [SPAMFILTER, "demo", "--port", "70000"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "--port" in proc.stderr
