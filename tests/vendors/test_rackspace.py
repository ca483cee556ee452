"""Rackspace end to end: the shared contract, then signing, throttling, validation,
JSON and XML modes and the mailbox page, against the emulator over HTTP."""

import copy
import threading

import pytest

from spamfilter_plugin.errors import InvalidInput, VendorAuthError, VendorRateLimited
from spamfilter_plugin.events import Mailbox, MailboxAdded
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.redaction import Secret
from spamfilter_plugin.sandbox.rackspace import CUSTOMER, SECRET_KEY, USER_KEY
from spamfilter_plugin.testing import VendorContract, write_config
from spamfilter_plugin.vendors.rackspace import RateLimiter, signature, validate_entry

ALEX = Mailbox("alex.smith@example.com")


class TestRackspace(VendorContract):
    vendor_name = "rackspace"
    secrets = (SECRET_KEY,)

    @pytest.fixture
    def emulator(self, rackspace_sandbox):
        rackspace_sandbox.emulator.seed_data(
            {"mailboxes": [{"domain": "contract-example.com", "mailbox": "alice"}]}
        )
        return rackspace_sandbox

    def bad_credentials_table(self, url):
        return dict(self.vendor_table(url), secret_key="not-the-secret")

    def vendor_table(self, url):  # defaults that differ from a new mailbox's, to be seen
        return {
            "api_url": url,
            "customer_id": CUSTOMER,
            "user_key": USER_KEY,
            "secret_key": SECRET_KEY,
            "filterlevel": "exclusive",
            "sendtodomainquarantine": True,
        }

    def held(self, emulator, target):
        if not isinstance(target, Mailbox):
            return None  # Rackspace holds domains itself
        key = (CUSTOMER, target.domain.name, target.local_part)
        box = emulator.emulator.mailboxes.get(key)
        return None if box is None else {"settings": copy.deepcopy(box)}


def runtime(tmp_path, sandbox, **over):
    table = {
        "api_url": sandbox.url,
        "customer_id": CUSTOMER,
        "user_key": USER_KEY,
        "secret_key": SECRET_KEY,
        "rate_limit": 1000,
        **over,
    }
    return load_runtime(write_config(tmp_path / "c.toml", {}, {"rackspace": table}))


@pytest.fixture
def rt(tmp_path, rackspace_sandbox):
    return runtime(tmp_path, rackspace_sandbox)


def api(rt):
    from spamfilter_plugin.hooks.rackspace import client

    return client(rt.contexts["rackspace"])


def test_signature_vector():
    assert (
        signature(
            "eGbq9/2hcZsRlr1JV1Pi",
            "Rackspace Management Interface",
            "20010308143725",
            "QHOvchm/40czXhJ1OxfxK7jDHr3t",
        )
        == "46VIwd66mOFGG8IkbgnLlXnfnkU="
    )


def test_signatures_are_accepted_and_the_hashed_agent_is_the_one_sent(tmp_path, rackspace_sandbox):
    rt = runtime(tmp_path, rackspace_sandbox, user_agent="Rackspace Management Interface")
    assert api(rt).http.user_agent == "Rackspace Management Interface"
    assert api(rt).get_settings(ALEX).filter_level == "on"


def test_mailbox_added_applies_the_default_settings(tmp_path, rackspace_sandbox):
    rt = runtime(
        tmp_path,
        rackspace_sandbox,
        filterlevel="exclusive",
        sendtodomainquarantine=True,
        quarantineowner="boss@example.com",
    )
    (out,) = rt.deliver(MailboxAdded(mailbox="Alex.Smith@Example.com"))
    assert out.ok, out.error
    box = rackspace_sandbox.emulator.mailboxes[("12345678", "example.com", "alex.smith")]
    assert box["settings"] == {
        "filterLevel": "exclusive",
        "sendToDomainQuarantine": True,
        "quarantineOwner": "boss@example.com",
    }


def test_only_mailbox_added_is_handled(rt):
    assert rt.handlers("mailbox_added") == ["rackspace"]
    for hook in (
        "domain_created",
        "domain_deleted",
        "domain_updated",
        "mailbox_deleted",
        "password_reset",
    ):
        assert not rt.handles("rackspace", hook)


def test_clock_skew_is_refused_as_an_auth_error(tmp_path, rackspace_sandbox):
    rt = runtime(tmp_path, rackspace_sandbox)
    client = api(rt)
    client.now = lambda: __import__("time").time() - 3600  # this server's clock an hour slow
    with pytest.raises(VendorAuthError) as info:
        client.get_settings(ALEX)
    assert "clock" in str(info.value)
    assert len(rackspace_sandbox.emulator.requests) == 1


def test_wrong_timestamp_timezone_is_refused(tmp_path, rackspace_sandbox):
    rt = runtime(tmp_path, rackspace_sandbox, timestamp_timezone="Asia/Tokyo")
    with pytest.raises(VendorAuthError):
        api(rt).get_settings(ALEX)


def test_throttling_is_retried_and_resigned_but_auth_403_is_not(tmp_path, rackspace_sandbox):
    emulator = rackspace_sandbox.emulator
    emulator.seed_data({"rate_limit": 1})
    rt = runtime(tmp_path, rackspace_sandbox, retries=2)
    client = api(rt)
    base = emulator.clock
    shift = [0.0]
    emulator.clock = lambda: base() + shift[0]
    client.now = lambda: base() + shift[0]
    stamps = []
    sign = client.http.before_send
    client.http.before_send = lambda h: (sign(h), stamps.append(h["X-Api-Signature"]))
    client.http.sleep = lambda s: shift.__setitem__(0, shift[0] + 61)  # backoff: a minute passes
    client.get_settings(ALEX)
    assert (
        client.get_settings(ALEX).filter_level == "on"
    )  # second call throttled once, then retried
    statuses = [r["status"] for r in emulator.requests]
    assert statuses == [200, 403, 200]
    assert (
        len(stamps) == 3 and stamps[1] != stamps[2]
    )  # the retry was signed afresh, a minute later
    emulator.clock = base
    client.now = __import__("time").time
    client.secret_key = Secret("wrong")
    emulator.requests.clear()
    with pytest.raises(VendorAuthError):
        client.get_settings(ALEX)
    assert len(emulator.requests) == 1


def test_throttling_error_when_retries_run_out(tmp_path, rackspace_sandbox):
    rackspace_sandbox.emulator.seed_data({"rate_limit": 1})
    client = api(runtime(tmp_path, rackspace_sandbox, retries=1))
    client.http.sleep = lambda s: None
    client.get_settings(ALEX)
    with pytest.raises(VendorRateLimited) as info:
        client.get_settings(ALEX)
    assert not info.value.permanent


def test_client_rate_limiter_keeps_bulk_work_under_the_limit(
    tmp_path, rackspace_sandbox, monkeypatch
):
    emulator = rackspace_sandbox.emulator
    emulator.seed_data({"rate_limit": 5})
    now = [emulator.clock()]
    monkeypatch.setattr(emulator, "clock", lambda: now[0])  # the shared emulator's, restored
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        now[0] += seconds

    rt = runtime(tmp_path, rackspace_sandbox, rate_limit=5)
    client = api(rt)
    client.limiter = RateLimiter(5, clock=lambda: now[0], sleep=sleep)
    client.now = lambda: now[0]
    for i in range(12):
        client.add_entry(ALEX, "safelist", f"friend{i}@example.org")
    assert all(r["status"] == 200 for r in emulator.requests) and len(emulator.requests) == 12
    assert len(waits) == 2 and sum(waits) >= 119  # 12 requests at 5 a minute: two full waits


def test_rate_limiter_is_shared_by_threads():
    now = [0.0]
    lock = threading.Lock()

    def sleep(seconds):
        with lock:
            now[0] += seconds

    limiter = RateLimiter(3, clock=lambda: now[0], sleep=sleep)
    threads = [threading.Thread(target=limiter.acquire) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(limiter.sent) <= 3 and now[0] >= 60


@pytest.mark.parametrize(
    "list_name,value,expected",
    [
        ("blocklist", "Spam@Example.org", "spam@example.org"),
        ("blocklist", "@%.example.com", "@%.example.com"),
        ("safelist", "examp%.com", "examp%.com"),
        ("ipblocklist", "216.12.34.%", "216.12.34.%"),
        ("ipsafelist", "216.%.%.%", "216.%.%.%"),
        ("ipsafelist", "2001:DB8::1", "2001:db8::1"),
    ],
)
def test_valid_entries(list_name, value, expected):
    assert validate_entry(list_name, value) == expected


@pytest.mark.parametrize(
    "list_name,value",
    [
        ("blocklist", "@example.%"),
        ("blocklist", "@example.c%m"),
        ("safelist", "a%b@example.com"),
        ("safelist", "abc"),
        ("ipblocklist", "216.%.34.1"),
        ("ipblocklist", "%.%.%.%"),
        ("ipsafelist", "123"),
        ("ipsafelist", "300.1.1.%"),
        ("ipsafelist", "216.12.34"),
    ],
)
def test_invalid_entries_are_refused_before_sending(list_name, value):
    with pytest.raises(InvalidInput) as info:
        validate_entry(list_name, value)
    assert info.value.field == list_name


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("names", ["current", "legacy"])
def test_every_call_in_json_and_xml_with_both_list_namings(tmp_path, rackspace_sandbox, fmt, names):
    client = api(runtime(tmp_path, rackspace_sandbox, format=fmt, list_names=names))
    client.edit_settings(
        ALEX, "on", send_to_domain_quarantine=True, quarantine_owner="q@example.com"
    )
    assert client.get_settings(ALEX).__dict__ == {
        "filter_level": "on",
        "send_to_domain_quarantine": True,
        "quarantine_owner": "q@example.com",
    }
    client.edit_settings(ALEX, "off")
    assert client.get_settings(ALEX).send_to_domain_quarantine is False  # off forces it
    for list_name, entry in (
        ("blocklist", "@%.spam.example"),
        ("ipblocklist", "216.12.%.%"),
        ("safelist", "friend@example.org"),
        ("ipsafelist", "192.0.2.1"),
    ):
        client.add_entry(ALEX, list_name, entry)
        assert client.list_entries(ALEX, list_name) == [entry]
        client.delete_entry(ALEX, list_name, entry)
        client.delete_entry(ALEX, list_name, entry)  # absent: fine
        assert client.list_entries(ALEX, list_name) == []
    client.edit_list(ALEX, "blocklist", add=["@%.example.org", "abc@example.org"])
    client.edit_list(ALEX, "blocklist", add=["x@y.org"], remove=["@%.example.org"])
    assert client.list_entries(ALEX, "blocklist") == ["abc@example.org", "x@y.org"]
    paths = {
        r["path"].split("/spam/")[1].split("/")[0] for r in rackspace_sandbox.emulator.requests
    }
    assert ("blacklist" in paths) is (names == "legacy") and ("blocklist" in paths) is (
        names == "current"
    )


def test_path_segments_are_percent_encoded(tmp_path, rackspace_sandbox):
    client = api(runtime(tmp_path, rackspace_sandbox))
    client.add_entry(ALEX, "blocklist", "@%.spam.example")
    assert rackspace_sandbox.emulator.requests[-1]["path"].endswith(
        "/spam/blocklist/@%.spam.example"
    )


def test_unknown_mailbox_and_config_errors(tmp_path, rackspace_sandbox):
    from spamfilter_plugin.errors import ConfigError, VendorNotFound

    with pytest.raises(VendorNotFound):
        api(runtime(tmp_path, rackspace_sandbox)).get_settings(Mailbox("ghost@example.com"))
    with pytest.raises(ConfigError) as info:
        runtime(tmp_path, rackspace_sandbox, timestamp_timezone="Mars/Olympus", customer_id="abc")
    assert "[vendors.rackspace] timestamp_timezone" in str(info.value)
    assert "[vendors.rackspace] customer_id: must be the numeric" in str(info.value)


def test_check_without_and_with_a_probe_mailbox(tmp_path, rackspace_sandbox):
    assert (
        runtime(tmp_path, rackspace_sandbox).check("rackspace").result
        == "authenticated as customer 12345678"
    )
    out = runtime(tmp_path, rackspace_sandbox, check_mailbox="jane.doe@example.com").check(
        "rackspace"
    )
    assert out.result == "authenticated; jane.doe@example.com filter level on"


def test_reset_connection_is_retried_with_a_valid_signature(tmp_path, rackspace_sandbox):
    rackspace_sandbox.emulator.faults.configure(queue=["reset"])
    client = api(runtime(tmp_path, rackspace_sandbox))
    client.http.sleep = lambda s: None
    assert client.get_settings(ALEX).filter_level == "on"


def page(rt, mailbox=ALEX):
    (frag,) = rt.settings_fragments("mailbox", mailbox, csrf_token="tok")
    return str(frag.html)


def submit(rt, **form):
    return rt.settings_submitted("rackspace", "mailbox", ALEX, {"csrf_token": "tok", **form})


def test_mailbox_page_renders_levels_lists_and_forms(rt, rackspace_sandbox):
    rackspace_sandbox.emulator.mailboxes[("12345678", "example.com", "alex.smith")]["lists"][
        "safelist"
    ].append("<b>@x.org")
    html = page(rt)
    assert "only senders and IPs on the safelists are delivered" in html
    assert "stops sending spam to the domain quarantine" in html
    for title in ("Blocked senders", "Blocked IPs", "Safe senders", "Safe IPs"):
        assert title in html
    assert "&lt;b&gt;@x.org" in html and "<b>@x.org" not in html
    assert html.count("<form") == html.count('name="csrf_token" value="tok"') == 1 + 4 * 2 + 1
    assert rt.settings_fragments("domain", Mailbox("a@example.com").domain, csrf_token="t") == []
    assert "not a Rackspace mailbox" in page(rt, Mailbox("ghost@example.com"))


def test_submit_settings(rt, rackspace_sandbox):
    result = submit(
        rt,
        action="settings",
        filterlevel="exclusive",
        sendtodomainquarantine="1",
        quarantineowner="boss@example.com",
    )
    assert result.ok
    box = rackspace_sandbox.emulator.mailboxes[("12345678", "example.com", "alex.smith")]
    assert box["settings"] == {
        "filterLevel": "exclusive",
        "sendToDomainQuarantine": True,
        "quarantineOwner": "boss@example.com",
    }
    assert submit(
        rt, action="settings", filterlevel="on", sendtodomainquarantine="0", quarantineowner=""
    ).ok
    assert box["settings"]["quarantineOwner"] == ""
    bad = submit(rt, action="settings", filterlevel="max")
    assert not bad.ok and "filterlevel" in bad.errors


def test_submit_add_remove_and_bulk(rt, rackspace_sandbox):
    box = rackspace_sandbox.emulator.mailboxes[("12345678", "example.com", "alex.smith")]["lists"]
    assert submit(rt, action="add", list="ipblocklist", entry="216.12.34.%").ok
    assert box["ipblocklist"] == ["216.12.34.%"]
    assert submit(rt, action="remove", list="ipblocklist", entry="216.12.34.%").ok
    assert box["ipblocklist"] == []
    before = len(rackspace_sandbox.emulator.requests)
    result = submit(
        rt,
        action="bulk",
        list="blocklist",
        add_entries="@%.spam.org\nabc@spam.org, x@y.org",
        remove_entries="",
    )
    assert result.ok and "3 added" in result.message
    assert len(rackspace_sandbox.emulator.requests) == before + 1  # one addList edit
    assert box["blocklist"] == ["@%.spam.org", "abc@spam.org", "x@y.org"]
    bad = submit(rt, action="bulk", list="blocklist", add_entries="ok@spam.org\n@example.%")
    assert not bad.ok and "blocklist" in bad.errors and len(box["blocklist"]) == 3  # nothing sent
    refused = submit(rt, action="add", list="blocklist", entry="example.com")
    assert not refused.ok and "would block the current domain" in refused.message
