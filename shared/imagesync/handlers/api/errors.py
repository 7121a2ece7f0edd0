"""Errors -> HTTP, in one place: the status of every error kind, the HTTP-only errors, and the resolver's handlers
that answer each error with its documented body (models.ErrorBody, models.ConflictBody).

A 500 never carries the error: a fixed message and the request id under which the whole error is logged.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from ...domain import errors
from ...platform import auth
from ...platform.logs import logger
from ...runtime.records import emit
from ...wiring import services
from . import page
from .models import ConflictBody, ErrorBody, ErrorDetail, ReplicationOut

JSON = "application/json"

#: Error kind -> HTTP status: the one place this mapping lives.
STATUS_BY_KIND = {
    "invalid": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method": 405,
    "conflict": 409,
    "too_large": 413,
    "media_type": 415,
    "rule": 422,
    "internal": 500,
    "retryable": 503,
}


def status_for(error: errors.ImageSyncError) -> int:
    return STATUS_BY_KIND.get(error.kind, 500)


class RouteNotFound(errors.ImageSyncError):
    code = "Route.NotFound"
    kind = "not_found"


class MethodNotAllowed(errors.ImageSyncError):
    code = "Method.NotAllowed"
    kind = "method"

    def __init__(self, message: str, allow: Iterable[str]) -> None:
        self.allow = sorted(set(allow))
        super().__init__(message, allow=self.allow)


class BodyTooLarge(errors.ImageSyncError):
    code = "Request.TooLarge"
    kind = "too_large"


class UnsupportedMediaType(errors.ImageSyncError):
    code = "Request.UnsupportedMediaType"
    kind = "media_type"


def json_response(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Response[str]:
    """An answer of the resolver: `body` is a response model's document()."""
    return Response(status_code=status, content_type=JSON, body=json.dumps(body), headers=dict(headers or {}))


def raw_response(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """An answer in the resolver's (REST) output shape, for what is answered outside it."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": JSON},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def request_id(event: Mapping[str, Any], context: Any) -> str:
    """SCF's invocation id (on every log line), else the HTTP request's id, else a fresh one: never empty."""
    invocation_id = str(getattr(context, "request_id", "") or "")
    if invocation_id and invocation_id != "local":
        return invocation_id
    ctx = event.get("requestContext") if isinstance(event, Mapping) else None
    return str((ctx or {}).get("requestId") or "") or f"local-{uuid.uuid4()}"


def internal_error(event: Mapping[str, Any], context: Any, exc: BaseException, message: str) -> dict[str, Any]:
    """The body of a 500 for `exc`, which is logged (with its traceback) under the request id the body names."""
    rid = request_id(event, context)
    logger.error(message, exc_info=exc, extra={"request_id": rid, "code": getattr(exc, "code", type(exc).__name__)})
    return ErrorBody.internal(rid).document()


def refused(event: Mapping[str, Any], status: int, code: str, error: str) -> None:
    """The operator's record of a refused request (runtime.records: event request_refused)."""
    ctx = event.get("requestContext") if isinstance(event, Mapping) else None
    identity = (ctx or {}).get("identity") or {}
    emit(
        "request_refused",
        logging.WARNING if status in (401, 413) else logging.INFO,
        "request refused",
        status=status,
        code=code,
        error=error,
        method=event.get("httpMethod"),
        path=str(event.get("path") or "")[:200],
        source_ip=identity.get("sourceIp"),
    )


def register(app: APIGatewayRestResolver, allowed: Callable[[str], list[str]]) -> None:
    """Install the error handlers on `app`; `allowed(path)` is the methods served on a path (for 404 vs 405)."""

    def not_found(_: NotFoundError) -> Response[str]:
        path = app.current_event.path
        allow = allowed(path)
        # The resolver's path parameters take only URI-safe and word characters: a path with others (found by
        # schemathesis, e.g. /replications/.\U0009e39e) reaches here with a method that IS served there, and
        # "405, Allow: GET" to a GET would be a lie. No resource can have such a name: 404.
        if allow and app.current_event.http_method not in allow:
            exc = MethodNotAllowed(f"{app.current_event.http_method} is not served on {path}", allow)
            refused(app.current_event.raw_event, 405, exc.code, exc.message)
            return json_response(405, ErrorBody.of(exc).document(), {"Allow": ", ".join(exc.allow)})
        missing = RouteNotFound(f"no route {path}")
        refused(app.current_event.raw_event, 404, missing.code, missing.message)
        return json_response(404, ErrorBody.of(missing).document())

    def in_flight(exc: errors.AlreadyInFlight) -> Response[str]:
        refused(app.current_event.raw_event, 409, exc.code, exc.message)
        existing = services().store.get_replication(exc.replication_id)
        body = ConflictBody(
            error=ErrorDetail(**exc.to_dict()), replication=ReplicationOut.of(existing) if existing else None
        )
        return json_response(409, body.document())

    def unauthorized(exc: auth.Unauthorized) -> Response[str]:
        refused(app.current_event.raw_event, 401, exc.code, exc.message)
        # a browser (the status page) gets Basic's login prompt: the API token is the password
        challenge = "Basic" if page.wants_html(app.current_event.headers.get("accept")) else "Bearer"
        return json_response(
            401, ErrorBody.of(exc).document(), {"WWW-Authenticate": f'{challenge} realm="imagesync", charset="UTF-8"'}
        )

    def domain_error(exc: errors.ImageSyncError) -> Response[str]:
        status = status_for(exc)
        if status >= 500 and status != 503:
            return unexpected(exc)
        refused(app.current_event.raw_event, status, exc.code, exc.message)
        return json_response(status, ErrorBody.of(exc).document())

    def unexpected(exc: Exception) -> Response[str]:
        body = internal_error(app.current_event.raw_event, app.lambda_context, exc, "request failed")
        return json_response(500, body)

    # an error gets the handler of the nearest class in its MRO (registration order does not matter)
    app.not_found(not_found)
    app.exception_handler(errors.AlreadyInFlight)(in_flight)
    app.exception_handler(auth.Unauthorized)(unauthorized)
    app.exception_handler(errors.ImageSyncError)(domain_error)
    app.exception_handler(Exception)(unexpected)
