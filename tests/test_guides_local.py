"""Guides beyond 2024 (issue 12): local guide folders, authoring the next cohort's guide,
rolling forward without inventing dates, and reviewing a new release."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pacing.adapters.files import data_dir, load_guide
from pacing.adapters.state import State
from pacing.cli.main import cli
from pacing.core.authoring import diff_guides, fill_placeholders, new_guide, toml_text
from pacing.core.guide import Guide

ROOT = Path(__file__).resolve().parent.parent
SUBMIT_1 = "targeted-l3-2025/step-1/step-1-submission"
NOTE = "shifted from the 2024 guide; confirm against CDE's 2025 guide"
NO_GUIDE = "no pacing guide for the Targeted Level 3 2025 cohort: add CDE's guide, see README"


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PACING_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("PACING_GUIDES", raising=False)
    monkeypatch.delenv("PACING_DB", raising=False)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1746000000")
    return tmp_path / "state"


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def errors(result: Result) -> list[str]:
    lines = result.stderr.splitlines()
    assert all(line.startswith(("pacing: ", "Usage:", "Try ", "Error:")) for line in lines), lines
    assert "Traceback" not in result.output
    return lines


@pytest.fixture
def leas(tmp_path: Path) -> Path:
    """A folder with one Targeted Level 3 LEA of the 2025 cohort (no Sig Dis), no guides yet."""
    text = (ROOT / "examples" / "sunrise-usd.toml").read_text()
    text = text.split("[done]")[0].split('[overrides."implementation-2024')[0]
    text = text.replace("cohort = 2024", "cohort = 2025").replace('"sunrise-usd"', '"dawn-usd"')
    folder = tmp_path / "leas"
    folder.mkdir()
    (folder / "dawn-usd.toml").write_text(text)
    return folder


def shifted_guide(leas: Path) -> Path:
    target = leas / "guides" / "targeted-l3-2025.toml"
    target.parent.mkdir(exist_ok=True)
    result = invoke("guide", "new", "--like", "targeted-l3-2024", "--cohort", "2025",
                    "--shift-years", "1", "-o", target)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 dates shifted by 1 year(s)" in result.stdout
    return target


def timeline(profile: Path, today: str = "2025-05-01") -> dict[str, Any]:
    result = invoke("timeline", profile, "--today", today, "--format", "json")
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def item(doc: dict[str, Any], item_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(i for i in doc["items"] if i["id"] == item_id)
    return found


# ---------------------------------------------------------------- applicability you can see


def test_a_cohort_without_a_guide_is_said_never_an_empty_plan(leas: Path) -> None:
    profile = leas / "dawn-usd.toml"
    check = invoke("check", leas)
    assert check.exit_code == 0
    assert f"pacing: warning: {profile}: {NO_GUIDE}" in errors(check)
    assert f"ok {profile}" in check.stdout
    doc = timeline(profile)
    assert doc["items"] == []
    assert NO_GUIDE in doc["warnings"] and NO_GUIDE in doc["note"]
    assert any("Implementation and Monitoring 2025 cohort" in w for w in doc["warnings"])
    table = invoke("timeline", profile, "--today", "2025-05-01")
    assert table.exit_code == 0 and NO_GUIDE in table.stdout
    # a Sig Dis LEA of 2025: its program says so too
    sig = leas / "sig.toml"
    sig.write_text(profile.read_text().replace('sig_dis = "no"', 'sig_dis = "new"')
                   .replace('"dawn-usd"', '"sig-usd"').replace("19647330000000", "19647330000001"))  # fmt: skip
    warnings = timeline(sig)["warnings"]
    assert "no pacing guide for the CIM for Sig Dis 2025 cohort: add CDE's guide, see README" in (
        warnings
    )


def test_the_no_guide_line_in_the_table_with_some_items(leas: Path) -> None:
    shifted_guide(leas)
    table = invoke("timeline", leas / "dawn-usd.toml", "--today", "2025-05-01")
    assert table.exit_code == 0
    flat = " ".join(table.stdout.split())
    assert "Warning: no pacing guide for the Implementation and Monitoring 2025 cohort" in flat
    assert "Program: Targeted Level 3 (2025 cohort)" in flat and "Due (assumed" in flat


# ---------------------------------------------------------------- local guide folders


def test_local_guide_drives_timeline_feed_and_reminders(leas: Path) -> None:
    guide = shifted_guide(leas)
    profile = leas / "dawn-usd.toml"
    check = invoke("check", leas)
    assert check.exit_code == 0, check.output
    assert f"ok {guide}" in check.stdout and f"ok {profile}" in check.stdout
    assert any("3 items have assumed dates" in line for line in errors(check))

    doc = timeline(profile)
    assert NO_GUIDE not in doc["warnings"]
    submission = item(doc, SUBMIT_1)
    assert submission["due"] == "2025-07-10" and submission["guide"] == "targeted-l3-2025"
    assert submission["date_source"] == "assumed" and NOTE in submission["assumption"]
    assert any(NOTE in a for a in doc["assumptions"])
    ids = {i["id"] for i in doc["items"]}
    assert all(i.startswith("targeted-l3-2025/") for i in ids), ids
    box_13 = item(doc, "targeted-l3-2025/step-1/box-13-consolidation-areas-of-strength")
    assert "targeted-l3-2025/step-1/box-07-parent-input" in box_13["depends_on"]

    feed = invoke("ics", profile)
    assert feed.exit_code == 0
    body = feed.stdout.replace("\r\n ", "")
    assert "targeted-l3-2025" in body and "DTSTART;VALUE=DATE:20250710" in body
    assert NOTE in body.replace("\\;", ";").replace("\\,", ",")
    assert "targeted-l3-2025" in invoke("ics", leas).stdout  # the folder's aggregate feed

    def overdue_line(doc_profile: Path) -> str:
        out = invoke("remind", doc_profile, "--dry-run", "--from", "2025-07-01", "--until",
                     "2025-07-15")  # fmt: skip
        assert out.exit_code == 0, out.output
        lines = out.stdout.splitlines()
        found = next(line for line in lines
                     if " overdue " in line and line.endswith(SUBMIT_1))  # fmt: skip
        told = [line for line in lines if " escalation " in line and line.endswith(SUBMIT_1)]
        return found + (" (escalated)" if told else "")

    line = overdue_line(profile)
    assert line.startswith("2025-07-11 08:00 PDT") and "escalated" not in line  # never told
    # confirmed against CDE's guide: CDE's date, escalated as the 2024 one is
    guide.write_text(guide.read_text().replace("confirmed = false", "confirmed = true"))
    assert "(escalated)" in overdue_line(profile)
    assert item(timeline(profile), SUBMIT_1)["date_source"] == "cde"


def test_confirmed_per_item(leas: Path) -> None:
    guide = shifted_guide(leas)
    text = guide.read_text()
    line = 'id = "step-1-submission"\n'
    guide.write_text(text.replace(line, line + "confirmed = true\n"))
    doc = timeline(leas / "dawn-usd.toml")
    assert item(doc, SUBMIT_1)["date_source"] == "cde"
    assert item(doc, "targeted-l3-2025/step-2/step-2-submission")["date_source"] == "assumed"
    assert any("2 items' dates are assumed" in a for a in doc["assumptions"])


def test_pacing_guides_lists_id_cohort_version_and_source(leas: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    guide = shifted_guide(leas)
    shared = tmp_path / "shared"
    shared.mkdir()
    text = guide.read_text().replace('"targeted-l3-2025"', '"targeted-l3-2026"')
    (shared / "t26.toml").write_text(text.replace("cohorts = [2025]", "cohorts = [2026]")
                                     .replace('\nsource = "', '\nversion = "2026-01"\nsource = "', 1))  # fmt: skip
    monkeypatch.setenv("PACING_GUIDES", os.pathsep.join(["", str(shared)]))
    listed = invoke("guides", leas)
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line[:1].isalnum()}
    assert rows["targeted-l3-2024"].split()[1:2] == ["2024"] and "bundled" in rows["targeted-l3-2024"]
    assert "local" in rows["targeted-l3-2025"] and "3 with assumed dates" in rows["targeted-l3-2025"]
    assert "PACING_GUIDES" in rows["targeted-l3-2026"] and "2026-01" in rows["targeted-l3-2026"]
    assert str(guide) in listed.stdout
    doc = {g["id"]: g for g in json.loads(invoke("guides", leas, "--format", "json").stdout)}
    assert doc["targeted-l3-2025"]["origin"] == "local"
    assert doc["targeted-l3-2025"]["path"] == str(guide)
    assert doc["targeted-l3-2026"]["origin"] == "PACING_GUIDES"
    assert doc["targeted-l3-2026"]["cohorts"] == [2026] and doc["sig-dis-2024"]["version"] is None
    assert doc["targeted-l3-2024"]["applies_to"] == {"tiers": ["targeted"], "levels": [3],
                                                     "cohorts": [2024]}  # fmt: skip
    # a PACING_GUIDES folder that is not there: one line
    monkeypatch.setenv("PACING_GUIDES", str(tmp_path / "nowhere"))
    missing = invoke("guides")
    assert missing.exit_code == 1
    assert errors(missing) == [f"pacing: PACING_GUIDES: {tmp_path / 'nowhere'}: not a folder "
                               "(PACING_GUIDES lists folders of guide files)"]  # fmt: skip


def test_a_guide_id_defined_twice_is_one_line_naming_both(leas: Path) -> None:
    copy = leas / "guides" / "mine.toml"
    copy.parent.mkdir()
    copy.write_text((data_dir("guides") / "targeted-l3-2024.toml").read_text())
    bundled = data_dir("guides") / "targeted-l3-2024.toml"
    said = (f"pacing: {copy}:1: id: guide id 'targeted-l3-2024' is also defined in {bundled} "
            "(bundled)")  # fmt: skip
    for args in (("timeline", leas / "dawn-usd.toml"), ("guides", leas), ("ics", leas)):
        result = invoke(*args)
        assert result.exit_code == 1, args
        assert errors(result) == [said], args
    check = invoke("check", leas)
    assert check.exit_code == 1
    assert errors(check) == [said]
    assert "ok" not in check.stdout


def test_profiles_folder_guides_are_not_profiles(leas: Path) -> None:
    """DIR/guides/*.toml are guides: never read as LEA profiles (check, ics, serve)."""
    guide = shifted_guide(leas)
    from pacing.adapters.files import profiles_in

    assert profiles_in(leas) == [leas / "dawn-usd.toml"]
    assert guide not in profiles_in(leas)


# ---------------------------------------------------------------- authoring


def test_guide_new_leaves_placeholders_that_check_lists(leas: Path) -> None:
    target = leas / "guides" / "targeted-l3-2025.toml"
    target.parent.mkdir()
    made = invoke("guide", "new", "--like", "targeted-l3-2024", "--cohort", "2025", "-o", target)
    assert made.exit_code == 0, made.output
    assert "7 placeholders to fill from CDE's 2025 guide" in made.stdout
    data = tomllib.loads(target.read_text())
    old = tomllib.loads((data_dir("guides") / "targeted-l3-2024.toml").read_text())
    assert data["id"] == "targeted-l3-2025" and data["applies_to"]["cohorts"] == [2025]
    assert data["program"] == "Targeted Level 3 (2025 cohort)"
    keep = ("id", "step", "box", "kind", "na", "duration_days", "depends_on", "follows",
            "submission", "required_if_conditions", "required")  # fmt: skip
    for before, after in zip(old["items"], data["items"], strict=True):
        assert {k: before.get(k) for k in keep} == {k: after.get(k) for k in keep}
    check = invoke("check", target)
    assert check.exit_code == 1
    lines = errors(check)
    assert len(lines) == 7  # one a placeholder: the source, 3 dates and their wording
    dates = [line for line in lines if "unfilled date" in line]
    assert len(dates) == 3 and all(line.startswith(f"pacing: {target}:") for line in lines)
    assert re.search(r":\d+: items\[15\]\.when\.on: unfilled date", dates[0]), dates[0]
    assert "targeted-l3-2024: 2024-07-10" in dates[0]
    # not usable until filled: the timeline says so, and plans nothing from it
    doc = timeline(leas / "dawn-usd.toml")
    assert doc["items"] == []
    assert any("targeted-l3-2025" in w and "7 unfilled placeholders" in w for w in doc["warnings"])
    # filled: CDE's dates
    text = target.read_text()
    text = re.sub(r'"TODO: CDE\'s date \(targeted-l3-2024: 2024-(\d\d-\d\d)\)"', r"2025-\1", text)
    text = re.sub(r'text = "TODO: [^\n]*2024: \\"([^\\]*), 2024\\"\)"', r'text = "\1, 2025"', text)
    text = re.sub(r'source = "TODO: [^\n]*', 'source = "CDE: Targeted 2025 CIM Cohort"', text)
    target.write_text(text)
    check = invoke("check", leas)
    assert check.exit_code == 0, check.output
    submission = item(timeline(leas / "dawn-usd.toml"), SUBMIT_1)
    assert submission["due"] == "2025-07-10" and submission["date_source"] == "cde"
    assert "Submit in Stepwell by July 10, 2025" in submission["rule"]


def test_guide_new_shift_years_on_the_sig_dis_guide(tmp_path: Path) -> None:
    target = tmp_path / "sig-dis-2025.toml"
    made = invoke("guide", "new", "--like", "sig-dis-2024", "--cohort", "2025", "--shift-years",
                  "1", "-o", target)  # fmt: skip
    assert made.exit_code == 0, made.output
    guide = load_guide(target)
    assert not guide.unfilled and guide.periods["cceis-budget"].start == dt.date(2025, 7, 1)
    report = next(i for i in guide.items if i.id == "quarterly-report")
    assert report.series is not None and report.series.first_through == dt.date(2026, 3, 31)
    assert set(report.series.notes) == {"2027-09", "2027-12"}
    meeting = next(i for i in guide.items if i.id == "virtual-meeting")
    assert meeting.when is not None and meeting.when.on == dt.date(2025, 4, 2)
    assert meeting.when.start_time == dt.time(12, 0) and "April 2, 2025" in meeting.when.text
    assert meeting.date_source == "assumed" and meeting.date_note == NOTE
    assert all(i.date_source == "assumed" for i in guide.items if i.when or i.series)
    check = invoke("check", target)
    assert check.exit_code == 0 and f"ok {target}" in check.stdout
    assert "items have assumed dates" in check.stderr


def test_guide_new_bad_usage(tmp_path: Path) -> None:
    target = tmp_path / "g.toml"
    unknown = invoke("guide", "new", "--like", "nope-2024", "--cohort", "2025", "-o", target)
    assert unknown.exit_code == 2 and "nope-2024" in unknown.stderr
    zero = invoke("guide", "new", "--like", "targeted-l3-2024", "--cohort", "2025",
                  "--shift-years", "0", "-o", target)  # fmt: skip
    assert zero.exit_code == 2 and "--shift-years" in zero.stderr
    same = invoke("guide", "new", "--like", "targeted-l3-2024", "--cohort", "2024", "-o", target)
    assert same.exit_code == 2 and "--id" in same.stderr
    target.write_text("kept")
    exists = invoke("guide", "new", "--like", "targeted-l3-2024", "--cohort", "2025", "-o", target)
    assert exists.exit_code == 1 and target.read_text() == "kept"
    assert errors(exists) == [f"pacing: {target} exists: not overwritten (choose another -o FILE)"]
    tiers = invoke("guide", "new", "--like", "cim-tiers", "--cohort", "2025", "-o", tmp_path / "t")
    assert tiers.exit_code == 1 and "applies_to.cohorts: the guide names no cohort" in tiers.stderr
    assert len(errors(tiers)) == 1


def test_toml_text_round_trips_every_bundled_guide() -> None:
    for path in sorted(data_dir("guides").glob("*.toml")):
        data = tomllib.loads(path.read_text())
        assert tomllib.loads(toml_text(data, ["a header"])) == data, path.name
    data = tomllib.loads((data_dir("guides") / "sig-dis-2024.toml").read_text())
    rolled = new_guide(data, "sig-dis-2025", 2025)
    filled, unfilled = fill_placeholders(tomllib.loads(toml_text(rolled.data)))
    assert len(unfilled) == rolled.placeholders
    Guide.model_validate(filled)


# ---------------------------------------------------------------- diff


SMALL = """\
id = "{id}"
title = "Small guide"
source = "test"
applies_to = {{ tiers = ["targeted"], levels = [3], cohorts = [{cohort}] }}

[[items]]
id = "prepare"
step = 1
title = "Prepare the data"
kind = "task"
duration_days = 5

[[items]]
id = "submit"
step = 1
title = "{submit_title}"
kind = "deadline"
when = {{ text = "{submit_text}", on = {submit_on} }}
depends_on = ["prepare"]
{extra}"""


def test_guide_diff_names_what_was_added_removed_redated_and_reworded(tmp_path: Path) -> None:
    a = tmp_path / "a.toml"
    b = tmp_path / "b.toml"
    a.write_text(SMALL.format(id="small-2024", cohort=2024, submit_title="Submit in Stepwell",
                              submit_text="July 10, 2024", submit_on="2024-07-10", extra="""
[[items]]
id = "old-box"
step = 2
title = "A box CDE dropped"
kind = "deadline"
when = { text = "October 10, 2024", on = 2024-10-10 }
"""))  # fmt: skip
    b.write_text(SMALL.format(id="small-2025", cohort=2025, submit_title="Submit Step 1 in Stepwell",
                              submit_text="July 17, 2025", submit_on="2025-07-17", extra="""
[[items]]
id = "new-box"
step = 2
title = "A new box"
kind = "deadline"
when = { text = "October 9, 2025", on = 2025-10-09 }
"""))  # fmt: skip
    result = invoke("guide", "diff", a, b)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "small-2024 -> small-2025: 3 items (3 before): 1 added, 1 removed, " \
        "1 re-dated, 1 re-worded"  # fmt: skip
    text = "\n".join(lines)
    assert "added      step-2/new-box  A new box" in text
    assert "removed    step-2/old-box  A box CDE dropped" in text
    assert "re-dated   step-1/submit  Submit Step 1 in Stepwell" in text
    assert "when.on: '2024-07-10' -> '2025-07-17'" in text
    assert "re-worded  step-1/submit" in text
    assert "title: 'Submit in Stepwell' -> 'Submit Step 1 in Stepwell'" in text
    assert "when.text: 'July 10, 2024' -> 'July 17, 2025'" in text
    assert "prepare" not in text  # unchanged
    # and on a rolled guide, by id: the three submissions re-dated, nothing else
    same = invoke("guide", "diff", "targeted-l3-2024", "targeted-l3-2024")
    assert same.stdout.splitlines()[0].endswith("no differences")


def test_guide_diff_of_a_shifted_guide(leas: Path) -> None:
    guide = shifted_guide(leas)
    result = invoke("guide", "diff", "targeted-l3-2024", guide)
    assert result.exit_code == 0
    redated = [line for line in result.stdout.splitlines() if line.startswith("re-dated")]
    assert len(redated) == 3 and "step-1/step-1-submission" in redated[0]
    assert "when.on: '2024-07-10' -> '2025-07-10'" in result.stdout
    assert "date_source: added 'assumed (unconfirmed)'" in result.stdout
    by_id = invoke("guide", "diff", "targeted-l3-2024", "targeted-l3-2025", "--in", leas)
    assert by_id.stdout == result.stdout
    a = load_guide(data_dir("guides") / "targeted-l3-2024.toml")
    assert {c.kind for c in diff_guides(a, load_guide(guide))} == {"re-dated", "re-worded"}


# ---------------------------------------------------------------- serve and the daemon


def test_feed_book_reads_local_guides_and_rereads_them(leas: Path) -> None:
    from pacing.feeds.book import FeedBook

    guide = shifted_guide(leas)
    state = State()
    now = dt.datetime(2025, 5, 1, 16, tzinfo=dt.UTC)
    book = FeedBook(leas, state, lambda: now, state.feed_secrets())
    book.refresh()
    assert list(book.entries) == ["dawn-usd"] and not book.errors
    entry = book.entries["dawn-usd"]
    assert entry.timeline.get(SUBMIT_1).due == dt.date(2025, 7, 10)
    assert b"targeted-l3-2025" in book.feed(entry).body
    guide.write_text(guide.read_text().replace("2025-07-10", "2025-07-17"))
    book.refresh()
    assert book.entries["dawn-usd"].timeline.get(SUBMIT_1).due == dt.date(2025, 7, 17)
    guide.write_text(guide.read_text().replace("2025-07-17", "2025-07-32"))  # broken
    book.refresh()
    assert book.entries["dawn-usd"].timeline.get(SUBMIT_1).due == dt.date(2025, 7, 17)
    assert str(guide) in book.errors and "invalid TOML" in book.errors[str(guide)]
    assert book.problems[str(guide)] == "targeted-l3-2025.toml: not valid TOML or not readable"
    guide.write_text(guide.read_text().replace("2025-07-32", "2025-07-18"))
    book.refresh()
    assert not book.errors and not book.problems
    assert book.entries["dawn-usd"].timeline.get(SUBMIT_1).due == dt.date(2025, 7, 18)


def test_daemon_picks_up_an_edited_local_guide(leas: Path, tmp_path: Path) -> None:
    from pacing.reminders.daemon import Daemon
    from pacing.reminders.ledger import Ledger
    from pacing.reminders.send import MaildirSender

    guide = shifted_guide(leas)
    clock = dt.datetime(2025, 5, 1, 15, tzinfo=dt.UTC)
    daemon = Daemon([leas], State(), MaildirSender(tmp_path / "outbox"), lambda: clock)
    assert daemon.replan(force=True)
    assert daemon.timelines["dawn-usd"].get(SUBMIT_1).due == dt.date(2025, 7, 10)

    def overdue(kind: str = "overdue") -> list[Any]:
        return [r for r in Ledger(daemon.state).rows(["dawn-usd"])
                if r.kind == kind and r.items == (SUBMIT_1,) and r.status == "pending"]  # fmt: skip

    assert [r.send_at.date() for r in overdue()] == [dt.date(2025, 7, 11)]
    assert not overdue("escalation")  # an unconfirmed date is never escalated
    assert not daemon.replan()  # nothing changed
    text = guide.read_text().replace("2025-07-10", "2025-07-17")
    guide.write_text(text.replace("confirmed = false", "confirmed = true"))
    os.utime(guide, ns=(guide.stat().st_atime_ns, guide.stat().st_mtime_ns + 10**9))
    assert daemon.replan()
    assert daemon.timelines["dawn-usd"].get(SUBMIT_1).due == dt.date(2025, 7, 17)
    assert [r.send_at.date() for r in overdue()] == [dt.date(2025, 7, 18)]
    assert overdue("escalation")  # confirmed: CDE's date, escalated when missed
    # a broken guide keeps the plan made with its last good version
    guide.write_text(text.replace("2025-07-17", "2025-13-01"))
    assert daemon.replan()
    assert daemon.timelines["dawn-usd"].get(SUBMIT_1).due == dt.date(2025, 7, 17)
    assert [r.send_at.date() for r in overdue()] == [dt.date(2025, 7, 18)]


def test_an_lea_override_of_an_unconfirmed_date_is_never_escalated(leas: Path) -> None:
    from pacing.adapters.files import load_lea
    from pacing.adapters.guidepath import guides_for
    from pacing.core.reminders import escalates_when_missed
    from pacing.core.timeline import expand

    guide = shifted_guide(leas)
    profile = leas / "dawn-usd.toml"
    profile.write_text(profile.read_text() + f'\n[overrides."{SUBMIT_1}"]\ndue = 2025-07-15\n')

    def submission() -> Any:
        guides = guides_for([profile])
        return expand(guides, load_lea(profile, guides), dt.date(2025, 5, 1)).get(SUBMIT_1)

    moved = submission()
    assert moved.due == dt.date(2025, 7, 15) and moved.date_source == "lea"
    assert not escalates_when_missed(moved)  # the district moved an assumed date, not CDE's
    guide.write_text(guide.read_text().replace("confirmed = false", "confirmed = true"))
    assert escalates_when_missed(submission())  # the district moved CDE's date
