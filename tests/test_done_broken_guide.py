"""A guide in the profiles' guides/ folder that does not load (a typo in next year's guide)
stops only the LEAs it would plan: the others' done, undo, status and timeline keep working,
with one warning line naming the bad guide; for an LEA it would plan, the error names it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pacing.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
BAD_GUIDES = sorted(
    p for p in (ROOT / "tests" / "bad-guides").glob("*.toml") if p.name != "unfilled-date.toml"
)  # (a guide with placeholders loads: it is listed by check, never skipped)
NEXT_YEAR = 'applies_to = { tiers = ["targeted"], levels = [3], cohorts = [2025] }\n'


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PACING_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PACING_NOW", "2024-05-01T15:00:00Z")
    monkeypatch.delenv("PACING_GUIDES", raising=False)
    monkeypatch.delenv("PACING_DB", raising=False)
    return tmp_path / "state"


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def leas(tmp_path: Path) -> Path:
    """sunrise-usd and riverbend-usd (2024 cohort) and dawn-usd, a Targeted Level 3 LEA of
    the 2025 cohort, whose guide is the one being written."""
    folder = tmp_path / "leas"
    (folder / "guides").mkdir(parents=True)
    for name in ("sunrise-usd", "riverbend-usd"):
        (folder / f"{name}.toml").write_text((ROOT / "examples" / f"{name}.toml").read_text())
    text = (ROOT / "examples" / "sunrise-usd.toml").read_text().split("[done]")[0]
    text = text.replace("cohort = 2024", "cohort = 2025").replace('"sunrise-usd"', '"dawn-usd"')
    (folder / "dawn-usd.toml").write_text(text.replace("19647330000000", "1964734"))
    return folder


def next_years(bad: Path, folder: Path) -> Path:
    """A broken guide for the 2025 cohort (the bad-guides example, applying to 2025 only)."""
    text = re.sub(r"^(source = .*\n)", r"\1" + NEXT_YEAR, bad.read_text(), count=1, flags=re.M)
    target = folder / "guides" / f"next-{bad.name}"
    target.write_text(text)
    return target


def warnings(result: Result) -> list[str]:
    lines = result.stderr.splitlines()
    assert all(line.startswith("pacing: ") for line in lines), lines
    return [line for line in lines if line.startswith("pacing: warning: ")]


def assert_works_with_one_warning(result: Result, guide: Path) -> None:
    assert result.exit_code == 0, result.output
    said = [w for w in warnings(result) if str(guide) in w]
    assert len(said) == 1 and "guide skipped" in said[0], result.stderr


def assert_refused_naming(result: Result, guide: Path) -> None:
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if "warning" not in line]
    assert len(errors) == 1 and errors[0].startswith(f"pacing: {guide}"), result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("bad", BAD_GUIDES, ids=[p.stem for p in BAD_GUIDES])
def test_other_leas_keep_working(leas: Path, bad: Path) -> None:
    guide = next_years(bad, leas)
    sunrise = leas / "sunrise-usd.toml"
    assert_works_with_one_warning(invoke("timeline", sunrise, "--today", "2024-05-01"), guide)
    assert_works_with_one_warning(invoke("done", sunrise, "box-19", "--on", "2024-05-01"), guide)
    dawn = leas / "dawn-usd.toml"
    assert_refused_naming(invoke("timeline", dawn), guide)
    assert_refused_naming(invoke("done", dawn, "box-19"), guide)


def test_done_undo_status_timeline_of_the_others(leas: Path) -> None:
    guide = next_years(ROOT / "tests" / "bad-guides" / "dependency-cycle.toml", leas)
    for name, item in (("sunrise-usd", "box-19"), ("riverbend-usd", "case-study")):
        profile = leas / f"{name}.toml"
        done = invoke("done", profile, item, "--on", "2024-04-30")
        assert_works_with_one_warning(done, guide)
        assert "done: " in done.stdout
        shown = invoke("timeline", profile, "--today", "2024-05-01", "--format", "json")
        assert_works_with_one_warning(shown, guide)
        assert '"status": "done"' in shown.stdout
        assert_works_with_one_warning(invoke("undo", profile, item), guide)
        status = invoke("status", profile)
        assert_works_with_one_warning(status, guide)
        assert f"guide skipped: {guide}" in status.stdout


def test_status_of_the_folder_names_the_guide_and_the_lea_it_stops(leas: Path) -> None:
    guide = next_years(ROOT / "tests" / "bad-guides" / "depends-on-unknown.toml", leas)
    status = invoke("status", leas)
    assert status.exit_code == 1
    assert f"guide skipped: {guide}" in status.stdout
    assert "late: " in status.stdout  # the report is whole for the other LEAs
    errors = [line for line in status.stderr.splitlines() if "warning" not in line]
    assert len(errors) == 1 and errors[0].startswith(f"pacing: {guide}"), status.stderr


def test_check_fails_on_the_guide_and_passes_the_others(leas: Path) -> None:
    guide = next_years(ROOT / "tests" / "bad-guides" / "duplicate-item-id.toml", leas)
    check = invoke("check", leas)
    assert check.exit_code == 1
    assert f"ok {leas / 'sunrise-usd.toml'}" in check.stdout
    assert f"ok {leas / 'dawn-usd.toml'}" not in check.stdout
    assert any(line.startswith(f"pacing: {guide}") for line in check.stderr.splitlines())


def test_a_guide_that_is_not_even_toml(leas: Path) -> None:
    """What it applies to cannot be read: it stops the LEAs with a program and no guide for
    their cohort (dawn-usd), not those whose guides are all there."""
    guide = leas / "guides" / "targeted-l3-2025.toml"
    guide.write_text('id = "targeted-l3-2025"\ntitle = "Targeted Level 3 (2025\n')
    assert_works_with_one_warning(invoke("timeline", leas / "sunrise-usd.toml"), guide)
    assert_refused_naming(invoke("timeline", leas / "dawn-usd.toml"), guide)
    assert_refused_naming(invoke("undo", leas / "dawn-usd.toml", "box-19"), guide)


def test_a_guide_for_every_lea_stops_every_lea(leas: Path) -> None:
    """No `applies_to`: it would plan every LEA, so every LEA is refused, naming it."""
    guide = leas / "guides" / "dependency-cycle.toml"
    guide.write_text((ROOT / "tests" / "bad-guides" / "dependency-cycle.toml").read_text())
    for name in ("sunrise-usd", "dawn-usd"):
        assert_refused_naming(invoke("timeline", leas / f"{name}.toml"), guide)
