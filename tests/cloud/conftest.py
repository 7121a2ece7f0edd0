"""The deploy package (scripts/package.py, what `make package` builds) deployed from the project's serverless.yml
onto the emulated SCF (imagesync_dev.demo_cloud.deploy_stack), a SQLite file as the state table, and a webhook receiver
the test steers: every test here drives the deployed functions only, never a handler."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from imagesync.adapters.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, verify
from imagesync_dev.demo_cloud import Stack, deploy_stack, migrate

ROOT = Path(__file__).resolve().parents[2]
SECRET = "cloud-test-webhook-secret"


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    spec = importlib.util.spec_from_file_location("imagesync_package_script_cloud", ROOT / "scripts" / "package.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.build(tmp_path_factory.mktemp("dist"), ROOT / "dist" / "wheels")


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every request (signature check, X-Imagesync-Delivery, payload,
    real arrival time) and answers `status`; `hold(n)` makes the next n requests wait (up to 120 s) for
    `release`, so a test can act while completion_hook is inside the webhook call."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 204
        self.release = threading.Event()
        self.holding = threading.Event()
        self._hold = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    outer.received.append(
                        {
                            "valid": verify(SECRET, body, self.headers.get(SIGNATURE_HEADER, "")),
                            "delivery": self.headers.get(DELIVERY_HEADER),
                            "payload": json.loads(body or b"{}"),
                            "at": time.monotonic(),
                        }
                    )
                    held = outer._hold > 0
                    outer._hold -= held
                if held:
                    outer.holding.set()
                    outer.release.wait(120)
                try:
                    self.send_response(outer.status)
                    self.end_headers()
                except OSError:  # the caller was killed while we held its request
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hold(self, n: int = 1) -> None:
        self.release.clear()
        self.holding.clear()
        self._hold = n

    def of(self, replica_id: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["payload"].get("replica_id") == replica_id]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def cloud(built: Any, tmp_path: Path, receiver: Receiver) -> Iterator[Callable[..., Stack]]:
    """cloud(time_scale=0.0, hooks=None, rules=None) -> the deployed Stack (an emulator closed after the test)."""
    from imagesync_emulator import Emulator

    database_url = f"sqlite:///{tmp_path / 'state.db'}"
    migrate(database_url)
    with ExitStack() as stack:

        def make(
            *, time_scale: float = 0.0, hooks: list[dict[str, Any]] | None = None, rules: dict[str, Any] | None = None
        ) -> Stack:
            emu = stack.enter_context(Emulator(time_scale=time_scale, seed=3))
            return deploy_stack(
                emu,
                database_url=database_url,
                code_dir=built.code_dir,
                layer_zip=built.layer_zip,
                webhook_url=receiver.url,
                webhook_secret=SECRET,
                hooks=hooks,
                rules=rules,
            )

        yield make


def step_until(
    stack: Stack, predicate: Callable[[], Any], *, timeout: float = 240.0, what: str, step: float = 60.0
) -> Any:
    """Step the emulated clock by `step` s (a timer slot; a due async retry) between looks at `predicate`, until it
    holds; fails after `timeout` real seconds (a generous bound, not a speed assumption)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        stack.emu.admin.advance(step)
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_for(predicate: Callable[[], Any], *, timeout: float = 240.0, what: str) -> Any:
    """Poll without touching the clock; fails after `timeout` real seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
