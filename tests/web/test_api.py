"""The JSON API over HTTP against the demo: tokens in the Authorization header only, the
console's access rules for each role, problem+json errors, and no cookie authenticating."""

from __future__ import annotations

import pytest
import requests
from console_helpers import admin_session, csrf_of, wait_until

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


def post(demo, path, token):
    return requests.post(demo.url + "api/v1/" + path, timeout=10,
                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def test_a_change_is_accepted_once_its_rows_are_committed_and_can_be_followed(demo, keys):
    demo.panel.add_domain("carol", "api-made.example")
    wait_until(lambda: "api-made.example" in demo.sandbox["spamport"].emulator.domains)
    # only the admin protects and unprotects, as in the console; no cookie or CSRF needed
    assert post(demo, "domains/api-made.example/unprotect", keys["t-resel"]).status_code == 403
    r = post(demo, "domains/api-made.example/unprotect", keys["t-admin"])
    assert r.status_code == 202, r.text
    doc = r.json()
    assert doc["rows"] and doc["follow"] == "/api/v1/queue?rows=" + ",".join(map(str, doc["rows"]))
    assert r.headers["Location"] == doc["follow"]

    def finished():
        rows = get(demo, doc["follow"].removeprefix("/api/v1/"), keys["t-admin"]).json()["rows"]
        return all(row["finished"] for row in rows) and rows

    rows = wait_until(finished)
    assert {row["event"] for row in rows} == {"domain_deleted"}
    assert all(row["state"] == "done" for row in rows)
    assert "api-made.example" not in demo.sandbox["spamport"].emulator.domains
    one = get(demo, f"queue/{rows[0]['id']}", keys["t-admin"]).json()
    assert one["id"] == rows[0]["id"] and one["target"] == "domain:api-made.example"
    assert get(demo, "queue/999999999", keys["t-admin"]).status_code == 404
    assert get(demo, "queue", keys["t-alice"]).status_code == 403
    bad = get(demo, "queue", keys["t-admin"], params={"rows": "1,x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "rows"
    # protected again, and the calls are in the audit log under the token's name
    assert post(demo, "domains/api-made.example/protect", keys["t-admin"]).status_code == 202
    with open_queue(demo.folder / "state") as q:
        said = [(e["actor"], e["action"]) for e in q.audit_entries(target="api-made.example")]
    assert said[:2] == [("token:t-admin", "api protect"), ("token:t-admin", "api unprotect")]
    assert post(demo, "domains/never.example/protect", keys["t-admin"]).status_code == 404


def test_wait_answers_each_rows_outcome_when_they_finish_in_time(demo, keys):
    demo.panel.add_domain("carol", "api-wait.example")
    wait_until(lambda: "api-wait.example" in demo.sandbox["spamport"].emulator.domains)
    r = requests.post(demo.url + "api/v1/domains/api-wait.example/unprotect",
                      params={"wait": "30"}, timeout=60,
                      headers={"Authorization": f"Bearer {keys['t-admin']}"})  # fmt: skip
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [o["id"] for o in doc["outcomes"]] == doc["rows"]
    assert all(o["state"] == "done" and o["finished"] for o in doc["outcomes"])
    assert "api-wait.example" not in demo.sandbox["spamport"].emulator.domains
    bad = requests.post(demo.url + "api/v1/domains/api-wait.example/protect",
                        params={"wait": "999"}, timeout=10,
                        headers={"Authorization": f"Bearer {keys['t-admin']}"})  # fmt: skip
    assert bad.status_code == 422 and bad.json()["errors"] == [
        {"field": "wait", "message": "give 0 to 60 seconds"}
    ]


def test_queue_retry_and_drop_and_a_domains_mailboxes(demo, keys):
    mine = get(demo, "domains/bob.example/mailboxes", keys["t-resel"]).json()
    assert mine == {"domain": "bob.example",
                    "mailboxes": ["bob@bob.example", "office@bob.example"]}  # fmt: skip
    assert get(demo, "domains/bob.example/mailboxes", keys["t-alice"]).status_code == 403
    rows = get(demo, "queue", keys["t-admin"], params={"limit": "5"}).json()["rows"]
    done = next(r for r in rows if r["state"] == "done")
    refused = post(demo, f"queue/{done['id']}/retry", keys["t-admin"])
    assert refused.status_code == 409 and "not a failed row" in refused.json()["detail"]
    assert post(demo, f"queue/{done['id']}/retry", keys["t-alice"]).status_code == 403
    assert post(demo, "queue/999999999/drop", keys["t-admin"]).status_code == 404


def test_each_token_has_a_rate_and_a_body_cap(demo, keys):
    import dataclasses

    from spamfilter_plugin.web.app import create_app

    app = create_app(dataclasses.replace(demo.server.console))
    app.config["SFP_API_RATE"] = 3
    client = app.test_client()
    auth = {"Authorization": f"Bearer {keys['t-alice']}"}
    answers = [client.get("/api/v1/domains", headers=auth).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    limited = client.get("/api/v1/domains", headers=auth)
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 61
    assert "3 calls a minute per token" in limited.get_json()["detail"]
    other = {"Authorization": f"Bearer {keys['t-resel']}"}  # another token is not held back
    assert client.get("/api/v1/domains", headers=other).status_code == 200
    big = client.post("/api/v1/domains/bob.example/protect", headers=other,
                      data=b"x" * (64 * 1024 + 1))  # fmt: skip
    assert big.status_code == 413 and big.mimetype == "application/problem+json"


def test_settings_are_read_as_values_and_submitted_as_json(demo, keys):
    em = demo.sandbox["spamport"].emulator
    wait_until(lambda: "alice.example" in em.domains)
    path = "settings/domain/alice.example/spamport/domain"
    r = get(demo, path, keys["t-alice"])
    assert r.status_code == 200, r.text
    forms = {f["name"]: f["fields"] for f in r.json()["forms"]}
    held = em.domains["alice.example"]
    assert forms["spamport-settings"]["greylist"] == ("1" if held["greylist"] == "1" else "0")
    assert forms["spamport-settings"]["spamscore"] == held["spamscore"]
    assert forms["spamport-login"] == {"action": "login"}
    want = held["greylist"] != "1"
    auth = {"Authorization": f"Bearer {keys['t-alice']}"}
    done = requests.post(demo.url + "api/v1/" + path, json={"action": "save", "greylist": want},
                         headers=auth, timeout=10)  # fmt: skip
    assert done.status_code == 200, done.text
    assert done.json()["ok"] is True and done.json()["changed"] == ["greylist"]
    assert em.domains["alice.example"]["greylist"] == ("1" if want else "0")
    bad = requests.post(demo.url + "api/v1/" + path, json={"action": "save", "spamscore": "max"},
                        headers=auth, timeout=10)  # fmt: skip
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "spamscore"
    other = get(demo, "settings/domain/bob.example/spamport/domain", keys["t-alice"])
    assert other.status_code == 403
    assert (
        get(demo, "settings/domain/alice.example/nope/domain", keys["t-alice"]).status_code == 404
    )
    not_json = requests.post(demo.url + "api/v1/" + path, data="greylist=1", headers=auth,
                             timeout=10)  # fmt: skip
    assert not_json.status_code == 422 and not_json.json()["errors"][0]["field"] == "body"
    nested = requests.post(demo.url + "api/v1/" + path, json={"greylist": [1]}, headers=auth,
                           timeout=10)  # fmt: skip
    assert nested.status_code == 422 and nested.json()["errors"] == [
        {"field": "greylist", "message": "give a string, a number, or true/false"}
    ]


def test_a_login_link_logs_the_domains_owner_in_on_its_page(demo, keys):
    r = post(demo, "domains/bücher.example/login-link", keys["t-resel"])
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["user"] == "alice" and doc["url"].startswith(demo.url + "enter/")
    browser = requests.Session()
    page = browser.get(doc["url"], timeout=10)
    assert page.url.endswith("/settings/domain/xn--bcher-kva.example/")
    assert "alice (user)" in page.text and "bücher.example" in page.text
    assert browser.get(doc["url"], timeout=10).status_code == 403  # used once
    assert post(demo, "domains/bob.example/login-link", keys["t-alice"]).status_code == 403


def call(demo, path, token, body=None, **params):
    return requests.post(demo.url + "api/v1/" + path, json=body, params=params, timeout=60,
                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def test_the_admin_protects_a_domain_no_panel_holds_and_sync_leaves_it(demo, keys):
    from spamfilter_plugin.sync import Reconcile, panel_domains

    em = demo.sandbox["spamport"].emulator
    name = "hosted-elsewhere.example"
    # no destination: a domain no panel holds is not found; a reseller may not protect
    missing = call(demo, f"domains/{name}/protect", keys["t-admin"])
    assert missing.status_code == 404 and "give its destination" in missing.json()["detail"]
    assert call(demo, f"domains/{name}/protect", keys["t-resel"],
                {"destination": "192.0.2.25"}).status_code == 403  # fmt: skip
    bad = call(demo, f"domains/{name}/protect", keys["t-admin"], {"destination": "not a host!"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "destination"
    on_panel = call(demo, "domains/bob.example/protect", keys["t-admin"],
                    {"destination": "192.0.2.25"})  # fmt: skip
    assert on_panel.status_code == 422 and "is on the panel" in on_panel.json()["detail"]
    r = call(demo, f"domains/{name}/protect", keys["t-admin"], {"destination": "192.0.2.25"},
             wait="30")  # fmt: skip
    assert r.status_code == 200, r.text
    assert {o["vendor"] for o in r.json()["outcomes"]} >= {"spamport"}
    assert em.domains[name]["transport"] == "smtp:192.0.2.25"
    doc = get(demo, f"domains/{name}", keys["t-admin"]).json()
    assert doc["api"]["destination"] == "192.0.2.25" and doc["api"]["added_by"] == "token:t-admin"
    assert doc["vendors"]["spamport"]["state"] == "protected"
    # the reseller does not see it; the admin's dashboard marks it
    assert get(demo, f"domains/{name}", keys["t-resel"]).status_code == 403
    board = admin_session(demo).get(demo.url, params={"q": name}, timeout=10).text
    row = board[board.index(f'data-domain="{name}"') :]
    assert "no panel holds it; mail to 192.0.2.25" in row[: row.index("</tr>")]
    # sync wants it (with its destination): nothing to remove, nothing to add
    rt = demo.server.console.runtime
    plan = Reconcile.of(rt, panel_domains(rt))
    try:
        changes = [c for c in plan.plan("spamport") if c.domain == name]
    finally:
        plan.queue.close()
    assert changes == [], changes
    # a new destination is taken by the vendor
    moved = call(demo, f"domains/{name}/protect", keys["t-admin"],
                 {"destination": "192.0.2.26"}, wait="30")  # fmt: skip
    assert moved.status_code == 200 and em.domains[name]["transport"] == "smtp:192.0.2.26"
    # protected again from the console: to the destination the API gave, not mail_host
    s = admin_session(demo)
    page = s.get(demo.url + f"settings/domain/{name}/", timeout=10).text
    assert "Owned by the API" in page and "192.0.2.26" in page
    before = max(r["id"] for r in get(demo, "queue", keys["t-admin"]).json()["rows"])
    s.post(demo.url + f"domain/{name}/protect", data={"csrf_token": csrf_of(page)}, timeout=10)

    def redone():
        rows = get(demo, "queue", keys["t-admin"], params={"limit": "50"}).json()["rows"]
        mine = [r for r in rows if r["id"] > before and r["target"] == f"domain:{name}"]
        return mine and all(r["finished"] for r in mine)

    wait_until(redone)
    assert em.domains[name]["transport"] == "smtp:192.0.2.26"
    # unprotect removes it at the vendors, and it is no one's then
    gone = call(demo, f"domains/{name}/unprotect", keys["t-admin"], wait="30")
    assert gone.status_code == 200, gone.text
    assert name not in em.domains
    assert get(demo, f"domains/{name}", keys["t-admin"]).status_code == 404
    with open_queue(demo.folder / "state") as q:
        assert name not in q.api_domains()


def test_a_changed_product_protects_at_its_vendors_only_and_suspension_is_queued(demo, keys):
    demo.panel.add_domain("carol", "api-plan.example")
    sp, sb = demo.sandbox["spamport"].emulator, demo.sandbox["spambarrier"].emulator
    wait_until(lambda: "api-plan.example" in sp.domains and "api-plan.example" in sb.domains)
    r = call(demo, "domains/api-plan.example/protect", keys["t-admin"],
             {"vendors": ["spamport"]}, wait="30")  # fmt: skip
    assert r.status_code == 200, r.text
    events = {(o["vendor"], o["event"]) for o in r.json()["outcomes"]}
    assert ("spamport", "domain_created") in events and ("spambarrier", "domain_deleted") in events
    assert "api-plan.example" in sp.domains and "api-plan.example" not in sb.domains
    unknown = call(demo, "domains/api-plan.example/protect", keys["t-admin"],
                   {"vendors": ["nope"]})  # fmt: skip
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "vendors"
    # suspension: each vendor follows its on_suspend (the demo's SpamPort bypasses)
    held = call(demo, "domains/api-plan.example/suspend", keys["t-admin"],
                {"reason": "unpaid invoice"}, wait="30")  # fmt: skip
    assert held.status_code == 200, held.text
    assert {o["event"] for o in held.json()["outcomes"]} == {"domain_suspended"}
    doc = get(demo, "domains/api-plan.example", keys["t-admin"]).json()
    assert doc["suspended"]["reason"] == "unpaid invoice"
    lifted = call(demo, "domains/api-plan.example/unsuspend", keys["t-admin"], wait="30")
    assert {o["event"] for o in lifted.json()["outcomes"]} == {"domain_unsuspended"}
    assert get(demo, "domains/api-plan.example", keys["t-admin"]).json()["suspended"] is None
    assert call(demo, "domains/api-plan.example/suspend", keys["t-alice"]).status_code == 403


def test_a_failed_row_is_retried_and_a_waiting_one_dropped(demo, keys):
    with open_queue(demo.folder / "state") as q:
        dead, waiting = [r for r in q.rows(limit=1000) if r.state == "done"][:2]
        q.db.execute("UPDATE events SET state='dead', last_error='test' WHERE id=?", (dead.id,))
        q.db.execute("UPDATE events SET state='dead' WHERE id=?", (waiting.id,))
    r = post(demo, f"queue/{dead.id}/retry", keys["t-admin"])
    assert r.status_code == 200, r.text
    assert r.json()["id"] == dead.id and r.json()["row"]["state"] in ("pending", "leased", "done")
    r = post(demo, f"queue/{waiting.id}/drop", keys["t-admin"])
    assert r.status_code == 200 and r.json()["row"] is None
    assert get(demo, f"queue/{waiting.id}", keys["t-admin"]).status_code == 404
    with open_queue(demo.folder / "state") as q:
        said = {e["action"] for e in q.audit_entries(actor="token:t-admin", limit=20)}
    assert {"api queue retry", "api queue drop"} <= said


def test_every_call_is_audited_and_the_openapi_document_describes_the_answers(demo, keys):
    import jsonschema
    from openapi_spec_validator import validate

    r = requests.get(demo.url + "api/v1/openapi.json", timeout=10)  # no token needed
    assert r.status_code == 200
    spec = r.json()
    validate(spec)
    assert spec["openapi"] == "3.1.0" and spec["servers"] == [{"url": "/api/v1"}]
    documented = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    assert ("/domains/{domain}/protect", "post") in documented
    assert ("/settings/{scope}/{target}/{vendor}/{form}", "post") in documented

    def check(answer, path, method="get"):
        schema = spec["paths"][path][method]["responses"][str(answer.status_code)]["content"]
        kind = answer.headers["Content-Type"].split(";")[0]
        root = {"components": spec["components"], **schema[kind]["schema"]}
        jsonschema.Draft202012Validator(root).validate(answer.json())

    check(get(demo, "domains", keys["t-admin"]), "/domains")
    check(get(demo, "domains/xn--bcher-kva.example", keys["t-admin"]), "/domains/{domain}")
    check(get(demo, "queue", keys["t-admin"], params={"limit": "3"}), "/queue")
    check(get(demo, "domains/bob.example/mailboxes", keys["t-resel"]),
          "/domains/{domain}/mailboxes")  # fmt: skip
    check(get(demo, "settings/domain/alice.example/spamport/domain", keys["t-alice"]),
          "/settings/{scope}/{target}/{vendor}/{form}")  # fmt: skip
    check(post(demo, "domains/bob.example/retry", keys["t-admin"]), "/domains/{domain}/retry",
          "post")  # fmt: skip
    check(get(demo, "domains/bob.example", keys["t-alice"]), "/domains/{domain}")  # a 403
    # a read and a refusal are in the audit log too, under the token's name
    with open_queue(demo.folder / "state") as q:
        entries = q.audit_entries(actor="token:t-alice", limit=50)
    seen = {(e["action"], e["target"], e["outcome"]) for e in entries}
    assert ("api GET /api/v1/domains/<name>", "bob.example", "403") in seen
    assert ("api GET /api/v1/settings/<scope>/<target>/<vendor>/<form>", "alice.example",
            "200") in seen  # fmt: skip
