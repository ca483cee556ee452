import copy
import logging
import pickle
import subprocess
import sys

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


@pytest.mark.parametrize(
    "text",
    [
        "PassWord=x1",  # any case
        "pa\u017f\u017fword=x1",  # the long s, which matches s case-insensitively
        "ap\u0131_key=x1",  # the dotless i, which matches i
        "api_\u212aey=x1",  # the Kelvin sign, which matches k
        '{"TOKEN": "x1"}',
        "AUTHORIZATION: Bearer x1",
    ],
)
def test_names_are_found_in_every_case_the_patterns_accept(text):
    # the patterns are skipped when no secret name can occur in the text: the check
    # must see every spelling the patterns themselves would mask
    assert "x1" not in redact(text)
    assert MASK in redact(text)


def test_a_line_that_names_no_secret_compiles_no_pattern():
    # what a panel hook logs on every call: nothing in it can be a named secret, so the
    # name patterns are neither run nor compiled (a fresh process: tests above compile them)
    code = (
        "from spamfilter_plugin import redaction as r; "
        "line = 'directadmin domain_create_post: queued domain_created example.org: "
        "spamport #1'; "
        "assert r.redact(line) == line; assert r._name_patterns is None; "
        "assert r.redact(line + ' password=x1') == line + ' password=***'; "
        "assert r._name_patterns is not None; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


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
