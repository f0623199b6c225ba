"""The LEA's working-day calendar: no weekends, no California state holidays, no closures."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

ONE_DAY = dt.timedelta(days=1)


@lru_cache(maxsize=64)
def california_holidays(first_year: int, last_year: int) -> dict[dt.date, str]:
    """California state holidays as the `holidays` package defines them (observed days included)."""
    import holidays

    found = holidays.country_holidays("US", subdiv="CA", years=range(first_year, last_year + 1))
    return {day: str(name) for day, name in found.items()}


@dataclass(frozen=True)
class WorkCalendar:
    closed: dict[dt.date, str] = field(default_factory=dict)  # non-working days and why
    _closed_weekdays: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        weekdays = sorted(d.toordinal() for d in self.closed if d.weekday() < 5)
        object.__setattr__(self, "_closed_weekdays", tuple(weekdays))

    @classmethod
    def build(
        cls,
        years: tuple[int, int],
        state_holidays: bool,
        closures: Iterable[tuple[dt.date, dt.date, str]] = (),
    ) -> WorkCalendar:
        closed = dict(california_holidays(*years)) if state_holidays else {}
        for start, end, name in closures:
            day = start
            while day <= end:
                closed.setdefault(day, name)
                day += ONE_DAY
        return cls(closed)

    def why_closed(self, day: dt.date) -> str | None:
        if day.weekday() >= 5:
            return day.strftime("%A")
        return self.closed.get(day)

    def is_working(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self.closed

    def on_or_before(self, day: dt.date) -> dt.date:
        while not self.is_working(day):
            day -= ONE_DAY
        return day

    def on_or_after(self, day: dt.date) -> dt.date:
        while not self.is_working(day):
            day += ONE_DAY
        return day

    def back(self, day: dt.date, n: int) -> dt.date:
        """The working day n working days before `day` (n = 0: the last working day on or before)."""
        day = self.on_or_before(day)
        for _ in range(n):
            day = self.on_or_before(day - ONE_DAY)
        return day

    def forward(self, day: dt.date, n: int) -> dt.date:
        """The working day n working days after `day` (n = 0: the first working day on or after)."""
        day = self.on_or_after(day)
        for _ in range(n):
            day = self.on_or_after(day + ONE_DAY)
        return day

    def count(self, start: dt.date, end: dt.date) -> int:
        """Working days in [start, end); negative when end is before start."""
        if end < start:
            return -self.count(end, start)
        first, last = start.toordinal(), end.toordinal()
        closed = bisect.bisect_left(self._closed_weekdays, last) - bisect.bisect_left(
            self._closed_weekdays, first
        )
        return weekdays_before(last) - weekdays_before(first) - closed


def weekdays_before(ordinal: int) -> int:
    """Monday-Friday days before the proleptic ordinal `ordinal` (day 1 is a Monday)."""
    weeks, rest = divmod(ordinal - 1, 7)
    return weeks * 5 + min(rest, 5)
