"""What every trigger envelope shares (platform.envelopes, platform.timer): the InvalidEvent and Parsed contract the
handlers rely on, the error descriptions, the record check of domain.safeparse, and the JsonText reader.

Apart from platform.envelopes so that status_sweep's timer (platform.timer) imports none of the other triggers'
models: each pydantic model costs its class at import, deferred build or not (docs/benchmarks.md, "Cold import
and the deploy package").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ValidationError

from ..domain.errors import ImageSyncError
from ..domain.safeparse import Unparseable, check_value, dumps_json, printable

M = TypeVar("M", bound=BaseModel)


class InvalidEvent(ImageSyncError):
    """The trigger's outer shape is not one this function understands (a deployment mistake, not a record)."""

    code = "Event.Invalid"
    kind = "invalid"


@dataclass(frozen=True)
class Parsed(Generic[M]):
    """One record: `value` when it validated, else `error` (a one-line reason with the field)."""

    id: str
    value: M | None = None
    error: str | None = None
    #: envelope facts about the record (queue, tags, offset, event type...), for logs and reports
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def describe_error(exc: Exception) -> str:
    """A short reason: pydantic's first errors with their fields, or the exception's text."""
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:3]]
        return printable("; ".join(parts), 500)
    if isinstance(exc, Unparseable):
        return exc.reason
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON: {exc.msg} at position {exc.pos}"
    return printable(f"{type(exc).__name__}: {exc}", 500)


def check_record(value: Any, what: str) -> None:
    """Raise InvalidEvent unless `value` (a record as the runtime decoded it) is within safeparse's bounds."""
    try:
        check_value(value)
    except Unparseable as exc:
        raise InvalidEvent(f"{what}: {exc.reason}") from exc


#: A message body: a string as given; an object the trigger already decoded, back to its JSON text; null -> "".
JsonText = Annotated[str, BeforeValidator(lambda v: "" if v is None else v if isinstance(v, str) else dumps_json(v))]
