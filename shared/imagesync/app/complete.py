"""Use case: act once on each replica end (completion_hook). Messages arrive at least once."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from ..domain.models import CompletionMessage
from .idempotency import Idempotent

log = logging.getLogger(__name__)


class Notifier(Protocol):
    def send(self, event: str, payload: dict[str, Any]) -> int: ...


class CompleteReplica:
    def __init__(self, idempotent: Idempotent, webhook: Notifier | None) -> None:
        self.idempotent = idempotent
        self.webhook = webhook

    def __call__(self, message: CompletionMessage) -> dict[str, Any]:
        """Run the hooks for this replica end once; a failure raises so the queue redelivers the message."""
        payload = message.model_dump(mode="json", exclude={"message_id"})
        result, replayed = self.idempotent.run(
            f"completion:{message.replica_id}", payload, lambda: self._hooks(message, payload)
        )
        if replayed:
            log.info("replica %s end already handled; redelivery ignored", message.replica_id)
        return {**result, "replayed": replayed}

    def _hooks(self, message: CompletionMessage, payload: dict[str, Any]) -> dict[str, Any]:
        log.info(
            "replica ended",
            extra={
                "replica_id": message.replica_id,
                "replication_id": message.replication_id,
                "state": message.state.value,
                "source_image_id": message.source_image_id,
                "destination_region": message.destination_region,
                "destination_image_id": message.destination_image_id,
                "error_code": message.error_code,
            },
        )
        hooks: dict[str, Any] = {"log": "done"}
        if self.webhook is not None:
            status = self.webhook.send("replica.ended", payload)
            hooks["webhook"] = {"status": "done", "http_status": status}
        return {"replica_id": message.replica_id, "hooks": hooks}
