"""The LEA profile (one TOML file per LEA; keys per shared/DESIGN.md)."""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Annotated, Literal

from dateutil.rrule import rrule, rrulestr
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pacing.core.fields import (
    EMAIL,
    FIRST_DAY,
    LAST_DAY,
    ROLES,
    Day,
    Email,
    Role,
    Slug,
    Text,
    Tier,
    at_most,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


def _cds(code: str) -> str:
    if not (code.isascii() and code.isdigit() and len(code) in (7, 14)):
        raise ValueError(f"must be 14 digits (or the 7-digit district code), got {code!r}")
    return code


def _timezone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):  # "../x", NUL, too long
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


# --------------------------------------------------------------------------- meeting rules
#
# A meeting rule (RFC 5545 RRULE) from a file is bounded three ways: its parts (FREQ daily at
# most, 1 <= INTERVAL <= 1000, COUNT <= MAX_OCCURRENCES, UNTIL in the date window, only the
# parts a calendar of meeting days needs), its expansion (at most MAX_OCCURRENCES dates, and
# never an unbounded scan, see `rule_dates`), and it must give a date in the window at all.

MAX_OCCURRENCES = 5000  # per rule and expansion (daily for 13 years)
MAX_CLOSURE_DAYS = 366
MAX_INTERVAL = 1000
MAX_RULE_CHARS = 500
FREQS = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY")
RULE_PARTS = (
    "FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYYEARDAY",
    "BYWEEKNO", "BYSETPOS", "WKST",
)  # fmt: skip
CYCLE_YEARS = 400  # the Gregorian calendar repeats every 400 years, weekdays and leap days too
UNTIL = re.compile(r"(\d{8})(T\d{6}Z?)?")


@lru_cache(maxsize=1024)
def _rule_parts(rule: str) -> tuple[str, dt.date | None]:
    """The rule without UNTIL (canonical: upper case, no spaces) and UNTIL's day; ValueError
    with a user's message for anything else."""
    if len(rule) > MAX_RULE_CHARS:
        raise ValueError(f"an RRULE is at most {MAX_RULE_CHARS} characters")
    parts: dict[str, str] = {}
    for pair in rule.split(";"):
        key, equals, value = (p.strip().upper() for p in pair.partition("="))
        if not equals or not value or not key.isalpha() or key in parts:
            raise ValueError("not a valid RRULE (write NAME=VALUE parts separated by ';')")
        if key not in RULE_PARTS:
            raise ValueError(
                f"not a valid RRULE for meeting days ({key[:20]} is not one of "
                f"{', '.join(RULE_PARTS)})"
            )
        parts[key] = value
    freq = parts.get("FREQ")
    if freq in ("HOURLY", "MINUTELY", "SECONDLY"):  # not a calendar of meeting days
        raise ValueError("a meeting RRULE repeats daily at most (FREQ=DAILY, WEEKLY, MONTHLY...)")
    if freq not in FREQS:
        raise ValueError(f"not a valid RRULE (FREQ must be one of {', '.join(FREQS)})")
    for key, low, high in (("INTERVAL", 1, MAX_INTERVAL), ("COUNT", 1, MAX_OCCURRENCES)):
        if key in parts:
            value = parts[key]
            if not (value.isascii() and value.isdigit() and low <= int(value[:9]) <= high):
                raise ValueError(f"{key} must be a whole number from {low} to {high}")
    until: dt.date | None = None
    if "UNTIL" in parts:
        found = UNTIL.fullmatch(parts.pop("UNTIL"))
        try:
            until = dt.datetime.strptime(found.group(1), "%Y%m%d").date() if found else None
        except ValueError:
            until = None
        if until is None:
            raise ValueError("not a valid RRULE (UNTIL is a date, YYYYMMDD or YYYYMMDDTHHMMSSZ)")
        if not FIRST_DAY <= until <= LAST_DAY:
            raise ValueError(f"UNTIL must be between {FIRST_DAY} and {LAST_DAY}")
    return ";".join(f"{k}={v}" for k, v in parts.items()), until


def _moved(day: dt.date, years: int) -> dt.date:
    return day.replace(year=day.year + years)


def rule_dates(
    rule: str, start: dt.date, first: dt.date, last: dt.date, limit: int = MAX_OCCURRENCES
) -> tuple[dt.date, ...]:
    """The days of `rule` (starting on `start`) within [first, last], at most `limit` of them.

    dateutil scans period by period until it finds an occurrence, up to the year 9999: a rule
    that matches nothing (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30) would take seconds to tens of
    seconds, whatever `between()` is asked. The rule is therefore expanded on the same calendar
    moved forward by a multiple of 400 years to just before 9999 (weekdays, leap days and week
    numbers are the same), where the scan ends within about 400 years, and the days are moved
    back. ValueError for a rule that is not valid."""
    if last < first or start > last:
        return ()
    body, until = _rule_parts(rule)
    shift = (dt.MAXYEAR - last.year) // CYCLE_YEARS * CYCLE_YEARS
    try:
        recurrence = rrulestr(body, dtstart=dt.datetime.combine(_moved(start, shift), dt.time()))
        if not isinstance(recurrence, rrule):
            raise ValueError("one rule expected")
        if until is not None:
            recurrence = recurrence.replace(
                until=dt.datetime.combine(_moved(until, shift), dt.time())
            )
        low = dt.datetime.combine(_moved(first, shift), dt.time())
        high = dt.datetime.combine(_moved(last, shift), dt.time())
        found: list[dt.date] = []
        for moment in recurrence:
            if moment > high or len(found) >= limit:
                break
            if moment >= low:
                found.append(_moved(moment.date(), -shift))
    except (ValueError, TypeError, OverflowError, IndexError, KeyError) as e:
        raise ValueError(f"not a valid RRULE ({str(e)[:120]})") from None
    return tuple(found)


@lru_cache(maxsize=1024)
def _rrule(rule: str) -> str:
    if not rule_dates(rule, FIRST_DAY, FIRST_DAY, LAST_DAY, limit=1):
        raise ValueError(f"the rule gives no date between {FIRST_DAY} and {LAST_DAY}")
    return rule


Rrule = Annotated[str, AfterValidator(_rrule)]


class Monitoring(Strict):
    tier: Tier
    # Targeted Level 1-3 (seed 001), Intensive Level 1-3 (seed 004: "Intensive Level 1-3 LEAs"):
    # required for targeted, optional for intensive, never for universal.
    level: Annotated[int, Field(ge=1, le=3)] | None = None
    cohort: Annotated[int, Field(ge=2000, le=2100)]
    sig_dis: Literal["new", "continuing", "no"] = "no"
    sig_dis_indicators: Annotated[int, Field(ge=0, le=20)] = 1
    cceis_services_start: Day | None = None

    @model_validator(mode="after")
    def _level_fits_tier(self) -> Monitoring:
        if self.tier == "targeted" and self.level is None:
            raise ValueError("a targeted LEA needs 'level' (1, 2 or 3)")
        return self

    @field_validator("level")
    @classmethod
    def _no_universal_level(cls, level: int | None, info: ValidationInfo) -> int | None:
        if level is not None and info.data.get("tier") == "universal":
            raise ValueError(
                "a universal LEA has no level (levels 1-3 are for targeted or intensive LEAs)"
            )
        return level


class Member(Strict):
    role: Role
    name: Text
    email: Email
    lead: bool = False


class Contact(Strict):
    name: Text
    email: Email


class Closure(Strict):
    start: Day = Field(alias="from")
    end: Day = Field(alias="to")
    name: Text
    # "summer": the school year's break; the district office works (these are working days),
    # but planned work that needs families or school staff is flagged when it falls here.
    kind: Literal["closure", "summer"] = "closure"

    @model_validator(mode="after")
    def _ordered(self) -> Closure:
        if self.end < self.start:
            raise ValueError("'to' is before 'from'")
        if (self.end - self.start).days >= MAX_CLOSURE_DAYS:
            raise ValueError(f"a closure spans at most {MAX_CLOSURE_DAYS} days")
        return self


class CalendarSettings(Strict):
    state_holidays: bool = True
    board_meetings: Annotated[list[Day], AfterValidator(at_most(2000, "dates"))] = []
    board_meeting_rule: Rrule | None = None
    board_packet_lead_days: Annotated[int, Field(ge=0, le=60)] = 10
    closures: Annotated[list[Closure], AfterValidator(at_most(500, "closures"))] = []


def _recipient(who: str) -> str:
    if who in ("lead", "selpa", "fmta_consultant", *ROLES) or EMAIL.fullmatch(who):
        return who
    raise ValueError(
        f"unknown role {who!r} (use lead, a team role, selpa, fmta_consultant or an address)"
    )


Recipient = Annotated[str, AfterValidator(_recipient)]


class Reminders(Strict):
    offsets_days: Annotated[
        list[Annotated[int, Field(ge=0, le=365)]], AfterValidator(at_most(100, "offsets"))
    ] = [30, 14, 7, 1, 0]
    send_at: dt.time = dt.time(8, 0)
    to: Annotated[list[Recipient], AfterValidator(at_most(50, "recipients"))] = ["lead"]
    escalate_overdue_to: Annotated[list[Recipient], AfterValidator(at_most(50, "recipients"))] = []
    digest: Literal["none", "weekly"] = "none"
    # a reminder due on a weekend, holiday or closure goes out on the working day before
    # (an overdue notice: the working day after)
    working_days_only: bool = True


class Override(Strict):
    """A profile's change to one timeline item (or to every occurrence of a series)."""

    due: Day | None = None
    start: Day | None = None
    duration_days: Annotated[int, Field(ge=1, le=250)] | None = None
    start_time: dt.time | None = None
    end_time: dt.time | None = None
    rrule: Rrule | None = None  # series: a different meeting rule
    # series: the exact dates instead of the rule
    dates: Annotated[list[Day], AfterValidator(at_most(MAX_OCCURRENCES, "dates"))] | None = None

    @model_validator(mode="after")
    def _times(self) -> Override:
        if (self.start_time is None) != (self.end_time is None):
            raise ValueError("give both 'start_time' and 'end_time', or neither")
        if self.start_time and self.end_time and self.start_time >= self.end_time:
            raise ValueError("'end_time' must be after 'start_time'")
        if self.start and self.due and self.start > self.due:
            raise ValueError("'start' is after 'due'")
        return self


class Done(Strict):
    """A done mark with details: `"<item-id>" = { on = 2024-07-09, outcome = "accepted" }`."""

    on: Day
    note: Text | None = None
    outcome: Literal["accepted", "accepted-with-conditions", "returned"] | None = None
    outcome_on: Day | None = None  # the day CDE decided (e.g. approved the plan)


class Lea(Strict):
    id: Slug
    name: Text
    cds: Annotated[str, AfterValidator(_cds)]
    timezone: Annotated[str, AfterValidator(_timezone)] = "America/Los_Angeles"
    monitoring: Monitoring
    team: Annotated[list[Member], AfterValidator(at_most(200, "members"))] = []
    contacts: dict[Literal["fmta_consultant", "selpa"], Contact] = {}
    calendar: CalendarSettings = CalendarSettings()
    reminders: Reminders = Reminders()
    overrides: dict[str, Override] = {}
    done: dict[str, Day | Done] = {}  # item id -> date done (the guide's "Done" column)

    def lead(self) -> Member | None:
        return next((m for m in self.team if m.lead), None)
