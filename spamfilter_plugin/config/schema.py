"""marshmallow schemas of the config file (see :mod:`.config`): the general table,
the base of every vendor's table, secrets, and the validation that names the
table, the key and the fix for every problem."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
)

from ..errors import ConfigError, InvalidInput
from ..events import normalise_email, normalise_host
from ..panels import settings as panel_settings
from ..redaction import Secret
from ..urls import plain_http_problem
from .file import secret_files
from .model import (
    ALERT_KINDS,
    ALERTS_DEFAULTS,
    CONCURRENCY_DEFAULT,
    CONCURRENCY_MAX,
    CONSOLE_DEFAULTS,
    HTTP_DEFAULTS,
    MX_DEFAULTS,
    Config,
    FleetConfig,
    GeneralConfig,
    RawConfig,
    join_problems,
    state_dir_problem,
)


class WholeNumber(fields.Integer):
    """An integer key: ``1.5`` is refused, not cut to 1."""

    default_error_messages = {  # noqa: RUF012 - marshmallow merges it per class
        "invalid": "must be a whole number, without a decimal point",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)


class SecretField(fields.Field):
    """A secret: a literal string, ``{env = "NAME"}`` or ``{file = "/path"}``.

    Deserialises to a :class:`~spamfilter_plugin.redaction.Secret`.
    """

    default_error_messages = {  # noqa: RUF012 - marshmallow merges it per class
        "invalid": 'give a string, {{ env = "VARIABLE" }} or {{ file = "/path/to/file" }}',
    }

    def _deserialize(self, value: Any, attr: str | None, data: Mapping | None, **kwargs) -> Secret:
        if isinstance(value, str):
            if not value:
                raise ValidationError('is empty; give the secret, or { env = "VARIABLE" }')
            return Secret(value)
        if isinstance(value, Mapping) and len(value) == 1:
            ((kind, ref),) = value.items()
            if kind == "env" and isinstance(ref, str):
                found = os.environ.get(ref)
                if not found:
                    raise ValidationError(
                        f"environment variable {ref} is not set (or empty); export it"
                    )
                return Secret(found)
            if kind == "file" and isinstance(ref, str):
                return Secret(read_secret_file(ref))
        raise self.make_error("invalid")


#: the longest secret a ``{ file = ... }`` reference may hold
MAX_SECRET_BYTES = 4096


def read_secret_file(ref: str) -> str:
    """The first line of the secret file *ref*.  Its type and permissions are checked
    before anything is read (a FIFO would hang, a device never end), and the line read is
    bounded."""
    try:
        st = os.stat(ref)
    except OSError as exc:
        raise ValidationError(f"cannot read secret file {ref}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValidationError(
            f"secret file {ref} is not a regular file; give the path of a file holding the secret"
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ValidationError(
            f"secret file {ref} is readable by group or others; run: chmod 600 {ref}"
        )
    try:
        # O_NONBLOCK: if the path was swapped for a FIFO since the check, do not wait on it
        fd = os.open(ref, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ValidationError(f"secret file {ref} is not a regular file")
            line = fh.readline(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise ValidationError(f"cannot read secret file {ref}: {exc.strerror}") from None
    if len(line) > MAX_SECRET_BYTES:
        raise ValidationError(
            f"secret file {ref}: the first line is too long (over {MAX_SECRET_BYTES} bytes); "
            "put the secret alone on the first line"
        )
    try:
        text = line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ValidationError(f"secret file {ref}: the first line is not UTF-8 text") from None
    if not text:
        raise ValidationError(f"secret file {ref} is empty (the secret is its first line)")
    return text


def checked_by(normalise, field: str, *, empty_ok: bool = False, hint: str = ""):
    """A marshmallow validator made of one of :mod:`.events`' normalisers (``normalise_ip``,
    ``normalise_email``...): what it refuses becomes a ValidationError in its own words, or
    in *hint* (``{value!r}`` is filled in).  None passes; so does "" when *empty_ok*."""

    def check(value: str | None) -> None:
        if value is None or (empty_ok and value == ""):
            return
        try:
            normalise(value, field)
        except InvalidInput as exc:
            raise ValidationError(
                hint.format(value=value) if hint else exc.message.split(": ", 1)[-1]
            ) from None

    check.__name__ = f"checked_{field}"
    return check


def https_url(default: str) -> fields.Url:
    """``api_url`` of a vendor reached only over HTTPS: *default* when absent; a plain
    ``http://`` URL is refused unless it is a loopback address (where an emulator runs)."""

    def check(value: str) -> None:
        problem = plain_http_problem(value, default)
        if problem:
            raise ValidationError(problem)

    return fields.Url(
        schemes={"http", "https"}, require_tld=False, load_default=default, validate=check
    )


def email_or_empty(field: str):
    """A marshmallow validator: an e-mail address, or the empty string (meaning none)."""
    return checked_by(
        normalise_email,
        field,
        empty_ok=True,
        hint="{value!r} is not an e-mail address (info@example.com), or leave it empty",
    )


def _positive(name: str):
    def check(value: float) -> None:
        if value <= 0:
            raise ValidationError(f"must be greater than 0 (got {value})")

    check.__name__ = f"positive_{name}"
    return check


class VendorSchema(Schema):
    """Base schema of a ``[vendors.<name>]`` table; vendor schemas subclass it.

    Every vendor accepts ``api_url`` (so it can be pointed at an emulator), the
    HTTP timeouts, the retry count, the response size cap and a CA bundle.
    """

    class Meta:
        unknown = RAISE

    api_url = fields.Url(schemes={"http", "https"}, require_tld=False)
    connect_timeout = fields.Float(
        load_default=HTTP_DEFAULTS["connect_timeout"], validate=_positive("connect_timeout")
    )
    read_timeout = fields.Float(
        load_default=HTTP_DEFAULTS["read_timeout"], validate=_positive("read_timeout")
    )
    deadline = fields.Float(load_default=HTTP_DEFAULTS["deadline"], validate=_positive("deadline"))
    retries = WholeNumber(
        load_default=HTTP_DEFAULTS["retries"],
        validate=validate.Range(0, 10, error="must be between 0 and 10 (got {input})"),
    )
    max_response_bytes = WholeNumber(
        load_default=HTTP_DEFAULTS["max_response_bytes"],
        validate=validate.Range(
            1024, 512 * 1024 * 1024, error="must be between 1024 and 536870912"
        ),
    )
    ca_bundle = fields.String(load_default=None)
    concurrency = WholeNumber(
        load_default=CONCURRENCY_DEFAULT,
        validate=validate.Range(
            1,
            CONCURRENCY_MAX,
            error=f"must be between 1 and {CONCURRENCY_MAX} deliveries at once (got {{input}})",
        ),
    )

    on_suspend = fields.String(
        load_default="keep",
        validate=validate.OneOf(
            ("keep", "bypass"),
            error="must be keep (filtering goes on) or bypass (the vendor relays the "
            "suspended domain's mail unfiltered) (got {input})",
        ),
    )

    @validates("ca_bundle")
    def _ca_bundle_exists(self, value: str | None, **kwargs) -> None:
        if value is not None and not Path(value).is_file():
            raise ValidationError(f"CA bundle {value} does not exist; give the path of a PEM file")


class MxHostSchema(Schema):
    """One of the vendor's MX hosts: ``{ host = "mx1.vendor.example", priority = 10 }``."""

    class Meta:
        unknown = RAISE

    host = fields.String(required=True, validate=checked_by(normalise_host, "host"))
    priority = WholeNumber(
        required=True,
        validate=validate.Range(0, 65535, error="must be between 0 and 65535 (got {input})"),
    )


class GatewaySchema(VendorSchema):
    """A gateway filter's table: the vendor's schema keys plus its MX hosts (``mx``, as the
    vendor tells its customers) and ``manage_mx`` (default: on when ``mx`` is given), which
    switches a protected domain's MX records to those hosts (docs/mx.md)."""

    mx = fields.List(fields.Nested(MxHostSchema), load_default=list)
    manage_mx = fields.Boolean(load_default=None)

    @post_load
    def _manage_mx(self, data: dict[str, Any], **kwargs) -> dict[str, Any]:
        data["mx"] = [dict(h, host=normalise_host(h["host"], "host")) for h in data["mx"]]
        if data["manage_mx"] is None:
            data["manage_mx"] = bool(data["mx"])
        if data["manage_mx"] and not data["mx"]:
            raise ValidationError(
                "manage_mx is on but no MX hosts are given; add "
                'mx = [{ host = "mx1.vendor.example", priority = 10 }]',
                field_name="mx",
            )
        return data


def _mx_port(key: str) -> WholeNumber:
    return WholeNumber(
        load_default=MX_DEFAULTS[key],
        validate=validate.Range(1, 65535, error="must be a port, 1 to 65535"),
    )


class MxSchema(Schema):
    """The ``[mx]`` table (defaults in :data:`~.config.MX_DEFAULTS`)."""

    class Meta:
        unknown = RAISE

    nameservers = fields.List(
        fields.String(validate=checked_by(normalise_host, "nameservers")),
        load_default=lambda: list(MX_DEFAULTS["nameservers"]),
        validate=validate.Length(min=1, error="give at least one name server, e.g. 127.0.0.1"),
    )
    dns_port = _mx_port("dns_port")
    dns_timeout = fields.Float(
        load_default=MX_DEFAULTS["dns_timeout"], validate=_positive("dns_timeout")
    )
    verify_hours = fields.Float(
        load_default=MX_DEFAULTS["verify_hours"], validate=_positive("verify_hours")
    )
    recheck_hours = fields.Float(
        load_default=MX_DEFAULTS["recheck_hours"], validate=_positive("recheck_hours")
    )
    smtp_port = _mx_port("smtp_port")
    smtp_timeout = fields.Float(
        load_default=MX_DEFAULTS["smtp_timeout"], validate=_positive("smtp_timeout")
    )
    helo_name = fields.String(
        load_default=MX_DEFAULTS["helo_name"],
        validate=checked_by(normalise_host, "helo_name", empty_ok=True),
    )


def _argon2_hash(value: str) -> None:
    if value and not value.startswith("$argon2"):
        raise ValidationError(
            "must be an argon2 hash (run: spamfilter serve --hash-password), never the password"
        )


def _web_address(*, origin: bool):
    def check(value: str) -> None:

        if not value:
            return
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or (origin and parts.path not in ("", "/"))
            or parts.query
            or parts.fragment
        ):
            raise ValidationError(
                f"{value!r} is not "
                + (
                    "an origin; write scheme, host and port only, e.g. "
                    "https://panel.example.net:2222"
                    if origin
                    else "a web address, e.g. https://panel.example.net:8025/"
                )
            )

    return check


class ConsoleSchema(Schema):
    """The ``[console]`` table (defaults in :data:`~.config.CONSOLE_DEFAULTS`)."""

    class Meta:
        unknown = RAISE

    username = fields.String(
        load_default=CONSOLE_DEFAULTS["username"],
        validate=validate.Regexp(
            r"^[A-Za-z0-9_.@-]{1,64}$", error="letters, digits, _ . @ and - only (1 to 64)"
        ),
    )
    password_hash = fields.String(
        load_default=CONSOLE_DEFAULTS["password_hash"], validate=_argon2_hash
    )
    panel_origin = fields.String(
        load_default=CONSOLE_DEFAULTS["panel_origin"], validate=_web_address(origin=True)
    )
    public_url = fields.String(
        load_default=CONSOLE_DEFAULTS["public_url"], validate=_web_address(origin=False)
    )
    session_idle_minutes = WholeNumber(
        load_default=CONSOLE_DEFAULTS["session_idle_minutes"],
        validate=validate.Range(1, 24 * 60, error="must be 1 to 1440 minutes"),
    )
    metrics_token = SecretField(load_default=CONSOLE_DEFAULTS["metrics_token"])
    session_max_hours = WholeNumber(
        load_default=CONSOLE_DEFAULTS["session_max_hours"],
        validate=validate.Range(1, 24 * 31, error="must be 1 to 744 hours"),
    )


def _libpq_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres") or not (parts.hostname or parts.path):
        raise ValidationError(
            "must be a libpq URL, e.g. postgresql://spamfilter@db.example.net/spamfilter"
        )
    if parts.password is not None:
        raise ValidationError(
            "holds a password; remove it from the URL and give it as password = "
            '{ env = "SPAMFILTER_FLEET_PASSWORD" } (or { file = "..." })'
        )


class KeyFileField(fields.Field):
    """The fleet key: ``{ file = "/path" }`` (the file may not exist yet: ``spamfilter
    fleet init`` makes it)."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping | None, **kwargs) -> Path:
        ref = value.get("file") if isinstance(value, Mapping) and len(value) == 1 else None
        if not isinstance(ref, str) or not os.path.isabs(ref):
            raise ValidationError(
                'give the key file as { file = "/etc/spamfilter-plugin/fleet.key" } (an '
                "absolute path; 'spamfilter fleet init' makes it)"
            )
        return Path(ref)


class FleetSchema(Schema):
    """The ``[fleet]`` table (see :class:`~.model.FleetConfig`)."""

    class Meta:
        unknown = RAISE

    url = fields.String(required=True, validate=_libpq_url)
    password = SecretField(load_default=None)
    server = fields.String(
        load_default=None,
        validate=validate.Regexp(
            r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
            error="letters, digits, _ . and - only (1 to 63), e.g. web1",
        ),
    )
    key = KeyFileField(required=True)
    inventory_max_age_hours = fields.Float(
        load_default=24.0,
        validate=validate.Range(0.1, 24 * 30, error="must be 0.1 to 720 hours"),
    )
    connect_timeout = fields.Float(
        load_default=5.0, validate=validate.Range(0.5, 120, error="must be 0.5 to 120 seconds")
    )


def fleet_config(raw: RawConfig, problems: list[str]) -> FleetConfig | None:
    """The ``[fleet]`` table, or None without one; its problems added to *problems*."""
    if "fleet" not in raw.data:
        return None
    schema = FleetSchema()
    try:
        table = schema.load(raw.data["fleet"])
    except ValidationError as exc:
        problems += _describe("[fleet]", exc.messages, schema)  # type: ignore[arg-type]
        return None
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        problems.append(
            "[fleet]: fleet mode needs the PostgreSQL driver; install it with: "
            "pip install 'spamfilter-plugin[fleet]'"
        )
        return None
    return FleetConfig(
        url=table["url"],
        server=table["server"] or socket.gethostname().split(".")[0],
        key_file=table["key"],
        password=table["password"],
        inventory_max_age_hours=table["inventory_max_age_hours"],
        connect_timeout=table["connect_timeout"],
    )


def plans_config(raw: RawConfig, problems: list[str]) -> dict[str, Any] | None:
    """The ``[plans]`` table, or None without one; its problems added to *problems*."""
    if "plans" not in raw.data:
        return None
    from ..plans import check

    plans = dict(raw.data["plans"])
    problems += [f"[plans] {p}" for p in check(plans, raw.vendor_tables)]
    return plans


def _optional_table(
    raw: RawConfig, name: str, schema: Schema, defaults: dict[str, Any], problems: list[str]
) -> dict[str, Any]:
    """The table *name* loaded by *schema*; its *defaults* (and its problems added to
    *problems*) when it does not load."""
    try:
        return schema.load(raw.data.get(name, {}))
    except ValidationError as exc:
        problems += _describe(f"[{name}]", exc.messages, schema)  # type: ignore[arg-type]
        return dict(defaults)


def mx_managers(vendors: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The vendors whose table has ``manage_mx`` on."""
    return sorted(n for n, t in vendors.items() if t.get("manage_mx"))


class AlertsSchema(Schema):
    """The ``[alerts]`` table (defaults in :data:`~.config.ALERTS_DEFAULTS`)."""

    class Meta:
        unknown = RAISE

    urls = fields.List(SecretField(), load_default=list)
    on = fields.List(
        fields.String(
            validate=validate.OneOf(ALERT_KINDS, error="must be one of: {choices} (got {input})")
        ),
        load_default=lambda: list(ALERT_KINDS),
    )
    every_minutes = fields.Float(
        load_default=ALERTS_DEFAULTS["every_minutes"], validate=_positive("every_minutes")
    )
    stall_minutes = fields.Float(
        load_default=ALERTS_DEFAULTS["stall_minutes"], validate=_positive("stall_minutes")
    )

    @validates("urls")
    def _known(self, value, **kwargs) -> None:
        """Each URL one apprise can send to (the URL itself is a secret: never shown)."""
        if not value:
            return
        import apprise

        for number, url in enumerate(value, 1):
            if not apprise.Apprise().add(url.reveal()):
                raise ValidationError(
                    f"entry {number} is not a notification URL apprise knows (mailto://, "
                    "slack://, msteams://, json://, ...; see apprise's list of services)"
                )


_GENERAL = GeneralConfig()  # the defaults


class GeneralSchema(Schema):
    class Meta:
        unknown = RAISE

    state_dir = fields.String(
        load_default=str(_GENERAL.state_dir),
        error_messages={"invalid": "must be an absolute path, e.g. /var/lib/spamfilter-plugin"},
    )
    mail_host = fields.String(load_default=None, validate=checked_by(normalise_host, "mail_host"))
    log_level = fields.String(
        load_default=_GENERAL.log_level,
        validate=validate.OneOf(
            ["debug", "info", "warning", "error"], error="must be one of: {choices}"
        ),
    )
    log_format = fields.String(
        load_default=_GENERAL.log_format,
        validate=validate.OneOf(["text", "json"], error="must be text or json"),
    )
    audit_days = fields.Float(load_default=_GENERAL.audit_days, validate=_positive("audit_days"))
    drift_hours = fields.Float(load_default=_GENERAL.drift_hours, validate=_positive("drift_hours"))
    drift_repair = fields.Boolean(load_default=_GENERAL.drift_repair)
    lease_seconds = fields.Float(
        load_default=_GENERAL.lease_seconds, validate=_positive("lease_seconds")
    )
    retry_base = fields.Float(load_default=_GENERAL.retry_base, validate=_positive("retry_base"))
    retry_cap = fields.Float(load_default=_GENERAL.retry_cap, validate=_positive("retry_cap"))
    max_attempts = WholeNumber(
        load_default=_GENERAL.max_attempts,
        validate=validate.Range(1, 1000, error="must be between 1 and 1000 (got {input})"),
    )

    @validates("state_dir")
    def _state_dir(self, value: str, **kwargs) -> None:
        problem = state_dir_problem(value)
        if problem:
            raise ValidationError(problem)
        if os.path.exists(value) and not os.path.isdir(value):
            raise ValidationError(
                f"{value} is not a directory; point state_dir at a directory (it is made "
                "if missing) or move that file away"
            )


def _describe(table: str, messages: dict[str, Any], schema: Schema) -> list[str]:
    """Turn marshmallow's error dict into lines that name the table, the key and the fix."""
    known = ", ".join(sorted(schema.fields))
    lines = []
    for key, errs in sorted(messages.items(), key=lambda kv: str(kv[0])):
        if isinstance(errs, dict):  # nested
            errs = [f"{k}: {'; '.join(v) if isinstance(v, list) else v}" for k, v in errs.items()]
        for msg in errs:
            if msg == "Unknown field.":
                text = f"unknown key; remove it or check the spelling (known keys: {known})"
            elif msg == "Missing data for required field.":
                text = f"missing; add {key} = ... to the table"
            elif msg.startswith("Not a valid"):
                text = f"{msg.rstrip('.').lower()}; fix its value"
            else:
                text = msg
            lines.append(f"{table} {key}: {text}")
    return lines


def literal_secret_keys(schema: Schema, table: Mapping[str, Any]) -> list[str]:
    """The keys of *table* that hold a secret as a literal string, nested tables included
    (a ``fields.Dict`` of ``fields.Nested`` tables, like SpamWall's ``domain_admins``)."""
    found = []
    for name, fld in schema.fields.items():
        key = fld.data_key or name
        value = table.get(key)
        if isinstance(fld, SecretField) and isinstance(value, str):
            found.append(key)
        nested = getattr(fld, "value_field", None)
        if isinstance(fld, fields.Dict) and isinstance(nested, fields.Nested):
            for sub, sub_table in (value or {}).items() if isinstance(value, Mapping) else ():
                if isinstance(sub_table, Mapping):
                    inner = nested.schema
                    found += [f"{key}.{sub}.{k}" for k in literal_secret_keys(inner, sub_table)]
    return found


def _across_vendors(vendors: Mapping[str, Mapping[str, Any]], lease: float) -> list[str]:
    """What is wrong between the vendors' tables and the rest: a deadline not shorter than
    the lease, more than one vendor managing MX."""
    problems = []
    for name, table in vendors.items():
        if table.get("deadline", 0) >= lease:
            problems.append(
                f"[vendors.{name}] deadline: {table['deadline']:g}s is not shorter than "
                f"[general] lease_seconds ({lease:g}s); a slow call could be delivered twice. "
                "Lower the deadline or raise lease_seconds"
            )
    managers = mx_managers(vendors)
    if len(managers) > 1:
        named = " and ".join(f"[vendors.{n}]" for n in managers)
        problems.append(
            f"{named} both manage MX records (manage_mx, on when mx is given): a domain's "
            "mail can go to only one filter first, so at most one vendor may manage MX; set "
            "manage_mx = false in all but one"
        )
    return problems


def validate_config(raw: RawConfig, schemas: Mapping[str, type[Schema]]) -> Config:
    """Validate *raw* against the general schema and each enabled vendor's schema.

    :param schemas: vendor name -> schema class, for every enabled vendor.
    """
    problems: list[str] = []
    general_schema = GeneralSchema()
    general: dict[str, Any] = {}
    try:
        general = general_schema.load(raw.data.get("general", {}))
    except ValidationError as exc:
        problems += _describe("[general]", exc.messages, general_schema)  # type: ignore[arg-type]
    vendors: dict[str, dict[str, Any]] = {}
    literal: list[str] = []
    for name, table in raw.vendor_tables.items():
        schema = schemas[name]()
        try:
            vendors[name] = schema.load(table)
        except ValidationError as exc:
            problems += _describe(f"[vendors.{name}]", exc.messages, schema)  # type: ignore[arg-type]
        literal += [f"[vendors.{name}] {k}" for k in literal_secret_keys(schema, table)]
    problems += _across_vendors(vendors, general.get("lease_seconds", _GENERAL.lease_seconds))
    mx = _optional_table(raw, "mx", MxSchema(), MX_DEFAULTS, problems)
    console = _optional_table(raw, "console", ConsoleSchema(), CONSOLE_DEFAULTS, problems)
    fleet = fleet_config(raw, problems)
    if "fleet" in raw.data:
        literal += [f"[fleet] {k}" for k in literal_secret_keys(FleetSchema(), raw.data["fleet"])]
    plans = plans_config(raw, problems)
    alerts = _optional_table(raw, "alerts", AlertsSchema(), ALERTS_DEFAULTS, problems)
    table = raw.data.get("alerts")
    urls = table.get("urls") if isinstance(table, dict) else None
    if isinstance(urls, list) and any(isinstance(u, str) for u in urls):
        literal.append("[alerts] urls")
    panel = None
    if "panel" in raw.data:
        try:
            panel = panel_settings(raw.data["panel"])
        except ValueError as exc:
            problems.append(f"[panel] {exc}")
    if literal and raw.loose_permissions:
        problems.append(
            f"holds a literal secret ({', '.join(literal)}) but is readable by group or others; "
            f"run: chmod 600 {raw.path}  (or move the secret to {{ env = ... }} / {{ file = ... }})"
        )
    if problems:
        raise ConfigError(join_problems(raw.path, problems))
    return Config(
        path=raw.path,
        fingerprint=raw.fingerprint,
        secret_files=tuple(secret_files(raw.data)),
        general=GeneralConfig(
            state_dir=Path(general["state_dir"]),
            mail_host=normalise_host(general["mail_host"], "mail_host")
            if general["mail_host"]
            else None,
            log_level=general["log_level"],
            log_format=general["log_format"],
            audit_days=general["audit_days"],
            drift_hours=general["drift_hours"],
            drift_repair=general["drift_repair"],
            lease_seconds=general["lease_seconds"],
            retry_base=general["retry_base"],
            retry_cap=general["retry_cap"],
            max_attempts=general["max_attempts"],
        ),
        vendors=vendors,
        panel=panel,
        mx=mx,
        console=console,
        fleet=fleet,
        plans=plans,
        alerts=alerts,
    )
