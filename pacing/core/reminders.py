"""The reminder plan (pure): which emails an LEA's timeline asks for, to whom, at which instant.

Every reminder has a unique key (LEA, item, occurrence, offset, recipient); the daemon's ledger
claims, sends and records by that key, so a reminder is never lost and never doubled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from pacing.core.entry import Entry
from pacing.core.lea import Lea
from pacing.core.timeline import Timeline
from pacing.core.workdays import WorkCalendar

Kind = Literal["due", "start-by", "overdue", "behind-plan", "digest", "meeting", "caseload"]
DIGEST_WEEKS = 4
OPEN = ("overdue", "behind-plan", "at-risk", "due-soon", "upcoming")


@dataclass(frozen=True)
class Reminder:
    key: str
    lea: str
    kind: Kind
    send_at: dt.datetime  # aware, UTC
    to: str
    cc: tuple[str, ...]
    items: tuple[str, ...]  # timeline item ids (several for a digest)
    due: dt.date  # the item's due date (digest: the Monday of its week)
    offset_days: int = 0

    @property
    def message_id(self) -> str:
        return f"<{hashlib.sha256(self.key.encode()).hexdigest()[:40]}@pacing>"


def local_instant(day: dt.date, at: dt.time, zone: str) -> dt.datetime:
    """`at` o'clock local time on `day`, as UTC: right across DST changes."""
    return dt.datetime.combine(day, at, ZoneInfo(zone)).astimezone(dt.UTC)


def recipients(lea: Lea, who: Iterable[str]) -> tuple[str, ...]:
    """Addresses for roles ("lead", a team role, "selpa", "fmta_consultant") and addresses."""
    found: list[str] = []
    for token in who:
        if "@" in token:
            found.append(token)
        elif token == "lead":
            found += [m.email for m in lea.team if m.lead]
        elif token in ("selpa", "fmta_consultant"):
            contact = lea.contacts.get(token)  # type: ignore[call-overload]
            found += [contact.email] if contact else []
        else:
            found += [m.email for m in lea.team if m.role == token]
    return tuple(dict.fromkeys(a.lower() for a in found))


def plan(t: Timeline) -> list[Reminder]:
    """Every reminder the timeline asks for, from the start of time (the ledger skips the past)."""
    lea = t.lea
    if lea.reminders.digest == "weekly":
        return list(_digests(t)) + list(_overdue(t)) + list(_meetings(t))
    return [*_per_item(t), *_overdue(t), *_meetings(t)]


def _key(lea: Lea, item: str, what: str, to: str) -> str:
    return f"{lea.id}|{item}|{what}|{to}"


def _open(t: Timeline) -> Iterator[Entry]:
    return (
        e
        for e in t.items
        if e.status in OPEN and e.kind != "meeting" and not (e.item is not None and e.item.ongoing)
    )


def _instant(t: Timeline, day: dt.date, later: bool = False) -> dt.datetime:
    """`send_at` on `day`, or (unless the LEA turned it off) on the working day before it when
    `day` is a weekend, state holiday or closure (`later`: the working day after)."""
    settings = t.lea.reminders
    if settings.working_days_only:
        day = _working(t.calendar, day, later)
    return local_instant(day, settings.send_at, t.lea.timezone)


def _working(calendar: WorkCalendar, day: dt.date, later: bool) -> dt.date:
    return calendar.on_or_after(day) if later else calendar.on_or_before(day)


def _per_item(t: Timeline) -> Iterator[Reminder]:
    lea = t.lea
    settings = lea.reminders
    to = recipients(lea, settings.to)
    for e in _open(t):
        for offset in sorted(set(settings.offsets_days), reverse=True):
            at = _instant(t, e.due - dt.timedelta(days=offset))
            for address in to:
                yield Reminder(
                    _key(lea, e.id, f"due-{offset}", address), lea.id, "due", at, address, (),
                    (e.id,), e.due, offset,
                )  # fmt: skip
        if e.latest_start and e.latest_start < e.due:
            at = _instant(t, e.latest_start)
            for address in to:
                yield Reminder(
                    _key(lea, e.id, "start-by", address), lea.id, "start-by", at, address, (),
                    (e.id,), e.due,
                )  # fmt: skip


def _overdue(t: Timeline) -> Iterator[Reminder]:
    """The working day after a missed date: an overdue notice, copied to `escalate_overdue_to`
    only for CDE's own required deadlines and reports; a missed plan (pacing's estimate) is a
    behind-plan nudge to the LEA's own team, never copied outside it."""
    lea = t.lea
    settings = lea.reminders
    to = recipients(lea, settings.to)
    outside = tuple(a for a in recipients(lea, settings.escalate_overdue_to) if a not in to)
    for e in _open(t):
        if e.kind not in ("deadline", "report", "task", "window"):
            continue
        kind: Kind = "behind-plan" if e.date_source == "planned" else "overdue"
        cc = outside if kind == "overdue" and escalates_when_missed(e) else ()
        at = _instant(t, e.due + dt.timedelta(days=1), later=True)
        for address in to:
            yield Reminder(
                _key(lea, e.id, kind, address), lea.id, kind, at, address, cc, (e.id,), e.due,
            )  # fmt: skip


def _meetings(t: Timeline) -> Iterator[Reminder]:
    """The working day before each open meeting (each occurrence of a series), at `send_at`:
    "Meeting <weekday>: ..." to the LEA's own recipients, never copied outside the team. The
    digest lists no meetings, so a weekly-digest LEA gets these too."""
    lea = t.lea
    to = recipients(lea, lea.reminders.to)
    for e in t.items:
        if e.kind != "meeting" or e.status not in OPEN:
            continue
        at = _instant(t, e.due - dt.timedelta(days=1))
        for address in to:
            yield Reminder(
                _key(lea, e.id, "meeting", address), lea.id, "meeting", at, address, (),
                (e.id,), e.due, 1,
            )  # fmt: skip


def escalates_when_missed(e: Entry) -> bool:
    """Whether missing this item's date would be escalated (see Entry.escalates)."""
    return e.evolve(status="overdue").escalates


def _digests(t: Timeline) -> Iterator[Reminder]:
    """One email per recipient per week (Monday, send_at) listing what is due in the coming
    weeks and what should start; weeks with nothing to say send nothing."""
    lea = t.lea
    settings = lea.reminders
    to = recipients(lea, settings.to)
    items = list(_open(t))
    if not items:
        return
    first = min(min(e.latest_start or e.due, e.due) for e in items)
    monday = first - dt.timedelta(days=first.weekday() + 7 * DIGEST_WEEKS)
    last = max(e.due for e in items)
    horizon = dt.timedelta(weeks=DIGEST_WEEKS)
    while monday <= last:
        ahead = tuple(
            e.id
            for e in items
            if monday <= e.due < monday + horizon
            or (e.latest_start and monday <= e.latest_start < monday + dt.timedelta(weeks=1))
        )
        if ahead:
            at = _instant(t, monday)
            week = f"{monday.isocalendar().year}-W{monday.isocalendar().week:02d}"
            for address in to:
                yield Reminder(
                    _key(lea, "digest", week, address), lea.id, "digest", at, address, (),
                    ahead, monday,
                )  # fmt: skip
        monday += dt.timedelta(weeks=1)
