"""SCF HTTP events (Function URL, legacy API Gateway) <-> powertools' REST resolver, and errors -> HTTP status.

The resolver speaks API Gateway REST (v1) events; SCF's shapes differ in small ways (queryString, header case,
list-valued headers, the response's `headers`), so both directions are normalised here and nowhere else. Also here:
the one mapping from error kind to HTTP status, the HTTP-only errors (401 lives in platform.auth), and the OpenAPI
document builder (generic: routes and pydantic models in, an OpenAPI 3.1 document out).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ..domain import errors
from ..domain.safeparse import Unparseable, check_value

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


def is_http_event(event: Mapping[str, Any]) -> bool:
    if not isinstance(event, Mapping):
        return False
    ctx = event.get("requestContext")
    return "httpMethod" in event or isinstance(ctx, Mapping) and "httpMethod" in ctx


def _flatten(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    """Tolerant read of an event section: the official docs disagree on which are present, null or empty."""
    return value if isinstance(value, Mapping) else {}


def to_rest_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """An SCF HTTP event (Function URL or API Gateway) as powertools' APIGatewayRestResolver expects it.

    Header names come out lower-case whatever case they came in (a name sent twice in two cases: the later wins);
    list values are joined with "," (RFC 9110's combination of repeated fields). The body stays as sent: a JSON
    object body is re-serialised, a base64 one stays encoded with isBase64Encoded (see `body_bytes`).

    Raises InvalidRequest for an event holding values outside domain.safeparse's bounds (nesting, NUL, lone
    surrogates, non-finite or 64-bit-overflowing numbers): SCF builds these events from a real HTTP request, so
    only a direct invoker can send one, and no header, path or body in it can be read safely.
    """
    try:
        check_value(event)
    except Unparseable as exc:
        raise errors.InvalidRequest(f"the HTTP event is not readable: {exc.reason}") from exc
    ctx = dict(_mapping(event.get("requestContext")))
    method = str(event.get("httpMethod") or ctx.get("httpMethod") or "GET").upper()
    path = str(event.get("path") or ctx.get("path") or "/")
    raw_headers = {**_mapping(event.get("headerParameters")), **_mapping(event.get("headers"))}
    headers = {str(k).lower(): _flatten(v) for k, v in raw_headers.items()}
    multi_headers = {
        str(k).lower(): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in raw_headers.items()
    }
    query: dict[str, Any] = {}
    for source in (event.get("queryString"), event.get("queryStringParameters")):
        query.update(_mapping(source))
    body = event.get("body")
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    identity = _mapping(ctx.get("identity"))
    source_ip = (
        headers.get("x-scf-remote-addr")
        or (ctx.get("sourceIp") if isinstance(ctx.get("sourceIp"), str) else None)
        or (identity.get("sourceIp") if isinstance(identity.get("sourceIp"), str) else None)
        or ""
    )
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: _flatten(v) for k, v in query.items()} or None,
        "multiValueQueryStringParameters": {
            k: [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in query.items()
        }
        or None,
        "pathParameters": None,
        "stageVariables": event.get("stageVariables"),
        "requestContext": {
            "requestId": str(ctx.get("requestId") or headers.get("x-scf-request-id") or ""),
            "stage": str(ctx.get("stage") or "release"),
            "httpMethod": method,
            "path": path,
            "resourcePath": path,
            "identity": {"sourceIp": source_ip},
        },
        "body": body,
        "isBase64Encoded": bool(event.get("isBase64Encoded", False)),
    }


def body_bytes(body: str | None, is_base64: bool) -> bytes:
    """The request body as the client sent it (what a signature covers); raises InvalidRequest on bad base64."""
    if not body:
        return b""
    if not is_base64:
        return body.encode()
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise errors.InvalidRequest("the body is marked base64 but is not valid base64") from exc


def to_scf_response(response: Mapping[str, Any]) -> dict[str, Any]:
    """powertools' REST response -> SCF's {statusCode, headers (str values), body (str), isBase64Encoded}."""
    headers: dict[str, str] = {}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        headers[key] = ", ".join(values) if isinstance(values, list) else str(values)
    for key, value in (response.get("headers") or {}).items():
        headers[key] = _flatten(value)
    body = response.get("body") or ""
    if isinstance(body, bytes):
        body = base64.b64encode(body).decode()
    return {
        "statusCode": int(response.get("statusCode", 200)),
        "headers": headers,
        "body": body,
        "isBase64Encoded": bool(response.get("isBase64Encoded", False)),
    }


# ---------------------------------------------------------------------------------------------------- OpenAPI


@dataclass(frozen=True)
class Answer:
    """One documented response of a route: its description and body model (None: no body)."""

    description: str
    model: type[BaseModel] | None = None
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteSpec:
    """What a route serves, as the OpenAPI document tells it. `path` uses OpenAPI's {name} placeholders."""

    method: str
    path: str
    operation_id: str
    summary: str
    answers: Mapping[int, Answer]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # optional request header -> description
    auth: bool = True


REF_TEMPLATE = "#/components/schemas/{model}"


def openapi_document(
    *,
    title: str,
    version: str,
    description: str,
    routes: Iterable[RouteSpec],
    security_schemes: Mapping[str, Mapping[str, Any]],
    response_headers: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """An OpenAPI 3.1 document for `routes`, every schema generated by pydantic from the models that serve them.

    3.1, not 3.0: pydantic v2 emits JSON Schema 2020-12 (`anyOf` with `{"type": "null"}`, `const`), which is
    OpenAPI 3.1's schema dialect and not valid 3.0. Request models are rendered in validation mode, response models
    in serialization mode (what the server sends).
    """
    from pydantic.json_schema import JsonSchemaMode, models_json_schema  # only when the document is built

    routes = list(routes)
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for route in routes:
        if route.body is not None:
            wanted.append((route.body, "validation"))
        wanted.extend((a.model, "serialization") for a in route.answers.values() if a.model is not None)
    unique = list(dict.fromkeys(wanted))
    refs, defs = models_json_schema(unique, ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    # a query model is exploded into parameters, not referenced; the types its fields refer to join the others
    query_schemas = {
        r.query: r.query.model_json_schema(ref_template=REF_TEMPLATE) for r in routes if r.query is not None
    }
    for schema in query_schemas.values():
        for name, definition in schema.get("$defs", {}).items():
            schemas.setdefault(name, definition)

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": dict(schema)}
            for name, schema in route.path_params.items()
        ]
        if route.query is not None:
            qs = query_schemas[route.query]
            required = set(qs.get("required", []))
            for name, prop in qs.get("properties", {}).items():
                prop = dict(prop)
                description = prop.pop("description", None)
                param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
                if description:
                    param["description"] = description
                parameters.append(param)
        parameters.extend(
            {"name": name, "in": "header", "required": False, "schema": {"type": "string"}, "description": text}
            for name, text in route.headers.items()
        )
        operation: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary}
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
            }
        responses: dict[str, Any] = {}
        for status, answer in sorted(route.answers.items()):
            item: dict[str, Any] = {"description": answer.description}
            if answer.model is not None:
                item["content"] = {"application/json": {"schema": refs[(answer.model, "serialization")]}}
            if answer.headers:
                item["headers"] = {h: dict((response_headers or {})[h]) for h in answer.headers}
            responses[str(status)] = item
        operation["responses"] = responses
        operation["security"] = [{name: []} for name in security_schemes] if route.auth else []
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {k: dict(v) for k, v in security_schemes.items()}},
    }
