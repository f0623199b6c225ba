"""Calendars every client reads (issue 9, build item 6): ical.js across DST, DST-naive UNTIL,
bytes that change only when an event does, and a clean icscheck."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
from dateutil.rrule import rrulestr

from icskit import KIT, icscheck
from pacing.adapters.files import bundled_guides, load_lea
from pacing.core.timeline import Entry, expand
from pacing.export.ics import FeedEvent, feed_events, revise, to_ics

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TODAY = dt.date(2024, 5, 1)
STAMP = dt.datetime(2024, 5, 1, 15, 0, tzinfo=dt.UTC)
SERIES = "implementation-2024/step-4/cim-team-meeting"
ICALJS = KIT / "node_modules" / "ical.js" / "dist" / "ical.js"

# Every occurrence of one VEVENT as ical.js (Thunderbird's parser) expands it: the UTC instant
# of a timed occurrence, the date of an all-day one.
EXPAND = """
import { readFileSync } from 'node:fs';
const ICAL = (await import(process.argv[1])).default;
const root = new ICAL.Component(ICAL.parse(readFileSync(process.argv[2], 'utf8')));
for (const tz of root.getAllSubcomponents('vtimezone')) {
  ICAL.TimezoneService.register(new ICAL.Timezone(tz));
}
const vevent = root.getAllSubcomponents('vevent')
  .find((c) => c.getFirstPropertyValue('uid') === process.argv[3]);
const event = new ICAL.Event(vevent);
const out = [];
const it = event.iterator();
for (let next = it.next(); next && out.length < 1000; next = it.next()) {
  const start = event.getOccurrenceDetails(next).startDate;
  out.push(start.isDate ? start.toString() : start.toJSDate().toISOString());
}
console.log(JSON.stringify(out));
"""


def timeline_meetings(profile: str, today: dt.date = TODAY) -> tuple[list[Entry], str]:
    lea = load_lea(EXAMPLES / f"{profile}.toml")
    t = expand(bundled_guides(), lea, today)
    return [e for e in t.items if e.series == SERIES], lea.timezone


def export(profile: str, today: dt.date = TODAY) -> tuple[list[FeedEvent], bytes]:
    lea = load_lea(EXAMPLES / f"{profile}.toml")
    events = feed_events(expand(bundled_guides(), lea, today))
    return events, to_ics(f"CIM: {lea.name}", lea.id, events, revise({}, events, STAMP))


def icaljs_occurrences(path: Path, uid: str) -> list[str]:
    node = shutil.which("node")
    assert node and ICALJS.is_file(), "run tests/setup.sh first (node and ical.js)"
    done = subprocess.run(
        [node, "--input-type=module", "-e", EXPAND, ICALJS.as_uri(), str(path), uid],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def expected_starts(meetings: list[Entry], timezone: str) -> list[str]:
    """The timeline's instants (timed) or days (all-day), as the script prints them."""
    out = []
    for e in meetings:
        if e.start_time:
            local = dt.datetime.combine(e.due, e.start_time, ZoneInfo(timezone))
            out.append(local.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
        else:
            out.append(e.due.isoformat())
    return out


@pytest.mark.parametrize("profile", ["sunrise-usd", "lakeside-usd"])
def test_icaljs_expands_the_meeting_series_across_dst(profile: str, tmp_path: Path) -> None:
    meetings, timezone = timeline_meetings(profile)
    assert len(meetings) == 18
    if profile == "sunrise-usd":  # 2nd Wednesday 15:30 America/Los_Angeles, Jan 2025 - Jun 2026
        assert {e.start_time for e in meetings} == {dt.time(15, 30)}
        months = {e.due.month for e in meetings}
        assert {3, 11} <= months  # both DST changes are inside the series
    path = tmp_path / f"{profile}.ics"
    path.write_bytes(export(profile)[1])
    got = icaljs_occurrences(path, f"{SERIES}@{profile}.pacing")
    assert got == expected_starts(meetings, timezone)


@pytest.mark.parametrize("profile", ["sunrise-usd", "lakeside-usd", "riverbend-usd"])
def test_icscheck_is_clean_with_no_icaljs_timezone_warning(profile: str, tmp_path: Path) -> None:
    path = tmp_path / f"{profile}.ics"
    path.write_bytes(export(profile)[1])
    report = icscheck(path)
    # The kit only warns when ical.js's zone differs from IANA because of a multi-valued RDATE
    # (or when the checkers count occurrences differently): here both are errors.
    assert "[WARN]" not in report, report
    assert not re.search(r"IANA zone|RDATE has \d+ values", report), report
    assert "warning:" not in report, report


def test_vtimezone_has_one_rdate_per_transition() -> None:
    body = export("sunrise-usd")[1].decode()
    rdates = [line for line in body.split("\r\n") if line.startswith("RDATE")]
    zone = body[body.index("BEGIN:VTIMEZONE") : body.index("END:VTIMEZONE")]
    assert "RDATE:" in zone
    assert all("," not in line for line in rdates if line in zone)


def test_until_keeps_the_last_occurrence_for_a_dst_naive_expander() -> None:
    meetings, timezone = timeline_meetings("sunrise-usd")
    cal = icalendar.Calendar.from_ical(export("sunrise-usd")[1])
    master = next(e for e in cal.walk("VEVENT") if str(e["UID"]).startswith(SERIES))
    until = master["RRULE"]["UNTIL"][0]
    assert until.tzinfo is not None and until.utcoffset() == dt.timedelta(0)  # RFC 5545
    last = dt.datetime.combine(meetings[-1].due, dt.time(23, 59, 59), ZoneInfo(timezone))
    assert until == last  # the end of the last local day
    rule = master["RRULE"].to_ical().decode()
    rule = ";".join(p for p in rule.split(";") if not p.startswith("UNTIL="))
    # DST-naive: DTSTART's UTC offset (January, -08:00) for every occurrence, compared with
    # UNTIL as is; the last occurrence (June, really 22:30 UTC) comes out at 23:30 UTC.
    naive_start = master.start.astimezone(dt.UTC)
    naive = list(rrulestr(rule, dtstart=naive_start).between(naive_start, until, inc=True))
    assert [d.date() for d in naive] == [e.due for e in meetings]
    # floating: local wall times against UNTIL read as local
    local_until = until.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    floating = rrulestr(rule, dtstart=master.start.replace(tzinfo=None))
    assert [d.date() for d in floating.between(floating[0], local_until, inc=True)] == [
        e.due for e in meetings
    ]


@pytest.mark.parametrize("profile", ["sunrise-usd", "lakeside-usd", "riverbend-usd"])
def test_same_profile_on_two_days_gives_the_same_bytes(profile: str) -> None:
    """A feed's bytes (so its ETag and every LAST-MODIFIED) change only when an event does:
    between these days items become due soon, overdue, at risk and past."""
    lea = load_lea(EXAMPLES / f"{profile}.toml")
    first_day, later_day = dt.date(2024, 5, 1), dt.date(2025, 11, 20)
    first = feed_events(expand(bundled_guides(), lea, first_day))
    later = feed_events(expand(bundled_guides(), lea, later_day))
    statuses = {e.status for e in expand(bundled_guides(), lea, later_day).items} - {
        e.status for e in expand(bundled_guides(), lea, first_day).items
    }
    assert statuses & {"overdue", "due-soon", "at-risk", "past", "behind-plan"}
    revisions = revise({}, first, STAMP)
    again = revise(revisions, later, STAMP + dt.timedelta(days=568))
    assert again == revisions  # no event changed: no new LAST-MODIFIED or SEQUENCE
    body = to_ics("CIM", lea.id, first, revisions)
    assert to_ics("CIM", lea.id, later, again) == body
    text = icalendar.Calendar.from_ical(body).to_ical().decode().replace("\r\n ", "")
    words = r"Status as of|Slack as of|Overdue|Due soon|At risk|Behind plan|Should have started"
    assert not re.search(words, text), profile


def test_meeting_series_off_the_rule_lists_every_date_with_dtstart() -> None:
    meetings, _ = timeline_meetings("lakeside-usd")
    cal = icalendar.Calendar.from_ical(export("lakeside-usd")[1])
    master = next(e for e in cal.walk("VEVENT") if str(e["UID"]).startswith(SERIES))
    assert "RRULE" not in master and master.start == meetings[0].due
    rdates = master.get("RDATE")
    listed = [d.dt for prop in (rdates if isinstance(rdates, list) else [rdates]) for d in prop.dts]
    assert listed == [e.due for e in meetings]  # DTSTART's date included
