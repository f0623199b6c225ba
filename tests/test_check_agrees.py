"""Property: what `pacing check` accepts, every command that reads a profile runs.

Profiles are the example LEAs with changes that mostly pass validation and stress the dates
(overrides of windows, meetings and series; done marks with CDE's outcome; closures, board
rules, time zones, reminder settings), plus some of tests/fuzzing.py's mutations. For each one
`check` accepts, timeline, ics, checklist, agenda, remind --dry-run, caseload, ta-hours and
the feed page (in process) must end with exit 0 and no traceback; a few accepted profiles are
run again through real subprocesses. Whatever fails must have been said by `check`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fuzzing import EXAMPLES, mutate, to_toml
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from pacing.cli.main import cli

Choose = Callable[[int], int]
EXAMPLE_COUNT = 80  # about 30 s on a 2-core box
TODAY = "2024-05-01"
ZONES = ["America/Los_Angeles", "Pacific/Kiritimati", "Etc/GMT+12", "America/Sao_Paulo",
         "Europe/London", "Australia/Lord_Howe", "UTC"]  # fmt: skip
RULES = ["FREQ=MONTHLY;BYDAY=2WE", "FREQ=WEEKLY;BYDAY=MO", "FREQ=DAILY;COUNT=3",
         "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=10", "FREQ=MONTHLY;BYMONTHDAY=31",
         "FREQ=DAILY;UNTIL=19900105", "FREQ=MONTHLY;BYDAY=1SU;UNTIL=20250401",
         "freq=monthly;byday=1we"]  # fmt: skip
# meeting times around midnight and the DST changes (02:00-03:00 does not exist in spring)
TIMES = [dt.time(0, 0), dt.time(1, 30), dt.time(2, 0), dt.time(2, 30), dt.time(3, 0),
         dt.time(12, 0), dt.time(23, 59), dt.time(23, 59, 59)]  # fmt: skip
DST_DAYS = [dt.date(2025, 3, 9), dt.date(2025, 11, 2), dt.date(2024, 3, 10)]


@cache
def _ids(example: Path) -> tuple[tuple[str, ...], tuple[tuple[dt.date | None, dt.date], ...]]:
    """The example's timeline item ids (series and occurrences too) and their (start, due)."""
    from pacing.adapters.files import bundled_guides, load_lea
    from pacing.core.timeline import expand

    t = expand(bundled_guides(), load_lea(example, bundled_guides()), dt.date(2024, 5, 1))
    ids = [e.id for e in t.items] + sorted({e.series for e in t.items if e.series})
    spans = [(e.start, e.due) for e in t.items]
    return tuple(ids), tuple(spans)


def _day(choose: Choose, near: tuple[dt.date | None, dt.date]) -> dt.date:
    """A day near an item's dates (its edges, a day either side, weeks away) or at the edges
    of the accepted range."""
    start, due = near
    pool = [due, due + dt.timedelta(days=1), due - dt.timedelta(days=1), *DST_DAYS,
            due + dt.timedelta(days=40), dt.date(1990, 1, 1), dt.date(2100, 12, 31)]  # fmt: skip
    if start:
        pool += [start, start - dt.timedelta(days=1), start + dt.timedelta(days=1)]
    return pool[choose(len(pool))]


def _override(
    choose: Choose, ids: tuple[str, ...], spans: tuple[Any, ...]
) -> tuple[str, dict[str, Any]]:
    """An override of one item, series or occurrence: its start or due date alone (the ones
    that can cross the other), meeting times, or a mix of everything an override takes."""
    n = choose(len(ids))
    near = spans[n] if n < len(spans) else spans[choose(len(spans))]
    pattern = choose(4)
    if pattern < 2:
        return ids[n], {("start", "due")[pattern]: _day(choose, near)}
    if pattern == 2:
        return ids[n], {
            "start_time": TIMES[choose(len(TIMES))],
            "end_time": TIMES[choose(len(TIMES))],
        }
    over: dict[str, Any] = {}
    for key in ("start", "due", "duration_days", "times", "rrule", "dates"):
        if choose(2):
            continue
        if key in ("start", "due"):
            over[key] = _day(choose, near)
        elif key == "duration_days":
            over[key] = [1, 5, 60, 250][choose(4)]
        elif key == "times":
            over["start_time"], over["end_time"] = (
                TIMES[choose(len(TIMES))],
                TIMES[choose(len(TIMES))],
            )
        elif key == "rrule":
            over[key] = RULES[choose(len(RULES))]
        else:
            over[key] = [_day(choose, near) for _ in range(choose(4))]
    return ids[n], over


def _done(choose: Choose, ids: tuple[str, ...], spans: tuple[Any, ...]) -> tuple[str, Any]:
    """A done mark: a date, or CDE's outcome of a submission (its acceptance opens Step 4)."""
    submissions = [n for n, i in enumerate(ids[: len(spans)]) if i.endswith("submission")]
    n = submissions[choose(len(submissions))] if submissions and choose(2) else choose(len(spans))
    on = _day(choose, spans[n])
    if not choose(3):
        return ids[n], on
    outcome = ["accepted", "accepted-with-conditions", "returned"][choose(3)]
    return ids[n], {
        "on": on,
        "outcome": outcome,
        "outcome_on": _day(choose, spans[choose(len(spans))]),
    }


def _change(
    data: dict[str, Any], choose: Choose, ids: tuple[str, ...], spans: tuple[Any, ...]
) -> None:
    """One change that validation may well accept."""
    pick = choose(8)
    if pick <= 2:
        key, over = _override(choose, ids, spans)
        data.setdefault("overrides", {})[key] = over
    elif pick == 3:
        key, mark = _done(choose, ids, spans)
        data.setdefault("done", {})[key] = mark
    elif pick == 4:
        data["timezone"] = ZONES[choose(len(ZONES))]
    elif pick == 5:
        first = _day(choose, spans[choose(len(spans))])
        last = first + dt.timedelta(days=[0, 1, 30, 365][choose(4)])
        data.setdefault("calendar", {}).setdefault("closures", []).append(
            {"from": first, "to": last, "name": "Break", "kind": ["closure", "summer"][choose(2)]}
        )
    elif pick == 6:
        calendar = data.setdefault("calendar", {})
        calendar["board_meeting_rule"] = RULES[choose(len(RULES))]
        calendar["board_packet_lead_days"] = [0, 10, 60][choose(3)]
    else:
        reminders = data.setdefault("reminders", {})
        reminders["send_at"] = TIMES[choose(len(TIMES))]
        reminders["offsets_days"] = [[0], [365, 1], [30, 14, 7, 1, 0]][choose(3)]
        data.setdefault("monitoring", {})["cceis_services_start"] = _day(choose, spans[0])


def profile_text(choose: Choose) -> str:
    """A changed example profile (TOML text); one in eight is a fuzzing.py mutation."""
    if choose(8) == 0:
        return mutate(choose)
    example = EXAMPLES[choose(len(EXAMPLES))]
    data = tomllib.loads(example.read_text(encoding="utf-8"))
    ids, spans = _ids(example)
    for _ in range(1 + choose(3)):
        _change(data, choose, ids, spans)
    return to_toml(data)


# ---------------------------------------------------------------- running the commands


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliRunner]:
    state = tmp_path_factory.mktemp("state")
    env = {"PACING_STATE_DIR": str(state), "NO_COLOR": "1", "COLUMNS": "100",
           "PACING_NOW": "2024-05-01T15:00:00Z", "SOURCE_DATE_EPOCH": "1714575600"}  # fmt: skip
    yield CliRunner(env=env)


def commands(path: Path) -> list[list[str]]:
    """Every command that reads the profile (each format where formats differ in code)."""
    folder, out = str(path.parent), str(path.parent / "out")
    return [
        ["timeline", str(path), "--today", TODAY, "--format", "json"],
        ["timeline", str(path), "--today", "2025-06-01", "--format", "table"],
        ["timeline", str(path), "--format", "md"],
        ["timeline", str(path), "--format", "csv", "--upcoming", "30"],
        ["ics", str(path), "-o", out + ".ics"],
        ["ics", folder, "--todo", "-o", out + "-all.ics"],
        ["checklist", str(path), "--format", "html", "-o", out + ".html"],
        ["checklist", str(path), "--format", "md", "--today", "2025-01-15", "-o", out + ".md"],
        ["checklist", str(path), "--format", "csv", "-o", out + ".csv"],
        ["agenda", str(path), "--today", TODAY, "--format", "json"],
        ["agenda", folder, "--days", "60"],
        ["remind", str(path), "--dry-run", "--from", TODAY, "--until", "2024-08-01"],
        ["caseload", folder, "--today", TODAY, "--format", "json"],
        ["ta-hours", str(path)],
        ["status", str(path)],
    ]


def said(result: Result) -> str:
    crashed = result.exception if not isinstance(result.exception, SystemExit) else None
    if crashed is not None:
        import traceback

        return "".join(traceback.format_exception(crashed))[-3000:]
    if "Traceback" in result.stderr:
        return result.stderr[-3000:]
    if result.exit_code != 0:
        return f"exit {result.exit_code}: {result.stderr[-2000:]}"
    return ""


def assert_showable(doc: dict[str, Any], text: str) -> None:
    """Every item can be drawn: its start is not after its due date, its meeting ends after
    it begins (the calendar writer only has a backstop for these)."""
    for item in doc["items"]:
        assert item["start"] is None or item["start"] <= item["due"], f"{item}\n{text[:3000]}"
        if item["start_time"] and item["end_time"]:
            assert item["start_time"] < item["end_time"], f"{item}\n{text[:3000]}"


def page(path: Path) -> None:
    """The feed page `pacing serve` renders for the LEA (no CLI command shows it)."""
    from pacing.adapters.files import load_lea
    from pacing.adapters.guidepath import guides_for
    from pacing.core.timeline import expand
    from pacing.export.page import render_feed_page

    guides = guides_for([path])
    t = expand(guides, load_lea(path, guides), dt.date(2024, 5, 1))
    assert "<html" in render_feed_page(t, "https://x.example/f.ics", "webcal://x.example/f.ics")


@settings(
    max_examples=EXAMPLE_COUNT,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
    phases=[Phase.generate, Phase.shrink],
)
@given(data=st.data())
def test_what_check_accepts_every_command_runs(
    runner: CliRunner, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    text = profile_text(lambda n: data.draw(st.integers(0, n - 1)) if n > 1 else 0)
    path = tmp_path_factory.mktemp("agree") / "profile.toml"
    path.write_text(text, encoding="utf-8")
    checked = runner.invoke(cli, ["check", str(path)])
    assert "Traceback" not in checked.stderr and checked.exit_code in (0, 1), said(checked)
    event(f"check exit {checked.exit_code}")
    if checked.exit_code != 0:
        return
    for args in commands(path):
        result = runner.invoke(cli, args)
        assert not said(result), f"pacing {' '.join(args)}: {said(result)}\n{text[:3000]}"
        if args[0] == "timeline" and "json" in args:
            assert_showable(json.loads(result.stdout), text)
    page(path)
    _accepted.append(text)


_accepted: list[str] = []  # profiles check accepted, for the subprocess run below


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "from pacing.cli.main import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, **env}, check=False, timeout=120)  # fmt: skip


def test_accepted_profiles_run_as_processes(runner: CliRunner, tmp_path: Path) -> None:
    """Some accepted profiles (of the property test above, else the examples), through real
    `pacing` processes: ics and timeline, exit 0 and nothing on stderr but warnings."""
    texts = _accepted[-4:] or [p.read_text(encoding="utf-8") for p in EXAMPLES]
    env = {k: v for k, v in runner.env.items() if v is not None}
    for n, text in enumerate(texts):
        path = tmp_path / f"p{n}" / "profile.toml"
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
        for args in (["ics", str(path)], ["timeline", str(path), "--format", "json"]):
            result = run(*args, env=env)
            assert result.returncode == 0, f"pacing {' '.join(args)}: {result.stderr}\n{text}"
            assert "Traceback" not in result.stderr, result.stderr


# ---------------------------------------------------------------- the cases found, by name

RIVERBEND = EXAMPLES[0].parent / "riverbend-usd.toml"  # Sig Dis 2024
WINDOW = "sig-dis-2024/step-1/case-study"  # May 1 - June 30, 2024
CROSSED = [
    (f'[overrides."{WINDOW}"]\nstart = 2024-08-01\n', f'overrides."{WINDOW}".start',
     "August 1, 2024 is after the item's due date, June 30, 2024"),
    (f'[overrides."{WINDOW}"]\ndue = 2024-04-20\n', f'overrides."{WINDOW}".due',
     "April 20, 2024 is before the item's start, May 1, 2024"),
    ('[overrides."sig-dis-2024/step-4/quarterly-report/2025-03"]\nstart = 2025-04-20\n',
     'overrides."sig-dis-2024/step-4/quarterly-report/2025-03".start',
     "April 20, 2025 is after the item's due date, April 10, 2025"),
    ('[done."sig-dis-2024/step-3/step-3-submission"]\non = 2024-12-05\noutcome = "accepted"\n'
     "outcome_on = 2026-10-15\n", 'done."sig-dis-2024/step-3/step-3-submission".outcome_on',
     "CDE's acceptance on October 15, 2026 would open"),
]  # fmt: skip


@pytest.mark.parametrize("added, field, words", CROSSED, ids=[c[1] for c in CROSSED])
def test_check_refuses_a_start_after_the_due_date(
    runner: CliRunner, tmp_path: Path, added: str, field: str, words: str
) -> None:
    """Each is one line naming file, line and field, from check and from every command."""
    text = RIVERBEND.read_text(encoding="utf-8") + "\n" + added
    path = tmp_path / "riverbend-usd.toml"
    path.write_text(text, encoding="utf-8")
    key = field.rsplit(".", 1)[1]
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.startswith(f"{key} ="))
    for args in (["check", str(path)], ["ics", str(path)], ["timeline", str(path)]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1 and not said(result).startswith("Traceback"), said(result)
        assert result.stderr.startswith(f"pacing: {path}:{line}: {field}: {words}"), result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr


def test_done_refuses_an_acceptance_after_the_window_it_opens(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "riverbend-usd.toml"
    path.write_text(RIVERBEND.read_text(encoding="utf-8"), encoding="utf-8")
    late = runner.invoke(cli, ["done", str(path), "step-3-submission", "--outcome", "accepted",
                               "--outcome-on", "2026-10-15"])  # fmt: skip
    assert late.exit_code == 1, late.output
    assert late.stderr.startswith(f"pacing: {path}: --outcome-on: CDE's acceptance on October "
                                  "15, 2026 would open"), late.stderr  # fmt: skip
    shown = runner.invoke(cli, ["timeline", str(path), "--format", "json"])
    submission = [
        i for i in json.loads(shown.stdout)["items"] if i["id"].endswith("step-3-submission")
    ]
    assert submission[0]["status"] != "done"  # nothing stored
    fine = runner.invoke(cli, ["done", str(path), "step-3-submission", "--outcome", "accepted",
                               "--outcome-on", "2025-01-15"])  # fmt: skip
    assert fine.exit_code == 0, fine.output
    assert not runner.invoke(cli, ["undo", str(path), "step-3-submission"]).exit_code


def test_the_calendar_writer_never_crashes_on_dates_it_cannot_show() -> None:
    """A backstop behind validation: an end not after its start, or a due date with no day
    after it, is written as one all-day event on the due date."""
    import dataclasses

    from icalendar import Calendar

    from pacing.adapters.files import bundled_guides, load_lea
    from pacing.core.timeline import expand
    from pacing.export.ics import feed_events, revise, to_ics

    t = expand(bundled_guides(), load_lea(RIVERBEND, bundled_guides()), dt.date(2024, 5, 1))
    broken = []
    for n, e in enumerate(e for e in t.items if e.status != "not-applicable"):
        if n % 3 == 0:
            e = e.evolve(start=e.due + dt.timedelta(days=9))
        elif n % 3 == 1:
            e = e.evolve(start_time=dt.time(15), end_time=dt.time(15), series=None)
        else:
            e = e.evolve(due=dt.date.max, latest_start=None)
        broken.append(e)
    t = dataclasses.replace(t, items=tuple(broken))
    events = feed_events(t)
    now = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    body = to_ics("x", "x", events, revise({}, events, now), todo=True)
    for vevent in Calendar.from_ical(body).walk("VEVENT"):
        assert vevent.end > vevent.start
