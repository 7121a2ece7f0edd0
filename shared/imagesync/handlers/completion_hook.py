"""completion_hook: runs the hooks once per replica end. Trigger: the completion queue (CMQ-shaped records)."""

from __future__ import annotations

from typing import Any

from ..domain.models import CompletionMessage
from ..platform.context import invocation
from ..platform.logs import logger
from ..platform.wiring import services


class DeliveryFailed(Exception):
    """Some records failed: raising makes the platform redeliver them (at least once; acted on once)."""

    def __init__(self, failures: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(failures)} record(s) failed: " + "; ".join(f["error"] for f in failures))
        self.failures = failures


def _bodies(event: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for record in event.get("Records") or []:
        cmq = record.get("CMQ") or {}
        out.append((str(cmq.get("msgId") or ""), str(cmq.get("msgBody") or "")))
    return out


def main_handler(event: dict[str, Any], context: dict[str, Any] | None) -> dict[str, Any]:
    with invocation(context, "completion_hook"):
        svc = services()
        svc.begin_invocation()
        complete = svc.complete()
        results, failures = [], []
        for msg_id, body in _bodies(event):
            try:
                message = CompletionMessage.model_validate_json(body)
                results.append(complete(message))
            except Exception as exc:  # each record fails alone; the rest are processed
                logger.exception("completion record failed", extra={"msg_id": msg_id})
                failures.append({"msg_id": msg_id, "error": f"{type(exc).__name__}: {exc}"})
        if failures:
            raise DeliveryFailed(failures)
        return {"processed": len(results), "results": results}
