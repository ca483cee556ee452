"""The SpamPort emulator, driven with raw HTTP written from the SpamPort API document."""

import re

import pytest
import requests

from spamfilter_plugin.sandbox.spamport import OUTDATED, PASSWORD, USERNAME


@pytest.fixture
def sp(spamport_sandbox):
    def call(function=None, *, username=USERNAME, password=PASSWORD, version="1.8", **fields):
        data = {"username": username, "password": password, "version": version, **fields}
        if function is not None:
            data["function"] = function
        data = {k: v for k, v in data.items() if v is not None}
        resp = requests.post(spamport_sandbox.url, data=data, timeout=5)
        assert resp.status_code == 200
        return resp.json()

    call.sandbox = spamport_sandbox
    return call


def add(sp, domain="example.com", **over):
    fields = {
        "domain": domain,
        "transport": "mail.example.com",
        "transport_type": "hostname",
        "archive": "14",
        "report_to": "",
        "weekly": "0",
        "noscan": "0",
        "spamscore": "normal",
        "greylist": "0",
    }
    fields.update(over)
    return sp("add", **fields)


def ok(message):
    return {"message": message, "status": "success"}


def fail(message):
    return {"message": message, "status": "failure"}


def test_add_info_and_get_domains(sp):
    assert add(sp, "example.com", report_to="info@example.com", greylist="1") == ok(
        "Domain added successfully"
    )
    assert add(sp, "second.example", transport="2001:db8::25", transport_type="ip") == ok(
        "Domain added successfully"
    )
    info = sp("info", domain="example.com")
    assert info["status"] == "success"
    assert info["message"] == {
        "domain": "example.com",
        "transport": "smtp:mail.example.com",
        "added": info["message"]["added"],
        "report_to": "info@example.com",
        "spamscore": "normal",
        "noscan": "0",
        "greylist": "1",
    }
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", info["message"]["added"])
    listed = sp("get_domains")["message"]
    assert [d["domain"] for d in listed] == ["example.com", "second.example"]
    assert listed[1]["transport"] == "smtp:[2001:db8::25]"
    assert set(listed[0]) == {"domain", "transport", "added", "report_to"}


def test_remove(sp):
    add(sp)
    assert sp("remove", domain="example.com") == ok("Domain deleted successfully")
    assert sp("remove", domain="example.com") == fail("Domain not found")
    assert sp("get_domains") == fail("No domains found")


def test_login_code_and_login_url(sp):
    add(sp)
    answer = sp("login", domain="example.com")
    code = answer["message"]
    assert answer["status"] == "success" and re.fullmatch(r"[0-9a-f]{32}", code)
    page = requests.get(f"{sp.sandbox.root}/login/example.com/{code}", timeout=5)
    assert page.status_code == 200 and "Logged in" in page.text
    again = requests.get(f"{sp.sandbox.root}/login/example.com/{code}", timeout=5)
    assert again.status_code == 403  # single use


def test_login_code_expires_after_a_minute(sp):
    add(sp)
    emulator = sp.sandbox.emulator
    code = sp("login", domain="example.com")["message"]
    real = emulator.clock
    emulator.clock = lambda: real() + 61
    try:
        assert (
            requests.get(f"{sp.sandbox.root}/login/example.com/{code}", timeout=5).status_code
            == 403
        )
    finally:
        emulator.clock = real


def test_new_password(sp):
    add(sp)
    first, second = (
        sp("new_password", domain="example.com"),
        sp("new_password", domain="example.com"),
    )
    assert first["status"] == second["status"] == "success"
    assert len(first["message"]) >= 12 and first["message"] != second["message"]


def test_setters(sp):
    add(sp)
    updated = ok("Domain updated")
    assert sp("set_outgoing", domain="example.com", outgoing="192.0.2.5", transport="ip") == updated
    assert (
        sp("set_report_to", domain="example.com", report_to="r@example.com", weekly="1") == updated
    )
    assert sp("set_filter", domain="example.com", noscan="1") == updated
    assert sp("set_spamscore", domain="example.com", spamscore="veryhigh") == updated
    assert sp("set_greylist", domain="example.com", greylist="1") == updated
    info = sp("info", domain="example.com")["message"]
    assert info["transport"] == "smtp:192.0.2.5" and info["report_to"] == "r@example.com"
    assert (info["noscan"], info["spamscore"], info["greylist"]) == ("1", "veryhigh", "1")
    assert sp.sandbox.emulator.domains["example.com"]["weekly"] == "1"
    assert (
        sp("set_report_to", domain="example.com", report_to="") == updated
    )  # empty disables reports
    assert sp("info", domain="example.com")["message"]["report_to"] == ""


@pytest.mark.parametrize(
    "function",
    [
        "remove",
        "login",
        "info",
        "new_password",
        "set_outgoing",
        "set_report_to",
        "set_filter",
        "set_spamscore",
        "set_greylist",
    ],
)
def test_domain_functions_on_unknown_and_missing_domains(sp, function):
    assert sp(function, domain="absent.example") == fail("Domain not found")
    assert sp(function) == fail("No domain supplied")
    assert sp(function, domain="not a domain") == fail("Invalid domain name supplied")


def test_missing_credentials(sp):
    assert sp("get_domains", username=None) == fail("No username supplied")
    assert sp("get_domains", password=None) == fail("No password supplied")


def test_outdated_version(sp):
    assert sp("get_domains", version="1.5") == fail(OUTDATED)
    assert sp("get_domains", version="1.9") == fail(OUTDATED)
    assert sp("get_domains", version="one") == fail(OUTDATED)
    assert sp("get_domains", version=None) == fail(OUTDATED)


@pytest.mark.parametrize("version", ["1.6", "1.7", "1.8"])
def test_versions_real_clients_send_are_accepted(sp, version):
    # the PHP class the document links sends 1.7; the document promises compatibility
    assert sp("get_domains", version=version) == fail("No domains found")


def test_minimum_version_is_configurable(spamport_sandbox, sp):
    spamport_sandbox.emulator.seed_data({"min_version": "1.8"})
    assert sp("get_domains", version="1.7") == fail(OUTDATED)
    assert sp("get_domains", version="1.8") == fail("No domains found")
    with pytest.raises(ValueError, match="min_version"):
        spamport_sandbox.emulator.seed_data({"min_version": "latest"})


def test_unknown_action(sp):
    assert sp("explode") == fail("Unknown action")
    assert sp(None) == fail("Unknown action")


def test_login_blocked_after_repeated_bad_credentials(sp):
    for _ in range(4):
        assert sp("get_domains", password="wrong") == fail("Invalid username or password")
    assert sp("get_domains", password="wrong") == fail("Invalid username or password")
    # the fifth failure blocked this IP: even good credentials are refused now
    assert sp("get_domains") == fail("Login blocked")
    assert sp.sandbox.emulator.snapshot()["blocked_ips"] == ["127.0.0.1"]
    requests.post(f"{sp.sandbox.root}/_sandbox/seed", json={"unblock": True}, timeout=5)
    assert sp("get_domains") == fail("No domains found")


def test_add_errors(sp):
    add(sp)
    assert add(sp) == fail("Domain already exists: example.com")
    assert add(sp, "bad_domain!") == fail("Invalid domain: bad_domain!")
    assert add(sp, "x.example", transport_type="mx") == fail(
        "transport_type can be either 'hostname' or 'ip'"
    )
    assert add(sp, "x.example", transport="mail.example.com", transport_type="ip") == fail(
        "Invalid transport: mail.example.com"
    )
    assert add(sp, "x.example", transport="") == fail("Invalid transport: ")
    assert add(sp, "x.example", archive="30") == fail(
        "Invalid data for archiving (must be 14 or 365): 30"
    )
    assert add(sp, "x.example", report_to="nobody") == fail(
        "Invalid reporting mail address supplied: nobody"
    )
    assert add(sp, "x.example", spamscore="extreme") == fail("Unknown error")
    assert add(sp, "x.example", noscan="2") == fail("Unknown error")
    assert "x.example" not in sp.sandbox.emulator.domains


def test_licences(sp):
    requests.post(
        f"{sp.sandbox.root}/_sandbox/seed",
        json={"license_limit": 2, "archive_license_limit": 1},
        timeout=5,
    )
    assert add(sp, "a.example", archive="365") == ok("Domain added successfully")
    assert add(sp, "b.example", archive="365") == fail("Archive license fully used")
    assert add(sp, "b.example") == ok("Domain added successfully")
    assert add(sp, "c.example") == fail("License fully used")


def test_setter_errors(sp):
    add(sp)
    assert sp("set_outgoing", domain="example.com", outgoing="m.example", transport="x") == fail(
        "transport_type can be either 'hostname' or 'ip'"
    )
    assert sp("set_outgoing", domain="example.com", outgoing="999.1.1.1", transport="ip") == fail(
        "Invalid transport: 999.1.1.1"
    )
    assert sp("set_report_to", domain="example.com", report_to="bad@") == fail(
        "Invalid reporting mail address supplied: bad@"
    )
    assert sp("set_filter", domain="example.com", noscan="yes") == fail("Unknown error")
    assert sp("set_spamscore", domain="example.com", spamscore="max") == fail("Unknown error")
    assert sp("set_greylist", domain="example.com") == fail("Unknown error")


def test_only_post_is_accepted(sp):
    resp = requests.get(sp.sandbox.url, timeout=5)
    assert resp.status_code == 405 and resp.json() == fail("Unknown error")


def test_special_characters_in_credentials_survive_form_encoding(sp):
    assert "&" in PASSWORD and "#" in PASSWORD and "+" in PASSWORD
    assert sp("get_domains") == fail("No domains found")  # authenticated


def test_request_log_redacts_the_password(sp):
    sp("get_domains")
    log = requests.get(f"{sp.sandbox.root}/_sandbox/requests", timeout=5).json()
    assert log[-1]["path"] == "/api" and "function=get_domains" in log[-1]["body"]
    text = str(log)
    assert PASSWORD not in text and "sandbox-Pa55" not in text


def test_a_request_shaped_like_the_linked_php_class_is_accepted(sp):
    # addDomain() of the PHP class the document links, with its defaults: version 1.7, a
    # plugin field, and PHP's false sent as empty noscan, greylist and report_to
    answer = sp(
        "add",
        version="1.7",
        plugin="phpclass",
        domain="php.example",
        transport="mail.php.example",
        transport_type="hostname",
        archive="14",
        report_to="",
        noscan="",
        spamscore="normal",
        greylist="",
        weekly="0",
    )
    assert answer["status"] == "success", answer
    assert sp.sandbox.emulator.domains["php.example"]["noscan"] == "0"
