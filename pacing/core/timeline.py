"""Expand guides + an LEA profile + today into the LEA's timeline (pure: no I/O, no clock)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import cast

from pacing.core.dates import Dates, long_date, series_dates, single, source_label
from pacing.core.entry import DateSource, DoneMark, Entry, Status
from pacing.core.guide import (
    Guide,
    Item,
    Requirement,
    Selectable,
    applicable_guides,
    missing_guides,
    select,
)
from pacing.core.lea import Done, Lea, Override
from pacing.core.periods import Band, timeline_periods
from pacing.core.plan import Plan, Slot, backward_plan
from pacing.core.workdays import WorkCalendar

__all__ = [
    "Entry", "Status", "Timeline", "applicable_guides", "date_conflicts", "expand",
    "missing_guides",
]  # fmt: skip
UNCONFIRMED_NOTE = "assumed date: confirm it against CDE's guide"
DUE_SOON_DAYS = 14
NO_OVERRIDE = Override()
CONTACT_LABELS = {"fmta_consultant": "FMTA consultant", "selpa": "SELPA"}
Marks = Mapping[str, DoneMark]


@dataclass(frozen=True)
class Timeline:
    lea: Lea
    today: dt.date
    items: tuple[Entry, ...]
    steps: Mapping[int, str]
    assumptions: tuple[str, ...] = ()
    calendar: WorkCalendar = field(default_factory=WorkCalendar, compare=False)
    periods: tuple[Band, ...] = ()  # the report periods, for the chart and the checklist
    # what the plan lacks, e.g. no pacing guide for the LEA's cohort (never a silent gap)
    warnings: tuple[str, ...] = ()

    def get(self, item_id: str) -> Entry:
        return next(e for e in self.items if e.id == item_id)


def expand(
    guides: Sequence[Guide],
    lea: Lea,
    today: dt.date,
    done: Mapping[str, dt.date | DoneMark] | None = None,
) -> Timeline:
    """The LEA's timeline as of `today`: every applicable guide's items, dated and planned."""
    marks = {k: done_mark(v) for k, v in {**lea.done, **(done or {})}.items()}
    chosen = applicable_guides(guides, lea)
    drafts = [d for g in chosen for item in g.items for d in _drafts(g, item, lea, marks)]
    calendar = lea_calendar(lea, drafts)
    drafts = [_settle(d, calendar) for d in drafts]
    done_on = {k: m.on for k, m in marks.items() if m.outcome != "returned"}  # as marked
    marks = {**_closed_by_submissions(drafts, marks), **marks}
    meetings = board_meetings(lea, calendar_years(drafts))
    plan = backward_plan(drafts, calendar, lea, meetings, done_on)
    drafts = _date_undated(drafts, plan)
    items = sorted(
        (_finish(d, plan, calendar, today, marks, lea) for d in drafts), key=lambda e: e.sort_key
    )
    steps = {s.number: s.title for g in guides for s in g.steps}
    periods = timeline_periods(chosen, lea)
    assumptions = [a for g in chosen for a in g.assumptions]
    assumptions += [p.assumption for g in chosen for p in g.periods.values() if p.assumption]
    assumptions += [_unconfirmed_words(g) for g in chosen if g.unconfirmed_items()]
    warnings = tuple(missing_guides(guides, lea))
    return Timeline(
        lea,
        today,
        tuple(items),
        steps,
        tuple(dict.fromkeys(assumptions)),
        calendar,
        periods,
        warnings,
    )


def _unconfirmed_words(guide: Guide) -> str:
    """One assumption line for a guide whose dates are not yet confirmed against CDE's."""
    items = guide.unconfirmed_items()
    notes = "; ".join(dict.fromkeys(i.date_note or UNCONFIRMED_NOTE for i in items))
    return (
        f"{guide.program or guide.title}: {len(items)} items' dates are assumed ({notes}); "
        "until the guide says confirmed = true they are never escalated to contacts outside "
        "the LEA"
    )


def done_mark(value: dt.date | Done | DoneMark) -> DoneMark:
    if isinstance(value, DoneMark):
        return value
    if isinstance(value, Done):
        return DoneMark(value.on, value.note, value.outcome, value.outcome_on)
    return DoneMark(value)


def calendar_years(drafts: Sequence[Entry]) -> tuple[int, int]:
    years = [d.due.year for d in drafts if d.due != dt.date.max] or [2024]
    return min(years) - 1, max(years) + 1


def lea_calendar(lea: Lea, drafts: Sequence[Entry]) -> WorkCalendar:
    """Weekends, state holidays and closures; a summer break is not one (the office works)."""
    closures = [(c.start, c.end, c.name) for c in lea.calendar.closures if c.kind == "closure"]
    return WorkCalendar.build(calendar_years(drafts), lea.calendar.state_holidays, closures)


def board_meetings(lea: Lea, years: tuple[int, int]) -> list[dt.date]:
    days = set(lea.calendar.board_meetings)
    if lea.calendar.board_meeting_rule:
        days.update(_rule_days(lea.calendar.board_meeting_rule, years))
    return sorted(days)


@lru_cache(maxsize=256)
def _rule_days(rule: str, years: tuple[int, int]) -> tuple[dt.date, ...]:
    """The board meeting days of `rule` in those years: at most MAX_OCCURRENCES, never an
    unbounded scan (see `rule_dates`)."""
    from pacing.core.lea import rule_dates

    first = dt.date(years[0], 1, 1)
    return rule_dates(rule, first, first, dt.date(years[1], 12, 31))


def _drafts(guide: Guide, item: Item, lea: Lea, marks: Marks) -> Iterator[Entry]:
    """The item's occurrences, dated, with the LEA's overrides applied (not yet planned)."""
    base = f"{guide.id}/step-{item.step}/{item.id}"
    prefix = f"{guide.id}/"
    na_reason = _na_reason(item, lea)
    requirement = cast("Requirement | None", select(item.requirement, lea)) or "optional"
    submit_to = tuple(_recipient_label(r, lea) for r in select(item.submit_to, lea) or [])
    over = lea.overrides.get(base, NO_OVERRIDE)
    extra: list[str] = []
    if item.required_if_conditions:
        submission = prefix + _step_of(guide, item.required_if_conditions)
        if _outcome(marks, submission) == "accepted-with-conditions":
            requirement = "required"
            extra.append("Required: the Step 1 submission was accepted with conditions")
    where = item.series.period if item.series else item.when.period if item.when else None
    period = guide.periods[where] if where else None
    assumption = item.assumption or (period.assumption if period else None)
    source: DateSource = "planned" if item.when is None and item.series is None else "cde"
    if assumption and source == "cde":
        source = "assumed"
    if guide.unconfirmed(item):  # e.g. shifted from last cohort's guide: not CDE's until confirmed
        source = "assumed"
        note = item.date_note or UNCONFIRMED_NOTE
        assumption = f"{note}; {assumption}" if assumption else note
    cde_dated = source == "cde"
    if item.series:
        occurrences: Iterator[Dates] = series_dates(guide, item.series, lea, over.rrule, over.dates)
        if over.rrule or over.dates:
            source, assumption = "lea", None
    else:
        dates = single(guide, item, lea)
        approved = _accepted_on(marks, prefix, guide, item)
        if approved:
            rule = f'{source_label(guide)}: "{item.when.text if item.when else ""}": from CDE\'s '
            dates = dataclasses.replace(
                dates, start=approved, rule=rule + f"approval on {long_date(approved)}"
            )
            source, assumption = "cde", None
        occurrences = iter([dates])
    for dates in occurrences:
        entry_id = f"{base}/{dates.occurrence}" if dates.occurrence else base
        notes = [n for n in (dates.note, item.condition, *extra) if n]
        entry = Entry(
            id=entry_id,
            guide=guide.id,
            step=item.step,
            title=item.title.replace("{span}", dates.span),
            kind=item.kind,
            due=dates.due,
            start=dates.start,
            start_time=dates.start_time,
            end_time=dates.end_time,
            requirement=requirement,
            status="not-applicable" if na_reason else "upcoming",
            rule=dates.rule,
            date_source=source,
            cde_dated=cde_dated,
            program=guide.program or guide.title,
            na_reason=na_reason,
            duration_days=item.duration_days,
            depends_on=tuple(prefix + _step_of(guide, d) for d in item.depends_on),
            follows=tuple(prefix + _step_of(guide, d) for d in item.follows),
            submit_to=submit_to,
            resources=tuple(item.resources),
            series=base if item.series else None,
            occurrence=dates.occurrence,
            assumption=assumption,
            notes=tuple(notes),
            item=item,
        )
        if dates.occurrence and entry_id != base:
            entry = _override(entry, over, series_level=True)
        yield _override(entry, lea.overrides.get(entry_id, NO_OVERRIDE), series_level=False)


def _outcome(marks: Marks, item_id: str) -> str | None:
    mark = marks.get(item_id)
    return mark.outcome if mark else None


def _accepted_on(marks: Marks, prefix: str, guide: Guide, item: Item) -> dt.date | None:
    """The day CDE accepted the submission this item starts at (e.g. the plan's approval)."""
    if not item.starts_at_acceptance:
        return None
    mark = marks.get(prefix + _step_of(guide, item.starts_at_acceptance))
    if mark is None or mark.outcome not in ("accepted", "accepted-with-conditions"):
        return None
    return mark.outcome_on or mark.on


def _settle(draft: Entry, calendar: WorkCalendar) -> Entry:
    """An assumed day on a non-working day moves to the next working day (CDE's and the
    LEA's own dates stay as given)."""
    if draft.date_source != "assumed" or draft.na_reason or draft.due == dt.date.max:
        return draft
    if draft.item is None or not draft.item.assumption:  # only the years are assumed: the
        return draft  # day itself is CDE's ("Due July 10 each year")
    if draft.start and draft.start != draft.due:  # a window: its span is the assumption
        return draft
    why = calendar.why_closed(draft.due)
    if not why:
        return draft
    moved = calendar.on_or_after(draft.due)
    note = (
        f"Assumed date moved from {draft.due:%A}, {long_date(draft.due)} ({why}) to "
        f"{moved:%A}, {long_date(moved)}, the next working day"
    )
    return draft.evolve(due=moved, notes=(*draft.notes, note))


def _closed_by_submissions(drafts: Sequence[Entry], marks: Marks) -> dict[str, DoneMark]:
    """A step's submission, done (and not returned), closes the work of its step it depends
    on: done on the submission's date, with a note."""
    by_id = {d.id: d for d in drafts}
    closed: dict[str, DoneMark] = {}
    for d in drafts:
        mark = marks.get(d.id)
        if mark is None or mark.outcome == "returned" or d.item is None or not d.item.submission:
            continue
        note = f"Closed by \u201c{d.title}\u201d, done {long_date(mark.on)}"
        stack = list(d.depends_on)
        while stack:
            need = by_id.get(stack.pop())
            if need is None or need.step != d.step or need.guide != d.guide or need.id in closed:
                continue
            closed[need.id] = DoneMark(mark.on, note)
            stack.extend(need.depends_on)
    return closed


def _date_undated(drafts: list[Entry], plan: Plan) -> list[Entry]:
    """Undated work is due when its plan says it must finish; unplanned (N/A) undated work is
    due with the last dated item of its guide's step (e.g. the Stepwell submission)."""
    by_id = {d.id: d for d in drafts}
    last: dict[tuple[str, int], Entry] = {}  # each step's last dated item
    for d in drafts:
        key = (d.guide, d.step)
        if d.due != dt.date.max and (key not in last or d.due > last[key].due):
            last[key] = d
    step_due = {key: d.due for key, d in last.items()}
    dated = []
    for d in drafts:
        if d.due == dt.date.max:
            slot = plan.slots.get(d.id)
            if slot:
                feeds = by_id[slot.bound_by].title if slot.bound_by else "its due date"
                rule = (
                    f"Planned backwards from \u201c{feeds}\u201d ({d.duration_days} working days)"
                )
                d = d.evolve(due=slot.latest_finish, rule=rule)
            else:
                due = step_due.get((d.guide, d.step), dt.date.max)
                rule = f"With Step {d.step}'s submission"
                with_ = last.get((d.guide, d.step))
                if with_ and with_.item and with_.item.date_source == with_.date_source == "assumed":
                    # the submission's date is not CDE's until the guide's dates are confirmed
                    d = d.evolve(due=due, rule=rule, date_source="assumed", cde_dated=False,
                                 assumption=with_.assumption)  # fmt: skip
                else:
                    d = d.evolve(due=due, rule=rule, date_source="cde", cde_dated=True)
        dated.append(d)
    return dated


def _step_of(guide: Guide, slug: str) -> str:
    item = next(i for i in guide.items if i.id == slug)
    return f"step-{item.step}/{slug}"


def _override(entry: Entry, over: Override, series_level: bool) -> Entry:
    changes: dict[str, object] = {}
    if over.duration_days:
        changes["duration_days"] = over.duration_days
    if over.start_time and over.end_time:
        changes.update(start_time=over.start_time, end_time=over.end_time)
    if not series_level:
        if over.due and over.due != entry.due:
            changes["due"] = over.due
        if over.start:
            changes["start"] = over.start
    if not changes:
        return entry
    said = ", ".join(f"{k} {v}" for k, v in changes.items())
    guide = "planned" if entry.due == dt.date.max else f"due {long_date(entry.due)}"
    note = f"LEA override: {said} (guide: {guide})"
    if "due" in changes or "start" in changes:
        changes["date_source"] = "lea"
    return entry.evolve(notes=(*entry.notes, note), **changes)


# ---------------------------------------------------------------- dates that cannot be shown

Conflict = tuple[tuple[str, ...], str]  # (the profile field that causes it, message)
ACCEPTED = ("accepted", "accepted-with-conditions")


def date_conflicts(
    guides: Sequence[Guide], lea: Lea, done: Mapping[str, dt.date | DoneMark] | None = None
) -> list[Conflict]:
    """The profile's (or `done`'s) dates that would give an item a start after its due date,
    which no calendar, chart or checklist can show: an override's `start` after the item's
    due date, its `due` before the item's start, CDE's acceptance after the window it opens.
    Each names the field that causes it. (Planned as `expand` plans: nothing else is needed.)"""
    if not _may_conflict(lea, done or {}):
        return []
    t = expand(guides, lea, dt.date(2000, 1, 1), done)
    marks = {k: done_mark(v) for k, v in {**lea.done, **(done or {})}.items()}
    found: list[Conflict] = []
    for e in t.items:
        if e.start is not None and e.start > e.due:
            found.append(_conflict(e, lea, marks))
    return list(dict.fromkeys(found))


def _may_conflict(lea: Lea, done: Mapping[str, dt.date | DoneMark]) -> bool:
    """Whether anything the profile or `done` says moves a start or a due date at all."""
    marks = [done_mark(v) for v in (*lea.done.values(), *done.values())]
    moved = any(o.start or o.due for o in lea.overrides.values())
    return moved or any(m.outcome in ACCEPTED for m in marks)


def _conflict(e: Entry, lea: Lea, marks: Marks) -> Conflict:
    """The field that put `e`'s start after its due date, and what to do about it."""
    assert e.start is not None
    start, due = long_date(e.start), long_date(e.due)
    over = lea.overrides.get(e.id, NO_OVERRIDE)
    if over.due and not over.start:
        return ("overrides", e.id, "due"), (
            f"{due} is before the item's start, {start} (set 'start' too, or a later 'due')"
        )
    if over.start:
        return ("overrides", e.id, "start"), (
            f"{start} is after the item's due date, {due} (set 'due' too, or an earlier 'start')"
        )
    item, prefix = e.item, f"{e.guide}/"
    if item is not None and item.starts_at_acceptance:
        for key, mark in marks.items():  # the submission whose acceptance opens the item
            if key.startswith(prefix) and key.endswith(f"/{item.starts_at_acceptance}"):
                field = "outcome_on" if mark.outcome_on else "on"
                return ("done", key, field), (
                    f"CDE's acceptance on {start} would open \u201c{e.title}\u201d after it "
                    f"ends, {due}"
                )
    return ("overrides", e.id), f"starts {start}, after its due date {due}"


def tier_label(lea: Lea) -> str:
    m = lea.monitoring
    label = m.tier.capitalize()
    return f"{label} Level {m.level}" if m.level else label


def _na_reason(item: Item, lea: Lea) -> str | None:
    for na in item.na:
        if na.matches(lea):
            return na.reason
    if select(cast("Selectable[str]", item.requirement), lea) is None:
        return f"Not applicable to {tier_label(lea)} LEAs"
    return None


def _recipient_label(token: str, lea: Lea) -> str:
    if token not in CONTACT_LABELS:
        return token
    contact = lea.contacts.get(token)  # type: ignore[call-overload]
    label = CONTACT_LABELS[token]
    return f"{label} {contact.name} <{contact.email}>" if contact else label


def _finish(
    draft: Entry,
    plan: Plan,
    calendar: WorkCalendar,
    today: dt.date,
    marks: Marks,
    lea: Lea,
) -> Entry:
    if draft.na_reason:
        return draft
    notes = list(draft.notes)
    closed = calendar.why_closed(draft.due)
    if closed and draft.kind in ("deadline", "report", "meeting") and draft.date_source != "planned":
        whose = "the district's" if draft.date_source == "lea" else "CDE's"
        notes.append(f"Falls on a non-working day ({closed}); {whose} date is kept as given")
    slot = plan.slots.get(draft.id)
    first = plan.earliest.get(draft.id)
    mark = marks.get(draft.id)
    status = _status(draft, slot, today, mark)
    warnings = []
    if slot:
        notes.extend(slot.notes)
        if status != "done":  # a plan's warnings are moot once the work is done
            warnings += [*slot.warnings, *_summer(draft, slot, lea)]
    if mark and mark.outcome == "returned":
        warnings.append(
            f"Returned by CDE{' on ' + long_date(mark.outcome_on) if mark.outcome_on else ''}: "
            "revise and resubmit (set the date CDE gives with an override `due`)"
        )
    elif status == "at-risk" and slot and slot.latest_start < today:
        notes.append(f"Should have started by {long_date(slot.latest_start)}")
    done = mark if status == "done" else None
    return draft.evolve(
        status=status,
        latest_start=slot.latest_start if slot else None,
        latest_finish=slot.latest_finish if slot else None,
        earliest_start=first.day if first else None,
        slack_days=calendar.count(today, slot.latest_start) if slot else None,
        done_on=done.on if done else None,
        done_note=mark.note if mark else None,
        outcome=mark.outcome if mark else None,
        outcome_on=mark.outcome_on if mark else None,
        depends_on=plan.depends_on.get(draft.id, ()),
        notes=tuple(notes),
        warnings=tuple(warnings),
    )


def _status(draft: Entry, slot: Slot | None, today: dt.date, mark: DoneMark | None) -> Status:
    """Overdue only on a date that is CDE's, assumed or the LEA's; a passed plan is behind
    plan; a meeting or an ongoing activity that is over is past."""
    if mark:  # done; or returned by CDE: to resubmit, at a date CDE has yet to give
        return "done" if mark.outcome != "returned" else "at-risk"
    ongoing = draft.kind == "meeting" or (draft.item is not None and draft.item.ongoing)
    if draft.due < today:
        if ongoing:
            return "past"
        return "behind-plan" if draft.date_source == "planned" else "overdue"
    late_start = slot is not None and (slot.latest_start < today or slot.at_risk)
    if late_start and not ongoing:
        return "at-risk"
    return "due-soon" if (draft.due - today).days <= DUE_SOON_DAYS else "upcoming"


def _summer(draft: Entry, slot: Slot, lea: Lea) -> list[str]:
    """Work that needs families or school staff, planned in the LEA's summer break."""
    if draft.item is None or not draft.item.needs_school:
        return []
    return [
        f"Planned {long_date(slot.latest_start)} - {long_date(slot.latest_finish)}, overlapping "
        f"{c.name} ({long_date(c.start)} - {long_date(c.end)}), when families and school staff "
        "are away: do it before the break or move it (override `due`)"
        for c in lea.calendar.closures
        if c.kind == "summer" and slot.latest_start <= c.end and c.start <= slot.latest_finish
    ]


def select_items(t: Timeline, step: int | None, upcoming: int | None) -> list[Entry]:
    """Items of one step, and/or those due or to start within `upcoming` days (plus any
    overdue or at-risk)."""
    items = [e for e in t.items if step is None or e.step == step]
    if upcoming is None:
        return items
    horizon = t.today + dt.timedelta(days=upcoming)
    return [
        e
        for e in items
        if e.status in ("overdue", "at-risk")
        or (
            e.status not in ("done", "not-applicable")
            and (e.start or e.latest_start or e.due) <= horizon
            and e.due >= t.today
        )
    ]


def team_warnings(guides: Sequence[Guide], lea: Lea) -> list[str]:
    """Roles a Stepwell box requires that the LEA's CIM team lacks; a missing team lead."""
    roles = {m.role for m in lea.team}
    warnings = []
    for guide in applicable_guides(guides, lea):
        for item in guide.items:
            missing = [r for r in item.required_roles if r not in roles]
            if missing and not _na_reason(item, lea):
                where = f"Stepwell box {item.box} ({item.title})" if item.box else item.title
                warnings.append(f"{where} requires a {', '.join(missing)} on the CIM team")
            if item.required_roles and not lea.lead():
                warnings.append("no CIM team lead appointed (set lead = true on one member)")
    return warnings
