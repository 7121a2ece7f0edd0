"""A webhook receiver for the demos, the chaos runner and tests: plain http on 127.0.0.1, checks each delivery's
signature as a subscriber would (imagesync.adapters.webhook.verify)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    """A local receiver (plain http on 127.0.0.1) recording each delivery: its signature check, its delivery id
    and its payload. Shared by the demo, the deployed-package demo, the chaos runner and tests."""

    def __init__(self, secret: str, path: str = "/hooks/imagesync") -> None:
        from imagesync.adapters.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, verify

        received: list[dict[str, Any]] = []
        lock = threading.Lock()
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = verify(secret, body, self.headers.get(SIGNATURE_HEADER, ""))
                with lock:
                    delivery = self.headers.get(DELIVERY_HEADER)
                    received.append({"valid": ok, "delivery": delivery, "payload": json.loads(body or b"{}")})
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
