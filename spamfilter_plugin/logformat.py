"""``[general] log_format = "json"``: each log line on standard error one JSON object.

The record is redacted before it gets here (:class:`~.redaction.RedactingFilter` renders
and masks the message and the traceback), so the JSON holds exactly what the text format
would.  Fields: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the fields a
line of the worker passes along (:data:`FIELDS`), and ``exception`` with the traceback."""

from __future__ import annotations

import json
import logging
import time

from .redaction import redact

#: what a log call may pass in ``extra`` to appear as a field of its own
FIELDS = ("vendor", "row", "hook", "target", "duration_s", "outcome", "attempt")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, object] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value if isinstance(value, (int, float)) else redact(value)
        if record.exc_info and record.exc_info[1] is not None:  # a record not redacted yet
            line["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


_chosen = {"json": False}


def use(log_format: str) -> None:
    """Format every handler of the root logger as *log_format* says (``text`` keeps the
    handlers' own format), and the commands' progress notes (:func:`note_line`) too."""
    _chosen["json"] = log_format == "json"
    if log_format != "json":
        return
    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonFormatter())


def note_line(message: str, **fields: object) -> str:
    """A command's progress note as it is written to standard error: the text, or with
    ``log_format = "json"`` a JSON object like a log line's (logger ``spamfilter``)."""
    if not _chosen["json"]:
        return message
    record = logging.LogRecord("spamfilter", logging.INFO, "", 0, redact(message), None, None)
    for name, value in fields.items():
        setattr(record, name, value)
    return JsonFormatter().format(record)
