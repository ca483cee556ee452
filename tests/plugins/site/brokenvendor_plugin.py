"""A vendor plugin that cannot be imported (its module fails on load)."""

raise ImportError("brokenvendor needs a library that is not installed")
