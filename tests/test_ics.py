"""The .ics export: golden files, six third-party parsers, stable UIDs, revisions, series."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import icalendar
import pytest
import recurring_ical_events

from icskit import icscheck
from pacing.adapters.files import bundled_guides, load_lea
from pacing.core.lea import Lea
from pacing.core.timeline import expand
from pacing.export.ics import FeedEvent, feed_events, revise, to_ics

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
TODAY = dt.date(2024, 5, 1)
STAMP = dt.datetime(2024, 5, 1, 15, 0, tzinfo=dt.UTC)


def events_for(lea: Lea, today: dt.date = TODAY, **options: bool) -> list[FeedEvent]:
    return feed_events(expand(bundled_guides(), lea, today), **options)


def render(events: list[FeedEvent], name: str = "CIM: test", todo: bool = False) -> bytes:
    return to_ics(name, "test", events, revise({}, events, STAMP), todo=todo)


def parse(body: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(body)


@pytest.mark.parametrize("profile", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_golden_files_and_six_parsers(profile: Path, tmp_path: Path) -> None:
    lea = load_lea(profile)
    body = render(events_for(lea), f"CIM: {lea.name}", todo=True)
    golden = GOLDEN / f"{profile.stem}.ics"
    if os.environ.get("PACING_REGENERATE_GOLDEN"):
        golden.write_bytes(body)
    assert body == golden.read_bytes(), f"{golden} differs (PACING_REGENERATE_GOLDEN=1)"
    out = tmp_path / "feed.ics"
    out.write_bytes(render(events_for(lea), f"CIM: {lea.name}"))
    icscheck(out)
    icscheck(golden)  # with VTODOs


def test_aggregate_feed(tmp_path: Path) -> None:
    leas = [load_lea(p) for p in EXAMPLES]
    events = [ev for lea in leas for ev in events_for(lea, prefix=True)]
    out = tmp_path / "all.ics"
    out.write_bytes(render(events, "CIM: caseload"))
    icscheck(out)
    cal = parse(out.read_bytes())
    summaries = [str(e["SUMMARY"]) for e in cal.walk("VEVENT")]
    assert all(
        s.startswith(("[Sunrise USD] ", "[Riverbend USD] ", "[Lakeside USD] ")) for s in summaries
    )
    uids = [str(e["UID"]) for e in cal.walk("VEVENT")]
    assert len(uids) == len(set(uids))


def test_calendar_shape(make_lea) -> None:
    cal = parse(render(events_for(make_lea("riverbend-usd")), "CIM: Riverbend"))
    assert "METHOD" not in cal
    assert str(cal["X-WR-CALNAME"]) == str(cal["NAME"]) == "CIM: Riverbend"
    body = cal.to_ical().decode()
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT12H" in body and "X-PUBLISHED-TTL:PT12H" in body
    by_uid = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    step1 = by_uid["sig-dis-2024/step-1/step-1-submission@riverbend-usd.pacing"]
    assert step1.start == dt.date(2024, 7, 10) and step1.end == dt.date(2024, 7, 11)  # exclusive
    assert "Submit to: Stepwell" in str(step1["DESCRIPTION"])
    assert "Seed 003" in str(step1["DESCRIPTION"])
    assert [str(c) for c in step1.categories] == ["Step 1: Gather and Inquire", "CDE date"]
    meeting = by_uid["sig-dis-2024/step-0/virtual-meeting@riverbend-usd.pacing"]
    assert meeting.start == dt.datetime(2024, 4, 2, 12, tzinfo=meeting.start.tzinfo)
    assert meeting["DTSTART"].params["TZID"] == "America/Los_Angeles"
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["America/Los_Angeles"]
    window = by_uid["sig-dis-2024/step-1/data-drill-down@riverbend-usd.pacing"]
    assert (window.start, window.end) == (dt.date(2024, 4, 1), dt.date(2024, 6, 1))
    start_by = by_uid["sig-dis-2024/step-1/data-drill-down#start-by@riverbend-usd.pacing"]
    assert start_by.start == dt.date(2024, 4, 26)  # 25 working days (profile override)
    assert len(window.walk("VALARM")) == 3  # offsets 14, 7, 1


def test_box_required_items_and_resource_url(make_lea) -> None:
    cal = parse(render(events_for(make_lea("sunrise-usd"))))
    by_uid = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    box = by_uid["targeted-l3-2024/step-1/box-07-parent-input@sunrise-usd.pacing"]
    text = str(box["DESCRIPTION"])
    assert "Required:" in text and "parent input summary" in text
    assert str(box["URL"]).startswith("http")


def test_no_tasks_leaves_out_start_by_events(make_lea) -> None:
    lea = make_lea("riverbend-usd")
    with_tasks = {e.uid for e in events_for(lea)}
    without = {e.uid for e in events_for(lea, start_by=False)}
    assert without < with_tasks
    assert all("#start-by" in uid for uid in with_tasks - without)


def test_done_items_are_marked_and_have_no_alarms(make_lea) -> None:
    lea = make_lea("sunrise-usd")
    cal = parse(render(events_for(lea, today=dt.date(2024, 11, 1)), todo=True))
    by_uid = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    done = by_uid["targeted-l3-2024/step-1/step-1-submission@sunrise-usd.pacing"]
    assert str(done["SUMMARY"]).startswith("Done: ") and not done.walk("VALARM")
    assert "Done" in [str(c) for c in done.categories]
    todo = next(t for t in cal.walk("VTODO") if "step-1/step-1-submission" in str(t["UID"]))
    assert str(todo["STATUS"]) == "COMPLETED" and todo["DUE"].dt == dt.date(2024, 7, 10)


def test_alarms_follow_the_reminder_offsets(make_lea) -> None:
    lea = make_lea("sunrise-usd", reminders={"offsets_days": [7, 0], "send_at": "09:30"})
    lea = lea.model_copy(update={"done": {}})  # before the Step 3 submission closes box 27
    cal = parse(render(events_for(lea)))
    uid = "targeted-l3-2024/step-3/box-27-plan-for-improvement-link@sunrise-usd.pacing"
    event = next(e for e in cal.walk("VEVENT") if e.uid == uid)
    triggers = sorted(a.TRIGGER for a in event.walk("VALARM"))
    # relative to the exclusive DTEND (midnight after the due date): 09:30 on due-7 and on due
    assert triggers == [-dt.timedelta(days=8) + dt.timedelta(hours=9, minutes=30),
                        -dt.timedelta(days=1) + dt.timedelta(hours=9, minutes=30)]  # fmt: skip


def test_uids_are_stable_and_sequence_follows_date_changes(make_lea) -> None:
    before = events_for(make_lea("riverbend-usd"))
    item = "sig-dis-2024/step-4/final-budget-amendment"
    moved = make_lea("riverbend-usd", overrides={item: {"due": dt.date(2025, 3, 21)}})
    after = events_for(moved)
    assert {e.uid for e in before} == {e.uid for e in after}
    first = revise({}, before, STAMP)
    later = STAMP + dt.timedelta(days=3)
    second = revise(first, after, later)
    uid = f"{item}@riverbend-usd.pacing"
    assert (second[uid].sequence, second[uid].modified) == (1, later)
    unchanged = "sig-dis-2024/step-1/step-1-submission@riverbend-usd.pacing"
    assert second[unchanged] == first[unchanged]
    event = next(e for e in parse(to_ics("x", "x", after, second)).walk("VEVENT") if e.uid == uid)
    assert event.sequence == 1 and event.last_modified == later and event.stamp == later


def test_output_is_deterministic(make_lea) -> None:
    lea = make_lea("sunrise-usd")
    assert render(events_for(lea)) == render(events_for(lea))


@pytest.mark.parametrize(
    ("profile", "first", "count", "timed"),
    [("lakeside-usd", dt.date(2025, 1, 2), 18, False),  # assumed: first Wednesday, but
     # January 1 is a holiday: moved to the next working day, so the dates go out as RDATEs
     ("sunrise-usd", dt.date(2025, 1, 8), 18, True)],  # override: 2nd Wednesday 15:30
)  # fmt: skip
def test_meeting_series_expands_to_the_timeline_dates(make_lea, profile, first, count, timed):
    lea = make_lea(profile)
    timeline = expand(bundled_guides(), lea, TODAY)
    expected = [
        e.due for e in timeline.items if e.series == "implementation-2024/step-4/cim-team-meeting"
    ]
    cal = parse(render(events_for(lea)))
    masters = [e for e in cal.walk("VEVENT") if "RRULE" in e or "RDATE" in e]
    assert len(masters) == 1 and len(expected) == count and expected[0] == first
    if timed:
        assert masters[0]["RRULE"]["UNTIL"][0].tzinfo is not None  # UNTIL in UTC
    else:  # the rule would give January 1: the moved dates are listed instead
        assert "RRULE" not in masters[0] and masters[0].start == first
    occurrences = recurring_ical_events.of(cal).between(dt.date(2024, 1, 1), dt.date(2027, 1, 1))
    days = sorted(
        o.start.date() if isinstance(o.start, dt.datetime) else o.start
        for o in occurrences
        if "cim-team-meeting" in str(o["UID"])
    )
    assert days == expected
