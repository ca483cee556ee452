"""The stores behind the queue (:mod:`spamfilter_plugin.queue`): the only modules that
write rows, ownership, sessions and MX state.

* :mod:`.outbox`: the local SQLite outbox (schema, key, appending), which a panel hook
  writes through; standard library only;
* :mod:`.base`: the interface of a queue store (:class:`~.base.Queue`) and its rows;
* :mod:`.sqlite`: the SQLite store (one server);
* :mod:`.mx`: the MX state of the domains whose MX the plugin manages.

This ``__init__`` holds what every store keeps to (the row states, which later event makes
which earlier one pointless) and imports nothing: the panel hook's path goes through it.
"""

#: the states of a row; ``skipped``: never delivered, because it would undo what another
#: server of the fleet did since (see :mod:`.postgres`)
STATES = ("pending", "leased", "done", "dead", "superseded", "skipped")

#: a new event of the key's hook supersedes undelivered (pending) earlier events of
#: these hooks, for the same vendor and target
SUPERSEDES: dict[str, tuple[str, ...]] = {
    "domain_deleted": (
        "domain_created",
        "domain_updated",
        "domain_suspended",
        "domain_unsuspended",
        "password_reset",
        "vendor_step",
    ),
    "domain_updated": ("domain_updated",),
    "mailbox_deleted": ("mailbox_added", "password_reset"),
    "password_reset": ("password_reset",),
}

#: the hook of the steps vendors queue for themselves (:class:`~.events.VendorStep`)
STEP_HOOK = "vendor_step"
