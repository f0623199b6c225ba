"""The CLI as a user runs it: JSON contract, table, filters, check warnings, schemas in sync."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pacing.adapters import schema
from pacing.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
CONTRACT_KEYS = {
    "id", "guide", "step", "title", "kind", "start", "due", "start_time", "end_time",
    "latest_start", "latest_finish", "slack_days", "depends_on", "status", "requirement",
    "na_reason", "submit_to", "resources", "rule",
}  # fmt: skip
KINDS = {"deadline", "window", "meeting", "task", "report"}
STATUSES = {"done", "overdue", "behind-plan", "at-risk", "due-soon", "upcoming", "past",
            "not-applicable"}  # DESIGN's, plus behind-plan (contract, added) and past


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "80"}
    code = "from pacing.cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )


@pytest.mark.parametrize("profile", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_json_matches_the_contract(profile: Path) -> None:
    result = run("timeline", str(profile), "--today", "2024-05-01", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["lea"]["id"] == profile.stem and doc["lea"]["name"]
    assert doc["today"] == "2024-05-01"
    items = doc["items"]
    assert items and len({i["id"] for i in items}) == len(items)
    keys = [(i["due"], i["start"] or i["due"], i["id"]) for i in items]
    assert keys == sorted(keys)
    for item in items:
        assert item.keys() >= CONTRACT_KEYS
        assert item["id"].startswith(f"{item['guide']}/step-{item['step']}/")
        assert item["kind"] in KINDS and item["status"] in STATUSES
        assert item["requirement"] in {"required", "recommended", "optional"}
        assert (item["status"] == "not-applicable") == (item["na_reason"] is not None)
        assert isinstance(item["submit_to"], list) and isinstance(item["depends_on"], list)
        assert all(set(r) == {"title", "url"} for r in item["resources"])
        assert item["rule"]
        for key in ("start", "due", "latest_start", "latest_finish"):
            assert item[key] is None or len(item[key]) == 10
        if item["latest_start"]:  # a plan past its window's end is said in a warning
            assert item["latest_start"] <= item["latest_finish"]
            assert item["latest_finish"] <= item["due"] or item["warnings"]


def test_json_is_deterministic() -> None:
    args = ("timeline", str(EXAMPLES[0]), "--today", "2024-05-01", "--format", "json")
    assert run(*args).stdout == run(*args).stdout


def test_table_fits_80_columns_without_colour() -> None:
    result = run("timeline", str(ROOT / "examples/riverbend-usd.toml"), "--today", "2024-05-01")
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "Conduct the Data Drill Down" in result.stdout and "At risk" in result.stdout


def test_step_and_upcoming_filters() -> None:
    profile = str(ROOT / "examples/riverbend-usd.toml")
    out = run("timeline", profile, "--today", "2024-05-01", "--format", "json", "--step", "4")
    assert {i["step"] for i in json.loads(out.stdout)["items"]} == {4}
    out = run("timeline", profile, "--today", "2024-05-01", "--format", "json", "--upcoming", "14")
    items = json.loads(out.stdout)["items"]
    assert items and all(i["due"] >= "2024-05-01" or i["status"] == "overdue" for i in items)
    assert all(i["status"] not in ("done", "not-applicable") for i in items)
    assert "sig-dis-2024/step-4/quarterly-report/2026-12" not in {i["id"] for i in items}


def test_csv_and_markdown() -> None:
    profile = str(ROOT / "examples/sunrise-usd.toml")
    csv_out = run("timeline", profile, "--today", "2024-05-01", "--format", "csv").stdout
    assert csv_out.startswith("id,step,title,kind,start,due")
    md = run("timeline", profile, "--today", "2024-05-01", "--format", "md").stdout
    assert md.startswith("# Sunrise Unified School District: CIM timeline as of May 1, 2024")
    assert "Not applicable to Targeted Level 3 LEAs - write N/A in this box" in md


def test_check_warns_about_missing_box_1_roles(tmp_path: Path) -> None:
    text = (ROOT / "examples/sunrise-usd.toml").read_text()
    profile = tmp_path / "p.toml"
    profile.write_text(text.replace('role = "site-admin"', 'role = "other"'))
    result = CliRunner().invoke(cli, ["check", str(profile)])
    assert result.exit_code == 0
    assert "Stepwell box 1 (CIM Team) requires a site-admin" in result.output


def test_check_accepts_every_guide_and_example() -> None:
    result = run("check", str(ROOT / "guides"), str(ROOT / "examples"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok ") == 8


def test_guides_and_ta_hours() -> None:
    assert "sig-dis-2024" in run("guides").stdout
    out = run("ta-hours", str(ROOT / "examples/riverbend-usd.toml")).stdout
    assert "a minimum of 20 hours per indicator" in out and "$990-$6,325" in out
    assert "$110/hour" in out and "April 19th, 2024" in out


def test_published_schemas_are_in_sync() -> None:
    for name, model in schema.FILES.items():
        assert (ROOT / name).read_text() == schema.render(model), f"regenerate {name}"
