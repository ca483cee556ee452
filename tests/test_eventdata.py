"""Events as plain data: the ASCII short cut of the domain normaliser gives what IDNA gives,
and a panel event stored from plain data is the event the dataclasses would store."""

from __future__ import annotations

import random
import uuid

import pytest

from spamfilter_plugin import eventdata
from spamfilter_plugin.errors import InvalidInput
from spamfilter_plugin.events import BY_HOOK, event_from_dict


def outcome(value: str) -> str:
    try:
        return "ok " + eventdata.normalise_domain(value)
    except InvalidInput as exc:
        return "error " + str(exc)


def test_ascii_short_cut_agrees_with_idna(monkeypatch):
    rng = random.Random(1414)
    alphabet = "abcXYZ019-._x"
    samples = [
        "Example.COM",
        "xn--bcher-kva.example",
        "XN--bcher-kva.example",
        "ab--cd.example",
        "a--b.example",
        "-lead.example",
        "trail-.example",
        "a" * 63 + ".example",
        "a" * 64 + ".example",
        "example.123",
        "localhost",
        "under_score.example",
        "a..b",
        ".".join(["abcdefghi"] * 26),
    ]
    samples += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(3000)
    ]
    fast = [outcome(s) for s in samples]
    monkeypatch.setattr(eventdata, "_plain_ascii", lambda name: None)
    slow = [outcome(s) for s in samples]
    assert fast == slow
    assert sum(o.startswith("ok") for o in fast) > 100  # the sample reaches both branches


def test_ascii_names_do_not_load_idna_tables():
    import subprocess
    import sys

    code = (
        "import sys; from spamfilter_plugin.eventdata import normalise_email as n;"
        "assert n('Bob@Example.ORG') == 'Bob@example.org';"
        "assert 'idna' not in sys.modules, 'ascii';"
        "assert n('bob@bücher.example') == 'bob@xn--bcher-kva.example';"
        "assert 'idna' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("hook", "fields", "target"),
    [
        ("domain_created", {"domain": "Example.ORG."}, "domain:example.org"),
        ("domain_deleted", {"domain": "bücher.example"}, "domain:xn--bcher-kva.example"),
        ("domain_updated", {"domain": "a.example", "destination": "::1"}, "domain:a.example"),
        ("mailbox_added", {"mailbox": "Bob@Example.org"}, "mailbox:Bob@example.org"),
        ("mailbox_deleted", {"mailbox": "bob@example.org"}, "mailbox:bob@example.org"),
        (
            "password_reset",
            {"mailbox": "bob@example.org", "password": "s3cret-pw"},
            "mailbox:bob@example.org",
        ),
        ("password_reset", {"domain": "example.org"}, "domain:example.org"),
    ],
)
def test_panel_event_is_what_the_dataclass_stores(hook, fields, target):
    stored, password = eventdata.panel_event(hook, fields)
    assert password == fields.get("password")
    assert "password" not in stored
    assert uuid.UUID(stored["id"]).version == 4 and len(stored["id"]) == 32
    event = event_from_dict(stored)
    assert isinstance(event, BY_HOOK[hook])
    assert event.to_dict() == stored  # same keys, same order, same values
    assert list(stored) == list(event.to_dict())
    assert eventdata.target_key(stored) == event.target_key == target
    assert stored["occurred_at"].endswith("+00:00") and len(stored["occurred_at"]) == 25


@pytest.mark.parametrize(
    ("hook", "fields", "field"),
    [
        ("domain_created", {"domain": "no spaces.example"}, "domain"),
        ("domain_created", {}, "domain"),
        ("mailbox_added", {"mailbox": "not-an-address"}, "mailbox"),
        ("mailbox_added", {"mailbox": "a@example.org", "colour": "red"}, "colour"),
        ("password_reset", {"domain": "example.org", "mailbox": "a@example.org"}, "domain"),
        ("password_reset", {"mailbox": "a@example.org", "password": ""}, "password"),
        ("domain_updated", {"domain": "example.org"}, "destination"),
        ("vendor_step", {"domain": "example.org"}, "event"),
        ("domain_renamed", {"domain": "example.org"}, "event"),
    ],
)
def test_panel_event_names_the_bad_field(hook, fields, field):
    with pytest.raises(InvalidInput) as err:
        eventdata.panel_event(hook, fields)
    assert err.value.field == field
