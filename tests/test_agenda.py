"""`pacing agenda`, short ids for `done`/`undo`, ids in the table and Markdown, and the
meeting reminder the working day before. Expectations are worked out by hand from the
example profiles and the 2024-2025 calendar."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from pacing.cli.main import cli
from pacing.core.agenda import agenda, find, short_id
from pacing.core.guide import Guide
from pacing.core.lea import Lea
from pacing.core.reminders import plan
from pacing.core.timeline import expand
from pacing.reminders.compose import headline

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
D = dt.date
MEETING = "implementation-2024/step-4/cim-team-meeting"


@pytest.fixture
def leas(tmp_path: Path) -> Path:
    """Sunrise without its [done] table, and Lakeside (nothing due before 2025)."""
    folder = tmp_path / "leas"
    folder.mkdir()
    text = (EXAMPLES / "sunrise-usd.toml").read_text()
    (folder / "sunrise-usd.toml").write_text(text.split("[done]")[0])
    (folder / "lakeside-usd.toml").write_text((EXAMPLES / "lakeside-usd.toml").read_text())
    return folder


def invoke(*args: str, state: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"PACING_STATE_DIR": str(state)})
    return result.exit_code, result.output


# ---------------------------------------------------------------- agenda


def test_agenda_this_week_then_next_weeks_then_overdue_summary(leas: Path, tmp_path: Path) -> None:
    # Tuesday October 1, 2024; 14 days: through October 15. This week (Monday Sep 30) has
    # nothing; the week of October 7: the root-cause boxes (plan: finish Tuesday Oct 8; four of
    # them should have started in September: at risk), box 26, the Step 2 submission (CDE,
    # Thursday Oct 10). Missed: the Step 1 submission (CDE, July 10) and the nine plans of
    # boxes 1, 7, 10, 11, 13, 14, 15, 16, 17. Lakeside has nothing before 2025.
    code, out = invoke("agenda", str(leas), "--today", "2024-10-01", state=tmp_path / "s")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "This week (Monday 2024-09-30)"
    assert lines[1] == "  Nothing due this week."
    assert lines[3] == "Week of 2024-10-07"
    assert lines[4] == (
        "  Sunrise USD  Plan: finish by 2024-10-08  Root Cause #1 and supporting data (at risk)"
    )
    assert lines[5] == "      box-19-root-cause-1"
    ids = [x.strip() for x in lines[5:17:2]]
    assert ids == ["box-19-root-cause-1", "box-20-root-cause-2", "box-21-root-cause-3",
                   "box-22-root-cause-4", "box-26-additional-relevant-data",
                   "step-2-submission"]  # fmt: skip
    assert (
        lines[14]
        == "  Sunrise USD  CDE deadline 2024-10-10  Submit Step 2 (Investigate) in Stepwell"
    )
    assert lines[-2:] == [
        "Missed (see `pacing timeline PROFILE --upcoming 0`):",
        "  Sunrise USD: 1 overdue (CDE), 9 behind plan",
    ]
    assert "Lakeside" not in out
    assert "box-01" not in out  # overdue rows are summarised, never listed


def test_agenda_of_the_examples_lists_meetings_by_local_week(tmp_path: Path) -> None:
    # Monday March 3, 2025: Lakeside and Riverbend meet on the first Wednesday (assumed: March
    # 5), Sunrise on its own second Wednesday (March 12, 15:30). Sunrise's steps are done;
    # Riverbend's Sig Dis rows are missed (the example has no done marks).
    code, out = invoke("agenda", str(EXAMPLES), "--today", "2025-03-03", state=tmp_path / "s")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[:9] == [
        "This week (Monday 2025-03-03)",
        "  Lakeside USD  Meeting (assumed date) 2025-03-05  CIM team meeting: monitor "
        "implementation of the Plan for Improvement",
        "      cim-team-meeting/2025-03",
        "  Riverbend USD  Meeting (assumed date) 2025-03-05  CIM team meeting: monitor "
        "implementation of the Plan for Improvement",
        "      cim-team-meeting/2025-03",
        "",
        "Week of 2025-03-10",
        "  Sunrise USD  Meeting 2025-03-12 15:30  CIM team meeting: monitor implementation of "
        "the Plan for Improvement",
        "      cim-team-meeting/2025-03",
    ]
    summary = [x for x in lines if x.startswith("  Riverbend USD: ")]
    assert len(summary) == 1 and " overdue (CDE)" in summary[0]
    assert not [x for x in lines if x.startswith(("  Sunrise USD: ", "  Lakeside USD: "))]


def test_agenda_json(leas: Path, tmp_path: Path) -> None:
    code, out = invoke("agenda", str(leas), "--today", "2024-10-01", "--format", "json",
                       state=tmp_path / "s")  # fmt: skip
    assert code == 0, out
    doc = json.loads(out)
    assert doc["days"] == 14
    assert [w["monday"] for w in doc["weeks"]] == ["2024-09-30", "2024-10-07"]
    assert doc["weeks"][0] == {"monday": "2024-09-30", "this_week": True, "items": []}
    last = doc["weeks"][1]["items"][-1]
    assert last["short_id"] == "step-2-submission"
    assert last["id"] == "targeted-l3-2024/step-2/step-2-submission"
    assert (last["lea"], last["lea_name"]) == ("sunrise-usd", "Sunrise USD")
    assert (last["date_label"], last["date"], last["status"]) == (
        "CDE deadline", "2024-10-10", "due-soon",
    )  # fmt: skip
    assert doc["behind"] == [{
        "lea": "sunrise-usd", "overdue": 1, "overdue_by_source": {"cde": 1}, "behind_plan": 9,
        "at_risk": 0, "text": "Sunrise USD: 1 overdue (CDE), 9 behind plan",
    }]  # fmt: skip


def test_agenda_core_skips_done_past_and_na(guides: tuple[Guide, ...],
                                            make_lea: Callable[..., Lea]) -> None:  # fmt: skip
    # Sunrise as given (Steps 1-3 done) on Thursday March 13, 2025: March's meeting (the 12th)
    # is past; 30 days ahead hold April 9's meeting and nothing done or not applicable.
    t = expand(guides, make_lea("sunrise-usd"), D(2025, 3, 13))
    found = agenda([t], 30)
    assert [(w.monday, w.this_week) for w in found.weeks] == [
        (D(2025, 3, 10), True), (D(2025, 4, 7), False),
    ]  # fmt: skip
    assert [(x.short_id, x.words, x.date) for x in found.weeks[1].lines] == [
        ("cim-team-meeting/2025-04", "Meeting", D(2025, 4, 9)),
    ]
    assert found.behind == ()


# ---------------------------------------------------------------- short ids


def test_short_ids_and_did_you_mean(guides: tuple[Guide, ...],
                                    make_lea: Callable[..., Lea]) -> None:  # fmt: skip
    t = expand(guides, make_lea("sunrise-usd"), D(2024, 10, 1))
    box19 = "targeted-l3-2024/step-2/box-19-root-cause-1"
    assert short_id(t.get(box19)) == "box-19-root-cause-1"
    assert short_id(t.get(f"{MEETING}/2025-03")) == "cim-team-meeting/2025-03"
    for given in (box19, "box-19-root-cause-1", "box-19", "step-2/box-19", "box-19/"):
        assert (found := find(t.items, given)).entry is not None and found.entry.id == box19
    assert find(t.items, "box-1").entry == t.get("targeted-l3-2024/step-1/box-01-cim-team")
    assert find(t.items, "step-2-submission").entry == t.get(
        "targeted-l3-2024/step-2/step-2-submission"
    )
    meetings = find(t.items, "cim-team-meeting")
    assert meetings.entry is None and len(meetings.matches) == 18  # 2025-01 .. 2026-06
    typo = find(t.items, "box-19-root-cause-7")
    assert typo.entry is None and typo.suggestions[0] == "box-19-root-cause-1"


def test_done_and_undo_take_a_short_id(leas: Path, tmp_path: Path) -> None:
    state, profile = tmp_path / "s", str(leas / "sunrise-usd.toml")
    code, out = invoke("done", profile, "box-19", "--on", "2024-10-02", state=state)
    assert code == 0, out
    assert out == ("done: targeted-l3-2024/step-2/box-19-root-cause-1 (Root Cause #1 and "
                   "supporting data) on 2024-10-02\n")  # fmt: skip
    code, out = invoke("agenda", profile, "--today", "2024-10-01", state=state)
    assert "box-19-root-cause-1" not in out and "box-20-root-cause-2" in out
    code, out = invoke("undo", profile, "box-19-root-cause-1", state=state)
    assert code == 0 and out.startswith("not done: targeted-l3-2024/step-2/box-19-root-cause-1")


def test_unknown_or_ambiguous_short_id_is_one_line_with_suggestions(
    leas: Path, tmp_path: Path
) -> None:
    state, profile = tmp_path / "s", str(leas / "sunrise-usd.toml")
    code, out = invoke("done", profile, "box-19-root-cause-7", state=state)
    assert code == 1 and len(out.splitlines()) == 1
    assert "unknown item 'box-19-root-cause-7' (did you mean box-19-root-cause-1" in out
    code, out = invoke("done", profile, "cim-team-meeting", state=state)
    assert code == 1 and len(out.splitlines()) == 1
    assert ("'cim-team-meeting' matches 18 items: cim-team-meeting/2025-01, "
            "cim-team-meeting/2025-02") in out and "and 13 more (give more of the id)" in out  # fmt: skip
    code, out = invoke("undo", profile, "step-9-submission", state=state)
    assert code == 1 and "did you mean step-2-submission or step-1-submission" in out


# ---------------------------------------------------------------- ids in table and Markdown


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "80"}
    code = "from pacing.cli.main import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, check=False)  # fmt: skip


def test_table_and_markdown_show_short_ids_within_80_columns() -> None:
    profile = str(EXAMPLES / "sunrise-usd.toml")
    table = run("timeline", profile, "--today", "2024-10-01")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert max(len(x) for x in lines) <= 80
    at = next(i for i, x in enumerate(lines) if "Root Cause #1" in x)
    assert "box-19-root-cause-1" in " ".join(lines[at : at + 4])
    md = run("timeline", profile, "--today", "2024-10-01", "--format", "md").stdout
    assert "| Due | Step | Item | Id | Status |" in md
    assert "| Root Cause #1 and supporting data | `box-19-root-cause-1` |" in md


# ---------------------------------------------------------------- meeting reminders


def meeting_days(lea: Lea, guides: tuple[Guide, ...]) -> dict[str, tuple[dt.datetime, ...]]:
    t = expand(guides, lea, D(2024, 12, 1))
    zone = ZoneInfo(lea.timezone)
    found: dict[str, list[dt.datetime]] = {}
    for r in plan(t):
        if r.kind == "meeting":
            assert r.cc == ()  # never copied to anyone
            found.setdefault(r.items[0], []).append(r.send_at.astimezone(zone))
    return {k: tuple(v) for k, v in found.items()}


def test_meeting_reminder_the_working_day_before(guides: tuple[Guide, ...],
                                                 make_lea: Callable[..., Lea]) -> None:  # fmt: skip
    lea = make_lea("sunrise-usd")
    days = meeting_days(lea, guides)
    assert len(days) == 18  # one per monthly occurrence, 2025-01 .. 2026-06, to the lead only
    # Wednesday March 12, 2025 (2nd Wednesday, 15:30): Tuesday March 11, 08:00 local (PDT).
    (march,) = days[f"{MEETING}/2025-03"]
    assert march.replace(tzinfo=None) == dt.datetime(2025, 3, 11, 8, 0)
    assert march.utcoffset() == dt.timedelta(hours=-7)
    # The third Tuesday: February 18, 2025 follows Presidents' Day (Monday the 17th):
    # Friday February 14; January 21 follows Martin Luther King Jr. Day: Friday January 17.
    third_tuesday = make_lea(
        "sunrise-usd", overrides={f"{MEETING}": {"rrule": "FREQ=MONTHLY;BYDAY=3TU"}}
    )
    days = meeting_days(third_tuesday, guides)
    assert days[f"{MEETING}/2025-02"][0].replace(tzinfo=None) == dt.datetime(2025, 2, 14, 8, 0)
    assert days[f"{MEETING}/2025-01"][0].replace(tzinfo=None) == dt.datetime(2025, 1, 17, 8, 0)
    # A Monday meeting: the first Monday, March 3, 2025 -> Friday February 28; December 1,
    # 2025 follows the Thanksgiving holidays (Thursday 27, Friday 28) -> Wednesday November 26.
    monday = make_lea("sunrise-usd", overrides={f"{MEETING}": {"rrule": "FREQ=MONTHLY;BYDAY=1MO"}})
    days = meeting_days(monday, guides)
    assert days[f"{MEETING}/2025-03"][0].date() == D(2025, 2, 28)
    assert days[f"{MEETING}/2025-12"][0].date() == D(2025, 11, 26)


def test_meeting_reminders_go_to_the_team_only(guides: tuple[Guide, ...],
                                               make_lea: Callable[..., Lea]) -> None:  # fmt: skip
    # Lakeside sends to its lead and superintendent and escalates to the FMTA consultant; a
    # meeting reminder goes to the two, copied to nobody (Riverbend's weekly digest too).
    for name, team in (("lakeside-usd", {"cito@lakeside.example.org", "rhale@lakeside.example.org"}),
                       ("riverbend-usd", {"amoreno@riverbend.example.org", "jwu@riverbend.example.org"})):  # fmt: skip
        t = expand(guides, make_lea(name), D(2024, 12, 1))
        meetings = [r for r in plan(t) if r.kind == "meeting"]
        assert meetings and {r.to for r in meetings} == team
        assert all(r.cc == () for r in meetings)
    # the headline says which day, the time and whose date it is
    t = expand(guides, make_lea("sunrise-usd"), D(2025, 3, 1))
    e = t.get(f"{MEETING}/2025-03")
    assert headline("meeting", e, e.due) == (
        "Meeting Wednesday: CIM team meeting: monitor implementation of the Plan for "
        "Improvement (March 12, 2025, 15:30\u201316:30, district's date)"
    )
