"""The HTTP front: the stdlib ThreadingHTTPServer speaking HTTP/1.1 with keep-alive.

Why the stdlib server and not an ASGI one: a "dropped connection" fault must close the socket with no answer at
all, which a thread-per-connection server does in one line while ASGI servers always answer something (or need
transport hacks); it has no dependency; and one thread per connection easily serves the few clients and the
hundreds of requests per second tests need. TCP_NODELAY is set so small answers are not held back by Nagle's
algorithm against the client's delayed ACKs.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from .protocol import Dispatcher, HttpRequest, HttpResponse

ADMIN_PREFIX = "/_emulator/"
AdminHandler = Callable[[str, str, dict], tuple[int, object]]


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], dispatcher: Dispatcher, admin: AdminHandler) -> None:
        self.dispatcher = dispatcher
        self.admin = admin
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def close_all_connections(self) -> None:
        with self.sockets_lock:
            for sock in list(self.open_sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self.open_sockets.clear()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "imagesync-emulator/1"
    timeout = 300  # idle keep-alive connections are closed after this many seconds
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.sockets_lock:
                self.server.open_sockets.discard(self.connection)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # the call log is the emulator's record; stderr noise helps nobody

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, resp: HttpResponse) -> None:
        if resp.delay > 0:
            time.sleep(resp.delay)
        if resp.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        reason = self.responses.get(resp.status, ("",))[0]
        head = [
            f"HTTP/1.1 {resp.status} {reason}",
            f"Server: {self.server_version}",
            f"Content-Length: {len(resp.body)}",
        ]
        head += [f"{k}: {v}" for k, v in resp.headers.items()]
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + resp.body)

    def _handle(self) -> None:
        body = self._read_body()
        parts = urlsplit(self.path)
        if parts.path.startswith(ADMIN_PREFIX):
            kwargs: dict = dict(parse_qsl(parts.query))
            if body:
                try:
                    loaded = json.loads(body)
                except ValueError:
                    loaded = None
                if not isinstance(loaded, dict):
                    self._send(HttpResponse(400, json.dumps({"error": "the body must be a JSON object"}).encode()))
                    return
                kwargs.update(loaded)
            status, result = self.server.admin(self.command, parts.path[len(ADMIN_PREFIX) :], kwargs)
            self._send(HttpResponse(status, json.dumps(result, default=str).encode("utf-8")))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = HttpRequest(self.command, parts.path, parts.query, headers, body, client_ip=self.client_address[0])
        self._send(self.server.dispatcher.handle(req))

    do_POST = _handle
    do_GET = _handle
