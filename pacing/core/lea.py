"""The LEA profile (one TOML file per LEA; keys per shared/DESIGN.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from dateutil.rrule import DAILY, YEARLY, rrulestr
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pacing.core.fields import EMAIL, ROLES, Email, Role, Slug, Text, Tier


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
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


def _rrule(rule: str) -> str:
    try:
        parsed = rrulestr(rule, dtstart=dt.datetime(2024, 1, 1))
    except (ValueError, TypeError) as e:
        raise ValueError(f"not a valid RRULE ({e})") from None
    if getattr(parsed, "_freq", YEARLY) > DAILY:  # hourly and finer: not a meeting calendar
        raise ValueError("a meeting RRULE repeats daily at most (FREQ=DAILY, WEEKLY, MONTHLY...)")
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
    cceis_services_start: dt.date | None = None

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
    start: dt.date = Field(alias="from")
    end: dt.date = Field(alias="to")
    name: Text
    # "summer": the school year's break; the district office works (these are working days),
    # but planned work that needs families or school staff is flagged when it falls here.
    kind: Literal["closure", "summer"] = "closure"

    @model_validator(mode="after")
    def _ordered(self) -> Closure:
        if self.end < self.start:
            raise ValueError("'to' is before 'from'")
        return self


class CalendarSettings(Strict):
    state_holidays: bool = True
    board_meetings: list[dt.date] = []
    board_meeting_rule: Rrule | None = None
    board_packet_lead_days: Annotated[int, Field(ge=0, le=60)] = 10
    closures: list[Closure] = []


def _recipient(who: str) -> str:
    if who in ("lead", "selpa", "fmta_consultant", *ROLES) or EMAIL.fullmatch(who):
        return who
    raise ValueError(
        f"unknown role {who!r} (use lead, a team role, selpa, fmta_consultant or an address)"
    )


Recipient = Annotated[str, AfterValidator(_recipient)]


class Reminders(Strict):
    offsets_days: list[Annotated[int, Field(ge=0, le=365)]] = [30, 14, 7, 1, 0]
    send_at: dt.time = dt.time(8, 0)
    to: list[Recipient] = ["lead"]
    escalate_overdue_to: list[Recipient] = []
    digest: Literal["none", "weekly"] = "none"
    # a reminder due on a weekend, holiday or closure goes out on the working day before
    # (an overdue notice: the working day after)
    working_days_only: bool = True


class Override(Strict):
    """A profile's change to one timeline item (or to every occurrence of a series)."""

    due: dt.date | None = None
    start: dt.date | None = None
    duration_days: Annotated[int, Field(ge=1, le=250)] | None = None
    start_time: dt.time | None = None
    end_time: dt.time | None = None
    rrule: Rrule | None = None  # series: a different meeting rule
    dates: list[dt.date] | None = None  # series: the exact dates instead of the rule

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

    on: dt.date
    note: Text | None = None
    outcome: Literal["accepted", "accepted-with-conditions", "returned"] | None = None
    outcome_on: dt.date | None = None  # the day CDE decided (e.g. approved the plan)


class Lea(Strict):
    id: Slug
    name: Text
    cds: Annotated[str, AfterValidator(_cds)]
    timezone: Annotated[str, AfterValidator(_timezone)] = "America/Los_Angeles"
    monitoring: Monitoring
    team: list[Member] = []
    contacts: dict[Literal["fmta_consultant", "selpa"], Contact] = {}
    calendar: CalendarSettings = CalendarSettings()
    reminders: Reminders = Reminders()
    overrides: dict[str, Override] = {}
    done: dict[str, dt.date | Done] = {}  # item id -> date done (the guide's "Done" column)

    def lead(self) -> Member | None:
        return next((m for m in self.team if m.lead), None)
