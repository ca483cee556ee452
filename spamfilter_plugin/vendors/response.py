"""Reading what vendors answer: marshmallow schemas that ignore unknown keys, and one
loader that turns an answer that does not fit into a VendorResponseError (the answer kept
on the error).  Every vendor client reads its responses through these."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import EXCLUDE, Schema, ValidationError, post_load

from ..errors import VendorResponseError


class ResponseSchema(Schema):
    """Base for schemas that read vendor responses: unknown keys are ignored.  With
    ``into`` set to a class (a dataclass), each loaded object is made into one, its fields
    given by name."""

    class Meta:
        unknown = EXCLUDE

    into: ClassVar[type | None] = None

    @post_load
    def _into(self, data: dict, **kwargs) -> Any:
        return self.into(**data) if self.into is not None else data


def read_response(
    vendor: str, schema: Schema, data: Any, what: str, *, many: bool = False, body: Any = None
) -> Any:
    """*data* (a vendor's parsed answer) loaded by *schema*; an answer that does not fit is a
    VendorResponseError saying which fields, with the answer kept on the error."""
    try:
        return schema.load(data, many=many)
    except (ValidationError, TypeError) as exc:
        detail = exc.messages if isinstance(exc, ValidationError) else exc
        raise VendorResponseError(
            vendor,
            f"answered {what} we cannot read ({detail})",
            body=body if body is not None else str(data),
        ) from None
