"""copy_request's HTTP API on powertools' REST resolver: the routes.

Every route is declared once with `@route(RouteSpec(...))`: the spec registers it with the resolver, runs the
request checks in a fixed order (401 credentials, 413 body size, 415 content type, 400 shape) and feeds the OpenAPI
document served at GET /openapi.json (openapi.py), so the document cannot drift from what is served. Each route
answers with a response model (models.py) built from what the use case or the store returned; every error is
answered by errors.py. Logic stays in app/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from pydantic import ValidationError

from ...domain import errors
from ...domain.models import CopyRequest, Origin
from ...domain.safeparse import Unparseable, loads_json
from ...platform import auth
from ...platform.http import body_bytes, to_rest_event
from ...platform.logs import logger
from ...wiring import services
from . import errors as http_errors
from . import page
from .errors import JSON, BodyTooLarge, UnsupportedMediaType, json_response
from .models import (
    ConflictBody,
    CopyRequestBody,
    ErrorBody,
    Health,
    ListQuery,
    OpenApiDocument,
    ReplicationOut,
    ReplicationPage,
    RetryBody,
    RetryOut,
)
from .openapi import Answer, RouteSpec, openapi_document


class _Resolver(APIGatewayRestResolver):
    """The REST resolver with a last line of defence: whatever escapes the exception handlers is a logged 500."""

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        try:
            return super().resolve(event, context)
        except Exception as exc:  # the client gets a 500 without internals, never a stack trace
            body = http_errors.internal_error(event, context, exc, "unhandled error outside the routes")
            return http_errors.raw_response(500, body)


app = _Resolver()


def handle(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """An SCF HTTP event answered in the resolver's (REST) shape; an event that cannot be read at all is a 400
    before routing and credentials (nothing in it can be trusted to authenticate or route)."""
    try:
        rest = to_rest_event(event)
    except errors.InvalidRequest as exc:
        http_errors.refused({}, 400, exc.code, exc.message)  # nothing in the event can be read safely
        return http_errors.raw_response(400, ErrorBody.of(exc).document())
    return app.resolve(rest, context)


_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,200}")
#: the audit trail's requested_by / actor columns hold 200 characters
MAX_CALLER = 200

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
_PATTERNS: list[re.Pattern[str]] = []


def route(spec: RouteSpec) -> Callable[[Callable[..., Response[str]]], Callable[..., Response[str]]]:
    """Register a route: its checks run before the function, which gets the path parameters only."""
    resolver_path = re.sub(r"\{(\w+)\}", r"<\1>", spec.path)

    def register(func: Callable[..., Response[str]]) -> Callable[..., Response[str]]:
        def checked(**path_params: str) -> Response[str]:
            _check(spec)
            return func(**path_params)

        checked.__name__ = func.__name__
        app.route(resolver_path, method=spec.method)(checked)
        ROUTES.append(spec)
        _PATTERNS.append(re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(spec.path)) + "$"))
        return func

    return register


def routes_for(path: str) -> list[RouteSpec]:
    """The routes whose path template matches `path`, whatever their method."""
    return [spec for spec, pattern in zip(ROUTES, _PATTERNS, strict=True) if pattern.match(path)]


http_errors.register(app, lambda path: [spec.method for spec in routes_for(path)])


def _check(spec: RouteSpec) -> None:
    """401, 413, 415 in that order: nothing is parsed for an unauthenticated caller."""
    event = app.current_event
    settings = services().settings
    raw = body_bytes(event.body, bool(event.is_base64_encoded)) if spec.body is not None or spec.auth else b""
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
    if not raw and not spec.body_required and not media_type:
        app.context["body"] = raw  # an optional body left out
        return
    if media_type != JSON:
        raise UnsupportedMediaType(f"Content-Type must be {JSON}, not {media_type or 'missing'!r}")
    app.context["body"] = raw  # for the route (what append_context does)


def _fields(exc: ValidationError, where: str) -> list[dict[str, str]]:
    return [
        {"field": ".".join([where, *(str(p) for p in e["loc"])]) if e["loc"] else where, "message": e["msg"]}
        for e in exc.errors()
    ]


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
def create_replication() -> Response[str]:
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
    request = CopyRequest(**body.request_fields(), origin=Origin.HTTP, requested_by=_caller())
    svc = services()

    def create() -> dict[str, Any]:
        result = svc.request_copies()(request)
        logger.append_keys(replication_id=result.replication.id)
        return {"status": 202 if result.created else 200, "body": ReplicationOut.of(result.replication).document()}

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
        # the first runs, at most until its invocation's deadline). The stored answer is the document sent.
        answer, _ = svc.idempotent().run(f"http:{key}", body.model_dump(mode="json"), create)
    return json_response(answer["status"], answer["body"])


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
def list_replications() -> Response[str]:
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
    answer = ReplicationPage(items=[ReplicationOut.of(r) for r in page], next_cursor=next_cursor)
    return json_response(200, answer.document())


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
def get_replication(replication_id: str) -> Response[str]:
    store = services().store
    replication = store.get_replication(replication_id)
    if replication is None:
        raise errors.ReplicationNotFound(f"no replication {replication_id}")
    hook_runs = store.hook_runs([r.id for r in replication.replicas])
    if page.wants_html(app.current_event.headers.get("accept")):  # a browser: the status page of this one
        return _html(200, page.render([replication], hook_runs=hook_runs, single=True))
    cleanup = [a["detail"] for a in store.audit_trail(replication.id) if a["event"] == "cleanup"]
    return json_response(200, ReplicationOut.of(replication, hook_runs, cleanup=cleanup).document())


@route(
    RouteSpec(
        method="POST",
        path="/replications/{replication_id}/retry",
        operation_id="retryReplication",
        summary="Start new attempts for the copies that ended FAILED or TIMED_OUT (or the ones named)",
        path_params={"replication_id": {"type": "string", "maxLength": 64}},
        body=RetryBody,
        body_required=False,
        headers={"Idempotency-Key": "a retried request with the same key and body gets the first answer again"},
        answers={
            200: Answer("nothing new to start: the retries named (or all) are already running", RetryOut),
            202: Answer("new attempts recorded and started; earlier attempts kept (retried_by)", RetryOut),
            400: Answer(
                "malformed JSON or fields (details.fields), or a region or replica not in the replication "
                "(Retry.NotInReplication)",
                ErrorBody,
            ),
            401: UNAUTHORIZED,
            404: Answer("no such replication (Replication.NotFound)", ErrorBody),
            409: Answer(
                "Retry.NothingToRetry (no failed copy), Retry.AlreadySucceeded (a named copy succeeded), "
                "Retry.StillActive (a named copy's first attempt is in flight), Replication.AlreadyInFlight "
                "(another replication copies it now), or the Idempotency-Key was used with another body",
                ConflictBody,
            ),
            413: Answer("the body exceeds IMAGESYNC_API_MAX_BODY_BYTES", ErrorBody),
            415: Answer("Content-Type is not application/json", ErrorBody),
            422: Answer("the source or the region policy refuses the copy now (its code says which)", ErrorBody),
            500: INTERNAL,
            503: Answer("the same Idempotency-Key is being processed; retry", ErrorBody),
        },
    )
)
def retry_replication(replication_id: str) -> Response[str]:
    raw: bytes = app.context["body"]
    try:
        data = loads_json(raw, max_bytes=services().settings.api_max_body_bytes) if raw else {}
    except Unparseable as exc:
        raise errors.InvalidRequest(f"the body is not valid JSON: {exc.reason}") from exc
    try:
        body = RetryBody.model_validate(data)
    except ValidationError as exc:
        raise errors.InvalidRequest(
            "the request body is not a valid retry request", fields=_fields(exc, "body")
        ) from exc
    svc = services()
    caller = _caller()

    def retry() -> dict[str, Any]:
        result = svc.retry_failed()(
            replication_id,
            regions=body.regions,
            replica_ids=body.replica_ids,
            requested_by=caller,
            origin=Origin.HTTP.value,
        )
        logger.append_keys(replication_id=replication_id)
        answer = RetryOut.of(result.replication, result.started, result.running)
        return {"status": 202 if result.started else 200, "body": answer.document()}

    key = app.current_event.headers.get("idempotency-key")
    if key and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise errors.InvalidRequest(
            "bad Idempotency-Key header",
            fields=[{"field": "headers.idempotency-key", "message": "1-200 printable ASCII characters"}],
        )
    if not key:
        answer = retry()
    else:
        payload = {"replication_id": replication_id, **body.model_dump(mode="json")}
        answer, _ = svc.idempotent().run(f"http:retry:{key}", payload, retry)
    return json_response(answer["status"], answer["body"])


@route(
    RouteSpec(
        method="GET",
        path="/",
        operation_id="statusPage",
        summary="The status page (text/html): replications newest first, filtered and paginated as GET /replications",
        query=ListQuery,
        answers={
            200: Answer("the page (text/html; ETag, Content-Security-Policy)"),
            304: Answer("If-None-Match named the page's current ETag"),
            400: Answer("a bad query parameter: the page with the error and no rows (text/html)"),
            401: UNAUTHORIZED,
            500: INTERNAL,
        },
    )
)
def status_page() -> Response[str]:
    params = dict(app.current_event.query_string_parameters or {})
    filters = {k: v for k, v in params.items() if v}  # the filter form sends empty fields for "any"
    try:
        query = ListQuery.model_validate(filters)
        items, next_cursor = services().store.list_replications(
            state=query.state, image_id=query.image_id, region=query.region, limit=query.limit, cursor=query.cursor
        )
    except (ValidationError, ValueError) as exc:  # a bad filter or a cursor this API did not issue
        problems = (
            [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
            if isinstance(exc, ValidationError)
            else ["cursor: not a cursor this API issued"]
        )
        message = "bad filter: " + "; ".join(problems)
        http_errors.refused(app.current_event.raw_event, 400, errors.InvalidRequest.code, message)
        return _html(400, page.render([], filters=filters, error=message))
    return _html(200, page.render(items, filters=filters, next_cursor=next_cursor))


def _html(status: int, body: str) -> Response[str]:
    """A page answer: 304 without a body when the browser already has this one (If-None-Match)."""
    headers = page.headers(body)
    if status == 200 and page.not_modified(app.current_event.headers.get("if-none-match"), body):
        return Response(status_code=304, body="", headers=headers)
    return Response(status_code=status, content_type=page.HTML, body=body, headers=headers)


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
def health() -> Response[str]:
    return json_response(200, Health(status="ok").document())


@route(
    RouteSpec(
        method="GET",
        path="/openapi.json",
        operation_id="openapi",
        summary="This document",
        answers={
            200: Answer("the OpenAPI 3.1 document", OpenApiDocument),
            400: UNREADABLE,
            401: UNAUTHORIZED,
            500: INTERNAL,
        },
    )
)
def openapi() -> Response[str]:
    return json_response(200, openapi_spec())


@lru_cache(maxsize=1)
def openapi_spec() -> dict[str, Any]:
    """The OpenAPI document of every route in ROUTES (built on first use: cold starts do not pay for it)."""
    return openapi_document(ROUTES)
