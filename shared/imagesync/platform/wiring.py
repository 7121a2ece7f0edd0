"""Builds the services a function needs from settings, once per container (reused by warm invocations).

Nothing is built at import time: a handler asks for services() on its first invocation, and tests or the demo
can install their own with use() (a different clock, a pre-built store).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..adapters.tencent import TencentCloud, TencentImages
from ..adapters.webhook import WebhookSender
from ..app.complete import CompleteReplica
from ..app.idempotency import Idempotent
from ..app.request_copies import RequestCopies
from ..app.start_copies import CopyStarter
from ..app.sweep import Sweep
from ..domain.validation import Limits
from ..ports import Clock, ImageService, Queue, StateStore
from ..settings import Settings, get_settings


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


@dataclass
class Services:
    settings: Settings
    store: StateStore
    images: ImageService
    queue: Queue
    clock: Clock
    cloud: TencentCloud | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def limits(self) -> Limits:
        s = self.settings
        return Limits(
            size_cap_gb=s.size_cap_gb,
            cross_border_allowed=s.cross_border_allowed,
            max_images=s.max_images_per_request,
            max_regions=s.max_regions_per_request,
        )

    def starter(self) -> CopyStarter:
        s = self.settings
        return CopyStarter(
            self.store, self.images, self.clock, first_check_seconds=s.first_check_seconds,
            retry_seconds=s.retry_seconds,
        )

    def request_copies(self) -> RequestCopies:
        return RequestCopies(
            self.store, self.images, self.clock, self.limits, self.starter(),
            timeout_seconds=self.settings.copy_timeout_seconds,
        )

    def sweep(self) -> Sweep:
        s = self.settings
        return Sweep(
            self.store, self.images, self.clock, self.starter(), self.queue, lease_seconds=s.lease_seconds,
            batch=s.sweep_batch, recheck_seconds=s.recheck_seconds, retry_seconds=s.retry_seconds,
        )

    def idempotent(self) -> Idempotent:
        return Idempotent(self.store, self.clock)

    def complete(self) -> CompleteReplica:
        s = self.settings
        webhook = (
            WebhookSender(s.webhook_url, s.webhook_secret, timeout=s.webhook_timeout_seconds) if s.webhook_url else None
        )
        return CompleteReplica(self.idempotent(), webhook)

    def begin_invocation(self) -> None:
        """Per invocation: fresh credentials (SCF rotates the role's temporary keys)."""
        if self.cloud is not None:
            self.cloud.refresh_credentials()


def build_store(settings: Settings) -> StateStore:
    from ..adapters.sql import SqlStateStore, make_engine

    url = settings.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return SqlStateStore(make_engine(url), auto_create=settings.migrate_on_start)


def build_queue(settings: Settings, cloud: TencentCloud) -> Queue:
    if settings.queue == "local":
        from ..adapters.queues.local import LocalQueue

        Path(settings.queue_path).parent.mkdir(parents=True, exist_ok=True)
        return LocalQueue(settings.queue_path, max_attempts=settings.queue_max_attempts)
    if settings.queue in ("tdmq-queue", "tdmq-topic"):
        from ..adapters.queues.tdmq import TdmqCmqQueue

        if not settings.tdmq_name:
            raise ValueError(f"IMAGESYNC_QUEUE={settings.queue} needs IMAGESYNC_TDMQ_NAME (the queue or topic)")
        client = cloud.client("tdmq", settings.tdmq_region or settings.region)
        if settings.queue == "tdmq-queue":
            return TdmqCmqQueue(client, queue_name=settings.tdmq_name)
        return TdmqCmqQueue(client, topic_name=settings.tdmq_name)
    raise ValueError(f"unknown IMAGESYNC_QUEUE {settings.queue!r}: local, tdmq-queue or tdmq-topic")


def build_services(settings: Settings | None = None, *, clock: Clock | None = None) -> Services:
    settings = settings or get_settings()
    cloud = TencentCloud(
        endpoint=settings.tencent_endpoint,
        rates={"SyncImages": settings.sync_rate_per_second, "DescribeImages": settings.describe_rate_per_second},
    )
    return Services(
        settings=settings,
        store=build_store(settings),
        images=TencentImages(cloud, home_region=settings.region),
        queue=build_queue(settings, cloud),
        clock=clock or SystemClock(),
        cloud=cloud,
    )


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
