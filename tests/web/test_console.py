"""The console's rules, checked over HTTP: the login and its slowdown, cookies, headers,
CSRF, scoping, the queue page, and serving only on loopback without a password."""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest
from console_helpers import admin_session, csrf_of

from spamfilter_plugin.errors import ConfigError
from spamfilter_plugin.web.access import LinkRedeemer, Refused, Viewer, login_token
from spamfilter_plugin.web.app import create_app
from spamfilter_plugin.web.serve import console_for
from spamfilter_plugin.web.sessions import Throttle


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def client(demo):
    clock = Clock()
    console = dataclasses.replace(
        demo.server.console, throttle=Throttle(clock=clock, pause=0), panel_origin=""
    )
    app = create_app(console)
    c = app.test_client()
    c.clock = clock
    c.console = console
    return c


def _login(client, password, who="192.0.2.9"):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post(
        "/login",
        data={"csrf_token": token, "username": "admin", "password": password, "next": "/"},
        environ_base={"REMOTE_ADDR": who},
    )


def test_failed_logins_are_slowed_down(client, demo, caplog):
    caplog.set_level(logging.WARNING, "spamfilter_plugin.web")
    for _ in range(3):
        assert _login(client, "wrong").status_code == 401
    assert "console login failed from 192.0.2.9" in caplog.text
    assert demo.password not in caplog.text
    # now even the right password waits, then works
    refused = _login(client, demo.password)
    assert refused.status_code == 429 and "try again in 1 seconds" in refused.get_data(True)
    assert _login(client, demo.password, who="192.0.2.10").status_code == 302  # others are not
    client.clock.now += 1.5
    assert _login(client, demo.password).status_code == 302
    assert client.get("/").status_code == 200


def test_cookies_headers_and_post_only(client, demo):
    response = _login(client, demo.password)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script" not in csp
    assert "frame-ancestors 'none'" in csp and page.headers["X-Frame-Options"] == "DENY"
    assert "<script" not in page.get_data(as_text=True)
    assert client.get("/queue/1/drop").status_code == 405  # changes by POST only
    assert client.post("/queue/1/drop").status_code == 403  # and with the form's token


def test_settings_pages_may_be_framed_by_the_panel_only(client, demo):
    framed = dataclasses.replace(client.console, panel_origin="https://panel.example:2222")
    c = create_app(framed).test_client()
    _login(c, demo.password)
    csp = c.get("/settings/domain/alice.example/").headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://panel.example:2222" in csp
    assert "frame-ancestors 'none'" in c.get("/").headers["Content-Security-Policy"]


def test_login_required_and_next_stays_on_the_console(client, demo):
    assert client.get("/queue").headers["Location"].startswith("/login?next=/queue")
    token = csrf_of(client.get("/login").get_data(as_text=True))
    r = client.post(
        "/login",
        data={"csrf_token": token, "username": "admin", "password": demo.password,
              "next": "//evil.example/"},
    )  # fmt: skip
    assert r.headers["Location"] == "/"


def test_panel_users_do_not_get_admin_pages(client, demo):
    link = login_token(client.console.secret_key, Viewer("user", "bob"), "/")
    assert client.get(f"/enter/{link}").status_code == 302
    assert client.get("/queue").status_code == 403
    assert client.get("/settings/admin/").status_code == 403
    body = client.get("/").get_data(as_text=True)
    assert re.findall(r'data-domain="([^"]+)"', body) == ["bob.example"]
    token = csrf_of(body)
    r = client.post(
        "/selection", data={"csrf_token": token, "selected": "bob.example", "action": "unprotect"}
    )
    assert r.status_code == 403 and "bob.example" in demo.sandbox["spamport"].emulator.domains


def test_login_links_are_signed_and_used_once():
    key = b"k" * 32
    clock = Clock()
    links = LinkRedeemer(key, clock=clock)
    token = login_token(key, Viewer("user", "alice"), "/settings/domain/alice.example/")
    assert links.redeem(token)[:2] == (Viewer("user", "alice"), "/settings/domain/alice.example/")
    with pytest.raises(Refused, match="used already"):
        links.redeem(token)
    with pytest.raises(Refused, match="not valid"):
        links.redeem(login_token(b"x" * 32, Viewer("admin", "root")))
    with pytest.raises(Refused, match="not valid"):
        links.redeem(token[:-2] + "xx")


def test_queue_page_retries_and_drops(demo):
    from spamfilter_plugin.queue import open_queue

    q = open_queue(demo.folder / "state")
    dead, other = [r for r in q.rows(limit=1000) if r.state == "done"][:2]
    q.db.execute(
        "UPDATE events SET state='dead', last_error='test: refused' WHERE id=?", (dead.id,)
    )
    s = admin_session(demo)
    page = s.get(demo.url + "queue").text
    assert f'data-row="{dead.id}"' in page and "test: refused" in page
    assert "Failed for good (" in page and "failed for good: " in page  # an admin's words
    assert re.search(r'<time datetime="[^"]+Z">[^<]+ UTC <small class="sfc-ago">\(', page)
    r = s.post(demo.url + f"queue/{dead.id}/drop", data={"csrf_token": csrf_of(page)})
    # a drop asks first, and says what it means
    assert f"Drop row #{dead.id}?" in r.text and "is never delivered" in r.text
    assert q.get(dead.id) is not None
    r = s.post(demo.url + f"queue/{dead.id}/drop",
               data={"csrf_token": csrf_of(r.text), "confirm": "yes"})  # fmt: skip
    assert "was dropped" in r.text and q.get(dead.id) is None
    q.db.execute("UPDATE events SET state='dead' WHERE id=?", (other.id,))
    r = s.post(demo.url + f"queue/{other.id}/retry", data={"csrf_token": csrf_of(page)})
    assert "will be delivered again" in r.text
    assert q.get(other.id).state in ("pending", "leased", "done")
    assert q.get(other.id).state != "dead"
    q.close()


def test_non_loopback_needs_a_password(demo):
    runtime = demo.server.console.runtime
    conf = dict(runtime.config.console, password_hash="")
    bare = dataclasses.replace(runtime.config, console=conf)
    runtime_copy = type(runtime).__new__(type(runtime))
    runtime_copy.__dict__.update(runtime.__dict__, config=bare)
    with pytest.raises(ConfigError, match="not a loopback address"):
        console_for(runtime_copy, host="0.0.0.0")
    console, one_time = console_for(runtime_copy, host="127.0.0.1")
    assert one_time and console.check_password("admin", one_time)
    assert not console.check_password("admin", one_time + "x")


def test_dashboard_filters_by_state_and_vendor(client, demo):
    from console_helpers import wait_until

    from spamfilter_plugin.queue import open_queue

    q = open_queue(demo.folder / "state")
    wait_until(lambda: q.latest(["domain_created"]).get(("spamport", "domain:carol.example")))
    row = q.latest(["domain_created"])[("spamport", "domain:carol.example")]
    wait_until(lambda: q.get(row.id).state == "done")
    q.db.execute(
        "UPDATE events SET state='dead', last_error='spamport: licence full' WHERE id=?", (row.id,)
    )
    _login(client, demo.password)
    try:
        page = client.get("/?state=failed&vendor=spamport").get_data(as_text=True)
        assert re.findall(r'data-domain="([^"]+)"', page) == ["carol.example"]
        assert "spamport: licence full" in page
        other = client.get("/?state=failed&vendor=spamwall").get_data(as_text=True)
        assert "carol.example" not in other
        protected = client.get("/?state=protected&vendor=spamport").get_data(as_text=True)
        shown = re.findall(r'data-domain="([^"]+)"', protected)
        assert "carol.example" not in shown and "bob.example" in shown
    finally:
        q.retry(row.id)
        q.close()
