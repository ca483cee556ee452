"""Reading the config file: where it is, its parsed tables with their top-level shape
checked, its identity and fingerprint, and ``state_dir``.

A panel waits while ``spamfilter panel-hook`` runs, so this lives on the standard library
alone and :mod:`..errors` (``tomllib`` is imported only when the file is read); the
dataclasses are :mod:`.model`'s, the schemas :mod:`.schema`'s, the caches of the last
validation :mod:`.cache`'s.
"""

from __future__ import annotations

import os
import stat

from .. import __version__
from ..errors import ConfigError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the hook path
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PATH = "/etc/spamfilter-plugin/config.toml"
ENV_VAR = "SPAMFILTER_CONFIG"
DEFAULT_STATE_DIR = "/var/lib/spamfilter-plugin"
TABLES = ("alerts", "console", "fleet", "general", "mx", "panel", "plans", "vendors")


def locate(cli_value: str | os.PathLike | None = None) -> str:
    """Where the config file is: the CLI value, else ``$SPAMFILTER_CONFIG``, else the default."""
    if cli_value:
        return os.fspath(cli_value)
    return os.environ.get(ENV_VAR) or DEFAULT_PATH


def identity(st: os.stat_result) -> str:
    """What a file's validation depends on: which file, its content (size and times: the
    change time moves on chmod and chown too), its mode and its owner."""
    return (
        f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:"
        f"{st.st_mode:o}:{st.st_uid}:{st.st_gid}"
    )


def secret_files(data: dict[str, Any]) -> list[str]:
    """The ``{ file = ... }`` secret references of every vendor table and of ``[fleet]``."""
    vendors = data.get("vendors")
    found = []
    tables = list(vendors.values()) if isinstance(vendors, dict) else []
    for table in [*tables, data.get("fleet")]:
        for value in table.values() if isinstance(table, dict) else ():
            if isinstance(value, dict) and isinstance(value.get("file"), str):
                found.append(value["file"])
    return sorted(found)


def join_problems(path: str | os.PathLike, problems: list[str]) -> str:
    """One message for the problems found in the file at *path*."""
    if len(problems) == 1:
        return f"{path}: {problems[0]}"
    return f"{path}: {len(problems)} problems:\n  " + "\n  ".join(problems)


def read(path: str | os.PathLike) -> tuple[dict[str, Any], bool, str]:
    """Parse the TOML file at *path*, checking only its syntax and top-level shape: its
    tables, whether the group or others may read it, and its :func:`identity` as read.

    ConfigError says what is wrong and how to fix it."""
    import tomllib

    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())  # the file that is read, whatever is renamed meanwhile
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; create it (see docs/configuration.md), "
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
        if key not in TABLES:
            problems.append(
                f"[{key}]: unknown table; the file has [general], [alerts], [console], "
                "[fleet], [mx], [panel], [plans] and [vendors.<name>] tables only"
            )
        elif not isinstance(value, dict):
            problems.append(f"{key}: must be a table, written [{key}]")
    vendors = data.get("vendors")
    for name, table in vendors.items() if isinstance(vendors, dict) else ():
        if not isinstance(table, dict):
            problems.append(f"[vendors] {name}: must be a table, written [vendors.{name}]")
    if problems:
        raise ConfigError(join_problems(path, problems))
    return data, bool(stat.S_IMODE(st.st_mode) & 0o077), identity(st)


def fingerprint(path: str | os.PathLike, file_identity: str, secrets: list[str]) -> str:
    """The key a validation of a file is cached on: the package version, the file's
    identity as read (content, mode, owner), and that of each of the secret files it
    names (*secrets*, see :func:`secret_files`)."""
    parts = [__version__, os.path.realpath(path), file_identity]
    for name in secrets:
        try:
            parts.append(f"{name}={identity(os.stat(name))}")
        except OSError:
            parts.append(f"{name}=missing")
    return "|".join(parts)


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


def state_dir(path: str | os.PathLike, data: dict[str, Any]) -> str:
    """``[general] state_dir`` of the file at *path*, or its default, checked as the schema
    checks it (for the light paths that only need the queue)."""
    value = (data.get("general") or {}).get("state_dir", DEFAULT_STATE_DIR)
    problem = state_dir_problem(value)
    if problem:
        raise ConfigError(f"{path}: [general] state_dir: {problem}")
    return value
