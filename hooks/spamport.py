"""SpamPort: lifecycle policy, config schema and settings pages.

SpamPort filters per domain: domains are added (with every default in one
call), updated and removed; a domain's password reset asks SpamPort for a new
password and hands it back; mailbox events need nothing.
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates

from spamfilter_plugin import settle, suspension
from spamfilter_plugin.config.schema import (
    GatewaySchema,
    SecretField,
    WholeNumber,
    email_or_empty,
)
from spamfilter_plugin.errors import VendorConflict, VendorNotFound
from spamfilter_plugin.hookspecs import hookimpl
from spamfilter_plugin.templating import Fragment, SettingsResult, render_fragment
from spamfilter_plugin.vendors.spamport import (
    ARCHIVE_DAYS,
    DEFAULT_URL,
    SPAMSCORES,
    VENDOR,
    SpamPortClient,
)

STRICTNESS = (
    ("veryhigh", "Very high: the biggest chance of blocking legitimate mail"),
    ("high", "High"),
    ("normal", "Normal (recommended)"),
    ("low", "Low"),
    ("verylow", "Very low: some spam might come through"),
)


_email_or_empty = email_or_empty("report_to")


class SpamPortSchema(GatewaySchema):
    """``[vendors.spamport]``: credentials, and the defaults for new domains."""

    api_url = fields.Url(schemes={"http", "https"}, require_tld=False, load_default=DEFAULT_URL)
    username = fields.String(
        required=True, validate=validate.Length(min=1, error="must not be empty")
    )
    password = SecretField(required=True)
    archive = WholeNumber(
        load_default=14,
        validate=validate.OneOf(
            ARCHIVE_DAYS, error="must be 14 or 365 (365 needs a SpamPort mail archiving licence)"
        ),
    )
    spamscore = fields.String(
        load_default="normal",
        validate=validate.OneOf(SPAMSCORES, error="must be one of: {choices}"),
    )
    greylist = fields.Boolean(load_default=False)
    noscan = fields.Boolean(load_default=False)
    report_to = fields.String(load_default="", validate=_email_or_empty)
    weekly = fields.Boolean(load_default=False)


class DomainForm(Schema):
    """The domain settings form (unknown fields are refused)."""

    action = fields.String(load_default="save", validate=validate.OneOf(("save", "login")))
    filter = fields.Boolean(load_default=None)
    spamscore = fields.String(
        load_default=None,
        validate=validate.OneOf(SPAMSCORES, error="choose one of the listed strictness levels"),
    )
    greylist = fields.Boolean(load_default=None)
    report_to = fields.String(load_default=None, validate=_email_or_empty)
    report_frequency = fields.String(
        load_default=None, validate=validate.OneOf(("daily", "weekly"))
    )
    report_frequency_shown = fields.String(
        load_default=None, validate=validate.OneOf(("daily", "weekly"))
    )

    @validates("report_to")
    def _strip(self, value, **kwargs):  # marshmallow 4: validators raise, never return False
        if value is not None and value != value.strip():
            raise ValidationError("remove the spaces around the address")


def client(vendor) -> SpamPortClient:
    cfg = vendor.config
    return vendor.cached(
        "client", lambda: SpamPortClient(vendor.http(), cfg["username"], cfg["password"])
    )


@hookimpl
def vendor_config_schema():
    return SpamPortSchema


@hookimpl
def vendor_check(vendor):
    return (
        f"authenticated as {vendor.config['username']}; {len(client(vendor).get_domains())} domains"
    )


@hookimpl
def domain_created(vendor, event):
    cfg, destination, name = vendor.config, vendor.destination(event), event.domain.name
    api = client(vendor)

    def add() -> None:
        api.add(
            name,
            destination,
            archive=cfg["archive"],
            report_to=cfg["report_to"],
            weekly=cfg["weekly"],
            noscan=cfg["noscan"],
            spamscore=cfg["spamscore"],
            greylist=cfg["greylist"],
        )

    def update() -> None:
        api.set_outgoing(name, destination)

    try:
        how = settle.created(
            VENDOR, name, add, route_of=api.route_of, wanted=destination, update=update
        )
    except VendorConflict:
        update()
        how = "updated"
    if how == "added":
        return {
            "message": f"added; clean mail goes to {destination}; point the MX records at SpamPort"
        }
    if how == "held":
        return {"message": f"already at SpamPort, sending mail to {destination}"}
    return {"message": f"already at SpamPort; destination set to {destination}"}


@hookimpl
def domain_deleted(vendor, event):
    try:
        client(vendor).remove(event.domain.name)
    except VendorNotFound:
        return {"message": "was not at SpamPort"}
    return None


@hookimpl
def domain_updated(vendor, event):
    client(vendor).set_outgoing(event.domain.name, event.destination)


@hookimpl
def password_reset(vendor, event):
    if event.domain is None:
        return None  # SpamPort has no mailbox accounts
    return {"password": client(vendor).new_password(event.domain.name)}


@hookimpl
def inventory_domains(vendor):
    # the route is the mail host SpamPort delivers to (its transport without "smtp:[...]")
    return ((d.domain, d.destination) for d in client(vendor).get_domains())


def _info(vendor, name: str):
    """SpamPort's ``info`` of *name*, None when it does not hold the domain."""
    try:
        return client(vendor).info(name)
    except VendorNotFound:  # "Domain not found"
        return None


def _filtering(vendor, name: str) -> dict | None:
    """Whether SpamPort filters *name* (its ``noscan`` is the inverse); None when not held."""
    info = _info(vendor, name)
    return {"filtering": not info.noscan} if info is not None else None


# bypass: SpamPort's noscan ("set_filter"), which relays the mail unscanned
domain_suspended, domain_unsuspended = suspension.hookimpls(
    read=_filtering,
    bypass=lambda vendor, name: client(vendor).set_filter(name, False),
    restore=lambda vendor, name, was: client(vendor).set_filter(name, was["filtering"]),
)


@hookimpl
def domain_current_route(vendor, domain):
    # one domain's "info" (documented: "transport" is its destination mail server)
    info = _info(vendor, domain.name)
    return info.destination if info is not None else None


@hookimpl
def settings_fragments(vendor, scope, target, csrf_token):
    if scope == "admin":
        domains = client(vendor).get_domains()
        return Fragment(
            VENDOR,
            "admin",
            "SpamPort domains",
            render_fragment(VENDOR, "admin", domains=domains, csrf_token=csrf_token),
        )
    if scope == "domain":
        try:
            info = client(vendor).info(target.name)
        except VendorNotFound:
            info = None
        return Fragment(
            VENDOR,
            "domain",
            f"SpamPort for {target.unicode_name}",
            render_fragment(
                VENDOR,
                "domain",
                domain=target,
                info=info,
                strictness=STRICTNESS,
                csrf_token=csrf_token,
            ),
        )
    return None


@hookimpl
def settings_submitted(vendor, scope, target, form):
    if scope != "domain":
        return SettingsResult(False, "SpamPort has settings per domain only.")
    try:
        data = DomainForm().load(form)
    except ValidationError as exc:
        return SettingsResult.invalid(exc.messages)
    api = client(vendor)
    try:
        if data["action"] == "login":
            return SettingsResult(
                True,
                "Opening SpamPort (the link works for one minute).",
                redirect=api.login_url(target.name),
            )
        return _save(api, target.name, data)
    except VendorNotFound:
        return SettingsResult(
            False,
            f"{target.unicode_name} is not at SpamPort; it is added when the domain "
            "is created on this server.",
        )


def _save(api: SpamPortClient, domain: str, data: dict) -> SettingsResult:
    """Send only what changed, one documented function per setting."""
    info = api.info(domain)
    changed = []
    if data["filter"] is not None and data["filter"] != (not info.noscan):
        api.set_filter(domain, data["filter"])
        changed.append("filter")
    if data["spamscore"] is not None and data["spamscore"] != info.spamscore:
        api.set_spamscore(domain, data["spamscore"])
        changed.append("spamscore")
    if data["greylist"] is not None and data["greylist"] != info.greylist:
        api.set_greylist(domain, data["greylist"])
        changed.append("greylist")
    report_to = info.report_to if data["report_to"] is None else data["report_to"]
    # SpamPort's info does not say daily or weekly: compare with what the form showed
    shown = data["report_frequency_shown"]
    frequency = data["report_frequency"] or shown or "daily"
    if report_to != info.report_to or (shown is not None and frequency != shown):
        api.set_report_to(domain, report_to, weekly=frequency == "weekly")
        changed.append("report_to")
    if not changed:
        return SettingsResult(True, "Nothing changed.")
    return SettingsResult(True, "Saved: " + ", ".join(changed) + ".", changed=tuple(changed))
