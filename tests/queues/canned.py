"""A canned HTTP server for the real SDK: answers every POST with what the test sets, records each request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile


class _Canned(BaseHTTPRequestHandler):
    """Answers every POST with the next scripted (status, content type, body) -- the last one repeats -- and
    records the request."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length", 0))
        server: Any = self.server
        server.requests.append({"action": self.headers.get("X-TC-Action"), "body": json.loads(self.rfile.read(length))})
        status, content_type, body = server.answers.pop(0) if len(server.answers) > 1 else server.answers[0]
        payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: Any) -> None:
        pass


def serve_canned() -> Iterator[Any]:
    """The server (a generator: the `canned` fixture of tests/queues/conftest.py)."""
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    server.requests = []
    server.answers = [(200, "application/json", {"Response": {"RequestId": "req-ok"}})]
    # A short poll interval: shutdown() waits up to one interval, 0.5 s by default.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def sdk_client(client_class: type, host_port: str) -> Any:
    """The official client `client_class` pointed at `host_port` over plain HTTP."""
    http = HttpProfile(protocol="http", endpoint=host_port, reqTimeout=5)
    return client_class(credential.Credential("AKIDtest", "secret"), "ap-guangzhou", ClientProfile(httpProfile=http))


def error(code: str) -> dict[str, Any]:
    return {"Response": {"Error": {"Code": code, "Message": f"{code} happened"}, "RequestId": "req-wire"}}
