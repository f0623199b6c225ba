"""Weekly caseload digests (pure): which digest emails a caseload asks for, to whom, when.

A caseload with `digest = "weekly"` and an email gets one email a week, on `digest_day` at
`digest_time` in the caseload's time zone (right across DST changes), listing its LEAs with CDE
items overdue or due in the next two weeks (`caseload.digest`). It is one ledger row like any
reminder (kind "caseload", `lea` the caseload's ledger id `_caseload/<slug>`, key
`_caseload/<slug>|digest|<the day>|<email>`), so the ledger claims, sends and records it once.

Working days. A digest day that is not a working day of the contact's calendar (a weekend or a
California state holiday: `contact_calendar`) moves to the next working day, at the same
`digest_time` (`send_day`): a Monday holiday (Labor Day, Veterans Day, MLK Day, Presidents' Day,
Cesar Chavez Day, Memorial Day) to the Tuesday; a holiday with no working day left in its ISO
week (the Friday after Thanksgiving) to the next week's first working day (the Monday). Only the
sending instant moves: the week keeps its identity (the key's day and the row's `due` are the
digest day), so a week the ledger holds is moved, never doubled, and the week is still over 6
days after the digest day (a move never goes past that). The week is planned, and its content
computed, as of the day it is sent.

The empty-week rule. A week is planned only when the digest as of its sending day says
something, evaluated from today's timelines as of that day (`caseload.digest`: an open CDE item
whose date is before that day is overdue then; the done marks are those known now). So a planned
week can turn empty (a done mark, a moved date, a changed caseloads.toml): the daemon plans
again on every such change and every day, and the ledger's sync cancels the week. At send time
the content is computed afresh from the current timelines as of the sending day, and a week
found empty then is folded ("nothing to say this week"), never sent as an empty email. Weeks are
planned from two weeks back (so a week the ledger holds is folded as over, not dropped, after a
downtime; the daemon takes in no week first planned after its instant) to `WEEKS_AHEAD` ahead,
rolling.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping

from pacing.core.caseload import WEEKDAYS, Caseload, digest
from pacing.core.reminders import Reminder, local_instant
from pacing.core.timeline import Timeline
from pacing.core.workdays import WorkCalendar

CASELOAD = "_caseload"  # the id prefix; never an LEA id (LEA ids are slugs: no "_" or "/")
WEEKS_AHEAD = 5  # how far ahead the daemon plans (a `remind --dry-run` preview of 30 days)
LEDGER_ID_MAX = 80  # the ledger's `lea` column


def page_id(slug: str) -> str:
    """The id of the caseload's feed and page (`feeds.caseloads.feed_id`): its page URL is the
    daemon's `page_url(page_id(slug))`, as an LEA's is `page_url(lea_id)`."""
    return f"{CASELOAD}/{slug}"


def ledger_id(slug: str) -> str:
    """The caseload's id in the reminder ledger and the opt-out table: `_caseload/<slug>`, or,
    for a slug too long for the column, its start and a hash of it."""
    found = page_id(slug)
    if len(found) <= LEDGER_ID_MAX:
        return found
    return f"{CASELOAD}/{slug[:60]}-{hashlib.sha256(slug.encode()).hexdigest()[:8]}"


def is_caseload(lea: str) -> bool:
    """Whether a ledger row's `lea` is a caseload's."""
    return lea.startswith(CASELOAD + "/")


def weekly(load: Caseload) -> bool:
    """Whether the caseload's contact asked for the weekly digest (and it can reach them)."""
    return load.digest == "weekly" and bool(load.email)


def digest_days(load: Caseload, start: dt.date, until: dt.date) -> Iterator[dt.date]:
    """The caseload's digest days from `start` to `until` (both included)."""
    wanted = WEEKDAYS.index(load.digest_day)
    day = start + dt.timedelta(days=(wanted - start.weekday()) % 7)
    while day <= until:
        yield day
        day += dt.timedelta(weeks=1)


def contact_calendar(start: dt.date, until: dt.date) -> WorkCalendar:
    """The working days of a caseload's contact (a SELPA, CDE, a consultant) around `start` to
    `until`: no weekends, no California state holidays. An LEA's own closures are its own."""
    return WorkCalendar.build((start.year - 1, until.year + 1), state_holidays=True)


def send_day(day: dt.date, calendar: WorkCalendar) -> dt.date:
    """The day the digest of `day` (a digest day) goes out: `day` when it is a working day,
    else the first working day after it: in the same ISO week when one is left there (a Monday
    holiday: the Tuesday), else the next week's (the Friday after Thanksgiving: the Monday).
    Never past `day` + 6, the week's last day (a calendar with no working day in the 7 days
    from `day` keeps `day`)."""
    moved = calendar.on_or_after(day)
    return moved if moved - day <= dt.timedelta(days=6) else day


def plan_caseload(
    load: Caseload,
    timelines: Mapping[str, Timeline],
    start: dt.date,
    until: dt.date,
    calendar: WorkCalendar | None = None,
) -> list[Reminder]:
    """The caseload's weekly digests with something to say, for its digest days from `start`
    to `until`, each sent on its `send_day` in `calendar` (default: `contact_calendar`) and
    evaluated as of that day (see the empty-week rule above). Items: the ids of the LEAs each
    week lists; `due` and the key's day: the digest day (the week's identity)."""
    if not weekly(load) or load.email is None:
        return []
    if calendar is None:
        calendar = contact_calendar(start, until)
    found = []
    for day in digest_days(load, start, until):
        sent = send_day(day, calendar)
        leas = tuple(d.lea_id for d in digest(load, timelines, sent))
        if not leas:
            continue  # nothing to say this week: nothing is sent
        at = local_instant(sent, load.digest_time, load.timezone)
        who = ledger_id(load.slug)
        key = f"{who}|digest|{day.isoformat()}|{load.email}"
        found.append(Reminder(key, who, "caseload", at, load.email, (), leas, day))
    return found


def window(today: dt.date) -> tuple[dt.date, dt.date]:
    """The digest days the daemon plans on `today`: from two weeks back to WEEKS_AHEAD ahead."""
    return today - dt.timedelta(weeks=2), today + dt.timedelta(weeks=WEEKS_AHEAD)
