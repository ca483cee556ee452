"""The systemd unit of the worker (package data)."""
