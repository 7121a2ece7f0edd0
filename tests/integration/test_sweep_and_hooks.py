"""status_sweep and completion_hook in-process against the emulator, SQLite and the local queue."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from imagesync.adapters.webhook import SIGNATURE_HEADER, verify
from imagesync.domain.models import CompletionMessage
from imagesync.handlers import completion_hook, copy_request, status_sweep
from imagesync.local import deliver
from tests.conftest import load_event

TIMER = load_event("timer/every_minute.json")


def _start(body: dict[str, Any]) -> dict[str, Any]:
    event = load_event("http/function_url_create_replication.json")
    event["body"] = json.dumps({"source_region": "ap-guangzhou", **body})
    response = copy_request.main_handler(event, {})
    assert response["statusCode"] == 202, response["body"]
    return json.loads(response["body"])


def _sweep() -> dict[str, Any]:
    return status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})


def test_sweep_ends_copies_with_batched_describe_calls(services: Any, emulator: Any) -> None:
    replication = _start(
        {"image_ids": ["img-5ddkx3gh", "img-8c2rq9tw"], "destination_regions": ["ap-shanghai", "ap-beijing"]}
    )
    emulator.admin.clear_calls()
    emulator.admin.advance(45 * 60)  # every copy (10-30 emulated minutes) has ended
    report = _sweep()
    assert report["outcomes"] == {"SUCCEEDED": 4}
    assert report["published"] == 4
    describes = emulator.admin.calls(action="DescribeImages")
    assert sorted(c["region"] for c in describes) == ["ap-beijing", "ap-shanghai"]  # one per destination region
    stored = services.store.get_replication(replication["id"])
    assert {r.state.value for r in stored.replicas} == {"SUCCEEDED"}
    assert all(r.sync_percent == 100 and r.ended_at for r in stored.replicas)
    audit = services.store.audit_trail(replication["id"])
    assert [a["event"] for a in audit] == ["requested"] + ["replica_ended"] * 4
    assert audit[0]["origin"] == "http" and audit[0]["actor"] == "203.0.113.10"
    messages = [CompletionMessage.model_validate_json(d.body) for d in services.queue.receive(10, 30)]
    assert sorted(m.replica_id for m in messages) == sorted(r.id for r in stored.replicas)


def test_sweep_records_progress_then_nothing_is_due(services: Any, emulator: Any) -> None:
    emulator.admin.set_copy_duration(1200, 1200)
    _start({"image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]})
    emulator.admin.advance(600)
    report = _sweep()
    assert report["claimed"] == 1 and report["outcomes"] == {}
    replica = services.store.list_replications()[0][0].replicas[0]
    assert replica.state.value == "COPYING" and 40 <= (replica.sync_percent or 0) <= 60
    assert _sweep()["claimed"] == 0  # not due again until recheck_seconds have passed


def test_waiting_source_starts_when_the_source_is_ready(services: Any, emulator: Any) -> None:
    replication = _start({"image_ids": ["img-9fjm4wza"], "destination_regions": ["ap-nanjing"]})
    assert replication["replicas"][0]["state"] == "WAITING_SOURCE"
    _sweep()
    assert services.store.get_replication(replication["id"]).replicas[0].state.value == "WAITING_SOURCE"
    emulator.admin.advance(6 * 60)  # the image turns NORMAL 5 emulated minutes after the world starts
    report = _sweep()
    assert report["outcomes"].get("STARTED") == 1
    emulator.admin.advance(45 * 60)
    assert _sweep()["outcomes"] == {"SUCCEEDED": 1}


def test_failed_copy_and_timeout(services: Any, emulator: Any) -> None:
    emulator.admin.set_copy_failure_rate(1.0)
    failed = _start({"image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]})
    emulator.admin.advance(45 * 60)
    assert _sweep()["outcomes"] == {"FAILED": 1}
    replica = services.store.get_replication(failed["id"]).replicas[0]
    assert replica.error_code == "Copy.Failed"

    emulator.admin.set_copy_failure_rate(0.0)
    emulator.admin.set_copy_duration(3 * 3600, 3 * 3600)
    slow = _start({"image_ids": ["img-8c2rq9tw"], "destination_regions": ["ap-shanghai"]})
    emulator.admin.advance(2 * 3600 + 60)
    assert _sweep()["outcomes"] == {"TIMED_OUT": 1}
    replica = services.store.get_replication(slow["id"]).replicas[0]
    assert replica.state.value == "TIMED_OUT" and replica.error_code == "Copy.TimedOut"


@pytest.mark.slow  # the adapter retries the throttled SyncImages with real backoff sleeps (~5 s)
def test_pending_after_throttling_is_started_by_the_sweep(services: Any, emulator: Any) -> None:
    emulator.admin.script_fault("SyncImages", 10, code="RequestLimitExceeded")
    replication = _start({"image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]})
    assert replication["replicas"][0]["state"] == "PENDING"
    emulator.admin.clear_faults()
    emulator.admin.advance(120)
    assert _sweep()["outcomes"].get("STARTED") == 1
    assert services.store.get_replication(replication["id"]).replicas[0].state.value == "COPYING"


def test_dropped_sync_is_retried_by_the_sweep_into_one_copy(services: Any, emulator: Any) -> None:
    emulator.admin.script_fault("SyncImages", 1, kind="drop")
    replication = _start({"image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]})
    assert replication["replicas"][0]["state"] == "PENDING"
    emulator.admin.advance(120)
    _sweep()
    stored = services.store.get_replication(replication["id"]).replicas[0]
    assert stored.state.value == "COPYING"
    copies = services.images.find_by_name("ap-shanghai", "web-base-2026")
    assert [c.image_id for c in copies] == [stored.destination_image_id]


def test_lost_sync_answer_is_adopted_not_copied_twice(services: Any, emulator: Any) -> None:
    """A SyncImages whose answer was lost had started the copy: the sweep adopts it by name, no second copy."""
    emulator.admin.script_fault("SyncImages", 1, kind="drop")
    replication = _start({"image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]})
    assert replication["replicas"][0]["state"] == "PENDING"
    # what the lost request did on the cloud's side: the copy started
    started = services.images.sync_image("ap-guangzhou", "img-5ddkx3gh", ["ap-shanghai"], name=None, dry_run=False)
    emulator.admin.advance(45 * 60)  # the copy has even finished: the source is no longer busy
    emulator.admin.clear_calls()
    _sweep()
    stored = services.store.get_replication(replication["id"]).replicas[0]
    assert stored.destination_image_id == started["ap-shanghai"]
    assert emulator.admin.calls(action="SyncImages") == []
    assert len(services.images.find_by_name("ap-shanghai", "web-base-2026")) == 1


class Receiver:
    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_left = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.fail_left > 0:
                    outer.fail_left -= 1
                    self.send_response(503)
                else:
                    outer.received.append(
                        {"valid": verify("s3cret", body, self.headers[SIGNATURE_HEADER]), "body": json.loads(body)}
                    )
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver(services: Any) -> Iterator[Receiver]:
    r = Receiver()
    services.settings = services.settings.model_copy(update={"webhook_url": r.url, "webhook_secret": "s3cret"})
    yield r
    r.server.shutdown()


def test_completion_hook_delivers_signed_webhook_once(services: Any, emulator: Any, receiver: Receiver) -> None:
    _start({"image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai", "ap-beijing"]})
    emulator.admin.advance(45 * 60)
    _sweep()
    assert deliver(services.queue, completion_hook.main_handler) == {"delivered": 2, "failed": 0}
    assert len(receiver.received) == 2 and all(r["valid"] for r in receiver.received)
    assert {r["body"]["state"] for r in receiver.received} == {"SUCCEEDED"}
    # the outbox re-sends (a crash between publish and mark-sent): the hook does not act twice
    message = services.store.get_replication(services.store.list_replications()[0][0].id).replicas[0]
    services.queue.send(CompletionMessage.for_replica(message).model_dump_json())
    assert deliver(services.queue, completion_hook.main_handler) == {"delivered": 1, "failed": 0}
    assert len(receiver.received) == 2


def test_failed_webhook_is_retried_then_dead_lettered(services: Any, emulator: Any, receiver: Receiver) -> None:
    receiver.fail_left = 1
    _start({"image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]})
    emulator.admin.advance(45 * 60)
    _sweep()
    assert deliver(services.queue, completion_hook.main_handler, retry_delay=0) == {"delivered": 1, "failed": 1}
    assert len(receiver.received) == 1

    receiver.fail_left = 100
    _start({"image_ids": ["img-8c2rq9tw"], "destination_regions": ["ap-shanghai"]})
    emulator.admin.advance(45 * 60)
    _sweep()
    for _ in range(services.settings.queue_max_attempts + 1):
        deliver(services.queue, completion_hook.main_handler, retry_delay=0)
    dead = services.queue.dead_letters()
    assert len(dead) == 1
    assert json.loads(dead[0].body)["source_image_id"] == "img-8c2rq9tw"


def test_completion_hook_event_file(services: Any) -> None:
    result = completion_hook.main_handler(load_event("queue/cmq_queue_completion.json"), {})
    assert result["processed"] == 1
    assert result["results"][0]["hooks"] == {"log": "done"}
