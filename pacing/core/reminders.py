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

from pacing.core.lea import Lea
from pacing.core.timeline import Entry, Timeline

Kind = Literal["due", "start-by", "overdue", "digest"]
DIGEST_WEEKS = 4
OPEN = ("overdue", "at-risk", "due-soon", "upcoming")


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
        return list(_digests(t)) + list(_overdue(t))
    return [*_per_item(t), *_overdue(t)]


def _key(lea: Lea, item: str, what: str, to: str) -> str:
    return f"{lea.id}|{item}|{what}|{to}"


def _open(t: Timeline) -> Iterator[Entry]:
    return (e for e in t.items if e.status in OPEN and e.kind != "meeting")


def _per_item(t: Timeline) -> Iterator[Reminder]:
    lea = t.lea
    settings = lea.reminders
    to = recipients(lea, settings.to)
    for e in _open(t):
        for offset in sorted(set(settings.offsets_days), reverse=True):
            day = e.due - dt.timedelta(days=offset)
            at = local_instant(day, settings.send_at, lea.timezone)
            for address in to:
                yield Reminder(
                    _key(lea, e.id, f"due-{offset}", address), lea.id, "due", at, address, (),
                    (e.id,), e.due, offset,
                )  # fmt: skip
        if e.latest_start and e.latest_start < e.due:
            at = local_instant(e.latest_start, settings.send_at, lea.timezone)
            for address in to:
                yield Reminder(
                    _key(lea, e.id, "start-by", address), lea.id, "start-by", at, address, (),
                    (e.id,), e.due,
                )  # fmt: skip


def _overdue(t: Timeline) -> Iterator[Reminder]:
    """The day after a missed deadline, copied to `escalate_overdue_to`."""
    lea = t.lea
    settings = lea.reminders
    to = recipients(lea, settings.to)
    cc = tuple(a for a in recipients(lea, settings.escalate_overdue_to) if a not in to)
    for e in _open(t):
        if e.kind not in ("deadline", "report", "task", "window"):
            continue
        at = local_instant(e.due + dt.timedelta(days=1), settings.send_at, lea.timezone)
        for address in to:
            yield Reminder(
                _key(lea, e.id, "overdue", address), lea.id, "overdue", at, address, cc,
                (e.id,), e.due,
            )  # fmt: skip


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
            at = local_instant(monday, settings.send_at, lea.timezone)
            week = f"{monday.isocalendar().year}-W{monday.isocalendar().week:02d}"
            for address in to:
                yield Reminder(
                    _key(lea, "digest", week, address), lea.id, "digest", at, address, (),
                    ahead, monday,
                )  # fmt: skip
        monday += dt.timedelta(weeks=1)
