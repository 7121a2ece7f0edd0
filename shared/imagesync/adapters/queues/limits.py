"""Limits every queue adapter enforces, so that the local queue refuses what the cloud would refuse."""

from __future__ import annotations

#: TDMQ for CMQ accepts at most 1 MB per message (SendCmqMsg / PublishCmqMsg). LocalQueue enforces the same limit so
#: that a message that works in development cannot fail only in the cloud.
MAX_BODY_BYTES = 1024 * 1024


def check_body_size(body: str) -> None:
    """Raise ValueError unless `body` is a str of at most MAX_BODY_BYTES bytes once encoded as UTF-8."""
    if not isinstance(body, str):
        raise TypeError(f"message body must be str, not {type(body).__name__}")
    size = len(body.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise ValueError(
            f"message body is {size} bytes in UTF-8; a queue message holds at most {MAX_BODY_BYTES} bytes (1 MB)"
        )
