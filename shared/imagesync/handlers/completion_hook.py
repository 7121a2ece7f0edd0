"""completion_hook: runs the hooks once per replica end. Invoked by the completion link, in whatever shape it
delivers (status_sweep's asynchronous invocation, an EventBridge event, a local-queue delivery; CMQ and CKafka
records for anyone who still sends them: platform.envelopes).

A record that is not a valid completion message is rejected alone: logged as an error and reported in the result,
and acknowledged (it cannot become valid, so it is never retried). A record whose hooks fail raises after the
others are processed, so the platform redelivers it (SCF's async retries, then the function's dead letter;
locally IMAGESYNC_QUEUE_MAX_ATTEMPTS); the ones already done replay their stored result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..domain.models import CompletionMessage
from ..platform.context import invocation
from ..platform.envelopes import InvalidEvent, QueueEnvelope, describe_error
from ..platform.logs import logger
from ..wiring import services

if TYPE_CHECKING:
    from ..app.complete import CompleteReplica


class DeliveryFailed(Exception):
    """Some records failed: raising makes the platform redeliver them (at least once; acted on once)."""

    def __init__(self, failures: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(failures)} record(s) failed: " + "; ".join(f["error"] for f in failures))
        self.failures = failures


def main_handler(event: dict[str, Any], context: dict[str, Any] | None) -> dict[str, Any]:
    with invocation(context, "completion_hook"):
        try:
            records = QueueEnvelope.parse(event, CompletionMessage)
        except Exception as exc:  # a trigger wired to the wrong source, or an unreadable delivery: retrying cannot help
            if not isinstance(exc, InvalidEvent):  # parsing only: whatever fails, the delivery is unreadable
                logger.exception("queue delivery unreadable")
                exc = InvalidEvent(f"not a readable queue delivery: {describe_error(exc)}")
            logger.error("not a queue delivery; nothing processed", extra={"error": exc.to_dict()})
            return {"processed": 0, "results": [], "rejected": [{"id": "", "code": exc.code, "error": exc.message}]}
        svc = services()
        svc.begin_invocation()
        complete: CompleteReplica | None = None  # made for the first valid record: a rejection needs no hook runner
        results, failures, rejected = [], [], []
        for record in records:
            if record.value is None:
                logger.error("completion record rejected", extra={"msg_id": record.id, "error": record.error})
                rejected.append({"msg_id": record.id, "code": InvalidEvent.code, "error": record.error})
                continue
            try:
                complete = complete or svc.complete()
                results.append(complete(record.value))
            except Exception as exc:  # each record fails alone; the rest are processed
                logger.exception("completion record failed", extra={"msg_id": record.id})
                failures.append({"msg_id": record.id, "error": f"{type(exc).__name__}: {exc}"})
        if failures:
            raise DeliveryFailed(failures)
        return {"processed": len(results), "results": results, "rejected": rejected}
