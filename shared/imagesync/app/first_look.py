"""When the sweep first looks at a new copy: placed from what recent copies took (domain.progress.first_look).

The durations are read through the store at most once per TTL of the domain clock, per process (a warm container
keeps them): a burst of copy_request invocations costs one query, not one per copy.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from ..domain.progress import FIRST_LOOK_SAMPLES, durations_for, first_look
from ..ports import Clock, CopyDurations

log = logging.getLogger(__name__)
#: how far back finished copies say something about a new one (a change of the cloud's pace shows within days)
WINDOW = timedelta(days=3)
#: how long one read of the durations is used: a quantile of the last 100 copies barely moves in minutes
TTL = timedelta(minutes=5)
#: copies read per query (every region): enough for the destination region's own FIRST_LOOK_SAMPLES in most worlds
QUERY_LIMIT = 2 * FIRST_LOOK_SAMPLES


class FirstLook:
    """`first_look(region)`: how long after its start a new copy into `region` is first looked at, in
    [floor_seconds, cap_seconds] (IMAGESYNC_FIRST_CHECK_SECONDS, IMAGESYNC_MAX_CHECK_SECONDS)."""

    def __init__(
        self,
        durations: CopyDurations | None,
        clock: Clock,
        *,
        floor_seconds: int,
        cap_seconds: int,
        window: timedelta = WINDOW,
        ttl: timedelta = TTL,
        limit: int = QUERY_LIMIT,
    ) -> None:
        self.durations = durations
        self.clock = clock
        self.floor = timedelta(seconds=floor_seconds)
        self.cap = timedelta(seconds=cap_seconds)
        self.window = window
        self.ttl = ttl
        self.limit = limit
        self._samples: list[tuple[str, float]] = []
        self._read_at: datetime | None = None
        #: store reads made (what the TTL saves is visible in tests)
        self.reads = 0

    def __call__(self, region: str) -> timedelta:
        if self.durations is None:
            return self.floor
        now = self.clock.now()
        if self._read_at is None or not (self._read_at <= now < self._read_at + self.ttl):
            self._read_at = now
            self.reads += 1
            try:
                self._samples = self.durations.recent_durations(now - self.window, self.limit)
            except Exception as exc:  # only a hint: a copy is started and tracked all the same, looked at the floor
                log.warning(
                    "recent copy durations not read (%s); the first look is IMAGESYNC_FIRST_CHECK_SECONDS",
                    type(exc).__name__,
                )
                self._samples = []
        return first_look(durations_for(self._samples, region), floor=self.floor, cap=self.cap)
