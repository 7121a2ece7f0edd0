"""Every window about a process that can die runs on the real clock and ends at the invocation's deadline: the
sweep's leases, the idempotency claims of completion_hook and of copy_request's events. The emulated clock is
pushed days ahead to show that it plays no part."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from imagesync.domain.models import CompletionMessage, CopyRequest
from imagesync.handlers import completion_hook, status_sweep
from imagesync.local import async_event
from imagesync.ports import Delivery
from imagesync.runtime.deadline import time_left
from tests.conftest import load_event

TIMER = load_event("timer/every_minute.json")


class RecordingStore:
    """The real store, recording the claims made on it (a fake at the port: the store itself is not faked)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.leases: list[dict[str, Any]] = []
        self.claims: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def acquire(self, owner: str, now: datetime, lease_seconds: float) -> Any:
        self.leases.append({"lease_now": now, "lease_seconds": lease_seconds, "time_left": time_left()})
        return self._store.acquire(owner, now, lease_seconds)

    def due_in_flight(self, now: datetime, limit: int, **kw: Any) -> Any:
        self.leases[-1]["now"] = now  # what is due, read under the lease just taken
        return self._store.due_in_flight(now, limit, **kw)

    def idempotency_claim(self, key: str, payload_hash: str, **kw: Any) -> Any:
        self.claims.append({"key": key, "time_left": time_left(), **kw})
        return self._store.idempotency_claim(key, payload_hash, **kw)


def _request(svc: Any) -> Any:
    request = CopyRequest(source_region="ap-guangzhou", image_ids=["img-5ddkx3gh"], destination_regions=["ap-shanghai"])
    return svc.request_copies()(request).replication


def test_sweep_leases_last_until_its_deadline_on_the_real_clock(services: Any, emulator: Any) -> None:
    emulator.admin.set_time_scale(0)
    _request(services)
    emulator.admin.advance(3 * 86400)  # the emulated clock days ahead of the real one
    recording = RecordingStore(services.store)
    services.store = recording

    status_sweep.main_handler(TIMER, {"time_limit_in_ms": 20000})
    real = datetime.now(timezone.utc)
    lease = recording.leases[0]
    # the time left when the lease was computed, just before the claim: at most the limit, at least what was left
    assert lease["time_left"] <= lease["lease_seconds"] <= 20
    assert abs((lease["lease_now"] - real).total_seconds()) < 60  # the real clock...
    assert lease["now"] - real > timedelta(days=2)  # ...while what is due is read on the emulated one

    # no invocation deadline (the CLI's `imagesync sweep`): the sweep bounds itself to IMAGESYNC_LEASE_SECONDS
    recording.leases.clear()
    services.sweep()()
    assert recording.leases[0]["lease_seconds"] == services.settings.lease_seconds
    assert recording.leases[0]["time_left"] <= services.settings.lease_seconds


def test_completion_claim_ends_at_the_invocation_deadline(services: Any, emulator: Any) -> None:
    emulator.admin.set_time_scale(0)
    replication = _request(services)
    emulator.admin.advance(45 * 60)
    status_sweep.main_handler(TIMER, {"time_limit_in_ms": 20000})
    emulator.admin.advance(3 * 86400)
    recording = RecordingStore(services.store)
    services.store = recording
    message = CompletionMessage.for_replica(services.store.get_replication(replication.id).replicas[0])
    delivery = Delivery(message_id=message.message_id, body=message.model_dump_json(), receipt="r-1", attempts=1)

    completion_hook.main_handler(async_event(delivery), {"time_limit_in_ms": 7000})

    (claim,) = [c for c in recording.claims if c["key"].startswith("completion:")]
    held = (claim["in_progress_until"] - claim["now"]).total_seconds()
    assert claim["time_left"] <= held <= 7  # the time left just before the claim
    assert abs((claim["now"] - datetime.now(timezone.utc)).total_seconds()) < 60  # real time, not emulated
