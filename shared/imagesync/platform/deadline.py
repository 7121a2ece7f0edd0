"""The time an invocation has left, visible to every layer without passing it by hand.

SCF gives the budget as context["time_limit_in_ms"]; retries and the sweep stop before it runs out.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("imagesync_deadline", default=None)


@contextmanager
def deadline_in(seconds: float | None) -> Iterator[None]:
    """Within this block, time_left() counts down from `seconds` (None: no deadline)."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def time_left() -> float:
    """Seconds until the invocation's deadline (infinity when none is set)."""
    end = _deadline.get()
    return float("inf") if end is None else end - time.monotonic()
