"""Timelines as one iCalendar feed (RFC 5545) for subscribing clients, via `icalendar`.

Pure: revisions (SEQUENCE, LAST-MODIFIED, DTSTAMP) and the generation time are parameters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from pacing.cache import ByteCache, MiB
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
LAST_DAY = dt.date.max - ONE_DAY  # the last due date an all-day event (exclusive end) can have
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


def feed_events(
    t: Timeline,
    *,
    prefix: bool = False,
    start_by: bool = True,
    keep: Callable[[Entry], bool] | None = None,
) -> list[FeedEvent]:
    """The LEA's dated items as events: meeting series folded into one RRULE event each.
    `keep`: only the items it keeps (a caseload's CDE dates), a series by its occurrences."""
    events: list[FeedEvent] = []
    seen_series: set[str] = set()
    for e in t.items:
        if e.status == "not-applicable" or (keep is not None and not keep(e)):
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
        tag = f"[{t.lea.short_name}] "
        events = [_with(ev, summary=tag + ev.summary) for ev in events]
    return events


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
    """All-day items span start..due with an exclusive DTEND; timed meetings get the LEA zone.
    A backstop (loading a profile refuses what causes them): an end not after its start, or
    a due date with no day after it, is written as one all-day event on the due date."""
    if e.start_time and e.end_time and e.start_time < e.end_time:
        zone = ZoneInfo(lea.timezone)
        return (
            dt.datetime.combine(e.due, e.start_time, zone),
            dt.datetime.combine(e.due, e.end_time, zone),
        )
    last = min(e.due, LAST_DAY)
    first = e.start if e.start is not None and e.start <= last else last
    return first, last + ONE_DAY


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
# icalendar writes every byte. Most of an event's lines are the same in many feeds (an item's
# description, dates and alarms are alike for each LEA with the same dates, and again in the
# aggregate and caseload feeds), so icalendar writes each distinct event once, with
# placeholders for the lines that differ between feeds (UID; SUMMARY and the alarms'
# DESCRIPTION; DTSTAMP and LAST-MODIFIED): a template, kept in a bounded LRU under everything
# else its bytes depend on. The placeholders' lines are written by icalendar too, each value set
# as the event sets it, and kept in a bounded LRU (not a UID's: each is in one event only). A
# feed is then the calendar's header, its events' bytes and the VTIMEZONEs, joined as
# Component.to_ical() joins them: one content line after another, each folded on its own (so a
# line written alone is the same bytes).
# A calendar of many events (the aggregate, a caseload) also keeps where each event's bytes are
# in its last body, under a mark (a hash) of all they depend on but the UID (what
# FeedEvent.digests() hashes, the revision, the to-do): its next render reuses those of the
# events whose mark is unchanged.

TEMPLATE_CACHE_BYTES = 64 * MiB  # event templates (bytes and keys), least recent out
LINE_CACHE_BYTES = 16 * MiB  # placeholder lines (summaries, stamps; not UIDs), calendar heads
REUSE_MIN_EVENTS = 500  # calendars with this many events keep their events' bytes for the next
WRITTEN_CACHE_BYTES = 512 * MiB  # those last bodies (the served renders' own bytes) and indexes
_SLOT = "pacing-slot"  # placeholder UID and SUMMARY: short, so its line is never folded
_SLOT_TIME = dt.datetime(1901, 1, 1, tzinfo=UTC)  # placeholder DTSTAMP and LAST-MODIFIED
UID_SLOT, SUMMARY_SLOT, ALARM_SLOT, STAMP_SLOT, MODIFIED_SLOT = range(5)
# slot -> (property, the component attribute to_ics sets it with)
_SLOT_PROPERTIES = (
    ("UID", "uid"),
    ("SUMMARY", "summary"),
    ("DESCRIPTION", "description"),  # an alarm's: the event's summary
    ("DTSTAMP", "stamp"),
    ("LAST-MODIFIED", "last_modified"),
)
Template = tuple[bytes | int, ...]  # static bytes and slots; () when written whole every time
_NOT_SAFE: Template = ()


@dataclass(frozen=True, eq=False)
class _Written:
    """A big calendar's last render: its bytes, and each event's mark and span in them (its
    VEVENT and, when it has one, its VTODO)."""

    body: bytes
    spans: dict[str, tuple[bytes, int, int]]  # uid -> (mark, start, end)


_TEMPLATES: ByteCache[Hashable, Template] = ByteCache(TEMPLATE_CACHE_BYTES)
_LINES: ByteCache[Hashable, bytes] = ByteCache(LINE_CACHE_BYTES)
_WRITTEN: ByteCache[str, _Written] = ByteCache(WRITTEN_CACHE_BYTES)  # calendar id -> its last render


def render_cache_clear() -> None:
    """Forget every template, line, big calendar and VTIMEZONE (the next render writes
    everything again)."""
    _TEMPLATES.clear()
    _LINES.clear()
    _WRITTEN.clear()
    _vtimezone_bytes.cache_clear()
    _vtimezone.cache_clear()


def render_cache_info() -> dict[str, dict[str, int]]:
    """Entries, accounted bytes, hits and misses of the template, line and big-calendar
    caches."""
    return {
        name: {"entries": len(c), "bytes": c.bytes, "hits": c.hits, "misses": c.misses}
        for name, c in (("templates", _TEMPLATES), ("lines", _LINES), ("calendars", _WRITTEN))
    }


def to_ics(
    name: str,
    calendar_id: str,
    events: Sequence[FeedEvent],
    revisions: Mapping[str, Revision],
    *,
    todo: bool = False,
) -> bytes:
    """One VCALENDAR, no METHOD; DTSTAMP and LAST-MODIFIED are each event's revision time.
    The bytes are those of the calendar built whole with icalendar (see above)."""
    parts: list[bytes | memoryview] = [_head(name)]
    big = len(events) >= REUSE_MIN_EVENTS
    last = _WRITTEN.get(calendar_id) if big else None
    before = memoryview(last.body) if last is not None else None
    spans: dict[str, tuple[bytes, int, int]] = {}
    size = len(parts[0])
    for event in sorted(events, key=lambda ev: (_day(ev.start), ev.uid)):
        rev = revisions[event.uid]
        with_todo = bool(todo and event.due and not (event.rrule or event.rdates))  # no series
        if not big:
            _write_event(event, rev, parts)
            if with_todo:
                _write_todo(event, rev, parts)
            continue
        mark = _mark(event, rev, with_todo)
        found = last.spans.get(event.uid) if last is not None else None
        start, count = size, len(parts)
        if found is not None and found[0] == mark and before is not None:
            parts.append(before[found[1] : found[2]])
        else:
            _write_event(event, rev, parts)
            if with_todo:
                _write_todo(event, rev, parts)
        size += sum(len(p) for p in parts[count:])
        spans[event.uid] = (mark, start, size)
    parts += [_vtimezone_bytes(*zone) for zone in _zone_spans(events)]
    parts.append(b"END:VCALENDAR\r\n")
    body = b"".join(parts)
    if big:
        _WRITTEN.put(calendar_id, _Written(body, spans), len(body) + 200 * len(spans))
    return body


def _mark(event: FeedEvent, rev: Revision, with_todo: bool) -> bytes:
    """All that an event's bytes (beside its UID) depend on, hashed: what FeedEvent.digests()
    hashes (repr() tells a zone, a date from a datetime, a list from a tuple), its revision,
    and its to-do's."""
    dates = (event.start, event.end, event.rrule, event.rdates)
    content = (event.summary, event.description, event.categories, event.url, event.alarms)
    todo = (event.done_on, event.due, event.todo_start) if with_todo else None
    known = repr((dates, content, rev.sequence, rev.modified, todo))
    return hashlib.blake2b(known.encode(), digest_size=16).digest()


def _head(name: str) -> bytes:
    """The calendar's lines before its first component (cached per name)."""
    key = ("VCALENDAR", name)
    found = _LINES.get(key)
    if found is None:
        found = bytes(_calendar(name).to_ical()).removesuffix(b"END:VCALENDAR\r\n")
        _LINES.put(key, found, 2 * len(found) + 200)
    return found


def _calendar(name: str) -> Any:
    from icalendar import Calendar, vDuration, vText

    calendar = Calendar.new(name=name, prodid=PRODID, refresh_interval=REFRESH)
    calendar.pop("UID", None)  # new() invents a random one: output must be deterministic
    for prop in ("NAME", "X-WR-CALNAME"):  # TEXT (RFC 7986): new() writes them unescaped
        calendar[prop] = vText(name)
    calendar["REFRESH-INTERVAL"].params["VALUE"] = "DURATION"
    calendar.add("x-published-ttl", vDuration(REFRESH))
    return calendar


def _write_event(event: FeedEvent, rev: Revision, out: list[bytes | memoryview]) -> None:
    key = (
        "VEVENT",
        rev.sequence,
        _when(event.start),
        _when(event.end),
        event.description,
        tuple(event.categories),
        event.url,
        _rule_key(event.rrule),
        tuple(_when(d) for d in event.rdates),
        tuple(event.alarms),
    )
    slots = (event.uid, event.summary, event.summary, rev.modified, rev.modified)
    counts = (1, 1, len(event.alarms), 1, 1)
    _write(
        "VEVENT",
        key,
        slots,
        counts,
        event.description,
        lambda uid, summary, modified: _vevent(event, rev.sequence, uid, summary, modified),
        out,
    )


def _write_todo(event: FeedEvent, rev: Revision, out: list[bytes | memoryview]) -> None:
    key = (
        "VTODO",
        rev.sequence,
        event.description,
        _when(event.todo_start or event.due),
        _when(event.due),
        event.done_on,
    )
    todo_uid = event.uid.replace("@", "#todo@", 1)
    slots = (todo_uid, event.summary, event.summary, rev.modified, rev.modified)
    _write(
        "VTODO",
        key,
        slots,
        (1, 1, 0, 1, 1),
        event.description,
        lambda uid, summary, modified: _todo(event, rev.sequence, uid, summary, modified),
        out,
    )


def _write(
    kind: str,
    key: Hashable,
    slots: tuple[str, str, str, dt.datetime, dt.datetime],
    counts: tuple[int, ...],
    description: str,
    build: Callable[[str, str, dt.datetime], Any],
    out: list[bytes | memoryview],
) -> None:
    """One component's bytes onto `out`: its template with its own lines in the slots, or
    (when a value could be taken for a placeholder) the component written whole."""
    uid, summary, _, modified, _ = slots
    if _SLOT in (uid, summary, description) or modified == _SLOT_TIME:
        out.append(bytes(build(uid, summary, modified).to_ical()))
        return
    template = _TEMPLATES.get(key)
    if template is None:
        written = bytes(build(_SLOT, _SLOT, _SLOT_TIME).to_ical())
        template = _template(kind, written, counts)
        size = sum(len(p) for p in template if isinstance(p, bytes)) + len(description) + 400
        _TEMPLATES.put(key, template, size)
    if not template:  # _NOT_SAFE
        out.append(bytes(build(uid, summary, modified).to_ical()))
        return
    lines: list[bytes | None] = [None] * len(slots)
    for piece in template:
        if isinstance(piece, bytes):
            out.append(piece)
            continue
        line = lines[piece]
        if line is None:
            line = lines[piece] = _slot_line(kind, piece, slots[piece])
        out.append(line)


def _template(kind: str, written: bytes, counts: tuple[int, ...]) -> Template:
    """The component written with placeholders, cut at the placeholders' lines (each a whole
    content line: a folded line's continuations start with a space). _NOT_SAFE unless each
    placeholder is found exactly where expected."""
    markers = {
        _slot_line(kind, slot, _SLOT_TIME if slot >= STAMP_SLOT else _SLOT)[:-2]: slot
        for slot in range(len(_SLOT_PROPERTIES))
    }
    pieces: list[bytes | int] = []
    found = [0] * len(counts)
    static: list[bytes] = []
    for line in written.split(b"\r\n")[:-1]:
        slot = markers.get(line)
        if slot is None:
            static.append(line + b"\r\n")
            continue
        found[slot] += 1
        if static:
            pieces.append(b"".join(static))
            static = []
        pieces.append(slot)
    if static:
        pieces.append(b"".join(static))
    if tuple(found) != counts or b"".join(p for p in pieces if isinstance(p, bytes)) == b"":
        return _NOT_SAFE
    return tuple(pieces)


def _slot_line(kind: str, slot: int, value: str | dt.datetime) -> bytes:
    """The content line (with its CRLF) icalendar writes for a slot's value, set on the same
    kind of component and with the same attribute as _vevent(), _todo() and the alarms do."""
    key = (kind, slot, _when(value))
    found = _LINES.get(key) if slot != UID_SLOT else None  # a UID is in one event only
    if found is not None:
        return found
    from icalendar import Alarm, Event, Todo

    component = Alarm() if slot == ALARM_SLOT else Todo() if kind == "VTODO" else Event()
    name, attribute = _SLOT_PROPERTIES[slot]
    setattr(component, attribute, value)
    line = bytes(component.content_line(name, component[name]).to_ical()) + b"\r\n"
    if slot != UID_SLOT or value == _SLOT:
        _LINES.put(key, line, len(line) + (2 * len(value) if isinstance(value, str) else 0) + 300)
    return line


def _when(value: Any) -> Any:
    """A date or datetime as a key: aware datetimes of the same instant in different zones are
    equal in Python, not in a calendar."""
    if isinstance(value, dt.datetime):
        return value, value.tzinfo, value.fold
    return value


def _rule_key(rrule: Mapping[str, Any] | None) -> Hashable:
    if not rrule:
        return None
    return tuple(
        (k, type(v), tuple(_when(x) for x in v) if isinstance(v, list | tuple) else _when(v))
        for k, v in rrule.items()
    )


def _vevent(event: FeedEvent, sequence: int, uid: str, summary: str, modified: dt.datetime) -> Any:
    from icalendar import Alarm, Event
    from icalendar.enums import TRANSP

    vevent = Event.new(
        uid=uid,
        summary=summary,
        start=event.start,
        end=event.end,
        stamp=modified,
        last_modified=modified,
        sequence=sequence,
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
        alarm = Alarm.new(description=summary)
        alarm.add("action", "DISPLAY")
        related = {} if not event.all_day else {"RELATED": "END"}
        alarm.add("trigger", trigger, parameters=related)
        vevent.add_component(alarm)
    return vevent


def _zone_spans(events: Sequence[FeedEvent]) -> list[tuple[str, int, int]]:
    """(zone, first year, last year) of each zone the timed events use, spanning their years."""
    years: dict[str, list[int]] = {}
    for event in events:
        if isinstance(event.start, dt.datetime) and isinstance(event.start.tzinfo, ZoneInfo):
            years.setdefault(event.start.tzinfo.key, []).append(event.start.year)
            if event.rrule and isinstance(event.rrule.get("until"), dt.datetime):
                years[event.start.tzinfo.key].append(event.rrule["until"].year)
    return [(key, min(ys) - 1, max(ys) + 1) for key, ys in sorted(years.items())]


@lru_cache(maxsize=64)
def _vtimezone_bytes(key: str, first_year: int, last_year: int) -> bytes:
    return bytes(_vtimezone(key, first_year, last_year).to_ical())


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


def _todo(event: FeedEvent, sequence: int, uid: str, summary: str, modified: dt.datetime) -> Any:
    from icalendar import Todo

    new: Any = Todo.new  # STATUS is a str enum: the plain value, as ever
    vtodo = new(
        uid=uid,
        summary=summary,
        stamp=modified,
        last_modified=modified,
        sequence=sequence,
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
