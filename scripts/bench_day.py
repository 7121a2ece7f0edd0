#!/usr/bin/env python3
"""A simulated day: N copies of 10-30 minutes through the three real functions, on the emulator's clock.

Requests arrive at random moments over the day (seeded), each one image into one mainland region, as HTTP events
through copy_request's real handler (which validates and makes the SyncImages); status_sweep's real handler runs
on the timer every minute; after each sweep the local queue's completion messages go to completion_hook's real
handler. Rate limits are off (they count real seconds, and a day here takes minutes). The emulator's clock is
frozen and moved with admin.advance to each arrival and each tick, so a day takes a minute or two of real time.
Copy durations are the emulator's default, uniform in 10-30 emulated minutes.

Printed:
- DescribeImages per finished copy made by status_sweep, against polling every copy every minute (one call per copy
  per minute until it is seen ended), against polling each copy on its own every 5 s (how Packer's builder waits),
  and against a batched check of every copy in flight every minute (the per-sweep floor, summed over the day);
- the time from a copy's end (the emulator's own end time) to its completion_hook, median and p95, emulated s.

    .venv/bin/python scripts/bench_day.py [--copies 1000] [--hours 24] [--seed 7] [--schedule tick|armed]
        [--curve linear|...] [--recheck S] [--max-check S] [--first-check S] [--settle S] [--ride-along S]
        (these default to imagesync's settings' defaults)

--schedule armed (issue 15): no fixed tick; status_sweep runs when the timer the functions arm would fire (the
earliest due check, app.schedule.FollowWork through a recording Scheduler in place of the SCF adapter) or, while
anything is in flight, at the hourly safety timer; its sweeps per hour and the idle hours are printed too.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections import defaultdict
from typing import Any

from imagesync_dev.bench import MAINLAND, SOURCE_REGION, bench, floor_calls, median, percentile, table

TICK = 60.0  # the timer: 0 */1 * * * * *
COPY_MIN, COPY_MAX = 600.0, 1800.0  # the emulator's default copy time range, emulated seconds
PACKER_POLL = 5.0


def http_event(image_id: str, region: str) -> dict[str, Any]:
    body = {"source_region": SOURCE_REGION, "image_ids": [image_id], "destination_regions": [region]}
    return {
        "httpMethod": "POST",
        "path": "/replications",
        "headers": {"content-type": "application/json"},
        "queryString": {},
        "body": json.dumps(body),
        "isBase64Encoded": False,
        "requestContext": {"sourceIp": "198.51.100.7"},
    }


def default(name: str) -> int:
    """The default of an IMAGESYNC_ setting (imagesync.settings.Settings)."""
    from imagesync.settings import Settings

    value = Settings.model_fields[name].default
    assert isinstance(value, int)
    return value


def describes(b: Any) -> int:
    """DescribeImages calls so far, whatever their outcome (the counters: the call log grows all day)."""
    return sum(b.admin.counters().get("DescribeImages", {}).values())


class ArmedTimer:
    """The Scheduler port as the SCF adapter's two timers behave, recorded in-process: `at` is the armed one-shot
    (epoch s; None when off), `safety` whether the hourly timer is on."""

    def __init__(self) -> None:
        self.at: float | None = None
        self.safety = False
        self.arms = 0

    def arm(self, at: Any) -> None:
        self.at, self.safety, self.arms = at.timestamp(), True, self.arms + 1

    def disarm(self) -> None:
        self.at, self.safety = None, False

    def next_fire(self, now: float) -> float | None:
        """When a timer fires next after `now` (the one-shot, or the safety timer's next hour)."""
        times = [t for t in (self.at,) if t is not None and t > now]
        if self.safety:
            times.append(math.floor(now / 3600.0) * 3600.0 + 3600.0)
        return min(times) if times else None


def simulate(
    copies: int,
    hours: float,
    seed: int,
    *,
    schedule: str = "tick",
    curve: str = "linear",
    checks: dict[str, int] | None = None,
) -> dict[str, Any]:
    from imagesync.handlers import completion_hook, copy_request, status_sweep
    from imagesync.local import deliver

    rng = random.Random(seed)
    day = hours * 3600.0
    # Rate limits are per REAL second: a day compressed into minutes would meet them only through compression.
    with bench(rate_limits=False, **(checks or {})) as b:
        b.admin.set_copy_duration(COPY_MIN, COPY_MAX)
        b.admin.set_progress_curve(curve)
        timer = ArmedTimer()
        if schedule == "armed":
            b.services.scheduler = timer
        t0 = math.ceil(b.admin.now() / TICK) * TICK + 1.0  # one second after a tick: ticks are t0 - 1 + k * 60
        b.admin.advance(t0 - b.admin.now())
        images = [b.admin.add_image(SOURCE_REGION, name=f"day-{i:05d}", size=20) for i in range(copies)]
        # arrivals spread over the day, leaving room for the last copy to end inside it
        arrivals = sorted(
            (rng.uniform(0, day - COPY_MAX - 2 * TICK), images[i], rng.choice(MAINLAND)) for i in range(copies)
        )
        hook_at: dict[str, float] = {}

        def hook(event: dict[str, Any], context: dict[str, Any] | None) -> Any:
            result = completion_hook.main_handler(event, context)
            for message in event["messages"]:  # the stored JSON text (imagesync.local.async_event) or an object
                body = json.loads(message) if isinstance(message, str) else message
                hook_at.setdefault(body["destination_image_id"], b.admin.now())
            return result

        b.admin.clear_calls()
        sweep_calls = 0
        sweeps = 0
        refused: list[Any] = []
        next_arrival = 0
        tick = t0 - 1.0 + TICK
        sweep_times: list[float] = []
        real_start = time.perf_counter()
        while True:
            if schedule == "armed":
                arrival = t0 + arrivals[next_arrival][0] if next_arrival < len(arrivals) else None
                fire = timer.next_fire(b.admin.now())
                if fire is None and arrival is None:
                    break
                if fire is None or (arrival is not None and arrival < fire):
                    tick = arrival + 1e-3  # the arrival is handled below, then the loop looks again
                    b.admin.advance(arrival - b.admin.now())
                    _, image, region = arrivals[next_arrival]
                    answer = copy_request.main_handler(http_event(image, region), {"request_id": f"r{next_arrival}"})
                    if answer["statusCode"] != 202:
                        refused.append(answer)
                    next_arrival += 1
                    continue
                tick = fire
            elif not (tick <= t0 + day or next_arrival < len(arrivals)):
                break
            while next_arrival < len(arrivals) and t0 + arrivals[next_arrival][0] < tick:
                at, image, region = arrivals[next_arrival]
                b.admin.advance(t0 + at - b.admin.now())
                answer = copy_request.main_handler(http_event(image, region), {"request_id": f"r{next_arrival}"})
                if answer["statusCode"] != 202:
                    refused.append(answer)
                next_arrival += 1
            b.admin.advance(max(0.0, tick - b.admin.now()))
            sweep_times.append(b.admin.now())
            before = describes(b)
            status_sweep.main_handler(
                {"Type": "Timer", "TriggerName": "every_minute", "Message": ""},
                {"request_id": f"s{sweeps}", "time_limit_in_ms": 60_000},
            )
            sweep_calls += describes(b) - before
            sweeps += 1
            deliver(b.services.queue, hook, max_messages=10_000)
            if schedule == "armed":
                continue
            tick += TICK
            if tick > t0 + day and not b.services.store.count_by_state().get("COPYING"):
                break
        real = time.perf_counter() - real_start

        copies_started = [h for h in b.admin.dump()["history"] if h["event"] == "copy_started"]
        states = b.services.store.count_by_state()
        sync_calls = b.admin.counters().get("SyncImages", {})
        return {
            "copies": copies_started,
            "hook_at": hook_at,
            "sweep_calls": sweep_calls,
            "sweeps": sweeps,
            "refused": refused,
            "states": states,
            "real_seconds": real,
            "t0": t0,
            "sync": sync_calls,
            "sweep_times": sweep_times,
            "arms": timer.arms,
            "replicas": _all_replicas(b.services.store),
        }


def _all_replicas(store: Any) -> list[Any]:
    """Every replica of the day, from the state table (its looks and ends, as the sweep recorded them)."""
    out: list[Any] = []
    cursor = None
    while True:
        page, cursor = store.list_replications(limit=100, cursor=cursor)
        out.extend(r for rep in page for r in rep.replicas)
        if cursor is None:
            return out


def look_bounds(
    copies: list[dict[str, Any]], replicas: list[Any], max_check: float, unlearned: float
) -> dict[str, Any]:
    """Per finished copy: its looks (the replica's count) against a look at its first look and then one every
    max_check until it is ended (the budget's bound), and how late its end was seen (ended_at - the emulator's end);
    `over_learned`: the copies over the bound among those whose first look was learned (later than `unlearned` after
    their start: the configured first check and one recheck, as the sweep tells them apart)."""
    ends = {c["image_id"]: c["ready_at"] for c in copies}
    looks, bound, late, learned = [], [], [], []
    for r in replicas:
        end = ends.get(r.destination_image_id)
        if end is None or r.ended_at is None or r.first_look_at is None:
            continue
        first = r.first_look_at.timestamp()
        looks.append(r.looks)
        bound.append(1 + math.ceil(max(0.0, end - first) / max_check))
        late.append(r.ended_at.timestamp() - end)
        learned.append(r.started_at is not None and first - r.started_at.timestamp() > unlearned)
    over = [n - b for n, b in zip(looks, bound, strict=True) if n > b]
    over_learned = sum(1 for n, b, k in zip(looks, bound, learned, strict=True) if k and n > b)
    return {
        "looks": looks,
        "bound": bound,
        "over": over,
        "late": late,
        "learned": sum(learned),
        "over_learned": over_learned,
    }


def baselines(copies: list[dict[str, Any]], t0: float) -> dict[str, int]:
    """DescribeImages the other ways of waiting would have made for the same copies."""
    per_minute = packer = 0
    in_flight_at: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in copies:
        start, end = c["at"], c["ready_at"]
        # every minute tick after the start, up to and including the first tick at or after the end
        first = math.floor((start - (t0 - 1.0)) / TICK) + 1
        last = math.ceil((end - (t0 - 1.0)) / TICK)
        per_minute += last - first + 1
        for k in range(first, last + 1):
            in_flight_at[k][c["region"]] += 1
        packer += math.ceil((end - start) / PACKER_POLL)  # a look every 5 s until it shows NORMAL
    batched = sum(floor_calls(regions) for regions in in_flight_at.values())
    return {"per_minute": per_minute, "packer": packer, "batched": batched}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--schedule",
        choices=["tick", "armed"],
        default="tick",
        help="tick: the sweep every minute; armed: when the armed timers fire (issue 15)",
    )
    parser.add_argument("--curve", default="linear", help="the emulator's SyncPercent curve (admin.set_progress_curve)")
    # the defaults are imagesync's own (imagesync.settings.Settings)
    parser.add_argument("--first-check", type=int, default=default("first_check_seconds"))
    parser.add_argument("--recheck", type=int, default=default("recheck_seconds"))
    parser.add_argument("--max-check", type=int, default=default("max_check_seconds"))
    parser.add_argument("--settle", type=int, default=default("settle_seconds"), help="0 = off")
    parser.add_argument("--ride-along", type=int, default=default("ride_along_seconds"))
    args = parser.parse_args()

    checks = {
        "first_check_seconds": args.first_check,
        "recheck_seconds": args.recheck,
        "max_check_seconds": args.max_check,
        "settle_seconds": args.settle,
        "ride_along_seconds": args.ride_along,
    }
    r = simulate(args.copies, args.hours, args.seed, schedule=args.schedule, curve=args.curve, checks=checks)
    copies = r["copies"]
    finished = sum(r["states"].get(s, 0) for s in ("SUCCEEDED", "FAILED", "TIMED_OUT"))
    base = baselines(copies, r["t0"])
    per = finished or 1
    print(
        f"A simulated day: {args.copies:,} requests, {len(copies):,} copies started, {finished:,} finished "
        f"({dict(r['states'])}), {r['sweeps']:,} sweeps, {r['real_seconds']:.0f} s real time; "
        f"SyncImages {r['sync']}; refused requests: {len(r['refused'])}\n"
    )
    print(
        table(
            ["way of waiting", "DescribeImages", "per finished copy", "vs imagesync"],
            [
                ["imagesync status_sweep (batched, SyncPercent ETA)", r["sweep_calls"], r["sweep_calls"] / per, 1.0],
                [
                    "batched check of every copy every minute (floor per tick)",
                    base["batched"],
                    base["batched"] / per,
                    base["batched"] / max(1, r["sweep_calls"]),
                ],
                [
                    "each copy every minute",
                    base["per_minute"],
                    base["per_minute"] / per,
                    base["per_minute"] / max(1, r["sweep_calls"]),
                ],
                [
                    "each copy every 5 s (Packer)",
                    base["packer"],
                    base["packer"] / per,
                    base["packer"] / max(1, r["sweep_calls"]),
                ],
            ],
        )
    )
    ends = {c["image_id"]: c["ready_at"] for c in copies}
    lags = [r["hook_at"][image] - end for image, end in ends.items() if image in r["hook_at"]]
    print(
        f"\nCopy end -> completion_hook, emulated seconds ({len(lags):,} hooks; "
        + (f"the timer ticks every {TICK:.0f} s)\n" if args.schedule == "tick" else "the sweep runs when armed)\n")
    )
    print(
        table(
            ["median", "p95", "max", "min"],
            [[median(lags), percentile(lags, 95), max(lags), min(lags)]] if lags else [["-"] * 4],
        )
    )
    bounds = look_bounds(copies, r["replicas"], float(args.max_check), float(args.first_check + args.recheck))
    if bounds["looks"]:
        n = len(bounds["looks"])
        late = bounds["late"]
        print(
            f"\nLooks per finished copy (the replicas' count; pages are shared, so calls are fewer): "
            f"{sum(bounds['looks']) / n:.3f}; a look at the first look and then every {args.max_check} s: "
            f"{sum(bounds['bound']) / n:.3f}; copies over that: {len(bounds['over'])} of {n} "
            f"(by {max(bounds['over'], default=0)} at most), of the {bounds['learned']} whose first look was learned: "
            f"{bounds['over_learned']}; end seen late, s: median {median(late):.1f}, "
            f"p95 {percentile(late, 95):.1f}, max {max(late):.1f} (bound {args.max_check})"
        )
    if args.schedule == "armed":
        start_h = math.floor(r["t0"] / 3600.0)
        per_hour = defaultdict(int)
        for t in r["sweep_times"]:
            per_hour[math.floor(t / 3600.0) - start_h] += 1
        span = max(per_hour) + 1 if per_hour else 0
        idle = [h for h in range(span) if per_hour[h] == 0]
        print(
            f"\nSweeps: {len(r['sweep_times']):,} (arms {r['arms']:,}) over {span} hours; hours with no sweep: "
            f"{len(idle)} {idle[:24]}; most in one hour: {max(per_hour.values()) if per_hour else 0}"
        )


if __name__ == "__main__":
    main()
