"""The reminder plan (pure): which emails an LEA's timeline asks for, to whom, at which instant.

Every reminder has a unique key (LEA, item, occurrence, offset, recipient); the daemon's ledger
claims, sends and records by that key, so a reminder is never lost and never doubled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from pacing.core.entry import Entry
from pacing.core.lea import Delivery, Lea
from pacing.core.timeline import Timeline
from pacing.core.workdays import WorkCalendar

Kind = Literal[
    "due", "start-by", "overdue", "escalation", "behind-plan", "digest", "meeting", "caseload"
]
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


def delivery_of(lea: Lea, address: str, chosen: Mapping[str, Delivery] | None = None) -> Delivery:
    """How often `address` gets email: its own choice (an email's link), else the profile's
    `[reminders] delivery` by address, then by role ("lead" first), else "each"."""
    address = address.lower()
    if chosen and address in chosen:
        return chosen[address]
    settings = lea.reminders.delivery
    for who, mode in settings.items():
        if who.lower() == address:
            return mode
    for who, mode in settings.items():
        if "@" not in who and address in recipients(lea, [who]):
            return mode
    return "each"


def plan(t: Timeline, chosen: Mapping[str, Delivery] | None = None) -> list[Reminder]:
    """Every reminder the timeline asks for, from the start of time (the ledger skips the past).
    Each recipient by their delivery (see `delivery_of`): "each" gets the reminders of every
    item, or, when `digest = "weekly"`, the Monday overview and the reminders it does not
    cover; "daily" every reminder of every item, in one email each working morning; "weekly"
    the Monday overview and overdue notices only. The daemon sends one email per person per
    moment. Escalations go to the outside contacts on their own."""
    lea = t.lea
    team = recipients(lea, lea.reminders.to)
    mode = {a: delivery_of(lea, a, chosen) for a in team}
    weekly = {a for a in team if mode[a] == "weekly"}
    every = tuple(a for a in team if a not in weekly)
    digested = tuple(a for a in every if mode[a] == "each" and lea.reminders.digest == "weekly")
    overview = tuple(a for a in team if a in weekly or a in digested)
    found = [*_per_item(t, every), *_overdue(t, team, weekly), *_meetings(t, every),
             *_digests(t, overview), *_escalations(t, team)]  # fmt: skip
    optional = frozenset(e.id for e in t.items if e.requirement != "required")
    last = min(lea.reminders.offsets_days, default=0)
    return _once(r for r in found
                 if not _said_elsewhere(r, r.to in overview, mode.get(r.to), last, optional))


def _said_elsewhere(
    r: Reminder, overview: bool, mode: Delivery | None, last: int, optional: frozenset[str]
) -> bool:
    """A reminder its reader already gets another way. The Monday overview lists what is due
    in the next four weeks and what should start that week, so for its readers only the `last`
    reminder before a required date stays; an early reminder about work the guide does not
    require (an `optional` or recommended box) is never sent alone (`daily` readers get all)."""
    early = r.kind == "due" and r.offset_days > last
    if overview and (r.kind == "start-by" or early):
        return True
    if (overview and r.kind in ("due", "behind-plan")) or (mode == "each" and early):
        return r.items[0] in optional
    return False


def _once(found: Iterable[Reminder]) -> list[Reminder]:
    """One reminder per recipient, item and instant: the 14-, 7- and 1-day reminders of one
    deadline that a closure moved onto one morning are one (the nearest offset kept)."""
    kept: dict[tuple[str, str, tuple[str, ...], dt.datetime], Reminder] = {}
    for r in found:
        if r.kind != "due":
            kept.setdefault((r.key, "", (), r.send_at), r)
            continue
        slot = (r.to, r.kind, r.items, r.send_at)
        if slot not in kept or r.offset_days < kept[slot].offset_days:
            kept[slot] = r
    return list(kept.values())


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


def _per_item(t: Timeline, to: tuple[str, ...]) -> Iterator[Reminder]:
    lea = t.lea
    settings = lea.reminders
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


def _missed(t: Timeline) -> Iterator[tuple[Entry, dt.datetime]]:
    """Each open item whose date can be missed, and the instant after it (the working day
    after the date)."""
    for e in _open(t):
        if e.kind in ("deadline", "report", "task", "window"):
            yield e, _instant(t, e.due + dt.timedelta(days=1), later=True)


def _overdue(t: Timeline, to: tuple[str, ...], weekly: set[str]) -> Iterator[Reminder]:
    """The working day after a missed date: an overdue notice to the LEA's own team; a missed
    plan (pacing's estimate) is a behind-plan nudge (not sent to weekly readers: their Monday
    overview has it)."""
    lea = t.lea
    for e, at in _missed(t):
        kind: Kind = "behind-plan" if e.date_source == "planned" else "overdue"
        for address in to:
            if kind == "behind-plan" and address in weekly:
                continue
            yield Reminder(
                _key(lea, e.id, kind, address), lea.id, kind, at, address, (), (e.id,), e.due,
            )  # fmt: skip


def _escalations(t: Timeline, team: tuple[str, ...]) -> Iterator[Reminder]:
    """A missed CDE deadline or report with something to submit, told once to each outside
    contact (`escalate_overdue_to`: the SELPA, the FMTA consultant) on the working day after,
    whoever on the team still gets reminders: a team member's opt-out never silences it."""
    lea = t.lea
    outside = [a for a in recipients(lea, lea.reminders.escalate_overdue_to) if a not in team]
    for e, at in _missed(t):
        if e.date_source == "planned" or not escalates_when_missed(e):
            continue
        for address in outside:
            yield Reminder(
                _key(lea, e.id, "escalation", address), lea.id, "escalation", at, address, (),
                (e.id,), e.due,
            )  # fmt: skip


def _meetings(t: Timeline, to: tuple[str, ...]) -> Iterator[Reminder]:
    """The working day before each open meeting (each occurrence of a series), at `send_at`:
    "Meeting <weekday>: ..." to the LEA's own recipients, never copied outside the team."""
    lea = t.lea
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


def _digests(t: Timeline, to: tuple[str, ...]) -> Iterator[Reminder]:
    """One overview per recipient per week (Monday, send_at) listing what is due in the coming
    weeks and what should start; weeks with nothing to say send nothing."""
    lea = t.lea
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
