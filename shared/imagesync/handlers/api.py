"""copy_request's HTTP API on powertools' REST resolver: routes, the models that document them, errors -> HTTP.

Every route is declared once with `@route(RouteSpec(...))`: the spec registers it with the resolver, runs the
request checks in a fixed order (401 credentials, 413 body size, 415 content type, 400 shape) and feeds the OpenAPI
document served at GET /openapi.json, so the document cannot drift from what is served. Logic stays in app/.

Why the OpenAPI document is built here from the models' JSON schemas rather than by powertools
(`enable_validation=True` + `get_openapi_json_schema`): not import time -- measured on the build machine it adds
~3 ms to the import and ~4 ms to the first request, ~2% of the cold-start floor -- but behaviour. Its validator
takes form and multipart bodies and a missing Content-Type as valid input (we answer 415), reports bad input as
422 (our 422 means a business rule refused the request; bad input is 400), and cannot derive a schema for routes
that return `Response` objects with per-status bodies (202/200/409), which this API needs.

Over 400 lines until issue 12's item 4 splits it into routes, response models and error mapping (one schema per
response, shared with views.py and the CLI's --json).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..domain import errors
from ..domain.models import CopyRequest, Origin
from ..domain.safeparse import Unparseable, loads_json
from ..domain.states import ReplicaState
from ..domain.types import ImageId, Region
from ..platform import auth
from ..platform.http import (
    Answer,
    BodyTooLarge,
    MethodNotAllowed,
    RouteNotFound,
    RouteSpec,
    UnsupportedMediaType,
    body_bytes,
    openapi_document,
    status_for,
    to_rest_event,
)
from ..platform.logs import logger
from ..views import replication_view
from ..wiring import services

# ------------------------------------------------------------------------------------------------ request models


class CopyRequestBody(BaseModel):
    """POST /replications."""

    model_config = ConfigDict(extra="forbid", title="CopyRequestBody")

    source_region: Region
    image_ids: list[ImageId] = Field(min_length=1, description="custom images in source_region")
    destination_regions: list[Region] = Field(min_length=1)
    name: str | None = Field(default=None, description="name of the copies (default: the source image's name)")
    dry_run: bool = Field(default=False, description="validate and ask Tencent's DryRun; record nothing")


class ListQuery(BaseModel):
    """GET /replications query: a replication is listed when one of its replicas matches every filter given."""

    model_config = ConfigDict(extra="forbid")

    state: ReplicaState | None = Field(default=None, description="a replica's state")
    image_id: ImageId | None = Field(default=None, description="a replica's source image")
    region: Region | None = Field(default=None, description="a replica's destination region, or the source region")
    limit: int = Field(default=50, ge=1, le=100, description="page size")
    cursor: str | None = Field(
        default=None, min_length=1, max_length=500, description="next_cursor of the previous page"
    )


# ----------------------------------------------------------------------------------------------- response models
# They mirror imagesync.views (the JSON every front end shares); tests validate served bodies against them.


class ReplicaError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    message: str | None = None


class HookRunOut(BaseModel):
    model_config = ConfigDict(extra="forbid", title="HookRun")

    hook: str = Field(description="the hook's key")
    type: str
    status: Literal["pending", "done", "failed", "skipped"] = Field(
        description="pending: failed, retried by redelivery; failed: gave up (dead-lettered)"
    )
    attempts: int
    error: ReplicaError | None
    result: dict[str, Any] | None
    updated_at: datetime


class ReplicaOut(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Replica")

    id: str
    source_image_id: str
    destination_region: str
    image_name: str
    state: ReplicaState
    destination_image_id: str | None
    sync_percent: int | None
    error: ReplicaError | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    deadline_at: datetime
    eta: datetime | None = Field(default=None, description="predicted end of a copy in flight (SyncPercent-based)")
    encrypted_from: dict[str, str | None] | None = Field(default=None, description="an encrypted copy's source")
    hooks: list[HookRunOut] | None = Field(default=None, description="hook outcomes (GET of one replication)")


class ReplicationOut(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Replication")

    id: str
    state: Literal["EMPTY", "PENDING", "WAITING_SOURCE", "COPYING", "SUCCEEDED", "PARTIAL", "FAILED"] = Field(
        description="the least advanced replica's state while any is active, else SUCCEEDED / PARTIAL / FAILED"
    )
    source_region: str
    image_ids: list[str]
    destination_regions: list[str]
    name: str | None
    dry_run: bool
    origin: Origin
    requested_by: str
    created_at: datetime
    replicas: list[ReplicaOut]


class ReplicationPage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ReplicationOut] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="stable machine-readable code, e.g. Region.CrossBorderNotAllowed")
    message: str
    details: dict[str, Any] | None = Field(
        default=None, description="e.g. `fields`: [{field, message}] on a 400, `allow` on a 405"
    )
    request_id: str | None = Field(default=None, description="on a 500: the id under which the error is logged")


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


class ConflictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail
    replication: ReplicationOut | None = Field(
        default=None, description="Replication.AlreadyInFlight: the replication that holds the copy"
    )


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["ok"]


class OpenApiDocument(BaseModel):
    """Stands for the document itself in its own description (an object; see the OpenAPI 3.1 specification)."""

    model_config = ConfigDict(extra="allow")

    openapi: str


# ------------------------------------------------------------------------------------------------------ resolver


class _Resolver(APIGatewayRestResolver):
    """The REST resolver with a last line of defence: whatever escapes the exception handlers is a logged 500."""

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return super().resolve(event, context)
        except Exception:  # the client gets a 500 without internals, never a stack trace
            request_id = _request_id(event, context)
            logger.exception("unhandled error outside the routes", extra={"request_id": request_id})
            body = {"error": {"code": "InternalError", "message": "internal error", "request_id": request_id}}
            return {
                "statusCode": 500,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps(body),
                "isBase64Encoded": False,
            }


app = _Resolver()


def handle(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """An SCF HTTP event answered in the resolver's (REST) shape; an event that cannot be read at all is a 400
    before routing and credentials (nothing in it can be trusted to authenticate or route)."""
    try:
        rest = to_rest_event(event)
    except errors.InvalidRequest as exc:
        logger.info("request refused", extra={"code": exc.code, "error": exc.message})
        return {
            "statusCode": 400,
            "headers": {"Content-Type": JSON},
            "body": json.dumps({"error": exc.to_dict()}),
            "isBase64Encoded": False,
        }
    return app.resolve(rest, context)

JSON = "application/json"
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,200}")
#: the audit trail's requested_by / actor columns hold 200 characters
MAX_CALLER = 200
BEARER = "bearerAuth"
SIGNATURE = "hmacSignature"
SECURITY_SCHEMES = {
    BEARER: {"type": "http", "scheme": "bearer", "description": "IMAGESYNC_API_TOKEN"},
    SIGNATURE: {
        "type": "apiKey",
        "in": "header",
        "name": "X-Imagesync-Signature",
        "description": (
            "sha256=<hex HMAC-SHA256(IMAGESYNC_API_HMAC_SECRET, \"<timestamp>\\n<METHOD>\\n<path>\\n<body>\")>, "
            "with X-Imagesync-Timestamp: <unix seconds> within 300 s of the server's clock"
        ),
    },
}
RESPONSE_HEADERS = {
    "WWW-Authenticate": {"description": "the accepted scheme", "schema": {"type": "string"}},
}

UNAUTHORIZED = Answer(
    "missing or bad credentials (Auth.Required, Auth.Invalid, Auth.SignatureExpired, Auth.NotConfigured)",
    ErrorBody,
    ("WWW-Authenticate",),
)
INTERNAL = Answer("internal error: code InternalError and the request id under which it is logged", ErrorBody)
#: any route: an SCF event holding what no route can read (answered before credentials; see `handle`)
UNREADABLE = Answer(
    "InvalidRequest: the event holds a value no route can read (a NUL or a lone surrogate in the path, a header or "
    "the query; nesting over 64 levels; a number beyond 64 bits)",
    ErrorBody,
)

#: every route served, in registration order (the OpenAPI document and the 405 check read it)
ROUTES: list[RouteSpec] = []
_PATTERNS: list[tuple[re.Pattern[str], str]] = []


def route(spec: RouteSpec) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Register a route: its checks run before the function, which gets the path parameters only."""
    resolver_path = re.sub(r"\{(\w+)\}", r"<\1>", spec.path)

    def register(func: Callable[..., Response]) -> Callable[..., Response]:
        def handle(**path_params: str) -> Response:
            _check(spec)
            return func(**path_params)

        handle.__name__ = func.__name__
        app.route(resolver_path, method=spec.method)(handle)
        ROUTES.append(spec)
        _PATTERNS.append((re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(spec.path)) + "$"), spec.method))
        return func

    return register


def _check(spec: RouteSpec) -> None:
    """401, 413, 415 in that order: nothing is parsed for an unauthenticated caller."""
    event = app.current_event
    settings = services().settings
    raw = body_bytes(event.body, event.is_base64_encoded) if spec.body is not None or spec.auth else b""
    if spec.auth:
        config = auth.AuthConfig(
            token=settings.api_token.get_secret_value(),
            hmac_secret=settings.api_hmac_secret.get_secret_value(),
            mode=settings.api_auth,
        )
        principal = auth.authenticate(config, event.headers, event.http_method, event.path, raw, time.time())
        logger.debug("authenticated", extra={"principal": principal})
    if spec.body is None:
        return
    limit = settings.api_max_body_bytes
    if len(raw) > limit:
        raise BodyTooLarge(f"the body is {len(raw)} bytes; at most {limit} are accepted", limit=limit)
    media_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media_type != JSON:
        raise UnsupportedMediaType(f"Content-Type must be {JSON}, not {media_type or 'missing'!r}")
    app.append_context(body=raw)


def _fields(exc: ValidationError, where: str) -> list[dict[str, str]]:
    return [
        {"field": ".".join([where, *(str(p) for p in e["loc"])]) if e["loc"] else where, "message": e["msg"]}
        for e in exc.errors()
    ]


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=JSON, body=json.dumps(body), headers=dict(headers or {}))


def _caller() -> str:
    """Who asked, for the audit trail: the client's address (how it authenticated goes to the log)."""
    identity = (app.current_event.raw_event.get("requestContext") or {}).get("identity") or {}
    caller = str(identity.get("sourceIp") or "http")
    if len(caller) > MAX_CALLER:  # only a direct invoker can send one: SCF puts the client's IP address there
        raise errors.InvalidRequest(f"the client address (x-scf-remote-addr, sourceIp) is over {MAX_CALLER} characters")
    return caller


# -------------------------------------------------------------------------------------------------------- routes


@route(
    RouteSpec(
        method="POST",
        path="/replications",
        operation_id="createReplication",
        summary="Validate and start copies of images into regions",
        body=CopyRequestBody,
        headers={"Idempotency-Key": "a retried request with the same key and body gets the first answer again"},
        answers={
            200: Answer("dry run: every check passed; nothing recorded", ReplicationOut),
            202: Answer("accepted: replicas recorded and copies started (tracked by status_sweep)", ReplicationOut),
            400: Answer("malformed JSON or fields (details.fields), or a request-shape rule", ErrorBody),
            401: UNAUTHORIZED,
            409: Answer(
                "a copy of one of the images into one of the regions is already in flight (with that replication), "
                "or the Idempotency-Key was used with another body",
                ConflictBody,
            ),
            413: Answer("the body exceeds IMAGESYNC_API_MAX_BODY_BYTES", ErrorBody),
            415: Answer("Content-Type is not application/json", ErrorBody),
            422: Answer("a business rule refused the request (its code says which)", ErrorBody),
            500: INTERNAL,
            503: Answer("the same Idempotency-Key is being processed; retry", ErrorBody),
        },
    )
)
def create_replication() -> Response:
    raw: bytes = app.context["body"]
    try:  # bounded: nesting, numbers, UTF-8, NUL and lone surrogates (domain.safeparse)
        data = loads_json(raw, max_bytes=services().settings.api_max_body_bytes) if raw else None
    except Unparseable as exc:
        raise errors.InvalidRequest(f"the body is not valid JSON: {exc.reason}") from exc
    try:
        body = CopyRequestBody.model_validate(data)
    except ValidationError as exc:
        raise errors.InvalidRequest(
            "the request body is not a valid replication request", fields=_fields(exc, "body")
        ) from exc
    request = CopyRequest(**body.model_dump(), origin=Origin.HTTP, requested_by=_caller())
    svc = services()

    def create() -> dict[str, Any]:
        result = svc.request_copies()(request)
        logger.append_keys(replication_id=result.replication.id)
        return {"status": 202 if result.created else 200, "body": replication_view(result.replication)}

    key = app.current_event.headers.get("idempotency-key")
    if key and not _IDEMPOTENCY_KEY.fullmatch(key):  # stored in a 255-character column with its "http:" prefix
        raise errors.InvalidRequest(
            "bad Idempotency-Key header",
            fields=[{"field": "headers.idempotency-key", "message": "1-200 printable ASCII characters"}],
        )
    if not key:
        answer = create()
    else:
        # A retried request with the same key makes one replication and gets the first answer again (503 while
        # the first runs, at most until its invocation's deadline).
        answer, _ = svc.idempotent().run(f"http:{key}", body.model_dump(mode="json"), create)
    return _json(answer["status"], answer["body"])


@route(
    RouteSpec(
        method="GET",
        path="/replications",
        operation_id="listReplications",
        summary="List replications, newest first, filtered and paginated",
        query=ListQuery,
        answers={
            200: Answer("a page of replications", ReplicationPage),
            400: Answer("a bad query parameter (details.fields), e.g. an unknown state or a bad cursor", ErrorBody),
            401: UNAUTHORIZED,
            500: INTERNAL,
        },
    )
)
def list_replications() -> Response:
    params = dict(app.current_event.query_string_parameters or {})
    try:
        query = ListQuery.model_validate(params)
    except ValidationError as exc:
        raise errors.InvalidRequest("bad query parameters", fields=_fields(exc, "query")) from exc
    try:
        page, next_cursor = services().store.list_replications(
            state=query.state, image_id=query.image_id, region=query.region, limit=query.limit, cursor=query.cursor
        )
    except ValueError as exc:  # the store's answer to a cursor it did not issue
        raise errors.InvalidRequest(
            "bad query parameters", fields=[{"field": "query.cursor", "message": "not a cursor this API issued"}]
        ) from exc
    return _json(200, {"items": [replication_view(r) for r in page], "next_cursor": next_cursor})


@route(
    RouteSpec(
        method="GET",
        path="/replications/{replication_id}",
        operation_id="getReplication",
        summary="One replication with its replicas",
        path_params={"replication_id": {"type": "string", "maxLength": 64}},
        answers={
            200: Answer("the replication", ReplicationOut),
            400: UNREADABLE,
            401: UNAUTHORIZED,
            404: Answer("no such replication (Replication.NotFound)", ErrorBody),
            500: INTERNAL,
        },
    )
)
def get_replication(replication_id: str) -> Response:
    store = services().store
    replication = store.get_replication(replication_id)
    if replication is None:
        raise errors.ReplicationNotFound(f"no replication {replication_id}")
    return _json(200, replication_view(replication, store.hook_runs([r.id for r in replication.replicas])))


@route(
    RouteSpec(
        method="GET",
        path="/health",
        operation_id="health",
        summary="Liveness; needs no credentials",
        auth=False,
        answers={200: Answer("the function answers", Health), 400: UNREADABLE, 500: INTERNAL},
    )
)
def health() -> Response:
    return _json(200, {"status": "ok"})


@route(
    RouteSpec(
        method="GET",
        path="/openapi.json",
        operation_id="openapi",
        summary="This document",
        answers={
            200: Answer("the OpenAPI 3.1 document", OpenApiDocument), 400: UNREADABLE, 401: UNAUTHORIZED, 500: INTERNAL
        },
    )
)
def openapi() -> Response:
    return _json(200, openapi_spec())


@lru_cache(maxsize=1)
def openapi_spec() -> dict[str, Any]:
    """The OpenAPI document of every route in ROUTES (built on first use: cold starts do not pay for it)."""
    return openapi_document(
        title="imagesync copy_request",
        version="1",
        description=(
            "Copies Tencent Cloud CVM custom images across regions. Every route but /health needs a bearer token "
            "or an HMAC request signature. A path served with another method answers 405 (Method.NotAllowed, with "
            "an Allow header); an unknown path answers 404 (Route.NotFound). Errors are "
            '{"error": {"code", "message", "details"?, "request_id"?}}.'
        ),
        routes=ROUTES,
        security_schemes=SECURITY_SCHEMES,
        response_headers=RESPONSE_HEADERS,
    )


# ------------------------------------------------------------------------------------------------ errors -> HTTP


@app.not_found
def _not_found(_: NotFoundError) -> Response:
    path = app.current_event.path
    allow = [method for pattern, method in _PATTERNS if pattern.match(path)]
    # The resolver's path parameters take only URI-safe and word characters: a path with others (found by
    # schemathesis, e.g. /replications/.\U0009e39e) reaches here with a method that IS served there, and
    # "405, Allow: GET" to a GET would be a lie. No resource can have such a name: 404.
    if allow and app.current_event.http_method not in allow:
        exc: errors.ImageSyncError = MethodNotAllowed(f"{app.current_event.http_method} is not served on {path}", allow)
        return _json(405, {"error": exc.to_dict()}, {"Allow": ", ".join(sorted(set(allow)))})
    exc = RouteNotFound(f"no route {path}")
    return _json(404, {"error": exc.to_dict()})


@app.exception_handler(errors.AlreadyInFlight)
def _in_flight(exc: errors.AlreadyInFlight) -> Response:
    existing = services().store.get_replication(exc.replication_id)
    body = {"error": exc.to_dict(), "replication": replication_view(existing) if existing else None}
    return _json(409, body)


@app.exception_handler(auth.Unauthorized)
def _unauthorized(exc: auth.Unauthorized) -> Response:
    logger.info("request refused", extra={"code": exc.code})
    return _json(401, {"error": exc.to_dict()}, {"WWW-Authenticate": 'Bearer realm="imagesync"'})


@app.exception_handler(errors.ImageSyncError)
def _domain_error(exc: errors.ImageSyncError) -> Response:
    status = status_for(exc)
    if status >= 500 and status != 503:
        return _internal(exc)
    return _json(status, {"error": exc.to_dict()})


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response:
    return _internal(exc)


def _internal(exc: Exception) -> Response:
    """500 without internals: a fixed message and the request id, under which the whole error is logged."""
    request_id = _request_id(app.current_event.raw_event, app.lambda_context)
    logger.exception(
        "request failed", extra={"request_id": request_id, "code": getattr(exc, "code", type(exc).__name__)}
    )
    return _json(500, {"error": {"code": "InternalError", "message": "internal error", "request_id": request_id}})


def _request_id(event: Mapping[str, Any], context: Any) -> str:
    """SCF's invocation id (on every log line), else the HTTP request's id, else a fresh one: never empty."""
    invocation_id = str(getattr(context, "request_id", "") or "")
    if invocation_id and invocation_id != "local":
        return invocation_id
    ctx = event.get("requestContext") if isinstance(event, Mapping) else None
    return str((ctx or {}).get("requestId") or "") or f"local-{uuid.uuid4()}"
