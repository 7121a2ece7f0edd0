"""The operator's records: one single-line JSON log record per replica end, hook failure, hook given up, sweep and
refused request, with stable fields (docs/operations.md lists them; the CLS queries and alarms of deploy/cls/ use
them). SCF ships each function's stdout to CLS, where a custom log topic with a key-value index on these fields
answers the queries (docs/facts.md#F-OBS-1).

Every record of an event carries every field of its event in `FIELDS`, always, with a value of the field's type:
"" for a text field without a value, never null (the JSON logger leaves null fields out, and a query or alarm on
a field that is sometimes missing silently counts nothing). The record goes through the standard logging module
under the `imagesync.records` logger, so the functions' JSON logger (platform.logs) writes it on one line with its
level, timestamp, function and request id.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

log = logging.getLogger("imagesync.records")

#: event -> its fields, beside `event` itself (docs/operations.md, "Records")
FIELDS: dict[str, tuple[str, ...]] = {
    "replica_ended": (
        "replication",
        "replica",
        "source_region",
        "image",
        "region",
        "state",
        "code",
        "error",
        "attempts",
        "duration_s",
        "total_s",
        "overdue",
    ),
    "hook_failed": ("replication", "replica", "region", "state", "hook", "code", "error", "attempts", "final"),
    "hook_given_up": ("replication", "replica", "region", "state", "hook", "code", "error"),
    "sweep_summary": (
        "sweep",
        "claimed",
        "started",
        "succeeded",
        "failed",
        "timed_out",
        "published",
        "undelivered",
        "stopped_early",
        "code",
        "duration_s",
    ),
    "request_refused": ("status", "code", "error", "method", "path", "source_ip"),
}
#: fields that hold numbers or booleans; every other field is text
NUMBERS = {
    "attempts",
    "duration_s",
    "total_s",
    "claimed",
    "started",
    "succeeded",
    "failed",
    "timed_out",
    "published",
    "undelivered",
    "status",
}
FLAGS = {"overdue", "final", "stopped_early"}
#: an error message is cut to this many characters (a record stays one readable line)
MAX_TEXT = 500


def _value(name: str, value: Any) -> Any:
    if name in FLAGS:
        return bool(value)
    if name in NUMBERS:
        return round(value, 3) if isinstance(value, float) else int(value or 0)
    return "" if value is None else str(value)[:MAX_TEXT]


def emit(event: str, level: int, message: str, **fields: Any) -> dict[str, Any]:
    """Log the record of `event` (every field of FIELDS[event], no other) and return it.

    Raises KeyError for an unknown event and TypeError for a field the event does not have: a misspelt field
    fails the tests that emit it, not the operator's query.
    """
    names = FIELDS[event]
    unknown = set(fields) - set(names)
    if unknown:
        raise TypeError(f"{event} has no field(s) {sorted(unknown)}")
    record = {"event": event, **{name: _value(name, fields.get(name)) for name in names}}
    log.log(level, message, extra=record)
    return record


def seconds(start: datetime | None, end: datetime | None) -> float:
    """Seconds from `start` to `end`; 0 when either is unknown."""
    if start is None or end is None:
        return 0.0
    return max(0.0, (end - start).total_seconds())
