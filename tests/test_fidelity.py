"""Seed fidelity (issue 7, part 6), pinned with hand-computed expectations, not goldens.

- Seed 004: "Intensive Level 1-3 LEAs" (a level is optional for intensive, never universal).
- Seed 002: "a minimum of 20 hours (per indicator)" of CDE-funded TA, "TA services funded by
  the CDE must be completed by June 30, 2024", and new LEAs do not get past Step 1 by then.
- Seeds 000 and 002: "Step Three: Plan for Results".
- Seed 000: box 10 reports go to the Targeted Monitoring FMTA Consultant "with a cc to
  TargetedMonitoring@cde.ca.gov"; box 27's emailed plan goes to the Targeted Consultant and a
  copy to TargetedMonitoring@cde.ca.gov.
- Seed 001: Universal = "Resources and tools are available to maintain compliance and improve
  outcomes for all students": no CIM steps or deadlines, so one line instead of an empty table.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from pacing.cli.main import cli
from pacing.core.guide import Guide
from pacing.core.lea import Lea
from pacing.core.timeline import expand, tier_label
from pacing.export.tahours import ta_budget

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
MAY_1 = dt.date(2024, 5, 1)
QUARTERS = [  # January 1, 2025 - June 30, 2026, by quarter (the implementation period)
    ("2025-03", "January 1, 2025 - March 31, 2025"),
    ("2025-06", "April 1, 2025 - June 30, 2025"),
    ("2025-09", "July 1, 2025 - September 30, 2025"),
    ("2025-12", "October 1, 2025 - December 31, 2025"),
    ("2026-03", "January 1, 2026 - March 31, 2026"),
    ("2026-06", "April 1, 2026 - June 30, 2026"),
]
UNIVERSAL_WORDS = (
    "Resources and tools are available to maintain compliance and improve outcomes for all students"
)


def profile(tmp_path: Path, example: str, monitoring: str) -> Path:
    """An example profile written to tmp_path with its [monitoring] table replaced."""
    text = (EXAMPLES / f"{example}.toml").read_text()
    text, found = re.subn(
        r"\[monitoring\]\n(?:[^\[\n].*\n)*", f"[monitoring]\n{monitoring}\n", text
    )
    assert found == 1
    path = tmp_path / f"{example}.toml"
    path.write_text(text)
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    code = "from pacing.cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
        cwd=ROOT,
    )


# ---------------------------------------------------------------- 1. Intensive Level 1-3


@pytest.mark.parametrize("level", [1, 2, 3])
def test_intensive_level_is_accepted_and_reports_quarterly(
    guides: tuple[Guide, ...], make_lea: Callable[..., Lea], level: int
) -> None:
    lea = make_lea("lakeside-usd", monitoring={"level": level})
    assert lea.monitoring.level == level
    assert tier_label(lea) == f"Intensive Level {level}"
    t = expand(guides, lea, MAY_1)
    assert {e.guide for e in t.items} == {"implementation-2024"}  # not the Targeted L3 guide
    reports = [e for e in t.items if e.series == "implementation-2024/step-4/progress-report"]
    assert [(e.occurrence, e.title) for e in reports] == [
        (key, f"Submit the Progress Report ({span})") for key, span in QUARTERS
    ]
    for e in reports:
        assert e.requirement == "required" and e.status != "not-applicable"
        assert "intensivemonitoring@cde.ca.gov" in e.submit_to
        assert any("jcruz@cde.example.gov" in to for to in e.submit_to)  # the FMTA consultant
        assert not any("targetedmonitoring" in to.lower() for to in e.submit_to)
    ta = t.get("implementation-2024/step-4/step-4-ta")  # "(Intensive Level 1-3 LEAs only)"
    assert ta.requirement == "required" and ta.status != "not-applicable"


def test_intensive_without_level_still_works(
    guides: tuple[Guide, ...], make_lea: Callable[..., Lea]
) -> None:
    lea = make_lea("lakeside-usd")
    assert lea.monitoring.level is None and tier_label(lea) == "Intensive"
    t = expand(guides, lea, MAY_1)
    assert len([e for e in t.items if "/progress-report/" in e.id]) == 6


def test_targeted_level_3_still_reports_semi_annually(
    guides: tuple[Guide, ...], make_lea: Callable[..., Lea]
) -> None:
    t = expand(guides, make_lea("sunrise-usd"), MAY_1)
    reports = [e for e in t.items if e.series == "implementation-2024/step-4/progress-report"]
    assert [e.occurrence for e in reports] == ["2025-06", "2025-12", "2026-06"]
    assert all("targetedmonitoring@cde.ca.gov" in e.submit_to for e in reports)


def test_intensive_level_profile_through_the_cli(tmp_path: Path) -> None:
    path = profile(tmp_path, "lakeside-usd", 'tier = "intensive"\nlevel = 2\ncohort = 2024')
    assert run("check", str(path)).returncode == 0
    result = run("timeline", str(path), "--today", "2024-05-01", "--format", "json")
    assert result.returncode == 0, result.stderr
    reports = [i for i in json.loads(result.stdout)["items"] if "/progress-report/" in i["id"]]
    assert len(reports) == 6
    assert all("intensivemonitoring@cde.ca.gov" in i["submit_to"] for i in reports)


def test_universal_with_a_level_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    path = profile(tmp_path, "lakeside-usd", 'tier = "universal"\nlevel = 2\ncohort = 2024')
    for command in ("check", "timeline"):
        result = run(command, str(path))
        assert result.returncode == 1, result.stderr
        assert result.stdout.strip() in ("", "ok")
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"pacing: {path}:")
        assert "monitoring.level" in lines[0] and "universal" in lines[0]
        assert "Traceback" not in result.stderr


def test_targeted_still_needs_a_level(make_lea: Callable[..., Lea]) -> None:
    with pytest.raises(ValueError, match="a targeted LEA needs 'level'"):
        make_lea("sunrise-usd", monitoring={"level": None})


# ---------------------------------------------------------------- 2. TA hours

# Seed 002's menu, summed by hand:
#   Step 1: min 1+1+1+1+1+1+1+2+2 = 11, max 4+4+2+12+12+2+4+25+8 = 73
#   Step 2: min 1+1+1+1+1+1 = 6,         max 4+3+2+4+2+2 = 17
#   Step 3: min 1+1+1 = 3,               max 2+1.5+4 = 7.5
# Funded hours (20 per indicator) count against Step 1 only; Steps 2-3 are all paid at $110/h.
#   new, 2 indicators (40 h): floor (max(0, 11-40) + 9) x 110 = 990
#                             ceiling (max(0, 73-40) + 24.5) x 110 = 57.5 x 110 = 6,325
#   continuing, 1 indicator (20 h): floor (0 + 9) x 110 = 990; ceiling (53 + 24.5) x 110 = 8,525
#   continuing, 3 indicators (60 h): floor 990; ceiling (13 + 24.5) x 110 = 4,125


@pytest.mark.parametrize(
    ("sig_dis", "indicators", "funded", "floor", "ceiling"),
    [
        ("new", 2, 40, 990, 6325),
        ("new", 1, 20, 990, 8525),
        ("continuing", 1, 20, 990, 8525),
        ("continuing", 2, 40, 990, 6325),
        ("continuing", 3, 60, 990, 4125),
    ],
)
def test_ta_budget_nets_funded_hours_against_step_1_only(
    guides: tuple[Guide, ...],
    make_lea: Callable[..., Lea],
    sig_dis: str,
    indicators: int,
    funded: float,
    floor: float,
    ceiling: float,
) -> None:
    lea = make_lea(
        "riverbend-usd", monitoring={"sig_dis": sig_dis, "sig_dis_indicators": indicators}
    )
    budget = ta_budget(guides, lea)
    assert budget is not None
    assert budget.funded_hours == funded and budget.rate == 110
    assert budget.funded_steps == (1,)
    assert budget.funded_until == dt.date(2024, 6, 30)
    assert budget.hours(True) == (11, 73)
    assert budget.hours(False) == (9, 24.5)
    assert (budget.hours_min, budget.hours_max) == (20, 97.5)
    assert budget.cost() == (floor, ceiling)


def test_ta_hours_new_two_indicator_lea_prints_990_to_6325() -> None:
    result = CliRunner().invoke(cli, ["ta-hours", str(EXAMPLES / "riverbend-usd.toml")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Cost beyond the funded hours at $110/hour: $990-$6,325" in out
    assert "a minimum of 20 hours per indicator" in out
    assert "CDE-funded: 40 hours" in out
    assert "upper-bound estimate" in out
    assert "TA services funded by the CDE must be completed by June 30, 2024" in out
    assert "New LEAs are not likely to accomplish tasks beyond Consolidation of Step 1" in out
    assert "Step 1: 11-73 hours" in out and "Steps 2 and 3: 9-24.5 hours" in out


def test_ta_hours_continuing_lea_states_its_assumption(tmp_path: Path) -> None:
    path = profile(
        tmp_path,
        "riverbend-usd",
        'tier = "targeted"\nlevel = 2\ncohort = 2024\nsig_dis = "continuing"\n'
        "sig_dis_indicators = 1",
    )
    result = CliRunner().invoke(cli, ["ta-hours", str(path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Cost beyond the funded hours at $110/hour: $990-$8,525" in out
    assert "CDE-funded: 20 hours (a minimum of 20 hours per indicator x 1 indicator" in out
    assert "Assumption: Assumed for continuing LEAs: the June 30, 2024 cut-off" in out
    assert "2023 CIM for CCEIS Plan" in out
    assert "upper-bound estimate" in out


def test_ta_hours_for_an_lea_without_sig_dis() -> None:
    result = CliRunner().invoke(cli, ["ta-hours", str(EXAMPLES / "sunrise-usd.toml")])
    assert result.exit_code == 0
    assert "no TA Menu of Services applies" in result.output


# ---------------------------------------------------------------- 3. Step 3 title


def test_step_3_is_plan_for_results(
    guides: tuple[Guide, ...], make_lea: Callable[..., Lea]
) -> None:
    tiers = next(g for g in guides if g.id == "cim-tiers")
    assert {s.number: s.title for s in tiers.steps}[3] == "Plan for Results"
    t = expand(guides, make_lea("sunrise-usd"), MAY_1)
    assert t.steps[3] == "Plan for Results"
    result = CliRunner().invoke(
        cli,
        ["checklist", str(EXAMPLES / "sunrise-usd.toml"), "--format", "md",
         "--today", "2024-05-01"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Step 3: Plan for Results" in result.output


# ---------------------------------------------------------------- 4. In-box recipients


@pytest.mark.parametrize(
    "item_id",
    ["targeted-l3-2024/step-1/box-10-data-drill-down",
     "targeted-l3-2024/step-3/box-27-plan-for-improvement-link"],
)  # fmt: skip
def test_in_box_recipients_are_submit_to(
    guides: tuple[Guide, ...], make_lea: Callable[..., Lea], item_id: str
) -> None:
    guide = next(g for g in guides if g.id == "targeted-l3-2024")
    item = guide.item_ids()[item_id]
    assert item.submit_to == ["Stepwell", "fmta_consultant", "TargetedMonitoring@cde.ca.gov"]
    entry = expand(guides, make_lea("sunrise-usd"), MAY_1).get(item_id)
    assert entry.submit_to[0] == "Stepwell"
    assert "mlee@cde.example.gov" in entry.submit_to[1]  # Sunrise's FMTA consultant
    assert entry.submit_to[2] == "TargetedMonitoring@cde.ca.gov"


# ---------------------------------------------------------------- 5. Universal tier


@pytest.fixture
def universal(tmp_path: Path) -> Path:
    return profile(tmp_path, "lakeside-usd", 'tier = "universal"\ncohort = 2024')


@pytest.mark.parametrize("fmt", ["table", "md"])
def test_universal_timeline_is_one_line(universal: Path, fmt: str) -> None:
    result = run("timeline", str(universal), "--today", "2024-05-01", "--format", fmt)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith("Lakeside Unified School District is in the Universal tier")
    assert UNIVERSAL_WORDS in lines[0]
    assert "https://caltan.info/monitoring" in lines[0]


def test_universal_timeline_json_stays_valid(universal: Path) -> None:
    result = run("timeline", str(universal), "--today", "2024-05-01", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["items"] == [] and doc["lea"]["id"] == "lakeside-usd"
    assert UNIVERSAL_WORDS in doc["note"]


def test_universal_timeline_csv_is_header_only(universal: Path) -> None:
    result = run("timeline", str(universal), "--today", "2024-05-01", "--format", "csv")
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 1 and result.stdout.startswith("id,")
    assert UNIVERSAL_WORDS in result.stderr


def test_universal_sig_dis_lea_still_gets_its_sig_dis_timeline(tmp_path: Path) -> None:
    path = profile(tmp_path, "lakeside-usd", 'tier = "universal"\ncohort = 2024\nsig_dis = "new"')
    result = run("timeline", str(path), "--today", "2024-05-01", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["items"] and "note" not in doc
    assert {i["guide"] for i in doc["items"]} == {"sig-dis-2024", "ta-menu-2024"}
