"""A WSGI app that serves copy_request's REAL handler: each HTTP request becomes the SCF Function URL event the
platform would deliver, and the handler's SCF answer becomes the HTTP response.

It exists so HTTP tooling that speaks WSGI (schemathesis' test client) drives `main_handler` exactly as SCF does;
it is test glue, not a server to deploy. The event shape follows docs/facts.md#F-EVT-2: `httpMethod`, `path`,
lower-case `headers`, `queryString` (a repeated key becomes a list, as SCF sends it), `body` a string (base64 with
`isBase64Encoded` when the bytes are not UTF-8), `requestContext.sourceIp`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
Handler = Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any]]

_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def request_to_event(environ: dict[str, Any]) -> dict[str, Any]:
    """The Function URL event for one WSGI request (PEP 3333 environ)."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    query: dict[str, Any] = {}
    for name, values in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items():
        query[name] = values[0] if len(values) == 1 else values
    try:
        body, is_base64 = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        body, is_base64 = base64.b64encode(raw).decode(), True
    # WSGI hands PATH_INFO over as latin-1 decoded bytes; SCF gives the path as UTF-8 text.
    path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace") or "/"
    return {
        "httpMethod": environ["REQUEST_METHOD"],
        "path": path,
        "headers": headers,
        "queryString": query,
        "body": body,
        "isBase64Encoded": is_base64,
        "requestContext": {"sourceIp": environ.get("REMOTE_ADDR", "127.0.0.1")},
    }


class ScfWsgiApp:
    """WSGI -> `handler(event, context)` -> WSGI. `answers` keeps every (event, SCF response) pair for assertions."""

    def __init__(self, handler: Handler, *, time_limit_ms: int = 30000) -> None:
        self.handler = handler
        self.time_limit_ms = time_limit_ms
        self.answers: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        event = request_to_event(environ)
        context = {"request_id": f"fuzz-{len(self.answers)}", "time_limit_in_ms": self.time_limit_ms}
        answer = self.handler(event, context)  # an exception here is a crash of the function: let it surface
        self.answers.append((event, answer))
        if "statusCode" not in answer:  # SCF: a JSON object without statusCode is a 200 JSON answer
            answer = {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(answer)}
        status = int(answer["statusCode"])
        body = answer.get("body") or ""
        data = base64.b64decode(body) if answer.get("isBase64Encoded") else str(body).encode()
        headers = [(str(k), str(v)) for k, v in (answer.get("headers") or {}).items()]
        if not any(k.lower() == "content-length" for k, _ in headers):
            headers.append(("Content-Length", str(len(data))))
        start_response(f"{status} {_REASONS.get(status, 'Status')}", headers)
        return [data]
