"""The JSON API's requests and answers as marshmallow schemas, and the OpenAPI 3.1 document
made from them (``GET /api/v1/openapi.json``).

The request schemas are what the API validates with (:func:`loaded`), and the answer
schemas what it writes with, so the document cannot say one thing while the API does
another.  The document is made by apispec's marshmallow plugin: the schemas are its only
source.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates

from ..errors import InvalidInput
from ..eventdata import normalise_host
from ..store import STATES as ROW_STATES
from .status import ORDERS, PAGE_SIZES, SORTS, STATES

#: the longest ``?wait=`` a change may ask for, in seconds
MAX_WAIT = 60.0


# -- requests --------------------------------------------------------------------------


class ChangeBody(Schema):
    """What a change to a domain may say (every field optional)."""

    class Meta:
        unknown = EXCLUDE

    destination = fields.String(
        metadata={
            "description": "protect: where the domain's clean mail goes (host name or IP). "
            "Only for a domain no panel holds: the admin's token then protects it on the "
            "API's behalf, and later protects change it.",
            "example": "mail.example.net",
        }
    )
    owner = fields.String(
        validate=validate.Regexp(
            r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
            error="letters, digits, dot, dash and underscore (1 to 64), such as whmcs-client-12",
        ),
        metadata={
            "description": "protect, with destination: the console user who owns the domain "
            "(a billing system's customer): a login link logs them in on its page",
            "example": "whmcs-client-12",
        },
    )
    vendors = fields.List(
        fields.String(),
        metadata={
            "description": "protect: only at these vendors; the domain is removed at any "
            "other vendor that holds it (a product changed to another plan). Leave it out "
            "for every enabled vendor."
        },
    )
    reason = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "suspend: why, as the audit log and the console show it"},
    )

    @validates("destination")
    def _host(self, value: str, **_: Any) -> None:
        try:
            normalise_host(value, "destination")
        except InvalidInput as exc:
            raise ValidationError(exc.message.split(": ", 1)[-1]) from None


class WaitQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    wait = fields.Float(
        validate=validate.Range(0, MAX_WAIT, error=f"give 0 to {MAX_WAIT:g} seconds"),
        metadata={"description": "wait up to this many seconds for the rows to finish"},
    )


class DomainListQuery(Schema):
    """The dashboard's search, filters, sort and paging."""

    class Meta:
        unknown = EXCLUDE

    q = fields.String(metadata={"description": "name (Unicode or punycode) or owner contains"})
    state = fields.String(validate=validate.OneOf(STATES))
    vendor = fields.String(metadata={"description": "with state: that vendor's state"})
    server = fields.String(metadata={"description": "fleet: the server whose panel holds it"})
    sort = fields.String(validate=validate.OneOf(tuple(SORTS)))
    order = fields.String(validate=validate.OneOf(ORDERS))
    size = fields.Integer(validate=validate.OneOf(PAGE_SIZES))
    page = fields.Integer(validate=validate.Range(min=1))


class QueueQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    rows = fields.String(
        validate=validate.Regexp(r"^\d+(,\d+)*$", error="not a comma-separated list of row ids"),
        metadata={"description": "these rows (what a change answered)", "example": "12,13"},
    )
    limit = fields.Integer(
        validate=validate.Range(1, 1000), metadata={"description": "else the newest rows"}
    )


class FieldValue(fields.Field):
    """A form field's value: a string, a number, or true/false for a checkbox (``1``/``0``),
    as the form would post it."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, (str, int, float)):
            return str(value)
        raise ValidationError("give a string, a number, or true/false")


class SettingsBody(Schema):
    """A form's fields by name; ``true``/``false`` tick or clear a checkbox."""

    fields_ = fields.Dict(keys=fields.String(), values=FieldValue(), required=True)


def settings_fields(data: Any) -> dict[str, str]:
    """A settings form's fields from a JSON body, as the form would post them; BadFields
    naming each field that is not a value."""
    if not isinstance(data, dict):
        raise BadFields({"body": "send a JSON object of field values"})
    return loaded(SettingsBody(), {"fields_": data})["fields_"]


# -- answers ---------------------------------------------------------------------------


class VendorStateDoc(Schema):
    state = fields.String(required=True, validate=validate.OneOf(STATES))
    detail = fields.String(allow_none=True, metadata={"description": "the vendor's reason"})
    at = fields.Float(allow_none=True, metadata={"description": "when (Unix time)"})


class SuspensionDoc(Schema):
    since = fields.Float(required=True)
    reason = fields.String(allow_none=True)


class DomainDoc(Schema):
    domain = fields.String(required=True, metadata={"description": "IDNA (punycode) form"})
    name = fields.String(required=True, metadata={"description": "as people write it"})
    owner = fields.String(allow_none=True, metadata={"description": "the panel account"})
    server = fields.String(allow_none=True, metadata={"description": "fleet: whose panel"})
    vendors = fields.Dict(keys=fields.String(), values=fields.Nested(VendorStateDoc), required=True)
    mx = fields.Dict(allow_none=True, metadata={"description": "the MX switch's state"})
    suspended = fields.Nested(SuspensionDoc, allow_none=True)
    last_change = fields.Float(allow_none=True)
    api = fields.Nested(
        "ApiOwnedDoc",
        allow_none=True,
        metadata={"description": "set when the API owns the domain (no panel holds it)"},
    )


class ApiOwnedDoc(Schema):
    destination = fields.String(required=True)
    owner = fields.String(allow_none=True)
    added_by = fields.String(required=True)
    added_at = fields.Float(required=True)


class DomainListDoc(Schema):
    domains = fields.List(fields.Nested(DomainDoc), required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    pages = fields.Integer(required=True)
    size = fields.Integer(required=True)
    servers = fields.List(fields.String(), required=True)


class RowDoc(Schema):
    id = fields.Integer(required=True)
    vendor = fields.String(required=True)
    event = fields.String(required=True, metadata={"example": "domain_created"})
    target = fields.String(required=True, metadata={"example": "domain:example.com"})
    state = fields.String(required=True, validate=validate.OneOf(ROW_STATES))
    finished = fields.Boolean(required=True)
    attempts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True)
    updated_at = fields.Float(required=True)


class RowsDoc(Schema):
    rows = fields.List(fields.Nested(RowDoc), required=True)


class AcceptedDoc(Schema):
    rows = fields.List(fields.Integer(), required=True, metadata={"description": "queue rows"})
    follow = fields.String(required=True, metadata={"example": "/api/v1/queue?rows=12,13"})
    outcomes = fields.List(
        fields.Nested(RowDoc), metadata={"description": "with ?wait=, once all finished"}
    )


class RowChangedDoc(Schema):
    id = fields.Integer(required=True)
    done = fields.String(required=True)
    row = fields.Nested(RowDoc, allow_none=True)


class MailboxesDoc(Schema):
    domain = fields.String(required=True)
    mailboxes = fields.List(fields.String(), required=True)


class FormDoc(Schema):
    name = fields.String(required=True)
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        values=fields.String(allow_none=True),
        required=True,
        metadata={"description": "current values (a checkbox: 1 or 0; never a password)"},
    )


class FormsDoc(Schema):
    scope = fields.String(required=True)
    target = fields.String(allow_none=True)
    vendor = fields.String(required=True)
    forms = fields.List(fields.Nested(FormDoc), required=True)


class SubmittedDoc(Schema):
    ok = fields.Boolean(required=True)
    message = fields.String(required=True)
    changed = fields.List(fields.String(), required=True)
    redirect = fields.String(allow_none=True)


class LoginLinkDoc(Schema):
    url = fields.String(required=True, metadata={"description": "one use"})
    user = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})


class FieldErrorDoc(Schema):
    field = fields.String(required=True)
    message = fields.String(required=True)


class ProblemDoc(Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.List(fields.Nested(FieldErrorDoc), metadata={"description": "422 only"})
    retry_after = fields.Integer(metadata={"description": "429 only: seconds"})


def loaded(schema: Schema, data: Any) -> dict[str, Any]:
    """*data* validated by *schema*; InvalidInput naming each bad field (``field: why``)."""
    try:
        return schema.load(data if data is not None else {})
    except ValidationError as exc:
        raise BadFields(_flat(exc.messages)) from None


class BadFields(Exception):
    """Request fields that did not validate: ``{field: message}``."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _flat(messages: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(messages, list):
        return {prefix or "body": " ".join(str(m) for m in messages)}
    out: dict[str, str] = {}
    for key, value in dict(messages).items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if key == "_schema":  # the body itself
            name = prefix or "body"
        elif key == "fields_":  # a settings body's fields: each named by itself
            name = prefix
        elif key in ("value", "key") and prefix:  # a dict's entry: named by its key
            name = prefix
        out.update(_flat(value, name))
    return out


# -- the OpenAPI document ----------------------------------------------------------------

#: (path, method, summary, who, request schema or None, query schema or None,
#:  {status: answer schema}) of every operation, in the order the document lists them
OPERATIONS: tuple[
    tuple[
        str, str, str, str, type[Schema] | None, type[Schema] | None, dict[int, type[Schema] | None]
    ],
    ...,
] = (
    (
        "/domains",
        "get",
        "The domains the token's user may see",
        "any",
        None,
        DomainListQuery,
        {200: DomainListDoc},
    ),
    (
        "/domains/{domain}",
        "get",
        "A domain: each vendor's state with its reason, MX, owner",
        "any",
        None,
        None,
        {200: DomainDoc},
    ),
    (
        "/domains/{domain}/protect",
        "post",
        "Protect a domain (at some vendors, or one no panel holds, with its destination)",
        "admin",
        ChangeBody,
        WaitQuery,
        {200: AcceptedDoc, 202: AcceptedDoc},
    ),
    (
        "/domains/{domain}/unprotect",
        "post",
        "Remove a domain at every vendor",
        "admin",
        None,
        WaitQuery,
        {200: AcceptedDoc, 202: AcceptedDoc},
    ),
    (
        "/domains/{domain}/retry",
        "post",
        "Retry a domain's failed deliveries",
        "admin",
        None,
        WaitQuery,
        {200: AcceptedDoc, 202: AcceptedDoc},
    ),
    (
        "/domains/{domain}/suspend",
        "post",
        "Suspend: each vendor follows its on_suspend",
        "admin",
        ChangeBody,
        WaitQuery,
        {200: AcceptedDoc, 202: AcceptedDoc},
    ),
    (
        "/domains/{domain}/unsuspend",
        "post",
        "Lift a suspension: what it changed is put back",
        "admin",
        None,
        WaitQuery,
        {200: AcceptedDoc, 202: AcceptedDoc},
    ),
    (
        "/domains/{domain}/mailboxes",
        "get",
        "A domain's mailboxes",
        "any",
        None,
        None,
        {200: MailboxesDoc},
    ),
    (
        "/domains/{domain}/login-link",
        "post",
        "A one-use link that logs the domain's owner in on its page",
        "any",
        None,
        None,
        {200: LoginLinkDoc},
    ),
    (
        "/settings/{scope}/{target}/{vendor}/{form}",
        "get",
        "A settings form's current values",
        "any",
        None,
        None,
        {200: FormsDoc},
    ),
    (
        "/settings/{scope}/{target}/{vendor}/{form}",
        "post",
        "Submit a settings form",
        "any",
        SettingsBody,
        None,
        {200: SubmittedDoc},
    ),
    (
        "/queue",
        "get",
        "Queue rows: those a change answered, or the newest",
        "admin",
        None,
        QueueQuery,
        {200: RowsDoc},
    ),
    ("/queue/{id}", "get", "One queue row", "admin", None, None, {200: RowDoc}),
    ("/queue/{id}/retry", "post", "Retry a failed row", "admin", None, None, {200: RowChangedDoc}),
    ("/queue/{id}/drop", "post", "Drop a waiting row", "admin", None, None, {200: RowChangedDoc}),
)

#: the problems every operation may answer, and those of some
PROBLEMS = {
    401: "no token, or one unknown, revoked or expired",
    403: "the token's user may not do this",
    404: "no such domain, row or form (for this token)",
    422: "a field is invalid: `errors` names each",
    429: "over the token's calls a minute: `Retry-After`",
}
PATH_WORDS = {
    "domain": "a domain name (Unicode or punycode)",
    "scope": "admin, domain or mailbox",
    "target": "the domain or mailbox (`-` on the admin page)",
    "vendor": "a vendor's name",
    "form": "the form's name (as the settings page posts it)",
    "id": "a queue row's id",
}


def _component_name(schema: Any) -> str:
    """``DomainDoc`` is the component ``Domain``."""
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__.removesuffix("Doc")


def openapi(version: str, server_url: str = "/api/v1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API, from the schemas above."""
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin

    plugin = MarshmallowPlugin(schema_name_resolver=_component_name)
    spec = APISpec(
        title="spamfilter-plugin API",
        version=version,
        openapi_version="3.1.0",
        plugins=[plugin],
        info={
            "description": "Scripts and billing systems protect, suspend and remove domains "
            "and change filter settings. Send a token made with `spamfilter token create` as "
            "`Authorization: Bearer <token>`; it may do what its console user may. A change "
            "answers 202 once it is durably queued.",
        },
        servers=[{"url": server_url}],
    )
    plugin.map_to_openapi_type(FieldValue, ["string", "number", "boolean"], None)
    spec.components.security_scheme("token", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Problem", schema=ProblemDoc)
    by_path: dict[str, dict[str, Any]] = {}
    for path, method, summary, who, body, query, answers in OPERATIONS:
        responses: dict[str, Any] = {
            str(code): {
                "description": "the change is queued" if code == 202 else "OK",
                "content": {"application/json": {"schema": schema}},
            }
            for code, schema in answers.items()
        }
        for code, said in PROBLEMS.items():
            if code == 422 and body is None and query is None:
                continue
            responses[str(code)] = {
                "description": said,
                "content": {"application/problem+json": {"schema": "Problem"}},
            }
        operation: dict[str, Any] = {
            "summary": summary,
            "description": "Admin tokens only." if who == "admin" else
            "Any token, for what its console user may see.",
            "security": [{"token": []}],
            "responses": responses,
            "parameters": [
                {"in": "path", "name": p, "required": True, "schema": {"type": "string"},
                 "description": PATH_WORDS[p]}
                for p in PATH_WORDS if "{" + p + "}" in path
            ] + ([{"in": "query", "schema": query}] if query is not None else []),
        }  # fmt: skip
        if body is SettingsBody:  # the body is the schema's one field, a free object
            assert plugin.converter is not None  # made by APISpec() above
            shape = plugin.converter.field2property(SettingsBody._declared_fields["fields_"])
            shape["description"] = SettingsBody.__doc__
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": shape}},
            }
        elif body is not None:
            operation["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": body}},
            }
        by_path.setdefault(path, {})[method] = operation
    for path, operations in by_path.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
