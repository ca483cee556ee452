import builtins
import io
import os
from pathlib import Path

import pytest

from spamfilter_plugin.config.model import DEFAULT_PATH, config_path
from spamfilter_plugin.errors import ConfigError, PluginError
from spamfilter_plugin.manager import load_runtime
from spamfilter_plugin.redaction import Secret

GOOD = """
[general]
state_dir = "{state}"
mail_host = "Mail.Example.NET"

[vendors.toy]
api_url = "http://127.0.0.1:9"
token = {token}
"""


def write(tmp_path, text, mode=0o600, name="config.toml"):
    p = tmp_path / name
    p.write_text(text)
    p.chmod(mode)
    return p


def good(tmp_path, token='"tok-literal-1"', mode=0o600):
    return write(tmp_path, GOOD.format(state=tmp_path / "state", token=token), mode)


def test_path_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("SPAMFILTER_CONFIG", raising=False)
    assert config_path(None) == DEFAULT_PATH
    monkeypatch.setenv("SPAMFILTER_CONFIG", str(tmp_path / "env.toml"))
    assert config_path(None) == tmp_path / "env.toml"
    assert config_path(tmp_path / "cli.toml") == tmp_path / "cli.toml"


def test_valid_config_loads_with_defaults_and_secrets(tmp_path):
    rt = load_runtime(good(tmp_path))
    assert rt.config.general.mail_host == "mail.example.net"
    table = rt.config.vendors["toy"]
    assert isinstance(table["token"], Secret) and table["token"].reveal() == "tok-literal-1"
    assert (
        table["retries"] == 3
        and table["connect_timeout"] == 5.0
        and table["strict_default"] is False
    )
    assert rt.vendors == ["toy"]


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_runtime(tmp_path / "nope.toml")
    assert "does not exist" in str(info.value) and "--config" in str(info.value)


def test_toml_syntax_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_runtime(write(tmp_path, "[general\nstate_dir = 1"))
    assert "not valid TOML" in str(info.value) and "line 1" in str(info.value)


def test_unknown_key_names_table_key_and_known_keys(tmp_path):
    p = write(tmp_path, GOOD.format(state=tmp_path, token='"t"') + 'tokn = "oops"\n')
    with pytest.raises(ConfigError) as info:
        load_runtime(p)
    msg = str(info.value)
    assert "[vendors.toy] tokn: unknown key" in msg and "token" in msg and "api_url" in msg


def test_missing_required_key(tmp_path):
    p = write(tmp_path, '[vendors.toy]\napi_url = "http://127.0.0.1:9"\n')
    with pytest.raises(ConfigError) as info:
        load_runtime(p)
    assert "[vendors.toy] token: missing; add token = ..." in str(info.value)


def test_several_problems_are_all_reported(tmp_path):
    p = write(
        tmp_path,
        """
[general]
mail_host = "not a host"
log_level = "loud"
[vendors.toy]
api_url = "ftp://x"
token = "t"
retries = 99
read_timeout = 0
""",
    )
    with pytest.raises(ConfigError) as info:
        load_runtime(p)
    msg = str(info.value)
    assert "5 problems" in msg
    for fragment in (
        "[general] mail_host",
        "[general] log_level: must be one of",
        "[vendors.toy] api_url",
        "[vendors.toy] retries: must be between 0 and 10",
        "[vendors.toy] read_timeout: must be greater than 0",
    ):
        assert fragment in msg


def test_unknown_top_level_table_and_wrong_shapes(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_runtime(write(tmp_path, "[genral]\nx = 1\n"))
    assert "[genral]: unknown table" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_runtime(write(tmp_path, "vendors = 3\n"))
    assert "vendors: must be a table" in str(info.value)


def test_uninstalled_vendor_is_named(tmp_path):
    with pytest.raises(PluginError) as info:
        load_runtime(write(tmp_path, "[vendors.spamprot]\nusername = 'x'\n"))
    assert "[vendors.spamprot]" in str(info.value) and "toy" in str(info.value)


def test_bad_vendor_name(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_runtime(write(tmp_path, "[vendors.Toy-X]\n"))
    assert "[vendors.Toy-X]" in str(info.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_literal_secret_in_readable_file_is_refused_with_chmod(tmp_path, mode):
    p = good(tmp_path, mode=mode)
    with pytest.raises(ConfigError) as info:
        load_runtime(p)
    msg = str(info.value)
    assert f"chmod 600 {p}" in msg and "[vendors.toy] token" in msg
    assert "tok-literal-1" not in msg


def test_env_secret_allows_a_readable_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TOY_TOKEN", "from-env-123")
    rt = load_runtime(good(tmp_path, token='{ env = "TOY_TOKEN" }', mode=0o644))
    assert rt.config.vendors["toy"]["token"].reveal() == "from-env-123"


def test_unset_env_secret(tmp_path, monkeypatch):
    monkeypatch.delenv("TOY_TOKEN", raising=False)
    with pytest.raises(ConfigError) as info:
        load_runtime(good(tmp_path, token='{ env = "TOY_TOKEN" }'))
    assert "[vendors.toy] token: environment variable TOY_TOKEN is not set" in str(info.value)


def test_file_secret_must_be_private(tmp_path):
    secret = tmp_path / "token.txt"
    secret.write_text("from-file-456\n")
    secret.chmod(0o644)
    with pytest.raises(ConfigError) as info:
        load_runtime(good(tmp_path, token=f'{{ file = "{secret}" }}'))
    assert f"chmod 600 {secret}" in str(info.value)
    secret.chmod(0o600)
    rt = load_runtime(good(tmp_path, token=f'{{ file = "{secret}" }}', mode=0o644))
    assert rt.config.vendors["toy"]["token"].reveal() == "from-file-456"


def test_malformed_secret_reference(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_runtime(good(tmp_path, token='{ vault = "x" }'))
    assert "[vendors.toy] token" in str(info.value) and "env" in str(info.value)


def test_missing_ca_bundle(tmp_path):
    p = write(
        tmp_path, GOOD.format(state=tmp_path, token='"t"') + 'ca_bundle = "/nonexistent.pem"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_runtime(p)
    assert "[vendors.toy] ca_bundle: CA bundle /nonexistent.pem does not exist" in str(info.value)


@pytest.mark.parametrize(
    "value", ['a"b\\c\nd', "sandbox-Pa55&#%+=", 12345, 2.5, True, ["x", 1], {"env": "X"}]
)
def test_toml_value_round_trips(value):
    import tomllib

    from spamfilter_plugin.config.model import toml_value

    assert tomllib.loads(f"k = {toml_value(value)}")["k"] == value


def test_file_secret_is_its_first_line(tmp_path):
    secret = tmp_path / "token.txt"
    secret.write_text("first-line-789\r\nsecond line, a comment\n")
    secret.chmod(0o600)
    rt = load_runtime(good(tmp_path, token=f'{{ file = "{secret}" }}'))
    assert rt.config.vendors["toy"]["token"].reveal() == "first-line-789"


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_file_secret_must_be_a_regular_file(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path, 0o600)  # reading it would wait for a writer forever
    elif kind == "device":
        path = Path("/dev/zero")  # reading it to the end never ends
    else:
        path = tmp_path / "dir"
        path.mkdir(mode=0o700)
    with pytest.raises(ConfigError) as info:
        load_runtime(good(tmp_path, token=f'{{ file = "{path}" }}'))
    assert f"secret file {path} is not a regular file" in str(info.value)


def test_file_secret_permissions_are_checked_before_reading(tmp_path, monkeypatch):
    secret = tmp_path / "token.txt"
    secret.write_text("from-file-456\n")
    secret.chmod(0o644)
    opened = []

    def spy(real):
        def opener(path, *args, **kwargs):
            opened.append(str(path))
            return real(path, *args, **kwargs)

        return opener

    for module, name in ((os, "open"), (io, "open"), (builtins, "open")):
        monkeypatch.setattr(module, name, spy(getattr(module, name)))
    with pytest.raises(ConfigError, match="chmod 600"):
        load_runtime(good(tmp_path, token=f'{{ file = "{secret}" }}'))
    assert str(secret) not in opened


def test_a_huge_first_line_is_refused(tmp_path):
    secret = tmp_path / "token.txt"
    secret.write_bytes(b"x" * 100_000)
    secret.chmod(0o600)
    with pytest.raises(ConfigError, match="too long"):
        load_runtime(good(tmp_path, token=f'{{ file = "{secret}" }}'))


# -- one validation for every command, cached only on what it validated ------------------


def test_emit_notices_a_chmod_even_when_the_content_did_not_change(tmp_path):
    from spamfilter_plugin.emit import emit
    from spamfilter_plugin.events import DomainCreated

    cfg = good(tmp_path)
    emit(DomainCreated(domain="a.example"), cfg)  # validated, and the result cached
    cfg.chmod(0o644)  # same bytes, same mtime: only the mode changed
    with pytest.raises(ConfigError) as info:
        emit(DomainCreated(domain="b.example"), cfg)
    assert f"chmod 600 {cfg}" in str(info.value)
    cfg.chmod(0o600)
    assert emit(DomainCreated(domain="b.example"), cfg).rows


def test_the_queue_command_validates_the_config(tmp_path, cli_env):
    import subprocess

    from test_cli import SPAMFILTER

    cfg = good(tmp_path)
    text = cfg.read_text().replace('mail_host = "Mail.Example.NET"', "max_attempts = 1.5")
    cfg.write_text(text)
    proc = subprocess.run(
        [SPAMFILTER, "--config", str(cfg), "queue", "list"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "[general] max_attempts" in proc.stderr and "whole number" in proc.stderr


def test_max_attempts_must_be_a_whole_number(tmp_path):
    cfg = good(tmp_path)
    cfg.write_text(cfg.read_text().replace('mail_host = "Mail.Example.NET"', "max_attempts = 1.5"))
    with pytest.raises(ConfigError) as info:
        load_runtime(cfg)
    assert "[general] max_attempts" in str(info.value) and "whole number" in str(info.value)


def test_a_state_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "state").write_text("not a directory")
    with pytest.raises(ConfigError) as info:
        load_runtime(good(tmp_path))
    assert "[general] state_dir" in str(info.value) and "not a directory" in str(info.value)
