"""Jinja templates of the settings fragments (installed as spamfilter_plugin.templates)."""
