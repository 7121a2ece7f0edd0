"""Limits every queue adapter enforces, so that the local queue refuses what the cloud link would refuse."""

from __future__ import annotations

import json
from typing import Any

#: The largest completion message every link carries: an asynchronous invocation's event holds at most 128 KB
#: (scf Invoke, InvocationType Event), of which the event's wrapper ({"source": ..., "messages": [...]}) takes 44
#: bytes; the rest is rounded down. LocalQueue enforces the same limit so that a message that works in development
#: cannot fail only in the cloud.
MAX_BODY_BYTES = 128 * 1024 - 64


def check_body_size(body: str) -> None:
    """Raise ValueError unless `body` is a str of at most MAX_BODY_BYTES bytes once encoded as UTF-8."""
    if not isinstance(body, str):
        raise TypeError(f"message body must be str, not {type(body).__name__}")
    size = len(body.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise ValueError(
            f"message body is {size} bytes in UTF-8; a completion message holds at most {MAX_BODY_BYTES} bytes"
        )


def message_object(body: str) -> dict[str, Any]:
    """The completion message `body` parsed: every cloud link carries JSON objects only (ValueError otherwise,
    before any call is made; TypeError for a body that is not a str)."""
    if not isinstance(body, str):
        raise TypeError(f"message body must be str, not {type(body).__name__}")
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"a completion message must be a JSON object: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"a completion message must be a JSON object, not a JSON {type(value).__name__}")
    return value
