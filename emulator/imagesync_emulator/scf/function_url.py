"""A Function URL (an ``http`` trigger) served on a real local port.

Request -> event (docs/emulator.md, "Function URLs"): {"httpMethod", "path", "headers" (lower-case names; repeated
headers joined with ","), "queryString" ({name: value, or [values] when repeated}), "queryStringParameters",
"pathParameters", "headerParameters" (empty), "isBase64Encoded", "requestContext" {"sourceIp", "requestId",
"httpMethod", "path"}, "body" (text; base64 when the body is not UTF-8 text)}, plus the headers x-scf-remote-addr and
x-scf-request-id. Answer -> response: {"statusCode", "headers" (values may be lists), "body", "isBase64Encoded"};
any other JSON value is 200 application/json. A failed invocation answers 502 (timeout 504) with the error as JSON.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from .runtime import ScfRuntime

_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/javascript",
)


def _is_text(content_type: str, body: bytes) -> bool:
    if not body:
        return True
    ctype = content_type.split(";")[0].strip().lower()
    if ctype and not ctype.startswith(_TEXT_TYPES) and not ctype.endswith("+json"):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def request_event(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes, client_ip: str, request_id: str
) -> dict:
    parts = urlsplit(target)
    merged: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    merged["x-scf-remote-addr"] = client_ip
    merged["x-scf-request-id"] = request_id
    query: dict[str, object] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in query:
            prev = query[name]
            query[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            query[name] = value
    text = _is_text(merged.get("content-type", ""), body)
    return {
        "httpMethod": method,
        "path": parts.path or "/",
        "headers": merged,
        "queryString": query,
        "queryStringParameters": {},
        "pathParameters": {},
        "headerParameters": {},
        "isBase64Encoded": not text,
        "requestContext": {
            "sourceIp": client_ip,
            "requestId": request_id,
            "httpMethod": method,
            "path": parts.path or "/",
        },
        "body": body.decode("utf-8") if text else base64.b64encode(body).decode("ascii"),
    }


def response_of(result: object) -> tuple[int, list[tuple[str, str]], bytes]:
    """The HTTP answer for a handler's return value."""
    if isinstance(result, dict) and "statusCode" in result:
        status = int(result["statusCode"])
        headers: list[tuple[str, str]] = []
        for name, value in (result.get("headers") or {}).items():
            for v in value if isinstance(value, list) else [value]:
                headers.append((str(name), str(v)))
        body = result.get("body") or ""
        if result.get("isBase64Encoded"):
            raw = base64.b64decode(body)
        else:
            raw = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
        return status, headers, raw
    return 200, [("Content-Type", "application/json")], json.dumps(result).encode("utf-8")


class FunctionUrlServer:
    def __init__(self, runtime: ScfRuntime, function: str, namespace: str, host: str = "127.0.0.1") -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length > 0 else b""
                request_id = str(uuid.uuid4())
                event = request_event(
                    self.command, self.path, list(self.headers.items()), body, self.client_address[0], request_id
                )
                record = outer.runtime.invoke(
                    outer.function, event, namespace=outer.namespace, source="http", request_id=request_id
                )
                if record.outcome == "ok":
                    try:
                        status, headers, raw = response_of(record.result)
                    except (ValueError, TypeError) as exc:
                        status, headers = 502, [("Content-Type", "application/json")]
                        raw = json.dumps({"errorType": "InvalidResponse", "errorMessage": str(exc)}).encode()
                else:
                    status = 504 if record.outcome == "timeout" else 502
                    headers = [("Content-Type", "application/json")]
                    raw = json.dumps(record.error or {}).encode("utf-8")
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("X-Scf-Request-Id", request_id)
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

        self.runtime, self.function, self.namespace = runtime, function, namespace
        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"function-url-{function}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.server.shutdown()
            self.server.server_close()
