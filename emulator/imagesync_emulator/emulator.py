"""``Emulator``: the whole emulated cloud on one local port, as a context manager."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .accounts import Account
from .admin import Admin
from .calllog import CallLog
from .clock import Clock
from .faults import FaultInjector
from .protocol import Dispatcher
from .ratelimit import RateLimiter
from .server import EmulatorHTTPServer
from .services import all_services
from .worldfile import build_world, load_world_data


class Emulator:
    """An emulated Tencent Cloud API endpoint.

    ``world``: None (the built-in default world), a YAML/JSON path, or a dict. ``time_scale``: emulated seconds
    per real second. ``seed``: makes ids, copy durations/failures and random faults reproducible. The server
    listens from ``start()`` (or ``with``) until ``stop()``; ``port=0`` picks a free port.
    """

    def __init__(self, world: None | str | Path | dict[str, Any] = None, time_scale: float = 600.0,
                 seed: int = 0, rate_limits: bool = True, host: str = "127.0.0.1", port: int = 0) -> None:
        self.clock = Clock(time_scale)
        self.world = build_world(load_world_data(world), self.clock, seed)
        self.calllog = CallLog()
        self.faults = FaultInjector(seed)
        self.limiter = RateLimiter(rate_limits)
        self.dispatcher = Dispatcher(self.world, all_services(), self.calllog, self.faults, self.limiter)
        self.admin = Admin(self.world, self.calllog, self.faults, self.limiter)
        self._host, self._port = host, port
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self._server = EmulatorHTTPServer((self._host, self._port), self.dispatcher, self.admin.http)
        # stop() waits for the serve loop to notice, up to one poll interval: tests start and stop one emulator
        # per test (0.1 s made that ~0.1 s each, a third of the fast suite's time)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        name="imagesync-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_all_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- addresses and keys --------------------------------------------------------------------------------
    @property
    def host_port(self) -> str:
        """``HOST:PORT``, what goes into the SDK's ``HttpProfile(endpoint=..., protocol="http")``."""
        if self._server is None:
            raise RuntimeError("the emulator is not running: use start() or `with`")
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host_port}"

    @property
    def admin_url(self) -> str:
        return f"{self.endpoint}/_emulator"

    @property
    def default_account(self) -> Account:
        with self.world.lock:
            return self.world.account_by_name("default") or next(iter(self.world.accounts.values()))

    @property
    def secret_id(self) -> str:
        return self.default_account.secret_id

    @property
    def secret_key(self) -> str:
        return self.default_account.secret_key
