"""SpamWall end to end: the shared contract, then every command and code, permissions,
acting as a user, hostile XML, destination resolution and the three settings pages, all
against the emulator (or a hostile server) over loopback HTTP."""

import pytest
from hostile import HostileVendor, answer

from spamfilter_plugin.errors import (
    InvalidInput,
    VendorAuthError,
    VendorConflict,
    VendorForbidden,
    VendorNotFound,
    VendorRejected,
    VendorResponseError,
    VendorUnavailable,
)
from spamfilter_plugin.events import (
    Domain,
    DomainCreated,
    DomainDeleted,
    DomainUpdated,
    Mailbox,
    MailboxAdded,
    MailboxDeleted,
    PasswordReset,
)
from spamfilter_plugin.http import HttpClient
from spamfilter_plugin.redaction import Secret
from spamfilter_plugin.sandbox.spamwall import ADMIN, DOMAIN_ADMIN, USER
from spamfilter_plugin.testing import VendorContract, write_config
from spamfilter_plugin.vendors.spamwall import SpamWallClient


class TestSpamWall(VendorContract):
    vendor_name = "spamwall"
    secrets = (ADMIN[1],)
    destination = "192.0.2.40"
    mail_host = "192.0.2.26"

    def vendor_table(self, url):
        return {"api_url": url, "username": ADMIN[0], "password": ADMIN[1]}

    def bad_credentials_table(self, url):
        return {"api_url": url, "username": ADMIN[0], "password": "wrong-Pw"}

    def held(self, emulator, target):
        em = emulator.emulator
        if isinstance(target, Domain):
            record = em.domains.get(target.name)
            return None if record is None else {"destination": record["IP"], "settings": record}
        account = em.accounts.get(target.address)
        if account is None:
            return None
        return {"password": account["password"], "settings": account}

    def no_op(self, event):
        return isinstance(event, PasswordReset) and event.domain is not None  # no domain logins


# -- helpers ---------------------------------------------------------------------------


def api(sandbox, who=ADMIN):
    return SpamWallClient(HttpClient("spamwall", sandbox.url), who[0], Secret(who[1]))


def commands(sandbox):
    """The commands the emulator received, in order."""
    return [r["query"].split("'command': '")[1].split("'")[0] for r in sandbox.emulator.requests]


@pytest.fixture
def runtime_for(tmp_path, spamwall_sandbox):
    from spamfilter_plugin.manager import load_runtime

    def make(general=None, **table):
        vendor = {
            "api_url": spamwall_sandbox.url,
            "username": ADMIN[0],
            "password": ADMIN[1],
            **table,
        }
        general = {"mail_host": "192.0.2.26", **(general or {})}
        general = {k: v for k, v in general.items() if v is not None}
        return load_runtime(write_config(tmp_path / "c.toml", general, {"spamwall": vendor}))

    return make


@pytest.fixture
def rt(runtime_for):
    return runtime_for()


def one(rt, event):
    (out,) = rt.deliver(event, vendors=["spamwall"])
    return out


# -- the client: every command, every code ------------------------------------------------


def test_domain_commands_and_their_idempotent_answers(spamwall_sandbox):
    a = api(spamwall_sandbox)
    a.add_domain("Bücher.example", "192.0.2.5", 2525)
    with pytest.raises(VendorConflict):
        a.add_domain("xn--bcher-kva.example", "192.0.2.5", 25)
    a.change_domain("xn--bcher-kva.example", "192.0.2.6", 25)
    (route,) = a.list_domains()
    assert (route.host, route.ip, route.port) == ("xn--bcher-kva.example", "192.0.2.6", 25)
    with pytest.raises(VendorNotFound):
        a.change_domain("absent.example", "192.0.2.6", 25)
    a.delete_domain("xn--bcher-kva.example")
    a.delete_domain("xn--bcher-kva.example")  # gone already: a success
    assert spamwall_sandbox.emulator.domains == {}
    # the command in the query string, the credentials in the POST body, names as documented
    req = spamwall_sandbox.emulator.requests[0]
    assert req["query"] == str(
        {
            "command": "add_domain",
            "name": "xn--bcher-kva.example",
            "ip": "192.0.2.5",
            "port": "2525",
        }
    )
    assert "username=admin" in req["body"] and "password=" in req["body"]


def test_user_commands(spamwall_sandbox):
    a = api(spamwall_sandbox)
    a.add_user("bob@example.com", Secret("Bob-Pw-1"), "bob@example.com", "Bob")
    with pytest.raises(VendorConflict):
        a.add_user("bob@example.com", Secret("x"), "bob@example.com", "Bob")
    with pytest.raises(InvalidInput):  # refused here, before anything is sent
        a.add_user("bad", Secret("x"), "not-an-address@", "Bad")
    with pytest.raises(VendorRejected) as info:  # and SpamWall's own 406, said in its words
        a.call("add_user", username="bad", password="x", email="nope", full_name="Bad")
    assert "Invalid Email" in str(info.value)
    a.change_user("bob@example.com", "bob@example.com", "bob@example.com", "Robert")
    a.change_user_password("bob@example.com", Secret("Bob-Pw-2"))
    (bob,) = a.list_users("bob@example.com")
    assert (bob.username, bob.name) == ("bob@example.com", "Robert")
    assert spamwall_sandbox.emulator.accounts["bob@example.com"]["password"] == "Bob-Pw-2"
    a.delete_user("bob@example.com")
    assert "bob@example.com" not in spamwall_sandbox.emulator.accounts


def test_lists_bypass_recipients_and_scores(spamwall_sandbox):
    a, em = api(spamwall_sandbox), spamwall_sandbox.emulator
    a.whitelist_add("friend@example.org")
    a.whitelist_add("friend@example.org")  # already there: the intent is met
    a.blacklist_add("spam@example.org")
    a.blacklist_del("spam@example.org")
    a.blacklist_del("spam@example.org")  # not there: the intent is met
    assert em.lists["global"] == {"whitelist": ["friend@example.org"], "blacklist": []}
    a.add_bypass("spam", "192.0.2.9")
    a.add_bypass("rbl", "198.51.100.", full=False)
    a.add_bypass("rbl", "198.51.100.", full=False)
    a.del_bypass("spam", "192.0.2.9")
    a.del_bypass("spam", "192.0.2.9")
    assert em.bypass == {"spam": {}, "rbl": {"198.51.100.": {"full": "0"}}}
    with pytest.raises(VendorRejected):
        a.add_bypass("spam", "300.1.1.1", full=False)
    a.set_verification_method(3)
    assert a.verification_method() == 3
    a.recipient_add("alice@example.com")
    a.recipient_add("alice@example.com")
    assert [r.address for r in a.recipients_list()] == ["alice@example.com"]
    a.recipient_del("alice@example.com")
    a.recipient_del("alice@example.com")
    a.recipient_add("carol@example.com")
    a.recipients_clear()
    a.recipients_transport_sync()
    assert a.recipients_list() == []
    assert a.spam_levels() == {
        "spam_tag_level": "2.0",
        "spam_tag2_level": "6.31",
        "spam_kill_level": "6.9",
    }
    a.set_spam_level("spam_kill_level", "8.5")
    assert a.spam_level("spam_kill_level") == "8.5"
    with pytest.raises(VendorRejected):
        a.set_spam_level("spam_kill_level", "lots")


def test_codes_map_to_typed_errors(spamwall_sandbox):
    with pytest.raises(VendorAuthError) as info:
        api(spamwall_sandbox, ("admin", "wrong")).list_domains()
    assert "admin" in str(info.value)
    with pytest.raises(VendorRejected) as info:  # 400: a bug of ours, said as such
        api(spamwall_sandbox).call("no_such_command")
    assert "bug" in str(info.value)
    with pytest.raises(VendorRejected):  # 406
        api(spamwall_sandbox).add_domain("example.com", "192.0.2.1", 25) or api(
            spamwall_sandbox
        ).call("add_domain", name="bad domain", ip="192.0.2.1", port="25")
    body = b'<?xml version="1.0"?><Result><Code>500</Code><Message>db down</Message></Result>'
    with HostileVendor(answer(200, body)) as vendor:
        client = SpamWallClient(HttpClient("spamwall", vendor.url), "admin", Secret("pw"))
        with pytest.raises(VendorUnavailable) as info:
            client.list_domains()
    assert not info.value.permanent and "db down" in str(info.value)


def test_permissions_admin_domain_admin_and_user(spamwall_sandbox):
    domain_admin = api(spamwall_sandbox, DOMAIN_ADMIN)
    user = api(spamwall_sandbox, USER)
    with pytest.raises(VendorForbidden) as info:
        domain_admin.add_domain("x.example", "192.0.2.1", 25)
    assert "domainadmin" in str(info.value) and "add_domain" in str(info.value)
    with pytest.raises(VendorForbidden):
        domain_admin.list_users("someone@other.example")
    assert [u.email for u in domain_admin.list_users()] == ["user@example.com"]
    with pytest.raises(VendorForbidden):
        user.list_users()
    with pytest.raises(VendorForbidden):
        user.delete_user("user@example.com")
    user.whitelist_add("pal@example.org")  # a user's own list
    assert spamwall_sandbox.emulator.lists["user@example.com"]["whitelist"] == ["pal@example.org"]


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<Result><Code>200</Code><Message>&b;</Message></Result>",
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<Result><Code>200</Code><Message>&x;</Message></Result>",
        b"<Result><Code>200</Code><Message>unclosed",
        b"<Other><Code>200</Code></Other>",
        b"<Result><Code>two hundred</Code></Result>",
    ],
    ids=["bomb", "external-entity", "malformed", "not-result", "no-code"],
)
def test_hostile_or_malformed_xml_is_a_typed_error(body):
    with HostileVendor(answer(200, body, {"Content-Type": "text/xml"})) as vendor:
        client = SpamWallClient(HttpClient("spamwall", vendor.url), "admin", Secret("pw"))
        with pytest.raises(VendorResponseError):
            client.list_domains()


def test_a_result_document_is_read_by_its_code_whatever_the_http_status():
    body = b"<Result><Code>200</Code><Message>ok</Message><Domains/></Result>"
    with HostileVendor(answer(403, body)) as vendor:
        client = SpamWallClient(HttpClient("spamwall", vendor.url), "admin", Secret("pw"))
        assert client.list_domains() == []


# -- policy ------------------------------------------------------------------------------


def test_domain_lifecycle_routes_resolves_and_cleans_up(runtime_for, spamwall_sandbox, monkeypatch):
    import socket

    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):  # the system's resolver, with one known name
        if host == "mail.a.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.77", 25))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    em = spamwall_sandbox.emulator
    rt = runtime_for(destination_port=2525, sync_recipients=True)
    api(spamwall_sandbox).set_verification_method(3)
    assert one(rt, DomainCreated(domain="a.example", destination="mail.a.example")).ok
    assert (
        em.domains["a.example"]["IP"] == "192.0.2.77" and em.domains["a.example"]["Port"] == "2525"
    )
    assert one(rt, DomainCreated(domain="a.example", destination="192.0.2.7")).ok  # there: changed
    assert em.domains["a.example"]["IP"] == "192.0.2.7"
    assert one(rt, DomainUpdated(domain="b.example", destination="192.0.2.8")).ok  # absent: added
    assert one(rt, MailboxAdded(mailbox="ann@a.example")).ok
    assert "ann@a.example" in em.accounts and em.recipients[0]["address"] == "ann@a.example"
    assert one(rt, DomainDeleted(domain="a.example")).ok
    assert "a.example" not in em.domains and "ann@a.example" not in em.accounts
    assert em.recipients == [] and rt.contexts["spamwall"].vault.get("ann@a.example") is None


def test_a_destination_that_does_not_resolve_is_named(runtime_for, spamwall_sandbox):
    out = one(runtime_for(), DomainCreated(domain="a.example", destination="mx.nowhere.invalid"))
    assert not out.ok and "mx.nowhere.invalid" in str(out.error)
    assert "does not resolve" in str(out.error) and spamwall_sandbox.emulator.domains == {}
    rt = runtime_for(general={"mail_host": None}, destination_ip="192.0.2.99")
    assert one(rt, DomainCreated(domain="c.example")).ok
    assert spamwall_sandbox.emulator.domains["c.example"]["IP"] == "192.0.2.99"


def test_mailbox_users_passwords_and_the_vault(rt, spamwall_sandbox, tmp_path):
    em, vault = spamwall_sandbox.emulator, rt.contexts["spamwall"].vault
    assert one(rt, MailboxAdded(mailbox="ann@a.example")).ok
    generated = vault.get("ann@a.example")
    assert em.accounts["ann@a.example"]["password"] == generated.reveal()
    chosen = Secret("Panel-Chosen-Pw-77")
    assert one(rt, PasswordReset(mailbox="ann@a.example", password=chosen)).ok
    assert em.accounts["ann@a.example"]["password"] == chosen.reveal()
    assert vault.get("ann@a.example").reveal() == chosen.reveal()
    # never in plain text anywhere in the state directory
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert chosen.reveal().encode() not in data and generated.reveal().encode() not in data
    assert oct(vault.path.stat().st_mode & 0o777) == "0o600"
    out = one(rt, PasswordReset(mailbox="ann@a.example"))  # no password given: one is made
    assert out.ok and em.accounts["ann@a.example"]["password"] == out.result["password"].reveal()
    assert one(rt, MailboxDeleted(mailbox="ann@a.example")).ok
    assert "ann@a.example" not in em.accounts and vault.get("ann@a.example") is None
    assert one(rt, MailboxDeleted(mailbox="ann@a.example")).ok  # gone already: a success


def test_refused_permission_does_not_suspend_the_vendor(runtime_for, spamwall_sandbox):
    rt = runtime_for(username=DOMAIN_ADMIN[0], password=DOMAIN_ADMIN[1])
    out = one(rt, DomainCreated(domain="a.example", destination="192.0.2.1"))
    assert isinstance(out.error, VendorForbidden) and "domainadmin" in str(out.error)
    assert rt.contexts["spamwall"].suspension() is None


# -- pages --------------------------------------------------------------------------------


def submit(rt, scope, target, **form):
    return rt.settings_submitted("spamwall", scope, target, {"csrf_token": "t", **form})


def test_admin_page_renders_and_every_form_applies(rt, spamwall_sandbox):
    em = spamwall_sandbox.emulator
    one(rt, DomainCreated(domain="a.example", destination="192.0.2.7"))
    (frag,) = rt.settings_fragments("admin", None, "tok-123")
    assert "a.example" in frag.html and "192.0.2.7" in frag.html and "tok-123" in frag.html
    assert submit(
        rt, "admin", None, action="domain", name="a.example", ip="192.0.2.8", port="26"
    ).ok
    assert em.domains["a.example"]["IP"] == "192.0.2.8" and em.domains["a.example"]["Port"] == "26"
    assert submit(rt, "admin", None, action="bypass_add", list="rbl", ip="192.0.2.", full="0").ok
    assert em.bypass["rbl"] == {"192.0.2.": {"full": "0"}}
    assert submit(rt, "admin", None, action="bypass_del", list="rbl", ip="192.0.2.").ok
    assert submit(rt, "admin", None, action="verification", method="3").ok
    assert em.verification == 3
    assert submit(rt, "admin", None, action="recipient_add", email="ann@a.example").ok
    assert "ann@a.example" in rt.settings_fragments("admin", None, "t")[0].html
    assert submit(rt, "admin", None, action="recipient_del", email="ann@a.example").ok
    assert em.recipients == []
    out = submit(rt, "admin", None, action="levels", spam_kill_level="9.5", spam_tag_level="2.0")
    assert (
        out.ok
        and out.changed == ("spam_kill_level",)
        and em.scores["global"]["spam_kill_level"] == "9.5"
    )
    bad = submit(rt, "admin", None, action="levels", spam_kill_level="high")
    assert not bad.ok and "spam_kill_level" in bad.errors
    # a level below the one before it is refused, naming both, and nothing is saved; a level
    # left out counts as the one SpamWall holds (spam at 6.31 here)
    before = dict(em.scores["global"])
    bad = submit(rt, "admin", None, action="levels", spam_kill_level="4")
    assert (
        not bad.ok and "'Block from score' (4) must not be below" in bad.errors["spam_kill_level"]
    )
    assert "'Mark as spam from score' (6.31)" in bad.errors["spam_kill_level"]
    assert em.scores["global"] == before
    bad = submit(rt, "admin", None, action="domain", name="a.example", ip="nope", port="99999")
    assert not bad.ok
    refused = submit(
        rt, "admin", None, action="domain", name="zz.example", ip="192.0.2.1", port="25"
    )
    assert not refused.ok and "not in domain list" in refused.message


def test_domain_page_lists_users_and_changes_lists_as_the_domain_admin(
    runtime_for, spamwall_sandbox
):
    em = spamwall_sandbox.emulator
    plain = runtime_for()
    (frag,) = plain.settings_fragments("domain", Domain("example.com"), "t")
    assert "user@example.com" in frag.html and "domain admin account" in frag.html
    assert not submit(
        plain, "domain", Domain("example.com"), action="add", list="whitelist", email="a@b.example"
    ).ok
    rt = runtime_for(
        domain_admins={"example.com": {"username": DOMAIN_ADMIN[0], "password": DOMAIN_ADMIN[1]}}
    )
    assert "Domain whitelist" in rt.settings_fragments("domain", Domain("example.com"), "t")[0].html
    out = submit(
        rt, "domain", Domain("example.com"), action="add", list="blacklist", email="x@bad.example"
    )
    assert out.ok and em.lists["example.com"]["blacklist"] == ["x@bad.example"]
    assert submit(
        rt,
        "domain",
        Domain("example.com"),
        action="remove",
        list="blacklist",
        email="x@bad.example",
    ).ok
    assert em.lists["example.com"]["blacklist"] == []


def test_mailbox_page_acts_as_the_user_with_only_admin_credentials_configured(rt, spamwall_sandbox):
    em = spamwall_sandbox.emulator
    box = Mailbox("ann@a.example")
    (frag,) = rt.settings_fragments("mailbox", box, "t")
    assert "no SpamWall account" in frag.html
    assert not submit(
        rt, "mailbox", box, action="add", list="whitelist", email="pal@example.org"
    ).ok
    one(rt, MailboxAdded(mailbox="ann@a.example"))
    (frag,) = rt.settings_fragments("mailbox", box, "t")
    assert "Your whitelist" in frag.html and "6.31" in frag.html
    out = submit(rt, "mailbox", box, action="add", list="whitelist", email="pal@example.org")
    assert out.ok and em.lists["ann@a.example"]["whitelist"] == ["pal@example.org"]
    assert "global" not in em.lists  # the user's own list, not the admin's
    assert submit(rt, "mailbox", box, action="levels", spam_tag2_level="5.5").ok
    assert em.scores["ann@a.example"]["spam_tag2_level"] == "5.5"
    assert submit(rt, "mailbox", box, action="remove", list="whitelist", email="pal@example.org").ok
    assert em.lists["ann@a.example"]["whitelist"] == []
    password = rt.contexts["spamwall"].vault.get("ann@a.example").reveal()
    assert password not in frag.html
