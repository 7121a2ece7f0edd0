"""SyncPercent-based ETA of a copy, and when the sweep should look at it next. Pure.

A copy reports an integer SyncPercent. From its start time and the time a percent was seen, the point estimate
of its end is start + elapsed * 100 / percent (shown as the ETA). For scheduling, the optimistic estimate is used
instead -- the true progress may be up to one point higher than the integer reported, so the copy may end as
early as start + elapsed * 100 / (percent + 1) -- and the next check is placed a margin before that, never more
than `cap` away and never sooner than one `interval`. Close to the predicted end the wait shrinks to one interval,
so a copy that ends as predicted is seen within one timer interval of its end, while a 20-minute copy costs a
handful of DescribeImages instead of one per minute.

Two bounds hold whatever the curve (issue 15): the first look at a new copy is placed from what recent copies took
(`first_look`), and a copy is never looked at more often than a look at its first check and then one every `cap`
would have looked by its next look (`within_budget`). A look placed ahead of that schedule's slots (the settle look
at a pinned end) is a bet on the curve, made only where recent copies say bets pay (`bets_pay`): their bets
rarely missed (`judged_looks`), or, where too few copies bet, their percent kept one pace from look to look
(`pace_verdict`). Else the budget is strict and every look waits for its slot, a world's first copies included.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

#: a copy whose percent did not move since the last look is looked at again this many times that gap later
STALL_BACKOFF = 1.5
#: the first look at a new copy: this low quantile of recent copies' durations, times FIRST_LOOK_FACTOR. Why low:
#: a copy shorter than its first look is seen late by the difference, so only about this share of copies may be;
#: why a factor below 1: the durations are ends as the sweep saw them, a little after the real ends.
FIRST_LOOK_QUANTILE = 0.1
FIRST_LOOK_FACTOR = 0.9
#: fewer recent durations than this say nothing: the configured first check is used
FIRST_LOOK_MIN_SAMPLES = 5
#: the recent durations a first look is placed from: the newest this many (of the destination region when it has
#: FIRST_LOOK_MIN_SAMPLES of them, else of every region)
FIRST_LOOK_SAMPLES = 100
#: looks ahead of the budget's slots stop (the strict budget) where more than this share of the recent copies judged
#: took a look more than the slots would have (their bet missed): stalls or plateaus, not a steady pace. Steady
#: copies miss on a few percent (the copies first looked at before any end taught the first look), a world of
#: stalls at 99 on nearly all, of jumps on about 60 % (scripts/sim_eta.py)
BET_MISS_SHARE = 0.2
#: where too few copies bet to judge, their paces judge instead (`pace_verdict`): looks ahead of the slots stay off
#: where more than this share of them changed pace. Lower than BET_MISS_SHARE: a steady pace never changes, and a
#: look ahead of the slots pays only on one
PACE_CHANGED_SHARE = 0.05
#: fewer pace verdicts than this say nothing. More than BET_MIN_JUDGED: two looks at a copy whose pace changes may
#: agree by chance (a stepped percent caught at two steps that fit one pace)
PACE_MIN_JUDGED = 10
#: `paces_agree`: how far apart two looks' windows for the end may be and still agree (the time a look is taken and
#: the moment the cloud reported its percent differ by a little)
PACE_SLACK = timedelta(seconds=5)
#: fewer judged copies than this say nothing (of both kinds: then no looks ahead of the slots, a world's first
#: copies wait for them); the newest BET_SAMPLES are read (of the region when it has BET_MIN_JUDGED of them, else
#: of every region)
BET_MIN_JUDGED = 5
BET_SAMPLES = 40


def estimate_end(started_at: datetime | None, observed_at: datetime, percent: int | None) -> datetime | None:
    """The predicted end of a copy that showed `percent` (1-99) at `observed_at`; None without enough to go on."""
    if started_at is None or percent is None or percent <= 0 or observed_at <= started_at:
        return None
    if percent >= 100:
        return observed_at
    return started_at + (observed_at - started_at) * (100 / percent)


def first_look(
    durations: Sequence[float],
    *,
    floor: timedelta,
    cap: timedelta,
    quantile: float = FIRST_LOOK_QUANTILE,
    factor: float = FIRST_LOOK_FACTOR,
    min_samples: int = FIRST_LOOK_MIN_SAMPLES,
) -> timedelta:
    """How long after its start to look at a new copy first, from the `durations` (seconds) of recently finished
    copies: factor x their `quantile` (nearest rank below), clamped to [floor, cap]; `floor` with fewer than
    `min_samples` of them.

    Why learned: every look before a copy's end whose percent pins the end only loosely is a look spent for
    nothing, and a first look a few seconds in pins nothing (the window at t seconds into a copy of T seconds is
    about T^2 / (100 t) wide). A world whose copies take 3 minutes learns a short first look, one whose copies take
    half an hour a long one; the cap keeps the bound of a look every `cap` seconds.
    """
    cap = max(cap, floor)
    usable = sorted(d for d in durations if d > 0)
    if len(usable) < max(1, min_samples):
        return floor
    low = usable[int(quantile * (len(usable) - 1))]
    return min(cap, max(floor, timedelta(seconds=low * factor)))


def durations_for(
    samples: Sequence[tuple[str, float]],
    region: str,
    *,
    limit: int = FIRST_LOOK_SAMPLES,
    min_samples: int = FIRST_LOOK_MIN_SAMPLES,
) -> list[float]:
    """Of `samples` ((destination region, seconds), newest first), the newest `limit` durations of copies into
    `region` when there are `min_samples` of them (regions differ: distance, load), else of every region."""
    own = [d for r, d in samples if r == region][:limit]
    return own if len(own) >= min_samples else [d for _, d in samples][:limit]


def within_budget(
    due: datetime,
    *,
    looks: int,
    first_look_at: datetime | None,
    cap: timedelta,
    strict: bool = False,
    now: datetime | None = None,
) -> datetime:
    """`due`, or later when the look then would exceed the copy's look budget.

    The budget: by any moment, no more looks than one at the first look and then one every `cap` would have made
    by its next look, i.e. look n + 1 (after `looks` = n) not before first_look_at + (n - 1) * cap. Whatever the
    progress curve (a stall at 99, plateaus), a copy thus costs at most one look more than such a check every `cap`
    -- the one a look placed between two of those checks (the settle look) spends when the end is not there yet --
    and each next look stays within `cap` of the last (this look was itself within budget), so the end is still
    seen within `cap`.

    `strict`: no look ahead of the slots at all (look n + 1 not before first_look_at + n * cap): never a look more
    than the check every `cap` from the first look, at the price of seeing an end up to `cap` late. For where bets
    miss (`bets_pay`): no schedule can both see a steady copy's end within seconds and never spend a look more on a
    copy whose percent is identical up to that look and then stalls. A copy already a look ahead of its slots at
    `now` (this look, a bet made before the budget turned strict) keeps the lenient bound: its next slot may be up to
    two `cap` away, and the end must still be seen within `cap`.
    """
    if looks < 1 or first_look_at is None:
        return due
    on_slot = now is None or now >= first_look_at + cap * (looks - 1)
    earliest = first_look_at + cap * (looks if strict and on_slot else looks - 1)  # a slot: that check's moment
    return max(due, earliest)


def judged_looks(
    looks: int, first_look_at: datetime | None, last_look_at: datetime, seen_at: datetime, cap: timedelta
) -> int | None:
    """How a copy seen ended at `seen_at` by its look number `looks` fared against its look budget's slots (a look
    at first_look_at, then one every `cap`), `last_look_at` being the look before, which saw it in flight:

    - n > 0: it took n looks more than the slots would have for an end right after `last_look_at` (the earliest
      its end can have been): a look ahead of its slot (a bet) missed;
    - 0: a look ahead of its slot saw the end (a bet paid);
    - None: no look went ahead of its slot (strict, or nothing to judge: one look, no first look recorded).
    """
    if looks < 2 or first_look_at is None or last_look_at < first_look_at:
        return None
    slots_by_last = 1 + int((last_look_at - first_look_at) / cap)  # the slots' looks up to the last look
    over = (looks - 1) - slots_by_last
    if over > 0:
        return over
    if seen_at < first_look_at + cap * (looks - 1):  # the end's look came before its slot, and saw the end
        return 0
    return None


def bets_pay(
    judged: Sequence[float],
    paces: Sequence[float] = (),
    *,
    share: float = BET_MISS_SHARE,
    min_judged: int = BET_MIN_JUDGED,
    pace_share: float = PACE_CHANGED_SHARE,
    min_paces: int = PACE_MIN_JUDGED,
) -> bool:
    """Whether looks ahead of the budget's slots should go on (else the budget is strict), from recent copies:

    - `judged`: their `judged_looks` (None left out), copies whose looks went ahead: with `min_judged` of them,
      yes when no more than `share` of them missed;
    - else `paces`: their `pace_verdict` (None left out; 1 changed pace, 0 kept it): with `min_paces` of them, yes
      when no more than `pace_share` of them changed pace;
    - else no: with nothing known of a world's curves, no look goes ahead of the slots (its first copies are seen up
      to a `cap` late, never a look over a check every `cap`) until their paces say looks ahead would pay.
    """
    for verdicts, most, least in ((judged, share, min_judged), (paces, pace_share, min_paces)):
        if len(verdicts) >= max(1, least):
            return sum(1 for j in verdicts if j > 0) <= most * len(verdicts)
    return False


def bets_pay_in(region: str, judged: Sequence[tuple[str, int | None, int | None]]) -> bool:
    """`bets_pay` for copies into `region`, from recent copies' (destination region, looks_over, pace_changed),
    newest first: the newest BET_SAMPLES of each verdict, the region's own when it has enough of them
    (`durations_for`)."""
    over = [(r, float(o)) for r, o, _ in judged if o is not None]
    paces = [(r, float(p)) for r, _, p in judged if p is not None]
    return bets_pay(
        durations_for(over, region, limit=BET_SAMPLES, min_samples=BET_MIN_JUDGED),
        durations_for(paces, region, limit=BET_SAMPLES, min_samples=PACE_MIN_JUDGED),
    )


def pace_verdict(
    verdict: int | None,
    started_at: datetime | None,
    previous: tuple[datetime, int | None] | None,
    now: datetime,
    percent: int | None,
    *,
    slack: timedelta = PACE_SLACK,
) -> int | None:
    """Whether a copy's percent keeps one pace, after a look at `now` that saw it in flight showing `percent`
    (`previous`: the look before; `verdict`: what the looks before said): 1 once two looks' percents disagree on
    the end (`paces_agree`), else 0 once two agreed, else None (fewer than two looks with a percent).

    Why: a look placed at the end the percent pinned (the settle look, ahead of the budget's slots) pays exactly
    when the copy keeps its pace; a strict budget places none, so this is how it learns whether they would pay
    (`bets_pay`), from the looks it takes anyway.
    """
    if verdict == 1 or started_at is None or previous is None:
        return verdict
    agree = paces_agree(started_at, previous, now, percent, slack=slack)
    if agree is None:
        return verdict
    return 0 if agree else 1


def paces_agree(
    started_at: datetime,
    previous: tuple[datetime, int | None],
    now: datetime,
    percent: int | None,
    *,
    slack: timedelta = PACE_SLACK,
) -> bool | None:
    """Whether the end the percent seen at `now` allows at the pace since the start (start + elapsed * 100 /
    (percent + 1) .. start + elapsed * 100 / percent) meets the one the `previous` look's percent allowed, give or
    take `slack`; None when either look has no percent in 1..99. A steady pace always does (its true end is in
    both windows); a stall, a plateau, a slow or late start or a jump makes two looks disagree."""
    seen_at, seen = previous
    if not seen or not percent or seen >= 100 or percent >= 100 or not started_at < seen_at < now:
        return None

    def window(at: datetime, shown: int) -> tuple[datetime, datetime]:
        elapsed = at - started_at
        return started_at + elapsed * (100 / (shown + 1)), started_at + elapsed * (100 / shown)

    (low_then, high_then), (low_now, high_now) = window(seen_at, seen), window(now, percent)
    return low_now <= high_then + slack and low_then <= high_now + slack


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
    looks: int = 0,
    first_look_at: datetime | None = None,
    strict: bool = False,
) -> datetime:
    """When to look at a copy in flight next (see the module docstring).

    Without a usable percent (None or 0, or no start time) the copy is looked at again after `interval`.
    Otherwise: wait = (optimistic remaining time) * (1 - margin) - interval, clamped to [interval, cap]; the
    `interval` subtracted makes sure the check lands before the earliest predicted end, not a tick after it.

    With `settle` (issue 15: few looks, and the end seen within seconds, under any progress curve) see
    `_settled_wait`; `previous` is the (time, percent) of the look before.

    `looks` (the looks at the copy so far, this one included) and `first_look_at` (when the first was) bound the
    result by `within_budget` (`strict`: see there).
    """
    cap = max(cap, interval)
    if settle is not None and started_at is not None and now > started_at:
        due = now + min(cap, max(interval, _settled_wait(now, started_at, percent, settle, previous, margin)))
    elif started_at is None or percent is None or percent <= 0 or now <= started_at:
        due = now + interval
    else:
        elapsed = now - started_at
        earliest_end = started_at + elapsed * (100 / min(100, percent + 1))
        remaining = earliest_end - now
        wait = remaining * (1 - margin) - interval
        due = now + min(cap, max(interval, wait))
    return within_budget(due, looks=looks, first_look_at=first_look_at, cap=cap, strict=strict, now=now)


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
            earliest = max(earliest, now + timedelta(seconds=(100 - (percent + 1)) / fast))
            if slow > 0:
                latest = min(latest, now + timedelta(seconds=(100 - percent) / slow))
            latest = max(latest, earliest)
    if now >= latest:
        return now - latest
    if latest - earliest <= settle:
        return latest - now + timedelta(seconds=1)
    return (earliest - now) * (1 - margin)
