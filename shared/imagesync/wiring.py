"""Builds the services a function needs from settings, once per container (reused by warm invocations).

Nothing is built at import time: a handler asks for services() on its first invocation, and tests or the demo
can install their own with use() (a different clock, a pre-built store).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .settings import Settings, get_settings

_log = logging.getLogger(__name__)

if TYPE_CHECKING:
    # imported where used (cold start, docs/benchmarks.md): an answer pays only for the modules it needs, e.g.
    # GET /health builds no SDK client, store, hook runner or webhook poster, and imports none of their modules
    from .adapters.tencent import TencentCloud
    from .app.cleanup import SourceCleanup
    from .app.complete import CompleteReplica
    from .app.first_look import FirstLook
    from .app.give_up import GiveUpHooks
    from .app.idempotency import Idempotent
    from .app.request_copies import RequestCopies
    from .app.retry import RetryFailed
    from .app.rules import RuleEngine
    from .app.start_copies import CopyStarter
    from .app.sweep import Sweep
    from .domain.hooks import HookSpec
    from .domain.rules import RuleSet
    from .domain.validation import Limits
    from .ports import Accounts, Clock, ImageAdmin, ImageService, Queue, Scheduler, StateStore

#: the name the global webhook's secret is looked up by (from settings, not the environment)
GLOBAL_WEBHOOK_SECRET = "IMAGESYNC_WEBHOOK_SECRET"


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


#: Services(scheduler=...) left out: built from settings on first use (None is "nothing to arm")
_FROM_SETTINGS: Any = object()


class Services:
    """What the functions, the CLI and the tests work with. The store, the image service, the completion link and
    the scheduler are built from settings on first use unless given (tests and the demo install their own, or
    assign them later): a cold start pays only for what its first answer touches (GET /health: none of them)."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: StateStore | None = None,
        images: ImageService | None = None,
        queue: Queue | None = None,
        clock: Clock | None = None,
        cloud: TencentCloud | None = None,
        extras: dict[str, Any] | None = None,
        wall: Clock | None = None,
        scheduler: Scheduler | None = _FROM_SETTINGS,
        make_cloud: Callable[[], TencentCloud] | None = None,
    ) -> None:
        """`make_cloud` builds the Tencent Cloud client on first use when no `cloud` is given (None: no cloud)."""
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._cloud_client, self._make_cloud = cloud, make_cloud
        self.extras: dict[str, Any] = {} if extras is None else extras
        #: the real clock, for every window about a process that can die (claims in progress, leases, redelivery
        #: windows); `clock` may be the emulator's compressed one
        self.wall: Clock = wall or SystemClock()
        self._store, self._images, self._queue, self._scheduler = store, images, queue, scheduler
        self._building = threading.RLock()  # a threaded server (imagesync serve) builds each part once

    @property
    def cloud(self) -> TencentCloud | None:
        """The Tencent Cloud client (built by `make_cloud` on first use: an answer that calls no cloud API, such
        as an idle sweep or GET /health, imports none of its modules); None without one."""
        if self._make_cloud is None:
            return self._cloud_client
        cloud: TencentCloud = self._once("_cloud_client", self._make_cloud)
        return cloud

    @cloud.setter
    def cloud(self, value: TencentCloud | None) -> None:
        self._cloud_client, self._make_cloud = value, None

    def _once(self, attr: str, build: Callable[[], Any], *, unset: Any = None) -> Any:
        """The part held in `attr`, built by `build` the first time it is asked for (still `unset`), once even
        when threads ask together."""
        if getattr(self, attr) is unset:
            with self._building:
                if getattr(self, attr) is unset:
                    setattr(self, attr, build())
        return getattr(self, attr)

    @property
    def store(self) -> StateStore:
        """The state table (the engine is made, and SQLite's schema checked, on first use)."""
        store: StateStore = self._once("_store", lambda: build_store(self.settings))
        return store

    @store.setter
    def store(self, value: StateStore) -> None:
        self._store = value

    @property
    def images(self) -> ImageService:
        def build() -> ImageService:
            from .adapters.cvm import TencentImages

            return TencentImages(self._cloud(), home_region=self.settings.region)

        images: ImageService = self._once("_images", build)
        return images

    @images.setter
    def images(self, value: ImageService) -> None:
        self._images = value

    @property
    def queue(self) -> Queue:
        """The completion link (IMAGESYNC_QUEUE)."""
        queue: Queue = self._once("_queue", lambda: build_queue(self.settings, self._cloud()))
        return queue

    @queue.setter
    def queue(self, value: Queue) -> None:
        self._queue = value

    @property
    def scheduler(self) -> Scheduler | None:
        """Wakes status_sweep (IMAGESYNC_SCHEDULER); None: nothing to arm (one machine, tests that drive the
        sweep)."""
        scheduler: Scheduler | None = self._once(
            "_scheduler",
            # IMAGESYNC_SCHEDULER=none needs no cloud client: not built for it
            lambda: (
                build_scheduler(self.settings, self.cloud) if self.settings.scheduler != "none" and self.cloud else None
            ),
            unset=_FROM_SETTINGS,
        )
        return scheduler

    @scheduler.setter
    def scheduler(self, value: Scheduler | None) -> None:
        self._scheduler = value

    def _cloud(self) -> TencentCloud:
        if self.cloud is None:
            raise RuntimeError("no Tencent Cloud client to build the cloud's services with")
        return self.cloud

    @property
    def limits(self) -> Limits:
        from .domain.validation import Limits

        s = self.settings
        return Limits(
            size_cap_gb=s.size_cap_gb,
            cross_border_allowed=s.cross_border_allowed,
            max_images=s.max_images_per_request,
            max_regions=s.max_regions_per_request,
        )

    def starter(self) -> CopyStarter:
        from .app.start_copies import CopyStarter

        s = self.settings
        return CopyStarter(
            replicas=self.store,
            audit=self.store,
            images=self.images,
            clock=self.clock,
            first_check_seconds=s.first_check_seconds,
            retry_seconds=s.retry_seconds,
            accounts=self.accounts(),
            first_look=self.first_look(),
        )

    def first_look(self) -> FirstLook:
        """When to first look at a new copy, from recent copies' durations; made once per container, so its cached
        read of them serves every invocation of the next few minutes."""
        if "first_look" not in self.extras:
            from .app.first_look import FirstLook

            s = self.settings
            self.extras["first_look"] = FirstLook(
                self.store, self.clock, floor_seconds=s.first_check_seconds, cap_seconds=s.max_check_seconds
            )
        first_look: FirstLook = self.extras["first_look"]
        return first_look

    def accounts(self) -> Accounts | None:
        """Other accounts (sharing, sts AssumeRole), made once per container: the assumed keys are cached in it."""
        if "accounts" not in self.extras:
            from .adapters.accounts import TencentAccounts
            from .adapters.cvm import TencentImageAdmin

            self.extras["accounts"] = (
                TencentAccounts(
                    self.cloud,
                    TencentImageAdmin(self.cloud, uin=self.settings.uin, home_region=self.settings.region),
                    home_region=self.settings.region,
                )
                if self.cloud is not None
                else None
            )
        accounts: Accounts | None = self.extras["accounts"]
        return accounts

    def request_copies(self) -> RequestCopies:
        from .app.request_copies import RequestCopies

        return RequestCopies(
            replicas=self.store,
            audit=self.store,
            images=self.images,
            clock=self.clock,
            limits=self.limits,
            starter=self.starter(),
            timeout_seconds=self.settings.copy_timeout_seconds,
            own_uin=self.settings.uin or None,
        )

    def retry_failed(self) -> RetryFailed:
        """POST /replications/{id}/retry and `imagesync retry`: new attempts for the copies that failed."""
        from .app.retry import RetryFailed

        return RetryFailed(
            replicas=self.store,
            audit=self.store,
            images=self.images,
            clock=self.clock,
            limits=self.limits,
            starter=self.starter(),
            timeout_seconds=self.settings.copy_timeout_seconds,
        )

    def sweep(self, *, reconcile: str = "auto", batch: int | None = None) -> Sweep:
        """`reconcile`: "auto" (the rules' pass once per IMAGESYNC_RECONCILE_INTERVAL_SECONDS), "force", "skip"."""
        from .app.sweep import Sweep

        s = self.settings
        st = self.store
        return Sweep(
            replicas=st,
            leases=st,
            outbox=st,
            idempotency=st,
            audit=st,
            # an idle sweep (nothing claimed) neither looks at a copy nor starts one: built when first used
            images=cast("ImageService", _OnFirstUse(lambda: self.images)),
            clock=self.clock,
            starter=cast("CopyStarter", _OnFirstUse(self.starter)),
            queue=_QueueOnFirstUse(self),
            lease_seconds=s.lease_seconds,
            batch=batch or s.sweep_batch,
            recheck_seconds=s.recheck_seconds,
            retry_seconds=s.retry_seconds,
            reconcile=self.reconcile_pass(reconcile),
            max_check_seconds=s.max_check_seconds,
            wall=self.wall,
            backstop=self.backstop(),
            follow_work=self.follow_work(),
            settle_seconds=s.settle_seconds or None,
            ride_along_seconds=s.ride_along_seconds,
            bets=self.bets(),
            first_check_seconds=s.first_check_seconds,
        )

    def bets(self) -> Callable[[str], bool] | None:
        """Whether the sweep's looks may go ahead of the look budget's slots in a region (IMAGESYNC_LOOK_AHEAD);
        None: always, as the lenient budget does."""
        look_ahead = self.settings.look_ahead
        if look_ahead == "always":
            return None
        if look_ahead == "never":
            return lambda region: False
        # read (and its module imported) only when a page of copies is looked at
        return lambda region: self.first_look().bets(region)

    def follow_work(self) -> Callable[[], dict[str, Any]] | None:
        """Arms status_sweep's timer at the earliest due check, or disarms it at rest (app.schedule); None
        without a scheduler. Its result ({"armed": ...} or {"error": ...}) never raises."""
        if self.scheduler is None:
            return None
        from .app.schedule import FollowWork

        s = self.settings
        return FollowWork(
            self.store,
            self.scheduler,
            self.clock,
            lead_seconds=s.schedule_lead_seconds,
            outbox_retry_seconds=s.recheck_seconds,
            backstop_due=self.backstop_due(),
        )

    def backstop_due(self) -> Callable[[datetime], datetime | None] | None:
        """When the sweep's backstop has an end to look at (None when IMAGESYNC_COMPLETION_DEADLINE_SECONDS is 0):
        ends published within the last window whose hooks are still open keep the sweep armed -- a look one recheck
        later while they are fresh (their hooks usually settle within seconds), else one window later (when the
        backstop records them Hook.Undelivered)."""
        window = timedelta(seconds=self.settings.completion_deadline_seconds)
        if window <= timedelta(0):
            return None
        recheck = timedelta(seconds=self.settings.recheck_seconds)
        everywhere = bool(self.global_hooks())

        def due(now: datetime) -> datetime | None:
            wall = self.wall.now()

            def unsettled(since: timedelta) -> bool:
                return bool(
                    self.store.undelivered_ends(
                        sent_before=wall, sent_after=wall - since, hooks_everywhere=everywhere, limit=1
                    )
                )

            if unsettled(2 * recheck):
                return now + recheck
            return now + window if unsettled(window) else None

        return due

    def give_up(self) -> GiveUpHooks:
        """Records the hooks of ends whose completion will not be delivered again as failed."""
        from .app.give_up import GiveUpHooks

        return GiveUpHooks(
            replicas=self.store,
            hook_runs=self.store,
            outbox=self.store,
            clock=self.wall,
            global_hooks=self.global_hooks(),
        )

    def backstop(self) -> Callable[[], int] | None:
        """The sweep's step recording Hook.Undelivered (None when IMAGESYNC_COMPLETION_DEADLINE_SECONDS is 0)."""
        window = self.settings.completion_deadline_seconds
        if window <= 0:
            return None
        give_up = self.give_up()
        return lambda: give_up.undelivered(window_seconds=window)

    def rules(self) -> RuleSet:
        """The replication rules (IMAGESYNC_RULES_FILE or IMAGESYNC_RULES_JSON), loaded once per container.

        Raises RulesInvalid (code Rules.Invalid) when they do not validate; nothing is cached then, so a fixed
        file is read on the next use.
        """
        if "rules" not in self.extras:
            self.extras["rules"] = load_rules(self.settings)
        rules: RuleSet = self.extras["rules"]
        return rules

    def rule_engine(self) -> RuleEngine:
        from .app.follow_source import FollowSource
        from .app.rules import RuleEngine

        s = self.settings
        return RuleEngine(
            self.rules(),
            replicas=self.store,
            records=self.store,
            images=self.images,
            clock=self.clock,
            request_copies=self.request_copies(),
            limits=self.limits,
            idempotent=self.idempotent(),
            reconcile_limit=s.reconcile_limit,
            reconcile_interval_seconds=s.reconcile_interval_seconds,
            image_wait_seconds=s.event_image_wait_seconds,
            follow=FollowSource(self.store, self.images, self.admin(), self.store, limit=max(1, s.reconcile_limit)),
        )

    def reconcile_pass(self, mode: str = "auto") -> Callable[[], dict[str, Any]] | None:
        """The sweep's reconcile step, or None without rules. It never raises: a bad rule file or a failed listing
        is reported in the sweep's result, and the sweep still tracks copies and publishes completions."""
        s = self.settings
        if mode == "skip" or not (s.rules_file or s.rules_json):
            return None

        def run() -> dict[str, Any]:
            try:
                result = self.rule_engine().reconcile(force=mode == "force")
                if result.get("ran"):  # in the same window: copies whose source is gone (app.cleanup)
                    result["cleanup"] = self.cleanup().reconcile()
                return result
            except Exception as exc:  # the sweep's own work must go on
                _log.exception("reconcile pass failed")
                code = getattr(exc, "cloud_code", None) or getattr(exc, "code", None) or type(exc).__name__
                return {"ran": False, "error": {"code": str(code), "message": str(exc)[:500]}}

        return run

    def cleanup(self) -> SourceCleanup:
        """Clean up with the source: the rules' `cleanup` on copies whose source was deleted."""
        from .app.cleanup import SourceCleanup

        return SourceCleanup(
            self.rules(), replicas=self.store, audit=self.store, images=self.images, admin=self.admin()
        )

    def idempotent(self) -> Idempotent:
        from .app.idempotency import Idempotent

        return Idempotent(self.store, self.wall)

    def admin(self) -> ImageAdmin:
        """What hooks do to finished copies (tag, share, launch, retention); extras["admin"] overrides it."""
        if "admin" in self.extras:
            admin: ImageAdmin = self.extras["admin"]
            return admin
        if self.cloud is None:
            raise RuntimeError("no Tencent Cloud client to act on images with")
        from .adapters.cvm import TencentImageAdmin

        return TencentImageAdmin(self.cloud, uin=self.settings.uin, home_region=self.settings.region)

    def global_hooks(self) -> list[HookSpec]:
        """IMAGESYNC_WEBHOOK_URL (the hook "webhook", signed with IMAGESYNC_WEBHOOK_SECRET), then IMAGESYNC_HOOKS."""
        from .domain.hooks import WebhookHook

        s = self.settings
        hooks: list[HookSpec] = []
        if s.webhook_url:
            secret_env = GLOBAL_WEBHOOK_SECRET if s.webhook_secret else None
            hooks.append(WebhookHook(url=s.webhook_url, secret_env=secret_env))
        return hooks + list(s.hooks)

    def complete(self) -> CompleteReplica:
        from .adapters.webhook import HttpWebhooks
        from .app.complete import CompleteReplica
        from .app.hooks import HookRunner
        from .app.hooks.encrypt import EncryptRunner
        from .app.hooks.family import FamilyRunner
        from .app.hooks.launch import LaunchRunner
        from .app.hooks.retention import RetentionRunner
        from .app.hooks.share import ShareRunner
        from .app.hooks.tag import TagRunner
        from .app.hooks.webhook import WebhookRunner

        s = self.settings
        secrets = {GLOBAL_WEBHOOK_SECRET: s.webhook_secret}

        def secret_for(name: str) -> str | None:
            # the global webhook's secret comes from settings; a rule's webhook names its own variable
            return secrets.get(name) or os.environ.get(name)

        images, admin = self.images, self.admin()
        runners: dict[str, HookRunner] = {
            "webhook": WebhookRunner(
                secret_for, HttpWebhooks(timeout=s.webhook_timeout_seconds, allow_private=s.webhook_allow_private)
            ),
            "tag": TagRunner(images, admin),
            "share": ShareRunner(admin),
            "encrypt": EncryptRunner(self.store, timeout_seconds=s.copy_timeout_seconds),
            "launch": LaunchRunner(admin),
            "retention": RetentionRunner(self.store, images, admin),
            "family": FamilyRunner(images, admin),
        }
        return CompleteReplica(
            self.idempotent(),
            replicas=self.store,
            hook_runs=self.store,
            clock=self.clock,
            runners=runners,
            global_hooks=self.global_hooks(),
            max_attempts=s.queue_max_attempts,
        )

    def begin_invocation(self) -> None:
        """Per invocation: fresh credentials (SCF rotates the role's temporary keys). A client not built yet has
        none to refresh."""
        if self._cloud_client is not None:
            self._cloud_client.refresh_credentials()


def load_rules(settings: Settings) -> RuleSet:
    """The rules from IMAGESYNC_RULES_FILE (.json = JSON, else YAML) or IMAGESYNC_RULES_JSON; none = empty."""
    from .domain.rules import RuleSet, RulesInvalid, loads_rules

    if settings.rules_file and settings.rules_json:
        raise RulesInvalid("set IMAGESYNC_RULES_FILE or IMAGESYNC_RULES_JSON, not both")
    if settings.rules_json:
        return loads_rules(settings.rules_json, fmt="json", source="IMAGESYNC_RULES_JSON")
    if settings.rules_file:
        path = Path(settings.rules_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RulesInvalid(f"{path}: cannot be read: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:  # else an event handler would take it for a transient error and retry
            raise RulesInvalid(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        return loads_rules(text, fmt="json" if path.suffix.lower() == ".json" else "yaml", source=str(path))
    return RuleSet()


def build_store(settings: Settings) -> StateStore:
    from .adapters.sql import SqlStateStore, make_engine

    url = settings.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return SqlStateStore(make_engine(url), auto_create=settings.migrate_on_start)


def link_settings_problem(settings: Settings) -> str | None:
    """What IMAGESYNC_QUEUE or IMAGESYNC_SCHEDULER needs and is not set (None: nothing). Checked when the
    services are made, though the link and the scheduler are built on first use: a resource left unnamed fails the
    container's first invocation, not a later one that happens to publish. Every cloud resource (the function to
    invoke, the bus, the timers) is named explicitly, never defaulted."""
    return _queue_problem(settings) or _scheduler_problem(settings)


def _queue_problem(settings: Settings) -> str | None:
    if settings.queue == "scf-async" and not settings.completion_function:
        return "IMAGESYNC_QUEUE=scf-async needs IMAGESYNC_COMPLETION_FUNCTION (completion_hook's name)"
    if settings.queue == "eventbridge" and not settings.event_bus_id:
        return "IMAGESYNC_QUEUE=eventbridge needs IMAGESYNC_EVENT_BUS_ID (the custom bus's id)"
    if settings.queue not in ("local", "scf-async", "eventbridge"):
        return f"unknown IMAGESYNC_QUEUE {settings.queue!r}: local, scf-async or eventbridge"
    return None


def _scheduler_problem(settings: Settings) -> str | None:
    if settings.scheduler == "none":
        return None
    missing = [
        name
        for name, value in (
            ("IMAGESYNC_SWEEP_FUNCTION", settings.sweep_function),
            ("IMAGESYNC_SWEEP_TIMER", settings.sweep_timer),
            ("IMAGESYNC_SWEEP_SAFETY_TIMER", settings.sweep_safety_timer),
        )
        if not value
    ]
    return f"IMAGESYNC_SCHEDULER=scf-timer needs {', '.join(missing)}" if missing else None


def build_queue(settings: Settings, cloud: TencentCloud) -> Queue:
    """The completion link IMAGESYNC_QUEUE names. Raises ValueError when a setting it needs is missing."""
    problem = _queue_problem(settings)
    if problem:
        raise ValueError(problem)
    if settings.queue == "local":
        from .adapters.queues.local import LocalQueue

        Path(settings.queue_path).parent.mkdir(parents=True, exist_ok=True)
        return LocalQueue(settings.queue_path, max_attempts=settings.queue_max_attempts)
    if settings.queue == "scf-async":
        from .adapters.queues.scf_async import ScfAsyncLink

        return ScfAsyncLink(
            LazyClient(cloud, "scf", settings.region),
            function_name=settings.completion_function,
            namespace=settings.completion_namespace,
            qualifier=settings.completion_qualifier,
            max_messages=settings.completion_batch_max,
        )
    from .adapters.queues.eventbridge import EventBridgeLink

    return EventBridgeLink(LazyClient(cloud, "eb", settings.region), event_bus_id=settings.event_bus_id)


def build_scheduler(settings: Settings, cloud: TencentCloud) -> Scheduler | None:
    """What IMAGESYNC_SCHEDULER names; ValueError when a trigger or function it needs is not named."""
    if settings.scheduler == "none":
        return None
    problem = _scheduler_problem(settings)
    if problem:
        raise ValueError(problem)
    from .adapters.sweep_timer import SCF_API_VERSION, SERVICE, ScfSweepTimer

    return ScfSweepTimer(
        LazyClient(cloud, SERVICE, settings.region, version=SCF_API_VERSION),
        function_name=settings.sweep_function,
        next_trigger=settings.sweep_timer,
        safety_trigger=settings.sweep_safety_timer,
        namespace=settings.sweep_namespace,
    )


class _QueueOnFirstUse:
    """The completion link as a sweep sees it: `services.queue`, looked up when the sweep first publishes. A sweep
    with an empty outbox (nothing ended) never builds it: the local queue opens and checks its own SQLite file."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        return self._services.queue.send(body, delay_seconds=delay_seconds)

    def __getattr__(self, name: str) -> Any:  # a BatchQueue's batches and send_batch
        return getattr(self._services.queue, name)


class _OnFirstUse:
    """A part built by `build` when first used (an attribute read), then kept: what a sweep may not need."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._part: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._part is None:
            self._part = self._build()
        return getattr(self._part, name)


class LazyClient:
    """An SDK client made on its first call (credentials are read then, not when the services are built: a
    function that never publishes, or a CLI command that only reads local state, needs no keys). With `version`,
    the SDK's generic CommonClient for that API version (TencentCloud.common_client) instead of the product's
    own client."""

    def __init__(self, cloud: TencentCloud, product: str, region: str, *, version: str | None = None) -> None:
        self._cloud, self._product, self._region, self._version = cloud, product, region, version

    def __getattr__(self, name: str) -> Any:
        if self._version is not None:
            return getattr(self._cloud.common_client(self._product, self._version, self._region), name)
        return getattr(self._cloud.client(self._product, self._region), name)


def build_services(settings: Settings | None = None, *, clock: Clock | None = None) -> Services:
    """The services from settings: the parts are built on first use (Services); the settings the completion
    link and the scheduler need are checked now (ValueError)."""
    settings = settings or get_settings()
    problem = link_settings_problem(settings)
    if problem:
        raise ValueError(problem)

    def make_cloud() -> TencentCloud:
        from .adapters.tencent import TencentCloud

        return TencentCloud(
            endpoint=settings.tencent_endpoint,
            rates={"SyncImages": settings.sync_rate_per_second, "DescribeImages": settings.describe_rate_per_second},
        )

    return Services(settings, clock=clock, make_cloud=make_cloud)


_lock = threading.Lock()
_services: Services | None = None


def services() -> Services:
    """The container's services, built on first use."""
    global _services
    with _lock:
        if _services is None:
            _services = build_services()
        return _services


def use(value: Services | None) -> None:
    """Install `value` as the container's services (None: rebuild from settings on next use)."""
    global _services
    with _lock:
        _services = value
