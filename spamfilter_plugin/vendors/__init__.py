"""Vendor API clients: one module per vendor, one typed method per documented function."""
