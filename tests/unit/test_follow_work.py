"""app.schedule.FollowWork: when status_sweep's timer is armed (the store and the timer are seams here; the SQL
store and the SCF timers are covered by tests/integration/test_sweep_schedule.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from imagesync.app.schedule import FollowWork, ceil_second

NOW = datetime(2026, 12, 1, 8, 0, 0, 250000, tzinfo=timezone.utc)


class Due:
    def __init__(self, earliest: datetime | None, pending: bool = False) -> None:
        self.earliest, self.pending = earliest, pending

    def earliest_check(self) -> datetime | None:
        return self.earliest

    def has_pending_outbox(self) -> bool:
        return self.pending


class Timer:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[object] = []
        self.fail = fail

    def arm(self, at: datetime) -> None:
        self.calls.append(at)
        if self.fail:
            raise self.fail

    def disarm(self) -> None:
        self.calls.append("off")


class Clock:
    def now(self) -> datetime:
        return NOW


def follow(due: Due, timer: Timer) -> dict[str, object]:
    return FollowWork(due, timer, Clock(), lead_seconds=5, outbox_retry_seconds=60)()


def test_armed_at_the_earliest_check_rounded_up_to_the_second() -> None:
    timer = Timer()
    at = NOW + timedelta(seconds=90)
    assert follow(Due(at), timer) == {"armed": ceil_second(at).isoformat()}
    assert timer.calls == [ceil_second(at)] and ceil_second(at) >= at and ceil_second(at).microsecond == 0


def test_a_check_already_due_is_armed_the_lead_ahead() -> None:
    timer = Timer()
    follow(Due(NOW - timedelta(minutes=3)), timer)
    assert timer.calls == [ceil_second(NOW + timedelta(seconds=5))]


def test_nothing_in_flight_disarms_unless_a_completion_waits() -> None:
    timer = Timer()
    assert follow(Due(None), timer) == {"armed": None} and timer.calls == ["off"]
    timer = Timer()
    follow(Due(None, pending=True), timer)
    assert timer.calls == [ceil_second(NOW + timedelta(seconds=60))]
    timer = Timer()
    follow(Due(NOW + timedelta(hours=1), pending=True), timer)  # the outbox's retry comes first
    assert timer.calls == [ceil_second(NOW + timedelta(seconds=60))]


def test_a_failed_arm_is_reported_not_raised() -> None:
    result = follow(Due(NOW + timedelta(minutes=1)), Timer(fail=ConnectionError("reset")))
    assert result["error"] == {"code": "Schedule.ArmFailed", "cause": "ConnectionError", "message": "reset"}
