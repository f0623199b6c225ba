"""Timelines as one iCalendar feed (RFC 5545) for subscribing clients, via `icalendar`.

Pure: revisions (SEQUENCE, LAST-MODIFIED, DTSTAMP) and the generation time are parameters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from pacing.core.dates import long_date
from pacing.core.entry import (
    OUTCOME_NAMES,
    SOURCE_TAGS,
    source_sentence,
    span_label,
)
from pacing.core.lea import Lea
from pacing.core.revision import Revision
from pacing.core.timeline import Entry, Timeline
from pacing.export.timeline import dated

PRODID = "-//pacing//CIM pacing guides//EN"
REFRESH = dt.timedelta(hours=12)
ONE_DAY = dt.timedelta(days=1)
UTC = dt.UTC


@dataclass(frozen=True)
class FeedEvent:
    """One VEVENT (and optional VTODO), before revision stamps are known."""

    uid: str
    summary: str
    start: dt.date | dt.datetime
    end: dt.date | dt.datetime
    description: str
    categories: tuple[str, ...]
    url: str | None = None
    rrule: Mapping[str, Any] | None = None
    rdates: tuple[dt.date | dt.datetime, ...] = ()
    alarms: tuple[dt.timedelta, ...] = ()  # before the due date's end (all-day) or the start
    done_on: dt.date | None = None
    due: dt.date | None = None  # for the VTODO
    todo_start: dt.date | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, dt.datetime)

    def digests(self) -> tuple[str, str]:
        """(dates, content): SEQUENCE follows the first, LAST-MODIFIED follows either."""
        dates = repr((self.start, self.end, sorted((self.rrule or {}).items()), self.rdates))
        content = repr((self.summary, self.description, self.categories, self.url, self.alarms))
        return _hash(dates), _hash(dates + content)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def revise(
    previous: Mapping[str, Revision], events: Iterable[FeedEvent], now: dt.datetime
) -> dict[str, Revision]:
    """Each event's revision: unchanged events keep theirs; changed dates bump SEQUENCE."""
    out = {}
    for event in events:
        dates, content = event.digests()
        old = previous.get(event.uid)
        if old is None:
            out[event.uid] = Revision(dates, content, 0, now)
        elif old.dates_digest != dates:
            out[event.uid] = Revision(dates, content, old.sequence + 1, now)
        elif old.content_digest != content:
            out[event.uid] = Revision(dates, content, old.sequence, now)
        else:
            out[event.uid] = old
    return out


# ---------------------------------------------------------------- timeline -> events


def feed_events(t: Timeline, *, prefix: bool = False, start_by: bool = True) -> list[FeedEvent]:
    """The LEA's dated items as events: meeting series folded into one RRULE event each."""
    events: list[FeedEvent] = []
    seen_series: set[str] = set()
    for e in t.items:
        if e.status == "not-applicable":
            continue
        if e.kind == "meeting" and e.series:
            if e.series not in seen_series:
                seen_series.add(e.series)
                events.append(_meeting_series(t, [x for x in t.items if x.series == e.series]))
            continue
        events.append(_event(t, e))
        if start_by and e.latest_start and e.status != "done" and e.latest_start < e.due:
            events.append(_start_by(t, e))
    if prefix:
        tag = f"[{short_name(t.lea)}] "
        events = [_with(ev, summary=tag + ev.summary) for ev in events]
    return events


def short_name(lea: Lea) -> str:
    return (
        lea.name.replace("Unified School District", "USD")
        .replace("Elementary School District", "ESD")
        .replace("School District", "SD")
    )


def _with(event: FeedEvent, **changes: Any) -> FeedEvent:
    return dataclasses.replace(event, **changes)


def uid(t: Timeline, item_id: str, suffix: str = "") -> str:
    """Stable across runs and date changes: guide/step/item[/occurrence] and the LEA id."""
    return f"{item_id}{suffix}@{t.lea.id}.pacing"


def _event(t: Timeline, e: Entry) -> FeedEvent:
    start, end = _span(t.lea, e)
    done = e.status == "done"
    summary = _summary(e)
    return FeedEvent(
        uid=uid(t, e.id),
        summary=summary,
        start=start,
        end=end,
        description=describe(t, e),
        categories=_categories(t, e),
        url=next((r.url for r in e.resources if r.url), None),
        alarms=() if done else _alarms(t.lea, timed=isinstance(start, dt.datetime)),
        done_on=e.done_on,
        due=e.due,
        todo_start=min(e.latest_start or e.due, e.start or e.due),
    )


def _summary(e: Entry, title: str | None = None) -> str:
    """What the date is, then the title: "CDE deadline: Submit Step 2 ...", "Plan: finish Root
    Cause #1" (never read as a deadline), "CDE window: ...", "Due (assumed date): ...";
    done: "Done: <title>", "(plan)" after a plan's."""
    title = title or e.title
    planned = e.date_source == "planned"
    if e.status == "done":
        return f"Done: {title}" + (" (plan)" if planned else "")
    if planned:
        return f"Plan: finish {title}"
    if e.start and e.start != e.due:
        label = span_label(e.date_source)
    elif e.kind == "meeting" and e.date_source == "lea":
        return title  # the district's own meeting
    else:
        label = e.date_label
    return f"{label}: {title}"


def _start_by(t: Timeline, e: Entry) -> FeedEvent:
    assert e.latest_start is not None
    work = f"{e.duration_days} working days" if e.duration_days else "the work"
    lines = [
        f"Plan: start \u201c{e.title}\u201d by {long_date(e.latest_start)}.",
        "",
        f"Latest start for {work} so that it is ready by {long_date(e.latest_finish or e.due)} "
        f"({dated(e, long_date, colon=True)}).",
        "This start date is pacing's plan, an estimate to help you finish on time; "
        "it is not a CDE deadline.",
    ]
    if e.program:
        lines.append(f"Program: {e.program}")
    lines += [f"Warning: {w}" for w in e.warnings]
    lines.append(f"Item: {e.id}")
    return FeedEvent(
        uid=uid(t, e.id, "#start-by"),
        summary=f"Plan: start {e.title}",
        start=e.latest_start,
        end=e.latest_start + ONE_DAY,
        description="\n".join(lines),
        categories=(*_categories(t, e, plan=True), "Start by"),
        alarms=_alarms(t.lea, timed=False, offsets=(0,)),
    )


def _meeting_series(t: Timeline, occurrences: list[Entry]) -> FeedEvent:
    first, last = occurrences[0], occurrences[-1]
    start, end = _span(t.lea, first)
    item = first.item
    over = t.lea.overrides.get(first.series or "")
    description = describe(t, first, series=True)
    rule_text = (over.rrule if over else None) or (item.series.rrule if item.series else None)
    rrule = rdates = None
    if rule_text and not (over and over.dates) and _follows(rule_text, occurrences):
        rrule = _rrule(rule_text, _until(t.lea, last, timed=isinstance(start, dt.datetime)))
    else:
        # DTSTART is the first occurrence (RFC 5545), but ical.js and python-ical leave it out
        # of an RDATE-only set: it is listed too (duplicates count once).
        rdates = tuple(_span(t.lea, o)[0] for o in occurrences)
    return FeedEvent(
        uid=uid(t, first.series or first.id),
        summary=_summary(dataclasses.replace(first, status="upcoming"), item.title),
        start=start,
        end=end,
        description=description,
        categories=_categories(t, first),
        rrule=rrule,
        rdates=rdates or (),
        alarms=_alarms(t.lea, timed=isinstance(start, dt.datetime), offsets=(1,)),
        due=first.due,
    )


def _follows(text: str, occurrences: Sequence[Entry]) -> bool:
    """Whether the rule, from the first occurrence on, gives exactly the occurrences' days (not
    when an assumed day was moved off a holiday or closure: those are listed as RDATEs)."""
    from dateutil.rrule import rrulestr

    keep = [p for p in text.split(";") if p.partition("=")[0].upper() not in ("UNTIL", "COUNT")]
    first = dt.datetime.combine(occurrences[0].due, dt.time())
    last = dt.datetime.combine(occurrences[-1].due, dt.time())
    days = [
        m.date() for m in rrulestr(";".join(keep), dtstart=first).between(first, last, inc=True)
    ]
    return days == [o.due for o in occurrences]


def _rrule(text: str, until: dt.date | dt.datetime) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    for pair in text.split(";"):
        key, _, value = pair.partition("=")
        if key.upper() not in ("UNTIL", "COUNT", "DTSTART"):
            parts[key.lower()] = value.split(",") if "," in value else value
    parts["until"] = until
    return parts


def _until(lea: Lea, last: Entry, timed: bool) -> dt.date | dt.datetime:
    """The end of the last occurrence's local day, in UTC when DTSTART has a TZID (RFC 5545):
    an expander that applies DTSTART's UTC offset to every occurrence (DST-naive, such as
    Radicale's time-range queries) still keeps the last one."""
    start = _span(lea, last)[0]
    if timed and isinstance(start, dt.datetime):
        end_of_day = dt.datetime.combine(last.due, dt.time(23, 59, 59), start.tzinfo)
        return end_of_day.astimezone(UTC)
    return last.due


def _span(lea: Lea, e: Entry) -> tuple[dt.date | dt.datetime, dt.date | dt.datetime]:
    """All-day items span start..due with an exclusive DTEND; timed meetings get the LEA zone."""
    if e.start_time and e.end_time:
        zone = ZoneInfo(lea.timezone)
        return (
            dt.datetime.combine(e.due, e.start_time, zone),
            dt.datetime.combine(e.due, e.end_time, zone),
        )
    return (e.start or e.due), e.due + ONE_DAY


def _alarms(
    lea: Lea, timed: bool, offsets: Sequence[int] | None = None
) -> tuple[dt.timedelta, ...]:
    """Triggers before the event's end (all-day: at `send_at` on due minus N days)."""
    days = lea.reminders.offsets_days if offsets is None else offsets
    send_at = lea.reminders.send_at
    at = dt.timedelta(hours=send_at.hour, minutes=send_at.minute)
    if timed:
        return tuple(-dt.timedelta(days=n) if n else -dt.timedelta(minutes=30) for n in days)
    return tuple(at - dt.timedelta(days=n + 1) for n in sorted(set(days), reverse=True))


def _categories(t: Timeline, e: Entry, plan: bool = False) -> tuple[str, ...]:
    """The step, what the date is (SOURCE_TAGS; `plan`: a start-by, always pacing's plan),
    and "Done"."""
    step = t.steps.get(e.step)
    label = f"Step {e.step}: {step}" if e.step and step else step or f"Step {e.step}"
    source = SOURCE_TAGS["planned" if plan else e.date_source]
    return (label, source, "Done") if e.status == "done" else (label, source)


def describe(t: Timeline, e: Entry, series: bool = False) -> str:
    """What to do, what the date is and where it comes from, the program, the assumption and
    warnings, where to submit it, the rule behind the date, the box's Required items."""
    lines = [e.title if not series else e.item.title, ""]
    if series:
        lines.append(f"Repeats: {e.rule}")
    else:
        lines.append(dated(e, long_date, colon=True, dash=" - "))
    lines.append(source_sentence(e.date_source, e.kind))
    if e.program:
        lines.append(f"Program: {e.program}")
    if e.assumption:
        lines.append(f"Assumption: {e.assumption}")
    lines += [f"Warning: {w}" for w in e.warnings]
    lines.append(f"Rule: {e.rule}")
    # Nothing here depends on today (no "overdue", "due soon", slack or "past"): a feed's bytes,
    # its ETag and each LAST-MODIFIED change only when an event does. "Done" is a fact.
    if e.status == "done" and e.done_on:
        lines.append(f"Done on {long_date(e.done_on)}")
        if e.outcome:
            on = f" on {long_date(e.outcome_on)}" if e.outcome_on else ""
            lines.append(f"{OUTCOME_NAMES[e.outcome]}{on}")
        if e.done_note:
            lines.append(f"Note: {e.done_note}")
    if e.latest_start and e.status != "done" and not series:
        lines.append(f"Plan: start by {long_date(e.latest_start)} ({e.duration_days} working days)")
    if e.submit_to:
        lines.append("Submit to: " + ", ".join(e.submit_to))
    lines.append(f"Requirement: {e.requirement}")
    item = e.item
    for heading, entries in (("Required", item.required), ("Recommended", item.recommended)):
        if entries:
            lines += ["", f"{heading}:", *(f"- {x}" for x in entries)]
    if e.resources:
        lines += ["", "Resources:"]
        lines += [f"- {r.title}" + (f": {r.url}" if r.url else "") for r in e.resources]
    notes = _lasting(e)
    if notes:
        lines += ["", *notes]
    lines += ["", f"Item: {e.series if series else e.id}"]
    return "\n".join(lines)


def _lasting(e: Entry) -> tuple[str, ...]:
    """The entry's notes without the one that depends on today ("Should have started by ...",
    which the timeline adds to a late start once that start is past)."""
    if e.latest_start is None:
        return e.notes
    late = f"Should have started by {long_date(e.latest_start)}"
    return tuple(n for n in e.notes if n != late)


# ---------------------------------------------------------------- events -> iCalendar


def to_ics(
    name: str,
    calendar_id: str,
    events: Sequence[FeedEvent],
    revisions: Mapping[str, Revision],
    *,
    todo: bool = False,
) -> bytes:
    """One VCALENDAR, no METHOD; DTSTAMP and LAST-MODIFIED are each event's revision time."""
    from icalendar import Alarm, Calendar, Event, Todo, vDuration, vText
    from icalendar.enums import TRANSP

    calendar = Calendar.new(name=name, prodid=PRODID, refresh_interval=REFRESH)
    calendar.pop("UID", None)  # new() invents a random one: output must be deterministic
    for prop in ("NAME", "X-WR-CALNAME"):  # TEXT (RFC 7986): new() writes them unescaped
        calendar[prop] = vText(name)
    calendar["REFRESH-INTERVAL"].params["VALUE"] = "DURATION"
    calendar.add("x-published-ttl", vDuration(REFRESH))
    for event in sorted(events, key=lambda ev: (_day(ev.start), ev.uid)):
        rev = revisions[event.uid]
        vevent = Event.new(
            uid=event.uid,
            summary=event.summary,
            start=event.start,
            end=event.end,
            stamp=rev.modified,
            last_modified=rev.modified,
            sequence=rev.sequence,
            description=event.description,
            categories=list(event.categories),
            url=event.url,
            transparency=TRANSP.TRANSPARENT if event.all_day else TRANSP.OPAQUE,
        )
        if event.rrule:
            vevent.add("rrule", dict(event.rrule))
        for rdate in event.rdates:
            vevent.add("rdate", rdate)
        for trigger in event.alarms:
            alarm = Alarm.new(description=event.summary)
            alarm.add("action", "DISPLAY")
            related = {} if not event.all_day else {"RELATED": "END"}
            alarm.add("trigger", trigger, parameters=related)
            vevent.add_component(alarm)
        calendar.add_component(vevent)
        if todo and event.due and not (event.rrule or event.rdates):  # not for a series
            calendar.add_component(_todo(event, rev, Todo))
    for zone in _zones(events):
        calendar.add_component(zone)
    return bytes(calendar.to_ical())


def _zones(events: Sequence[FeedEvent]) -> list[Any]:
    """A VTIMEZONE for each zone the timed events use, spanning their years (cached)."""
    years: dict[str, list[int]] = {}
    for event in events:
        if isinstance(event.start, dt.datetime) and isinstance(event.start.tzinfo, ZoneInfo):
            years.setdefault(event.start.tzinfo.key, []).append(event.start.year)
            if event.rrule and isinstance(event.rrule.get("until"), dt.datetime):
                years[event.start.tzinfo.key].append(event.rrule["until"].year)
    return [_vtimezone(key, min(ys) - 1, max(ys) + 1) for key, ys in sorted(years.items())]


@lru_cache(maxsize=64)
def _vtimezone(key: str, first_year: int, last_year: int) -> Any:
    from icalendar import Timezone

    zone = Timezone.from_tzid(
        key, first_date=dt.date(first_year, 1, 1), last_date=dt.date(last_year, 12, 31)
    )
    zone.pop("COMMENT", None)  # RFC 5545 has no COMMENT in VTIMEZONE
    for part in zone.subcomponents:  # STANDARD, DAYLIGHT
        _one_rdate_per_line(part)
    return zone


def _one_rdate_per_line(part: Any) -> None:
    """One RDATE property per transition: ical.js reads only the first value of a
    multi-valued RDATE in a VTIMEZONE (so later transitions went missing)."""
    found = part.pop("RDATE", None)
    if found is None:
        return
    for prop in found if isinstance(found, list) else [found]:
        for value in prop.dts:
            part.add("rdate", value.dt)


def _todo(event: FeedEvent, rev: Revision, todo_class: Any) -> Any:
    vtodo = todo_class.new(
        uid=event.uid.replace("@", "#todo@", 1),
        summary=event.summary,
        stamp=rev.modified,
        last_modified=rev.modified,
        sequence=rev.sequence,
        description=event.description,
        status="COMPLETED" if event.done_on else "NEEDS-ACTION",
    )
    vtodo.add("dtstart", event.todo_start or event.due)
    vtodo.add("due", event.due)
    if event.done_on:
        vtodo.add("completed", dt.datetime.combine(event.done_on, dt.time(12), UTC))
        vtodo.add("percent-complete", 100)
    return vtodo


def _day(value: dt.date | dt.datetime) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value
