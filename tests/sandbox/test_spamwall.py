"""The SpamWall emulator, driven with raw HTTP written from the SpamWall API guide."""

import xml.etree.ElementTree as ET

import pytest
import requests

from spamfilter_plugin.sandbox.spamwall import ADMIN, DOMAIN_ADMIN, USER


@pytest.fixture
def sw(spamwall_sandbox):
    def call(command, who=ADMIN, **params):
        query = {"command": command, **params} if command is not None else params
        resp = requests.post(
            spamwall_sandbox.url,
            params=query,
            data={"username": who[0], "password": who[1]},
            timeout=5,
        )
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/xml")
        root = ET.fromstring(resp.content)
        assert root.tag == "Result"
        return root

    call.sandbox = spamwall_sandbox
    return call


def code(root):
    return int(root.findtext("Code")), root.findtext("Message")


def test_responses_follow_the_documented_envelope(sw):
    root = sw("verification_method")
    assert [child.tag for child in root] == ["Code", "Message"]
    assert code(root) == (200, "1")


def test_bad_login_is_401(sw):
    assert code(sw("list_domains", who=("admin", "wrong"))) == (401, "Login details were invalid")
    resp = requests.get(sw.sandbox.url, params={"command": "list_domains"}, timeout=5)
    assert "<Code>401</Code>" in resp.text  # credentials travel in the POST body only


def test_unknown_or_missing_command_is_400(sw):
    assert code(sw("explode"))[0] == 400
    assert code(sw(None))[0] == 400


def test_domain_commands(sw):
    assert code(sw("add_domain", name="example.com", ip="192.0.2.1", port="25")) == (
        200,
        "Domain added to domain list successfully",
    )
    assert code(sw("add_domain", name="example.com", ip="192.0.2.1", port="25")) == (
        406,
        "Domain 'example.com' is already in domain list",
    )
    assert code(sw("change_domain", name="example.com", ip="2001:db8::1", port="2525")) == (
        200,
        "Domain updated successfully",
    )
    domains = sw("list_domains").find("Domains")
    (d,) = domains.findall("Domain")
    assert {c.tag: c.text for c in d} == {
        "Host": "example.com",
        "Type": "smtp",
        "IP": "2001:db8::1",
        "Port": "2525",
    }
    assert code(sw("delete_domain", name="example.com")) == (
        200,
        "Domain removed from domain list successfully",
    )
    assert code(sw("delete_domain", name="example.com")) == (
        406,
        "Domain 'example.com' is not in domain list",
    )
    assert code(sw("change_domain", name="example.com", ip="192.0.2.1", port="25")) == (
        406,
        "Domain 'example.com' is not in domain list",
    )


@pytest.mark.parametrize(
    "params,message",
    [
        ({"name": "bad domain", "ip": "192.0.2.1", "port": "25"}, "Invalid domain name"),
        ({"name": "a.example", "ip": "mail.example.com", "port": "25"}, "Invalid IP address"),
        ({"name": "a.example", "ip": "192.0.2.1", "port": "70000"}, "Invalid port"),
        ({"name": "a.example", "ip": "192.0.2.1", "port": "smtp"}, "Invalid port"),
    ],
)
def test_domain_user_errors(sw, params, message):
    assert code(sw("add_domain", **params)) == (406, message)
    assert code(sw("change_domain", **params)) == (406, message)


def test_delete_domain_invalid_name_and_missing_parameter(sw):
    assert code(sw("delete_domain", name="-bad-")) == (406, "Invalid domain name")
    assert code(sw("add_domain", name="a.example", ip="192.0.2.1")) == (
        400,
        "Missing parameter: port",
    )


@pytest.mark.parametrize(
    "command",
    [
        "list_domains",
        "add_domain",
        "add_spam_bypass",
        "set_verification_method",
        "recipients_list",
        "recipients_transport_sync",
    ],
)
def test_admin_only_commands(sw, command):
    assert code(sw(command, who=DOMAIN_ADMIN))[0] == 403
    assert code(sw(command, who=USER))[0] == 403


def test_user_commands_as_admin(sw):
    assert code(
        sw(
            "add_user",
            username="bob",
            password="pw-bob-1",
            email="bob@other.example",
            full_name="Bob B",
        )
    ) == (200, "User added successfully")
    users = sw("list_users", user="all").find("Users").findall("User")
    rows = {u.findtext("Username"): u for u in users}
    assert set(rows) == {"bob", USER[0]}
    assert (
        rows["bob"].findtext("Email") == "bob@other.example"
        and rows["bob"].findtext("Name") == "Bob B"
    )
    assert [c.tag for c in rows["bob"]] == ["Username", "Name", "Email", "Last_login"]
    assert code(
        sw(
            "change_user",
            user="bob",
            username="robert",
            email="robert@other.example",
            full_name="Robert",
        )
    ) == (200, "User updated successfully")
    assert code(sw("change_user_password", user="robert", newpass="new-pw-2")) == (
        200,
        "User updated successfully",
    )
    assert code(sw("list_domains", who=("robert", "new-pw-2")))[0] == 403  # logs in, but is a user
    assert code(sw("delete_user", user="robert")) == (200, "User deleted successfully")
    assert code(sw("list_users", user="robert@other.example")).__getitem__(0) == 200
    assert sw("list_users", user="robert@other.example").find("Users").findall("User") == []


def test_user_errors(sw):
    sw("add_user", username="bob", password="p", email="bob@example.com", full_name="B")
    assert code(
        sw("add_user", username="bob", password="p", email="bob2@example.com", full_name="B")
    ) == (406, "Username already in use")
    assert code(
        sw("add_user", username="carl", password="p", email="not-an-email", full_name="C")
    ) == (406, "Invalid Email")
    assert code(
        sw("change_user", user="bob", username=USER[0], email="bob@example.com", full_name="B")
    ) == (406, "Username already in use")
    assert code(sw("change_user", user="bob", username="bob", email="bad", full_name="B")) == (
        406,
        "Invalid Email",
    )


def test_domain_admin_is_restricted_to_their_domain(sw):
    sw("add_user", username="eve", password="p", email="eve@other.example", full_name="Eve")
    names = [
        u.findtext("Username") for u in sw("list_users", who=DOMAIN_ADMIN, user="all").iter("User")
    ]
    assert names == [USER[0]]
    assert code(sw("list_users", who=DOMAIN_ADMIN, user="eve@other.example")) == (
        403,
        "Insufficient access to specified domain",
    )
    assert code(
        sw(
            "add_user",
            who=DOMAIN_ADMIN,
            username="mallory",
            password="p",
            email="m@other.example",
            full_name="M",
        )
    ) == (403, "Insufficient access to specified domain")
    assert code(
        sw(
            "add_user",
            who=DOMAIN_ADMIN,
            username="dan",
            password="p",
            email="dan@example.com",
            full_name="D",
        )
    ) == (200, "User added successfully")
    assert code(
        sw(
            "change_user",
            who=DOMAIN_ADMIN,
            user="eve",
            username="eve",
            email="eve@other.example",
            full_name="E",
        )
    ) == (403, "Insufficient access to specified username")
    assert code(
        sw(
            "change_user",
            who=DOMAIN_ADMIN,
            user="dan",
            username="dan",
            email="dan@other.example",
            full_name="D",
        )
    ) == (403, "Insufficient access to specified domain")
    assert code(sw("change_user_password", who=DOMAIN_ADMIN, user="eve", newpass="x")) == (
        403,
        "Insufficient access to specified user",
    )
    assert code(sw("delete_user", who=DOMAIN_ADMIN, user="eve")) == (
        403,
        "Insufficient access to specified user",
    )
    assert code(sw("change_user_password", who=DOMAIN_ADMIN, user="dan", newpass="x")) == (
        200,
        "User updated successfully",
    )


def test_a_user_manages_only_themselves(sw):
    assert code(sw("change_user_password", who=USER, user=USER[0], newpass="mine-2")) == (
        200,
        "User updated successfully",
    )
    me = (USER[0], "mine-2")
    assert code(sw("list_users", who=me, user="all")) == (
        403,
        "Insufficient access to specified domain",
    )
    assert code(sw("change_user_password", who=me, user="domainadmin", newpass="x")) == (
        403,
        "Insufficient access to specified user",
    )


@pytest.mark.parametrize("which", ["whitelist", "blacklist"])
def test_white_and_black_lists(sw, which):
    assert code(sw(f"{which}_add", email="friend@example.org")) == (
        200,
        f"Email added to {which} successfully",
    )
    assert code(sw(f"{which}_add", email="friend@example.org")) == (
        406,
        f"Email already in {which}",
    )
    assert code(sw(f"{which}_add", email="nope")) == (406, "Invalid Email")
    assert sw.sandbox.emulator.lists["global"][which] == ["friend@example.org"]
    assert (
        code(sw(f"{which}_add", who=USER, email="friend@example.org"))[0] == 200
    )  # a user has their own list
    assert sw.sandbox.emulator.lists[USER[0]][which] == ["friend@example.org"]
    assert code(sw(f"{which}_del", email="friend@example.org")) == (
        200,
        f"Email deleted from {which} successfully",
    )
    assert code(sw(f"{which}_del", email="friend@example.org")) == (406, f"Email not in {which}")
    assert code(sw(f"{which}_del", email="nope")) == (406, "Invalid Email")


@pytest.mark.parametrize("which,label", [("spam", "Spam"), ("rbl", "RBL")])
def test_trusted_ips(sw, which, label):
    assert code(sw(f"add_{which}_bypass", ip="192.0.2.10", full="1")) == (
        200,
        "IP added to Trusted IP list successfully",
    )
    assert code(sw(f"add_{which}_bypass", ip="198.51.100", full="0")) == (
        200,
        "IP added to Trusted IP list successfully",
    )
    assert code(sw(f"add_{which}_bypass", ip="192.0.2.10", full="1")) == (
        406,
        f"Entry already in {label} bypass list",
    )
    assert code(sw(f"add_{which}_bypass", ip="300.1.1.1", full="1")) == (406, "Not a valid IP")
    assert code(sw(f"add_{which}_bypass", ip="198.51.100", full="1")) == (406, "Not a valid IP")
    assert code(sw(f"del_{which}_bypass", ip="192.0.2.10")) == (
        200,
        "IP removed from Trusted IP list successfully",
    )
    assert code(sw(f"del_{which}_bypass", ip="192.0.2.10")) == (
        406,
        f"Entry not in {label} bypass list",
    )


def test_recipient_verification(sw):
    assert code(sw("set_verification_method", method="3")) == (
        200,
        "Recipient Verification Method changed successfully",
    )
    assert code(sw("verification_method")) == (200, "3")
    assert code(sw("set_verification_method", method="4")) == (
        406,
        "Invalid Recipient Verification Method",
    )
    assert code(sw("recipient_add", email="a@example.com")) == (200, "Recipient added successfully")
    assert code(sw("recipient_add", email="a@example.com")) == (406, "Recipient already exists")
    assert code(sw("recipient_add", email="bad")) == (406, "Invalid Email")
    sw("recipient_add", email="b@example.com")
    rows = sw("recipients_list").find("Recipients").findall("Recipient")
    assert [(r.findtext("id"), r.findtext("address")) for r in rows] == [
        ("1", "a@example.com"),
        ("2", "b@example.com"),
    ]
    assert code(sw("recipient_del", email="a@example.com")) == (
        200,
        "Recipient deleted successfully",
    )
    assert code(sw("recipient_del", email="a@example.com")) == (406, "Recipient does not exist")
    assert code(sw("recipients_transport_sync")) == (
        200,
        "Recipients list successfully synced with transport file",
    )
    assert code(sw("recipients_clear")) == (200, "Allowed recipients list successfully cleared")
    assert sw("recipients_list").find("Recipients").findall("Recipient") == []


@pytest.mark.parametrize(
    "level,default",
    [("spam_tag_level", "2.0"), ("spam_tag2_level", "6.31"), ("spam_kill_level", "6.9")],
)
def test_spam_scores(sw, level, default):
    assert code(sw(level)) == (200, default)
    assert code(sw(f"set_{level}", value="5.5")) == (200, "Spam Score saved successfully")
    assert code(sw(level)) == (200, "5.5")
    assert code(sw(level, who=DOMAIN_ADMIN)) == (200, default)  # the domain's own scores
    assert code(sw(f"set_{level}", value="high")) == (406, "Invalid Value")


def test_state_never_exposes_passwords(sw):
    state = requests.get(f"{sw.sandbox.root}/_sandbox/state", timeout=5).json()
    assert "admin" in state["accounts"] and "password" not in state["accounts"]["admin"]
    assert ADMIN[1] not in str(state)
