"""When the sweep first looks at a new copy, placed from what recent copies took (domain.progress.first_look), and
whether its looks may go ahead of the look budget's slots, from how recent copies' looks fared (bets_pay).

Both are read through the store at most once per TTL of the domain clock, per process (a warm container keeps
them): a burst of copy_request invocations or a sweep's pages cost one read, not one per copy.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from ..domain.progress import FIRST_LOOK_SAMPLES, bets_pay_in, durations_for, first_look
from ..ports import Clock, CopyDurations

log = logging.getLogger(__name__)
#: how far back finished copies say something about a new one (a change of the cloud's pace shows within days)
WINDOW = timedelta(days=3)
#: how far back copies' looks say whether looks ahead of the budget's slots pay (domain.progress.bets_pay): the
#: copies' own looks ahead (looks_over) while there are enough of them; once those are this old, the copies' paces
#: (pace_changed), which a strict budget's looks judge too
BET_WINDOW = timedelta(days=1)
#: how long one read of the durations is used: a quantile of the last 100 copies barely moves in minutes
TTL = timedelta(minutes=5)
#: copies read per query (every region): enough for the destination region's own FIRST_LOOK_SAMPLES in most worlds
QUERY_LIMIT = 2 * FIRST_LOOK_SAMPLES


class FirstLook:
    """`first_look(region)`: how long after its start a new copy into `region` is first looked at, in
    [floor_seconds, cap_seconds] (IMAGESYNC_FIRST_CHECK_SECONDS, IMAGESYNC_MAX_CHECK_SECONDS). `bets(region)`:
    whether the sweep's looks at copies in `region` may go ahead of their look budget's slots."""

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
        self._judged: list[tuple[str, int | None, int | None]] = []
        self._read_at: datetime | None = None
        #: store reads made (what the TTL saves is visible in tests)
        self.reads = 0

    def __call__(self, region: str) -> timedelta:
        if self.durations is None:
            return self.floor
        self._refresh()
        return first_look(durations_for(self._samples, region), floor=self.floor, cap=self.cap)

    def bets(self, region: str) -> bool:
        """Whether looks ahead of the budget's slots go on for copies into `region` (domain.progress.bets_pay over
        the newest judged copies, the region's own when it has enough): no until recent copies say they pay (and
        when they could not be read); yes without a store (nothing is ever judged: the lenient budget)."""
        if self.durations is None:
            return True
        self._refresh()
        return bets_pay_in(region, self._judged)

    def _refresh(self) -> None:
        assert self.durations is not None
        now = self.clock.now()
        if self._read_at is not None and self._read_at <= now < self._read_at + self.ttl:
            return
        self._read_at = now
        self.reads += 1
        try:
            self._samples = self.durations.recent_durations(now - self.window, self.limit)
            self._judged = self.durations.recent_judged(now - BET_WINDOW, self.limit)
        except Exception as exc:  # only hints: a copy is started and tracked all the same, looked at the floor
            log.warning(
                "recent copy durations not read (%s); the first look is IMAGESYNC_FIRST_CHECK_SECONDS, looks wait "
                "for the budget's slots",
                type(exc).__name__,
            )
            self._samples, self._judged = [], []
