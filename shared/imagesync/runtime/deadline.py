"""The time an invocation has left, visible to every layer without passing it by hand.

SCF gives the budget as context["time_limit_in_ms"]; retries and the sweep stop before it runs out. Every window
that says "this process is still at work" (an idempotency claim in progress, a sweep's lease) lasts until this
deadline and no longer: SCF ends the invocation there, so a claim held past it would only lock out the retry of a
process that is already dead. Such windows are measured on the real clock (`wall_now`), never on an injected
domain clock (the emulator's compressed one would make them expire while the process still works).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

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


def budget(fallback: float) -> float:
    """Seconds left before the invocation's deadline, or `fallback` when it has none (a caller with no bound of its
    own: give the longest it may run)."""
    left = time_left()
    return fallback if left == float("inf") else max(0.0, left)


def wall_now() -> datetime:
    """The real time (timezone-aware UTC): the clock of every window a dying process must not outlive."""
    return datetime.now(timezone.utc)
