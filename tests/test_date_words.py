"""Every output says what a date is, in words a superintendent reads: CDE's deadline, pacing's
plan (an estimate, never a deadline), an assumed date; and which program an item belongs to.

Hand-written expectations (no goldens): the words are pinned here; the planned dates themselves
come from the model (the planner owns them), CDE's dates are pinned.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import re
from pathlib import Path

import icalendar
import pytest
from rich.console import Console

from pacing.adapters.files import bundled_guides, load_lea
from pacing.core.entry import DoneMark
from pacing.core.timeline import Entry, Timeline, expand
from pacing.export import timeline as export
from pacing.export.checklist import CSV_COLUMNS, render_checklist, render_feed_page
from pacing.export.gantt import gantt_svg
from pacing.export.ics import feed_events, revise, to_ics
from pacing.reminders.bundle import compose
from pacing.reminders.ledger import Row

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SEPT_1 = dt.date(2024, 9, 1)
OCT_20 = dt.date(2024, 10, 20)
BOX_16 = "targeted-l3-2024/step-2/box-16-prioritized-problem-areas"
STEP_2 = "targeted-l3-2024/step-2/step-2-submission"
STEP_1 = "targeted-l3-2024/step-1/step-1-submission"
TARGETED = "Targeted Level 3 (2024 cohort)"
IMPLEMENTATION = "Implementation and Monitoring (2024 cohort)"
SIG_DIS = "CIM for Sig Dis (2024)"
CONSOLIDATION = "sig-dis-2024/step-1/step-1-consolidation"  # Riverbend: planned work
RIVER_STEP_2 = "sig-dis-2024/step-2/step-2-submission"  # Riverbend: CDE's October 10 deadline
PROGRESS = "implementation-2024/step-4/progress-report/2025-06"  # assumed: the 10th
NOT_A_DEADLINE = "it is not a CDE deadline"
STAMP = dt.datetime(2024, 9, 1, 15, tzinfo=dt.UTC)


def timeline(name: str, today: dt.date, done: dict[str, DoneMark] | None = None) -> Timeline:
    return expand(bundled_guides(), load_lea(EXAMPLES / f"{name}.toml"), today, done)


@pytest.fixture(scope="module")
def sunrise() -> Timeline:
    return timeline("sunrise-usd", SEPT_1)


@pytest.fixture(scope="module")
def riverbend() -> Timeline:
    return timeline("riverbend-usd", OCT_20)


def short(day: dt.date) -> str:
    return f"{day:%b} {day.day}, {day.year}"


def no_cde_deadline(text: str) -> bool:
    """Says nowhere that it is a CDE deadline ("not a CDE deadline" is allowed)."""
    return "CDE deadline" not in text.replace("not a CDE deadline", "")


def test_the_model_this_file_relies_on(sunrise: Timeline, riverbend: Timeline) -> None:
    box = sunrise.get(BOX_16)
    assert (box.date_source, box.program, box.date_label) == (
        "planned",
        TARGETED,
        "Plan: finish by",
    )
    step2 = sunrise.get(STEP_2)
    assert (step2.date_source, step2.due, step2.date_label) == (
        "cde", dt.date(2024, 10, 10), "CDE deadline"
    )  # fmt: skip
    assert riverbend.get(CONSOLIDATION).status == "behind-plan"
    assert riverbend.get(RIVER_STEP_2).status == "overdue"
    assert sunrise.get(PROGRESS).date_source == "assumed"


# ---------------------------------------------------------------- timeline: table, md, csv, json


def table_text(t: Timeline, width: int = 100) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), highlight=False, markup=False)
    export.print_table(console, t, list(t.items))
    return console.export_text()


def test_table_says_plan_or_cde_deadline(sunrise: Timeline) -> None:
    lines = table_text(sunrise).splitlines()
    assert max(len(line) for line in lines) <= 100
    box = sunrise.get(BOX_16)
    at = next(i for i, line in enumerate(lines) if "Prioritized Problem Areas" in line)
    assert lines[at].startswith("Plan: finish by ")
    assert lines[at + 1].startswith(f"{box.due:%Y-%m-%d} ")  # the Due column wraps the date
    assert "CDE deadline" not in lines[at] + lines[at + 1]
    assert " Done " in lines[at]  # status words (STATUS_NAMES), not "done"
    at = next(i for i, x in enumerate(lines) if " Submit Step 2 (Investigate)" in x[:60])
    assert lines[at].startswith("CDE deadline ") and lines[at + 1].startswith("2024-10-10")
    # the program as a heading (it may wrap), the assumptions in a footer
    flat = " ".join(" ".join(lines).split())
    assert f"Program: {TARGETED}" in flat and f"Program: {IMPLEMENTATION}" in flat
    footer = "\n".join(lines[next(i for i, x in enumerate(lines) if x == "Assumptions:") :])
    for assumption in sunrise.assumptions:
        assert " ".join(assumption.split()[:6]) in " ".join(footer.split())
    assert (  # the kinds of dates in the footer, in SOURCE_NAMES' words
        "Date types: CDE's date; Assumed date (the guide gives none; confirm locally); "
        "Plan (pacing's estimate, not a CDE deadline); District's own date." in flat
    )


def test_table_warnings_are_under_the_item(riverbend: Timeline) -> None:
    text = " ".join(table_text(riverbend).split())
    approvals = riverbend.get("sig-dis-2024/step-3/approvals")
    assert approvals.warnings
    assert f"⚠ {approvals.warnings[0]}"[:60] in text
    assert "Behind plan" in text and "Past" in text and "Overdue" in text


def test_markdown_rows(sunrise: Timeline) -> None:
    md = export.to_md(sunrise, list(sunrise.items))
    box = sunrise.get(BOX_16)
    row = next(line for line in md.splitlines() if "| Prioritized Problem Areas |" in line)
    assert row.startswith(f"| Plan: finish by {box.due:%Y-%m-%d} | 2 |")
    assert no_cde_deadline(row) and f"| Done {box.done_on:%Y-%m-%d}; Closed by " in row
    row = next(
        line for line in md.splitlines() if "| Submit Step 2 (Investigate) in Stepwell |" in line
    )
    assert row.startswith("| CDE deadline 2024-10-10 | 2 |")
    assert f"\n## {TARGETED}\n" in md and f"\n## {IMPLEMENTATION}\n" in md
    assert "\n## Assumptions\n" in md
    assert all(f"- {a}" in md for a in sunrise.assumptions)
    progress = next(line for line in md.splitlines() if "2025-07-10" in line and "Progress" in line)
    assert progress.startswith("| Due (assumed date) 2025-07-10 |")


def test_markdown_warnings_list(riverbend: Timeline) -> None:
    md = export.to_md(riverbend, list(riverbend.items))
    finalize = riverbend.get("sig-dis-2024/step-3/finalize-plan")
    assert finalize.warnings
    assert f"- {finalize.title} (CDE window 2024-10-01 → 2024-10-31): {finalize.warnings[0]}" in md
    assert "\nWarnings:\n" in md


def test_timeline_csv_columns(sunrise: Timeline) -> None:
    rows = list(csv.DictReader(io.StringIO(export.to_csv(list(sunrise.items)))))
    assert list(rows[0])[:16] == [
        "id", "step", "title", "kind", "start", "due", "start_time", "end_time", "latest_start",
        "latest_finish", "slack_days", "status", "requirement", "na_reason", "submit_to", "rule",
    ]  # fmt: skip
    assert list(rows[0])[16:] == ["date_source", "program", "warnings"]
    by_id = {r["id"]: r for r in rows}
    assert (by_id[BOX_16]["date_source"], by_id[BOX_16]["program"]) == ("planned", TARGETED)
    assert by_id[STEP_2]["date_source"] == "cde"
    river = timeline("riverbend-usd", OCT_20)  # Sunrise is done: no plan warnings left
    warned = next(e for e in river.items if len(e.warnings) >= 1)
    rows = list(csv.DictReader(io.StringIO(export.to_csv(list(river.items)))))
    assert {r["id"]: r for r in rows}[warned.id]["warnings"] == "; ".join(warned.warnings)


def test_json_has_the_new_keys() -> None:
    accepted = DoneMark(dt.date(2024, 7, 9), "Submitted by Luis", "accepted-with-conditions",
                        dt.date(2024, 8, 1))  # fmt: skip
    t = timeline("sunrise-usd", SEPT_1, {STEP_1: accepted})
    doc = json.loads(export.to_json(t, list(t.items)))
    items = {i["id"]: i for i in doc["items"]}
    step1 = items[STEP_1]
    assert step1["date_source"] == "cde" and step1["program"] == TARGETED
    assert step1["done_on"] == "2024-07-09" and step1["done_note"] == "Submitted by Luis"
    assert (step1["outcome"], step1["outcome_on"]) == ("accepted-with-conditions", "2024-08-01")
    box = items[BOX_16]
    assert box["date_source"] == "planned" and box["warnings"] == []
    assert box["earliest_start"] == t.get(BOX_16).earliest_start.isoformat()  # type: ignore[union-attr]
    assert box["assumption"] is None and box["outcome"] is None and box["outcome_on"] is None
    progress = items[PROGRESS]
    assert progress["date_source"] == "assumed" and progress["program"] == IMPLEMENTATION
    assert "10th day" in progress["assumption"]
    river = timeline("riverbend-usd", OCT_20)
    warned = next(e for e in river.items if e.warnings)
    river_items = {i["id"]: i for i in json.loads(export.to_json(river, list(river.items)))["items"]}
    assert river_items[warned.id]["warnings"] == list(warned.warnings)
    assert doc["assumptions"] == list(t.assumptions)
    # the contract's old keys are all still there
    for key in ("id", "guide", "step", "title", "kind", "start", "due", "start_time", "end_time",
                "latest_start", "latest_finish", "slack_days", "depends_on", "status",
                "requirement", "na_reason", "submit_to", "resources", "rule", "series",
                "occurrence", "duration_days", "done_on", "notes"):  # fmt: skip
        assert key in box


# ---------------------------------------------------------------- checklist and feed page


def html_row(page: str, item_id: str) -> str:
    found = re.search(rf'<tr [^>]*data-id="{re.escape(item_id)}">(.*?)</tr>', page, re.S)
    assert found, item_id
    return found.group(1)


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def cell(row: str, name: str) -> str:
    found = re.search(rf'<td class="{name}[^"]*">(.*?)</td>', row, re.S)
    assert found, name
    return text_of(found.group(1))


def test_checklist_html_target_dates(sunrise: Timeline) -> None:
    page = render_checklist(sunrise, "html")
    box = sunrise.get(BOX_16)
    row = html_row(page, BOX_16)
    assert cell(row, "c-date") == f"Plan: finish by {short(box.due)}"
    assert no_cde_deadline(row)
    assert cell(html_row(page, STEP_2), "c-date") == "CDE deadline: Oct 10, 2024"
    assert 'class="c-date source-planned"' in row
    # the box checklist too
    article = re.search(r'<article class="box[^"]*" id="box-16">(.*?)</article>', page, re.S)
    assert article and f"Plan: finish by {short(box.due)}" in text_of(article.group(1))
    assert no_cde_deadline(article.group(1))
    # programs, the date types, counts with status words
    assert f"<dt>Programs</dt><dd>{TARGETED}; {IMPLEMENTATION}</dd>" in page
    assert "Plan (pacing&#39;s estimate, not a CDE deadline)" in page
    assert "behind plan</span>" in page


def test_checklist_shows_program_warnings_assumption_done_note_and_outcome() -> None:
    accepted = DoneMark(dt.date(2024, 7, 9), "Submitted by Luis", "accepted-with-conditions",
                        dt.date(2024, 8, 1))  # fmt: skip
    t = timeline("sunrise-usd", SEPT_1, {STEP_1: accepted})
    page = render_checklist(t, "html")
    done = cell(html_row(page, STEP_1), "c-done")
    assert done == "☑ Jul 9, 2024 Accepted by CDE with conditions (Aug 1, 2024) Submitted by Luis"
    assert f'<span class="program">· {TARGETED}</span>' in page  # the step's caption
    date = cell(html_row(page, PROGRESS), "c-date")
    assert date.startswith("Due (assumed date): Jul 10, 2025")
    assert "Assumption: " + t.get(PROGRESS).assumption[:40] in date  # type: ignore[index]
    river = timeline("riverbend-usd", OCT_20)
    warned = next(e for e in river.items if e.warnings and e.status != "not-applicable")
    river_page = render_checklist(river, "html")
    assert f"⚠ {warned.warnings[0]}" in html.unescape(text_of(html_row(river_page, warned.id)))
    md = render_checklist(t, "md")
    row = next(line for line in md.splitlines() if line.startswith("| Submit Step 1 "))
    assert "☑ Jul 9, 2024; Accepted by CDE with conditions (Aug 1, 2024); Submitted by Luis" in row
    assert f"\nProgram: {TARGETED}\n" in md
    assert "- 52 items: " in md or re.search(r"- \d+ items: \d+ overdue, \d+ behind plan, ", md)


def test_checklist_md_target_dates(sunrise: Timeline) -> None:
    md = render_checklist(sunrise, "md")
    box = sunrise.get(BOX_16)
    row = next(line for line in md.splitlines() if line.startswith("| Box 16: "))
    assert f"| Plan: finish by {short(box.due)} |" in row and no_cde_deadline(row)
    row = next(line for line in md.splitlines() if line.startswith("| Submit Step 2 "))
    assert "| CDE deadline: Oct 10, 2024 |" in row
    section = md.split("### Box 16: ")[1].split("### Box 17: ")[0]
    assert f"Step 2 · Plan: finish by {short(box.due)}" in section


def test_checklist_csv_date_type(sunrise: Timeline) -> None:
    text = render_checklist(sunrise, "csv").removeprefix("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == CSV_COLUMNS and rows[0][:4] == ["Step", "Activity", "Date", "Start"]
    col = {name: i for i, name in enumerate(rows[0])}
    by_id = {r[-1]: r for r in rows[1:]}
    box = by_id[BOX_16]
    assert box[col["Date"]] == sunrise.get(BOX_16).due.isoformat()  # still parseable
    assert box[col["Date label"]] == "Plan: finish by"
    assert box[col["Date type"]] == "Plan (pacing's estimate, not a CDE deadline)"
    assert box[col["Program"]] == TARGETED
    assert no_cde_deadline(",".join(box))
    step2 = by_id[STEP_2]
    assert step2[col["Date"]] == "2024-10-10"
    assert (step2[col["Date label"]], step2[col["Date type"]]) == ("CDE deadline", "CDE's date")
    assert by_id[PROGRESS][col["Assumption"]] == sunrise.get(PROGRESS).assumption
    window = next(r for r in rows[1:] if r[-1] == "implementation-2024/step-4/step-4-ta")
    assert (window[col["Start"]], window[col["Date"]]) == ("2025-01-01", "2026-06-30")


def test_feed_page_target_dates(sunrise: Timeline) -> None:
    page = render_feed_page(sunrise, "https://x.example/f.ics", "webcal://x.example/f.ics")
    box = sunrise.get(BOX_16)
    assert cell(html_row(page, BOX_16), "c-date") == f"Plan: finish by {short(box.due)}"
    assert cell(html_row(page, STEP_2), "c-date") == "CDE deadline: Oct 10, 2024"


def test_checklist_status_words_for_new_statuses(riverbend: Timeline) -> None:
    page = render_checklist(riverbend, "html")
    row = html_row(page, CONSOLIDATION)
    assert '<span class="badge behind-plan">Behind plan</span>' in row
    assert cell(row, "c-date").startswith("Plan: finish by ")
    past = html_row(page, "sig-dis-2024/step-0/virtual-meeting")
    assert cell(past, "c-done") == "\u2013 Past"
    assert cell(past, "c-date") == "CDE meeting: Apr 2, 2024, 12:00\u201313:30"
    # another program inside a step is named on its row
    mou = html_row(page, "ta-menu-2024/step-0/facilitator-mou")
    assert '<span class="program">Sig Dis TA Menu of Services (2024)</span>' in mou


# ---------------------------------------------------------------- chart


def test_gantt_marks_plans(riverbend: Timeline, sunrise: Timeline) -> None:
    svg = gantt_svg(riverbend)
    plan = re.search(rf'<(rect|polygon) class="([^"]*)" data-id="{CONSOLIDATION}"([^>]*)>'
                     r"<title>([^<]*)</title>", svg)  # fmt: skip
    assert plan
    assert "planned" in plan.group(2).split() and "status-behind-plan" in plan.group(2)
    assert 'stroke-dasharray="3 2"' in plan.group(3)
    assert "Plan: finish by " in plan.group(4) and "Behind plan" in plan.group(4)
    cde = re.search(rf'<polygon class="([^"]*)" data-id="{RIVER_STEP_2}"([^>]*)><title>([^<]*)<',
                    svg)  # fmt: skip
    assert cde and "planned" not in cde.group(1) and "stroke-dasharray" not in cde.group(2)
    assert "CDE deadline: Oct 10, 2024" in cde.group(3) and SIG_DIS in cde.group(3)
    legend = svg[svg.index('<g class="legend"') :]
    assert "Plan (pacing&#x27;s estimate, not a CDE deadline)" in legend
    assert 'class="legend-plan"' in legend and "Behind plan" in legend and "Past" in legend
    assert 'fill="#6d4c41"' in legend and 'fill="#616161"' in legend  # >= 4.5:1 on white
    done_plan = re.search(rf'class="([^"]*)" data-id="{BOX_16}"', gantt_svg(sunrise))
    assert done_plan and "planned" in done_plan.group(1)


# ---------------------------------------------------------------- calendar feed


def calendar(t: Timeline) -> dict[str, icalendar.Event]:
    events = feed_events(t)
    body = to_ics("CIM", "x", events, revise({}, events, STAMP))
    return {str(e["UID"]): e for e in icalendar.Calendar.from_ical(body).walk("VEVENT")}


def test_ics_plan_and_cde_deadline(riverbend: Timeline, sunrise: Timeline) -> None:
    events = calendar(riverbend)
    plan = events[f"{CONSOLIDATION}@riverbend-usd.pacing"]  # the UID is unchanged
    assert str(plan["SUMMARY"]) == "Plan: finish Consolidate Step 1 findings"
    assert [str(c) for c in plan.categories] == ["Step 1: Gather and Inquire", "Plan"]
    text = str(plan["DESCRIPTION"])
    assert NOT_A_DEADLINE in text and f"Program: {SIG_DIS}" in text
    assert "Status as of" not in text  # no day-dependent text: the bytes change with events only
    start = events[f"{CONSOLIDATION}#start-by@riverbend-usd.pacing"]
    assert str(start["SUMMARY"]) == "Plan: start Consolidate Step 1 findings"
    assert "Plan" in [str(c) for c in start.categories]
    cde = events[f"{RIVER_STEP_2}@riverbend-usd.pacing"]
    assert str(cde["SUMMARY"]).startswith("CDE deadline: Enter all Step 2 information")
    assert "CDE date" in [str(c) for c in cde.categories]
    assert "CDE deadline: October 10, 2024\nThis is CDE's deadline." in str(cde["DESCRIPTION"])
    approvals = events["sig-dis-2024/step-3/approvals@riverbend-usd.pacing"]
    assert str(approvals["SUMMARY"]).startswith("CDE window: Obtain Required Approvals")
    assert "Warning: No board meeting in time" in str(approvals["DESCRIPTION"])
    # Sunrise: a done plan still reads as a plan; an assumed date says so, with its assumption
    events = calendar(sunrise)
    done = events[f"{BOX_16}@sunrise-usd.pacing"]
    assert str(done["SUMMARY"]) == "Done: Prioritized Problem Areas (plan)"
    assert [str(c) for c in done.categories] == ["Step 2: Investigate", "Plan", "Done"]
    progress = events[f"{PROGRESS}@sunrise-usd.pacing"]
    assert str(progress["SUMMARY"]).startswith("Due (assumed date): Submit the Progress Report")
    assert "Assumed date" in [str(c) for c in progress.categories]
    assert "Assumption: Precise dates are in the Progress Report Template" in str(
        progress["DESCRIPTION"]
    )
    meetings = events["implementation-2024/step-4/cim-team-meeting@sunrise-usd.pacing"]
    assert str(meetings["SUMMARY"]).startswith("CIM team meeting")  # the district's own rule


# ---------------------------------------------------------------- reminder emails


def row(kind: str, e: Entry, lea: str, cc: tuple[str, ...] = ()) -> Row:
    return Row(f"{lea}|{e.id}|{kind}|a@x.example", lea, kind, (e.id,), e.due, "a@x.example", cc,
               dt.datetime(2024, 10, 21, 15, tzinfo=dt.UTC), "pending", 0, None)  # fmt: skip


def email(r: Row, t: Timeline) -> tuple[str, str, str, str | None]:
    message = compose(r, t, "cim@pacing.test", None, dt.datetime(2024, 10, 21, tzinfo=dt.UTC))
    parts = [p.get_payload(decode=True).decode() for p in message.walk() if not p.is_multipart()]
    return " ".join(str(message["Subject"]).split()), parts[0], parts[1], message["Cc"]


def test_email_for_a_planned_item_is_not_a_deadline(riverbend: Timeline) -> None:
    e = riverbend.get(CONSOLIDATION)
    when = f"{e.due:%B} {e.due.day}, {e.due.year}"
    short = f"{e.due:%b} {e.due.day}"  # the subject: action and date first, LEA last
    for kind, subject in [
        ("due", f"Plan: finish by {short}: Consolidate Step 1 findings"),
        ("start-by", f"Start now (plan: finish by {short}): Consolidate Step 1 findings"),
    ]:
        got, text, html, cc = email(row(kind, e, "riverbend-usd"), riverbend)
        assert got == f"{subject} - Riverbend USD"
        assert "due" not in got.lower()  # neither "due" nor "Overdue"
        for body in (text, html):
            assert "This date is pacing&#39;s plan" in body or "This date is pacing's plan" in body
            assert NOT_A_DEADLINE in body and f"Program: {SIG_DIS}" in body
            assert no_cde_deadline(body)
            assert f"Plan: finish by {when}" in body
        assert cc is None


def test_behind_plan_email(riverbend: Timeline) -> None:
    e = riverbend.get(CONSOLIDATION)
    when = f"{e.due:%B} {e.due.day}, {e.due.year}"
    got, text, html, cc = email(row("behind-plan", e, "riverbend-usd", ("selpa@x.example",)),
                                riverbend)  # fmt: skip
    short = f"{e.due:%b} {e.due.day}"
    assert got == f"Behind plan (planned to finish {short}): Consolidate Step 1... - Riverbend USD"
    assert len(got) <= 78
    assert f"Behind plan: Consolidate Step 1 findings (planned to finish {when})" in text
    assert cc is None  # never copied outside the team, whatever the row says
    assert "This is not a missed CDE deadline" in text and "Status: Behind plan" in text
    assert "not a missed CDE deadline" in html


def test_overdue_email_on_cde_and_assumed_dates(riverbend: Timeline, sunrise: Timeline) -> None:
    e = riverbend.get(RIVER_STEP_2)
    got, text, _, cc = email(row("overdue", e, "riverbend-usd", ("selpa@x.example",)), riverbend)
    assert got == "Overdue since Oct 10 (CDE): Enter all Step 2 information... - Riverbend USD"
    assert len(got) <= 78
    assert (
        "Overdue: Enter all Step 2 information into Stepwell, including Additional Relevant "
        "Data, and click Submit (CDE deadline was October 10, 2024)"
    ) in text
    assert cc == "selpa@x.example"  # escalation stays the core's call, overdue only
    assert "CDE deadline: October 10, 2024\n  This is CDE's deadline." in text
    progress = sunrise.get(PROGRESS)
    got, text, _, _ = email(row("due", progress, "sunrise-usd"), sunrise)
    assert got.startswith("Due Jul 10, 2025 (assumed date): Submit the Progress Report")
    assert "This deadline is pacing's assumption" in text
    assert f"Assumption: {progress.assumption}" in text
    got, *_ = email(row("overdue", progress, "sunrise-usd"), sunrise)
    assert got.startswith("Overdue since Jul 10, 2025 (assumed date): ")
    window = riverbend.get("sig-dis-2024/step-3/finalize-plan")
    got, text, _, _ = email(row("due", window, "riverbend-usd"), riverbend)
    assert got.startswith("Window ends Oct 31 (CDE): ")
    assert f"Warning: {window.warnings[0]}" in text
