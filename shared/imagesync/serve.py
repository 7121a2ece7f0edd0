"""`imagesync serve`: copy_request's real handler behind a local HTTP server, to look at the status page (and the
API) of a state table from a browser: `make demo` ends by printing the command for the run it made.

Each HTTP request becomes the Function URL event SCF would deliver (docs/facts.md#F-EVT-2: httpMethod, path,
lower-case headers, queryString, body, requestContext.sourceIp) and the handler's SCF answer becomes the response.
Credentials are the function's own (IMAGESYNC_API_TOKEN / IMAGESYNC_API_HMAC_SECRET, or IMAGESYNC_API_AUTH=none):
a browser logs in with any user name and the API token as the password. Development tooling, not a server to
deploy (one process, http, no TLS): it listens on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Handler = Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any]]


def function_url_event(method: str, target: str, headers: dict[str, str], body: bytes, client: str) -> dict[str, Any]:
    """The Function URL event of one HTTP request (`target`: the request line's path and query)."""
    parts = urlsplit(target)
    query: dict[str, Any] = {}
    for name, values in parse_qs(parts.query, keep_blank_values=True).items():
        query[name] = values[0] if len(values) == 1 else values
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode(), True
    return {
        "httpMethod": method,
        "path": parts.path or "/",
        "headers": {k.lower(): v for k, v in headers.items()},
        "queryString": query,
        "body": text,
        "isBase64Encoded": is_base64,
        "requestContext": {"sourceIp": client},
    }


class FunctionUrlServer:
    """A ThreadingHTTPServer on (host, port) answering every request with `handler` (port 0: any free port)."""

    def __init__(self, handler: Handler | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        if handler is None:
            from .handlers.copy_request import main_handler

            handler = main_handler
        call = handler
        lock = threading.Lock()  # one invocation at a time, as one SCF instance runs them

        class Request(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                event = function_url_event(self.command, self.path, dict(self.headers), body, self.client_address[0])
                with lock:
                    answer = call(event, {"request_id": "", "time_limit_in_ms": 30000})
                data = answer.get("body") or ""
                raw = base64.b64decode(data) if answer.get("isBase64Encoded") else str(data).encode()
                self.send_response(int(answer.get("statusCode", 200)))
                for key, value in (answer.get("headers") or {}).items():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, str(value))
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer  # noqa: N815 - http.server's names

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Request)
        self.url = f"http://{host}:{self.server.server_address[1]}/"
        self._thread: threading.Thread | None = None

    def start(self) -> FunctionUrlServer:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
        self.server.server_close()
