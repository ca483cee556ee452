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

Reading the file (its path, syntax, top-level shape, fingerprint and ``state_dir``)
is in :mod:`.file`, on the standard library alone, for the panel-hook path; this module
gives it its dataclasses and imports nothing above :mod:`..errors` and
:mod:`..redaction`.  The marshmallow schemas live in :mod:`.schema`, which builds on this
module (never the other way round).  The defaults of every key are defined here once:
:class:`GeneralConfig` for ``[general]`` and :data:`HTTP_DEFAULTS` for the keys
every ``[vendors.X]`` table shares.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..redaction import Secret
from . import file as config_file
from .file import (
    DEFAULT_STATE_DIR,
    ENV_VAR,
    fingerprint,
    join_problems,
    locate,
    read,
    secret_files,
    state_dir,
    state_dir_problem,
)

__all__ = [
    "DEFAULT_STATE_DIR",
    "ENV_VAR",
    "ConfigError",
    "join_problems",
    "state_dir_problem",
]

DEFAULT_PATH = Path(config_file.DEFAULT_PATH)


def config_path(cli_value: str | os.PathLike | None = None) -> Path:
    """Where the config file is: the CLI value, else ``$SPAMFILTER_CONFIG``, else the default."""
    return Path(locate(cli_value))


#: defaults of the HTTP keys every ``[vendors.X]`` table accepts (the one place they are set;
#: the schema and :class:`~spamfilter_plugin.http.HttpPolicy` both read them from here)
HTTP_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 5.0,
    "read_timeout": 30.0,
    "deadline": 60.0,
    "retries": 3,
    "max_response_bytes": 5 * 1024 * 1024,
}


#: deliveries a worker keeps in flight to one vendor at once (``[vendors.X] concurrency``)
CONCURRENCY_DEFAULT = 8
#: the most a ``[vendors.X]`` table may ask for
CONCURRENCY_MAX = 64


#: defaults of the ``[mx]`` table: where MX changes are verified, and the destination check
MX_DEFAULTS: dict[str, Any] = {
    "nameservers": ["127.0.0.1"],  # the panel's own (authoritative) name server
    "dns_port": 53,
    "dns_timeout": 5.0,
    "verify_hours": 48.0,
    "recheck_hours": 24.0,  # how often the worker looks again at verified MX sets (drift)
    "smtp_port": 25,
    "smtp_timeout": 30.0,
    "helo_name": "",  # empty: this host's fully qualified name
}


#: what alerts are sent for (``[alerts] on``; see :mod:`~spamfilter_plugin.alerts`)
ALERT_KINDS = ("dead", "suspended", "mx_wrong", "drift", "worker_stalled")

#: defaults of the ``[alerts]`` table: where alerts go (apprise URLs, secrets) and how often
ALERTS_DEFAULTS: dict[str, Any] = {
    "urls": [],  # none: no alert is sent
    "on": list(ALERT_KINDS),
    "every_minutes": 15.0,  # at most one message per kind in this time, grouped
    "stall_minutes": 10.0,  # a worker not seen this long is stalled
}


#: defaults of the ``[console]`` table: who may log in to the web console, and from where
#: the panel may frame its pages
CONSOLE_DEFAULTS: dict[str, Any] = {
    "username": "admin",
    "password_hash": "",  # an argon2 hash (spamfilter serve --hash-password); empty: no login
    "panel_origin": "",  # e.g. https://panel.example.net:2222; empty: pages are never framed
    "public_url": "",  # the console's address as browsers reach it (links for panel users)
    "metrics_token": None,  # a bearer token /metrics asks for; none: loopback scrapes only
    "session_idle_minutes": 60,  # a console session unused this long ends
    "session_max_hours": 12,  # and any session ends this long after its login
}


@dataclass(frozen=True)
class GeneralConfig:
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    mail_host: str | None = None
    log_level: str = "info"
    #: ``text`` (the default) or ``json``: one JSON object a line on standard error
    log_format: str = "text"
    #: days the audit log keeps its entries (the worker purges older ones)
    audit_days: float = 365.0
    #: hours between the worker's drift checks of each vendor against the panel's list
    drift_hours: float = 24.0
    #: queue the fixes a drift check finds, as ``sync`` would (else only report them)
    drift_repair: bool = False
    #: seconds a worker holds a claimed queue row before another worker may take it
    lease_seconds: float = 300.0
    #: first retry delay and its cap (seconds), and attempts before a row is dead
    retry_base: float = 10.0
    retry_cap: float = 3600.0
    max_attempts: int = 30


@dataclass(frozen=True)
class FleetConfig:
    """The ``[fleet]`` table: the shared queue on PostgreSQL (see :mod:`..store.postgres`)."""

    #: a libpq URL without a password (``postgresql://user@host/database``)
    url: str
    #: this server's name in the fleet (default: the host name)
    server: str
    #: the file of the key that seals passwords in shared rows (made by ``fleet init``)
    key_file: Path
    password: Secret | None = None
    #: a server's published domain list older than this blocks removals by ``sync``
    inventory_max_age_hours: float = 24.0
    #: seconds to wait for the database to answer a connection
    connect_timeout: float = 5.0


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
        """The key a validation of this file is cached on (see
        :func:`~.config_file.fingerprint`)."""
        return fingerprint(self.path, self.identity, secret_files(self.data))

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
        return Path(state_dir(self.path, self.data))


@dataclass(frozen=True)
class Config:
    path: Path
    general: GeneralConfig
    vendors: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the ``[panel]`` table with its defaults (see :mod:`.panels`), or None without one
    panel: dict[str, str] | None = None
    #: the :attr:`RawConfig.fingerprint` of what was validated
    fingerprint: str = ""
    #: the ``{ file = ... }`` secrets the file names (part of the fingerprint)
    secret_files: tuple[str, ...] = ()
    #: the ``[mx]`` table with its defaults (:data:`MX_DEFAULTS`)
    mx: dict[str, Any] = field(default_factory=lambda: dict(MX_DEFAULTS))
    #: the ``[console]`` table with its defaults (:data:`CONSOLE_DEFAULTS`)
    console: dict[str, Any] = field(default_factory=lambda: dict(CONSOLE_DEFAULTS))
    #: the ``[fleet]`` table, or None (one server, its own queue)
    fleet: FleetConfig | None = None
    #: the ``[plans]`` table (:mod:`~spamfilter_plugin.plans`), or None (every plan protected)
    plans: dict[str, Any] | None = None
    #: the ``[alerts]`` table with its defaults (:data:`ALERTS_DEFAULTS`)
    alerts: dict[str, Any] = field(default_factory=lambda: dict(ALERTS_DEFAULTS))


def read_file(path: Path) -> RawConfig:
    """Read and parse the TOML file; check only its syntax and top-level shape."""
    data, loose, file_identity = read(path)
    return RawConfig(path=path, data=data, loose_permissions=loose, identity=file_identity)


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


def write_config(path: Path, general: dict[str, Any], vendors: dict[str, dict[str, Any]]) -> Path:
    """Write a config file (mode 0600) with the given tables; return its path.

    ``state_dir`` defaults to a ``state`` folder beside the file, so a test never
    touches the system's state directory."""
    general = {"state_dir": str(path.parent / "state"), **general}
    lines = toml_table("general", general)
    for name, table in vendors.items():
        lines += ["", *toml_table(f"vendors.{name}", table)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path
