import copy
import logging
import pickle

import pytest

from spamfilter_plugin.redaction import (
    MASK,
    Secret,
    get_logger,
    redact,
    redacting_handler,
    register_name,
)


def test_secret_hides_itself():
    s = Secret("hunter2-xyz")
    assert str(s) == MASK and repr(s) == "Secret('***')" and f"{s}" == MASK
    assert s.reveal() == "hunter2-xyz"
    assert copy.deepcopy(s) is s
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_known_secrets_are_masked_in_any_encoding():
    Secret("a&b#c%d+e=f 9")
    text = "plain a&b#c%d+e=f 9, quoted a%26b%23c%25d%2Be%3Df%209, plus a%26b%23c%25d%2Be%3Df+9"
    assert redact(text) == f"plain {MASK}, quoted {MASK}, plus {MASK}"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("username=bob&password=x1&function=add", f"username=bob&password={MASK}&function=add"),
        (
            '{"user_id": 1, "api_token": "abc\\"def", "x": 2}',
            f'{{"user_id": 1, "api_token": "{MASK}", "x": 2}}',
        ),
        ("X-Api-Signature: key:2001:sig=", f"X-Api-Signature: {MASK}"),
        ("command=change_user_password&newpass=zz", f"command=change_user_password&newpass={MASK}"),
    ],
)
def test_named_secret_values_are_masked(text, expected):
    # the vendors' own names, registered as their modules do (spambarrier's api_token,
    # Rackspace's signature header, SpamWall's newpass)
    register_name("api_token")
    register_name("X-Api-Signature", header=True)
    register_name("newpass")
    assert redact(text) == expected


def test_a_vendor_registers_its_secret_names():
    text = 'acme_code=k1&x=1\nX-Acme-Sig: s2\n{"acme_code": "k3"}'
    assert redact(text) == text  # the host knows no vendor's names
    register_name("acme_code")
    register_name("X-Acme-Sig", header=True)
    assert redact(text) == f'acme_code={MASK}&x=1\nX-Acme-Sig: {MASK}\n{{"acme_code": "{MASK}"}}'


def test_the_built_in_vendors_register_their_names():
    import spamfilter_plugin.sandbox.spamwall
    import spamfilter_plugin.vendors.rackspace  # noqa: F401

    assert redact("X-Api-Signature: k:1:s") == f"X-Api-Signature: {MASK}"
    assert redact("user_key=a&secret_key=b&newpass=c") == (
        f"user_key={MASK}&secret_key={MASK}&newpass={MASK}"
    )


def test_short_secrets_are_not_substituted_everywhere():
    Secret("ab")
    assert redact("about a cab") == "about a cab"


def test_logger_and_handler_filters_mask_messages_args_and_tracebacks(caplog):
    Secret("log-secret-77")
    log = get_logger("spamfilter_plugin.test")
    caplog.set_level(logging.DEBUG)
    log.info("sending %s", "log-secret-77")
    try:
        raise RuntimeError("failed with log-secret-77")
    except RuntimeError:
        log.exception("boom")
    assert "log-secret-77" not in caplog.text
    assert caplog.text.count(MASK) >= 2

    other = logging.getLogger("some.library")
    records = []
    handler = redacting_handler(logging.Handler())
    handler.emit = records.append
    other.addHandler(handler)
    try:
        other.warning("token=%s", "zzz")
    finally:
        other.removeHandler(handler)
    assert records[0].getMessage() == f"token={MASK}"
