"""One timeline item and what its date is: CDE's, pacing's assumption, pacing's plan, the LEA's.

This is the one place that decides whether a date can be overdue and whom a miss may alarm;
every front end only renders what it says here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from pacing.core.guide import Item, Kind, Requirement, Resource

Status = Literal[
    "done", "overdue", "behind-plan", "at-risk", "due-soon", "upcoming", "past", "not-applicable"
]
DateSource = Literal["cde", "assumed", "planned", "lea"]
Outcome = Literal["accepted", "accepted-with-conditions", "returned"]
OUTCOMES: tuple[Outcome, ...] = ("accepted", "accepted-with-conditions", "returned")

# What each source means, in words a superintendent reads without a glossary.
SOURCE_NAMES: dict[DateSource, str] = {
    "cde": "CDE's date",
    "assumed": "Assumed date (the guide gives none; confirm locally)",
    "planned": "Plan (pacing's estimate, not a CDE deadline)",
    "lea": "District's own date",
}
STATUS_NAMES: dict[Status, str] = {
    "done": "Done",
    "overdue": "Overdue",
    "behind-plan": "Behind plan",
    "at-risk": "At risk",
    "due-soon": "Due soon",
    "upcoming": "Upcoming",
    "past": "Past",
    "not-applicable": "Not applicable",
}


@dataclass(frozen=True)
class DoneMark:
    """The pacing guide's "Done" column: when, and for submissions what CDE said."""

    on: dt.date
    note: str | None = None
    outcome: Outcome | None = None
    outcome_on: dt.date | None = None  # the day CDE accepted (e.g. approved the plan)


@dataclass(frozen=True)
class Entry:
    """One timeline item: a deadline, window, meeting, task or report of one LEA."""

    id: str
    guide: str
    step: int
    title: str
    kind: Kind
    due: dt.date
    start: dt.date | None
    start_time: dt.time | None
    end_time: dt.time | None
    requirement: Requirement
    status: Status
    rule: str
    date_source: DateSource = "cde"
    cde_dated: bool = True  # the guide's own date is CDE's (the LEA may have moved it)
    program: str = ""
    na_reason: str | None = None
    latest_start: dt.date | None = None
    latest_finish: dt.date | None = None
    earliest_start: dt.date | None = None
    slack_days: int | None = None
    duration_days: int | None = None
    depends_on: tuple[str, ...] = ()
    follows: tuple[str, ...] = ()  # starts after these are in (prior steps' submissions)
    submit_to: tuple[str, ...] = ()
    resources: tuple[Resource, ...] = ()
    series: str | None = None
    occurrence: str | None = None
    done_on: dt.date | None = None
    done_note: str | None = None
    outcome: Outcome | None = None
    outcome_on: dt.date | None = None
    assumption: str | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    item: Item = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    def evolve(self, **changes: Any) -> Entry:
        """A copy with `changes` (dataclasses.replace without re-running __init__: the timeline
        makes one per item per stage, and this is the core's hot path)."""
        unknown = changes.keys() - self.__dict__.keys()
        if unknown:
            raise TypeError(f"Entry has no field {', '.join(sorted(unknown))}")
        new = object.__new__(Entry)
        new.__dict__.update(self.__dict__, **changes)
        return new

    @property
    def sort_key(self) -> tuple[dt.date, dt.date, str]:
        return (self.due, self.start or self.due, self.id)

    @property
    def is_open(self) -> bool:
        return self.status not in ("done", "past", "not-applicable")

    @property
    def escalates(self) -> bool:
        """Overdue on CDE's own date (or the LEA's move of one), a required deadline or report
        with something to submit: the only case anyone outside the LEA's team hears about."""
        return (
            self.status == "overdue"
            and bool(self.submit_to)
            and self.cde_dated
            and self.date_source in ("cde", "lea")
            and self.requirement == "required"
            and self.kind in ("deadline", "report")
        )

    @property
    def date_label(self) -> str:
        """What the due date is, e.g. "CDE deadline", "Plan: finish by"."""
        return date_label(self.date_source, self.kind)


def date_label(source: DateSource, kind: Kind) -> str:
    if source == "planned":
        return "Plan: finish by"
    if kind == "meeting":
        return {"cde": "CDE meeting", "assumed": "Meeting (assumed date)"}.get(source, "Meeting")
    if kind == "window":
        return {"cde": "CDE window ends", "assumed": "Window ends (assumed)"}.get(
            source, "Window ends (district's date)"
        )
    return {
        "cde": "CDE deadline",
        "assumed": "Due (assumed date)",
        "lea": "Due (district's date)",
    }[source]


# ---- Words the front ends add to the labels above (issue 7 rendering): the exporters and
# the emails use these, never their own.

SOURCE_TAGS: dict[DateSource, str] = {  # short forms: calendar categories, chart legend
    "cde": "CDE date",
    "assumed": "Assumed date",
    "planned": "Plan",
    "lea": "District's date",
}
OUTCOME_NAMES: dict[Outcome, str] = {
    "accepted": "Accepted by CDE",
    "accepted-with-conditions": "Accepted by CDE with conditions",
    "returned": "Returned by CDE",
}


def span_label(source: DateSource) -> str:
    """What a start-to-end span is, e.g. "CDE window" (its end is "CDE window ends")."""
    return {
        "cde": "CDE window",
        "assumed": "Window (assumed dates)",
        "planned": "Plan",
        "lea": "Window (district's dates)",
    }[source]


def source_sentence(source: DateSource, kind: Kind) -> str:
    """Where a date comes from, in one sentence, e.g. "This is CDE's deadline."."""
    if source == "planned":
        return (
            "This date is pacing's plan, an estimate to help you finish on time; "
            "it is not a CDE deadline."
        )
    noun = {"meeting": "meeting date", "window": "window"}.get(kind, "deadline")
    if source == "cde":
        return f"This is CDE's {noun}."
    if source == "assumed":
        return f"This {noun} is pacing's assumption (the guide gives none); confirm it locally."
    return f"This is your district's own {noun}, set in its pacing profile."
