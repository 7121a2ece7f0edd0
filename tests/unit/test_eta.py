"""The SyncPercent-based ETA and the sweep's next-check schedule (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from imagesync.domain.progress import estimate_end, next_check

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)


def test_estimate_end_is_linear_in_sync_percent() -> None:
    assert estimate_end(T0, T0 + 5 * MIN, 25) == T0 + 20 * MIN
    assert estimate_end(T0, T0 + 5 * MIN, 100) == T0 + 5 * MIN
    assert estimate_end(T0, T0 + 5 * MIN, 0) is None
    assert estimate_end(None, T0, 50) is None and estimate_end(T0, T0, 50) is None


def test_without_progress_the_copy_is_looked_at_every_interval() -> None:
    for percent in (None, 0):
        assert next_check(T0 + MIN, T0, percent, interval=MIN, cap=10 * MIN) == T0 + 2 * MIN
    assert next_check(T0 + MIN, None, 50, interval=MIN, cap=10 * MIN) == T0 + 2 * MIN


def test_far_from_the_end_the_wait_is_capped() -> None:
    assert next_check(T0 + MIN, T0, 3, interval=MIN, cap=10 * MIN) == T0 + 11 * MIN


def test_the_check_lands_before_the_optimistic_end_then_every_interval() -> None:
    now = T0 + 15 * MIN  # 50%: ends at 30 min, no sooner than 15 * 100 / 51 = 29.4 min
    due = next_check(now, T0, 50, interval=MIN, cap=60 * MIN)
    earliest = T0 + (15 * MIN) * (100 / 51)
    assert now + MIN < due < earliest - MIN
    near = T0 + 29 * MIN
    assert next_check(near, T0, 97, interval=MIN, cap=60 * MIN) == near + MIN


def test_a_simulated_linear_copy_costs_a_handful_of_checks_and_is_seen_within_one_interval() -> None:
    for total_min in (10, 17, 30, 90):
        total = total_min * MIN
        now, checks = T0 + MIN, 0
        while True:
            checks += 1
            percent = min(99, int(99 * (now - T0) / total))
            if now >= T0 + total:
                break
            now = next_check(now, T0, percent, interval=MIN, cap=10 * MIN)
        assert now - (T0 + total) <= MIN, total_min
        assert checks <= 4 + total_min // 10, (total_min, checks)


def test_settle_looks_once_at_the_latest_point_of_a_narrow_window() -> None:
    sec = timedelta(seconds=1)
    # 95% at 19 min: the end lies in [19 * 100 / 96, 19 * 100 / 95] min = [19.79, 20.0] min, 12.5 s wide
    now = T0 + 19 * MIN
    latest = T0 + 20 * MIN
    assert next_check(now, T0, 95, interval=10 * sec, cap=10 * MIN, settle=30 * sec) == latest + sec
    # a wider window (5% at 1 min: [16.7, 20] min) still gets a look before its earliest end
    early = next_check(T0 + MIN, T0, 5, interval=10 * sec, cap=60 * MIN, settle=30 * sec)
    assert early < T0 + MIN * (100 / 6)
    # never past the cap
    assert next_check(T0 + 10 * MIN, T0, 50, interval=MIN, cap=MIN, settle=60 * MIN) == T0 + 11 * MIN


def test_with_settle_a_linear_copy_costs_three_looks_and_is_seen_within_the_window() -> None:
    sec = timedelta(seconds=1)
    for total_s in (600, 1000, 1234, 1800):
        total = total_s * sec
        now, looks = T0 + MIN, 0
        while True:
            looks += 1
            percent = min(99, int(100 * (now - T0) / total))
            if now >= T0 + total:
                break
            now = next_check(now, T0, percent, interval=10 * sec, cap=30 * MIN, settle=30 * sec)
        assert now - (T0 + total) <= 31 * sec, total_s
        assert looks <= 3, (total_s, looks)


def test_settle_backs_off_while_the_percent_does_not_move_and_halves_the_age_without_one() -> None:
    sec = timedelta(seconds=1)
    kw = {"interval": 10 * sec, "cap": 10 * MIN, "settle": 30 * sec}
    now = T0 + 21 * MIN  # stalled at 99 since the look 20 s ago
    assert next_check(now, T0, 99, previous=(now - 20 * sec, 99), **kw) == now + 30 * sec
    assert next_check(now, T0, 99, previous=(now - 10 * MIN, 99), **kw) == now + 10 * MIN  # capped
    for percent in (None, 0):  # nothing shown yet: half the copy's age, within [interval, cap]
        assert next_check(T0 + 4 * MIN, T0, percent, previous=(T0, None), **kw) == T0 + 6 * MIN
        assert next_check(T0 + 10 * sec, T0, percent, **kw) == T0 + 20 * sec
