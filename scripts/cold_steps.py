#!/usr/bin/env python3
"""Where status_sweep's first answer spends its time above the floor: a profile, step by step, of CPU time.

Each run is a fresh interpreter (`python -I`, bytecode compiled beforehand into a private pycache prefix, as
scripts/bench_cold_import.py does) that imports the floor, then does status_sweep's first answer (a timer with
nothing in flight, on a SQLite state table whose schema exists) one step at a time, reading time.process_time()
between the steps: pydantic's BaseModel, pydantic-settings, powertools, imagesync's settings module, the timer's
envelope, the rest of the entry, the settings' validation, the timer's options, the SQL store's modules, the engine,
the sweep's modules, its construction and its run. The steps import what the handler imports, in its order, with
the garbage collector paused after the floor as the entry pauses it (platform.coldstart), so their sum is the first
answer's cost above the floor (give or take the clock reads). Not the bench's ratio: the floor here is imported
first, with the collector on, while the answer itself imports no part of the SDK and pays no collection for the
libraries the floor holds. Median of --runs per step.

--scf-timer profiles what the same answer adds with the schedule serverless.yml deploys (IMAGESYNC_SCHEDULER=
scf-timer: the idle sweep disarms its timers through the SDK, refused here as in the bench): no floor is imported
first (it holds the SDK), so each step pays its own imports; the floor is timed in interpreters of its own, and the
idle sweep's steps up to its run are one row. Then the SDK's HTTP client (requests, which
tencentcloud.common.http.request imports), the SDK's common client, imagesync's cloud client, the timer adapter,
building the scheduler and the sweep, the sweep without its schedule, the schedule's reads (FollowWork.next_run)
and the disarm's call.

    .venv/bin/python scripts/cold_steps.py [--runs 7] [--scf-timer]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

from imagesync_dev.bench import REPO, table

STEPS = r"""
import sys, time
sys.path[:0] = [{entry!r}, {shared!r}]
marks = [("start", time.process_time())]
def step(name):
    marks.append((name, time.process_time()))
import tencentcloud.cvm.v20170312.cvm_client, pydantic, sqlalchemy; step("floor")
from imagesync.platform import coldstart; coldstart.pause()  # what the entry does first
from pydantic import BaseModel; step("pydantic BaseModel")
import pydantic_settings; step("pydantic-settings")
import aws_lambda_powertools; step("powertools")
import imagesync.settings; step("imagesync.settings (the model)")
import imagesync.platform.timer; step("imagesync.platform.timer")
import index; step("the rest of the entry")
from imagesync.wiring import services
svc = services(); step("Settings() and the services")
from imagesync.handlers.status_sweep import SweepOptions
from imagesync.platform.timer import TimerEnvelope
TimerEnvelope.parse({timer!r}, SweepOptions); step("the timer's options")
import imagesync.adapters.sql; step("the SQL store's modules")
svc.store; step("the engine and the store")
import imagesync.app.sweep; step("the sweep's modules")
sweep = svc.sweep(); step("the sweep's construction")
sweep(); step("the sweep (connect, queries)")
coldstart.resume()
print("|".join(f"{{name}}={{(t - marks[i][1]) * 1000}}" for i, (name, t) in enumerate(marks[1:])))
"""
SCF_STEPS = r"""
import sys, time
sys.path[:0] = [{entry!r}, {shared!r}]
marks = [("start", time.process_time())]
def step(name):
    marks.append((name, time.process_time()))
import index
from imagesync.wiring import services
from imagesync.handlers.status_sweep import SweepOptions
from imagesync.platform.timer import TimerEnvelope
svc = services()
TimerEnvelope.parse({timer!r}, SweepOptions)
svc.store
import imagesync.app.sweep; step("the idle sweep's entry, settings, store (no SDK)")
import requests; step("requests (the SDK's HTTP client)")
import tencentcloud.common.common_client; step("the SDK's common client")
import imagesync.adapters.tencent; step("imagesync.adapters.tencent")
import imagesync.adapters.sweep_timer; step("imagesync.adapters.sweep_timer")
svc.scheduler; step("the scheduler (no SDK client yet)")
sweep = svc.sweep(); step("the sweep's construction")
from imagesync.platform import coldstart; coldstart.resume()
import gc; gc.disable()  # as the handler runs the sweep
follow, sweep.follow_work = sweep.follow_work, None
sweep(); step("the sweep without its schedule")
follow.next_run(follow.clock.now()); step("the schedule's reads (next_run)")
try:
    follow.scheduler.disarm()
except Exception:
    pass
step("the disarm (UpdateTrigger, refused)")
print("|".join(f"{{name}}={{(t - marks[i][1]) * 1000}}" for i, (name, t) in enumerate(marks[1:])))
"""
FLOOR = r"""
import time
t = time.process_time()
import tencentcloud.cvm.v20170312.cvm_client, pydantic, sqlalchemy
print(f"floor={{(time.process_time() - t) * 1000}}")
"""
#: the settings of the scf-timer row of scripts/bench_cold_import.py
SCF_TIMER = {
    "IMAGESYNC_SCHEDULER": "scf-timer",
    "IMAGESYNC_SWEEP_FUNCTION": "status_sweep",
    "IMAGESYNC_SWEEP_TIMER": "status_sweep_next",
    "IMAGESYNC_SWEEP_SAFETY_TIMER": "status_sweep_safety",
    "TENCENTCLOUD_SECRET_ID": "AKIDbench",
    "TENCENTCLOUD_SECRET_KEY": "bench",
}
TIMER = {"Type": "Timer", "TriggerName": "every_minute", "Time": "2026-01-01T00:00:00Z", "Message": ""}


def run(pycache: str, *, migrate: bool = False, steps: str = STEPS, scf_timer: bool = False) -> dict[str, float]:
    code = steps.format(entry=str(REPO / "functions" / "status_sweep"), shared=str(REPO / "shared"), timer=TIMER)
    env = {
        **os.environ,
        **(SCF_TIMER if scf_timer else {}),
        "IMAGESYNC_TENCENT_ENDPOINT": "http://127.0.0.1:9",
        "IMAGESYNC_LOG_LEVEL": "ERROR",
        "IMAGESYNC_DATABASE_URL": f"sqlite:///{pycache}/state.db",
        "IMAGESYNC_QUEUE_PATH": f"{pycache}/queue.db",
        "IMAGESYNC_AUTO_MIGRATE": "true" if migrate else "false",
    }
    out = subprocess.run(
        [sys.executable, "-I", "-X", f"pycache_prefix={pycache}", "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        env=env,
    )
    pairs = (item.rsplit("=", 1) for item in out.stdout.strip().splitlines()[-1].split("|"))
    return {name: float(ms) for name, ms in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters (median per step)")
    parser.add_argument(
        "--scf-timer", action="store_true", help="the idle sweep with IMAGESYNC_SCHEDULER=scf-timer (its disarm)"
    )
    args = parser.parse_args()
    if args.scf_timer:
        scf_timer(args.runs)
        return
    with tempfile.TemporaryDirectory(prefix="imagesync-steps-") as pycache:
        run(pycache, migrate=True)  # bytecode and the schema, once
        samples = [run(pycache) for _ in range(args.runs)]
    medians = {name: statistics.median(s[name] for s in samples) for name in samples[0]}
    floor = medians.pop("floor")
    above = sum(medians.values())
    print(f"status_sweep's first answer, step by step (CPU ms, median of {args.runs}); floor {floor:.1f} ms\n")
    rows = [[name, ms, ms / floor] for name, ms in medians.items()]
    print(table(["step", "CPU ms", "of the floor"], [*rows, ["above the floor, in all", above, above / floor]]))


def scf_timer(runs: int) -> None:
    """The steps of the scf-timer answer, each run followed by a floor of its own (interleaved)."""
    with tempfile.TemporaryDirectory(prefix="imagesync-steps-") as pycache:
        run(pycache, migrate=True)  # bytecode and the schema, once
        run(pycache, steps=SCF_STEPS, scf_timer=True)
        run(pycache, steps=FLOOR)
        samples, floors = [], []
        for _ in range(runs):
            samples.append(run(pycache, steps=SCF_STEPS, scf_timer=True))
            floors.append(run(pycache, steps=FLOOR)["floor"])
    medians = {name: statistics.median(s[name] for s in samples) for name in samples[0]}
    floor = statistics.median(floors)
    total = sum(medians.values())
    print(
        f"status_sweep's first answer with IMAGESYNC_SCHEDULER=scf-timer, step by step (CPU ms, median of {runs}); "
        f"floor {floor:.1f} ms, timed on its own\n"
    )
    rows = [[name, ms, ms / floor] for name, ms in medians.items()]
    print(table(["step", "CPU ms", "of the floor"], [*rows, ["in all", total, total / floor]]))


if __name__ == "__main__":
    main()
