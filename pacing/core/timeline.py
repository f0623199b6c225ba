"""Expand guides + an LEA profile + today into the LEA's timeline (pure: no I/O, no clock)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, cast

from pacing.core.dates import Dates, long_date, series_dates, single
from pacing.core.guide import Guide, Item, Kind, Requirement, Resource, Selectable, select
from pacing.core.lea import Lea, Override
from pacing.core.plan import Plan, backward_plan
from pacing.core.workdays import WorkCalendar

Status = Literal["done", "overdue", "at-risk", "due-soon", "upcoming", "not-applicable"]
DUE_SOON_DAYS = 14
NO_OVERRIDE = Override()
CONTACT_LABELS = {"fmta_consultant": "FMTA consultant", "selpa": "SELPA"}


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
    na_reason: str | None = None
    latest_start: dt.date | None = None
    latest_finish: dt.date | None = None
    slack_days: int | None = None
    duration_days: int | None = None
    depends_on: tuple[str, ...] = ()
    submit_to: tuple[str, ...] = ()
    resources: tuple[Resource, ...] = ()
    series: str | None = None
    occurrence: str | None = None
    done_on: dt.date | None = None
    notes: tuple[str, ...] = ()
    item: Item = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    @property
    def sort_key(self) -> tuple[dt.date, dt.date, str]:
        return (self.due, self.start or self.due, self.id)


@dataclass(frozen=True)
class Timeline:
    lea: Lea
    today: dt.date
    items: tuple[Entry, ...]
    steps: Mapping[int, str]
    assumptions: tuple[str, ...] = ()

    def get(self, item_id: str) -> Entry:
        return next(e for e in self.items if e.id == item_id)


def applicable_guides(guides: Sequence[Guide], lea: Lea) -> list[Guide]:
    return [g for g in guides if g.items and g.applies_to.matches(lea)]


def expand(
    guides: Sequence[Guide],
    lea: Lea,
    today: dt.date,
    done: Mapping[str, dt.date] | None = None,
) -> Timeline:
    """The LEA's timeline as of `today`: every applicable guide's items, dated and planned."""
    done = {**lea.done, **(done or {})}
    chosen = applicable_guides(guides, lea)
    drafts = [d for g in chosen for item in g.items for d in _drafts(g, item, lea)]
    calendar = lea_calendar(lea, drafts)
    plan = backward_plan(drafts, calendar, lea, board_meetings(lea, calendar_years(drafts)))
    drafts = _date_undated(drafts, plan)
    items = sorted(
        (_finish(d, plan, calendar, today, done) for d in drafts), key=lambda e: e.sort_key
    )
    steps = {s.number: s.title for g in guides for s in g.steps}
    assumptions = tuple(a for g in chosen for a in g.assumptions)
    return Timeline(lea, today, tuple(items), steps, assumptions)


def calendar_years(drafts: Sequence[Entry]) -> tuple[int, int]:
    years = [d.due.year for d in drafts if d.due != dt.date.max] or [2024]
    return min(years) - 1, max(years) + 1


def lea_calendar(lea: Lea, drafts: Sequence[Entry]) -> WorkCalendar:
    closures = [(c.start, c.end, c.name) for c in lea.calendar.closures]
    return WorkCalendar.build(calendar_years(drafts), lea.calendar.state_holidays, closures)


def board_meetings(lea: Lea, years: tuple[int, int]) -> list[dt.date]:
    days = set(lea.calendar.board_meetings)
    if lea.calendar.board_meeting_rule:
        days.update(_rule_days(lea.calendar.board_meeting_rule, years))
    return sorted(days)


@lru_cache(maxsize=256)
def _rule_days(rule: str, years: tuple[int, int]) -> tuple[dt.date, ...]:
    from dateutil.rrule import rrulestr

    first = dt.datetime(years[0], 1, 1)
    moments = rrulestr(rule, dtstart=first).between(first, dt.datetime(years[1], 12, 31), inc=True)
    return tuple(m.date() for m in moments)


def _drafts(guide: Guide, item: Item, lea: Lea) -> Iterator[Entry]:
    """The item's occurrences, dated, with the LEA's overrides applied (not yet planned)."""
    base = f"{guide.id}/step-{item.step}/{item.id}"
    prefix = f"{guide.id}/"
    na_reason = _na_reason(item, lea)
    requirement = cast("Requirement | None", select(item.requirement, lea)) or "optional"
    submit_to = tuple(_recipient_label(r, lea) for r in select(item.submit_to, lea) or [])
    over = lea.overrides.get(base, NO_OVERRIDE)
    if item.series:
        occurrences: Iterator[Dates] = series_dates(guide, item.series, lea, over.rrule, over.dates)
    else:
        occurrences = iter([single(guide, item, lea)])
    for dates in occurrences:
        entry_id = f"{base}/{dates.occurrence}" if dates.occurrence else base
        notes = [n for n in (dates.note, item.assumption, item.condition) if n]
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
            na_reason=na_reason,
            duration_days=item.duration_days,
            depends_on=tuple(prefix + _step_of(guide, d) for d in item.depends_on),
            submit_to=submit_to,
            resources=tuple(item.resources),
            series=base if item.series else None,
            occurrence=dates.occurrence,
            notes=tuple(notes),
            item=item,
        )
        if dates.occurrence and entry_id != base:
            entry = _override(entry, over, series_level=True)
        yield _override(entry, lea.overrides.get(entry_id, NO_OVERRIDE), series_level=False)


def _date_undated(drafts: list[Entry], plan: Plan) -> list[Entry]:
    """Undated work is due when its plan says it must finish; unplanned (N/A) undated work is
    due with the last dated item of its guide's step (e.g. the Stepwell submission)."""
    by_id = {d.id: d for d in drafts}
    step_due: dict[tuple[str, int], dt.date] = {}
    for d in drafts:
        if d.due != dt.date.max:
            key = (d.guide, d.step)
            step_due[key] = max(step_due.get(key, d.due), d.due)
    dated = []
    for d in drafts:
        if d.due == dt.date.max:
            slot = plan.slots.get(d.id)
            if slot:
                feeds = by_id[slot.bound_by].title if slot.bound_by else "its due date"
                rule = (
                    f"Planned backwards from \u201c{feeds}\u201d ({d.duration_days} working days)"
                )
                d = dataclasses.replace(d, due=slot.latest_finish, rule=rule)
            else:
                due = step_due.get((d.guide, d.step), dt.date.max)
                d = dataclasses.replace(d, due=due, rule=f"With Step {d.step}'s submission")
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
    note = f"LEA override: {said} (guide: due {long_date(entry.due)})"
    return dataclasses.replace(entry, notes=(*entry.notes, note), **changes)  # type: ignore[arg-type]


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
    done: Mapping[str, dt.date],
) -> Entry:
    if draft.na_reason:
        return draft
    notes = list(draft.notes)
    closed = calendar.why_closed(draft.due)
    if closed and draft.kind in ("deadline", "report", "meeting"):
        notes.append(f"Falls on a non-working day ({closed}); the date is kept as given")
    slot = plan.slots.get(draft.id)
    latest_start = slot.latest_start if slot else None
    latest_finish = slot.latest_finish if slot else None
    slack = calendar.count(today, latest_start) if latest_start else None
    if slot:
        notes.extend(slot.notes)
    done_on = done.get(draft.id)
    status: Status
    if done_on:
        status = "done"
    elif draft.due < today:
        status = "overdue"
    elif (latest_start and latest_start < today) or (slot and slot.at_risk):
        status = "at-risk"
        if latest_start and latest_start < today:
            notes.append(f"Should have started by {long_date(latest_start)}")
    elif (draft.due - today).days <= DUE_SOON_DAYS:
        status = "due-soon"
    else:
        status = "upcoming"
    return dataclasses.replace(
        draft,
        status=status,
        latest_start=latest_start,
        latest_finish=latest_finish,
        slack_days=slack,
        done_on=done_on,
        depends_on=plan.depends_on.get(draft.id, ()),
        notes=tuple(notes),
    )


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
