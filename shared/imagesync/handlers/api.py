"""copy_request's HTTP API on powertools' REST resolver (routes, and domain errors mapped to HTTP in one place)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..domain import errors
from ..domain.models import CopyRequest, Origin
from ..domain.types import ImageId, Region
from ..platform.http import status_for
from ..platform.logs import logger
from ..platform.wiring import services
from ..views import replication_view

app = APIGatewayRestResolver()


class CopyRequestBody(BaseModel):
    """POST /replications."""

    model_config = ConfigDict(extra="forbid")

    source_region: Region
    image_ids: list[ImageId] = Field(min_length=1)
    destination_regions: list[Region] = Field(min_length=1)
    name: str | None = None
    dry_run: bool = False


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


def _caller() -> str:
    identity = (app.current_event.raw_event.get("requestContext") or {}).get("identity") or {}
    return str(identity.get("sourceIp") or "http")


@app.post("/replications")
def create_replication() -> Response:
    raw = app.current_event.body or ""
    try:
        data = json.loads(raw) if raw else None
    except json.JSONDecodeError as exc:
        raise errors.InvalidRequest(f"body is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    try:
        body = CopyRequestBody.model_validate(data)
    except ValidationError as exc:
        fields = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise errors.InvalidRequest("the request body is not a valid replication request", fields=fields) from exc
    request = CopyRequest(**body.model_dump(), origin=Origin.HTTP, requested_by=_caller())
    svc = services()

    def create() -> dict[str, Any]:
        result = svc.request_copies()(request)
        logger.append_keys(replication_id=result.replication.id)
        return {"status": 202 if result.created else 200, "body": replication_view(result.replication)}

    key = app.current_event.headers.get("idempotency-key") or app.current_event.headers.get("Idempotency-Key")
    if not key:
        answer = create()
    else:
        # A retried request with the same key makes one replication and gets the first answer again.
        answer, _ = svc.idempotent().run(f"http:{key}", body.model_dump(mode="json"), create, in_progress_seconds=60)
    return _json(answer["status"], answer["body"])


@app.get("/replications/<replication_id>")
def get_replication(replication_id: str) -> Response:
    replication = services().store.get_replication(replication_id)
    if replication is None:
        raise errors.ReplicationNotFound(f"no replication {replication_id}")
    return _json(200, replication_view(replication))


@app.get("/health")
def health() -> Response:
    return _json(200, {"status": "ok"})


@app.exception_handler(errors.AlreadyInFlight)
def _in_flight(exc: errors.AlreadyInFlight) -> Response:
    existing = services().store.get_replication(exc.replication_id)
    body = {"error": exc.to_dict(), "replication": replication_view(existing) if existing else None}
    return _json(409, body)


@app.exception_handler(errors.ImageSyncError)
def _domain_error(exc: errors.ImageSyncError) -> Response:
    status = status_for(exc)
    if status >= 500:
        logger.exception("request failed", extra={"code": exc.code})
        return _json(status, {"error": {"code": exc.code, "message": "internal error", "request_id": _req_id()}})
    return _json(status, {"error": exc.to_dict()})


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response:
    logger.exception("unhandled error")
    return _json(500, {"error": {"code": "InternalError", "message": "internal error", "request_id": _req_id()}})


def _req_id() -> str:
    return str((app.current_event.raw_event.get("requestContext") or {}).get("requestId") or "")
