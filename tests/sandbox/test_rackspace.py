"""The Rackspace mailbox spam emulator, driven with raw signed HTTP written from the API
document."""

import datetime as dt
import xml.etree.ElementTree as ET
from zoneinfo import ZoneInfo

import pytest
import requests

from spamfilter_plugin.sandbox.rackspace import SECRET_KEY, USER_KEY, signature

UA = "Rackspace Management Interface"
BASE = "/customers/12345678/domains/example.com/ex/mailboxes/alex.smith/spam"


def test_published_signature_vector():
    published = (
        "eGbq9/2hcZsRlr1JV1PiRackspace Management Interface"
        "20010308143725QHOvchm/40czXhJ1OxfxK7jDHr3t"
    )
    user_key, timestamp, secret = (
        "eGbq9/2hcZsRlr1JV1Pi",
        "20010308143725",
        "QHOvchm/40czXhJ1OxfxK7jDHr3t",
    )
    assert user_key + UA + timestamp + secret == published
    assert signature(user_key, UA, timestamp, secret) == "46VIwd66mOFGG8IkbgnLlXnfnkU="


def stamp(offset=0):
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)).strftime("%Y%m%d%H%M%S")


@pytest.fixture
def rs(rackspace_sandbox):
    def call(
        method,
        path,
        *,
        fmt="json",
        data=None,
        user_agent=UA,
        sign_agent=None,
        offset=0,
        secret=SECRET_KEY,
        key=USER_KEY,
        signed=True,
    ):
        ts = stamp(offset)
        headers = {
            "User-Agent": user_agent,
            "Accept": "application/json" if fmt == "json" else "text/xml",
        }
        if signed:
            sig = signature(key, user_agent if sign_agent is None else sign_agent, ts, secret)
            headers["X-Api-Signature"] = f"{key}:{ts}:{sig}"
        return requests.request(
            method, rackspace_sandbox.url + path, data=data, headers=headers, timeout=5
        )

    call.sandbox = rackspace_sandbox
    return call


def fault(resp, status, message=None):
    assert resp.status_code == status, resp.text
    (kind,) = resp.json().values()
    assert kind["code"] == status
    if message is not None:
        assert kind["message"] == message
    return kind["message"]


def test_settings_show_json_and_xml(rs):
    resp = rs("GET", f"{BASE}/settings")
    assert resp.json() == {
        "filterLevel": "on",
        "sendToDomainQuarantine": False,
        "quarantineOwner": "",
    }
    resp = rs("GET", f"{BASE}/settings", fmt="xml")
    assert resp.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(resp.content)
    ns = "{urn:xml:MailboxSpamSettings}"
    assert root.tag == f"{ns}MailboxSpamSettings"
    assert (
        root.findtext(f"{ns}filterLevel") == "on"
        and root.findtext(f"{ns}sendToDomainQuarantine") == "false"
    )
    assert root.find(f"{ns}quarantineOwner") is not None


def test_settings_edit_rules(rs):
    assert (
        rs(
            "PUT",
            f"{BASE}/settings",
            data={
                "filterlevel": "exclusive",
                "sendtodomainquarantine": "true",
                "quarantineowner": "boss@example.com",
            },
        ).status_code
        == 200
    )
    assert rs("GET", f"{BASE}/settings").json() == {
        "filterLevel": "exclusive",
        "sendToDomainQuarantine": True,
        "quarantineOwner": "boss@example.com",
    }
    assert rs("PUT", f"{BASE}/settings", data={"filterlevel": "off"}).status_code == 200
    assert (
        rs("GET", f"{BASE}/settings").json()["sendToDomainQuarantine"] is False
    )  # "off" forces false
    rs("PUT", f"{BASE}/settings", data={"filterlevel": "on", "removeQuarantineOwner": "true"})
    assert rs("GET", f"{BASE}/settings").json()["quarantineOwner"] == ""


def test_settings_errors(rs):
    msg = "Invalid filterLevel, input must be: on/off/exclusive"
    fault(rs("PUT", f"{BASE}/settings", data={"filterlevel": "max"}), 400, msg)
    fault(
        rs("PUT", f"{BASE}/settings", data={"sendtodomainquarantine": "true"}), 400, msg
    )  # filterlevel required
    fault(rs("POST", f"{BASE}/settings", data={"filterlevel": "on"}), 405)
    fault(
        rs("GET", "/customers/12345678/domains/example.com/ex/mailboxes/nobody/spam/settings"), 404
    )


@pytest.mark.parametrize(
    "name,root,item,entry",
    [
        ("blacklist", "blacklist", "address", "name1@spam.com"),
        ("blocklist", "blocklist", "address", "name1@spam.com"),
        ("safelist", "safelist", "address", "name1@notspam.com"),
        ("ipblacklist", "ipBlacklist", "ip", "216.12.34.1"),
        ("ipblocklist", "ipBlocklist", "ip", "216.12.34.1"),
        ("ipsafelist", "ipSafelist", "ip", "192.168.0.1"),
    ],
)
def test_list_index_add_delete_in_json_and_xml(rs, name, root, item, entry):
    assert rs("GET", f"{BASE}/{name}").json() == {"addresses": []}
    assert rs("POST", f"{BASE}/{name}/{entry}", data={}).status_code == 200
    assert rs("POST", f"{BASE}/{name}/{entry}", data={}).status_code == 200  # already there: fine
    assert rs("GET", f"{BASE}/{name}").json() == {"addresses": [entry]}
    doc = ET.fromstring(rs("GET", f"{BASE}/{name}", fmt="xml").content)
    ns = f"{{urn:xml:{root}}}"
    assert doc.tag == f"{ns}{root}"
    assert [e.text for e in doc.find(f"{ns}addresses").findall(f"{ns}{item}")] == [entry]
    assert rs("DELETE", f"{BASE}/{name}/{entry}").status_code == 200
    word = name.removeprefix("ip")
    fault(rs("DELETE", f"{BASE}/{name}/{entry}"), 400, f"{entry} is not found on the {word}")


def test_legacy_and_new_list_names_share_one_list(rs):
    rs("POST", f"{BASE}/blacklist/a@spam.com")
    assert rs("GET", f"{BASE}/blocklist").json() == {"addresses": ["a@spam.com"]}
    rs("POST", f"{BASE}/ipblocklist/216.12.34.9")
    assert rs("GET", f"{BASE}/ipblacklist").json() == {"addresses": ["216.12.34.9"]}


def test_address_entry_rules(rs):
    fault(rs("POST", f"{BASE}/blacklist/abc"), 400, "invalid email address: abc")
    fault(rs("POST", f"{BASE}/safelist/abc"), 400, "invalid email address: abc")
    fault(
        rs("POST", f"{BASE}/blacklist/example.com"),
        400,
        "Adding example.com would blacklist the current domain",
    )
    fault(
        rs("POST", f"{BASE}/blacklist/@example.com"),
        400,
        "Adding @example.com would blacklist the current domain",
    )
    fault(
        rs("POST", f"{BASE}/blocklist/example.com"),
        400,
        "Adding example.com would block the current domain",
    )
    assert rs("POST", f"{BASE}/safelist/example.com").status_code == 200  # safelisting it is fine
    fault(rs("POST", f"{BASE}/blacklist/@example.%25"), 400, "invalid email address: @example.%")
    fault(rs("POST", f"{BASE}/blacklist/a%25@example.org"), 400)  # no wildcards in addresses
    assert rs("POST", f"{BASE}/blacklist/@%25.spam.com").status_code == 200
    assert rs("POST", f"{BASE}/safelist/@examp%25.com").status_code == 200


def test_ip_entry_rules(rs):
    fault(rs("POST", f"{BASE}/ipsafelist/123"), 400, "invalid ip address: 123")
    for bad in ("216.%25.34.1", "%25.%25.%25.%25", "300.1.1.1", "216.12.34"):
        fault(rs("POST", f"{BASE}/ipblacklist/{bad}"), 400)
    for good in ("216.12.34.%25", "216.12.%25.%25", "216.%25.%25.%25", "2001:db8::1"):
        assert rs("POST", f"{BASE}/ipblacklist/{good}").status_code == 200


def test_bulk_edit(rs):
    rs("POST", f"{BASE}/blacklist/@examp%25.com")
    resp = rs(
        "PUT",
        f"{BASE}/blacklist",
        data={"addList": "@%.example.org,abc@example.org", "removeList": "@examp%.com"},
    )
    assert resp.status_code == 200
    assert rs("GET", f"{BASE}/blacklist").json() == {
        "addresses": ["@%.example.org", "abc@example.org"]
    }
    resp = rs(
        "PUT",
        f"{BASE}/ipblacklist",
        data={"addList": "216.12.34.%,216.12.%.%", "removeList": "216.%.%.%"},
    )
    assert resp.status_code == 200
    assert rs("GET", f"{BASE}/ipblacklist").json() == {"addresses": ["216.12.34.%", "216.12.%.%"]}
    fault(
        rs("PUT", f"{BASE}/safelist", data={"addList": "good@x.org,bad"}),
        400,
        "invalid email address: bad",
    )
    assert rs("GET", f"{BASE}/safelist").json() == {"addresses": []}  # all or nothing
    fault(rs("PUT", f"{BASE}/safelist", data={}), 400)


def test_signature_failures_are_403(rs):
    fault(rs("GET", f"{BASE}/settings", signed=False), 403)
    fault(rs("GET", f"{BASE}/settings", secret="wrong-secret"), 403)
    fault(rs("GET", f"{BASE}/settings", key="unknown-key"), 403)
    # the hashed User-Agent must be byte-identical to the header sent
    fault(rs("GET", f"{BASE}/settings", sign_agent=UA + " "), 403)
    assert rs("GET", f"{BASE}/settings", user_agent="spamfilter-plugin/0.1.0").status_code == 200


def test_clock_skew_is_refused(rs):
    assert rs("GET", f"{BASE}/settings", offset=-200).status_code == 200
    fault(rs("GET", f"{BASE}/settings", offset=-400), 403)
    fault(rs("GET", f"{BASE}/settings", offset=400), 403)


def test_rate_limit(rs):
    rs.sandbox.emulator.seed_data({"rate_limit": 3})
    for _ in range(3):
        assert rs("GET", f"{BASE}/settings").status_code == 200
    fault(rs("GET", f"{BASE}/settings"), 403, "Exceeded request limits")
    emulator = rs.sandbox.emulator
    real = emulator.clock
    emulator.clock = lambda: real() + 61
    try:
        assert rs("GET", f"{BASE}/settings", offset=61).status_code == 200
    finally:
        emulator.clock = real


def test_xml_faults(rs):
    resp = rs("PUT", f"{BASE}/settings", data={"filterlevel": "max"}, fmt="xml")
    assert resp.status_code == 400
    root = ET.fromstring(resp.content)
    assert root.tag.endswith("badRequestFault") and root.findtext("{*}code") == "400"


@pytest.mark.parametrize(
    "fields",
    [
        {"filterLevel": "exclusive", "sendToDomainQuarantine": "true"},  # real clients' spelling
        {"FILTERLEVEL": "exclusive", "SendToDomainQuarantine": "TRUE"},
    ],
)
def test_form_field_names_are_matched_case_insensitively(rs, fields):
    assert rs("PUT", f"{BASE}/settings", data=fields).status_code == 200
    settings = rs("GET", f"{BASE}/settings").json()
    assert settings["filterLevel"] == "exclusive" and settings["sendToDomainQuarantine"] is True
    resp = rs("PUT", f"{BASE}/blocklist", data={"AddList": "spam@spam.example"})
    assert resp.status_code == 200
    assert "spam@spam.example" in rs("GET", f"{BASE}/blocklist").json()["addresses"]


def test_signature_timestamp_zone_is_configurable(rs):
    emulator = rs.sandbox.emulator
    zone = ZoneInfo("Asia/Kolkata")  # UTC+05:30, far outside the 300 s window
    local = dt.datetime.now(zone).strftime("%Y%m%d%H%M%S")
    utc_offset = int(
        (
            dt.datetime.strptime(local, "%Y%m%d%H%M%S")
            - dt.datetime.now(dt.UTC).replace(tzinfo=None)
        ).total_seconds()
    )
    fault(rs("GET", f"{BASE}/settings", offset=utc_offset), 403)  # signed in local time
    emulator.seed_data({"timestamp_timezone": "Asia/Kolkata"})
    assert rs("GET", f"{BASE}/settings", offset=utc_offset).status_code == 200
    assert emulator.snapshot()["timestamp_timezone"] == "Asia/Kolkata"
    with pytest.raises(ValueError, match="timestamp_timezone"):
        emulator.seed_data({"timestamp_timezone": "Mars/Olympus"})
