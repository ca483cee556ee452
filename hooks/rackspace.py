"""Rackspace mailbox spam settings: lifecycle policy, config schema and the mailbox page.

Rackspace holds domains and mailboxes itself, so domain events need nothing; a new
mailbox gets the configured default spam settings; a deleted mailbox takes its
settings and lists with it at Rackspace, so nothing is cleared.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import Schema, ValidationError, fields, validate, validates

from spamfilter_plugin import suspension
from spamfilter_plugin.config.schema import SecretField, VendorSchema, WholeNumber, email_or_empty
from spamfilter_plugin.errors import VendorNotFound
from spamfilter_plugin.events import Mailbox
from spamfilter_plugin.hookspecs import hookimpl
from spamfilter_plugin.templating import Fragment, SettingsResult, render_fragment
from spamfilter_plugin.vendors.rackspace import (
    DEFAULT_URL,
    FILTER_LEVELS,
    LISTS,
    VENDOR,
    RackspaceClient,
    split_entries,
    validate_entry,
)

LEVELS = (
    ("on", "On: spam goes to quarantine (the mailbox's, or the domain's if chosen below)"),
    ("exclusive", "Exclusive: like on, and only senders and IPs on the safelists are delivered"),
    ("off", "Off: no filtering; this also stops sending spam to the domain quarantine"),
)
LIST_TITLES = {
    "blocklist": "Blocked senders",
    "ipblocklist": "Blocked IPs",
    "safelist": "Safe senders",
    "ipsafelist": "Safe IPs",
}


_email_or_empty = email_or_empty("quarantineowner")


class RackspaceSchema(VendorSchema):
    """``[vendors.rackspace]``: the account, signing, throttling and new-mailbox defaults."""

    api_url = fields.Url(schemes={"http", "https"}, require_tld=False, load_default=DEFAULT_URL)
    customer_id = fields.String(
        required=True,
        validate=validate.Regexp(r"^\d+$", error="must be the numeric customer account number"),
    )
    user_key = SecretField(required=True)
    secret_key = SecretField(required=True)
    user_agent = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    timestamp_timezone = fields.String(load_default="UTC")
    list_names = fields.String(
        load_default="current",
        validate=validate.OneOf(
            ("current", "legacy"),
            error="must be current (blocklist, ipblocklist) or legacy (blacklist, ipblacklist)",
        ),
    )
    format = fields.String(
        load_default="json", validate=validate.OneOf(("json", "xml"), error="must be json or xml")
    )
    rate_limit = WholeNumber(
        load_default=60,
        validate=validate.Range(1, 10000, error="must be between 1 and 10000 requests per minute"),
    )
    check_mailbox = fields.String(load_default=None, validate=_email_or_empty)
    filterlevel = fields.String(
        load_default="on",
        validate=validate.OneOf(FILTER_LEVELS, error="must be on, off or exclusive"),
    )
    sendtodomainquarantine = fields.Boolean(load_default=False)
    quarantineowner = fields.String(load_default="", validate=_email_or_empty)

    @validates("timestamp_timezone")
    def _zone(self, value: str, **kwargs) -> None:
        if value != "UTC":
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValidationError(
                    f"{value!r} is not a time zone name (UTC, Europe/London, ...)"
                ) from None


class MailboxForm(Schema):
    action = fields.String(
        required=True, validate=validate.OneOf(("settings", "add", "remove", "bulk"))
    )
    filterlevel = fields.String(
        validate=validate.OneOf(FILTER_LEVELS, error="choose on, exclusive or off")
    )
    sendtodomainquarantine = fields.Boolean()
    quarantineowner = fields.String(validate=_email_or_empty)
    list = fields.String(validate=validate.OneOf(LISTS, error="choose one of the four lists"))
    entry = fields.String()
    add_entries = fields.String()
    remove_entries = fields.String()


def client(vendor) -> RackspaceClient:
    cfg = vendor.config

    def make() -> RackspaceClient:
        http = vendor.http(agent=cfg["user_agent"]) if cfg["user_agent"] else vendor.http()
        return RackspaceClient(
            http,
            cfg["customer_id"],
            cfg["user_key"],
            cfg["secret_key"],
            timestamp_timezone=cfg["timestamp_timezone"],
            legacy_names=cfg["list_names"] == "legacy",
            fmt=cfg["format"],
            rate_limit=cfg["rate_limit"],
            limiter=vendor.rate_limiter(cfg["user_key"].reveal(), cfg["rate_limit"]),
        )

    return vendor.cached("client", make)


@hookimpl
def vendor_config_schema():
    return RackspaceSchema


@hookimpl
def vendor_check(vendor):
    api, probe = client(vendor), vendor.config["check_mailbox"]
    if probe:
        settings = api.get_settings(Mailbox(probe))
        return f"authenticated; {probe} filter level {settings.filter_level}"
    try:  # the signature is checked before the mailbox is looked up: 404 proves the keys work
        api.get_settings(Mailbox("spamfilter-check@probe.invalid"))
    except VendorNotFound:
        pass
    return f"authenticated as customer {vendor.config['customer_id']}"


@hookimpl
def mailbox_added(vendor, event):
    cfg = vendor.config
    client(vendor).edit_settings(
        event.mailbox,
        cfg["filterlevel"],
        send_to_domain_quarantine=cfg["sendtodomainquarantine"],
        quarantine_owner=cfg["quarantineowner"] or None,
    )
    return {"message": f"spam filter level {cfg['filterlevel']}"}


@hookimpl
def settings_fragments(vendor, scope, target, csrf_token):
    if scope != "mailbox":
        return None
    api = client(vendor)
    try:
        settings = api.get_settings(target)
        lists = {name: api.list_entries(target, name) for name in LISTS}
    except VendorNotFound:
        settings, lists = None, {}
    return Fragment(
        VENDOR,
        "mailbox",
        f"Rackspace spam filter for {target.unicode_address}",
        render_fragment(
            VENDOR,
            "mailbox",
            mailbox=target,
            settings=settings,
            lists=lists,
            levels=LEVELS,
            list_titles=LIST_TITLES,
            csrf_token=csrf_token,
        ),
    )


@hookimpl
def settings_submitted(vendor, scope, target, form):
    if scope != "mailbox":
        return SettingsResult(False, "Rackspace spam settings are per mailbox.")
    try:
        data = MailboxForm().load(form)
        return _apply(client(vendor), target, data)
    except ValidationError as exc:
        return SettingsResult.invalid(exc.messages)
    except VendorNotFound:
        return SettingsResult(False, f"{target} is not a Rackspace mailbox.")


def _apply(api: RackspaceClient, mailbox: Mailbox, data: dict) -> SettingsResult:
    action = data["action"]
    if action == "settings":
        if "filterlevel" not in data:
            raise ValidationError({"filterlevel": ["choose on, exclusive or off"]})
        owner = data.get("quarantineowner")
        api.edit_settings(
            mailbox,
            data["filterlevel"],
            send_to_domain_quarantine=data.get("sendtodomainquarantine"),
            quarantine_owner=owner or None,
            remove_quarantine_owner=owner == "",
        )
        return SettingsResult(True, "Spam settings saved.", changed=("settings",))
    if "list" not in data:
        raise ValidationError({"list": ["choose one of the four lists"]})
    name, title = data["list"], LIST_TITLES[data["list"]].lower()
    if action in ("add", "remove"):
        entry = validate_entry(name, data.get("entry", ""))
        (api.add_entry if action == "add" else api.delete_entry)(mailbox, name, entry)
        verb = "added to" if action == "add" else "removed from"
        return SettingsResult(True, f"{entry} {verb} {title}.", changed=(name,))
    add, remove = (
        split_entries(data.get("add_entries", "")),
        split_entries(data.get("remove_entries", "")),
    )
    api.edit_list(mailbox, name, add=add, remove=remove)
    return SettingsResult(
        True,
        f"{title.capitalize()}: {len(add)} added, {len(remove)} removed in one edit.",
        changed=(name,),
    )


# -- suspension: bypass is filterlevel "off" on each of the domain's mailboxes ----------------


def _filtering(vendor, name: str) -> dict | None:
    """The spam settings of each of *name*'s mailboxes that Rackspace holds, as the panel's
    records list them (Rackspace's API lists no mailboxes of a domain); None when there are
    none to bypass."""
    listed = vendor.panel.mailboxes_of(name)
    if listed is None:
        vendor.log.warning(
            "%s: the panel keeps no list of its mailboxes the plugin can read; "
            "Rackspace keeps filtering them",
            name,
        )
        return None
    api, held = client(vendor), {}
    for address in listed:
        try:
            settings = api.get_settings(Mailbox(address))
        except VendorNotFound:  # the panel's mailbox is not one Rackspace hosts
            continue
        held[address] = {
            "filterlevel": settings.filter_level,
            "sendtodomainquarantine": settings.send_to_domain_quarantine,
            "quarantineowner": settings.quarantine_owner,
        }
    return {"mailboxes": held} if held else None


def _each_remembered(vendor, was: dict, change) -> None:
    api = client(vendor)
    for address, settings in was["mailboxes"].items():
        try:
            change(api, Mailbox(address), settings)
        except VendorNotFound:  # deleted meanwhile: nothing of it to change
            continue


def _bypass(vendor, name: str) -> None:
    was = vendor.state.read()[suspension.STATE_KEY][name]
    _each_remembered(vendor, was, lambda api, mailbox, _: api.edit_settings(mailbox, "off"))


def _restore_one(api: RackspaceClient, mailbox: Mailbox, settings: dict) -> None:
    owner = settings["quarantineowner"]
    api.edit_settings(
        mailbox,
        settings["filterlevel"],
        send_to_domain_quarantine=settings["sendtodomainquarantine"],
        quarantine_owner=owner or None,
        remove_quarantine_owner=not owner,
    )


domain_suspended, domain_unsuspended = suspension.hookimpls(
    read=_filtering,
    bypass=_bypass,
    restore=lambda vendor, name, was: _each_remembered(vendor, was, _restore_one),
)
