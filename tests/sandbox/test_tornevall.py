"""The Tornevall SpamAssassin emulator, driven with raw HTTP written from the endpoint document."""

import pytest
import requests

from spamfilter_plugin.sandbox.tornevall import ACCOUNTS, API_KEY, APPLICATION

EMAIL = "test@tornevall-domain.com"


@pytest.fixture
def tv(tornevall_sandbox):
    def call(verb, *, headers=None, **params):
        auth = (APPLICATION, API_KEY) if headers is None else None
        return requests.post(
            f"{tornevall_sandbox.url}/{verb}", json=params, headers=headers, auth=auth, timeout=5
        )

    call.sandbox = tornevall_sandbox
    return call


def answer(resp, verb):
    """The verb's answer, from the default shape: wrapped in ``response``, as Tornevall's
    own client reads it."""
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert list(doc) == ["response"]
    assert list(doc["response"]) == [f"{verb}Response"]
    return doc["response"][f"{verb}Response"]


def error(resp, status):
    assert resp.status_code == status, resp.text
    assert resp.json()["errors"]["code"] == status
    return resp.json()["errors"]["faultstring"]


def test_user_whitelist_matches_the_document_example(tv):
    assert answer(tv("getUserWhiteList", email=EMAIL), "getUserWhiteList") == [
        "*@*.whitelisted.com",
        "*@marvel.com",
        "tomas.tornevall@second.domain.com",
    ]


def test_global_lists(tv):
    assert answer(tv("getGlobalWhiteList"), "getGlobalWhiteList") == [
        "*@*.eff.org",
        "*@*.facebookmail.com",
        "*@*.jetbrains.com",
        "*@*.youtube.com",
        "*@eff.org",
        "*@facebookmail.com",
        "*@jetbrains.com",
        "*@youtube.com",
    ]
    assert "*yachtmarket*" in answer(tv("getGlobalBlackListSender"), "getGlobalBlackListSender")


def test_global_whitelist_hosts_come_in_pairs(tv):
    assert (
        answer(tv("setGlobalWhitelistHost", host="example.net"), "setGlobalWhitelistHost") is True
    )
    listed = answer(tv("getGlobalWhiteList"), "getGlobalWhiteList")
    assert "*@example.net" in listed and "*@*.example.net" in listed
    assert (
        answer(tv("setGlobalWhitelistHost", host="example.net"), "setGlobalWhitelistHost") is False
    )
    assert (
        answer(tv("delGlobalWhitelistHost", host="example.net"), "delGlobalWhitelistHost") is True
    )
    listed = answer(tv("getGlobalWhiteList"), "getGlobalWhiteList")
    assert "*@example.net" not in listed and "*@*.example.net" not in listed
    assert (
        answer(tv("delGlobalWhitelistHost", host="example.net"), "delGlobalWhitelistHost") is False
    )
    assert "host" in error(tv("setGlobalWhitelistHost", host="not a host"), 400)
    assert error(tv("setGlobalWhitelistHost"), 400) == "Missing parameter: host"


def test_verify_account(tv):
    assert (
        answer(tv("verifyAccount", email=EMAIL, password=ACCOUNTS[EMAIL]), "verifyAccount") is True
    )
    assert answer(tv("verifyAccount", email=EMAIL, password="wrong"), "verifyAccount") is False
    assert (
        answer(tv("verifyAccount", email="nobody@x.example", password="x"), "verifyAccount")
        is False
    )
    assert error(tv("verifyAccount", email=EMAIL), 400) == "Missing parameter: password"


def test_address_whitelist(tv):
    assert (
        answer(
            tv("setAddressWhiteList", email=EMAIL, emailmask="*@*.domain.com"),
            "setAddressWhiteList",
        )
        is True
    )
    assert (
        answer(
            tv("setAddressWhiteList", email=EMAIL, emailmask="*@*.domain.com"),
            "setAddressWhiteList",
        )
        is False
    )
    assert "*@*.domain.com" in answer(tv("getUserWhiteList", email=EMAIL), "getUserWhiteList")
    assert (
        answer(
            tv("removeAddressWhiteList", email=EMAIL, emailmask="*@*.domain.com"),
            "removeAddressWhiteList",
        )
        is True
    )
    assert (
        answer(
            tv("removeAddressWhiteList", email=EMAIL, emailmask="*@*.domain.com"),
            "removeAddressWhiteList",
        )
        is False
    )
    assert "emailmask" in error(tv("setAddressWhiteList", email=EMAIL, emailmask="no mask"), 400)
    assert error(
        tv("setAddressWhiteList", email="nobody@x.example", emailmask="*@a.com"), 404
    ).startswith("No such account")


def test_spamassassin_options_structure(tv):
    opts = answer(tv("getSpamAssassinOptions", email=EMAIL), "getSpamAssassinOptions")
    assert set(opts) == {"preferences", "descriptions", "booleans", "strict"}
    assert opts["preferences"]["required_hits"] == "5"
    assert opts["strict"] == {"bayes_auto_learn": "1", "use_auto_whitelist": "1"}
    assert opts["booleans"]["use_bayes"] == "1" and opts["booleans"]["ok_locales"] == "0"
    assert opts["descriptions"]["use_pyzor"] == "Not described"


def test_update_option(tv):
    assert (
        answer(
            tv("updateSpamAssassinOption", email=EMAIL, preference="required_hits", value="4.5"),
            "updateSpamAssassinOption",
        )
        is True
    )
    assert (
        answer(
            tv("updateSpamAssassinOption", email=EMAIL, preference="use_bayes", value="0"),
            "updateSpamAssassinOption",
        )
        is True
    )
    prefs = answer(tv("getSpamAssassinOptions", email=EMAIL), "getSpamAssassinOptions")[
        "preferences"
    ]
    assert prefs["required_hits"] == "4.5" and prefs["use_bayes"] == "0"
    other = answer(
        tv("getSpamAssassinOptions", email="other@tornevall-domain.com"), "getSpamAssassinOptions"
    )
    assert other["preferences"]["required_hits"] == "5"  # per address


@pytest.mark.parametrize(
    "pref,value,status",
    [
        ("bayes_auto_learn", "0", 403),
        ("use_auto_whitelist", "1", 403),  # strict: refused on update
        ("use_bayes", "yes", 400),
        ("report_safe", "3", 400),
        ("required_hits", "lots", 400),
        ("ok_locales", "Swedish!", 400),
        ("no_such_pref", "1", 400),
    ],
)
def test_update_option_refusals(tv, pref, value, status):
    message = error(
        tv("updateSpamAssassinOption", email=EMAIL, preference=pref, value=value), status
    )
    assert pref in message


def test_authentication_schemes(tv):
    """Basic with the application id and key by default, as Tornevall's own client sends;
    bearer and header on request."""
    assert error(tv("getGlobalWhiteList", headers={}), 401)
    wrong = requests.post(
        f"{tv.sandbox.url}/getGlobalWhiteList", auth=(APPLICATION, "wrong"), json={}, timeout=5
    )
    assert error(wrong, 401)
    bearer = {"Authorization": f"Bearer {API_KEY}"}
    assert error(tv("getGlobalWhiteList", headers=bearer), 401)
    emulator = tv.sandbox.emulator
    emulator.seed_data({"auth_scheme": "header"})
    assert answer(tv("getGlobalWhiteList", headers={"X-Api-Key": API_KEY}), "getGlobalWhiteList")
    assert error(tv("getGlobalWhiteList"), 401)
    emulator.seed_data({"auth_scheme": "bearer"})
    assert answer(tv("getGlobalWhiteList", headers=bearer), "getGlobalWhiteList")
    assert error(tv("getGlobalWhiteList"), 401)
    with pytest.raises(ValueError, match="auth_scheme"):
        emulator.seed_data({"auth_scheme": "digest"})


def test_document_shape_and_message_errors_on_request(tv):
    tv.sandbox.emulator.seed_data({"answer_shape": "document", "error_field": "message"})
    resp = tv("getUserWhiteList", email=EMAIL)
    assert list(resp.json()) == ["getUserWhiteListResponse"]
    resp = tv("getUserWhiteList", email="nobody@x.example")
    assert resp.status_code == 404
    assert resp.json() == {"errors": {"code": 404, "message": "No such account: nobody@x.example"}}


def test_a_refusing_verb_answers_false_and_changes_nothing(tv):
    tv.sandbox.emulator.seed_data({"refuse": ["setAddressWhiteList"]})
    resp = tv("setAddressWhiteList", email=EMAIL, emailmask="*@new.example")
    assert answer(resp, "setAddressWhiteList") is False
    assert "*@new.example" not in answer(tv("getUserWhiteList", email=EMAIL), "getUserWhiteList")


def test_unknown_verb_method_and_body(tv):
    assert error(tv("getEverything"), 404) == "Unknown verb: getEverything"
    resp = requests.get(
        f"{tv.sandbox.url}/getGlobalWhiteList", auth=(APPLICATION, API_KEY), timeout=5
    )
    assert error(resp, 405)
    resp = requests.post(
        f"{tv.sandbox.url}/getUserWhiteList",
        data=b"{oops",
        timeout=5,
        auth=(APPLICATION, API_KEY),
        headers={"Content-Type": "application/json"},
    )
    assert error(resp, 400) == "The request body is not JSON"


def test_form_encoded_bodies_are_accepted(tv):
    resp = requests.post(
        f"{tv.sandbox.url}/getUserWhiteList",
        data={"email": EMAIL},
        timeout=5,
        auth=(APPLICATION, API_KEY),
    )
    assert "*@marvel.com" in answer(resp, "getUserWhiteList")
