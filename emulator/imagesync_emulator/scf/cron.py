"""SCF timer cron expressions: 7 fields (second minute hour day month week year) or the old 5-field form (minute
hour day month week, at second 0). Each field: ``*``, ``?``, a number or name, ``a-b``, lists, and steps
(``*/n``, ``a-b/n``, ``a/n``). Week: 0-6 with 0 = Sunday, or SUN-SAT; month: 1-12 or JAN-DEC. As in classic cron, when
both day and week are restricted a day matching either runs. Evaluated in UTC (see docs/emulator.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

_MONTHS = {
    m: i + 1 for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])
}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_RANGES = [(0, 59, {}), (0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 6, _DAYS), (1970, 2099, {})]
_SEARCH_DAYS = 366 * 8


class CronError(ValueError):
    """The expression is not a valid SCF timer cron."""


def _value(text: str, names: dict[str, int]) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise CronError(f"`{text}` is not a number")
    return int(text)


def _field(text: str, lo: int, hi: int, names: dict[str, int]) -> frozenset[int] | None:
    """The allowed values, or None for "any"."""
    if text in ("*", "?"):
        return None
    out: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = _value(step_text, {}) if step_text else 1
        if step < 1:
            raise CronError(f"step `{part}` must be at least 1")
        if base in ("*", "?"):
            start, end = lo, hi
        elif "-" in base:
            a, b = base.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(base, names)
            end = hi if step_text else start
        if not lo <= start <= end <= hi:
            raise CronError(f"`{part}` is outside {lo}-{hi}")
        out.update(range(start, end + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    second: frozenset[int] | None
    minute: frozenset[int] | None
    hour: frozenset[int] | None
    day: frozenset[int] | None
    month: frozenset[int] | None
    week: frozenset[int] | None
    year: frozenset[int] | None

    @classmethod
    def parse(cls, expression: str) -> Cron:
        fields = expression.split()
        if len(fields) == 5:
            fields = ["0", *fields, "*"]
        if len(fields) != 7:
            raise CronError(
                f"`{expression}` has {len(fields)} fields; a timer cron has 7 (second minute hour day "
                "month week year) or 5"
            )
        parsed = [_field(f, lo, hi, names) for f, (lo, hi, names) in zip(fields, _RANGES, strict=False)]
        return cls(*parsed)

    def _day_matches(self, d: datetime) -> bool:
        if self.month is not None and d.month not in self.month:
            return False
        if self.year is not None and d.year not in self.year:
            return False
        week = (d.weekday() + 1) % 7  # Python: Monday = 0; cron: Sunday = 0
        day_ok = self.day is None or d.day in self.day
        week_ok = self.week is None or week in self.week
        if self.day is not None and self.week is not None:
            return day_ok or week_ok
        return day_ok and week_ok

    def _slots(self, day: datetime, reverse: bool) -> Iterator[tuple[int, int, int]]:
        hours = sorted(self.hour if self.hour is not None else range(24), reverse=reverse)
        minutes = sorted(self.minute if self.minute is not None else range(60), reverse=reverse)
        seconds = sorted(self.second if self.second is not None else range(60), reverse=reverse)
        for h in hours:
            for m in minutes:
                for sec in seconds:
                    yield h, m, sec

    def next_after(self, epoch: float) -> float | None:
        """The first whole second strictly after ``epoch`` that the expression names (None: never again)."""
        start = datetime.fromtimestamp(int(epoch) + 1, tz=timezone.utc)
        first = (start.hour, start.minute, start.second)
        day = start.replace(hour=0, minute=0, second=0)
        for i in range(_SEARCH_DAYS):
            if self._day_matches(day):
                for hms in self._slots(day, reverse=False):
                    if i > 0 or hms >= first:
                        return (day + timedelta(hours=hms[0], minutes=hms[1], seconds=hms[2])).timestamp()
            day += timedelta(days=1)
        return None

    def latest_in(self, after: float, until: float) -> float | None:
        """The last whole second in (``after``, ``until``] that the expression names, or None: what a timer
        whose clock jumped from ``after`` to ``until`` fires for (once, however many slots it crossed)."""
        end = datetime.fromtimestamp(int(until), tz=timezone.utc)
        last = (end.hour, end.minute, end.second)
        day = end.replace(hour=0, minute=0, second=0)
        for i in range(_SEARCH_DAYS):
            if day.timestamp() + 86400 <= after:
                return None
            if self._day_matches(day):
                for hms in self._slots(day, reverse=True):
                    if i > 0 or hms <= last:
                        t = (day + timedelta(hours=hms[0], minutes=hms[1], seconds=hms[2])).timestamp()
                        return t if t > after else None
            day -= timedelta(days=1)
        return None
