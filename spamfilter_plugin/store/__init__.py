"""The stores behind the queue (:mod:`spamfilter_plugin.queue`): the only modules that
write rows, ownership, sessions and MX state.

* :mod:`.rules`: the states and superseding rules every store keeps to;
* :mod:`.outbox`: the local SQLite outbox (schema, key, appending), which a panel hook
  writes through; standard library only;
* :mod:`.base`: the interface of a queue store (:class:`~.base.Queue`) and its rows;
* :mod:`.sqlite`: the SQLite store (one server);
* :mod:`.mx`: the MX state of the domains whose MX the plugin manages.

This package's ``__init__`` imports nothing: the panel hook's path goes through it.
"""
