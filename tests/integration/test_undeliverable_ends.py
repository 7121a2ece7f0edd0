"""A replica end whose completion message will not be delivered again always shows failed hooks, with the reason:
dead-lettered by the local queue (crashed deliveries, refused ones) -> Hook.DeadLettered; never delivered by the
cloud link within its redelivery window -> Hook.Undelivered, recorded once by the sweep's backstop. Real handlers,
the emulator, SQLite and the local queue (whose deliveries and visibility timeouts run on the real clock: waits are
on conditions, bounded)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest

from imagesync.adapters.queues.local import TIMEOUT_ERROR
from imagesync.app.give_up import DEAD_LETTERED, UNDELIVERED
from imagesync.app.idempotency import payload_hash
from imagesync.domain.hooks import TagHook
from imagesync.domain.models import CompletionMessage, CopyRequest
from imagesync.handlers import completion_hook, copy_request, status_sweep
from imagesync.local import deliver
from imagesync_dev.webhook_receiver import WebhookReceiver
from tests.conftest import load_event

TIMER = load_event("timer/every_minute.json")
UIN = "100000000001"
T = TypeVar("T")


def wait_for(probe: Callable[[], T], what: str, timeout: float = 60.0) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` real seconds (generous: the wait is
    for the queue's real-time visibility timeouts, never for the machine to be fast)."""
    end = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def ended(services: Any, emulator: Any) -> Iterator[Any]:
    """A copy that SUCCEEDED with two global hooks (a signed webhook, a tag), its completion in the local queue."""
    receiver = WebhookReceiver("s3cret")
    services.settings = services.settings.model_copy(
        update={"webhook_url": receiver.url, "webhook_secret": "s3cret", "uin": UIN, "hooks": [TagHook()]}
    )
    emulator.admin.set_time_scale(0)
    request = CopyRequest(source_region="ap-guangzhou", image_ids=["img-5ddkx3gh"], destination_regions=["ap-shanghai"])
    replication = services.request_copies()(request).replication
    emulator.admin.advance(45 * 60)
    assert status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})["published"] == 1
    services.extras["receiver"] = receiver
    yield services.store.get_replication(replication.id)
    receiver.close()  # idempotent


def _runs(services: Any, replica_id: str) -> dict[str, Any]:
    return {r.hook_key: r for r in services.store.hook_runs([replica_id])[replica_id]}


def _shown(replication_id: str) -> dict[str, Any]:
    """GET /replications/{id} through copy_request's handler: the replica's hooks as the API shows them."""
    event = load_event("http/apigw_get_replication.json")
    event["pathParameters"]["replication_id"] = replication_id
    event["path"] = f"/replications/{replication_id}"
    response = copy_request.main_handler(event, {})
    assert response["statusCode"] == 200, response["body"]
    return {h["hook"]: h for h in json.loads(response["body"])["replicas"][0]["hooks"]}


def test_crashed_deliveries_until_dead_lettered_show_failed_hooks(services: Any, ended: Any) -> None:
    replica = ended.replicas[0]
    queue = services.queue
    on_dead = services.give_up().dead_lettered
    # every delivery's worker dies before it acts (never acked): the queue redelivers after the visibility timeout
    for _ in range(queue.max_attempts):
        wait_for(lambda: queue.receive(1, visibility_timeout=0.05), "the message to be visible again")
    assert _runs(services, replica.id) == {}  # the symptom: SUCCEEDED, and no hook record at all

    # the next receive finds its last delivery timed out: dead-lettered, and deliver() records it on the end
    wait_for(
        lambda: deliver(queue, completion_hook.main_handler, on_dead=on_dead) and queue.dead_letters(),
        "the message to be dead-lettered",
    )

    runs = _runs(services, replica.id)
    assert {k: (r.status, r.error_code) for k, r in runs.items()} == {
        "webhook": ("failed", DEAD_LETTERED),
        "tag": ("failed", DEAD_LETTERED),
    }
    assert TIMEOUT_ERROR in runs["webhook"].error_message and "5 deliveries" in runs["webhook"].error_message
    shown = _shown(ended.id)
    assert {k: (h["status"], h["error"]["code"]) for k, h in shown.items()} == {
        "webhook": ("failed", DEAD_LETTERED),
        "tag": ("failed", DEAD_LETTERED),
    }
    # once: delivering again (the dead letters are read on every call) writes nothing new
    before = _runs(services, replica.id)
    deliver(queue, completion_hook.main_handler, on_dead=on_dead)
    assert _runs(services, replica.id) == before

    # not final: the message re-driven from the dead letters runs the hooks, once each
    assert queue.requeue_dead(queue.dead_letters()[0].message_id)
    assert deliver(queue, completion_hook.main_handler, on_dead=on_dead) == {"delivered": 1, "failed": 0}
    assert {k: r.status for k, r in _runs(services, replica.id).items()} == {"webhook": "done", "tag": "done"}
    assert len({p["delivery"] for p in services.extras["receiver"].received}) == 1


def test_refused_deliveries_until_dead_lettered_show_the_last_error(services: Any, ended: Any) -> None:
    replica = ended.replicas[0]
    # another invocation holds the end's claim (alive as far as anyone can tell): every delivery is refused
    now = datetime.now(timezone.utc)
    payload = CompletionMessage.for_replica(replica).model_dump(mode="json", exclude={"message_id"})
    services.store.idempotency_claim(
        f"completion:{replica.id}",
        payload_hash(payload),
        now=now,
        expires_at=now + timedelta(days=7),
        in_progress_until=now + timedelta(hours=1),
    )
    on_dead = services.give_up().dead_lettered
    for _ in range(services.queue.max_attempts):
        counts = deliver(services.queue, completion_hook.main_handler, max_messages=1, retry_delay=0, on_dead=on_dead)
        assert counts == {"delivered": 0, "failed": 1}
    runs = _runs(services, replica.id)
    assert {k: (r.status, r.error_code) for k, r in runs.items()} == {
        "webhook": ("failed", DEAD_LETTERED),
        "tag": ("failed", DEAD_LETTERED),
    }
    # the reason is the handler's own error, not a bare "nacked"
    assert "IdempotencyInProgress" in runs["tag"].error_message and "5 deliveries" in runs["tag"].error_message
    assert services.store.get_replica(replica.id).state.value == "SUCCEEDED"


class Shifted:
    """The real clock, `by` ahead: a sweep that runs hours after the completion was published."""

    def __init__(self, by: timedelta) -> None:
        self.by = by

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.by


def test_sweep_backstop_records_an_undelivered_end_once(services: Any, ended: Any) -> None:
    replica = ended.replicas[0]
    window = services.settings.completion_deadline_seconds
    assert window > 6 * 3600  # longer than SCF keeps an async event (MsgTTL at most 6 h)
    # the link lost the message (SCF's retries spent, the event dropped): the queue never delivers it
    assert services.queue.receive(1, visibility_timeout=3600)
    assert status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})["undelivered"] == 0  # not yet due

    services.wall = Shifted(timedelta(seconds=window + 60))
    report = status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})
    assert report["undelivered"] == 1
    runs = _runs(services, replica.id)
    assert {k: (r.status, r.error_code) for k, r in runs.items()} == {
        "webhook": ("failed", UNDELIVERED),
        "tag": ("failed", UNDELIVERED),
    }
    assert f"within {window} s" in runs["tag"].error_message
    shown = _shown(ended.id)
    assert {k: (h["status"], h["error"]["code"]) for k, h in shown.items()} == {
        "webhook": ("failed", UNDELIVERED),
        "tag": ("failed", UNDELIVERED),
    }
    # once
    assert status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})["undelivered"] == 0
    assert _runs(services, replica.id) == runs


def test_backstop_leaves_delivered_ends_and_open_hooks_inside_the_window(services: Any, ended: Any) -> None:
    replica = ended.replicas[0]
    services.extras["receiver"].close()  # the webhook fails: its record stays pending (retrying)
    assert deliver(services.queue, completion_hook.main_handler, max_messages=1, retry_delay=0)["failed"] == 1
    runs = _runs(services, replica.id)
    assert (runs["webhook"].status, runs["tag"].status) == ("pending", "done")
    services.wall = Shifted(timedelta(hours=1))  # inside the window: the link may still redeliver
    assert status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})["undelivered"] == 0
    assert _runs(services, replica.id) == runs
    services.wall = Shifted(timedelta(seconds=services.settings.completion_deadline_seconds + 1))
    assert status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})["undelivered"] == 1
    runs = _runs(services, replica.id)
    assert (runs["webhook"].status, runs["webhook"].error_code, runs["tag"].status) == ("failed", UNDELIVERED, "done")
