"""Tornevall SpamAssassin end to end: the shared contract, then every verb in both answer
shapes and under each authentication scheme, errors, the checked false answers, the config's
preferences, the lifecycle policy and both settings pages, all against the emulator (or a
hostile server) over loopback HTTP."""

import base64
import json
import re

import pytest
from hostile import HostileVendor, answer

from spamfilter_plugin.errors import (
    ConfigError,
    InvalidInput,
    VendorAuthError,
    VendorNotFound,
    VendorRejected,
    VendorResponseError,
    VendorUnavailable,
)
from spamfilter_plugin.events import (
    Domain,
    DomainDeleted,
    Mailbox,
    MailboxAdded,
    MailboxDeleted,
    PasswordReset,
)
from spamfilter_plugin.http import HttpClient, HttpPolicy
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.redaction import Secret
from spamfilter_plugin.sandbox.tornevall import (
    ACCOUNTS,
    API_KEY,
    APPLICATION,
    DEFAULT_PREFERENCES,
)
from spamfilter_plugin.testing import VendorContract, write_config
from spamfilter_plugin.vendors.tornevall import (
    NotDone,
    StrictPreference,
    TornevallClient,
    sender_mask,
)

EMAIL = "test@tornevall-domain.com"
OTHER = "other@tornevall-domain.com"
DEFAULTS = {"required_hits": "4.5", "rewrite_header": "Subject [SPAM]", "use_razor2": "0"}


class TestTornevall(VendorContract):
    vendor_name = "tornevall"
    secrets = (API_KEY, "Contract-pw-&#%+=1", "Contract-start-pw-1")

    @pytest.fixture
    def emulator(self, tornevall_sandbox):
        # the panel made the mailbox at the mail service Tornevall hosts
        tornevall_sandbox.emulator.seed_data({"accounts": {self.mailbox: "Contract-start-pw-1"}})
        self.sandbox = tornevall_sandbox
        return tornevall_sandbox

    def vendor_table(self, url):
        return {
            "api_url": url,
            "application": APPLICATION,
            "api_key": API_KEY,
            "preferences": DEFAULTS,
            "clear_on_delete": True,
        }

    def bad_credentials_table(self, url):
        return dict(self.vendor_table(url), api_key="wrong-key")

    def deliver_ok(self, runtime, event):
        if isinstance(event, PasswordReset) and event.mailbox and event.password:
            # the panel sets the new password at the mail service before the event arrives
            addr = event.mailbox.address
            self.sandbox.emulator.seed_data({"accounts": {addr: event.password.reveal()}})
        return super().deliver_ok(runtime, event)

    def held(self, emulator, target):
        """A mailbox's password at the mail service, with the whitelist and preferences
        that differ from Tornevall's defaults; None when nothing of ours is held."""
        em = emulator.emulator
        if isinstance(target, Domain):
            return None  # Tornevall keeps nothing per domain
        address = target.address
        if address not in em.accounts:
            return None
        changed = {
            k: v for k, v in em.preferences.get(address, {}).items() if DEFAULT_PREFERENCES[k] != v
        }
        whitelist = em.user_whitelists.get(address, [])
        if not changed and not whitelist:
            return None
        settings = {"preferences": changed, "whitelist": whitelist}
        return {"password": em.accounts[address], "settings": settings}

    def no_op(self, event):
        """A domain's password reset, and a domain deletion when no mailbox of the domain is
        known (the contract deletes its mailbox first) send nothing."""
        return (isinstance(event, PasswordReset) and event.mailbox is None) or isinstance(
            event, DomainDeleted
        )


# -- helpers ---------------------------------------------------------------------------


def api(sandbox, **kw):
    kw.setdefault("application", APPLICATION)
    return TornevallClient(HttpClient("tornevall", sandbox.url), Secret(API_KEY), **kw)


def verbs(sandbox):
    return [r["path"].rsplit("/", 1)[1] for r in sandbox.emulator.requests]


@pytest.fixture
def runtime_for(tmp_path, tornevall_sandbox):
    def make(**table):
        vendor = {
            "api_url": tornevall_sandbox.url,
            "application": APPLICATION,
            "api_key": API_KEY,
            **table,
        }
        vendor = {k: v for k, v in vendor.items() if v is not None}
        return load_runtime(write_config(tmp_path / "c.toml", {}, {"tornevall": vendor}))

    return make


@pytest.fixture
def rt(runtime_for):
    return runtime_for(preferences=DEFAULTS)


def one(rt, event):
    (out,) = rt.deliver(event, vendors=["tornevall"])
    return out


def submit(rt, scope, target, **form):
    return rt.settings_submitted("tornevall", scope, target, {"csrf_token": "t", **form})


# -- the client: every verb, both answer shapes -------------------------------------------


@pytest.mark.parametrize("shape", ["response", "document"])
def test_every_verb_in_either_answer_shape(tornevall_sandbox, shape):
    em = tornevall_sandbox.emulator
    em.seed_data({"answer_shape": shape})
    a = api(tornevall_sandbox)
    assert a.get_user_whitelist(EMAIL) == [
        "*@*.whitelisted.com",
        "*@marvel.com",
        "tomas.tornevall@second.domain.com",
    ]
    assert "*@*.eff.org" in a.get_global_whitelist()
    assert "*yachtmarket*" in a.get_global_blacklist_sender()
    assert a.set_global_whitelist_host("Example.NET") is True
    assert a.set_global_whitelist_host("example.net") is False
    assert {"*@example.net", "*@*.example.net"} <= set(em.global_whitelist)
    assert a.del_global_whitelist_host("example.net") is True
    assert a.del_global_whitelist_host("example.net") is False
    assert a.verify_account(EMAIL, Secret(ACCOUNTS[EMAIL])) is True
    assert a.verify_account(EMAIL, Secret("not-it")) is False
    assert a.set_address_whitelist(EMAIL, "*@*.Bücher.example") is True
    assert "*@*.xn--bcher-kva.example" in em.user_whitelists[EMAIL]
    assert a.remove_address_whitelist(EMAIL, "*@*.bücher.example") is True
    assert a.remove_address_whitelist(EMAIL, "*@*.bücher.example") is False
    options = a.get_spamassassin_options(EMAIL)
    assert options.preferences["required_hits"] == "5"
    assert options.strict == {"bayes_auto_learn", "use_auto_whitelist"}
    assert "use_bayes" in options.booleans and "ok_locales" not in options.booleans
    assert options.descriptions["rewrite_header"].startswith("Adds a specific string")
    assert a.update_spamassassin_option(EMAIL, "use_bayes", False) is True
    assert a.update_spamassassin_option(EMAIL, "required_hits", 6) is True
    assert em.preferences[EMAIL] == {"use_bayes": "0", "required_hits": "6"}
    assert verbs(tornevall_sandbox) == [
        "getUserWhiteList",
        "getGlobalWhiteList",
        "getGlobalBlackListSender",
        "setGlobalWhitelistHost",
        "setGlobalWhitelistHost",
        "delGlobalWhitelistHost",
        "delGlobalWhitelistHost",
        "verifyAccount",
        "verifyAccount",
        "setAddressWhiteList",
        "removeAddressWhiteList",
        "removeAddressWhiteList",
        "getSpamAssassinOptions",
        "updateSpamAssassinOption",
        "updateSpamAssassinOption",
    ]


@pytest.mark.parametrize("scheme", ["basic", "bearer", "header"])
def test_each_auth_scheme_is_sent_as_configured(tornevall_sandbox, scheme):
    tornevall_sandbox.emulator.seed_data({"auth_scheme": scheme})
    assert api(tornevall_sandbox, auth_scheme=scheme).get_global_whitelist()
    other = "header" if scheme != "header" else "basic"
    with pytest.raises(VendorAuthError) as err:
        api(tornevall_sandbox, auth_scheme=other).get_global_whitelist()
    assert "auth_scheme" in str(err.value) and API_KEY not in str(err.value)


def test_basic_is_the_default_and_sends_the_application_and_key():
    seen = {}

    def play(visit):
        seen.update(visit.headers)
        answer(200, b'{"response": {"getGlobalWhiteListResponse": []}}')(visit)

    with HostileVendor(play) as vendor:
        client = TornevallClient(
            HttpClient("tornevall", vendor.url), Secret("k-1"), application="app-9"
        )
        assert client.get_global_whitelist() == []
    expected = "Basic " + base64.b64encode(b"app-9:k-1").decode()
    assert {k.lower(): v for k, v in seen.items()}["authorization"] == expected


def test_errors_map_to_typed_errors(tornevall_sandbox):
    a = api(tornevall_sandbox)
    with pytest.raises(VendorNotFound, match="No such account"):
        a.get_user_whitelist("nobody@tornevall-domain.com")
    with pytest.raises(StrictPreference, match="strict"):
        a.call("updateSpamAssassinOption", email=EMAIL, preference="bayes_auto_learn", value="0")
    with pytest.raises(VendorRejected, match="Missing parameter: host"):
        a.call("setGlobalWhitelistHost")
    with pytest.raises(VendorAuthError):
        TornevallClient(
            HttpClient("tornevall", tornevall_sandbox.url), Secret("wrong"), application="x"
        ).get_global_whitelist()
    tornevall_sandbox.emulator.seed_data({"error_field": "message"})
    with pytest.raises(VendorNotFound, match="No such account"):
        a.get_user_whitelist("nobody@tornevall-domain.com")


def test_bad_input_is_refused_before_anything_is_sent(tornevall_sandbox):
    a = api(tornevall_sandbox)
    with pytest.raises(InvalidInput, match="email"):
        a.get_user_whitelist("not-an-address")
    with pytest.raises(VendorRejected, match="emailmask"):
        a.set_address_whitelist(EMAIL, "no mask here")
    with pytest.raises(StrictPreference):
        a.update_spamassassin_option(EMAIL, "use_auto_whitelist", "0")
    with pytest.raises(VendorRejected, match="required_hits"):
        a.update_spamassassin_option(EMAIL, "required_hits", "lots")
    assert tornevall_sandbox.emulator.requests == []


def test_an_errors_object_is_read_whatever_the_http_status():
    body = json.dumps({"errors": {"code": 404, "faultstring": "No such account"}}).encode()
    with HostileVendor(answer(200, body)) as vendor:
        client = TornevallClient(HttpClient("tornevall", vendor.url), Secret("k"), application="a")
        with pytest.raises(VendorNotFound, match="No such account"):
            client.get_user_whitelist(EMAIL)


def test_a_server_error_is_temporary_and_an_unknown_answer_is_a_response_error():
    body = json.dumps({"errors": {"code": 503, "faultstring": "down"}}).encode()
    with HostileVendor(answer(503, body)) as vendor:
        http = HttpClient("tornevall", vendor.url, policy=HttpPolicy(retries=0))
        with pytest.raises(VendorUnavailable):
            TornevallClient(http, Secret("k"), application="a").get_global_whitelist()
    for odd in (b'{"somethingElse": []}', b'{"response": {"getGlobalWhiteListResponse": 3}}'):
        with HostileVendor(answer(200, odd)) as vendor:
            client = TornevallClient(
                HttpClient("tornevall", vendor.url), Secret("k"), application="a"
            )
            with pytest.raises(VendorResponseError):
                client.get_global_whitelist()


def test_plain_http_is_refused_except_on_loopback():
    with pytest.raises(ConfigError, match="HTTPS"):
        TornevallClient(
            HttpClient("tornevall", "http://api.tornevall.net/3.0/spamassassin"),
            Secret("k"),
            application="a",
        )
    with pytest.raises(ConfigError, match="application"):
        TornevallClient(HttpClient("tornevall", "https://x.example/"), Secret("k"))


def test_false_is_checked_against_what_the_vendor_holds(tornevall_sandbox):
    em, a = tornevall_sandbox.emulator, api(tornevall_sandbox)
    assert a.add_global_host("eff.org") is False  # the pair is there: done already
    assert a.remove_global_host("never.example") is False  # not there: done already
    assert a.add_mask(EMAIL, "*@marvel.com") is False
    assert a.remove_mask(EMAIL, "*@absent.example") is False
    em.seed_data(
        {
            "refuse": [
                "setGlobalWhitelistHost",
                "delGlobalWhitelistHost",
                "setAddressWhiteList",
                "removeAddressWhiteList",
                "updateSpamAssassinOption",
            ]
        }
    )
    with pytest.raises(NotDone):
        a.add_global_host("new.example")
    with pytest.raises(NotDone):
        a.remove_global_host("eff.org")
    with pytest.raises(NotDone):
        a.add_mask(EMAIL, "*@new.example")
    with pytest.raises(NotDone):
        a.remove_mask(EMAIL, "*@marvel.com")
    with pytest.raises(NotDone):
        a.set_preference(EMAIL, "required_hits", "7")
    a.set_preference(EMAIL, "required_hits", "5")  # holds it already: a success


@pytest.mark.parametrize(
    "given,expected",
    [
        ("*@*.Domain.com", "*@*.domain.com"),
        ("name@domain.com", "name@domain.com"),
        ("*@bücher.example", "*@xn--bcher-kva.example"),
        (" Tomas.Tornevall@Second.Domain.com ", "tomas.tornevall@second.domain.com"),
    ],
)
def test_masks_accepted(given, expected):
    assert sender_mask(given) == expected


@pytest.mark.parametrize(
    "bad", ["", "domain.com", "*@", "@domain.com", "a@b@c.com", "*@*.", "na me@x.com", "*@*.*.x"]
)
def test_masks_refused(bad):
    with pytest.raises(ValueError, match=re.escape("name@example.com, *@example.com or *@*")):
        sender_mask(bad)


# -- config -------------------------------------------------------------------------------


def config_error(tmp_path, url, **table):
    vendor = {"api_url": url, "application": APPLICATION, "api_key": API_KEY, **table}
    vendor = {k: v for k, v in vendor.items() if v is not None}
    with pytest.raises(ConfigError) as err:
        load_runtime(write_config(tmp_path / "c.toml", {}, {"tornevall": vendor}))
    return str(err.value)


def test_config_checks_preferences_against_the_documented_names(tmp_path, tornevall_sandbox):
    url = tornevall_sandbox.url
    text = config_error(tmp_path, url, preferences={"use_auto_whitelist": True})
    assert "use_auto_whitelist" in text and "strict" in text
    text = config_error(tmp_path, url, preferences={"required_hitz": "5"})
    assert "required_hitz" in text and "required_hits" in text
    text = config_error(tmp_path, url, preferences={"report_safe": "3"})
    assert "report_safe" in text and "0, 1 or 2" in text
    text = config_error(tmp_path, url, application=None)
    assert "application" in text
    text = config_error(tmp_path, "http://api.tornevall.net/3.0/spamassassin")
    assert "HTTPS" in text
    text = config_error(tmp_path, url, auth_scheme="digest")
    assert "auth_scheme" in text


def test_config_takes_toml_values_as_the_api_strings(runtime_for):
    rt = runtime_for(preferences={"use_bayes": False, "required_hits": 4.5}, auth_scheme="basic")
    assert rt.contexts["tornevall"].config["preferences"] == {
        "use_bayes": "0",
        "required_hits": "4.5",
    }
    rt = runtime_for(application=None, auth_scheme="bearer")  # no application needed
    assert rt.contexts["tornevall"].config["auth_scheme"] == "bearer"


# -- policy ------------------------------------------------------------------------------


def test_mailbox_added_sends_only_the_preferences_that_differ(rt, tornevall_sandbox):
    em = tornevall_sandbox.emulator
    em.preferences[EMAIL] = {"required_hits": "4.5"}
    out = one(rt, MailboxAdded(mailbox=EMAIL))
    assert out.ok, out.error
    assert em.preferences[EMAIL] == {
        "required_hits": "4.5",
        "rewrite_header": "Subject [SPAM]",
        "use_razor2": "0",
    }
    updates = [r for r in em.requests if r["path"].endswith("/updateSpamAssassinOption")]
    assert len(updates) == 2 and not any("required_hits" in r["body"] for r in updates)
    em.requests.clear()
    assert one(rt, MailboxAdded(mailbox=EMAIL)).ok  # all in place: nothing sent but the read
    assert verbs(tornevall_sandbox) == ["getSpamAssassinOptions"]


def test_password_reset_verifies_and_records_never_the_password(rt, tornevall_sandbox, tmp_path):
    new = "Brand-new-Pw-93"
    box = "new@tornevall-domain.com"
    out = one(rt, MailboxAdded(mailbox=box))  # not a Tornevall account yet
    assert out.ok and "not a Tornevall account yet" in out.result["message"]
    assert tornevall_sandbox.emulator.preferences == {}
    out = one(rt, PasswordReset(mailbox=box, password=Secret(new)))
    assert not out.ok and out.error.permanent and "verifyAccount answered false" in str(out.error)
    record = rt.contexts["tornevall"].state.read()["mailboxes"][box]
    assert record["verified"] is False
    tornevall_sandbox.emulator.seed_data({"accounts": {box: new}})  # now hosted
    out = one(rt, PasswordReset(mailbox=box, password=Secret(new)))
    assert out.ok, out.error
    assert tornevall_sandbox.emulator.preferences[box]["rewrite_header"] == "Subject [SPAM]"
    record = rt.contexts["tornevall"].state.read()["mailboxes"][box]
    assert record["verified"] is True and record["pending"] is False
    sent = [r for r in tornevall_sandbox.emulator.requests if r["path"].endswith("/verifyAccount")]
    assert len(sent) == 2 and all(new not in r["body"] for r in sent)  # redacted in the log
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            assert new.encode() not in path.read_bytes()
    before = len(tornevall_sandbox.emulator.requests)
    assert one(rt, PasswordReset(domain="tornevall-domain.com")).ok  # nothing to verify
    assert len(tornevall_sandbox.emulator.requests) == before


def test_deletions_keep_everything_unless_clear_on_delete(runtime_for, tornevall_sandbox):
    em = tornevall_sandbox.emulator
    kept = runtime_for(preferences=DEFAULTS)
    assert one(kept, MailboxAdded(mailbox=EMAIL)).ok
    em.requests.clear()
    assert one(kept, MailboxDeleted(mailbox=EMAIL)).ok
    assert one(kept, DomainDeleted(domain="tornevall-domain.com")).ok
    assert em.requests == [] and em.user_whitelists[EMAIL] and em.preferences[EMAIL]

    em.reset()
    clear = runtime_for(preferences=DEFAULTS, clear_on_delete=True)
    assert one(clear, MailboxAdded(mailbox=EMAIL)).ok
    assert one(clear, MailboxAdded(mailbox=OTHER)).ok
    assert one(clear, MailboxDeleted(mailbox=EMAIL)).ok
    assert em.user_whitelists[EMAIL] == []
    assert all(DEFAULT_PREFERENCES[k] == v for k, v in em.preferences[EMAIL].items())
    em.user_whitelists[OTHER] = ["*@pal.example"]
    out = one(clear, DomainDeleted(domain="tornevall-domain.com"))
    assert out.ok and "1 mailboxes" in out.result["message"]
    assert em.user_whitelists[OTHER] == []
    assert em.preferences[OTHER]["required_hits"] == "5"
    assert clear.contexts["tornevall"].state.read()["mailboxes"] == {}


# -- pages --------------------------------------------------------------------------------


def test_mailbox_page_is_generated_from_the_options(rt, tornevall_sandbox):
    (frag,) = rt.settings_fragments("mailbox", Mailbox(EMAIL), "tok-<1>")
    html = frag.html
    assert 'name="csrf_token" value="tok-&lt;1&gt;"' in html
    assert 'type="checkbox" value="1" checked' in html  # use_bayes is on
    assert 'name="use_bayes"' in html and 'name="required_hits"' in html
    assert 'name="bayes_auto_learn"' not in html and 'name="use_auto_whitelist"' not in html
    assert "Set by Tornevall for every mailbox" in html  # the strict ones, read-only
    # plain labels and our explanations; the vendor's key shown small, for experts; the
    # vendor's own sentences are not
    assert "Adds a specific string to the mail when spam is detected" not in html
    assert '<label class="sfp-label" for="sfp-rewrite_header">Spam subject tag' in html
    assert '<small class="sfp-key-name">rewrite_header</small>' in html
    assert "Put in front of the subject of mail marked as spam" in html
    # a preference of a few values is a choice of them, in words
    assert '<option value="2" selected>Wrap it in a report, the original attached as plain' in html
    assert frag.title == "Tornevall SpamAssassin for " + EMAIL
    assert "*@marvel.com" in html
    (frag,) = rt.settings_fragments("mailbox", Mailbox("nobody@elsewhere.example"), "t")
    assert "not a mailbox Tornevall hosts" in frag.html and "<form" not in frag.html
    assert rt.settings_fragments("domain", Domain("tornevall-domain.com"), "t") == []


def test_mailbox_preferences_form(rt, tornevall_sandbox):
    em, box = tornevall_sandbox.emulator, Mailbox(EMAIL)
    out = submit(
        rt,
        "mailbox",
        box,
        action="preferences",
        use_bayes="0",
        required_hits="6.5",
        rewrite_header="Subject [SPAMASSASSIN]",  # unchanged: not sent
    )
    assert out.ok and out.changed == ("required_hits", "use_bayes")
    assert em.preferences[EMAIL] == {"use_bayes": "0", "required_hits": "6.5"}
    refused = submit(rt, "mailbox", box, action="preferences", bayes_auto_learn="0")
    assert not refused.ok and "strict" in refused.errors["bayes_auto_learn"]
    bad = submit(rt, "mailbox", box, action="preferences", required_hits="lots", use_pyzor="2")
    assert not bad.ok and set(bad.errors) == {"required_hits", "use_pyzor"}
    unknown = submit(rt, "mailbox", box, action="preferences", no_such_pref="1")
    assert not unknown.ok and "no_such_pref" in unknown.errors
    assert em.preferences[EMAIL] == {"use_bayes": "0", "required_hits": "6.5"}
    assert submit(rt, "mailbox", box, action="preferences", use_bayes="0").message == (
        "Nothing changed."
    )


def test_mailbox_whitelist_form(rt, tornevall_sandbox):
    em, box = tornevall_sandbox.emulator, Mailbox(EMAIL)
    out = submit(rt, "mailbox", box, action="mask_add", emailmask="*@*.Pal.example")
    assert out.ok and "*@*.pal.example" in em.user_whitelists[EMAIL]
    assert "*@*.pal.example" in rt.settings_fragments("mailbox", box, "t")[0].html
    assert submit(rt, "mailbox", box, action="mask_add", emailmask="*@*.pal.example").ok
    assert em.user_whitelists[EMAIL].count("*@*.pal.example") == 1
    bad = submit(rt, "mailbox", box, action="mask_add", emailmask="pal.example")
    assert not bad.ok and "emailmask" in bad.errors
    assert submit(rt, "mailbox", box, action="mask_remove", emailmask="*@*.pal.example").ok
    assert "*@*.pal.example" not in em.user_whitelists[EMAIL]
    gone = submit(rt, "mailbox", Mailbox("nobody@x.example"), action="mask_add", emailmask="a@b.c")
    assert not gone.ok and "not a mailbox Tornevall hosts" in gone.message


def test_admin_page_pairs_hosts_and_shows_the_blacklist_read_only(rt, tornevall_sandbox):
    em = tornevall_sandbox.emulator
    em.global_whitelist.append("*@lonely.example")
    (frag,) = rt.settings_fragments("admin", None, "t")
    html = frag.html
    assert "*@eff.org, *@*.eff.org" in html and "*@lonely.example" in html
    assert "*yachtmarket*" in html and "d.green@virgin.net" in html
    assert html.count('value="host_remove"') == 5  # four pairs and the lone entry
    blacklist = html.split("Global sender blacklist")[1].split("Preferences new mailboxes")[0]
    assert "<form" not in blacklist
    assert "required_hits" in html and "4.5" in html  # the defaults new mailboxes get


def test_admin_host_forms_add_and_remove_both_entries(rt, tornevall_sandbox):
    em = tornevall_sandbox.emulator
    out = submit(rt, "admin", None, action="host_add", host="Bücher.example")
    assert out.ok and "is now whitelisted" in out.message
    assert {"*@xn--bcher-kva.example", "*@*.xn--bcher-kva.example"} <= set(em.global_whitelist)
    assert "was already" in submit(rt, "admin", None, action="host_add", host="eff.org").message
    out = submit(rt, "admin", None, action="host_remove", host="xn--bcher-kva.example")
    assert out.ok and not any("bcher" in e for e in em.global_whitelist)
    bad = submit(rt, "admin", None, action="host_add", host="not a host")
    assert not bad.ok and "host" in bad.errors
    assert len(em.global_whitelist) == 8
