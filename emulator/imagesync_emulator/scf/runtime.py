"""The emulated SCF runtime: warm worker pools, sync and async invocations, retries, dead letters, timers.

Threads: callers invoke synchronously in their own thread; one scheduler thread fires timers (on the EMULATED
clock) and starts due async attempts, each in its own thread. Locks: ``self.lock`` guards the runtime's state and is
never held while waiting on a worker, and never while taking ``world.lock`` (the world lock may be held when
``invoke_async`` is called, by EventBridge routing: that order, world then runtime, is the only one).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from ..world import World
from .model import RETRY_DELAY_S, AsyncEvent, FunctionSpec, Invocation, Trigger
from .worker import Worker

TICK_S = 0.02  # real seconds between two scheduler passes
MAX_RECORDS = 2000  # invocation records kept per function
MAX_LOG_CHARS = 64 * 1024


class FunctionNotFound(KeyError):
    pass


class _Pool:
    """The warm instances of one function, at most ``cap`` at once."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.idle: list[Worker] = []
        self.busy: set[Worker] = set()
        self.starting = 0
        self.retired: set[Worker] = set()  # busy instances of an older configuration: stopped when released
        self.cond = threading.Condition()

    def has_room(self) -> bool:
        with self.cond:
            return bool(self.idle) or len(self.busy) + self.starting < self.cap

    def acquire(self, spawn: Callable[[], Worker]) -> tuple[Worker, bool]:
        with self.cond:
            while True:
                self.idle = [w for w in self.idle if w.alive]
                if self.idle:
                    worker = self.idle.pop()
                    self.busy.add(worker)
                    return worker, False
                if len(self.busy) + self.starting < self.cap:
                    self.starting += 1
                    break
                self.cond.wait(1.0)
        try:
            worker = spawn()
        finally:
            with self.cond:
                self.starting -= 1
        with self.cond:
            self.busy.add(worker)
        return worker, True

    def release(self, worker: Worker) -> None:
        with self.cond:
            self.busy.discard(worker)
            retired = worker in self.retired
            self.retired.discard(worker)
            if worker.alive and not retired:
                self.idle.append(worker)
            self.cond.notify_all()
        if retired:
            worker.kill()

    def all(self) -> list[Worker]:
        with self.cond:
            return [*self.idle, *self.busy]


class ScfRuntime:
    def __init__(
        self,
        world: World,
        *,
        concurrency: int = 4,
        timeout_scale: float = 1.0,
        endpoint_env: Sequence[str] = ("IMAGESYNC_TENCENT_ENDPOINT",),
        work_dir: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.world = world
        self.clock = world.clock
        self.concurrency = concurrency
        self.timeout_scale = timeout_scale
        self.endpoint_env = tuple(endpoint_env)
        self.host = host  # where Function URLs listen (the emulator's own address)
        self.endpoint = ""
        self._own_dir = work_dir is None
        self._work_dir = None if work_dir is None else Path(work_dir)  # made in start() when not given
        self.lock = threading.RLock()
        self.functions: dict[tuple[str, str], FunctionSpec] = {}
        self.pools: dict[tuple[str, str], _Pool] = {}
        self.triggers: list[Trigger] = []
        self.records: dict[tuple[str, str], list[Invocation]] = {}
        self.queue: list[AsyncEvent] = []
        self.dead_letters: list[dict] = []
        self.url_servers: dict[tuple[str, str, str], object] = {}  # (ns, function, trigger) -> FunctionUrlServer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log_seq = 0

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def start(self, endpoint: str) -> None:
        self.endpoint = endpoint
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="emulated-scf-"))
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="emulated-scf", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for server in list(self.url_servers.values()):
            server.stop()  # type: ignore[attr-defined]
        for pool in list(self.pools.values()):
            for worker in pool.all():
                worker.kill()
        if self._own_dir and self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)

    @property
    def work_dir(self) -> Path:
        """Where deploys are laid out and logs written (a temporary folder removed by stop(), unless given)."""
        if self._work_dir is None:
            raise RuntimeError("the SCF runtime is not started")
        return self._work_dir

    # ---- functions -----------------------------------------------------------------------------------------
    def create_function(self, spec: FunctionSpec) -> None:
        key = (spec.namespace, spec.name)
        with self.lock:
            if key in self.functions:
                raise ValueError(f"function {spec.name} already exists in namespace {spec.namespace}")
            self.functions[key] = spec
            self.pools[key] = _Pool(self.concurrency)
            self.records[key] = []

    def function(self, name: str, namespace: str = "default") -> FunctionSpec:
        with self.lock:
            spec = self.functions.get((namespace, name))
        if spec is None:
            raise FunctionNotFound(name)
        return spec

    def retire_idle(self, name: str, namespace: str = "default") -> None:
        """Stop the function's idle instances: after a configuration change the next invocation starts cold."""
        pool = self.pools[(namespace, name)]
        with pool.cond:
            idle, pool.idle = pool.idle, []
            pool.retired.update(pool.busy)  # busy ones finish their invocation, then stop
        for worker in idle:
            worker.kill()

    def add_trigger(self, trigger: Trigger) -> None:
        from .function_url import FunctionUrlServer

        with self.lock:
            if trigger.type == "http":
                server = FunctionUrlServer(self, trigger.function, trigger.namespace, self.host)
                trigger.url = server.url
                self.url_servers[(trigger.namespace, trigger.function, trigger.name)] = server
            self.triggers.append(trigger)

    def remove_trigger(self, trigger: Trigger) -> None:
        with self.lock:
            self.triggers.remove(trigger)
            server = self.url_servers.pop((trigger.namespace, trigger.function, trigger.name), None)
        if server is not None:
            server.stop()  # type: ignore[attr-defined]

    # ---- environment and context ---------------------------------------------------------------------------
    def _account(self):  # noqa: ANN202 - the world's Account
        with self.world.lock:
            return self.world.account_by_name("default") or next(iter(self.world.accounts.values()))

    def _platform_env(self, spec: FunctionSpec) -> dict[str, str]:
        acct = self._account()
        return {
            "TENCENTCLOUD_REGION": spec.region,
            "TENCENTCLOUD_APPID": str(acct.app_id),
            "TENCENTCLOUD_UIN": acct.uin,
            "SCF_FUNCTIONNAME": spec.name,
            "SCF_FUNCTIONVERSION": "$LATEST",
            "SCF_NAMESPACE": spec.namespace,
            "SCF_RUNTIME": spec.runtime,
            "TENCENTCLOUD_RUNENV": "SCF",
        }

    def _spawn(self, spec: FunctionSpec) -> Worker:
        keys = self.world.credentials.issue_temporary(self._account())
        home = self.work_dir / "tmp" / spec.name
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(home),
            "TMPDIR": str(home),
            **spec.environment,
            **self._platform_env(spec),
            "TENCENTCLOUD_SECRETID": keys["secret_id"],
            "TENCENTCLOUD_SECRETKEY": keys["secret_key"],
            "TENCENTCLOUD_SESSIONTOKEN": keys["token"],
            **{name: self.endpoint for name in self.endpoint_env},
        }
        return Worker(spec.code_dir, spec.layer_dir, spec.handler, env)

    def _context(self, spec: FunctionSpec, request_id: str) -> dict:
        acct = self._account()
        visible = {**spec.environment, **self._platform_env(spec)}
        return {
            "request_id": request_id,
            "function_name": spec.name,
            "function_version": "$LATEST",
            "namespace": spec.namespace,
            "memory_limit_in_mb": spec.memory_mb,
            # when the instance is killed (real time): the function's own deadline must match it
            "time_limit_in_ms": round(spec.timeout_s * self.timeout_scale * 1000),
            "environment": json.dumps(visible),
            "environ": ";".join(f"{k}={v}" for k, v in visible.items()),
            "tencentcloud_region": spec.region,
            "tencentcloud_appid": str(acct.app_id),
            "tencentcloud_uin": acct.uin,
        }

    # ---- invoking ------------------------------------------------------------------------------------------
    def invoke(
        self,
        name: str,
        event: object,
        *,
        namespace: str = "default",
        invocation_type: str = "RequestResponse",
        source: str = "api",
        request_id: str | None = None,
        attempt: int = 1,
        env: dict[str, str] | None = None,
    ) -> Invocation:
        """Run one invocation to its end in the calling thread (waiting for a free instance under the cap)."""
        record, kind = self._run(
            name, event, namespace, invocation_type, source, request_id=request_id, attempt=attempt, env=env
        )
        with self.lock:
            record.outcome = kind
        return record

    def _run(
        self,
        name: str,
        event: object,
        namespace: str,
        invocation_type: str,
        source: str,
        *,
        request_id: str | None,
        attempt: int,
        env: dict[str, str] | None,
    ) -> tuple[Invocation, str]:
        """Run one invocation to its end; the record has everything but its outcome, still "running", and the
        outcome kind is returned for the caller to show. Readers take an outcome other than "running" to mean the
        attempt is over in every respect (its result, error and log filled in; for an async event, its retry
        scheduled or its dead letter sent): a test that saw a failed attempt and then stepped the clock found the
        retry scheduled a minute after the STEPPED time (never due) when the record showed its outcome first."""
        spec = self.function(name, namespace)
        key = (namespace, name)
        pool = self.pools[key]
        record = Invocation(
            request_id or str(uuid.uuid4()), name, invocation_type, source, attempt, started_at=self.clock.now()
        )
        with self.lock:
            self._log_seq += 1
            log_path = self.work_dir / "logs" / f"{self._log_seq:06d}-{record.request_id}.log"
            records = self.records[key]
            records.append(record)
            del records[:-MAX_RECORDS]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.touch()
        worker, record.cold = pool.acquire(lambda: self._spawn(spec))
        record.worker_pid = worker.pid
        started = time.monotonic()
        try:
            outcome = worker.invoke(
                event, self._context(spec, record.request_id), log_path, spec.timeout_s * self.timeout_scale, env
            )
        finally:
            pool.release(worker)
        record.duration_ms = round((time.monotonic() - started) * 1000, 3)
        record.result, record.error = outcome.result, outcome.error
        record.log = log_path.read_text("utf-8", errors="replace")[-MAX_LOG_CHARS:]
        return record, outcome.kind

    def invoke_async(self, name: str, event: object, *, namespace: str = "default", source: str = "api") -> str:
        """Queue one async invocation; returns its request id. Never blocks (callers may hold the world lock)."""
        self.function(name, namespace)
        now = self.clock.now()
        item = AsyncEvent(str(uuid.uuid4()), name, namespace, event, source, first_at=now, due_at=now)
        with self.lock:
            self.queue.append(item)
        return item.request_id

    # ---- the scheduler -------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            now = self.clock.now()
            try:
                self._fire_timers(now)
                self._start_due(now)
            except Exception as exc:  # a bug must not stop every timer and retry: record it and go on
                with self.world.lock:
                    self.world.history.append({"event": "scf_scheduler_error", "error": repr(exc)})

    def _fire_timers(self, now: float) -> None:
        with self.lock:
            timers = [t for t in self.triggers if t.type == "timer" and t.enabled and t.cron is not None]
        for t in timers:
            # A clock step that skips several slots fires once, for the latest one (no burst of catch-up runs).
            slot = t.cron.latest_in(t.checked_until, now) if now > t.checked_until else None  # type: ignore
            t.checked_until = max(t.checked_until, now)
            if slot is None:
                continue
            with self.lock:
                waiting = any(e.request_id == t.pending and not e.running and e.attempts == 0 for e in self.queue)
            if waiting:  # the previous firing has not even started: the functions cannot keep up; skip this slot
                t.skipped += 1
                continue
            event = {
                "Type": "Timer",
                "TriggerName": t.name,
                "Time": datetime.fromtimestamp(slot, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Message": t.custom_argument,
            }
            t.pending = self.invoke_async(t.function, event, namespace=t.namespace, source="timer")

    def _start_due(self, now: float) -> None:
        with self.lock:
            due = [e for e in self.queue if not e.running and e.due_at <= now]
            starting = []
            for item in due:
                if self.pools[(item.namespace, item.function)].has_room():
                    item.running = True
                    starting.append(item)
        for item in starting:
            threading.Thread(target=self._attempt, args=(item,), name=f"scf-async-{item.function}", daemon=True).start()

    def _attempt(self, item: AsyncEvent) -> None:
        item.attempts += 1
        env = {"TRIGGER_SRC": "timer"} if item.source == "timer" else None
        try:
            spec = self.function(item.function, item.namespace)
            record, kind = self._run(
                item.function,
                item.event,
                item.namespace,
                "Event",
                item.source,
                request_id=item.request_id,
                attempt=item.attempts,
                env=env,
            )
        except Exception as exc:  # the platform failed (e.g. an instance could not start): the event is kept
            with self.lock:
                item.running = False
                item.due_at = self.clock.now() + RETRY_DELAY_S
                item.last_error = {"errorType": "PlatformError", "errorMessage": repr(exc)}
            return
        # The attempt's outcome is shown only with the event's next step settled (see _run).
        now = self.clock.now()
        with self.lock:
            if kind == "ok":
                self.queue.remove(item)
                item.running = False
                record.outcome = kind
                return
            item.last_error = record.error
            if item.attempts <= spec.retry_num and now + RETRY_DELAY_S - item.first_at <= spec.msg_ttl_s:
                item.due_at = now + RETRY_DELAY_S
                item.running = False
                record.outcome = kind
                return
        # The last attempt failed: the event stays queued (running) until its dead letter is sent; the dead letter,
        # the outcome and the empty queue show at once. (_dead_letter takes the world lock: not under ours.)
        self._dead_letter(spec, item, record, kind)

    # ---- dead letters --------------------------------------------------------------------------------------
    def _dead_letter(self, spec: FunctionSpec, item: AsyncEvent, record: Invocation, outcome: str) -> None:
        """The async event failed its last attempt: into the function's dead letter queue/topic, if it has one;
        then the dead letter, the attempt's outcome and the event's leaving the queue show together."""
        acct = self._account()
        error = item.last_error or {}
        message = {
            "RequestId": item.request_id,
            "ErrorCode": -1,
            "ErrorMessage": "".join(error.get("stackTrace") or []) or error.get("errorMessage", ""),
            "Body": {
                "AppId": acct.app_id,
                "Uin": acct.uin,
                "SubAccountUin": acct.uin,
                "RequestSource": {"timer": "TRIGGER_TIMER", "eventbridge": "EB"}.get(item.source, "API"),
                "FunctionName": spec.name,
                "Namespace": spec.namespace,
                "Qualifier": "$DEFAULT",
                "InvocationType": "Event",
                "ClientContext": json.dumps(item.event),
                "LogType": "",
                "TimeStampForInvoker": str(int(item.first_at * 1000)),
                "RequestId": item.request_id,
                "PushTime": datetime.fromtimestamp(item.first_at, tz=timezone.utc).isoformat(),
                "RetryNum": item.attempts - 1,
                "Ttl": spec.msg_ttl_s,
            },
        }
        entry = {
            "function": spec.name,
            "namespace": spec.namespace,
            "request_id": item.request_id,
            "attempts": item.attempts,
            "outcome": outcome,
            "error": error,
            "event": item.event,
            "dead_letter": spec.dead_letter,
            "delivered": False,
            "message": message,
        }
        if spec.dead_letter:
            entry["delivered"] = self._send_to_cmq(spec, json.dumps(message, ensure_ascii=False))
        with self.lock:
            self.dead_letters.append(entry)
            self.queue.remove(item)
            item.running = False
            record.outcome = outcome

    def _send_to_cmq(self, spec: FunctionSpec, body: str) -> bool:
        dlq = spec.dead_letter or {}
        kind, name = str(dlq.get("Type", "")).upper(), str(dlq.get("Name", ""))
        acct = self._account()
        with self.world.lock:
            w = self.world
            key = (acct.uin, spec.region, name)
            msg = {
                "body": body,
                "tags": [],
                "delay_seconds": 0,
                "msg_id": w.new_id("msg-", 16),
                "account": acct.uin,
                "region": spec.region,
                "sent_at": self.clock.now(),
                "request_id": str(uuid.uuid4()),
                "dead_letter_of": spec.name,
            }
            if kind == "QUEUE" and key in w.queues:
                w.outbox.append({"queue": name, **msg})
                return True
            topic = w.topics.get(key) if kind == "TOPIC" else None
            if topic is None:
                return False
            w.outbox.append({"topic": name, **msg})
            for sub in topic.subscriptions:
                if sub.protocol == "queue":
                    w.outbox.append({"queue": sub.endpoint, "via_topic": name, **msg})
            return True

    # ---- observing and steering ----------------------------------------------------------------------------
    def invocations(self, name: str | None = None, namespace: str = "default") -> list[dict]:
        with self.lock:
            keys = [k for k in self.records if name is None or k == (namespace, name)]
            return [r.public() for k in keys for r in self.records[k]]

    def kill_worker(self, name: str, namespace: str = "default") -> int | None:
        """Kill one BUSY instance of the function (mid-invocation); returns its pid, or None if none is busy."""
        pool = self.pools.get((namespace, name))
        if pool is None:
            raise FunctionNotFound(name)
        with pool.cond:
            busy = sorted(pool.busy, key=lambda w: w.pid)
        if not busy:
            return None
        busy[0].signal_kill()
        return busy[0].pid

    def workers(self, name: str, namespace: str = "default") -> dict:
        pool = self.pools.get((namespace, name))
        if pool is None:
            raise FunctionNotFound(name)
        with pool.cond:
            return {"idle": [w.pid for w in pool.idle if w.alive], "busy": [w.pid for w in pool.busy]}

    def pending(self) -> list[dict]:
        with self.lock:
            return [
                {
                    "request_id": e.request_id,
                    "function": e.function,
                    "source": e.source,
                    "attempts": e.attempts,
                    "due_at": e.due_at,
                    "running": e.running,
                }
                for e in self.queue
            ]

    def idle(self) -> bool:
        """No async event queued or running."""
        with self.lock:
            return not self.queue
