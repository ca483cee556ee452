"""Vendor hook implementations, one module per vendor (installed as spamfilter_plugin.hooks).

Each module is registered through the ``spamfilter_plugin`` entry-point group
under the vendor's name; never import these modules by the top-level ``hooks``
path, which would register a plugin twice.
"""
