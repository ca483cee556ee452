"""What every queue store keeps to: the row states and which later event makes which
earlier one pointless.  The standard library alone (the panel-hook path imports it)."""

STATES = ("pending", "leased", "done", "dead", "superseded")

#: a new event of the key's hook supersedes undelivered (pending) earlier events of
#: these hooks, for the same vendor and target
SUPERSEDES: dict[str, tuple[str, ...]] = {
    "domain_deleted": ("domain_created", "domain_updated", "password_reset", "vendor_step"),
    "domain_updated": ("domain_updated",),
    "mailbox_deleted": ("mailbox_added", "password_reset"),
    "password_reset": ("password_reset",),
}

#: the hook of the steps vendors queue for themselves (:class:`~.events.VendorStep`)
STEP_HOOK = "vendor_step"
