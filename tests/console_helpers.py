"""Helpers for the console's tests (tests/web)."""

from __future__ import annotations

import re
import time

import requests


def wait_until(check, timeout: float = 20.0, every: float = 0.1):
    """Poll *check* until it returns something true; fail with what it last returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"still not true after {timeout}s"
            return value
        time.sleep(every)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def admin_session(demo) -> requests.Session:
    s = requests.Session()
    token = csrf_of(s.get(demo.url + "login", timeout=10).text)
    r = s.post(
        demo.url + "login",
        data={"csrf_token": token, "username": "admin", "password": demo.password, "next": "/"},
        timeout=10,
    )
    assert r.status_code == 200 and r.url == demo.url
    return s


def login(page, demo) -> None:
    page.goto(demo.url + "login")
    page.fill("#username", demo.username)
    page.fill("#password", demo.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(demo.url)
