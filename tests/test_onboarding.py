"""Onboarding: `pacing init`, a schema that describes every key, and `check DIR` across profiles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pacing.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FLAGS = [
    "--name", "Oak Valley Unified School District", "--cds", "12345670000000",
    "--tier", "targeted", "--level", "2", "--cohort", "2024", "--sig-dis", "new",
    "--lead-name", "Ana Ruiz", "--lead-email", "ana@oak.example.org",
    "--selpa-name", "North SELPA", "--selpa-email", "cim@north-selpa.example.org",
    "--board-rule", "2nd Tuesday",
]  # fmt: skip


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def test_init_with_flags_writes_a_profile_check_and_timeline_accept(tmp_path: Path) -> None:
    out = tmp_path / "oak.toml"
    result = invoke("init", "-o", str(out), *FLAGS)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    first = text.splitlines()[0]
    assert first.startswith("#:schema ") and first.endswith("profile.schema.json")
    assert 'id = "oak-valley-usd"' in text  # suggested from the name
    assert 'board_meeting_rule = "FREQ=MONTHLY;BYDAY=2TU"' in text
    assert 'escalate_overdue_to = ["selpa"]' in text
    assert "# The CIM team:" in text and "# Reminder emails" in text  # plain-word comments
    checked = invoke("check", str(out))
    assert checked.exit_code == 0, checked.output
    assert f"ok {out}" in checked.output
    timeline = invoke("timeline", str(out), "--today", "2024-05-01", "--format", "json")
    assert timeline.exit_code == 0, timeline.output
    assert json.loads(timeline.output)["lea"]["id"] == "oak-valley-usd"


def test_init_schema_line_is_a_path_editors_can_open(tmp_path: Path) -> None:
    inside = ROOT / "examples" / "never-written.toml"
    from pacing.adapters.onboarding import schema_ref

    assert schema_ref(inside) == "./profile.schema.json"
    assert schema_ref(tmp_path / "x.toml") == (EXAMPLES / "profile.schema.json").as_uri()


def test_init_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "oak.toml"
    out.write_text("# mine\n")
    result = invoke("init", "-o", str(out), *FLAGS)
    assert result.exit_code == 1
    assert result.output == f"pacing: {out} exists: not overwritten (choose another -o FILE)\n"
    assert out.read_text() == "# mine\n"


def test_init_without_a_terminal_asks_nothing_and_names_what_is_missing(tmp_path: Path) -> None:
    result = invoke("init", "-o", str(tmp_path / "x.toml"), "--name", "X")
    assert result.exit_code == 2
    assert "missing --cds, --tier, --cohort, --lead-name, --lead-email" in result.output
    assert not (tmp_path / "x.toml").exists()
    bad = invoke("init", "-o", str(tmp_path / "x.toml"), *FLAGS, "--cds", "123")
    assert bad.exit_code == 2 and "Invalid value for --cds" in bad.output


def test_init_asks_on_a_terminal(tmp_path: Path) -> None:
    out = tmp_path / "pine.toml"
    answers = [
        "Pine Ridge Elementary School District",  # name
        "",  # id: the suggestion
        "123",  # a bad CDS code is asked again
        "12345678901234",
        "intensive",
        "",  # level: none
        "2024",
        "no",
        "",  # lead's role: sped-admin
        "Kim Lee",
        "not-an-email",  # asked again
        "kim@pine.example.org",
        "",  # no SELPA contact
        "Jo Park",  # FMTA consultant
        "jpark@cde.example.gov",
        "3rd thursday",
    ]
    result = invoke("init", "--interactive", "-o", str(out), input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "Short id [pine-ridge-esd]" in result.output
    assert "must be 14 digits" in result.output and "is not an email address" in result.output
    text = out.read_text()
    assert 'id = "pine-ridge-esd"' in text and 'tier = "intensive"' in text
    assert "# level = 1" in text and "# selpa = " in text
    assert 'escalate_overdue_to = ["fmta_consultant"]' in text
    assert 'board_meeting_rule = "FREQ=MONTHLY;BYDAY=3TH"' in text
    assert invoke("check", str(out)).exit_code == 0


def _undescribed(node: Any, where: str) -> list[str]:
    found = []
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            if not isinstance(prop, dict) or not prop.get("description"):
                found.append(f"{where}/properties/{name}")
        for key, value in node.items():
            found += _undescribed(value, f"{where}/{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            found += _undescribed(value, f"{where}/{n}")
    return found


def test_every_profile_schema_property_has_a_description() -> None:
    schema = json.loads((EXAMPLES / "profile.schema.json").read_text())
    assert _undescribed(schema, "#") == []
    assert schema["$defs"]["Monitoring"]["properties"]["tier"]["examples"] == ["targeted"]


# --------------------------------------------------------------------------- check DIR


def profile(folder: Path, name: str, source: str = "sunrise-usd", **replace: str) -> Path:
    text = (EXAMPLES / f"{source}.toml").read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = folder / name
    path.write_text(text)
    return path


def check_lines(folder: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["check", str(folder)])
    errors = [line for line in result.output.splitlines() if line.startswith("pacing: ")]
    return result.exit_code, [e for e in errors if "warning:" not in e]


def test_check_dir_reports_duplicate_ids_and_cds_codes(tmp_path: Path) -> None:
    a = profile(tmp_path, "a.toml")
    b = profile(tmp_path, "b.toml", **{'name = "Sunrise': 'name = "Copy of Sunrise'})
    code, errors = check_lines(tmp_path)
    assert code == 1
    assert errors == [
        f"pacing: {b}:2: id: 'sunrise-usd' is also the id of {a} (ids must be unique)",
        f"pacing: {b}:4: cds: '19647330000000' is also the CDS code of {a} (one profile per LEA)",
    ]
    # the 7-digit district code and its 14-digit form are the same LEA
    b.write_text(b.read_text().replace('"sunrise-usd"', '"sunrise-2"').replace(
        '"19647330000000"', '"1964733"'))  # fmt: skip
    assert check_lines(tmp_path)[1] == [
        f"pacing: {b}:4: cds: '1964733' is also the CDS code of {a} (one profile per LEA)"
    ]


def test_check_dir_names_a_file_that_is_no_profile(tmp_path: Path) -> None:
    profile(tmp_path, "sunrise.toml")
    guide = tmp_path / "guide.toml"
    shutil.copy(ROOT / "guides" / "cim-tiers.toml", guide)
    stray = tmp_path / "notes.toml"
    stray.write_text('title = "meeting notes"\n')
    code, errors = check_lines(tmp_path)
    assert code == 1
    assert errors == [
        f"pacing: {guide}: not an LEA profile (no [monitoring] table)",
        f"pacing: {stray}: not an LEA profile (no [monitoring] table)",
    ]
    # a folder of guides is still checked as guides; other commands say the same one line
    assert invoke("check", str(ROOT / "guides")).exit_code == 0
    timeline = invoke("timeline", str(stray))
    assert timeline.exit_code == 1
    assert timeline.output == f"pacing: {stray}: not an LEA profile (no [monitoring] table)\n"


@pytest.mark.parametrize(
    ("replace", "key", "says"),
    [
        ({"lead = true\n": ""}, "to",
         "reminders.to: no one gets reminders: 'lead' but no [[team]] member has lead = true "
         "(set lead = true on one [[team]] member, name a team role or an address, or write "
         "to = [] for no reminders)"),
        ({'selpa = { name = "East Valley SELPA", email = "office@eastvalley-selpa.example.org" }\n': ""},
         "escalate_overdue_to",
         "reminders.escalate_overdue_to[0]: escalation to 'selpa', which is not defined: add "
         "[contacts].selpa (name and email) or remove it"),
    ],
    ids=["no-lead", "escalation-to-undefined-contact"],
)  # fmt: skip
def test_check_dir_refuses_reminders_that_reach_no_one(
    tmp_path: Path, replace: dict[str, str], key: str, says: str
) -> None:
    profile(tmp_path, "lakeside.toml", "lakeside-usd")
    bad = profile(tmp_path, "sunrise.toml", **replace)
    lines = bad.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.startswith(f"{key} ="))
    assert check_lines(tmp_path) == (1, [f"pacing: {bad}:{line}: {says}"])
    # the other commands still read it (a timeline needs no recipient)
    assert invoke("timeline", str(bad), "--today", "2024-05-01").exit_code == 0


def test_check_accepts_to_empty_as_no_reminders(tmp_path: Path) -> None:
    profile(tmp_path, "sunrise.toml", **{"lead = true\n": "", 'to = ["lead"]': "to = []"})
    assert check_lines(tmp_path) == (0, [])


def test_a_preview_of_reminders_that_reach_no_one_is_an_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pacing.cli.main import cli

    text = (Path(__file__).resolve().parent.parent / "examples" / "sunrise-usd.toml").read_text()
    profile = tmp_path / "sunrise-usd.toml"
    profile.write_text(text.replace("lead = true\n", ""))  # `to = ["lead"]`, and no lead
    env = {"PACING_STATE_DIR": str(tmp_path / "state")}
    for args in (["remind", str(profile), "--dry-run"], ["remind", str(profile)]):
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exit_code == 1, result.output
        assert "reminders.to" in result.output and str(profile) in result.output
