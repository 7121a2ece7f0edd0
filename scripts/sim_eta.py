#!/usr/bin/env python3
"""The sweep's ETA (imagesync.domain.progress.next_check) against the emulator's progress curves, without the
emulator: seconds instead of minutes, for trying ETA settings and changes before a bench_day run confirms them.

Each copy starts at 0 and ends at a duration drawn uniformly from 10-30 minutes (seeded), like the emulator's
default; its SyncPercent at a look is imagesync_emulator.progress.percent(curve, elapsed, duration). The first look
is at --first-check, each next one where next_check puts it, until a look at or after the end sees it ended. Per
curve it prints the looks per copy (DescribeImages of one copy alone: no page sharing, no timer lead, no sweep
granularity) and how late the end is seen (median, p95, max, s), beside what a look every --max-check would make.

    .venv/bin/python scripts/sim_eta.py [--copies 2000] [--seed 7] [--first-check 60] [--recheck 10]
        [--max-check 600] [--settle 30] [--margin 0.1]
"""

from __future__ import annotations

import argparse
import math
import random
from datetime import datetime, timedelta

from imagesync.domain.progress import next_check
from imagesync_emulator.progress import CURVES, percent

COPY_MIN, COPY_MAX = 600.0, 1800.0  # the emulator's default copy time range, emulated seconds


def follow(curve: str, duration: float, args: argparse.Namespace) -> tuple[int, float]:
    """(looks until seen ended, seconds seen late) for one copy of `duration` seconds under `curve`."""
    start = datetime(2026, 1, 1)
    now = start + timedelta(seconds=args.first_check)
    previous: tuple[datetime, int | None] | None = None
    looks = 0
    while True:
        looks += 1
        elapsed = (now - start).total_seconds()
        if elapsed >= duration:
            return looks, elapsed - duration
        shown = percent(curve, elapsed, duration)
        due = next_check(
            now,
            start,
            shown,
            interval=timedelta(seconds=args.recheck),
            cap=timedelta(seconds=args.max_check),
            margin=args.margin,
            settle=timedelta(seconds=args.settle) if args.settle else None,
            previous=previous,
        )
        previous, now = (now, shown), due


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--first-check", type=int, default=60, help="IMAGESYNC_FIRST_CHECK_SECONDS")
    parser.add_argument("--recheck", type=int, default=10, help="IMAGESYNC_RECHECK_SECONDS")
    parser.add_argument("--max-check", type=int, default=600, help="IMAGESYNC_MAX_CHECK_SECONDS")
    parser.add_argument("--settle", type=int, default=30, help="IMAGESYNC_SETTLE_SECONDS (0 = off)")
    parser.add_argument("--margin", type=float, default=0.1, help="next_check's margin")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    durations = [rng.uniform(COPY_MIN, COPY_MAX) for _ in range(args.copies)]
    # a look every max-check after the first: what the bound of issue 15's goal 2 counts
    capped = sum(1 + math.ceil(max(0.0, d - args.first_check) / args.max_check) for d in durations) / len(durations)
    print(f"| curve | looks per copy | every {args.max_check} s | late median s | p95 s | max s |")
    print("|-------|----------------|-----------|--------------|-------|-------|")
    for curve in CURVES:
        runs = [follow(curve, d, args) for d in durations]
        looks = sum(n for n, _ in runs) / len(runs)
        late = sorted(s for _, s in runs)
        p95 = late[min(len(late) - 1, int(0.95 * len(late)))]
        print(f"| {curve} | {looks:.2f} | {capped:.2f} | {late[len(late) // 2]:.1f} | {p95:.1f} | {late[-1]:.1f} |")


if __name__ == "__main__":
    main()
