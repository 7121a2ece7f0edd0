#!/usr/bin/env python3
"""Cold import of each function's handler against the floor it cannot avoid, and the deploy package's size.

Each sample is a fresh interpreter (`python -I`, its bytecode compiled beforehand into a private pycache prefix)
that times one statement with perf_counter: `import index` of functions/<name>/index.py (with shared/ on the path),
against the floor `import tencentcloud.cvm.v20170312.cvm_client, pydantic, sqlalchemy` that every handler needs.
The handlers defer imports to their first call (the SQL store, the envelopes...), so `import index` alone can come
in under the floor; the "+ first call" rows add one invocation that needs no network (copy_request: GET /health;
status_sweep: a timer with nothing in flight; completion_hook: a delivery with one bad record) on a SQLite state
table whose schema exists. The rows that call the cloud need the deploy package (`make package`): the project's
emulator runs in this process with its clock frozen, serverless.yml deployed from dist/ onto its SCF and one copy
started (SyncImages), and every call is answered at once, as the cloud answers a sweep's usual calls. The row
"status_sweep + first call, scf-timer" is the idle sweep with the schedule serverless.yml deploys
(IMAGESYNC_SCHEDULER=scf-timer): it disarms the sweep's two timers (UpdateTrigger through the SDK). The row "...,
a copy due" is that deployed sweep woken with that copy in flight and due (a state table of its own, copied afresh
before each sample): one DescribeImages through the cvm client, the progress written, the timers armed at the next
check. Beside it, "the least deployed sweep": the same work with no imagesync code (settings, one query, the same
calls, one UPDATE; `least_sweep`), a lower bound for any status_sweep built as the brief asks.

Three columns of ratios: against the floor as issue 15 names it; against the floor with `from pydantic import
BaseModel` (pydantic 2's `import pydantic` alone loads a lazy shell); against the floor with every library the
brief has each handler use (pydantic's models, pydantic-settings, powertools' Logger), itself a row. Median of
--runs samples per row, interleaved so that machine noise falls on every row alike. Ratios, since absolute times
depend on the machine.

With dist/ built (`make package`), the same is measured on the deploy package as SCF lays it out (dist/code on
the path first, then dist/layer; `-S`, so nothing from the venv), and the sizes of dist/code.zip and
dist/layer.zip are printed.

--as-shipped measures the deploy package only, as SCF's read-only folders run it: no bytecode compiled beforehand
and none written (`-B`), so each module's bytecode is the one the package ships, or, for a package built with
`scripts/package.py --no-bytecode`, compiled in memory by every cold start. --dist picks the package.

--cpu reads each sample's CPU time (time.process_time) instead of the wall clock: on a machine busy with other
work, a sample waiting for a core inflates the wall clock, not its CPU time (both include the waits on disk).

--against DIR adds, to the venv's table, the "+ first call" rows of another tree (DIR/functions and DIR/shared,
e.g. `git archive <commit> functions shared | tar -x -C DIR`), scf-timer's included, interleaved with this tree's:
an A/B in one run, where machine noise falls on both alike (its rows are named "<row> @ DIR"). Repeatable.

    .venv/bin/python scripts/bench_cold_import.py [--runs 9] [--dist dist] [--as-shipped] [--cpu] [--against DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from imagesync_dev.bench import REPO, table

FUNCTIONS = ["copy_request", "status_sweep", "completion_hook"]
#: a first invocation per function that needs no network: what the handler imports lazily is then imported too
FIRST_EVENTS = {
    "copy_request": {"httpMethod": "GET", "path": "/health", "headers": {}, "queryString": {}, "body": ""},
    "status_sweep": {"Type": "Timer", "TriggerName": "every_minute", "Time": "2026-01-01T00:00:00Z", "Message": ""},
    "completion_hook": {"source": "imagesync.outbox", "messages": [{}]},
}
FLOOR = "import tencentcloud.cvm.v20170312.cvm_client, pydantic, sqlalchemy"
#: the floor with pydantic's models imported: pydantic 2's `import pydantic` loads a lazy shell (BaseModel and the
#: rest load on first attribute access), so the floor above holds almost none of pydantic; every handler's models
#: need BaseModel. Shown beside the floor, as its own column, not in its place (issue 15 names the floor above)
FLOOR_MODELS = FLOOR + "; from pydantic import BaseModel"
#: the floor with every library the brief has each handler use (pydantic's models, pydantic-settings, powertools'
#: Logger): what any handler built as the brief asks pays before its own code. Its own column
STACK = FLOOR_MODELS + "; import pydantic_settings; from aws_lambda_powertools import Logger"
#: settings for every sample: the cloud's endpoint and keys are the answering cloud's (CLOUD_ENV) where one runs
OFFLINE_ENV = {
    "IMAGESYNC_TENCENT_ENDPOINT": "http://127.0.0.1:9",
    "TENCENTCLOUD_SECRET_ID": "AKIDbench",
    "TENCENTCLOUD_SECRET_KEY": "bench",
    "IMAGESYNC_LOG_LEVEL": "ERROR",
    "IMAGESYNC_API_AUTH": "none",
}
#: the emulator's endpoint and the emulated account's keys, while `answering_cloud` runs
CLOUD_ENV: dict[str, str] = {}
#: the answering cloud's (source image, copy in flight), while it runs: the due copy of DUE's and LEAST's table
COPY: tuple[str, str] | None = None
#: status_sweep as serverless.yml deploys it: its schedule follows the work (IMAGESYNC_SCHEDULER=scf-timer), so an
#: idle sweep disarms its timers and a sweep that saw a copy still going arms them (UpdateTrigger through the SDK,
#: two calls either way). The function's name is the deployed one's (set by `answering_cloud`)
SCF_TIMER = {
    "IMAGESYNC_SCHEDULER": "scf-timer",
    "IMAGESYNC_SWEEP_FUNCTION": "imagesync-status_sweep",
    "IMAGESYNC_SWEEP_TIMER": "status-sweep-next",
    "IMAGESYNC_SWEEP_SAFETY_TIMER": "status-sweep-safety",
}
#: SCF's limits (docs/facts.md#F-SCF-2): a zip uploaded through the API, and code plus layers unzipped
ZIP_LIMIT_MB, UNZIPPED_LIMIT_MB = 50, 500


#: the clock each sample reads (--cpu: the process's CPU time, which a machine shared with other work inflates less)
CLOCK = "perf_counter"


#: the row whose state table holds one copy in flight, due: status_sweep as deployed, woken by its timer with work
DUE = "status_sweep + first call, scf-timer, a copy due"
STACK_ROW = "floor, the brief's libraries"
#: the lower bound beside it (`least_sweep`), on the same state table
LEAST = "the least deployed sweep, a copy due (no imagesync code)"


def due_copy(url: str, image: str, copy: str) -> None:
    """One copy of `image` in flight into ap-shanghai as `copy`, due for five minutes, in the state table at `url`
    (schema made). Every sample starts from this table (`measure` copies it afresh), so each looks at the copy
    (DescribeImages: SYNCING, the emulator's clock stands), writes what it saw and arms the timer at its next
    check (UpdateTrigger)."""
    from datetime import datetime, timedelta, timezone

    from imagesync.adapters.sql import SqlStateStore, make_engine, upgrade
    from imagesync.domain.models import Replication
    from imagesync_dev.bench import SOURCE_REGION, copying_replica

    engine = make_engine(url)
    upgrade(engine)
    at = datetime.now(timezone.utc) - timedelta(minutes=5)
    rep = Replication(source_region=SOURCE_REGION, image_ids=[image], destination_regions=["ap-shanghai"])
    copying = copying_replica(rep, image, "ap-shanghai", copy, at)
    SqlStateStore(engine).create_replication(rep.model_copy(update={"replicas": [copying]}))
    engine.dispose()


def empty_table(url: str) -> None:
    """The schema and nothing else, at `url`."""
    from imagesync.adapters.sql import make_engine, upgrade

    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def least_sweep() -> str:
    """The least a deployed sweep woken with a copy due can do on the brief's libraries, as one statement: settings
    read from the environment, the copies in flight read from the state table (a SQLite engine, one query), one
    DescribeImages of them through the cvm client, what it saw written back (one UPDATE each), and the timers armed
    through the SDK's CommonClient (UpdateTrigger of the one-shot trigger, then of the safety one). No imagesync
    code: a lower bound for any status_sweep built as the brief asks, to read the due row against."""
    return (
        STACK
        + """
import os
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.credential import Credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cvm.v20170312 import models
class Least(pydantic_settings.BaseSettings):
    model_config = pydantic_settings.SettingsConfigDict(env_prefix="IMAGESYNC_")
    database_url: str
    tencent_endpoint: str
    sweep_function: str
    sweep_timer: str
    sweep_safety_timer: str
settings, log = Least(), Logger(service="least")
engine = sqlalchemy.create_engine(settings.database_url)
with engine.connect() as db:
    due = db.execute(sqlalchemy.text("select destination_image_id from replicas where state = 'COPYING'")).all()
cred = Credential(os.environ["TENCENTCLOUD_SECRET_ID"], os.environ["TENCENTCLOUD_SECRET_KEY"])
profile = ClientProfile(httpProfile=HttpProfile(endpoint=settings.tencent_endpoint.split("//")[1], protocol="http"))
look = models.DescribeImagesRequest()
look.ImageIds = [row[0] for row in due]
seen = tencentcloud.cvm.v20170312.cvm_client.CvmClient(cred, "ap-shanghai", profile).DescribeImages(look).ImageSet
with engine.begin() as db:
    for image in seen:
        db.execute(
            sqlalchemy.text(
                "update replicas set sync_percent = :p, version = version + 1 where destination_image_id = :i"
            ),
            {"p": image.SyncPercent or 0, "i": image.ImageId},
        )
scf = CommonClient("scf", "2018-04-16", cred, "ap-guangzhou", profile)
for trigger, desc in ((settings.sweep_timer, "0 0 3 1 1 * 2027"), (settings.sweep_safety_timer, None)):
    params = {"FunctionName": settings.sweep_function, "Namespace": "default", "TriggerName": trigger}
    params.update({"Type": "timer", "Enable": "OPEN"}, **({"TriggerDesc": desc} if desc else {}))
    scf.call_json("UpdateTrigger", params)
log.info("swept", extra={"seen": len(seen)})
"""
    )


@contextmanager
def answering_cloud(dist: Path) -> Iterator[tuple[str, str]]:
    """The cloud the rows that call one talk to: the project's emulator with its clock frozen, serverless.yml
    deployed from `dist` onto its SCF (UpdateTrigger finds status_sweep's timers) and one copy started (SyncImages
    into ap-shanghai: SYNCING for as long as the clock stands). Every sample then reaches it (CLOUD_ENV: its
    endpoint, the emulated account's keys), and each call is answered at once, as a sweep's usual calls are,
    rather than refused and retried with backoff (what a down endpoint costs). Its own CPU time is this
    process's, not the samples'. Yields (the source image, its copy)."""
    from imagesync_dev.demo_cloud import deploy_stack, sdk
    from imagesync_emulator import Emulator

    with tempfile.TemporaryDirectory(prefix="imagesync-cloud-") as tmp, Emulator(time_scale=0.0, seed=7) as emu:
        stack = deploy_stack(
            emu, database_url=f"sqlite:///{tmp}/deployed.db", code_dir=dist / "code", layer_zip=dist / "layer.zip"
        )
        cvm = sdk(emu, "cvm")
        private = [{"Name": "image-type", "Values": ["PRIVATE_IMAGE"]}]
        image = next(
            i
            for i in cvm.call_json("DescribeImages", {"Filters": private})["Response"]["ImageSet"]
            if i["ImageState"] == "NORMAL"
        )
        cvm.call_json("SyncImages", {"ImageIds": [image["ImageId"]], "DestinationRegions": ["ap-shanghai"]})
        named = [{"Name": "image-name", "Values": [image["ImageName"]]}]
        copy = sdk(emu, "cvm", "ap-shanghai").call_json("DescribeImages", {"Filters": named})["Response"]["ImageSet"]
        CLOUD_ENV.update(
            {
                "IMAGESYNC_TENCENT_ENDPOINT": emu.endpoint,
                "TENCENTCLOUD_SECRET_ID": emu.secret_id,
                "TENCENTCLOUD_SECRET_KEY": emu.secret_key,
            }
        )
        SCF_TIMER["IMAGESYNC_SWEEP_FUNCTION"] = stack.name("status_sweep")
        global COPY
        COPY = image["ImageId"], copy[0]["ImageId"]
        try:
            yield COPY
        finally:
            CLOUD_ENV.clear()
            COPY = None


def sample(
    path: list[str],
    statement: str,
    pycache: str,
    *,
    no_site: bool,
    precompiled: bool = True,
    state: str = "state.db",
) -> float:
    """Seconds one fresh interpreter takes to run `statement` (an import, maybe a first call), timed inside it."""
    code = f"import sys, time\nsys.path[:0] = {path!r}\nt = time.{CLOCK}()\n{statement}\nprint(time.{CLOCK}() - t)\n"
    # precompiled: the bytecode in a private prefix (made by the first sample); else none made, none written
    flags = ["-I", *(["-X", f"pycache_prefix={pycache}"] if precompiled else ["-B"]), *(["-S"] if no_site else [])]
    env = {
        **os.environ,
        **OFFLINE_ENV,
        **CLOUD_ENV,
        "IMAGESYNC_DATABASE_URL": f"sqlite:///{pycache}/{state}",
        "IMAGESYNC_QUEUE_PATH": f"{pycache}/queue.db",
        # the schema exists (`measure` makes it); the sample skips the migration check, as the cloud's functions do
        "IMAGESYNC_AUTO_MIGRATE": "false",
    }
    out = subprocess.run(
        [sys.executable, *flags, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        env=env,
    )
    return float(out.stdout.strip().splitlines()[-1])


def first_call(module: str, function: str, env: dict[str, str] | None = None, check: str = "") -> str:
    """Import the entry and answer one event: the imports a handler defers to its first call included (`env`:
    settings set first, inside the sample; `check`: an expression on the `answer` that must hold, or the sample
    fails, so that a row cannot quietly time another path than the one it names)."""
    event = json.dumps(FIRST_EVENTS[function])
    setup = f"import os; os.environ.update({env!r}); " if env else ""
    call = f"answer = {module}.main_handler(json.loads({event!r}), {{'request_id': 'bench'}})"
    return f"{setup}import json, {module}; {call}" + (f"; assert {check}, answer" if check else "")


def measure(
    rows: dict[str, tuple[list[str], str]], runs: int, *, no_site: bool, precompiled: bool = True
) -> dict[str, float]:
    """Median seconds per row. Every sample starts from a state table made once here, copied afresh before it (a
    look writes its copy's progress, a sweep its lease): "due.db" (the due copy) for DUE and LEAST, else
    "state.db" (the schema alone)."""
    with tempfile.TemporaryDirectory(prefix="imagesync-pycache-") as pycache:
        made = Path(pycache) / "made"
        made.mkdir()
        empty_table(f"sqlite:///{made}/state.db")
        if COPY is not None:
            due_copy(f"sqlite:///{made}/due.db", *COPY)
        states = {name: "due.db" if name.startswith((DUE, LEAST)) else "state.db" for name in rows}

        def one(name: str) -> float:
            path, statement = rows[name]
            shutil.copyfile(made / states[name], Path(pycache) / states[name])
            return sample(path, statement, pycache, no_site=no_site, precompiled=precompiled, state=states[name])

        for name in rows:  # compile the bytecode once: runs measure imports, not compiles
            one(name)
        samples: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(runs):
            for name in rows:
                samples[name].append(one(name))
    return {name: statistics.median(values) for name, values in samples.items()}


def report(title: str, medians: dict[str, float]) -> None:
    floor, models, stack = medians["floor"], medians["floor, BaseModel"], medians[STACK_ROW]
    print(title + "\n")
    print(
        table(
            ["import", "median ms", "vs floor", "vs floor with BaseModel", "vs the brief's libraries"],
            [
                [
                    name if name.startswith(("floor", "the least")) or "first" in name else f"{name} (index.py)",
                    1000 * value,
                    value / floor,
                    value / models,
                    value / stack,
                ]
                for name, value in medians.items()
            ],
        )
    )


def unzipped_mb(path: Path) -> float:
    with zipfile.ZipFile(path) as z:
        return sum(i.file_size for i in z.infolist()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per row (median); at least 7")
    parser.add_argument("--dist", type=Path, default=REPO / "dist", help="the deploy package (default: dist)")
    parser.add_argument(
        "--as-shipped",
        action="store_true",
        help="the deploy package only, with the bytecode it ships and none compiled beforehand (SCF: read-only)",
    )
    parser.add_argument(
        "--cpu", action="store_true", help="time with the process's CPU time instead of the wall clock (busy machines)"
    )
    parser.add_argument(
        "--against",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also the '+ first call' rows of the tree in DIR (its functions/ and shared/), interleaved (A/B); "
        "repeatable",
    )
    args = parser.parse_args()
    if args.cpu:
        global CLOCK
        CLOCK = "process_time"
    # the rows that call the cloud need the package deployed onto the emulator: without it they are left out
    deployable = (args.dist / "code").is_dir() and (args.dist / "layer.zip").is_file()
    with answering_cloud(args.dist) if deployable else nullcontext():
        if not args.as_shipped:
            venv(args.runs, args.against)
        package(args.dist, args.runs, precompiled=not args.as_shipped)


def idle_sweep(module: str) -> str:
    """status_sweep as deployed, woken with nothing in flight: it must disarm its timers."""
    return first_call(
        module, "status_sweep", SCF_TIMER, 'answer["claimed"] == 0 and answer["schedule"] == {"armed": None}'
    )


def cloud_rows(path: list[str], module: str) -> dict[str, tuple[list[str], str]]:
    """The rows that call the (answering) cloud: status_sweep as deployed, idle and with a copy due, and the least
    deployed sweep beside them; none without it."""
    if COPY is None:
        return {}
    # each must take the path it names: the idle sweep disarmed, the due one claimed its copy and armed the timer
    idle = idle_sweep(module)
    due = first_call(module, "status_sweep", SCF_TIMER, 'answer["claimed"] == 1 and answer["schedule"].get("armed")')
    least = f"import os; os.environ.update({SCF_TIMER!r})\n" + least_sweep() + "assert len(seen) == 1, seen\n"
    return {"status_sweep + first call, scf-timer": (path, idle), DUE: (path, due), LEAST: (path, least)}


def venv(runs: int, against: list[Path]) -> None:
    shared = str(REPO / "shared")
    rows = {"floor": ([shared], FLOOR), "floor, BaseModel": ([shared], FLOOR_MODELS), STACK_ROW: ([shared], STACK)}
    rows.update({name: ([str(REPO / "functions" / name), shared], "import index") for name in FUNCTIONS})
    rows.update(
        {
            f"{name} + first call": ([str(REPO / "functions" / name), shared], first_call("index", name))
            for name in FUNCTIONS
        }
    )
    rows.update(cloud_rows([str(REPO / "functions" / "status_sweep"), shared], "index"))
    for tree in against:
        other = tree.resolve()
        rows.update(
            {
                f"{name} + first call @ {other}": (
                    [str(other / "functions" / name), str(other / "shared")],
                    first_call("index", name),
                )
                for name in FUNCTIONS
            }
        )
        if COPY is not None:
            rows[f"status_sweep + first call, scf-timer @ {other}"] = (
                [str(other / "functions" / "status_sweep"), str(other / "shared")],
                idle_sweep("index"),
            )
    report(
        f"Cold import in the venv ({sys.executable}; median of {runs} fresh interpreters)",
        measure(rows, runs, no_site=False),
    )
    print()


def package(dist: Path, runs: int, *, precompiled: bool) -> None:
    code, layer = dist / "code", dist / "layer"
    if not (code.is_dir() and layer.is_dir()):
        print(f"no {dist}/ (run `make package` first): the deploy package is not measured")
        return
    path = [str(code), str(layer)]
    rows = {"floor": (path, FLOOR), "floor, BaseModel": (path, FLOOR_MODELS), STACK_ROW: (path, STACK)}
    present = [name for name in FUNCTIONS if (code / f"{name}.py").exists()]
    rows.update({name: (path, f"import {name}") for name in present})
    rows.update({f"{name} + first call": (path, first_call(name, name)) for name in present})
    if "status_sweep" in present:
        rows.update(cloud_rows(path, "status_sweep"))
    how = "bytecode compiled beforehand" if precompiled else "only the bytecode it ships, none written"
    report(
        f"Cold import from the deploy package ({dist.name}/code then {dist.name}/layer, no site-packages; {how}; "
        f"median of {runs})",
        measure(rows, runs, no_site=True, precompiled=precompiled),
    )
    print()
    sizes = []
    for name in ("code.zip", "layer.zip"):
        z = dist / name
        if z.exists():
            sizes.append([name, z.stat().st_size / 1e6, unzipped_mb(z)])
    total = [sum(s[1] for s in sizes), sum(s[2] for s in sizes)]
    print(
        table(
            ["package", "zip MB", "unzipped MB"],
            [*sizes, ["total", *total], ["SCF limit", f"{ZIP_LIMIT_MB} per zip", UNZIPPED_LIMIT_MB]],
        )
    )


if __name__ == "__main__":
    main()
