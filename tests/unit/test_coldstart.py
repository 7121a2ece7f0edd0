"""platform.coldstart: a function's cold start runs without the cyclic collector, which its first answer turns back
on (after freezing what the cold start built); never a collector left off, nor one turned on that was not ours."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from imagesync.platform import coldstart


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As in a new container: nothing paused or resumed yet; the collector's state restored after the test."""
    monkeypatch.setattr(coldstart, "_paused", False)
    monkeypatch.setattr(coldstart, "_resumed", False)
    was = gc.isenabled()
    yield
    gc.enable() if was else gc.disable()


def test_the_first_answer_turns_the_collector_back_on_and_freezes_what_the_cold_start_built() -> None:
    gc.enable()
    coldstart.pause()
    assert not gc.isenabled()
    built = [object() for _ in range(10)]  # noqa: F841 (kept alive across the freeze)
    with coldstart.first_answer():
        assert not gc.isenabled()  # the first answer runs without it too
    assert gc.isenabled() and gc.get_freeze_count() > 0


def test_it_is_turned_back_on_even_when_the_first_answer_raises() -> None:
    gc.enable()
    coldstart.pause()
    with pytest.raises(RuntimeError), coldstart.first_answer():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_later_answers_leave_the_collector_alone() -> None:
    gc.enable()
    coldstart.pause()
    with coldstart.first_answer():
        pass
    gc.disable()  # e.g. a sweep's own pause (handlers.status_sweep._collector_paused)
    with coldstart.first_answer():
        pass
    assert not gc.isenabled()
    coldstart.pause()  # after the cold start: no effect
    gc.enable()
    with coldstart.first_answer():
        pass
    assert gc.isenabled()


def test_a_collector_already_off_is_not_ours_to_turn_on() -> None:
    gc.disable()  # the caller's (a test runner, an embedding process)
    coldstart.pause()
    with coldstart.first_answer():
        pass
    assert not gc.isenabled()


def test_without_the_entrys_pause_the_first_answer_only_freezes() -> None:
    gc.enable()  # a handler imported directly (tests, the local server): the collector stays on throughout
    with coldstart.first_answer():
        assert gc.isenabled()
    assert gc.isenabled()
