"""The chaos scenario: many images into several regions through the real handlers, with faults everywhere and the
workers crashed at the worst points and restarted, until every copy ended. Then it counts what landed.

    imagesync-dev chaos --images 1000 --regions ap-shanghai,ap-beijing,ap-chengdu
    imagesync-dev chaos --images 1000 --database-url mysql+pymysql://root@127.0.0.1:3306/chaos_1

What runs (docs/chaos.md has the figures):

* the emulator in its own process (killed workers never take it down), time compressed (`--time-scale`), rate
  limits off; faults on every action imagesync calls: RequestLimitExceeded (`--throttle`), InternalError
  (`--internal-error`, injected as scripted faults topped up to that share of calls: a fault rule holds one error
  code), dropped connections (`--drop`, half before the server acts, half after it acted with the answer lost),
  and copies ending CREATEFAILED (`--copy-failure`);
* images made by CreateImage through the official SDK, in waves; each CloudAudit event the emulator records is
  delivered to copy_request TWICE, shuffled and with random delays (EventBridge is at least once, unordered);
* worker processes running the real handlers: `--event-workers` copy_request on those events (from a local
  queue: a failed or crashed delivery is redelivered, as EventBridge retries), `--sweepers` overlapping
  status_sweep loops, `--hook-workers` completion_hook delivery loops on the local completion queue;
* failpoints (imagesync.runtime.failpoints) in every worker: after SyncImages before the replica write, after
  the queue send before the outbox is marked sent, inside a hook after its effect before its record; plus a
  SIGKILL of a random worker every `--kill-every` seconds. The runner restarts every dead worker;
* hooks on every replica end: a signed webhook to a receiver in this process (the receiver counts POSTs and
  distinct X-Imagesync-Delivery ids), tags on the copy, the copy shared with a second account.

It prints (and `--json` writes) replicas total / succeeded / failed by reason / stuck, SyncImages calls per
(image, region) against the copies that exist, and hook effects per replica end, raw and distinct. Exit status 0
only when stuck == 0, every started copy had exactly one successful SyncImages, no copy is orphaned, and every
replica end has exactly one distinct effect per hook.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .webhook_receiver import WebhookReceiver

SOURCE = "ap-guangzhou"
INSTANCE = "ins-1a2b3c4d"  # the emulator default world's instance in ap-guangzhou (20 GB system disk)
PARTNER_UIN = "100000000002"  # the default world's second account: every copy is shared with it
ACCOUNT_UIN = "100000000001"
WEBHOOK_SECRET = "chaos-webhook-secret-not-real"  # noqa: S105 - a fake, for the local receiver only
NAME_PREFIX = "chaos-"
#: every action imagesync calls in this scenario gets the faults
FAULTED_ACTIONS = (
    "DescribeImages",
    "SyncImages",
    "DescribeImageQuota",
    "DescribeRegions",
    "TagResources",
    "DescribeImageSharePermission",
    "ModifyImageSharePermission",
)
ROLES = ("events", "sweep", "hooks")


@dataclass
class ChaosConfig:
    images: int = 1000
    regions: Sequence[str] = ("ap-shanghai", "ap-beijing", "ap-chengdu")
    time_scale: float = 3000.0
    seed: int = 1
    database_url: str | None = None  # default: SQLite in the work directory
    workdir: Path | None = None
    throttle: float = 0.10
    internal_error: float = 0.02
    drop: float = 0.01
    copy_failure: float = 0.05
    failpoints: str = "after_sync_images=0.05,after_outbox_publish=0.01,inside_hook=0.01"
    kill_every: float = 5.0  # real seconds between SIGKILLs of a random worker; 0 = none
    event_workers: int = 4
    sweepers: int = 3
    hook_workers: int = 2
    wave: int = 100  # images created per runner tick
    max_seconds: float = 600.0
    log_level: str = "WARNING"  # the workers' (their JSON lines go to <workdir>/logs/<role>-<n>.out)


@dataclass
class Worker:
    role: str
    index: int
    proc: subprocess.Popen[bytes]
    spawns: int = 1


class Admin:
    """The emulator's admin handle over HTTP (the emulator runs in its own process)."""

    def __init__(self, url: str) -> None:
        import requests

        self.url = url.rstrip("/")
        self.session = requests.Session()

    def __call__(self, method: str, **kwargs: Any) -> Any:
        resp = self.session.post(f"{self.url}/{method}", json=kwargs, timeout=60)
        body = resp.json()
        if resp.status_code != 200:
            raise RuntimeError(f"emulator admin {method}: {body.get('error')}")
        return body["result"]


# ---- the worker processes ------------------------------------------------------------------------------------


def clock_anchor(admin: Admin, tries: int = 20) -> tuple[float, float]:
    """(emulated, real) at one instant, from the admin call with the shortest round trip: its error is half that
    trip x the time scale. Measured once by the runner, before the machine is busy, and handed to every worker:
    a worker measuring its own anchor while 10 processes compete for 2 cores was seen 0.5 s off, i.e. 25 emulated
    minutes at 3000x -- enough to make imagesync's replica times disagree with the emulator's CreatedTime."""
    best: tuple[float, float, float] | None = None
    for _ in range(tries):
        before = time.time()
        emulated = float(admin("now"))
        after = time.time()
        if best is None or after - before < best[0]:
            best = (after - before, emulated, (before + after) / 2)
    assert best is not None
    return best[1], best[2]


class _EmulatedClock:
    """The emulator's clock computed locally from the runner's anchor (emulated = anchor + real elapsed x scale):
    no admin call per clock reading. The emulator's clock runs from time.monotonic, this one from time.time: they
    agree as long as nobody steps the wall clock during a run."""

    def __init__(self, anchor: str, scale: float) -> None:
        emulated, real = (float(x) for x in anchor.split(","))
        self._real = real
        self._emu = emulated
        self._scale = scale

    def now(self) -> Any:
        from datetime import datetime, timezone

        return datetime.fromtimestamp(self._emu + (time.time() - self._real) * self._scale, timezone.utc)


def worker(role: str) -> int:
    """One worker process's loop (env-configured by the runner) until the stop file exists."""
    from imagesync import wiring
    from imagesync.adapters.queues.local import LocalQueue
    from imagesync.handlers import completion_hook, copy_request, status_sweep
    from imagesync.local import deliver
    from imagesync.settings import Settings

    stop = Path(os.environ["CHAOS_STOP_FILE"])
    clock = _EmulatedClock(os.environ["CHAOS_CLOCK_ANCHOR"], float(os.environ["CHAOS_TIME_SCALE"]))
    svc = wiring.build_services(Settings(), clock=clock)
    wiring.use(svc)
    events = LocalQueue(os.environ["CHAOS_EVENTS_QUEUE"], name="eventbridge", max_attempts=1000)

    # Each invocation's deadline, on the real clock like everything a crash affects: what it claims (idempotency
    # records, sweep leases) is held until then. An event's equals its queue's visibility timeout (a crashed
    # delivery is redelivered when its claim runs out); hook deliveries get theirs from deliver() the same way.
    limit_ms = {"events": 3000, "sweep": 10000}.get(role, 60000)

    def context() -> dict[str, Any]:
        return {"request_id": str(uuid.uuid4()), "time_limit_in_ms": limit_ms, "function_name": role}

    timer = {"Type": "Timer", "TriggerName": "every-minute", "Time": "2026-01-01T00:00:00Z", "Message": ""}
    while not stop.exists():
        if role == "events":
            batch = events.receive(10, visibility_timeout=3.0)
            for delivery in batch:
                try:
                    copy_request.main_handler(json.loads(delivery.body), context())
                except Exception:  # EventBridge retries a failed delivery (EventsNotDone, a transient error)
                    events.nack(delivery, delay_seconds=0.2)
                else:
                    events.ack(delivery)
            if not batch:
                time.sleep(0.05)
        elif role == "sweep":
            status_sweep.main_handler(timer, context())
            time.sleep(0.1)
        elif role == "hooks":
            counts = deliver(
                svc.queue, completion_hook.main_handler, max_messages=50, visibility_timeout=3.0, retry_delay=0.2
            )
            if not counts["delivered"] and not counts["failed"]:
                time.sleep(0.05)
        else:
            raise SystemExit(f"unknown role {role!r}")
    return 0


# ---- the runner ----------------------------------------------------------------------------------------------


def _start_emulator(cfg: ChaosConfig, workdir: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    log = open(workdir / "emulator.log", "wb")  # noqa: SIM115 - kept open for the process's life
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imagesync_emulator",
            "--time-scale",
            str(cfg.time_scale),
            "--seed",
            str(cfg.seed),
            "--no-rate-limits",
        ],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"the emulator did not start; see {workdir / 'emulator.log'}")
    return proc, json.loads(line)


def _prepare_database(url: str) -> None:
    """Create the MySQL/MariaDB database if missing, then the schema at head (Alembic)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from imagesync.adapters.sql import upgrade

    parsed = make_url(url)
    if parsed.get_backend_name() == "mysql" and parsed.database:
        server = create_engine(parsed._replace(database=None))  # URL.set() ignores None: it would keep the name
        with server.begin() as conn:
            conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{parsed.database}`"))
        server.dispose()
    upgrade(url)


def _worker_env(
    cfg: ChaosConfig,
    emu: dict[str, Any],
    workdir: Path,
    db_url: str,
    rules: str,
    hooks: str,
    receiver_url: str,
    seed: int,
    anchor: tuple[float, float] = (0.0, 0.0),
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGESYNC_", "TENCENTCLOUD_"))}
    env.update(
        {
            "TENCENTCLOUD_SECRET_ID": emu["secret_id"],
            "TENCENTCLOUD_SECRET_KEY": emu["secret_key"],
            "IMAGESYNC_TENCENT_ENDPOINT": emu["endpoint"],
            "IMAGESYNC_REGION": SOURCE,
            "IMAGESYNC_UIN": ACCOUNT_UIN,
            "IMAGESYNC_DATABASE_URL": db_url,
            "IMAGESYNC_AUTO_MIGRATE": "false",
            "IMAGESYNC_QUEUE": "local",
            "IMAGESYNC_QUEUE_PATH": str(workdir / "completions.db"),
            "IMAGESYNC_QUEUE_MAX_ATTEMPTS": "1000",  # a dead letter would be a stuck end: keep retrying
            "IMAGESYNC_RULES_JSON": rules,
            "IMAGESYNC_HOOKS": hooks,
            "IMAGESYNC_RECONCILE_LIMIT": "0",
            "IMAGESYNC_WEBHOOK_URL": receiver_url,
            "IMAGESYNC_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "IMAGESYNC_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1 over http
            # emulated seconds, chosen for the compressed clock: checks every 0.1 real s at 3000x, no copy timed out by
            # the runner's own length (a sweep's leases are real time: its invocation's deadline, see worker())
            "IMAGESYNC_FIRST_CHECK_SECONDS": "300",
            "IMAGESYNC_RECHECK_SECONDS": "300",
            "IMAGESYNC_MAX_CHECK_SECONDS": "600",
            "IMAGESYNC_RETRY_SECONDS": "300",
            "IMAGESYNC_COPY_TIMEOUT_SECONDS": str(86400 * 60),
            "IMAGESYNC_EVENT_IMAGE_WAIT_SECONDS": "3600",
            # the emulator's rate limits are off (faults inject RequestLimitExceeded instead): do not wait client-side
            "IMAGESYNC_SYNC_RATE_PER_SECOND": "200",
            "IMAGESYNC_DESCRIBE_RATE_PER_SECOND": "400",
            "IMAGESYNC_LOG_LEVEL": cfg.log_level,
            "IMAGESYNC_FAILPOINTS": cfg.failpoints,
            "IMAGESYNC_FAILPOINTS_SEED": str(seed),
            "CHAOS_STOP_FILE": str(workdir / "stop"),
            "CHAOS_ADMIN_URL": emu["admin"],
            "CHAOS_TIME_SCALE": str(cfg.time_scale),
            "CHAOS_CLOCK_ANCHOR": f"{anchor[0]!r},{anchor[1]!r}",
            "CHAOS_EVENTS_QUEUE": str(workdir / "events.db"),
        }
    )
    return env


def run(cfg: ChaosConfig, *, out: Any = None) -> dict[str, Any]:
    """Run the scenario; returns the report (see the module docstring). `out`: a text stream for progress."""
    from imagesync.adapters.queues.local import LocalQueue
    from imagesync.adapters.sql import SqlStateStore, make_engine
    from imagesync.domain.hooks import ShareHook, TagHook

    out = out or sys.stderr
    rng = random.Random(cfg.seed)
    workdir = Path(cfg.workdir or tempfile.mkdtemp(prefix="imagesync-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    (workdir / "stop").unlink(missing_ok=True)
    db_url = cfg.database_url or f"sqlite:///{workdir / 'state.db'}"
    _prepare_database(db_url)
    store = SqlStateStore(make_engine(db_url))
    events = LocalQueue(str(workdir / "events.db"), name="eventbridge", max_attempts=1000)
    completions = LocalQueue(str(workdir / "completions.db"), max_attempts=1000)
    receiver = WebhookReceiver(WEBHOOK_SECRET, "/hooks/chaos")
    emu_proc, emu = _start_emulator(cfg, workdir)
    admin = Admin(emu["admin"])
    workers: list[Worker] = []
    started = time.monotonic()
    report: dict[str, Any] = {}
    try:
        anchor = clock_anchor(admin)
        admin("set_image_quota", quota=100000)
        admin("set_copy_failure_rate", p=cfg.copy_failure)
        rules = json.dumps(
            {
                "rules": [
                    {
                        "name": "chaos",
                        "selector": {"source_regions": [SOURCE], "name_glob": f"{NAME_PREFIX}*"},
                        "destinations": list(cfg.regions),
                        "reconcile": False,
                    }
                ]
            }
        )
        hooks = json.dumps(
            [TagHook().model_dump(mode="json"), ShareHook(account_ids=[PARTNER_UIN]).model_dump(mode="json")]
        )
        spawn_seq = 0

        def spawn(role: str, index: int) -> subprocess.Popen[bytes]:
            nonlocal spawn_seq
            spawn_seq += 1
            env = _worker_env(
                cfg, emu, workdir, db_url, rules, hooks, receiver.url, cfg.seed * 100000 + spawn_seq, anchor
            )
            stem = workdir / "logs" / f"{role}-{index}"
            return subprocess.Popen(
                [sys.executable, "-m", "imagesync_dev.chaos", "worker", role],
                env=env,
                stdout=open(f"{stem}.out", "ab"),
                stderr=open(f"{stem}.err", "ab"),  # noqa: SIM115
            )

        for role, count in (("events", cfg.event_workers), ("sweep", cfg.sweepers), ("hooks", cfg.hook_workers)):
            workers.extend(Worker(role, i, spawn(role, i)) for i in range(count))
        for action in FAULTED_ACTIONS:
            admin(
                "set_fault",
                action=action,
                code="RequestLimitExceeded",
                rate=cfg.throttle,
                drop_rate=cfg.drop / 2,
                drop_after_rate=cfg.drop / 2,
            )

        cvm = _cvm_client(emu)
        created = 0
        events_seen = 0
        exits: Counter[str] = Counter()
        kills = 0
        last_kill = time.monotonic()
        counted: dict[str, int] = {}
        owed: dict[str, float] = defaultdict(float)
        last_progress = 0.0
        done = False
        while time.monotonic() - started < cfg.max_seconds:
            # 1. images, in waves (CreateImage through the official SDK; not faulted: it is the world's doing)
            for _ in range(min(cfg.wave, cfg.images - created)):
                _create_image(cvm, f"{NAME_PREFIX}{created:05d}")
                created += 1
            # 2. CloudAudit events, each delivered twice, shuffled, with random delays
            fresh = admin("drain_audit_events")
            events_seen += len(fresh)
            batch = [e for e in fresh for _ in range(2)]
            rng.shuffle(batch)
            for event in batch:
                events.send(json.dumps(event), delay_seconds=rng.choice((0, 0, 0, 1, 2)))
            # 3. InternalError at its share of the calls: scripted faults topped up from the counters
            counters = admin("counters")
            for action in FAULTED_ACTIONS:
                total = sum(counters.get(action, {}).values())
                owed[action] += (total - counted.get(action, 0)) * cfg.internal_error
                counted[action] = total
                if owed[action] >= 1:
                    n = int(owed[action])
                    owed[action] -= n
                    admin("script_fault", action=action, count=n, code="InternalError")
            # 4. supervise: restart whatever died; kill one now and then
            for w in workers:
                code = w.proc.poll()
                if code is not None:
                    exits[f"{w.role}:{code}"] += 1
                    w.proc = spawn(w.role, w.index)
                    w.spawns += 1
            if cfg.kill_every and time.monotonic() - last_kill >= cfg.kill_every:
                victim = rng.choice(workers)
                victim.proc.send_signal(signal.SIGKILL)
                kills += 1
                last_kill = time.monotonic()
            # 5. done?
            if created >= cfg.images:
                state = _progress(store, events, completions)
                if time.monotonic() - last_progress > 5:
                    out.write(f"[{time.monotonic() - started:6.1f}s] {json.dumps(state)}\n")
                    out.flush()
                    last_progress = time.monotonic()
                if _finished(state, cfg.images * len(cfg.regions)):
                    done = True
                    break
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        (workdir / "stop").touch()
        for w in workers:
            try:
                w.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
        report = _report(
            cfg,
            admin,
            store,
            receiver,
            workdir,
            events_seen=events_seen,
            elapsed=elapsed,
            finished=done,
            exits=exits,
            random_kills=kills,
            database_url=db_url,
        )
    finally:
        (workdir / "stop").touch()
        for w in workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
        emu_proc.send_signal(signal.SIGTERM)
        try:
            emu_proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            emu_proc.kill()
        receiver.close()
        events.close()
        completions.close()
    return report


def _cvm_client(emu: dict[str, Any]) -> Any:
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.cvm.v20170312 import cvm_client

    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=emu["host_port"]), language="en-US")
    return cvm_client.CvmClient(credential.Credential(emu["secret_id"], emu["secret_key"]), SOURCE, profile)


def _create_image(cvm: Any, name: str) -> None:
    from tencentcloud.cvm.v20170312 import models

    request = models.CreateImageRequest()
    request.from_json_string(json.dumps({"ImageName": name, "InstanceId": INSTANCE}))
    cvm.CreateImage(request)


def _progress(store: Any, events: Any, completions: Any) -> dict[str, Any]:
    from sqlalchemy import func, select

    from imagesync.adapters.sql.schema import hook_runs, outbox, replicas

    with store.engine.connect() as conn:
        states = dict(conn.execute(select(replicas.c.state, func.count()).group_by(replicas.c.state)).all())
        pairs = conn.execute(
            select(func.count()).select_from(
                select(replicas.c.source_image_id, replicas.c.destination_region).distinct().subquery()
            )
        ).scalar()
        open_pairs = conn.execute(
            select(func.count()).select_from(
                select(replicas.c.source_image_id, replicas.c.destination_region)
                .distinct()
                .where(replicas.c.state.in_(("PENDING", "WAITING_SOURCE", "COPYING")))
                .subquery()
            )
        ).scalar()
        unsent = conn.execute(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))).scalar()
        hooks = dict(conn.execute(select(hook_runs.c.status, func.count()).group_by(hook_runs.c.status)).all())
    return {
        "replicas": {str(k): int(v) for k, v in states.items()},
        "pairs": int(pairs or 0),
        "open_pairs": int(open_pairs or 0),
        "outbox_unsent": int(unsent or 0),
        "hooks": {str(k): int(v) for k, v in hooks.items()},
        "events": events.depth(),
        "completions": completions.depth(),
    }


def _finished(state: dict[str, Any], expected: int) -> bool:
    """Every (image, region) has a replica, none is active, every end is published, delivered and hooked.

    A pair may have more than one replica: an event redelivered after its idempotency record expired (7 real days:
    not within a run) would ask again for the copies that FAILED, which the rules retry."""
    reps = state["replicas"]
    ended = sum(reps.get(s, 0) for s in ("SUCCEEDED", "FAILED", "TIMED_OUT"))
    queued = sum(state["events"][k] + state["completions"][k] for k in ("visible", "in_flight", "delayed"))
    hooks_open = sum(v for k, v in state["hooks"].items() if k not in ("done", "skipped"))
    # three hooks (webhook, tag, share) per end
    hooks_closed = sum(v for k, v in state["hooks"].items() if k in ("done", "skipped"))
    return (
        state["pairs"] == expected
        and state["open_pairs"] == 0
        and ended == sum(reps.values())
        and state["outbox_unsent"] == 0
        and queued == 0
        and hooks_open == 0
        and hooks_closed == 3 * ended
    )


def _report(
    cfg: ChaosConfig,
    admin: Admin,
    store: Any,
    receiver: WebhookReceiver,
    workdir: Path,
    *,
    events_seen: int,
    elapsed: float,
    finished: bool,
    exits: Counter[str],
    random_kills: int,
    database_url: str,
) -> dict[str, Any]:
    from sqlalchemy import select

    from imagesync.adapters.sql.schema import hook_runs, replicas

    with store.engine.connect() as conn:
        reps = [
            dict(r._mapping)
            for r in conn.execute(
                select(
                    replicas.c.id,
                    replicas.c.source_image_id,
                    replicas.c.destination_region,
                    replicas.c.state,
                    replicas.c.destination_image_id,
                    replicas.c.error_code,
                )
            )
        ]
        runs = [
            dict(r._mapping)
            for r in conn.execute(
                select(
                    hook_runs.c.replica_id,
                    hook_runs.c.hook_key,
                    hook_runs.c.status,
                )
            )
        ]
    terminal = {"SUCCEEDED", "FAILED", "TIMED_OUT"}
    states = Counter(r["state"] for r in reps)
    failed = Counter(r["error_code"] or "?" for r in reps if r["state"] in ("FAILED", "TIMED_OUT"))
    ended = [r for r in reps if r["state"] in terminal]
    run_status = {(r["replica_id"], r["hook_key"]): r["status"] for r in runs}
    hooks_not_done = sum(
        1
        for r in ended
        for key in ("webhook", "tag", "share")
        if run_status.get((r["id"], key)) not in ("done", "skipped")
    )
    expected = cfg.images * len(cfg.regions)
    pairs = {(r["source_image_id"], r["destination_region"]) for r in reps}
    active = [r for r in reps if r["state"] not in terminal]
    # stuck: an (image, region) never recorded, a replica still active, an end whose hooks did not all run
    stuck = (expected - len(pairs)) + len(active) + hooks_not_done

    # SyncImages: successful calls (lost answers included: the copy started) per (source image, region)
    calls = admin("calls", action="SyncImages")
    outcomes = Counter(("answer_lost:" if c["answer_lost"] else "") + c["outcome"] for c in calls)
    sync_ok: Counter[tuple[str, str]] = Counter()
    for c in calls:
        if c["outcome"] == "ok" and not c["params"].get("DryRun"):
            for region in c["params"].get("DestinationRegions") or []:
                sync_ok[(c["params"]["ImageIds"][0], region)] += 1
    world = admin("dump")
    copies: dict[tuple[str, str], list[str]] = defaultdict(list)
    names: dict[str, str] = {}
    for img in _images(world, SOURCE):
        if str(img.get("ImageName", "")).startswith(NAME_PREFIX):
            names[img["ImageName"]] = img["ImageId"]
    for region in cfg.regions:
        for img in _images(world, region):
            source = names.get(str(img.get("ImageName", "")))
            if source:
                copies[(source, region)].append(img["ImageId"])
    tracked = {r["destination_image_id"] for r in reps if r["destination_image_id"]}
    orphans = sorted(i for ids in copies.values() for i in ids if i not in tracked)
    # per (image, region): successful SyncImages calls / copies that exist / copies a replica started (adopted)
    started_by: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in reps:
        if r["destination_image_id"]:
            started_by[(r["source_image_id"], r["destination_region"])].add(r["destination_image_id"])
    per_copy = Counter(
        f"{sync_ok.get(p, 0)}/{len(started_by.get(p, ()))}" for p in pairs
    )  # "calls/started copies" -> number of pairs
    mismatched = sorted(
        f"{p[0]}/{p[1]}" for p in set(sync_ok) | set(copies) if sync_ok.get(p, 0) != len(copies.get(p, []))
    )
    started_copies = sum(len(v) for v in copies.values())
    multi = sorted(f"{p[0]}/{p[1]}" for p in pairs if sync_ok.get(p, 0) > len(started_by.get(p, ())))
    per_pair_replicas = Counter((r["source_image_id"], r["destination_region"]) for r in reps)
    retried_pairs = sum(1 for n in per_pair_replicas.values() if n > 1)

    # hook effects where they land
    posts_by_replica: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in receiver.received:
        posts_by_replica[str(p["payload"].get("replica_id"))].append(p)
    webhook_raw = Counter(len(posts_by_replica.get(r["id"], [])) for r in ended)
    webhook_distinct = Counter(len({p["delivery"] for p in posts_by_replica.get(r["id"], [])}) for r in ended)
    invalid_signatures = sum(1 for p in receiver.received if not p["valid"])
    tag_calls = admin("calls", action="TagResources")
    tag_ok: Counter[str] = Counter()
    for c in tag_calls:
        if c["outcome"] == "ok":
            for resource in c["params"].get("ResourceList") or []:
                tag_ok[str(resource).rsplit("/", 1)[-1]] += 1
    share_calls = admin("calls", action="ModifyImageSharePermission")
    share_ok = Counter(str(c["params"].get("ImageId")) for c in share_calls if c["outcome"] == "ok")
    succeeded = [r for r in reps if r["state"] == "SUCCEEDED"]
    images_now = {img["ImageId"]: img for region in cfg.regions for img in _images(world, region)}
    tags_now = world.get("tags") or {}
    tagged, shared = Counter(), Counter()
    for r in succeeded:
        image_id = r["destination_image_id"]
        resource = f"qcs::cvm:{r['destination_region']}:uin/{ACCOUNT_UIN}:image/{image_id}"
        tagged[int("imagesync:replication-id" in (tags_now.get(resource) or {}))] += 1
        img = images_now.get(image_id) or {}
        shared[int(PARTNER_UIN in (img.get("SharedWith") or []))] += 1
    failpoints = Counter()
    for err_file in (workdir / "logs").glob("*.err"):
        for line in err_file.read_text(errors="replace").splitlines():
            if line.startswith("imagesync failpoint "):
                failpoints[line.split()[2]] += 1

    ok = (
        finished
        and stuck == 0
        and not mismatched
        and not orphans
        and not multi
        and set(webhook_distinct) <= {1}
        and invalid_signatures == 0
        and set(tagged) <= {1}
        and set(shared) <= {1}
        and all(v <= 1 for v in share_ok.values())
    )
    return {
        "ok": ok,
        "finished": finished,
        "elapsed_seconds": round(elapsed, 1),
        "database": database_url.split("://", 1)[0],
        "images": cfg.images,
        "regions": list(cfg.regions),
        "time_scale": cfg.time_scale,
        "replicas": {
            "total": len(reps),
            "expected": expected,
            "image_region_pairs": len(pairs),
            "pairs_retried_after_failure": retried_pairs,
            "succeeded": states.get("SUCCEEDED", 0),
            "failed": states.get("FAILED", 0) + states.get("TIMED_OUT", 0),
            "failed_by_reason": dict(failed),
            "stuck": stuck,
            "hooks_not_done": hooks_not_done,
            "by_state": dict(states),
        },
        "sync_images": {
            "calls_by_outcome": dict(outcomes),
            "copies_started": started_copies,
            "calls_per_started_copies": dict(sorted(per_copy.items())),
            "pairs_with_more_calls_than_copies": multi[:20],
            "calls_vs_copies_mismatch": mismatched[:20],
            "orphan_copies": orphans[:20],
        },
        "hooks": {
            "replica_ends": len(ended),
            "webhook_posts_raw": sum(len(v) for v in posts_by_replica.values()),
            "webhook_posts_per_end_raw": {str(k): v for k, v in sorted(webhook_raw.items())},
            "webhook_distinct_deliveries_per_end": {str(k): v for k, v in sorted(webhook_distinct.items())},
            "webhook_invalid_signatures": invalid_signatures,
            "tag_calls_ok_per_copy": {str(k): v for k, v in sorted(Counter(tag_ok.values()).items())},
            "copies_tagged_per_success": {str(k): v for k, v in sorted(tagged.items())},
            "share_calls_ok_per_copy": {str(k): v for k, v in sorted(Counter(share_ok.values()).items())},
            "copies_shared_per_success": {str(k): v for k, v in sorted(shared.items())},
        },
        "events": {"cloudaudit_events": events_seen, "deliveries": 2 * events_seen},
        "crashes": {"failpoints": dict(failpoints), "random_sigkills": random_kills, "worker_exits": dict(exits)},
        "faults": {
            "throttle": cfg.throttle,
            "internal_error": cfg.internal_error,
            "drop": cfg.drop,
            "copy_failure": cfg.copy_failure,
            "failpoints": cfg.failpoints,
            "kill_every": cfg.kill_every,
        },
        "counters": {a: c for a, c in admin("counters").items() if a in FAULTED_ACTIONS},
        "workdir": str(workdir),
    }


def _images(world: dict[str, Any], region: str) -> list[dict[str, Any]]:
    return list((world.get("images") or {}).get(region) or [])


def render(report: dict[str, Any]) -> str:
    """The report as the lines `imagesync-dev chaos` prints."""
    r, s, h, c = report["replicas"], report["sync_images"], report["hooks"], report["crashes"]
    lines = [
        f"chaos: {report['images']} images x {len(report['regions'])} regions on {report['database']}, "
        f"{report['elapsed_seconds']} s real (time scale {report['time_scale']:g}), "
        f"{'finished' if report['finished'] else 'NOT finished'}",
        f"replicas total {r['total']} over {r['image_region_pairs']} (image, region) pairs (expected "
        f"{r['expected']}; {r['pairs_retried_after_failure']} pairs retried after a failed copy), succeeded "
        f"{r['succeeded']}, failed {r['failed']} {r['failed_by_reason']}, stuck {r['stuck']}",
        f"SyncImages calls {s['calls_by_outcome']}; copies started {s['copies_started']}",
        f"SyncImages ok calls / copies started, per (image, region) -> pairs: {s['calls_per_started_copies']}  "
        f"(must be n/n: one call per started copy; more calls than copies: "
        f"{len(s['pairs_with_more_calls_than_copies'])}, calls != copies existing: "
        f"{len(s['calls_vs_copies_mismatch'])}, orphan copies: {len(s['orphan_copies'])})",
        f"hook effects per replica end ({h['replica_ends']} ends): webhook POSTs raw {h['webhook_posts_per_end_raw']}, "
        f"distinct deliveries {h['webhook_distinct_deliveries_per_end']} (must be exactly 1), "
        f"bad signatures {h['webhook_invalid_signatures']}",
        f"  tags on each succeeded copy {h['copies_tagged_per_success']}, TagResources ok per copy "
        f"{h['tag_calls_ok_per_copy']}; shared {h['copies_shared_per_success']}, ModifyImageSharePermission ok "
        f"per copy {h['share_calls_ok_per_copy']}",
        f"events: {report['events']['cloudaudit_events']} CloudAudit events, {report['events']['deliveries']} "
        "deliveries (each twice, shuffled)",
        f"crashes: failpoints {c['failpoints']}, random SIGKILLs {c['random_sigkills']}, "
        f"worker exits {c['worker_exits']}",
        "RESULT: " + ("OK" if report["ok"] else "FAILED"),
    ]
    return "\n".join(lines)


USAGE = "usage: python -m imagesync_dev.chaos worker ROLE   (the runner: imagesync-dev chaos)"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "worker":
        return worker(args[1])
    if args in (["--help"], ["-h"]):
        print(USAGE)
        return 0
    raise SystemExit(USAGE)


if __name__ == "__main__":
    sys.exit(main())
