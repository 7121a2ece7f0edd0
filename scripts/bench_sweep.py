#!/usr/bin/env python3
"""The sweep against its floor: DescribeImages calls per sweep, and its time next to the same calls made bare.

1. Calls per sweep: copies in flight spread over destination regions, all due; one real status_sweep invocation
   (the timer event through main_handler); its DescribeImages calls, counted by the emulator, against the floor
   sum over regions of ceil(in flight / 100).
2. Time: one sweep of N copies in flight (default 10,000 in 5 regions), then the same DescribeImages calls (the
   same regions and id lists, taken from the emulator's call log) made bare through the official SDK, one after
   another as the sweep makes them. Rate limits off on both sides (emulator and client), so the ratio is the
   price of what the sweep does besides asking (claims, CAS writes, progress, ETA): the cloud's answer time is
   in both. Best of --repeat runs each. The container is warm, as the bare calls' is: one sweep with nothing in
   flight runs first (its first call imports the SDK's cvm module and the handler's deferred imports, a cold
   start's cost that scripts/bench_cold_import.py measures); --cold times the process's first sweep instead.
   --cpu adds the process's CPU time of the sweep and of the bare calls (the median of the runs, and their
   ratio): steadier than wall time on a shared machine; it includes the in-process emulator's answers, on both
   sides.

    .venv/bin/python scripts/bench_sweep.py [--copies 10000] [--repeat 3] [--cold] [--cpu] [--database-url URL]

--database-url mysql+pymysql://root@127.0.0.1:3306/test (or a postgresql+psycopg:// one): the state table on that
server instead of a SQLite file, in a scratch database per run (created at the schema's head, then dropped).
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import ExitStack
from typing import Any

from sqlalchemy.engine import make_url

from imagesync_dev.bench import MAINLAND, Bench, bench, floor_calls, scratch_database, seed_in_flight, table

TIMER = {"Type": "Timer", "TriggerName": "every_minute", "Time": "2026-01-01T00:00:00Z", "Message": ""}
CONTEXT = {"request_id": "bench", "function_name": "status_sweep", "time_limit_in_ms": 900_000}

#: in-flight copies per destination region: edges of the 100-id pages, one region and uneven mixes
SCENARIOS: list[dict[str, int]] = [
    {"ap-shanghai": 1},
    {"ap-shanghai": 100},
    {"ap-shanghai": 101},
    {"ap-shanghai": 1, "ap-beijing": 99, "ap-nanjing": 100, "ap-chengdu": 101, "ap-chongqing": 250},
    dict.fromkeys(MAINLAND, 200),
    {"ap-shanghai": 1500, "ap-beijing": 700, "ap-nanjing": 37},
]


def run_sweep(b: Bench) -> tuple[dict[str, Any], float]:
    report, elapsed, _ = run_sweep_cpu(b)
    return report, elapsed


def run_sweep_cpu(b: Bench) -> tuple[dict[str, Any], float, float]:
    """One status_sweep invocation: its report, wall seconds and the process's CPU seconds."""
    from imagesync.handlers import status_sweep

    start, cpu = time.perf_counter(), time.process_time()
    report = status_sweep.main_handler(TIMER, CONTEXT)
    return report, time.perf_counter() - start, time.process_time() - cpu


def calls_per_sweep() -> list[list[Any]]:
    rows = []
    for per_region in SCENARIOS:
        with bench(rate_limits=True) as b:
            seed_in_flight(b, per_region)
            b.admin.advance(60)  # the copies are a minute in: SYNCING, a few percent done
            before = b.describe_calls()
            report, _ = run_sweep(b)
            calls = b.describe_calls() - before
            floor = floor_calls(per_region)
            rows.append([sum(per_region.values()), len(per_region), report["claimed"], calls, floor, calls / floor])
    return rows


def bare(b: Bench, calls: list[dict[str, Any]]) -> float:
    """The same DescribeImages requests straight through the SDK clients imagesync uses (no retry, no store)."""
    return bare_cpu(b, calls)[0]


def bare_cpu(b: Bench, calls: list[dict[str, Any]]) -> tuple[float, float]:
    """bare(), timed in wall and the process's CPU seconds."""
    from tencentcloud.cvm.v20170312 import models

    cloud = b.services.cloud
    assert cloud is not None
    start, cpu = time.perf_counter(), time.process_time()
    for call in calls:
        request = models.DescribeImagesRequest()
        request.from_json_string(__import__("json").dumps(call["params"]))
        cloud.client("cvm", call["region"]).DescribeImages(request)
    return time.perf_counter() - start, time.process_time() - cpu


def sweep_time(
    copies: int, repeat: int, *, cold: bool = False, server: str | None = None, cpu: bool = False
) -> list[list[Any]]:
    per_region = {region: copies // len(MAINLAND) for region in MAINLAND}
    sweeps, bares, n_calls, claimed = [], [], 0, 0
    sweeps_cpu: list[float] = []
    bares_cpu: list[float] = []
    for _ in range(repeat):
        with ExitStack() as stack:
            db: dict[str, Any] = {"database_url": stack.enter_context(scratch_database(server))} if server else {}
            b = stack.enter_context(bench(rate_limits=False, **db))
            if not cold:
                run_sweep(b)  # a warm container: nothing in flight, so this sweep only imports what sweeps use
            seed_in_flight(b, per_region)
            b.admin.advance(60)
            b.admin.clear_calls()
            report, elapsed, elapsed_cpu = run_sweep_cpu(b)
            calls = b.admin.calls(action="DescribeImages")
            assert report["claimed"] == copies, report
            sweeps.append(elapsed)
            sweeps_cpu.append(elapsed_cpu)
            bare_runs = [bare_cpu(b, calls) for _ in range(2)]
            bares.append(min(wall for wall, _ in bare_runs))
            bares_cpu.append(min(used for _, used in bare_runs))
            n_calls, claimed = len(calls), report["claimed"]
    best_sweep, best_bare = min(sweeps), min(bares)
    row = [
        claimed,
        n_calls,
        floor_calls(per_region),
        best_sweep,
        best_bare,
        best_sweep / best_bare,
        1000 * best_sweep / claimed,
    ]
    if cpu:
        sweep_cpu, bare_cpu_s = statistics.median(sweeps_cpu), statistics.median(bares_cpu)
        row += [sweep_cpu, bare_cpu_s, sweep_cpu / bare_cpu_s]
    return [row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10_000, help="copies in flight for the timing (5 regions)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the timing; the best is shown")
    parser.add_argument("--cold", action="store_true", help="time the process's first sweep (cold imports in it)")
    parser.add_argument("--skip-calls", action="store_true", help="only the timing, not the calls-per-sweep table")
    parser.add_argument(
        "--cpu", action="store_true", help="also the process CPU time of the sweep and of the bare calls (medians)"
    )
    parser.add_argument(
        "--database-url", help="a MariaDB/MySQL or PostgreSQL server (any database URL on it) for the timing's state"
    )
    args = parser.parse_args()

    if not args.skip_calls:
        print("DescribeImages calls per sweep (every copy due; emulator rate limits on)\n")
        print(table(["in flight", "regions", "claimed", "DescribeImages", "floor", "calls / floor"], calls_per_sweep()))
    print(
        f"\nOne sweep of {args.copies:,} copies in flight vs the same DescribeImages made bare (rate limits off, "
        f"{'cold: the first sweep of the process' if args.cold else 'warm container'}, best of {args.repeat}, "
        f"state on {make_url(args.database_url).get_backend_name() if args.database_url else 'SQLite'})\n"
    )
    columns = ["claimed", "DescribeImages", "floor", "sweep s", "bare calls s", "sweep / bare", "ms per copy"]
    if args.cpu:
        columns += ["sweep CPU s", "bare CPU s", "CPU sweep / bare"]
    print(table(columns, sweep_time(args.copies, args.repeat, cold=args.cold, server=args.database_url, cpu=args.cpu)))


if __name__ == "__main__":
    main()
