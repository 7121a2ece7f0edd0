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

#: a copy whose percent did not move since the last look is looked at again this many times that gap later
STALL_BACKOFF = 1.5


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
    previous: tuple[datetime, int | None] | None = None,
) -> datetime:
    """When to look at a copy in flight next (see the module docstring).

    Without a usable percent (None or 0, or no start time) the copy is looked at again after `interval`.
    Otherwise: wait = (optimistic remaining time) * (1 - margin) - interval, clamped to [interval, cap]; the
    `interval` subtracted makes sure the check lands before the earliest predicted end, not a tick after it.

    With `settle` (issue 15: few looks, and the end seen within seconds, under any progress curve) see
    `_settled_wait`; `previous` is the (time, percent) of the look before.
    """
    cap = max(cap, interval)
    if settle is not None and started_at is not None and now > started_at:
        return now + min(cap, max(interval, _settled_wait(now, started_at, percent, settle, previous, margin)))
    if started_at is None or percent is None or percent <= 0 or now <= started_at:
        return now + interval
    elapsed = now - started_at
    earliest_end = started_at + elapsed * (100 / min(100, percent + 1))
    remaining = earliest_end - now
    wait = remaining * (1 - margin) - interval
    return now + min(cap, max(interval, wait))


def _settled_wait(
    now: datetime,
    started_at: datetime,
    percent: int | None,
    settle: timedelta,
    previous: tuple[datetime, int | None] | None,
    margin: float,
) -> timedelta:
    """The wait before the next look (clamped by the caller to [interval, cap]):

    - no percent yet (None or 0): half the copy's age -- a copy that shows nothing costs a look per doubling of its
      age, not one per interval;
    - the end is bracketed from the integer percent, by the pace since the start and, when the previous look saw a
      lower percent, by the pace since that look (the faster of the two: a slow start is not extrapolated from its
      slow beginning); `earliest`/`latest` are the ends the percent allows at those paces;
    - no progress since the previous look (a stall, e.g. at 99): STALL_BACKOFF times the gap since that look;
    - past `latest`: wait as long as it has been overdue (looks back off);
    - window no wider than `settle`: one look at `latest` (+1 s), where the copy has ended if its pace held;
    - else a look before `earliest` (margin), which narrows the window.
    """
    elapsed = now - started_at
    if not percent or percent <= 0:
        return elapsed / 2
    if percent >= 100:
        return timedelta(0)
    earliest = started_at + elapsed * (100 / (percent + 1))
    latest = started_at + elapsed * (100 / percent)
    if previous is not None:
        seen_at, seen = previous
        if seen is not None and seen_at < now and percent <= seen:
            return (now - seen_at) * STALL_BACKOFF  # no progress since the last look: back off
        if seen is not None and seen_at < now and percent > seen:
            span = now - seen_at
            fast = (percent + 1 - seen) / span.total_seconds()  # percent per second, at most
            slow = max(percent - (seen + 1), 0) / span.total_seconds()
            earliest = min(earliest, now + timedelta(seconds=(100 - (percent + 1)) / fast))
            if slow > 0:
                latest = min(latest, now + timedelta(seconds=(100 - percent) / slow))
            latest = max(latest, earliest)
    if now >= latest:
        return now - latest
    if latest - earliest <= settle:
        return latest - now + timedelta(seconds=1)
    return (earliest - now) * (1 - margin)
