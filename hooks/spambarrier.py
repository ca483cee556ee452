"""spambarrier: lifecycle policy, TXT verification, config schema and settings pages.

spambarrier filters per domain: a new domain is added with its destination host (and
SMTP authentication for it, when configured), gets the default filter settings, and must
prove ownership by a TXT record.  The panel is asked to publish the record; the
confirmation is tried at once and then, as its own queued step (``confirm_txt``), again
with backoff until the record is visible or ``verify_hours`` have passed.  What is known
of each domain's verification is kept in the vendor's state file, for the domain page.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from spamfilter_plugin import settle, suspension, txt_proof
from spamfilter_plugin.charts import stacked_bars
from spamfilter_plugin.config.schema import (
    GatewaySchema,
    SecretField,
    WholeNumber,
    https_url,
)
from spamfilter_plugin.errors import (
    VendorConflict,
    VendorNotFound,
    VendorRejected,
)
from spamfilter_plugin.forms import required_for_action
from spamfilter_plugin.hookspecs import hookimpl
from spamfilter_plugin.templating import (
    Fragment,
    SettingsResult,
    number_bounds,
    render_fragment,
)
from spamfilter_plugin.vendors.spambarrier import (
    DEFAULT_URL,
    INTERVALS,
    SPAM_TREATMENTS,
    VENDOR,
    VIRUS_TREATMENTS,
    FilterSettings,
    SpamBarrierClient,
)

TREATMENTS = {
    "reject": "Reject: refused while it is being delivered; the sender is told",
    "quarantine": "Quarantine: kept at spambarrier, where it can be read and released",
    "tag": "Tag: delivered with a spam mark in its subject and headers",
}
#: the statistics range shown when the page asks for none
DEFAULT_DAYS = 7
#: the longest range per interval (a bar per hour over a year would be unreadable)
MAX_DAYS = {"hour": 14, "day": 366, "month": 366}
SERIES = ("pass", "spam", "virus")


class SpamBarrierSchema(GatewaySchema):
    """``[vendors.spambarrier]``: the account, the defaults for new domains, SMTP
    authentication at the destination, and how long to wait for a TXT record."""

    api_url = https_url(DEFAULT_URL)
    user_id = WholeNumber(required=True, validate=validate.Range(min=1, error="must be 1 or more"))
    api_token = SecretField(required=True)
    spam_treatment = fields.String(
        load_default="quarantine", validate=validate.OneOf(SPAM_TREATMENTS)
    )
    spam_threshold = fields.Float(
        load_default=5.0, validate=validate.Range(0, 100, min_inclusive=False)
    )
    virus_treatment = fields.String(
        load_default="quarantine", validate=validate.OneOf(VIRUS_TREATMENTS)
    )
    greylisting = fields.Boolean(load_default=False)
    smtp_username = fields.String(load_default=None, validate=validate.Length(min=1))
    smtp_password = SecretField(load_default=None)
    verify_hours = fields.Float(
        load_default=48.0,
        validate=validate.Range(
            0, 24 * 30, min_inclusive=False, error="must be over 0, at most 720"
        ),
    )

    @validates_schema
    def _smtp_pair(self, data: dict, **kwargs) -> None:
        if (data.get("smtp_username") is None) != (data.get("smtp_password") is None):
            raise ValidationError(
                "give both smtp_username and smtp_password, or neither", "smtp_password"
            )


class FilterForm(Schema):
    spam_treatment = fields.String(required=True, validate=validate.OneOf(SPAM_TREATMENTS))
    spam_threshold = fields.Float(
        required=True,
        validate=validate.Range(0, 100, min_inclusive=False, error="a score over 0, up to 100"),
    )
    virus_treatment = fields.String(required=True, validate=validate.OneOf(VIRUS_TREATMENTS))
    greylisting = fields.Boolean(load_default=False)


class ActionForm(Schema):
    action = fields.String(
        required=True,
        validate=validate.OneOf(
            ("filter", "verify", "resend", "delete_message", "whitelist_add", "whitelist_delete")
        ),
    )
    message_id = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$"))
    entry_id = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$"))
    sender = fields.String(validate=validate.Length(min=1, max=254))
    recipient = fields.String(validate=validate.Length(min=1, max=254))
    spam_treatment = fields.String()
    spam_threshold = fields.String()
    virus_treatment = fields.String()
    greylisting = fields.String()


class StatsQuery(Schema):
    """What the statistics form asks for (the page's query string; other keys ignored)."""

    class Meta:
        unknown = "exclude"

    stats_from = fields.Date(load_default=None)
    stats_to = fields.Date(load_default=None)
    stats_interval = fields.String(load_default="day", validate=validate.OneOf(INTERVALS))

    @validates_schema
    def _range(self, data: dict, **kwargs) -> None:
        start, end = data.get("stats_from"), data.get("stats_to")
        if start and end and end < start:
            raise ValidationError("the range ends before it starts", "stats_to")
        if start and end and (end - start).days + 1 > MAX_DAYS[data["stats_interval"]]:
            raise ValidationError(
                f"at most {MAX_DAYS[data['stats_interval']]} days by {data['stats_interval']}",
                "stats_to",
            )


# -- the client and what is remembered -------------------------------------------------


def client(vendor) -> SpamBarrierClient:
    def learned(spelling: str) -> None:
        with vendor.state.editing() as state:
            state["whitelist_spelling"] = spelling

    return vendor.cached(
        "client",
        lambda: SpamBarrierClient(
            vendor.http(),
            vendor.config["user_id"],
            vendor.config["api_token"],
            spelling=vendor.state.read().get("whitelist_spelling"),
            on_spelling=learned,
        ),
    )


def _auth(vendor) -> tuple:
    return vendor.config["smtp_username"], vendor.config["smtp_password"]


def defaults(vendor) -> FilterSettings:
    cfg = vendor.config
    return FilterSettings(
        cfg["spam_treatment"], cfg["spam_threshold"], cfg["virus_treatment"], cfg["greylisting"]
    )


# -- lifecycle -----------------------------------------------------------------------


@hookimpl
def vendor_config_schema():
    return SpamBarrierSchema


@hookimpl
def vendor_check(vendor):
    count = len(client(vendor).get_domains())
    return f"authenticated as user {vendor.config['user_id']}; {count} domains"


@hookimpl
def inventory_domains(vendor):
    return ((d.name, d.host) for d in client(vendor).get_domains())


def _treatment(vendor, name: str) -> dict | None:
    """What spambarrier does with *name*'s spam now; None when it does not hold the domain."""
    try:
        found = client(vendor).get_filter_settings(name)
    except VendorNotFound:
        return None
    return {"spam_treatment": found.spam_treatment, "greylisting": found.greylisting}


def _treat(vendor, name: str, spam_treatment: str, greylisting: bool) -> None:
    """Set *name*'s spam treatment and greylisting, its other settings as they are."""
    api = client(vendor)
    now = api.get_filter_settings(name)
    api.set_filter_settings(
        name, dataclasses.replace(now, spam_treatment=spam_treatment, greylisting=greylisting)
    )


# bypass: spam is tagged and delivered ("tag"), no greylisting; viruses stay held
domain_suspended, domain_unsuspended = suspension.hookimpls(
    read=_treatment,
    bypass=lambda vendor, name: _treat(vendor, name, "tag", False),
    restore=lambda vendor, name, was: _treat(
        vendor, name, was["spam_treatment"], was["greylisting"]
    ),
)


@hookimpl
def domain_current_route(vendor, domain):
    # get-domains is the API's one read of a domain's host
    return settle.current_route(client(vendor).route_of, domain.name)


@hookimpl
def domain_created(vendor, event):
    api, name, host = client(vendor), event.domain.name, vendor.destination(event)
    added = []

    def add() -> None:
        added.append(api.add_domain(name, host, *_auth(vendor)).txt_record)

    def update() -> None:  # there already: bring its destination up to date
        api.edit_domain(name, host, *_auth(vendor))

    try:
        settle.created(VENDOR, name, add, route_of=api.route_of, wanted=host, update=update)
    except VendorConflict:
        update()
    txt = added[0] if added else None
    api.set_filter_settings(name, defaults(vendor))
    rec = txt_proof.record(name, txt) if txt else txt_proof.known(vendor, name).get("record")
    if any(d.name == name and d.confirmed for d in api.get_domains()):
        txt_proof.note(vendor, name, state="verified", checked=time.time())
        return {"message": f"{name} is filtered and verified; mail goes to {host}"}
    if rec is None:
        txt_proof.note(vendor, name, state="unverified", record=None)
        return {
            "message": f"{name} was at spambarrier already, not verified, and its TXT record is "
            "not known here: take it from spambarrier's panel, publish it, then use Verify now"
        }
    result = txt_proof.start(vendor, name, rec, api.confirm_txt_record, _hours(vendor))
    return dict(result, message=f"{name} is filtered; mail goes to {host}; {result['message']}")


def _hours(vendor) -> float:
    return vendor.config["verify_hours"]


@hookimpl
def domain_updated(vendor, event):
    api, name = client(vendor), event.domain.name
    try:
        api.edit_domain(name, event.destination, *_auth(vendor))
    except VendorNotFound:  # not there: add it as if new
        return domain_created(vendor, event)
    return {"message": f"mail for {name} goes to {event.destination}"}


@hookimpl
def domain_deleted(vendor, event):
    client(vendor).delete_domain(event.domain.name)
    txt_proof.forget(vendor, event.domain.name)
    return {"message": f"{event.domain.name} is no longer filtered"}


@hookimpl
def vendor_step(vendor, event):
    if event.step != txt_proof.STEP:
        raise VendorRejected(VENDOR, f"no step named {event.step!r}; drop the queue row")
    try:
        return txt_proof.step(vendor, event, client(vendor).confirm_txt_record, _hours(vendor))
    except VendorNotFound:
        txt_proof.forget(vendor, event.domain.name)
        return {"message": f"{event.domain.name} is no longer at spambarrier; nothing to verify"}


# -- settings pages ------------------------------------------------------------------


def _listed(vendor, name: str):
    """The domain as spambarrier lists it, or None when it is not there."""
    return next((d for d in client(vendor).get_domains() if d.name == name), None)


def _stats_range(query: dict) -> tuple[dt.date, dt.date, str, dict]:
    """(from, to, interval, errors) asked for by the page's query; defaults when not asked,
    and when what was asked is invalid (its errors then say why)."""
    errors = {}
    try:
        asked = StatsQuery().load({k: v for k, v in query.items() if v not in ("", None)})
    except ValidationError as exc:
        asked, errors = StatsQuery().load({}), SettingsResult.invalid(exc.messages).errors
    end = asked["stats_to"] or dt.datetime.now(dt.UTC).date()
    start = asked["stats_from"] or end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        start = end
    return start, end, asked["stats_interval"], errors


def _statistics(vendor, name: str, query: dict) -> dict:
    start, end, interval, errors = _stats_range(query)
    stats = client(vendor).get_domain_statistics(name, start, end, interval)
    rows = [(label, (c.passed, c.spam, c.virus)) for label, c in stats.intervals]
    return {
        "stats": stats,
        "chart": stacked_bars(rows, SERIES),
        "series": SERIES,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "interval": interval,
        "intervals": [(i, i) for i in INTERVALS],
        "errors": errors,
    }


def _mine(address: str, recipient: str) -> bool:
    return recipient.strip().lower() == address.lower()


@hookimpl
def settings_fragments(vendor, scope, target, csrf_token, query):
    api = client(vendor)
    page = {"csrf_token": csrf_token, "scope": scope, "treatments": TREATMENTS}
    if scope == "admin":
        html = render_fragment(
            VENDOR,
            "admin",
            domains=api.get_domains(),
            states=vendor.state.read().get("domains", {}),
            defaults=defaults(vendor),
            **page,
        )
        return Fragment(VENDOR, "admin", "spambarrier", html)
    domain = target if scope == "domain" else target.domain
    listed = _listed(vendor, domain.name)
    if listed is None:
        html = render_fragment(VENDOR, "absent", domain=domain, **page)
        return Fragment(VENDOR, "absent", f"spambarrier for {domain.unicode_name}", html)
    page["domain"] = domain
    messages = api.get_quarantine(domain.name)
    entries = api.get_whitelist_entries(domain.name)
    if scope == "mailbox":
        messages = [m for m in messages if _mine(target.address, m.recipient)]
        entries = [e for e in entries if _mine(target.address, e.recipient)]
    frags = []
    if scope == "domain":
        html = render_fragment(
            VENDOR,
            "domain",
            listed=listed,
            settings=api.get_filter_settings(domain.name),
            threshold=number_bounds(FilterForm, "spam_threshold"),
            verification=txt_proof.known(vendor, domain.name),
            **page,
        )
        frags.append(Fragment(VENDOR, "domain", f"spambarrier for {domain.unicode_name}", html))
    whose = domain.unicode_name if scope == "domain" else target.unicode_address
    html = render_fragment(VENDOR, "quarantine", messages=messages, whose=whose, **page)
    frags.append(Fragment(VENDOR, "quarantine", f"spambarrier quarantine of {whose}", html))
    if scope == "domain":
        stats = _statistics(vendor, domain.name, query)
        html = render_fragment(VENDOR, "statistics", **stats, **page)
        frags.append(
            Fragment(VENDOR, "statistics", f"spambarrier mail statistics of {whose}", html)
        )
    mailbox = str(target) if scope == "mailbox" else None
    html = render_fragment(
        VENDOR, "whitelist", entries=entries, whose=whose, mailbox=mailbox, **page
    )
    frags.append(Fragment(VENDOR, "whitelist", f"spambarrier whitelist of {whose}", html))
    return frags


@hookimpl
def settings_submitted(vendor, scope, target, form):
    if scope == "admin":
        return SettingsResult(
            False, "spambarrier's settings are per domain: change them on the domain's page."
        )
    try:
        data = ActionForm().load(form)
        domain = target if scope == "domain" else target.domain
        if _listed(vendor, domain.name) is None:
            return SettingsResult(False, f"{domain.unicode_name} is not at spambarrier.")
        mailbox = None if scope == "domain" else target.address
        return _apply(vendor, domain.name, mailbox, data)
    except ValidationError as exc:
        return SettingsResult.invalid(exc.messages)


def _apply(vendor, name: str, mailbox: str | None, data: dict) -> SettingsResult:
    api, action = client(vendor), data["action"]
    if action in ("filter", "verify") and mailbox is not None:
        return SettingsResult(False, "Only the domain's owner can change this.")
    if action == "filter":
        settings = FilterForm().load(
            {k: data[k] for k in FilterForm().fields if data.get(k) not in (None, "")}
        )
        was = dataclasses.asdict(api.get_filter_settings(name))
        api.set_filter_settings(name, FilterSettings(**settings))
        return SettingsResult(True, "Filter settings saved.", changed=("filter",), before=was)
    if action == "verify":
        ok, message = txt_proof.verify_now(vendor, name, api.confirm_txt_record)
        return SettingsResult(ok, message, changed=("verification",) if ok else ())
    if action in ("resend", "delete_message"):
        (message_id,) = required_for_action(data, "message_id")
        messages = api.get_quarantine(name)
        found = next((m for m in messages if m.message_id == message_id), None)
        if found is None or (mailbox and not _mine(mailbox, found.recipient)):
            return SettingsResult(False, "That message is not in the quarantine (any more).")
        if action == "resend":
            api.resend_quarantine_message(name, message_id)
            return SettingsResult(
                True, f"The message is delivered to {found.recipient}.", changed=("quarantine",)
            )
        api.delete_quarantine_message(name, message_id)
        return SettingsResult(True, "The message is deleted.", changed=("quarantine",))
    if action == "whitelist_add":
        (sender,) = required_for_action(data, "sender")
        recipient = mailbox or required_for_action(data, "recipient")[0]
        if recipient.rpartition("@")[2].lower() != name:
            raise ValidationError({"recipient": [f"an address at {name}"]})
        api.add_whitelist_entry(name, sender, recipient)
        return SettingsResult(
            True, f"Mail from {sender} to {recipient} is let through.", changed=("whitelist",)
        )
    (entry_id,) = required_for_action(data, "entry_id")
    entries = api.get_whitelist_entries(name)
    entry = next((e for e in entries if e.id == entry_id), None)
    if entry is None or (mailbox and not _mine(mailbox, entry.recipient)):
        return SettingsResult(False, "That whitelist entry does not exist (any more).")
    api.delete_whitelist_entry(name, entry_id)
    return SettingsResult(True, "The whitelist entry is removed.", changed=("whitelist",))
