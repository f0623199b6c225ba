"""Date rules: what a guide item's wording means in dates, and the occurrences of a series."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from pacing.core.guide import Guide, Item, Period, Series, select
from pacing.core.lea import Lea, rule_dates

ONE_DAY = dt.timedelta(days=1)
SPAN_NAMES = {1: "month", 3: "quarter", 6: "half-year", 12: "year"}


@dataclass(frozen=True)
class Dates:
    """One occurrence's dates and the rule they come from."""

    due: dt.date
    start: dt.date | None = None
    start_time: dt.time | None = None
    end_time: dt.time | None = None
    occurrence: str | None = None  # key within a series, e.g. "2025-03"
    span: str = ""  # "July 1, 2024 - March 31, 2025" for reports
    rule: str = ""
    note: str | None = None


def long_date(day: dt.date) -> str:
    return f"{day:%B} {day.day}, {day.year}"


def ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day-of-month `months` later (clamped to the month's end)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month + 1, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def month_end(year: int, month_index: int) -> dt.date:
    """Last day of the month `month_index` months after January of `year`."""
    return add_months(dt.date(year, 1, 1), month_index + 1) - ONE_DAY


def period_bounds(period: Period, lea: Lea) -> tuple[dt.date, dt.date]:
    start = period.start
    if period.profile_start and lea.monitoring.cceis_services_start:
        start = lea.monitoring.cceis_services_start
    end = period.end or add_months(period.start, period.months or 0) - ONE_DAY
    return start, end


def source_label(guide: Guide) -> str:
    label = guide.source.split(":")[0]
    return label[:1].upper() + label[1:]


def single(guide: Guide, item: Item, lea: Lea) -> Dates:
    when = item.when
    if when is None:  # undated work: its dates come from the backward plan
        return Dates(due=dt.date.max, rule="Planned backwards")
    said = f'{source_label(guide)}: "{when.text}"'
    if when.period:
        period = guide.periods[when.period]
        start, end = period_bounds(period, lea)
        rule = item.rule or f"{said}: the {period.title}, {long_date(start)} - {long_date(end)}"
        return Dates(due=end, start=start, rule=rule)
    if when.before:
        due = when.before - ONE_DAY
        rule = item.rule or f"{said}: done by the day before, {long_date(due)}"
        return Dates(due=due, start=when.start, rule=rule)
    last = when.on or when.end
    assert last is not None
    return Dates(last, when.start, when.start_time, when.end_time, rule=item.rule or said)


def series_dates(
    guide: Guide, series: Series, lea: Lea, rrule: str | None, only: list[dt.date] | None
) -> Iterator[Dates]:
    period = guide.periods[series.period]
    start, end = period_bounds(period, lea)
    if only is not None:
        for day in sorted(only):
            yield Dates(due=day, occurrence=day.isoformat(), rule="Dates set in the LEA profile")
        return
    rule = rrule or series.rrule
    if rule:
        yield from _rrule_dates(rule, start, end, period)
        return
    every = select(series.every_months or 0, lea) or 0
    if every:
        yield from _report_dates(series, every, start, end, period)


@lru_cache(maxsize=256)
def _rrule_dates(rule: str, start: dt.date, end: dt.date, period: Period) -> tuple[Dates, ...]:
    """Occurrences of `rule` in [start, end] (cached: every LEA of a cohort shares them), at
    most MAX_OCCURRENCES and never an unbounded scan (see `rule_dates`)."""
    freq = rule.upper()
    key = "%Y" if "FREQ=YEARLY" in freq else "%Y-%m" if "FREQ=MONTHLY" in freq else "%Y-%m-%d"
    text = f"{rule} within the {period.title} ({long_date(start)} - {long_date(end)})"
    days = rule_dates(rule, start, start, end)
    return tuple(Dates(day, occurrence=day.strftime(key), rule=text) for day in days)


def _report_dates(
    series: Series, every: int, start: dt.date, end: dt.date, period: Period
) -> Iterator[Dates]:
    """Reports covering consecutive spans of `every` months, due on a day of the next month."""
    span_name = SPAN_NAMES.get(every, f"{every}-month period")
    first = series.first_through or add_months(start, every) - ONE_DAY
    index = first.month - 1
    limit = (end.year - first.year) * 12 + end.month - 1 + series.months_after_end
    span_start = start
    while index <= limit:
        span_end = month_end(first.year, index)
        due = add_months(span_end.replace(day=1), 1).replace(day=series.due_day)
        key = f"{span_end:%Y-%m}"
        rule = (
            f"{ordinal(series.due_day)} day of the month after the {span_name} ends "
            f"({long_date(span_start)} - {long_date(span_end)}; {period.title} "
            f"{long_date(start)} - {long_date(end)})"
        )
        span = f"{long_date(span_start)} - {long_date(span_end)}"
        yield Dates(due, occurrence=key, span=span, rule=rule, note=series.notes.get(key))
        span_start = span_end + ONE_DAY
        index += every
