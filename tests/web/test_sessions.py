"""Console sessions that end with the rights they rest on, logins that only ever lead back to
the console, and a login throttle that holds per account as well as per address."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from console_helpers import csrf_of
from itsdangerous import TimestampSigner

from spamfilter_plugin.panels import load
from spamfilter_plugin.queue import open_queue
from spamfilter_plugin.web.access import KEY_NAME as CONSOLE_KEY
from spamfilter_plugin.web.access import Viewer, console_path, login_token
from spamfilter_plugin.web.app import create_app
from spamfilter_plugin.web.sessions import ACCOUNT_WINDOW, Throttle, address_key

SPAMFILTER = str(Path(sys.executable).with_name("spamfilter"))
DATA = "usr/local/directadmin/data/users"


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def panel_root(tmp_path):
    """A DirectAdmin tree: the panel's admin, a reseller with alice as customer, alice with
    one domain and one mailbox."""
    root = tmp_path / "root"
    write(
        root,
        {
            f"{DATA}/admin/user.conf": "usertype=admin\n",
            f"{DATA}/resel/user.conf": "usertype=reseller\n",
            f"{DATA}/resel/users.list": "alice\n",
            f"{DATA}/alice/user.conf": "usertype=user\n",
            f"{DATA}/alice/domains.list": "alice.example\n",
            "etc/virtual/domainowners": "alice.example: alice\n",
            "etc/virtual/alice.example/passwd": "info:x:1\n",
        },
    )
    return root


@pytest.fixture
def console(demo, panel_root):
    clock = Clock()
    return dataclasses.replace(
        demo.server.console,
        adapter=load("directadmin", {"root": str(panel_root)}),
        throttle=Throttle(clock=clock, pause=0),
        panel_origin="",
    )


@pytest.fixture
def app(console):
    return create_app(console)


def enter(client, console, viewer: Viewer, to: str = "/", *, admin: bool = False):
    token = login_token(console.secret_key, viewer, to, console=admin)
    return client.get(f"/enter/{token}")


def login(client, password, who="192.0.2.9", username="admin", next_path="/"):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post(
        "/login",
        data={"csrf_token": token, "username": username, "password": password, "next": next_path},
        environ_base={"REMOTE_ADDR": who},
    )


def cookie_of(client):
    return client.get_cookie("spamfilter_console").value


def test_logout_ends_every_copy_of_the_session(app, demo):
    first = app.test_client()
    assert login(first, demo.password).status_code == 302
    copy = app.test_client()
    copy.set_cookie("spamfilter_console", cookie_of(first))
    assert copy.get("/queue").status_code == 200  # a copied cookie works while the session does
    first.post("/logout", data={"csrf_token": csrf_of(first.get("/").get_data(as_text=True))})
    refused = copy.get("/queue")
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")


def test_a_panel_admin_removed_from_the_panel_loses_the_console(app, console, panel_root):
    c = app.test_client()
    assert enter(c, console, Viewer("admin", "admin")).status_code == 302
    assert c.get("/queue").status_code == 200
    (panel_root / DATA / "admin" / "user.conf").unlink()  # the panel removed the admin
    gone = c.get("/queue")
    assert gone.status_code == 302 and gone.headers["Location"].startswith("/login")
    page = c.get("/login").get_data(as_text=True)
    assert "admin is no longer a user of the panel" in page


def test_a_demoted_reseller_no_longer_sees_its_former_customers(app, console, panel_root):
    c = app.test_client()
    enter(c, console, Viewer("reseller", "resel"))
    assert 'data-domain="alice.example"' in c.get("/").get_data(as_text=True)
    (panel_root / DATA / "resel" / "user.conf").write_text("usertype=user\n")
    r = c.get("/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    assert "resel is now a user on the panel" in c.get("/login").get_data(as_text=True)
    assert c.get("/settings/domain/alice.example/").status_code == 302


def test_a_mailbox_the_panel_removed_loses_its_page(app, console, panel_root):
    c = app.test_client()
    enter(c, console, Viewer("mailbox", "info@alice.example"))
    assert c.get("/settings/mailbox/info@alice.example/").status_code == 200
    (panel_root / "etc/virtual/alice.example/passwd").write_text("")
    assert c.get("/settings/mailbox/info@alice.example/").status_code == 302


def _age(console, **seconds):
    q = open_queue(console.state_dir)
    try:
        for column, by in seconds.items():
            q.db.execute(f"UPDATE sessions SET {column} = {column} - ?", (by,))
    finally:
        q.close()


def test_sessions_expire_when_idle_and_after_their_lifetime(app, console, demo):
    conf = console.runtime.config.console
    assert conf["session_idle_minutes"] == 60 and conf["session_max_hours"] == 12
    idle = app.test_client()
    login(idle, demo.password)
    _age(console, seen_at=59 * 60)
    assert idle.get("/").status_code == 200  # used within the hour: still on
    _age(console, seen_at=61 * 60)
    assert idle.get("/").status_code == 302
    assert "after being idle" in idle.get("/login").get_data(as_text=True)
    busy = app.test_client()
    login(busy, demo.password)
    _age(console, created_at=13 * 3600)
    assert busy.get("/").status_code == 302
    assert "time limit" in busy.get("/login").get_data(as_text=True)


def test_a_new_console_password_ends_the_sessions_opened_with_the_old_one(console, demo):
    from spamfilter_plugin.web.app import hash_password

    old = create_app(console).test_client()
    login(old, demo.password)
    assert old.get("/").status_code == 200
    changed = dataclasses.replace(console, password_hash=hash_password("a new password"))
    again = create_app(changed).test_client()
    again.set_cookie("spamfilter_console", cookie_of(old))
    assert again.get("/").status_code == 302


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example",
        "/\n/evil.example",
        "//evil.example/",
        "/\\evil.example",
        "https://evil.example/",
        "/ /evil.example",
        "javascript:alert(1)",
        "/%0d%0aSet-Cookie:x=1",
    ],
)
def test_a_login_leads_only_to_a_path_on_the_console(app, demo, target):
    c = app.test_client()
    r = login(c, demo.password, next_path=target)
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location in ("/", target) and not location.startswith("//")
    assert "evil.example" not in location or location == target == "/%0d%0aSet-Cookie:x=1"


def test_console_path_accepts_ordinary_paths():
    assert console_path("/settings/domain/b%C3%BCcher.example/?q=1") is not None
    assert console_path("/queue") == "/queue"
    for bad in ("/\t/x", "//x", "/\\x", "http://x/", "x", "", None, "/a\x7f"):
        assert console_path(bad) is None


def test_ui_link_refuses_a_path_that_leaves_the_console(demo):
    config = demo.config_path
    for bad in ("/\t/evil.example", "//evil.example", "https://evil.example/"):
        out = subprocess.run(
            [SPAMFILTER, "--config", str(config), "ui", "link", "--user", "alice", "--to", bad],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 2 and "--to:" in out.stderr, out.stderr


def test_ui_link_refuses_a_mailbox_the_panel_does_not_have(demo):
    config = demo.config_path
    run = [SPAMFILTER, "--config", str(config), "ui", "link", "--user"]
    out = subprocess.run([*run, "nobody@alice.example"], capture_output=True, text=True)
    assert out.returncode == 2 and "not a mailbox the panel has" in out.stderr
    out = subprocess.run([*run, "info@alice.example"], capture_output=True, text=True)
    assert out.returncode == 0 and "/enter/" in out.stdout


def test_opening_another_users_link_asks_before_switching(app, console, demo):
    c = app.test_client()
    login(c, demo.password)
    r = enter(c, console, Viewer("user", "alice"))
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "Switch user?" in page and "alice" in page
    assert c.get("/queue").status_code == 200  # still the admin
    action = f"/enter/{page.split('/enter/', 1)[1].split(chr(34), 1)[0]}"
    assert c.post(action).status_code == 400 or c.post(action).status_code == 403  # no token
    switched = c.post(action, data={"csrf_token": csrf_of(page)})
    assert switched.status_code == 302
    assert c.get("/queue").status_code == 403  # alice now


# -- the throttle ------------------------------------------------------------------------


def counting(console):
    checks = []
    real = console.check_password

    def check(username, password):
        checks.append(username)
        return real(username, password)

    console.check_password = check
    return checks


def test_many_addresses_cannot_try_one_account_more_than_five_times(app, console):
    checks = counting(console)
    c = app.test_client()
    codes = [
        login(c, "wrong", who=f"127.0.0.{n}").status_code for n in range(1, 11) for _ in range(3)
    ]
    assert len(checks) == 5 and codes.count(401) == 5 and codes.count(429) == 25
    assert "try again in" in login(c, "wrong", who="198.51.100.7").get_data(as_text=True)
    console.throttle.clock.now += ACCOUNT_WINDOW + 61  # the window passes
    assert login(c, "wrong", who="198.51.100.7").status_code == 401


def test_an_ipv6_slash_64_counts_as_one_address(app, console, demo):
    checks = counting(console)
    c = app.test_client()
    codes = [login(c, "wrong", who=f"2001:db8:1:2::{n}").status_code for n in range(1, 5)]
    assert codes == [401, 401, 401, 429] and len(checks) == 3
    assert address_key("2001:db8:1:2::7") == address_key("2001:db8:1:2:ffff::1")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert login(c, demo.password, who="2001:db8:1:3::1").status_code == 302  # the next /64


def test_parallel_tries_from_one_address_are_counted_before_checking(app, console):
    checks = counting(console)
    clients = [app.test_client() for _ in range(16)]
    tokens = [csrf_of(c.get("/login").get_data(as_text=True)) for c in clients]
    start = threading.Barrier(16)
    codes = []

    def attempt(c, token):
        start.wait()
        r = c.post(
            "/login",
            data={"csrf_token": token, "username": "admin", "password": "wrong", "next": "/"},
            environ_base={"REMOTE_ADDR": "203.0.113.5"},
        )
        codes.append(r.status_code)

    threads = [
        threading.Thread(target=attempt, args=pair) for pair in zip(clients, tokens, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(checks) == 3 and sorted(codes) == [401] * 3 + [429] * 13


def test_the_throttle_forgets_what_is_old():
    clock = Clock()
    throttle = Throttle(clock=clock, pause=0)
    for n in range(200):
        assert throttle.begin(f"192.0.2.{n}", f"user{n}") == 0
    assert throttle.size() == 400
    clock.now += ACCOUNT_WINDOW + 1
    throttle.begin("198.51.100.1", "admin")
    assert throttle.size() == 2  # the newcomer's address and its account


def test_the_admins_own_link_works_while_logins_are_slowed_down(app, console, demo):
    c = app.test_client()
    for n in range(6):
        login(c, "wrong", who=f"127.0.1.{n}")
    assert login(c, demo.password, who="192.0.2.77").status_code == 429
    r = enter(c, console, Viewer("admin", console.username), admin=True)
    assert r.status_code == 302
    assert c.get("/queue").status_code == 200


def test_ui_link_makes_the_console_admins_link(demo):
    config = demo.config_path
    out = subprocess.run(
        [SPAMFILTER, "--config", str(config), "ui", "link", "--console-admin"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and "/enter/" in out.stdout
    import requests

    s = requests.Session()
    r = s.get(out.stdout.strip().replace("http://127.0.0.1:8025/", demo.url), timeout=10)
    assert r.status_code == 200 and r.url == demo.url


def test_a_form_token_forged_with_an_empty_key_is_refused(demo):
    """An older version left an empty console.key on a full disk; a token signed with the
    empty key must not pass 'ui submit'."""
    state = demo.folder / "state"
    path = state / CONSOLE_KEY
    saved = path.read_bytes()
    try:
        path.write_bytes(b"")
        forged = TimestampSigner(b"", salt="spamfilter-panel-form").sign("user:alice").decode()
        out = subprocess.run(
            [SPAMFILTER, "--config", str(demo.config_path), "ui", "submit", "--user", "alice",
             "--scope", "domain", "--target", "alice.example", "--vendor", "spamport"],
            input=f"csrf_token={forged}&greylist=0",
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        assert out.returncode == 2 and "csrf_token" in out.stdout, out.stdout + out.stderr
        assert len(path.read_bytes().strip()) == 64  # made anew
    finally:
        path.write_bytes(saved)
