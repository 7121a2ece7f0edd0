"""SCF HTTP events (Function URL, legacy API Gateway) <-> powertools' REST resolver.

The resolver speaks API Gateway REST (v1) events; SCF's shapes differ in small ways (queryString, header case,
list-valued headers, the response's `headers`), so both directions are normalised here and nowhere else. What the
API answers (routes, response models, errors -> HTTP status, the OpenAPI document) is imagesync.handlers.api.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from ..domain import errors
from ..domain.safeparse import Unparseable, check_value


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
