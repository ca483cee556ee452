"""A vendor whose hooks crash, to prove one vendor never stops another."""

from spamfilter_plugin.hookspecs import hookimpl


@hookimpl
def domain_created(vendor, event):
    raise RuntimeError(f"crashy exploded on {event.domain}")


@hookimpl
def vendor_check(vendor):
    raise RuntimeError("crashy cannot check")
