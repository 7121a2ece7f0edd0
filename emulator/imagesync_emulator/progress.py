"""Progress curves: the SyncPercent a copy in flight shows, as a function of how far it is through its duration.

A curve shapes SyncPercent only: a copy's start, its end (``ready_at``) and its final state are drawn at SyncImages
time as before, whatever the curve. Every curve answers an int in 0..99 (or None) while the copy runs; the copy shows
100 once it has ended (world.image_state). Curves are pure functions of (elapsed, span) in emulated seconds, so they
are deterministic; only ``mixed`` draws, once per copy, from the world's own progress stream (seeded).

Documented in docs/emulator.md ("Progress curves"). What the real cloud does is unconfirmed beyond this: SyncPercent
is an Integer in the DescribeImages model, documented as the sync progress, and is observed to move in steps.
"""

from __future__ import annotations

import random
from collections.abc import Callable

STALL_MAX_S = 900.0  # stall_99: the last min(15 emulated minutes, half the copy) shows 99
LATE_START_FRACTION = 0.3  # zero_start / null_start: the first 30% of the copy shows 0 / null
JUMPS = ((0.0, 0), (0.3, 40), (0.6, 80), (0.9, 99))  # jumps: (fraction of the copy, percent from then on)


def _linear(elapsed: float, span: float) -> int | None:
    return min(99, int(100 * elapsed / span))


def _slow_start(elapsed: float, span: float) -> int | None:
    return min(99, int(100 * (elapsed / span) ** 2))


def _stall_99(elapsed: float, span: float) -> int | None:
    rise = span - min(STALL_MAX_S, span / 2)  # 0 -> 99 over the first part, then 99 until the end
    return 99 if elapsed >= rise else min(99, int(99 * elapsed / rise))


def _jumps(elapsed: float, span: float) -> int | None:
    fraction = elapsed / span
    return max(p for at, p in JUMPS if fraction >= at)


def _late(start_value: int | None) -> Callable[[float, float], int | None]:
    def curve(elapsed: float, span: float) -> int | None:
        wait = span * LATE_START_FRACTION
        if elapsed < wait:
            return start_value
        return min(99, int(100 * (elapsed - wait) / (span - wait)))

    return curve


CURVES: dict[str, Callable[[float, float], int | None]] = {
    "linear": _linear,
    "slow_start": _slow_start,
    "stall_99": _stall_99,
    "jumps": _jumps,
    "zero_start": _late(0),
    "null_start": _late(None),
}
MIXED = "mixed"  # each copy draws one of CURVES (MIXED_WEIGHTS) when it starts
MIXED_WEIGHTS = {"linear": 3, "slow_start": 2, "stall_99": 2, "jumps": 2, "zero_start": 1, "null_start": 1}
NAMES = (*CURVES, MIXED)


def check_name(name: str) -> str:
    """``name`` if it is a curve (or ``mixed``), else ValueError naming the choices."""
    if name not in NAMES:
        raise ValueError(f"unknown progress curve {name!r} (one of {', '.join(NAMES)})")
    return name


def resolve(name: str, rng: random.Random) -> str:
    """The concrete curve a copy starting now gets under the setting ``name`` (``mixed`` draws one)."""
    if name != MIXED:
        return check_name(name)
    names = sorted(MIXED_WEIGHTS)
    return rng.choices(names, weights=[MIXED_WEIGHTS[n] for n in names])[0]


def percent(name: str, elapsed: float, span: float) -> int | None:
    """SyncPercent of a copy ``elapsed`` emulated seconds into a copy of ``span`` seconds (0 <= elapsed < span)."""
    return CURVES[name](max(0.0, elapsed), max(span, 1e-9))
