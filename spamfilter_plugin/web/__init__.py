"""The web console and the panel pages.

- :mod:`.access`: who is asking (the console's admin, or a panel user handed over by the
  panel) and what the panel's own records let them see; the console's key and login links.
- :mod:`.status`: the dashboard's rows, from the panel's records, the queue and MX state.
- :mod:`.app`: the Flask application (login, dashboard, settings pages, queue).
- :mod:`.serve`: waitress on loopback, with the worker in the same process.
- :mod:`.demo`: the one-command demo (emulators, a fake panel, the console).

Nothing here is imported on the panel-hook path.
"""
