"""Helpers for the vendors' settings forms (validated by each vendor's marshmallow schema)."""

from __future__ import annotations

from marshmallow import ValidationError


def required_for_action(data: dict, *names: str) -> list:
    """The values of *names* in a loaded form, or a ValidationError naming each one that is
    missing or empty (fields only some of a form's actions need)."""
    missing = {n: ["required for this action"] for n in names if data.get(n) in (None, "")}
    if missing:
        raise ValidationError(missing)
    return [data[n] for n in names]
