"""status_sweep pauses the garbage collector for one sweep only, and never turns on one its caller turned off."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from imagesync.handlers.status_sweep import _collector_paused


@pytest.fixture(autouse=True)
def _restore_collector() -> Iterator[None]:
    was = gc.isenabled()
    yield
    gc.enable() if was else gc.disable()


def test_paused_during_and_running_after() -> None:
    gc.enable()
    with _collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_running_again_after_a_sweep_that_raised() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), _collector_paused():
        raise RuntimeError("the sweep failed")
    assert gc.isenabled()


def test_a_collector_the_caller_paused_stays_paused() -> None:
    gc.disable()
    with _collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
