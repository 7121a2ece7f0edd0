"""Per-account, per-action request rate limits (token buckets over the REAL clock)."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """``allow(key, rate)`` is True when a call fits in ``rate`` requests per second for ``key``.

    A bucket holds at most ``rate`` tokens (one second of burst) and refills ``rate`` tokens per real second.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._buckets: dict[tuple, tuple[float, float]] = {}  # key -> (tokens, last refill monotonic)

    def allow(self, key: tuple, rate: int) -> bool:
        if not self.enabled:
            return True
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(rate), now))
            tokens = min(float(rate), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1.0, now)
            return True

    def set_enabled(self, enabled: bool) -> None:
        with self._lock:
            self.enabled = enabled
            self._buckets.clear()
