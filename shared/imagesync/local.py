"""Running the functions on one machine: the local queue's messages delivered to completion_hook's real handler
in the shape of the cloud's default link (an asynchronous invocation), and the emulator's clock for the demo."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .ports import ConsumableQueue, Delivery

log = logging.getLogger(__name__)


def async_event(delivery: Delivery) -> dict[str, Any]:
    """One delivery as the event completion_hook gets in the cloud: status_sweep's asynchronous invocation
    (adapters.queues.scf_async), carrying this one message as its stored JSON text (a form the envelope takes).

    The text is not decoded here: completion_hook's envelope decodes it with the bounded loader, so a body that
    cannot be read is that record's rejection (acknowledged), not a failed delivery retried until dead-lettered.
    """
    return {"source": "imagesync.outbox", "messages": [delivery.body]}


def deliver(
    queue: ConsumableQueue,
    handler: Callable[[dict[str, Any], dict[str, Any] | None], Any],
    *,
    max_messages: int = 100,
    visibility_timeout: float = 60.0,
    retry_delay: float = 1.0,
    on_dead: Callable[[list[Delivery]], Any] | None = None,
) -> dict[str, int]:
    """Deliver up to `max_messages` visible messages one per invocation; ack on success, nack on failure.

    Each invocation's deadline (the context's time_limit_in_ms) is the visibility timeout, as SCF's function
    timeout bounds a triggered invocation: whatever a delivery claims (its idempotency record) runs out when the
    message becomes visible again, so the redelivery of a crashed delivery is not refused as still in progress.
    Then `on_dead` gets the queue's dead letters (all of them, on every call: it must be cheap to repeat), so that
    a message the queue gave up on shows on its replica end (GiveUpHooks.dead_lettered).
    """
    counts = {"delivered": 0, "failed": 0}
    limit_ms = max(1, int(visibility_timeout * 1000))
    while counts["delivered"] + counts["failed"] < max_messages:
        batch = queue.receive(min(10, max_messages), visibility_timeout)
        if not batch:
            break
        for delivery in batch:
            context = {"request_id": delivery.receipt, "function_name": "completion_hook", "time_limit_in_ms": limit_ms}
            try:
                handler(async_event(delivery), context)
            except Exception as exc:
                log.warning("completion_hook failed on %s (try %d): %s", delivery.message_id, delivery.attempts, exc)
                error = f"{type(exc).__name__}: {exc}"[:2000]
                queue.nack(delivery, delay_seconds=retry_delay * delivery.attempts, error=error)
                counts["failed"] += 1
            else:
                queue.ack(delivery)
                counts["delivered"] += 1
    if on_dead is not None:
        dead = queue.dead_letters()
        if dead:
            on_dead(dead)
    return counts


class EmulatorClock:
    """The emulator's compressed time, so that timeouts, checks and durations run in emulated minutes."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now(), timezone.utc)
