"""The emulated clock: runs ``scale`` times faster than the real one and can be advanced by hand."""

from __future__ import annotations

import threading
import time


class Clock:
    """Emulated epoch seconds.

    Contract: ``now()`` is monotonic non-decreasing; it starts at the real wall-clock time of construction
    (or ``start``), advances ``scale`` emulated seconds per real second, and ``advance(s)`` adds ``s`` at once.
    Changing the scale never makes time jump.
    """

    def __init__(self, scale: float = 1.0, start: float | None = None) -> None:
        if scale < 0:
            raise ValueError("time scale must be >= 0")
        self._lock = threading.Lock()
        self._scale = float(scale)
        self._real_anchor = time.monotonic()
        self._emu_anchor = time.time() if start is None else float(start)
        self.started_at = self._emu_anchor

    def now(self) -> float:
        with self._lock:
            return self._emu_anchor + (time.monotonic() - self._real_anchor) * self._scale

    def advance(self, seconds: float) -> float:
        """Jump ``seconds`` (>= 0) ahead; returns the new emulated time."""
        if seconds < 0:
            raise ValueError("the emulated clock cannot go backwards")
        with self._lock:
            self._emu_anchor += float(seconds)
        return self.now()

    @property
    def scale(self) -> float:
        return self._scale

    def set_scale(self, scale: float) -> None:
        if scale < 0:
            raise ValueError("time scale must be >= 0")
        with self._lock:
            real = time.monotonic()
            self._emu_anchor += (real - self._real_anchor) * self._scale
            self._real_anchor = real
            self._scale = float(scale)
