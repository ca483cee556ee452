"""SpamWall: lifecycle policy, config schema and settings pages at three levels.

SpamWall routes each domain to an IP and port, holds user accounts, and keeps
white/black lists and spam scores per caller (the admin's are global, a domain
admin's are their domain's, a user's are that user's).  Mailboxes become SpamWall
users (``users``) whose password the plugin sets and keeps in the vault, encrypted
with the queue's key, so it can act as the user for the mailbox page; with
``sync_recipients`` the allowed-recipients list follows the mailboxes while
recipient verification is method 3.
"""

from __future__ import annotations

import itertools
import secrets

from marshmallow import Schema, ValidationError, fields, validate, validates

from spamfilter_plugin import settle, suspension
from spamfilter_plugin.config.schema import (
    GatewaySchema,
    SecretField,
    WholeNumber,
    checked_by,
)
from spamfilter_plugin.errors import (
    VendorConflict,
    VendorNotFound,
    VendorRejected,
)
from spamfilter_plugin.events import normalise_email, normalise_ip
from spamfilter_plugin.forms import required_for_action
from spamfilter_plugin.hookspecs import hookimpl
from spamfilter_plugin.redaction import Secret
from spamfilter_plugin.resolve import resolve_ip
from spamfilter_plugin.templating import (
    Fragment,
    SettingsResult,
    number_bounds,
    render_fragment,
)
from spamfilter_plugin.vendors.spamwall import (
    BYPASS,
    DEFAULT_URL,
    LEVELS,
    LISTS,
    SCORE,
    VENDOR,
    VERIFICATION_METHODS,
    SpamWallClient,
)

LEVEL_TITLES = {
    "spam_tag_level": "Mark as possible spam from score",
    "spam_tag2_level": "Mark as spam from score",
    "spam_kill_level": "Block from score",
}
METHOD_TITLES = [
    ("1", "1: no recipient verification"),
    ("2", "2: dynamic (ask the destination server)"),
    ("3", "3: only the allowed recipients below"),
]


class DomainAdminSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1))
    password = SecretField(required=True)


class SpamWallSchema(GatewaySchema):
    """``[vendors.spamwall]``: the admin account, where domains' mail goes, and the mailbox
    policy."""

    on_suspend = suspension.keep_only(
        "SpamWall", "its API routes a domain to an IP and port, and has no filter switch"
    )

    api_url = fields.Url(schemes={"http", "https"}, require_tld=False, load_default=DEFAULT_URL)
    username = fields.String(
        required=True, validate=validate.Length(min=1, error="must not be empty")
    )
    password = SecretField(required=True)
    destination_port = WholeNumber(
        load_default=25, validate=validate.Range(1, 65535, error="must be a port, 1 to 65535")
    )
    destination_ip = fields.String(
        load_default=None, validate=checked_by(normalise_ip, "destination_ip")
    )
    users = fields.Boolean(load_default=True)
    sync_recipients = fields.Boolean(load_default=False)
    domain_admins = fields.Dict(
        keys=fields.String(), values=fields.Nested(DomainAdminSchema), load_default=dict
    )


#: a score as SpamWall keeps it: text, -999 to 999, at most two decimals (a number input's
#: bounds in the metadata)
_SCORE_BOUNDS = {"min": -999, "max": 999, "step": 0.01}


class _EmailAndScores(Schema):
    """The fields the admin form and the list forms share."""

    email = fields.String(validate=checked_by(normalise_email, "email"))
    spam_tag_level = fields.String(metadata=_SCORE_BOUNDS)
    spam_tag2_level = fields.String(metadata=_SCORE_BOUNDS)
    spam_kill_level = fields.String(metadata=_SCORE_BOUNDS)

    @validates("spam_tag_level", "spam_tag2_level", "spam_kill_level")
    def _score(self, value: str, **kwargs) -> None:
        if value.strip() and not SCORE.fullmatch(value.strip()):
            raise ValidationError("a number from -999 to 999, at most two decimals (6.31)")


class AdminForm(_EmailAndScores):
    action = fields.String(
        required=True,
        validate=validate.OneOf(
            (
                "domain",
                "bypass_add",
                "bypass_del",
                "verification",
                "recipient_add",
                "recipient_del",
                "levels",
            )
        ),
    )
    name = fields.String()
    ip = fields.String()
    port = fields.Integer(validate=validate.Range(1, 65535, error="must be a port, 1 to 65535"))
    list = fields.String(validate=validate.OneOf(BYPASS, error="choose spam or rbl"))
    full = fields.Boolean(load_default=True)
    method = fields.Integer(
        validate=validate.OneOf(tuple(VERIFICATION_METHODS), error="choose 1, 2 or 3")
    )


class ListForm(_EmailAndScores):
    """A domain's or a user's lists, and (for a user) their spam levels."""

    action = fields.String(required=True, validate=validate.OneOf(("add", "remove", "levels")))
    list = fields.String(validate=validate.OneOf(LISTS, error="choose whitelist or blacklist"))


# -- clients: the admin, a domain admin, a user ------------------------------------------


def client(vendor) -> SpamWallClient:
    cfg = vendor.config
    return vendor.cached(
        "client", lambda: SpamWallClient(vendor.http(), cfg["username"], cfg["password"])
    )


def domain_admin(vendor, domain: str) -> SpamWallClient | None:
    found = vendor.config["domain_admins"].get(domain)
    return None if found is None else client(vendor).acting_as(found["username"], found["password"])


def as_user(vendor, address: str) -> SpamWallClient | None:
    """A client logged in as the mailbox's SpamWall user, from the vault; None if the
    plugin holds no credential for it."""
    password = vendor.vault.get(address)
    return None if password is None else client(vendor).acting_as(address, password)


def _new_password() -> Secret:
    return Secret(secrets.token_urlsafe(18))


def destination_ip(vendor, destination: str | None) -> str:
    """The event's destination if an IP; else the host name (the event's, then
    ``general.mail_host``) resolved; else ``destination_ip``."""
    host = destination or vendor.general.mail_host
    if host:
        return resolve_ip(
            VENDOR,
            host,
            "fix its DNS, give an IP as the destination, or set destination_ip in "
            "[vendors.spamwall]",
        )
    if vendor.config["destination_ip"]:
        return vendor.config["destination_ip"]
    raise VendorRejected(
        VENDOR,
        "no destination: give the event a destination, or set general.mail_host or "
        "destination_ip in [vendors.spamwall]",
    )


# -- lifecycle -----------------------------------------------------------------------


@hookimpl
def vendor_config_schema():
    return SpamWallSchema


@hookimpl
def vendor_check(vendor):
    count = len(client(vendor).list_domains())
    return f"authenticated as {vendor.config['username']}; {count} domains"


@hookimpl
def inventory_domains(vendor):
    return ((d.host, f"{d.ip}:{d.port}") for d in client(vendor).list_domains())


@hookimpl
def domain_route(vendor, destination):
    # SpamWall routes a domain to an IP and a port: a host name is resolved, as domain_created does
    return f"{destination_ip(vendor, destination)}:{vendor.config['destination_port']}"


def _route(vendor, event, *, create: bool) -> dict:
    ip, port = destination_ip(vendor, event.destination), vendor.config["destination_port"]
    api, name = client(vendor), event.domain.name

    def route() -> None:
        try:
            (api.add_domain if create else api.change_domain)(name, ip, port)
        except (VendorConflict, VendorNotFound):  # already there / not there: the other one
            (api.change_domain if create else api.add_domain)(name, ip, port)

    settle.created(
        VENDOR,
        name,
        route,
        route_of=api.route_of,
        wanted=f"{ip}:{port}",
        update=lambda: api.change_domain(name, ip, port),
    )
    return {"message": f"mail for {name} goes to {ip} port {port}"}


# keep only: nothing to change at SpamWall (its schema refuses bypass)
domain_suspended, domain_unsuspended = suspension.hookimpls()


@hookimpl
def domain_current_route(vendor, domain):
    # list_domains is the API's one read of a domain's IP and port
    return settle.current_route(client(vendor).route_of, domain.name)


@hookimpl
def domain_created(vendor, event):
    return _route(vendor, event, create=True)


@hookimpl
def domain_updated(vendor, event):
    return _route(vendor, event, create=False)


@hookimpl
def domain_deleted(vendor, event):
    api, name = client(vendor), event.domain.name
    api.delete_domain(name)
    users = [u for u in api.list_users("all") if u.email.rpartition("@")[2] == name]
    for user in users:
        api.delete_user(user.username)
        vendor.vault.delete(user.username)
    recipients = [r for r in api.recipients_list() if r.address.rpartition("@")[2] == name]
    for r in recipients:
        api.recipient_del(r.address)
    return {"message": f"removed with {len(users)} users and {len(recipients)} allowed recipients"}


def _set_user(vendor, address: str, password: Secret) -> None:
    """Make the mailbox's SpamWall user exist with *password*, and keep it in the vault."""
    api = client(vendor)
    try:
        api.add_user(address, password, address, address.partition("@")[0])
    except VendorConflict:  # already a user: take it over with the new password
        api.change_user_password(address, password)
    vendor.vault.put(address, password)


@hookimpl
def mailbox_added(vendor, event):
    cfg, address, done = vendor.config, event.mailbox.address, []
    if cfg["users"]:
        _set_user(vendor, address, _new_password())
        done.append("SpamWall user added")
    if cfg["sync_recipients"] and client(vendor).verification_method() == 3:
        client(vendor).recipient_add(address)
        done.append("allowed as a recipient")
    return {"message": "; ".join(done) or "nothing to do (users and sync_recipients are off)"}


@hookimpl
def mailbox_deleted(vendor, event):
    cfg, address, api = vendor.config, event.mailbox.address, client(vendor)
    if cfg["users"] and api.list_users(address):
        api.delete_user(address)
    vendor.vault.delete(address)
    if cfg["sync_recipients"]:
        api.recipient_del(address)


@hookimpl
def password_reset(vendor, event):
    if event.mailbox is None or not vendor.config["users"]:
        return None  # SpamWall has no domain accounts of ours
    address, generated = event.mailbox.address, event.password is None
    password = event.password or _new_password()
    _set_user(vendor, address, password)
    return {"password": password} if generated else {"message": "SpamWall password changed"}


# -- settings pages ------------------------------------------------------------------


@hookimpl
def settings_fragments(vendor, scope, target, csrf_token):
    api = client(vendor)
    if scope == "admin":
        context = {
            "domains": api.list_domains(),
            "method": api.verification_method(),
            "recipients": api.recipients_list(),
            "levels": api.spam_levels(),
        }
        title = "SpamWall"
    elif scope == "domain":
        name = target.name
        users = [u for u in api.list_users("all") if u.email.rpartition("@")[2] == name]
        context = {
            "domain": target,
            "users": users,
            "has_admin": domain_admin(vendor, name) is not None,
        }
        title = f"SpamWall for {target.unicode_name}"
    else:
        user = as_user(vendor, target.address)
        context = {"mailbox": target, "levels": user.spam_levels() if user else None}
        title = f"SpamWall for {target.unicode_address}"
    html = render_fragment(
        VENDOR,
        scope,
        level_titles=LEVEL_TITLES,
        score=number_bounds(_EmailAndScores, "spam_tag_level"),
        port=number_bounds(AdminForm, "port"),
        methods=METHOD_TITLES,
        lists=LISTS,
        csrf_token=csrf_token,
        **context,
    )
    return Fragment(VENDOR, scope, title, html)


@hookimpl
def settings_submitted(vendor, scope, target, form):
    try:
        if scope == "admin":
            return _admin(client(vendor), AdminForm().load(form))
        data = ListForm().load(form)
        if scope == "domain":
            api = domain_admin(vendor, target.name)
            whose = f"{target.unicode_name}'s"
            if api is None or data["action"] == "levels":
                return SettingsResult(
                    False,
                    f"No domain admin account for {target.unicode_name} is configured "
                    "(domain_admins in [vendors.spamwall]), so its lists cannot be changed here.",
                )
        else:
            api, whose = as_user(vendor, target.address), "your"
            if api is None:
                return SettingsResult(
                    False,
                    f"{target} has no SpamWall account made by this server yet; it is made "
                    "when the mailbox is created or its password is reset.",
                )
        return _lists(api, data, whose)
    except ValidationError as exc:
        return SettingsResult.invalid(exc.messages)


def _in_order(levels: dict[str, str]) -> None:
    """Possible spam <= spam <= block: ValidationError naming both fields otherwise (a
    level left out is the one SpamWall holds)."""
    for lower, higher in itertools.pairwise(LEVELS):
        try:
            low, high = float(levels[lower]), float(levels[higher])
        except (TypeError, ValueError):
            continue
        if high < low:
            raise ValidationError(
                {
                    higher: f"'{LEVEL_TITLES[higher]}' ({levels[higher]}) must not be below "
                    f"'{LEVEL_TITLES[lower]}' ({levels[lower]})"
                }
            )


def _save_levels(api: SpamWallClient, data: dict) -> SettingsResult:
    current, changed = api.spam_levels(), []
    wanted = {level: (data.get(level) or "").strip() or current[level] for level in LEVELS}
    _in_order(wanted)
    for level in LEVELS:
        if wanted[level] != current[level]:
            api.set_spam_level(level, wanted[level])
            changed.append(level)
    if not changed:
        return SettingsResult(True, "Nothing changed.")
    return SettingsResult(True, "Spam score levels saved.", changed=tuple(changed))


def _lists(api: SpamWallClient, data: dict, whose: str) -> SettingsResult:
    if data["action"] == "levels":
        return _save_levels(api, data)
    which, email = required_for_action(data, "list", "email")
    if data["action"] == "add":
        api.list_add(which, email)
        return SettingsResult(True, f"{email} is on {whose} {which}.", changed=(which,))
    api.list_del(which, email)
    return SettingsResult(True, f"{email} is not on {whose} {which}.", changed=(which,))


def _admin(api: SpamWallClient, data: dict) -> SettingsResult:
    action = data["action"]
    if action == "domain":
        name, ip, port = required_for_action(data, "name", "ip", "port")
        api.change_domain(name, ip, port)
        return SettingsResult(
            True, f"Mail for {name} goes to {ip} port {port}.", changed=("domain",)
        )
    if action in ("bypass_add", "bypass_del"):
        which, ip = required_for_action(data, "list", "ip")
        title = "spam check" if which == "spam" else "RBL check"
        if action == "bypass_add":
            api.add_bypass(which, ip, full=data["full"])
            return SettingsResult(True, f"{ip} now bypasses the {title}.", changed=("bypass",))
        api.del_bypass(which, ip)
        return SettingsResult(True, f"{ip} no longer bypasses the {title}.", changed=("bypass",))
    if action == "verification":
        (method,) = required_for_action(data, "method")
        api.set_verification_method(method)
        return SettingsResult(
            True, f"Recipient verification: {VERIFICATION_METHODS[method]}.", changed=("method",)
        )
    if action in ("recipient_add", "recipient_del"):
        (email,) = required_for_action(data, "email")
        (api.recipient_add if action == "recipient_add" else api.recipient_del)(email)
        verb = "is" if action == "recipient_add" else "is not"
        return SettingsResult(
            True, f"{email} {verb} an allowed recipient.", changed=("recipients",)
        )
    return _save_levels(api, data)
