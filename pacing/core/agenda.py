"""What is due next across LEAs, and items by their short ids (pure: no I/O, no clock).

The agenda answers "what is due this week?": the open items of each LEA's timeline (meetings
and windows too) due, opening or to be started within the next `days` days, grouped by week (Monday-based, in each
LEA's local dates: every timeline carries its own `today`), then one line per LEA saying how
much is overdue or behind plan instead of listing every missed row.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pacing.core.entry import DateSource, Entry, span_label
from pacing.core.timeline import Timeline

DEFAULT_DAYS = 14
PLAN_START = "Plan: start by"  # the words the calendar's "Start by" events use
LISTED = ("due-soon", "upcoming", "at-risk")  # open and not yet missed
OVERDUE_WORDS: dict[DateSource, str] = {"cde": "CDE", "assumed": "assumed", "lea": "district's"}


def short_id(e: Entry) -> str:
    """The item part of an id: "box-19-root-cause-1", "step-2-submission",
    "quarterly-report/2025-03" (without "<guide>/step-<n>/")."""
    prefix = f"{e.guide}/step-{e.step}/"
    return e.id[len(prefix) :] if e.id.startswith(prefix) else e.id


def monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


@dataclass(frozen=True)
class Line:
    """One next action: `day` places it in a week; `words` and `date` are what is shown."""

    lea_id: str
    lea: str  # the LEA's short name
    entry: Entry
    day: dt.date
    words: str  # Entry.date_label; span_label for a window opening; PLAN_START: work to start
    date: dt.date
    until: dt.date | None = None  # a window opening: its end

    @property
    def short_id(self) -> str:
        return short_id(self.entry)


@dataclass(frozen=True)
class Week:
    monday: dt.date
    this_week: bool
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Behind:
    """One LEA's missed dates: overdue (by whose date), behind plan, at risk beyond the
    horizon (should have started)."""

    lea_id: str
    lea: str
    overdue: tuple[tuple[DateSource, int], ...]
    behind_plan: int
    at_risk: int

    @property
    def overdue_count(self) -> int:
        return sum(n for _, n in self.overdue)

    @property
    def text(self) -> str:
        """ "Riverbend USD: 3 overdue (CDE), 2 behind plan"."""
        parts = []
        if self.overdue:
            if len(self.overdue) == 1:
                whose = OVERDUE_WORDS[self.overdue[0][0]]
            else:
                whose = ", ".join(f"{n} {OVERDUE_WORDS[s]}" for s, n in self.overdue)
            parts.append(f"{self.overdue_count} overdue ({whose})")
        if self.behind_plan:
            parts.append(f"{self.behind_plan} behind plan")
        if self.at_risk:
            parts.append(f"{self.at_risk} at risk (should have started)")
        return f"{self.lea}: {', '.join(parts)}"


@dataclass(frozen=True)
class Agenda:
    days: int
    weeks: tuple[Week, ...]
    behind: tuple[Behind, ...]


def agenda(timelines: Sequence[Timeline], days: int = DEFAULT_DAYS) -> Agenda:
    """The next `days` days (each LEA's `today` through `today + days`) of every timeline."""
    lines = [line for t in timelines for line in _lines(t, days)]
    lines.sort(key=lambda x: (x.day, x.lea, x.date, x.entry.sort_key))
    firsts = [monday(t.today) for t in timelines]
    current = min(firsts) if firsts else None
    weeks: dict[dt.date, list[Line]] = {}
    if current is not None:
        weeks[current] = []  # this week always comes first, if only to say it is clear
    for line in lines:
        weeks.setdefault(monday(line.day), []).append(line)
    return Agenda(
        days,
        tuple(Week(m, m == current, tuple(group)) for m, group in sorted(weeks.items())),
        tuple(b for t in timelines if (b := _behind(t, days)) is not None),
    )


def _lines(t: Timeline, days: int) -> list[Line]:
    end = t.today + dt.timedelta(days=days)
    name = t.lea.short_name
    found = []
    for e in t.items:
        if e.status not in LISTED:
            continue
        if t.today <= e.due <= end:  # due (a meeting, a window's end) within the horizon
            found.append(Line(t.lea.id, name, e, e.due, e.date_label, e.due))
        elif e.kind == "window" and e.start and t.today <= e.start <= end:  # opening soon
            words = span_label(e.date_source)
            found.append(Line(t.lea.id, name, e, e.start, words, e.start, e.due))
        elif e.latest_start and t.today <= e.latest_start <= end:  # work to start
            found.append(Line(t.lea.id, name, e, e.latest_start, PLAN_START, e.latest_start))
    return found


def _behind(t: Timeline, days: int) -> Behind | None:
    end = t.today + dt.timedelta(days=days)
    overdue = Counter(e.date_source for e in t.items if e.status == "overdue")
    behind = sum(e.status == "behind-plan" for e in t.items)
    listed = {line.entry.id for line in _lines(t, days)}
    at_risk = sum(e.status == "at-risk" and e.id not in listed and e.due > end for e in t.items)
    if not (overdue or behind or at_risk):
        return None
    order = [s for s in OVERDUE_WORDS if overdue[s]]
    return Behind(
        t.lea.id, t.lea.short_name, tuple((s, overdue[s]) for s in order), behind, at_risk
    )


# ---------------------------------------------------------------- items by short id


@dataclass(frozen=True)
class Found:
    """What an id given on the command line matches: one entry, or several (ambiguous), or
    none (with did-you-mean suggestions)."""

    entry: Entry | None
    matches: tuple[str, ...] = ()  # short ids, when ambiguous
    suggestions: tuple[str, ...] = ()  # close short ids, when nothing matched


def _forms(e: Entry) -> tuple[str, ...]:
    """The ways to name an item: its id, without the guide, without guide and step."""
    step = f"step-{e.step}/{short_id(e)}"
    return tuple(dict.fromkeys((e.id, step, short_id(e))))


def find(items: Sequence[Entry], query: str) -> Found:
    """The item `query` names: a full id, or a unique short id ("box-19-root-cause-1",
    "step-2/box-19-root-cause-1"), or a unique start of one ending at a "-" or "/" ("box-19",
    "cim-team-meeting/2025-03"). An exact name wins over a start of one."""
    query = query.strip().strip("/")
    found = _find(items, query)
    padded = re.sub(r"(^|/)box-(\d)(?=$|-)", r"\1box-0\2", query)  # "box-1": "box-01-..."
    if found.entry is None and not found.matches and padded != query:
        return _find(items, padded) if _find(items, padded).entry else found
    return found


def _find(items: Sequence[Entry], query: str) -> Found:
    exact = [e for e in items if query in _forms(e)]
    if len(exact) == 1:
        return Found(exact[0])
    starts = exact or [
        e
        for e in items
        if any(f.startswith(query + "-") or f.startswith(query + "/") for f in _forms(e))
    ]
    if len(starts) == 1:
        return Found(starts[0])
    if starts:
        shorts = [short_id(e) for e in starts]
        twice = {n for n in shorts if shorts.count(n) > 1}  # one short id in two guides
        return Found(None, matches=tuple(e.id if short_id(e) in twice else short_id(e)
                                         for e in starts))  # fmt: skip
    names = list(dict.fromkeys(short_id(e) for e in items))
    close = difflib.get_close_matches(query, names, n=3, cutoff=0.6)
    if not close and "/" in query:  # a full id with a typo: compare the item parts
        close = difflib.get_close_matches(query.rsplit("/", 1)[-1], names, n=3, cutoff=0.6)
    if not close:  # "box-9": the names that start like it
        head = query.split("/")[-1][:5]
        close = [n for n in names if n.startswith(head)][:3]
    return Found(None, suggestions=tuple(close))
