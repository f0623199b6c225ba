"""to_ics's caches (event templates, placeholder lines, VTIMEZONEs) never change a byte: every
feed is the calendar icalendar writes when it is built whole, cold or warm, after a change, with
values that look like the placeholders, from several threads, and with a tiny cache."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pacing.adapters.files import bundled_guides, load_lea
from pacing.cache import ByteCache
from pacing.core.revision import Revision
from pacing.core.timeline import expand
from pacing.export import ics
from pacing.export.ics import FeedEvent, feed_events, revise, to_ics

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
TODAY = dt.date(2024, 5, 1)
STAMP = dt.datetime(2024, 5, 1, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def cold() -> Iterator[None]:
    ics.render_cache_clear()
    yield
    ics.render_cache_clear()


def whole(
    name: str, events: Sequence[FeedEvent], revisions: dict[str, Revision], todo: bool = False
) -> bytes:
    """The calendar built whole with icalendar and written by one Calendar.to_ical(), as
    to_ics wrote it before its caches."""
    calendar = ics._calendar(name)
    for event in sorted(events, key=lambda ev: (ics._day(ev.start), ev.uid)):
        rev = revisions[event.uid]
        calendar.add_component(
            ics._vevent(event, rev.sequence, event.uid, event.summary, rev.modified)
        )
        if todo and event.due and not (event.rrule or event.rdates):
            todo_uid = event.uid.replace("@", "#todo@", 1)
            calendar.add_component(
                ics._todo(event, rev.sequence, todo_uid, event.summary, rev.modified)
            )
    for zone in ics._zone_spans(events):
        calendar.add_component(ics._vtimezone(*zone))
    return bytes(calendar.to_ical())


def example_events(prefix: bool = False) -> list[FeedEvent]:
    guides = bundled_guides()
    return [
        ev
        for path in EXAMPLES
        for ev in feed_events(expand(guides, load_lea(path), TODAY), prefix=prefix)
    ]


def same(name: str, events: list[FeedEvent], revisions: dict[str, Revision], **kw: Any) -> bytes:
    body = to_ics(name, "test", events, revisions, **kw)
    assert body == whole(name, events, revisions, **kw)
    return body


@pytest.mark.parametrize("todo", [False, True])
def test_each_example_cold_and_warm_is_the_whole_calendar(todo: bool) -> None:
    guides = bundled_guides()
    for path in EXAMPLES:
        lea = load_lea(path)
        events = feed_events(expand(guides, lea, TODAY))
        revisions = revise({}, events, STAMP)
        ics.render_cache_clear()
        first = same(f"CIM: {lea.name}", events, revisions, todo=todo)
        assert ics.render_cache_info()["templates"]["misses"] > 0
        again = same(f"CIM: {lea.name}", events, revisions, todo=todo)
        assert again == first
        assert ics.render_cache_info()["templates"]["hits"] >= len(events)


def test_aggregate_shares_templates_with_the_lea_feeds() -> None:
    """Prefixed summaries and other revision times are placeholder lines: the aggregate's
    events are written from the LEA feeds' templates."""
    plain = example_events()
    same("CIM: one", plain, revise({}, plain, STAMP))
    written = ics.render_cache_info()["templates"]["misses"]
    prefixed = example_events(prefix=True)
    same("CIM: all", prefixed, revise({}, prefixed, STAMP + dt.timedelta(seconds=7)))
    assert ics.render_cache_info()["templates"]["misses"] == written


def test_a_changed_event_is_written_again_and_only_it_changes() -> None:
    events = example_events()
    revisions = revise({}, events, STAMP)
    first = same("CIM", events, revisions)
    target = next(ev for ev in events if not ev.rrule and len(ev.alarms) > 1)
    changed = [
        dataclasses.replace(ev, description=ev.description + "\nMoved by the board.")
        if ev.uid == target.uid
        else ev
        for ev in events
    ]
    later = revise(revisions, changed, STAMP + dt.timedelta(days=1))
    misses = ics.render_cache_info()["templates"]["misses"]
    second = same("CIM", changed, later)
    assert ics.render_cache_info()["templates"]["misses"] == misses + 1
    assert second != first and b"Moved by the board." in second.replace(b"\r\n ", b"")
    assert later[target.uid].modified != revisions[target.uid].modified
    assert all(later[ev.uid] is revisions[ev.uid] for ev in events if ev.uid != target.uid)


def test_values_like_the_placeholders_are_written_whole() -> None:
    base = next(ev for ev in example_events() if ev.alarms and ev.due)
    slot = ics._SLOT
    odd = [
        dataclasses.replace(base, uid=slot),
        dataclasses.replace(base, uid="b@x.pacing", summary=slot),
        dataclasses.replace(base, uid="c@x.pacing", description=slot),
        dataclasses.replace(base, uid="d@x.pacing", summary=f"DESCRIPTION:{slot}"),
        dataclasses.replace(base, uid="e@x.pacing", categories=(slot,), url=slot),
    ]
    revisions = revise({}, odd, STAMP)
    revisions["e@x.pacing"] = dataclasses.replace(revisions["e@x.pacing"], modified=ics._SLOT_TIME)
    same("CIM", odd, revisions, todo=True)
    same("CIM", odd, revisions, todo=True)


def test_the_same_instant_in_two_zones_is_two_events() -> None:
    """Aware datetimes of one instant are equal in Python: the key keeps their zones apart."""
    la = dt.datetime(2024, 9, 11, 15, 30, tzinfo=ZoneInfo("America/Los_Angeles"))
    ny = la.astimezone(ZoneInfo("America/New_York"))
    utc = la.astimezone(dt.UTC)
    assert la == ny == utc
    events = [
        FeedEvent(f"{n}@x.pacing", "Team", start, start + dt.timedelta(hours=1), "d", ("c",))
        for n, start in enumerate((la, ny, utc))
    ]
    body = same("CIM", events, revise({}, events, STAMP))
    assert b"TZID=America/Los_Angeles:20240911T153000" in body
    assert b"TZID=America/New_York:20240911T183000" in body
    assert b"DTSTART:20240911T223000Z" in body


def test_a_tiny_cache_and_several_threads_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ics, "_TEMPLATES", ByteCache(20_000))
    monkeypatch.setattr(ics, "_LINES", ByteCache(5_000))
    events = example_events()
    prefixed = example_events(prefix=True)
    jobs = [(events, revise({}, events, STAMP)), (prefixed, revise({}, prefixed, STAMP))] * 4
    expected = [whole("CIM", e, r) for e, r in jobs[:2]] * 4
    with ThreadPoolExecutor(4) as pool:
        bodies = list(pool.map(lambda job: to_ics("CIM", "test", *job), jobs))
    assert bodies == expected
    for cache in (ics._TEMPLATES, ics._LINES):
        assert 0 < cache.bytes <= cache.max_bytes


@pytest.mark.parametrize("todo", [False, True])
def test_a_big_calendar_reuses_its_unchanged_events(
    todo: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A calendar of REUSE_MIN_EVENTS events or more takes the bytes of its unchanged events
    from its last render; a changed one (content or revision) is written again."""
    monkeypatch.setattr(ics, "REUSE_MIN_EVENTS", 10)
    events = example_events(prefix=True)
    revisions = revise({}, events, STAMP)
    first = same("CIM: all", events, revisions, todo=todo)
    assert ics.render_cache_info()["calendars"]["entries"] == 1
    templates = ics.render_cache_info()["templates"]["hits"]
    assert same("CIM: all", events, revisions, todo=todo) == first
    assert ics.render_cache_info()["templates"]["hits"] == templates  # nothing written again

    target = next(ev for ev in events if ev.alarms and ev.due and not (ev.rrule or ev.rdates))
    done = dataclasses.replace(target, done_on=dt.date(2024, 6, 1))  # the to-do's only
    renamed = dataclasses.replace(target, summary=target.summary + " (renamed)")
    for changed in (done, renamed):
        later_events = [changed if ev.uid == target.uid else ev for ev in events]
        later = revise(revisions, later_events, STAMP + dt.timedelta(hours=1))
        body = same("CIM: all", later_events, later, todo=todo)
        assert (body == first) is (changed is done and not todo)
    stamped = {**revisions, target.uid: dataclasses.replace(revisions[target.uid], sequence=3)}
    assert b"SEQUENCE:3" in same("CIM: all", events, stamped, todo=todo)
    assert same("CIM: all", events, revisions, todo=todo) == first
