"""The configuration: one TOML file (``--config PATH``, else ``$SPAMFILTER_CONFIG``, else
``/etc/spamfilter-plugin/config.toml``).

* :mod:`.file`: finding and reading the file (the standard library alone: the panel hook's
  path);
* :mod:`.model`: the validated configuration's dataclasses and every key's default;
* :mod:`.schema`: the marshmallow schemas that validate each table, and the vendors' base
  schema;
* :mod:`.cache`: the record of the last full validation, which lets the panel hook skip it.

This ``__init__`` imports nothing, so the panel hook's path can read the file without the
rest.
"""
