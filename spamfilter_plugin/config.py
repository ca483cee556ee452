"""The configuration file.

One TOML file, found by ``--config PATH``, else ``$SPAMFILTER_CONFIG``, else
``/etc/spamfilter-plugin/config.toml``::

    [general]
    state_dir = "/var/lib/spamfilter-plugin"
    mail_host = "mail.example.net"

    [vendors.spamport]                 # a [vendors.X] table enables vendor X
    username = "reseller"
    password = { env = "SPAMPORT_PASSWORD" }

Each vendor validates its own table with a marshmallow schema derived from
:class:`VendorSchema`; unknown keys are errors, and every error names the table,
the key and the fix.  A secret may be a literal string, ``{ env = "NAME" }`` or
``{ file = "/path" }``; a file holding a literal secret (or a secret file) that
the group or others can read is refused with the ``chmod`` to run.

This module is light (the panel-hook path reads the file through it) and
imports nothing above :mod:`.errors` and :mod:`.redaction`; the marshmallow
schemas live in :mod:`.config_schema`, which builds on this module (never the
other way round).  The defaults of every key are defined here once:
:class:`GeneralConfig` for ``[general]`` and :data:`HTTP_DEFAULTS` for the keys
every ``[vendors.X]`` table shares.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ConfigError
from .redaction import Secret

DEFAULT_PATH = Path("/etc/spamfilter-plugin/config.toml")
ENV_VAR = "SPAMFILTER_CONFIG"
DEFAULT_STATE_DIR = "/var/lib/spamfilter-plugin"


def config_path(cli_value: str | os.PathLike | None = None) -> Path:
    """Where the config file is: the CLI value, else ``$SPAMFILTER_CONFIG``, else the default."""
    if cli_value:
        return Path(cli_value)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return DEFAULT_PATH


def _identity(st: os.stat_result) -> str:
    """What a file's validation depends on: which file, its content (size and times: the
    change time moves on chmod and chown too), its mode and its owner."""
    return (
        f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:"
        f"{st.st_mode:o}:{st.st_uid}:{st.st_gid}"
    )


def _secret_files(data: dict[str, Any]) -> list[str]:
    """The ``{ file = ... }`` secret references of every vendor table."""
    vendors = data.get("vendors")
    found = []
    for table in vendors.values() if isinstance(vendors, dict) else ():
        for value in table.values() if isinstance(table, dict) else ():
            if isinstance(value, dict) and isinstance(value.get("file"), str):
                found.append(value["file"])
    return sorted(found)


def state_dir_problem(value: Any) -> str | None:
    """Why *value* cannot be ``state_dir`` (a relative path would name a different
    directory for each command's working directory), or None."""
    if not isinstance(value, str) or not value.strip():
        return "must be an absolute path, e.g. /var/lib/spamfilter-plugin"
    if not os.path.isabs(value):
        return f"{value!r} is relative; give an absolute path, e.g. /var/lib/spamfilter-plugin"
    if any(ord(c) < 32 for c in value):
        return "must not contain control characters"
    return None


#: defaults of the HTTP keys every ``[vendors.X]`` table accepts (the one place they are set;
#: the schema and :class:`~spamfilter_plugin.http.HttpPolicy` both read them from here)
HTTP_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 5.0,
    "read_timeout": 30.0,
    "deadline": 60.0,
    "retries": 3,
    "max_response_bytes": 5 * 1024 * 1024,
}


@dataclass(frozen=True)
class GeneralConfig:
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    mail_host: str | None = None
    log_level: str = "info"
    #: seconds a worker holds a claimed queue row before another worker may take it
    lease_seconds: float = 300.0
    #: first retry delay and its cap (seconds), and attempts before a row is dead
    retry_base: float = 10.0
    retry_cap: float = 3600.0
    max_attempts: int = 30


@dataclass(frozen=True)
class RawConfig:
    """A parsed but not yet validated config file."""

    path: Path
    data: dict[str, Any]
    loose_permissions: bool
    #: the identity of the file as read (see :attr:`fingerprint`)
    identity: str = ""

    @property
    def fingerprint(self) -> str:
        """The key a validation of this file is cached on: the package version, the file's
        identity as read (content, mode, owner), and that of each secret file it names."""
        parts = [__version__, str(self.path.resolve()), self.identity]
        for name in _secret_files(self.data):
            try:
                parts.append(f"{name}={_identity(os.stat(name))}")
            except OSError:
                parts.append(f"{name}=missing")
        return "|".join(parts)

    @property
    def vendor_tables(self) -> dict[str, Any]:
        return self.data.get("vendors", {}) if isinstance(self.data.get("vendors"), dict) else {}

    @property
    def enabled_vendors(self) -> list[str]:
        return sorted(self.vendor_tables)

    @property
    def state_dir(self) -> Path:
        """``[general] state_dir``, or its default (read without the schemas, for the light
        paths that only need the queue; checked as the schema checks it)."""
        value = (self.data.get("general") or {}).get("state_dir", str(GeneralConfig.state_dir))
        problem = state_dir_problem(value)
        if problem:
            raise ConfigError(f"{self.path}: [general] state_dir: {problem}")
        return Path(value)


@dataclass(frozen=True)
class Config:
    path: Path
    general: GeneralConfig
    vendors: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the ``[panel]`` table with its defaults (see :mod:`.panels`), or None without one
    panel: dict[str, str] | None = None
    #: the :attr:`RawConfig.fingerprint` of what was validated
    fingerprint: str = ""


def read_file(path: Path) -> RawConfig:
    """Read and parse the TOML file; check only its syntax and top-level shape."""
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())  # the file that is read, whatever is renamed meanwhile
            data = tomllib.load(fh)
        loose = bool(stat.S_IMODE(st.st_mode) & 0o077)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; create it (see README, 'Configuration'), "
            f"or point --config or ${ENV_VAR} at it"
        ) from None
    except PermissionError:
        raise ConfigError(
            f"config file {path} is not readable by this user; run as root or fix its owner"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    problems = []
    for key, value in data.items():
        if key not in ("general", "panel", "vendors"):
            problems.append(
                f"[{key}]: unknown table; the file has [general], [panel] and [vendors.<name>] "
                "tables only"
            )
        elif not isinstance(value, dict):
            problems.append(f"{key}: must be a table, written [{key}]")
    for name, table in (
        (data.get("vendors") or {}).items() if isinstance(data.get("vendors"), dict) else ()
    ):
        if not isinstance(table, dict):
            problems.append(f"[vendors] {name}: must be a table, written [vendors.{name}]")
    if problems:
        raise ConfigError(join_problems(path, problems))
    return RawConfig(path=path, data=data, loose_permissions=loose, identity=_identity(st))


def join_problems(path: Path, problems: list[str]) -> str:
    """One message for the problems found in the file at *path*."""
    if len(problems) == 1:
        return f"{path}: {problems[0]}"
    return f"{path}: {len(problems)} problems:\n  " + "\n  ".join(problems)


def toml_value(value: Any) -> str:
    """*value* written as a TOML value (secrets revealed: for writing config files only)."""
    if isinstance(value, Secret):
        value = value.reveal()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    text = (
        str(value)
        .replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )
    return f'"{text}"'


def toml_key(key: str) -> str:
    """*key* bare when TOML allows it, else quoted (``"example.com"``)."""
    bare = key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    return key if bare else toml_value(key)


def toml_table(name: str, table: dict[str, Any], prefix: str = "") -> list[str]:
    """The lines of a ``[name]`` table; *prefix* ``"# "`` writes it commented out."""
    return [f"{prefix}[{name}]"] + [
        f"{prefix}{toml_key(k)} = {toml_value(v)}" for k, v in table.items()
    ]
