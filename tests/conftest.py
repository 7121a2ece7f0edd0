"""Shared fixtures: the emulator (from imagesync_emulator's pytest plugin) and imagesync's services on it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["imagesync_emulator.pytest_plugin"]

TESTS = Path(__file__).resolve().parent
EVENTS = TESTS.parent / "events"

#: Folders whose every test is slow (subprocesses, whole scenarios, generated input): `make check` leaves them out,
#: `make test` runs them. Single slow tests elsewhere carry an explicit `@pytest.mark.slow` (or a module's
#: `pytestmark`); tests/test_fast_loop.py fails if a test in these folders escapes the marker.
SLOW_FOLDERS = ("chaos", "cloud", "e2e", "fuzz")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path.resolve()
        if path.is_relative_to(TESTS) and path.relative_to(TESTS).parts[0] in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)


def load_event(relative: str) -> dict[str, Any]:
    """An events/ file by its path under events/, e.g. "http/function_url_create_replication.json", validated
    against its trigger's envelope on load (a fixture that drifted from the shape fails here, not deep in a test)."""
    from imagesync.domain.models import CompletionMessage
    from imagesync.platform.envelopes import EventBridgeEnvelope, QueueEnvelope, TimerEnvelope
    from imagesync.platform.http import is_http_event

    event = json.loads((EVENTS / relative).read_text())
    kind = relative.split("/", 1)[0]
    matches = {
        "http": is_http_event,
        "eventbridge": EventBridgeEnvelope.matches,
        "timer": TimerEnvelope.matches,
        "queue": lambda e: bool(QueueEnvelope.parse(e, CompletionMessage)),  # raises on a foreign outer shape
    }
    assert kind in matches, f"events/{kind}: no envelope known for this trigger folder"
    assert matches[kind](event), f"events/{relative} does not match the {kind} envelope"
    return event


@pytest.fixture
def services(emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """imagesync's services on the emulator, a fresh SQLite state table and a local queue; installed for handlers.

    The clock is the emulator's, so copy times, checks and timeouts run in emulated minutes. It is FROZEN: a test
    moves it with emulator.admin.advance(), so no outcome depends on how fast the machine runs the test (at the
    emulator's 600x, one busy real second would be ten emulated minutes).
    """
    from imagesync import wiring
    from imagesync.local import EmulatorClock
    from imagesync.settings import Settings

    emulator.admin.set_time_scale(0)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", emulator.secret_id)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", emulator.secret_key)
    settings = Settings(
        tencent_endpoint=emulator.endpoint,
        database_url=f"sqlite:///{tmp_path / 'state.db'}",
        queue_path=str(tmp_path / "queue.db"),
        first_check_seconds=60,
        recheck_seconds=60,
        retry_seconds=60,
        # the HTTP API is closed without credentials; its auth is covered by tests/integration/test_http_api.py
        api_auth="none",
        # the tests' webhook receivers listen on 127.0.0.1 over http (refused by default: no SSRF)
        webhook_allow_private=True,
    )
    svc = wiring.build_services(settings, clock=EmulatorClock(emulator.admin.now))
    wiring.use(svc)
    try:
        yield svc
    finally:
        wiring.use(None)
