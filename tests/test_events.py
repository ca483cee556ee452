import pytest

from spamfilter_plugin.errors import InvalidInput
from spamfilter_plugin.events import (
    BY_CLI_NAME,
    Domain,
    DomainCreated,
    DomainDeleted,
    DomainSuspended,
    DomainUnsuspended,
    DomainUpdated,
    Mailbox,
    MailboxAdded,
    PasswordReset,
    event_from_dict,
    normalise_domain,
    normalise_email,
    normalise_host,
    normalise_ip,
)
from spamfilter_plugin.redaction import Secret


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        (" example.com ", "example.com"),
        ("Bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("ÉCOLE.fr", "xn--cole-9oa.fr"),
        ("sub.domain-1.co.uk", "sub.domain-1.co.uk"),
    ],
)
def test_domains_are_lowercase_idna(raw, expected):
    assert Domain(raw).name == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "localhost",
        "-bad.com",
        "bad-.com",
        "exa mple.com",
        "a..com",
        "example.123",
        "user@example.com",
        "http://example.com",
        "x" * 64 + ".com",
        ("a" * 60 + ".") * 5 + "com",
        None,
        42,
    ],
)
def test_bad_domains_name_the_field(raw):
    with pytest.raises(InvalidInput) as info:
        DomainCreated(domain=raw)
    assert info.value.field == "domain"
    assert str(info.value).startswith("domain: ")


def test_unicode_name_round_trips():
    assert Domain("bücher.example").unicode_name == "bücher.example"


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("Alice@Bücher.Example", "Alice@xn--bcher-kva.example"),
        ("first.last+tag@example.com", "first.last+tag@example.com"),
    ],
)
def test_mailboxes(raw, expected):
    mb = Mailbox(raw)
    assert mb.address == expected
    assert mb.domain.name == expected.split("@")[1]
    assert mb.local_part == expected.split("@")[0]


@pytest.mark.parametrize(
    "raw",
    [
        "alice",
        "@example.com",
        "a..b@example.com",
        ".a@example.com",
        "alice@",
        "alice@bad_domain.com",
        "a b@example.com",
        "x" * 65 + "@example.com",
    ],
)
def test_bad_mailboxes_name_the_field(raw):
    with pytest.raises(InvalidInput) as info:
        MailboxAdded(mailbox=raw)
    assert info.value.field == "mailbox"


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("Mail.Example.NET", "mail.example.net"),
    ],
)
def test_destinations(raw, expected):
    assert DomainUpdated(domain="example.com", destination=raw).destination == expected


@pytest.mark.parametrize("raw", ["999.1.1.1", "mail host", "2001:db8::zz", ""])
def test_bad_destinations_name_the_field(raw):
    with pytest.raises(InvalidInput) as info:
        DomainUpdated(domain="example.com", destination=raw)
    assert info.value.field == "destination"


def test_bad_ip_names_the_field():
    with pytest.raises(InvalidInput) as info:
        normalise_ip("300.1.1.1", "ip")
    assert info.value.field == "ip"
    assert normalise_host("10.0.0.1") == "10.0.0.1"


def test_events_are_frozen():
    event = DomainDeleted(domain="example.com")
    with pytest.raises(AttributeError):
        event.domain = Domain("other.com")


def test_password_reset_targets_one_of_domain_or_mailbox():
    with pytest.raises(InvalidInput):
        PasswordReset()
    with pytest.raises(InvalidInput):
        PasswordReset(domain="example.com", mailbox="a@example.com")
    assert PasswordReset(mailbox="a@example.com").target_key == "mailbox:a@example.com"
    assert PasswordReset(domain="example.com").target_key == "domain:example.com"


def test_password_is_a_secret_and_left_out_of_dicts():
    event = PasswordReset(mailbox="a@example.com", password="Sup3r-secret")
    assert isinstance(event.password, Secret)
    assert "Sup3r-secret" not in repr(event)
    assert "Sup3r-secret" not in str(event.to_dict())
    back = event_from_dict(event.to_dict(), password=event.password)
    assert back == event


def test_round_trip_through_dicts_for_every_event_type():
    samples = [
        DomainCreated(domain="example.com", destination="192.0.2.1"),
        DomainCreated(domain="example.com"),
        DomainDeleted(domain="example.com"),
        DomainUpdated(domain="example.com", destination="mx.example.net"),
        DomainSuspended(domain="example.com", reason="Unpaid invoice"),
        DomainSuspended(domain="example.com"),
        DomainUnsuspended(domain="example.com"),
        MailboxAdded(mailbox="a@example.com"),
        PasswordReset(domain="example.com"),
    ]
    for event in samples:
        assert event_from_dict(event.to_dict()) == event
    assert set(BY_CLI_NAME) == {
        "domain-created",
        "domain-suspended",
        "domain-unsuspended",
        "domain-deleted",
        "domain-updated",
        "mailbox-added",
        "mailbox-deleted",
        "password-reset",
    }


def test_unknown_event_kind_is_refused():
    with pytest.raises(InvalidInput) as info:
        event_from_dict({"event": "domain_exploded"})
    assert info.value.field == "event"


@pytest.mark.parametrize(
    "func,value,field",
    [
        (normalise_host, "fe80::1%eth0", "destination"),  # a zone id no vendor can route to
        (normalise_host, "fe80::1%eth0\r\nX-Evil: 1;$(reboot) <b>", "destination"),
        (normalise_ip, "fe80::1%1", "ip"),
        (normalise_email, "alex.smith\n@example.com", "mailbox"),
        (normalise_email, "alex\x00smith@example.com", "mailbox"),
        (normalise_domain, "example.com..", "domain"),
        (normalise_domain, "example.com\n", "domain"),
        (normalise_domain, "exa\u0085mple.com", "domain"),
        (normalise_host, "mail.example.com\t", "destination"),
    ],
)
def test_control_characters_zone_ids_and_stray_dots_are_refused(func, value, field):
    with pytest.raises(InvalidInput) as info:
        func(value, field)
    assert info.value.field == field
    assert "\n" not in str(info.value) and "\r" not in str(info.value)


def test_one_trailing_dot_is_still_fine():
    assert normalise_domain("Example.COM.") == "example.com"


def test_a_suspension_reason_is_one_line_of_plain_text():
    event = DomainSuspended(domain="example.com", reason="  Unpaid\n invoice  #7 ")
    assert event.reason == "Unpaid invoice #7"
    assert DomainSuspended(domain="example.com", reason="x" * 500).reason == "x" * 200
    with pytest.raises(InvalidInput) as info:
        DomainSuspended(domain="example.com", reason="bad\x1b[31m")
    assert info.value.field == "reason"
