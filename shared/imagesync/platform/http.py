"""SCF HTTP events (Function URL, legacy API Gateway) <-> powertools' REST resolver, and domain errors -> HTTP.

The resolver speaks API Gateway REST (v1) events; SCF's shapes differ in small ways (queryString, header case,
list-valued headers, the response's `headers`), so both directions are normalised here and nowhere else.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from ..domain import errors

#: Domain error kind -> HTTP status: the one place this mapping lives.
STATUS_BY_KIND = {
    "invalid": 400,
    "rule": 422,
    "not_found": 404,
    "conflict": 409,
    "retryable": 503,
    "internal": 500,
}


def status_for(error: errors.ImageSyncError) -> int:
    return STATUS_BY_KIND.get(error.kind, 500)


def is_http_event(event: Mapping[str, Any]) -> bool:
    return "httpMethod" in event or "requestContext" in event and "httpMethod" in event.get("requestContext", {})


def _flatten(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def to_rest_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """An SCF HTTP event (Function URL or API Gateway) as powertools' APIGatewayRestResolver expects it."""
    ctx = dict(event.get("requestContext") or {})
    method = str(event.get("httpMethod") or ctx.get("httpMethod") or "GET").upper()
    path = str(event.get("path") or ctx.get("path") or "/")
    raw_headers = {**(event.get("headerParameters") or {}), **(event.get("headers") or {})}
    headers = {str(k).lower(): _flatten(v) for k, v in raw_headers.items()}
    multi_headers = {
        str(k).lower(): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in raw_headers.items()
    }
    query: dict[str, Any] = {}
    for source in (event.get("queryString"), event.get("queryStringParameters")):
        if isinstance(source, Mapping):
            query.update(source)
    body = event.get("body")
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    source_ip = (
        headers.get("x-scf-remote-addr")
        or (ctx.get("sourceIp") if isinstance(ctx.get("sourceIp"), str) else None)
        or ((ctx.get("identity") or {}).get("sourceIp") if isinstance(ctx.get("identity"), Mapping) else None)
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
