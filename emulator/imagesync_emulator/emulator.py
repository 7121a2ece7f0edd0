"""``Emulator``: the whole emulated cloud on one local port, as a context manager."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .accounts import Account
from .admin import Admin
from .calllog import CallLog
from .clock import Clock
from .faults import FaultInjector
from .protocol import Dispatcher
from .ratelimit import RateLimiter
from .scf import Deployment, ScfRuntime
from .scf.deploy import deploy as deploy_serverless
from .server import EmulatorHTTPServer
from .services import all_services
from .worldfile import build_world, load_world_data


class Emulator:
    """An emulated Tencent Cloud API endpoint.

    ``world``: None (the built-in default world), a YAML/JSON path, or a dict. ``time_scale``: emulated seconds
    per real second. ``seed``: makes ids, copy durations/failures and random faults reproducible. The server
    listens from ``start()`` (or ``with``) until ``stop()``; ``port=0`` picks a free port.

    The emulated SCF (``self.scf``): ``scf_concurrency`` instances per function at most; a function's declared
    timeout is ``timeout * scf_timeout_scale`` REAL seconds (functions run on real time). ``deploy()`` deploys a
    serverless.yml once the emulator is running.
    """

    def __init__(
        self,
        world: None | str | Path | dict[str, Any] = None,
        time_scale: float = 600.0,
        seed: int = 0,
        rate_limits: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        scf_concurrency: int = 4,
        scf_timeout_scale: float = 1.0,
        start: float | None = None,
    ) -> None:
        # start: the emulated clock's first reading (epoch seconds); default the real time
        self.clock = Clock(time_scale, start)
        self.world = build_world(load_world_data(world), self.clock, seed)
        self.calllog = CallLog()
        self.faults = FaultInjector(seed)
        self.limiter = RateLimiter(rate_limits)
        self.dispatcher = Dispatcher(self.world, all_services(), self.calllog, self.faults, self.limiter)
        self.scf = ScfRuntime(self.world, concurrency=scf_concurrency, timeout_scale=scf_timeout_scale, host=host)
        self.world.scf = self.scf
        self.admin = Admin(self.world, self.calllog, self.faults, self.limiter, self.scf)
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
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="imagesync-emulator", daemon=True
        )
        self._thread.start()
        self.scf.start(self.endpoint)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.scf.stop()
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

    # ---- the emulated SCF ----------------------------------------------------------------------------------
    def deploy(
        self,
        serverless_yml: str | Path,
        *,
        env: Mapping[str, str] | None = None,
        layers: Mapping[str, str | Path] | str | Path | None = None,
        code_dir: str | Path | None = None,
    ) -> Deployment:
        """Deploy a multi-scf serverless.yml (``env`` resolves ``${env:NAME}``, default: this process's
        environment; ``layers``: layer name -> zip, or one zip for the one layer name it declares; ``code_dir``
        replaces ``inputs.src``). Raises
        ``DeployError`` (with SCF's error code) before creating anything it would refuse."""
        if self._server is None:
            raise RuntimeError("the emulator is not running: use start() or `with`")
        return deploy_serverless(
            self.scf,
            serverless_yml,
            env=os.environ if env is None else env,
            layers=layers,
            code_dir=code_dir,
            now=self.clock.now(),
            known_region=self.world.regions.exists,
        )
