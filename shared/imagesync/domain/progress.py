"""SyncPercent-based ETA of a copy, and when the sweep should look at it next. Pure.

A copy reports an integer SyncPercent. From its start time and the time a percent was seen, the point estimate
of its end is start + elapsed * 100 / percent (shown as the ETA). For scheduling, the optimistic estimate is used
instead -- the true progress may be up to one point higher than the integer reported, so the copy may end as
early as start + elapsed * 100 / (percent + 1) -- and the next check is placed a margin before that, never more
than `cap` away and never sooner than one `interval`. Close to the predicted end the wait shrinks to one interval,
so a copy that ends as predicted is seen within one timer interval of its end, while a 20-minute copy costs a
handful of DescribeImages instead of one per minute.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def estimate_end(started_at: datetime | None, observed_at: datetime, percent: int | None) -> datetime | None:
    """The predicted end of a copy that showed `percent` (1-99) at `observed_at`; None without enough to go on."""
    if started_at is None or percent is None or percent <= 0 or observed_at <= started_at:
        return None
    if percent >= 100:
        return observed_at
    return started_at + (observed_at - started_at) * (100 / percent)


def next_check(
    now: datetime,
    started_at: datetime | None,
    percent: int | None,
    *,
    interval: timedelta,
    cap: timedelta,
    margin: float = 0.1,
    settle: timedelta | None = None,
) -> datetime:
    """When to look at a copy in flight next (see the module docstring).

    Without a usable percent (None or 0, or no start time) the copy is looked at again after `interval`.
    Otherwise: wait = (optimistic remaining time) * (1 - margin) - interval, clamped to [interval, cap]; the
    `interval` subtracted makes sure the check lands before the earliest predicted end, not a tick after it.
    """
    cap = max(cap, interval)
    if started_at is None or percent is None or percent <= 0 or now <= started_at:
        return now + interval
    elapsed = now - started_at
    earliest_end = started_at + elapsed * (100 / min(100, percent + 1))
    if settle is not None and percent < 100:
        # issue 15: once the integer percent pins the end to a window no wider than `settle`, look once at its
        # latest point (the copy has ended by then if its pace held) instead of every interval up to it
        latest_end = started_at + elapsed * (100 / percent)
        if latest_end - earliest_end <= settle:
            return now + min(cap, max(interval, latest_end - now + timedelta(seconds=1)))
    remaining = earliest_end - now
    wait = remaining * (1 - margin) - interval
    return now + min(cap, max(interval, wait))
