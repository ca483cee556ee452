"""A vendor plugin with a misspelled hook implementation."""

from spamfilter_plugin.hookspecs import hookimpl


@hookimpl
def domain_create(vendor, event):  # should be domain_created
    return None
