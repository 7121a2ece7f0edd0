"""The emulated SCF's timer cron (7 fields with seconds, or 5): next slot, and the latest slot a clock step crossed."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from imagesync_emulator.scf.cron import Cron, CronError


def _t(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()


def _s(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 */1 * * * * *", "2027-01-15 08:00:00", "2027-01-15 08:01:00"),
        ("*/5 * * * * * *", "2027-01-15 08:00:03", "2027-01-15 08:00:05"),
        ("30 15 10 * * * *", "2027-01-15 10:15:30", "2027-01-16 10:15:30"),
        ("0 0 12 * * MON *", "2027-01-15 00:00:00", "2027-01-18 12:00:00"),  # 2027-01-15 is a Friday
        ("0 0 0 1 JAN * 2028", "2027-01-15 00:00:00", "2028-01-01 00:00:00"),  # a full date with its year: once
        ("*/15 * * * *", "2027-01-15 08:07:00", "2027-01-15 08:15:00"),  # the 5-field form, at second 0
        ("0 0 0 29 2 * *", "2027-03-01 00:00:00", "2028-02-29 00:00:00"),
    ],
)
def test_next_after(expr: str, after: str, expected: str) -> None:
    assert _s(Cron.parse(expr).next_after(_t(after))) == expected


def test_a_date_in_the_past_never_fires_again() -> None:
    assert Cron.parse("0 0 0 1 1 * 2027").next_after(_t("2027-06-01 00:00:00")) is None


def test_latest_in_a_step() -> None:
    every_10s = Cron.parse("*/10 * * * * * *")
    assert _s(every_10s.latest_in(_t("2027-01-15 08:00:00"), _t("2027-01-15 08:00:25"))) == "2027-01-15 08:00:20"
    assert every_10s.latest_in(_t("2027-01-15 08:00:00"), _t("2027-01-15 08:00:09")) is None
    assert every_10s.latest_in(_t("2027-01-15 08:00:10"), _t("2027-01-15 08:00:10")) is None  # (after, until]
    daily = Cron.parse("0 0 3 * * * *")
    assert _s(daily.latest_in(_t("2027-01-10 04:00:00"), _t("2027-01-15 02:00:00"))) == "2027-01-14 03:00:00"
    assert daily.latest_in(_t("2027-01-14 04:00:00"), _t("2027-01-15 02:00:00")) is None


def test_a_year_long_step_fires_the_latest_slot() -> None:
    slot = Cron.parse("* * * * * * *").latest_in(_t("2027-01-01 00:00:00"), _t("2028-01-01 00:00:00"))
    assert _s(slot) == "2028-01-01 00:00:00"  # found searching back from the end, not by walking a year of seconds


@pytest.mark.parametrize(
    "expr",
    [
        "* * * * * *",
        "60 * * * * * *",
        "* * 24 * * * *",
        "*/0 * * * * * *",
        "* * * 0 * * *",
        "* * * * 13 * *",
        "x * * * * * *",
        "5-1 * * * * * *",
    ],
)
def test_invalid(expr: str) -> None:
    with pytest.raises(CronError):
        Cron.parse(expr)
