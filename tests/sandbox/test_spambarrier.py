"""The spambarrier emulator, driven with raw HTTP written from the spambarrier API document."""

import pytest
import requests

from spamfilter_plugin.sandbox.spambarrier import API_TOKEN, USER_ID


@pytest.fixture
def sb(spambarrier_sandbox):
    def call(method, *, user_id=USER_ID, api_token=API_TOKEN, **params):
        body = {"method": method, "params": {"user_id": user_id, "api_token": api_token, **params}}
        resp = requests.post(spambarrier_sandbox.url, json=body, timeout=5)
        assert resp.status_code == 200
        return resp.json()

    call.sandbox = spambarrier_sandbox
    return call


def err(code):
    def check(answer):
        assert answer["result"] == "error" and answer["params"]["code"] == code, answer
        assert answer["params"]["message"]
        return True

    return check


def test_add_get_edit_delete_domain(sb):
    added = sb(
        "add-domain",
        domain="example.org",
        host="mail-server.example.org",
        username=None,
        password=None,
    )
    assert added == {
        "result": "success",
        "params": {"domain_id": 54321, "txt_record_for_confirmation": "spambarrier-verify-54321"},
    }
    listed = sb("get-domains")
    assert listed["result"] == "success" and listed["params"]["count"] == 1
    (d,) = listed["params"]["domains"]
    assert (
        d["id"] == "54321" and d["name"] == "example.org" and d["host"] == "mail-server.example.org"
    )
    assert d["has_authentication"] is False and d["confirmed"] is False
    assert d["created"].isdigit() and isinstance(d["quarantine_mail_count"], int)
    assert sb(
        "edit-domain",
        domain="example.org",
        host="192.0.2.8",
        username="auth@example.org",
        password="nesgihwehg12094",
    ) == {"result": "success"}
    assert sb("get-domains")["params"]["domains"][0]["has_authentication"] is True
    assert sb("delete-domain", domain="example.org") == {"result": "success"}
    assert sb("get-domains")["params"] == {"count": 0, "domains": []}


def test_domain_errors(sb):
    sb("add-domain", domain="example.org", host="mx.example.org")
    assert err("domain_exists")(sb("add-domain", domain="example.org", host="mx.example.org"))
    assert err("domain_not_found")(sb("delete-domain", domain="absent.example"))
    assert err("domain_not_found")(
        sb("edit-domain", domain="absent.example", host="mx.example.org")
    )
    assert err("invalid_parameter")(sb("add-domain", domain="not a domain", host="mx.example.org"))
    assert err("invalid_parameter")(sb("add-domain", domain="b.example", host="not a host"))
    assert err("missing_parameter")(sb("add-domain", domain="b.example"))
    assert err("invalid_parameter")(
        sb("add-domain", domain="b.example", host="mx.example.org", username="u")
    )


def test_txt_record_confirmation_needs_the_published_record(sb):
    txt = sb("add-domain", domain="example.org", host="mx.example.org")["params"][
        "txt_record_for_confirmation"
    ]
    assert err("txt_record_not_found")(sb("confirm-txt-record", domain="example.org"))
    requests.post(
        f"{sb.sandbox.root}/_sandbox/seed", json={"dns": {"example.org": [txt]}}, timeout=5
    )
    assert sb("confirm-txt-record", domain="example.org") == {"result": "success"}
    assert sb("get-domains")["params"]["domains"][0]["confirmed"] is True


def test_filter_settings(sb):
    sb("add-domain", domain="example.org", host="mx.example.org")
    assert sb("get-filter-settings", domain="example.org") == {
        "result": "success",
        "params": {
            "spam_treatment": "quarantine",
            "spam_threshold": 5,
            "virus_treatment": "quarantine",
            "greylisting": 0,
        },
    }
    assert sb(
        "set-filter-settings",
        domain="example.org",
        spam_treatment="reject",
        spam_threshold=7,
        virus_treatment="reject",
        greylisting=0,
    ) == {"result": "success"}
    assert sb("get-filter-settings", domain="example.org")["params"]["spam_threshold"] == 7


@pytest.mark.parametrize(
    "change",
    [
        {"spam_treatment": "delete"},
        {"virus_treatment": "tag"},
        {"greylisting": 2},
        {"spam_threshold": "high"},
        {"spam_threshold": -1},
    ],
)
def test_filter_setting_values_are_checked(sb, change):
    sb("add-domain", domain="example.org", host="mx.example.org")
    params = {
        "spam_treatment": "tag",
        "spam_threshold": 5,
        "virus_treatment": "quarantine",
        "greylisting": 1,
    }
    params.update(change)
    assert err("invalid_parameter")(sb("set-filter-settings", domain="example.org", **params))


def test_quarantine_is_seeded_deterministically_and_manageable(sb):
    sb("add-domain", domain="example.org", host="mx.example.org")
    first = sb("get-quarantine", domain="example.org")["params"]
    assert first["count"] == len(first["messages"]) >= 2
    msg = first["messages"][0]
    assert set(msg) == {"message_id", "from", "to", "subject", "date", "seen", "body"}
    assert msg["to"].endswith("@example.org") and "Subject:" in msg["body"]
    requests.post(f"{sb.sandbox.root}/_sandbox/reset", timeout=5)
    sb("add-domain", domain="example.org", host="mx.example.org")
    assert sb("get-quarantine", domain="example.org")["params"] == first  # deterministic
    assert sb(
        "resend-quarantine-message", domain="example.org", message_id=int(msg["message_id"])
    ) == {"result": "success", "params": {}}
    assert sb.sandbox.emulator.resent == [("example.org", msg["message_id"])]
    second = first["messages"][1]["message_id"]
    assert sb("delete-quarantine-message", domain="example.org", message_id=second) == {
        "result": "success",
        "params": {},
    }
    assert sb("get-quarantine", domain="example.org")["params"]["count"] == first["count"] - 2
    assert err("message_not_found")(
        sb("delete-quarantine-message", domain="example.org", message_id=second)
    )
    assert sb("get-domains")["params"]["domains"][0]["quarantine_mail_count"] == first["count"] - 2


def test_statistics(sb):
    sb("add-domain", domain="example.org", host="mx.example.org")
    stats = sb(
        "get-domain-statistics",
        domain="example.org",
        **{"from": "2015-01-01", "to": "2015-01-02"},
        interval="day",
    )["params"]
    assert [i["label"] for i in stats["intervals"]] == ["2015-01-01", "2015-01-02"]
    total = sum(int(i["values"]["total_count"]) for i in stats["intervals"])
    assert stats["total"]["statistics"]["total_count"] == str(total)
    for i in stats["intervals"]:
        v = {k: int(x) for k, x in i["values"].items()}
        assert v["total_count"] == v["pass_count"] + v["spam_count"] + v["virus_count"]
    assert stats["total"]["totalTraffic"] >= stats["total"]["passedTraffic"] >= 0
    again = sb(
        "get-domain-statistics",
        domain="example.org",
        **{"from": "2015-01-01", "to": "2015-01-02"},
        interval="day",
    )["params"]
    assert again == stats
    hours = sb(
        "get-domain-statistics",
        domain="example.org",
        **{"from": "2015-01-01", "to": "2015-01-01"},
        interval="hour",
    )["params"]["intervals"]
    assert len(hours) == 24
    months = sb(
        "get-domain-statistics",
        domain="example.org",
        **{"from": "2015-01-20", "to": "2015-03-02"},
        interval="month",
    )["params"]["intervals"]
    assert [m["label"] for m in months] == ["2015-01", "2015-02", "2015-03"]
    assert err("invalid_parameter")(
        sb(
            "get-domain-statistics",
            domain="example.org",
            **{"from": "01.01.2015", "to": "2015-01-02"},
            interval="day",
        )
    )
    assert err("invalid_parameter")(
        sb(
            "get-domain-statistics",
            domain="example.org",
            **{"from": "2015-01-01", "to": "2015-01-02"},
            interval="week",
        )
    )


def test_whitelist_entries(sb):
    sb("add-domain", domain="example.org", host="mx.example.org")
    assert sb("get-whitelistentries", domain="example.org") == {
        "result": "success",
        "params": {"entries": []},
    }
    assert sb(
        "add-whitelistentry",
        domain="example.org",
        **{"from": "customer@domain.com"},
        to="test@example.org",
    ) == {"result": "success", "params": []}
    (entry,) = sb("get-whitelistentries", domain="example.org")["params"]["entries"]
    assert (
        entry["id"] == "123456789"
        and entry["from"] == "customer@domain.com"
        and entry["to"] == "test@example.org"
    )
    assert len(entry["created"]) == len("04.01.2021 15:38:17")
    assert sb("delete-whitelistentry", domain="example.org", id=123456789) == {
        "result": "success",
        "params": [],
    }
    assert err("entry_not_found")(sb("delete-whitelistentry", domain="example.org", id=123456789))
    assert err("invalid_parameter")(
        sb("add-whitelistentry", domain="example.org", **{"from": "x y"}, to="test@example.org")
    )
    assert err("invalid_parameter")(
        sb(
            "add-whitelistentry",
            domain="example.org",
            **{"from": "a@b.com"},
            to="test@elsewhere.org",
        )
    )


def test_authentication_and_envelope_errors(sb):
    assert err("authentication_failed")(sb("get-domains", api_token="wrong"))
    assert err("authentication_failed")(sb("get-domains", user_id=1))
    assert err("unknown_method")(sb("explode"))
    resp = requests.post(sb.sandbox.url, data=b"not json", timeout=5)
    assert resp.status_code == 200 and err("invalid_request")(resp.json())
    resp = requests.post(sb.sandbox.url, json={"method": "get-domains"}, timeout=5)
    assert err("invalid_request")(resp.json())
    assert requests.get(sb.sandbox.url, timeout=5).status_code == 405


def test_request_log_hides_the_token(sb):
    sb("get-domains")
    log = requests.get(f"{sb.sandbox.root}/_sandbox/requests", timeout=5).json()
    assert '"method": "get-domains"' in log[-1]["body"] and API_TOKEN not in str(log)


def test_greylisting_is_taken_as_the_document_and_the_vendor_readme_send_it(sb):
    sb("add-domain", domain="example.org", host="mx.example.org")
    common = {"spam_treatment": "tag", "spam_threshold": 6, "virus_treatment": "reject"}
    for sent, stored in ((True, 1), (0, 0), (False, 0), (1, 1)):
        assert sb("set-filter-settings", domain="example.org", greylisting=sent, **common) == {
            "result": "success"
        }
        assert sb("get-filter-settings", domain="example.org")["params"]["greylisting"] == stored


def _seed(sb, **data):
    requests.post(f"{sb.sandbox.root}/_sandbox/seed", json=data, timeout=5).raise_for_status()


def test_the_whitelist_methods_answer_under_both_spellings_unless_seeded_otherwise(sb):
    sb("add-domain", domain="example.org", host="mx.example.org")
    entry = {"domain": "example.org", "from": "a@b.example", "to": "u@example.org"}
    assert sb("add-whitelist-entry", **entry)["result"] == "success"
    assert len(sb("get-whitelistentries", domain="example.org")["params"]["entries"]) == 1
    assert len(sb("get-whitelist-entries", domain="example.org")["params"]["entries"]) == 1
    _seed(sb, whitelist_spelling="client")
    assert err("unknown_method")(sb("get-whitelistentries", domain="example.org"))
    assert sb("get-whitelist-entries", domain="example.org")["result"] == "success"
    _seed(sb, whitelist_spelling="document")
    assert err("unknown_method")(sb("delete-whitelist-entry", domain="example.org", id=1))
    assert sb("get-whitelistentries", domain="example.org")["result"] == "success"


def test_the_error_shape_can_be_the_error_object_or_the_message_alone(sb):
    _seed(sb, error_shape="error")
    answer = sb("delete-domain", domain="nowhere.example")
    assert answer["result"] == "error" and answer["error"]["code"] == "domain_not_found"
    assert "params" not in answer
    _seed(sb, error_shape="message_only")
    answer = sb("delete-domain", domain="nowhere.example")
    assert answer == {"result": "error", "params": {"message": "domain not found: nowhere.example"}}


def test_the_vendor_clients_get_quarantine_with_its_empty_options_is_answered(sb):
    sb("add-domain", domain="example.org", host="mx.example.org", username=None, password=None)
    options = dict.fromkeys(
        ("from", "to", "sort", "sortReverse", "search_from", "search_to", "search_subject")
    )
    assert sb("get-quarantine", domain="example.org", **options)["params"]["count"] >= 2
