#!/usr/bin/env python3
"""The sweep's ETA (imagesync.domain.progress) against the emulator's progress curves, without the emulator:
seconds instead of minutes, for trying ETA settings and changes before a bench_day run confirms them.

Copies arrive at seeded random moments over --hours, each into a random mainland region, and take a duration drawn
uniformly from 10-30 minutes, like bench_day's day; a copy's SyncPercent at a look is
imagesync_emulator.progress.percent(curve, elapsed, duration). Its first look is placed the way copy_request places
it (progress.first_look over progress.durations_for): from the durations, start -> end as seen, of the copies seen
ended before it started, within the last --window-hours; each next look where next_check puts it (with the look
count's budget), until a look at or after the end sees it ended. Per curve it prints the looks per copy
(DescribeImages of one copy alone: no page sharing, no timer lead, no sweep granularity) beside what a look at the
same first look and then one every --max-check would make (the bound of issue 15), how many copies took more looks
than that (all, and of the copies whose first look was learned, not the configured floor), and how late the end
is seen (median, p95, max, s; the bound: --max-check). As the sweep does, the budget is strict until recent
copies' looks ahead of its slots, or their paces (domain.progress.pace_verdict), say such looks pay
(domain.progress.bets_pay), and strict throughout for a copy whose first look was not learned; --always-bet never.

The defaults are imagesync's settings' defaults (imagesync.settings.Settings).

    .venv/bin/python scripts/sim_eta.py [--copies 2000] [--hours 24] [--seed 7] [--first-check S] [--recheck S]
        [--max-check S] [--settle S] [--margin 0.1] [--fixed-first]
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from imagesync.app.first_look import BET_WINDOW
from imagesync.domain.progress import (
    FIRST_LOOK_SAMPLES,
    bets_pay_in,
    durations_for,
    first_look,
    judged_looks,
    next_check,
    pace_verdict,
)
from imagesync.settings import Settings
from imagesync_emulator.progress import CURVES, percent

COPY_MIN, COPY_MAX = 600.0, 1800.0  # the emulator's default copy time range, emulated seconds
REGIONS = ["ap-shanghai", "ap-nanjing", "ap-beijing", "ap-chengdu", "ap-chongqing"]  # bench_day's MAINLAND
#: the store query's sample: the newest this many ends, every region (adapters.sql: recent_durations)
QUERY_LIMIT = 2 * FIRST_LOOK_SAMPLES


def default(name: str) -> int:
    value = Settings.model_fields[name].default
    assert isinstance(value, int)
    return value


def follow(
    curve: str, duration: float, first: float, args: argparse.Namespace, strict: Callable[[float], bool]
) -> tuple[int, float, int | None, int | None]:
    """(looks until seen ended, seconds seen late, judged_looks, pace_verdict) for one copy of `duration` seconds
    under `curve`, first looked at `first` seconds in; `strict(s)`: whether the budget is strict at s seconds into
    the copy (as the sweep does, a copy whose first look was not learned is strict throughout)."""
    start = datetime(2026, 1, 1)
    now = start + timedelta(seconds=first)
    first_at = start + timedelta(seconds=first)
    cap = timedelta(seconds=args.max_check)
    settle = timedelta(seconds=args.settle) if args.settle else None
    previous: tuple[datetime, int | None] | None = None
    paced: int | None = None
    learned = first > args.first_check
    looks = 0
    while True:
        looks += 1
        elapsed = (now - start).total_seconds()
        if elapsed >= duration:
            last = previous[0] if previous else start
            judged = judged_looks(looks, first_at, last, now, cap) if learned else None
            return looks, elapsed - duration, judged, paced
        shown = percent(curve, elapsed, duration)
        paced = pace_verdict(paced, start, previous, now, shown)
        is_strict = not args.always_bet and (strict(elapsed) or not learned)
        due = next_check(
            now,
            start,
            shown,
            interval=timedelta(seconds=args.recheck),
            cap=cap,
            margin=args.margin,
            settle=settle,
            previous=previous,
            looks=looks,
            first_look_at=first_at,
            strict=is_strict,
        )
        previous, now = (now, shown), due


def day(
    curve: str, copies: list[tuple[float, str, float]], args: argparse.Namespace
) -> list[tuple[int, float, int, bool]]:
    """(looks, late s, a look every max-check's looks, first look learned) per copy of (arrival s, region, duration
    s), in arrival order, each first look placed from the copies seen ended before its arrival; the budget strict
    until the copies judged (domain.progress.judged_looks, pace_verdict) seen ended by then say bets pay
    (bets_pay_in, over what the store query would return)."""
    floor = timedelta(seconds=args.first_check)
    cap = timedelta(seconds=args.max_check)
    window = args.window_hours * 3600.0
    bet_window = BET_WINDOW.total_seconds()
    ends: list[tuple[float, str, float]] = []  # (seen end, region, start -> seen end), kept sorted by seen end
    # (seen end, region, judged_looks, pace_verdict) of the copies with either, kept sorted by seen end
    judged: list[tuple[float, str, int | None, int | None]] = []
    out = []
    for at, region, duration in copies:

        def strict(elapsed: float, at: float = at, region: str = region) -> bool:
            # the store query: the newest judged copies seen ended by now, within the window (copies are followed
            # in arrival order, so a shorter copy that arrived later is not known yet: a slight lag)
            now = at + elapsed
            upto = bisect.bisect_right(judged, now, key=lambda j: j[0])
            recent = [
                (r, o, p) for e, r, o, p in reversed(judged[max(0, upto - QUERY_LIMIT) : upto]) if e >= now - bet_window
            ]
            return not bets_pay_in(region, recent)

        if args.fixed_first:
            first = float(args.first_check)
        else:
            upto = bisect.bisect_right(ends, (at, "\uffff", math.inf))
            recent = [(r, d) for e, r, d in reversed(ends[max(0, upto - QUERY_LIMIT) : upto]) if e >= at - window]
            first = first_look(durations_for(recent, region), floor=floor, cap=cap).total_seconds()
        looks, late, verdict, paced = follow(curve, duration, first, args, strict)
        bisect.insort(ends, (at + duration + late, region, duration + late))
        # as the sweep does, a copy first looked at the configured floor (not learned) is not judged
        if verdict is not None or paced is not None:
            bisect.insort(judged, (at + duration + late, region, verdict, paced), key=lambda j: j[0])
        capped = 1 + math.ceil(max(0.0, duration - first) / args.max_check)
        out.append((looks, late, capped, first > args.first_check))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--first-check", type=int, default=default("first_check_seconds"))
    parser.add_argument("--recheck", type=int, default=default("recheck_seconds"))
    parser.add_argument("--max-check", type=int, default=default("max_check_seconds"))
    parser.add_argument("--settle", type=int, default=default("settle_seconds"), help="0 = off")
    parser.add_argument("--margin", type=float, default=0.1, help="next_check's margin")
    parser.add_argument("--window-hours", type=float, default=72.0, help="how far back the durations are read")
    parser.add_argument(
        "--always-bet", action="store_true", help="never a strict budget (the looks ahead of its slots always go on)"
    )
    parser.add_argument(
        "--fixed-first", action="store_true", help="every first look at --first-check (no learned first look)"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    span = args.hours * 3600.0 - COPY_MAX - 120.0
    copies = sorted(
        (rng.uniform(0, span), rng.choice(REGIONS), rng.uniform(COPY_MIN, COPY_MAX)) for _ in range(args.copies)
    )
    print(
        f"| curve | looks per copy | first look, then every {args.max_check} s | copies over that | most over "
        "| over, of the copies with a learned first look | late median s | p95 s | max s |"
    )
    print("|-------|------|------|------|------|------|------|------|------|")
    for curve in CURVES:
        runs = day(curve, copies, args)
        n = len(runs)
        looks = sum(r[0] for r in runs) / n
        capped = sum(r[2] for r in runs) / n
        over = sum(1 for r in runs if r[0] > r[2])
        learned = [r for r in runs if r[3]]
        over_learned = sum(1 for r in learned if r[0] > r[2])
        most = max(r[0] - r[2] for r in runs)
        late = sorted(r[1] for r in runs)
        p95 = late[min(n - 1, int(0.95 * n))]
        print(
            f"| {curve} | {looks:.2f} | {capped:.2f} | {100 * over / n:.1f} % | {max(0, most)} "
            f"| {over_learned} of {len(learned)} "
            f"| {late[n // 2]:.1f} | {p95:.1f} | {late[-1]:.1f} |"
        )


if __name__ == "__main__":
    main()
