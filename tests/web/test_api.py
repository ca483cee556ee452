"""The JSON API over HTTP against the demo: tokens in the Authorization header only, the
console's access rules for each role, problem+json errors, and no cookie authenticating."""

from __future__ import annotations

import pytest
import requests
from console_helpers import admin_session, wait_until

from spamfilter_plugin import tokens
from spamfilter_plugin.queue import open_queue


@pytest.fixture(scope="module")
def keys(demo):
    made = {}
    with open_queue(demo.folder / "state") as q:
        for name, role in (("t-admin", "admin"), ("t-resel", "reseller:resel"),
                           ("t-alice", "account:alice")):  # fmt: skip
            if q.token_named(name) is not None:
                q.token_remove(name)
            made[name], _ = tokens.create(q, name, role)
    return made


def get(demo, path, token=None, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(demo.url + "api/v1/" + path, headers=headers, timeout=10, **kw)


def test_a_call_without_a_valid_token_is_a_401_problem(demo, keys):
    for r in (get(demo, "domains"), get(demo, "domains", "sfp_not-a-token")):
        assert r.status_code == 401
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        doc = r.json()
        assert doc["status"] == 401 and doc["title"] == "Unauthorized" and doc["detail"]
    in_url = get(demo, "domains", params={"token": keys["t-admin"]})
    assert in_url.status_code == 400 and "Authorization header" in in_url.json()["detail"]
    # a logged-in console session is no API credential
    assert admin_session(demo).get(demo.url + "api/v1/domains", timeout=10).status_code == 401
    missing = get(demo, "no-such-thing", keys["t-admin"])
    assert missing.status_code == 404 and missing.json()["status"] == 404


def test_each_token_sees_what_its_console_user_would(demo, keys):
    wait_until(lambda: "alice.example" in demo.sandbox["spamport"].emulator.domains)

    def names(token, **params):
        r = get(demo, "domains", token, params=params)
        assert r.status_code == 200, r.text
        return sorted(d["domain"] for d in r.json()["domains"])

    everything = names(keys["t-admin"], size="250")
    assert {"alice.example", "bob.example", "carol.example", "xn--bcher-kva.example"} <= set(
        everything
    )
    assert names(keys["t-alice"]) == ["alice.example", "xn--bcher-kva.example"]
    resel = names(keys["t-resel"], size="250")
    assert "bob.example" in resel and "carol.example" not in resel
    assert names(keys["t-admin"], q="bücher") == ["xn--bcher-kva.example"]  # the list's search
    doc = get(demo, "domains/alice.example", keys["t-alice"]).json()
    assert doc["name"] == "alice.example" and doc["owner"] is None  # an account sees no owners
    assert doc["vendors"]["spamport"]["state"] in ("protected", "pending")
    admin_view = get(demo, "domains/xn--bcher-kva.example", keys["t-admin"]).json()
    assert admin_view["name"] == "bücher.example" and admin_view["owner"] == "alice"
    refused = get(demo, "domains/bob.example", keys["t-alice"])
    assert refused.status_code == 403 and "not one of alice's domains" in refused.json()["detail"]
    unknown = get(demo, "domains/never.example", keys["t-admin"])
    assert unknown.status_code == 404
