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


def timezone_name(name: str) -> str:
    """`name` if it is an IANA time zone; ValueError otherwise."""
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
    """How CDE monitors the LEA this cohort: it decides which pacing guides and items apply."""

    tier: Tier = Field(
        description="The LEA's CIM monitoring tier, as CDE's notification letter names it.",
        examples=["targeted"],
    )
    # Targeted Level 1-3 (seed 001), Intensive Level 1-3 (seed 004: "Intensive Level 1-3 LEAs"):
    # required for targeted, optional for intensive, never for universal.
    level: Annotated[int, Field(ge=1, le=3)] | None = Field(
        None,
        description="The monitoring level (1, 2 or 3): required for a targeted LEA, optional "
        "for an intensive one, never given for a universal one.",
        examples=[2],
    )
    cohort: Annotated[int, Field(ge=2000, le=2100)] = Field(
        description="The year the LEA's CIM cohort began (the year in the guide names, "
        "e.g. 2024 for the 2024 guides).",
        examples=[2024],
    )
    sig_dis: Literal["new", "continuing", "no"] = Field(
        "no",
        description="Significant disproportionality: 'new' (identified this year), "
        "'continuing' (identified again) or 'no'. It adds the Sig Dis guide and its CCEIS "
        "reports.",
        examples=["new"],
    )
    sig_dis_indicators: Annotated[int, Field(ge=0, le=20)] = Field(
        1,
        description="How many Sig Dis indicators the LEA was identified on (used for the "
        "TA hours budget).",
        examples=[2],
    )
    cceis_services_start: Day | None = Field(
        None,
        description="The day CCEIS services began (YYYY-MM-DD): starts the Sig Dis student "
        "tracking period; leave out until it is known.",
        examples=["2024-09-03"],
    )

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
    """One member of the LEA's CIM team (a [[team]] entry)."""

    role: Role = Field(
        description="The member's role on the CIM team; reminders and Stepwell box 1 name "
        "people by role.",
        examples=["sped-admin"],
    )
    name: Text = Field(description="The member's full name.", examples=["Luis Ortega"])
    email: Email = Field(
        description="Where this member's reminders go.", examples=["lortega@sunrise.example.org"]
    )
    lead: bool = Field(
        False,
        description="true for the CIM team lead (one member): reminders sent 'to lead' go to "
        "this person.",
        examples=[True],
    )


class Contact(Strict):
    """Someone outside the district: the SELPA or the LEA's FMTA consultant at CDE."""

    name: Text = Field(
        description="The contact's name (a person or an office).", examples=["East Valley SELPA"]
    )
    email: Email = Field(
        description="Where overdue notices escalated to this contact go.",
        examples=["office@eastvalley-selpa.example.org"],
    )


class Closure(Strict):
    """Days the district is closed (a break) or on summer break."""

    start: Day = Field(
        alias="from",
        description="The first day of the closure (YYYY-MM-DD).",
        examples=["2024-12-23"],
    )
    end: Day = Field(
        alias="to",
        description="The last day of the closure, included (YYYY-MM-DD).",
        examples=["2025-01-03"],
    )
    name: Text = Field(description="What the closure is called.", examples=["Winter break"])
    # "summer": the school year's break; the district office works (these are working days),
    # but planned work that needs families or school staff is flagged when it falls here.
    kind: Literal["closure", "summer"] = Field(
        "closure",
        description="'closure': no one works, no work is planned on these days. 'summer': "
        "the office works, but planned work that needs families or school staff is flagged.",
        examples=["summer"],
    )

    @model_validator(mode="after")
    def _ordered(self) -> Closure:
        if self.end < self.start:
            raise ValueError("'to' is before 'from'")
        if (self.end - self.start).days >= MAX_CLOSURE_DAYS:
            raise ValueError(f"a closure spans at most {MAX_CLOSURE_DAYS} days")
        return self


class CalendarSettings(Strict):
    """The district's calendar: holidays, board meetings and closures (working days)."""

    state_holidays: bool = Field(
        True,
        description="Count California state holidays as non-working days.",
        examples=[True],
    )
    board_meetings: Annotated[list[Day], AfterValidator(at_most(2000, "dates"))] = Field(
        [],
        description="The governing board's meeting dates (YYYY-MM-DD); board approvals land on "
        "the latest one that still meets CDE's deadline.",
        examples=[["2024-10-08", "2024-11-12"]],
    )
    board_meeting_rule: Rrule | None = Field(
        None,
        description="The board's regular meetings as a repeat rule (RFC 5545 RRULE), used "
        "with or instead of board_meetings.",
        examples=["FREQ=MONTHLY;BYDAY=2TU", "FREQ=MONTHLY;BYDAY=3TH"],
    )
    board_packet_lead_days: Annotated[int, Field(ge=0, le=60)] = Field(
        10,
        description="Working days before a board meeting that its packet is due.",
        examples=[10],
    )
    closures: Annotated[list[Closure], AfterValidator(at_most(500, "closures"))] = Field(
        [],
        description="Breaks and closures (winter, spring, summer).",
        examples=[[{"from": "2024-12-23", "to": "2025-01-03", "name": "Winter break"}]],
    )


def _recipient(who: str) -> str:
    if who in ("lead", "selpa", "fmta_consultant", *ROLES) or EMAIL.fullmatch(who):
        return who
    raise ValueError(
        f"unknown role {who!r} (use lead, a team role, selpa, fmta_consultant or an address)"
    )


Recipient = Annotated[str, AfterValidator(_recipient)]
Delivery = Literal["each", "daily", "weekly"]
DELIVERIES: tuple[Delivery, ...] = ("each", "daily", "weekly")


class Reminders(Strict):
    """Who gets reminder emails, and when."""

    offsets_days: Annotated[
        list[Annotated[int, Field(ge=0, le=365)]], AfterValidator(at_most(100, "offsets"))
    ] = Field(
        [30, 14, 7, 1, 0],
        description="Days before each date that a reminder goes out (0: on the day).",
        examples=[[30, 14, 7, 1, 0]],
    )
    send_at: dt.time = Field(
        dt.time(8, 0),
        description="The time of day reminders go out, in the LEA's time zone (HH:MM).",
        examples=["08:00"],
    )
    to: Annotated[list[Recipient], AfterValidator(at_most(50, "recipients"))] = Field(
        ["lead"],
        description="Who gets reminders: 'lead' (the team member with lead = true), a team "
        "role, 'selpa', 'fmta_consultant' or an email address. [] sends no reminders.",
        examples=[["lead", "sped-admin"]],
    )
    escalate_overdue_to: Annotated[list[Recipient], AfterValidator(at_most(50, "recipients"))] = (
        Field(
            [],
            description="Who is copied when a CDE deadline is missed: usually 'selpa' and/or "
            "'fmta_consultant' (each must be defined under [contacts]).",
            examples=[["selpa", "fmta_consultant"]],
        )
    )
    digest: Literal["none", "weekly"] = Field(
        "none",
        description="'weekly': a Monday overview of the coming weeks, in the same email as "
        "that morning's reminders (new profiles have it on).",
        examples=["weekly"],
    )
    delivery: Annotated[dict[Recipient, Delivery], AfterValidator(at_most(50, "delivery"))] = (
        Field(
            {},
            description="How often each person gets email, by role, 'lead' or address: 'each' "
            "(every reminder, bundled per moment: the default), 'daily' (one summary each "
            "working morning) or 'weekly' (the Monday overview and overdue notices only). A "
            "choice made from an email's link wins over this.",
            examples=[{"lead": "each", "superintendent": "weekly"}],
        )
    )
    # a reminder due on a weekend, holiday or closure goes out on the working day before
    # (an overdue notice: the working day after)
    working_days_only: bool = Field(
        True,
        description="A reminder due on a weekend, holiday or closure goes out the working day "
        "before (an overdue notice: the working day after); false sends it on the day.",
        examples=[True],
    )


class Override(Strict):
    """A profile's change to one timeline item (or to every occurrence of a series)."""

    due: Day | None = Field(
        None,
        description="The district's own date for this item (YYYY-MM-DD); CDE's deadlines "
        "stay shown as CDE's.",
        examples=["2025-03-12"],
    )
    start: Day | None = Field(
        None,
        description="The day work on this item starts (YYYY-MM-DD).",
        examples=["2025-02-03"],
    )
    duration_days: Annotated[int, Field(ge=1, le=250)] | None = Field(
        None,
        description="Working days the work takes (planned backwards from the date).",
        examples=[25],
    )
    start_time: dt.time | None = Field(
        None, description="A meeting's start time (HH:MM), with end_time.", examples=["15:30"]
    )
    end_time: dt.time | None = Field(
        None, description="A meeting's end time (HH:MM), with start_time.", examples=["16:30"]
    )
    rrule: Rrule | None = Field(
        None,
        description="For a series (the monthly CIM team meeting): the district's repeat rule "
        "(RFC 5545 RRULE) instead of pacing's assumed day.",
        examples=["FREQ=MONTHLY;BYDAY=2WE"],
    )  # series: a different meeting rule
    # series: the exact dates instead of the rule
    dates: Annotated[list[Day], AfterValidator(at_most(MAX_OCCURRENCES, "dates"))] | None = Field(
        None,
        description="For a series: the exact dates (YYYY-MM-DD) instead of a rule.",
        examples=[["2025-01-15", "2025-02-12"]],
    )

    @field_validator("start_time", "end_time")
    @classmethod
    def _minutes(cls, value: dt.time | None) -> dt.time | None:
        """Meeting times are HH:MM wherever they are shown: seconds would be lost there (and
        23:59:00 - 23:59:59 shown as a meeting that ends when it starts)."""
        if value is not None and (value.second or value.microsecond):
            raise ValueError(f"a meeting time is HH:MM, without seconds (got {value:%H:%M:%S})")
        return value

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

    on: Day = Field(
        description="The day it was done or sent (YYYY-MM-DD).", examples=["2024-07-09"]
    )
    note: Text | None = Field(
        None,
        description="What was done or sent, shown in the timeline and checklist.",
        examples=["Sent via Stepwell"],
    )
    outcome: Literal["accepted", "accepted-with-conditions", "returned"] | None = Field(
        None,
        description="For a submission: what CDE said ('returned' keeps the item open).",
        examples=["accepted"],
    )
    outcome_on: Day | None = Field(
        None,
        description="The day CDE decided (e.g. approved the plan), YYYY-MM-DD.",
        examples=["2024-08-02"],
    )  # the day CDE decided (e.g. approved the plan)


class Lea(Strict):
    """An LEA profile: one TOML file per LEA (local educational agency) in CIM monitoring."""

    id: Slug = Field(
        description="A short name for the LEA: lowercase letters, digits and dashes; used in "
        "calendar and page URLs. Unique among the profiles served together.",
        examples=["sunrise-usd"],
    )
    name: Text = Field(
        description="The LEA's full name, as on CDE's letters.",
        examples=["Sunrise Unified School District"],
    )
    cds: Annotated[str, AfterValidator(_cds)] = Field(
        description="The LEA's CDS code: 14 digits (or the 7-digit county-district code).",
        examples=["19647330000000"],
    )
    timezone: Annotated[str, AfterValidator(timezone_name)] = Field(
        "America/Los_Angeles",
        description="The IANA time zone of the LEA's dates and reminder times.",
        examples=["America/Los_Angeles"],
    )
    monitoring: Monitoring = Field(
        description="The LEA's CIM monitoring: tier, level, cohort and Sig Dis status."
    )
    team: Annotated[list[Member], AfterValidator(at_most(200, "members"))] = Field(
        [], description="The LEA's CIM team, one [[team]] entry per member."
    )
    contacts: dict[Literal["fmta_consultant", "selpa"], Contact] = Field(
        {},
        description="People outside the district that overdue notices can be escalated to: "
        "'selpa' and 'fmta_consultant' (the LEA's FMTA consultant at CDE).",
        examples=[{"selpa": {"name": "East Valley SELPA", "email": "office@example.org"}}],
    )
    calendar: CalendarSettings = Field(
        CalendarSettings(),
        description="The district's working days and board meetings.",
    )
    reminders: Reminders = Field(
        Reminders(), description="Reminder emails: who gets them and when."
    )
    overrides: dict[str, Override] = Field(
        {},
        description="The district's own dates, times or durations for timeline items, keyed "
        "by item id (see `pacing timeline`).",
        examples=[
            {"implementation-2024/step-4/cim-team-meeting": {"rrule": "FREQ=MONTHLY;BYDAY=2WE"}}
        ],
    )
    done: dict[str, Day | Done] = Field(
        {},
        description="Items already done (the guide's 'Done' column), keyed by item id: a date, "
        "or { on, outcome, outcome_on, note }.",
        examples=[{"targeted-l3-2024/step-1/step-1-submission": "2024-07-09"}],
    )  # item id -> date done (the guide's "Done" column)

    def lead(self) -> Member | None:
        return next((m for m in self.team if m.lead), None)

    @property
    def short_name(self) -> str:
        """ "Riverbend USD" for "Riverbend Unified School District"."""
        return (
            self.name.replace("Unified School District", "USD")
            .replace("Elementary School District", "ESD")
            .replace("School District", "SD")
        )
