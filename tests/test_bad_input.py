"""Bad input, as a user meets it: every file in tests/bad/ must fail with one clear line.

Each file's first line is `# expect: <text>`: text the error must contain (the field path
and, where the parser knows it, the line as `:<N>:`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "bad"
# bad guides: not in bad/guides/, which would be the guides of the bad profiles beside it
BAD_GUIDES = ROOT / "tests" / "bad-guides"
CASES = sorted([*BAD.rglob("*.toml"), *BAD_GUIDES.rglob("*.toml")])
SUNRISE = ROOT / "examples" / "sunrise-usd.toml"
TIMELINE_CASES = [
    "toml-unclosed-string.toml",
    "tier-unknown.toml",
    "name-crlf-injection.toml",
    "override-unknown-item.toml",
    "team-unknown-role.toml",
    "not-utf8.toml",
]
CRLF_CASES = ["name-crlf-injection.toml", "override-key-crlf.toml"]


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    """The real CLI in a subprocess; output kept as bytes so a raw CR cannot hide."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "80"}
    code = "from pacing.cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        env=env,
        check=False,
        timeout=120,
        cwd=ROOT,
    )


def expected(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    assert first.startswith("# expect: "), f"{path}: first line must be '# expect: <text>'"
    text = first.removeprefix("# expect: ").strip()
    assert text, f"{path}: empty expectation"
    return text


def case_id(path: Path) -> str:
    return path.relative_to(BAD.parent).as_posix()


def assert_one_line_errors(result: subprocess.CompletedProcess[bytes], path: Path) -> str:
    assert b"\r" not in result.stderr, result.stderr
    stderr = result.stderr.decode("utf-8")
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert lines, "no error on stderr"
    assert lines[0].startswith("pacing: "), stderr
    assert str(path) in lines[0], stderr
    for line in lines:
        assert line.startswith("pacing: "), f"continuation line (not one line per error): {line!r}"
    return stderr


def test_the_corpus_is_there() -> None:
    names = {p.name for p in CASES}
    assert len(CASES) >= 23
    assert {*TIMELINE_CASES, *CRLF_CASES} <= names


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_check_rejects_with_one_clear_line(path: Path) -> None:
    result = run("check", str(path))
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 1, f"exit {result.returncode}\n{stderr}{result.stdout!r}"
    stderr = assert_one_line_errors(result, path)
    assert expected(path) in stderr


@pytest.mark.parametrize("name", TIMELINE_CASES)
def test_timeline_rejects_with_one_line(name: str) -> None:
    path = BAD / name
    result = run("timeline", str(path), "--today", "2024-05-01")
    assert result.returncode == 1, result.stderr
    stderr = assert_one_line_errors(result, path)
    assert len(stderr.splitlines()) == 1, stderr
    assert expected(path) in stderr
    assert result.stdout == b""


@pytest.mark.parametrize("name", CRLF_CASES)
def test_hostile_text_stays_on_one_line(name: str) -> None:
    result = run("check", str(BAD / name))
    assert result.returncode == 1
    assert b"\r" not in result.stderr
    assert result.stderr.count(b"\n") == 1 and result.stderr.endswith(b"\n"), result.stderr
    message = result.stderr.decode("utf-8")
    assert "\\r" in message and "\\n" in message  # shown escaped, never raw


def test_check_goes_on_past_bad_files() -> None:
    result = run("check", str(BAD), str(BAD_GUIDES))
    assert result.returncode == 1
    output = result.stdout.decode("utf-8", "replace") + result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in output
    for path in CASES:
        assert str(path) in output, f"{path} was not checked"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--today", "2024-02-30"), "'2024-02-30' is not a valid date"),
        (("--format", "xml"), "'xml' is not one of"),
        (("--step", "9"), "--step"),
        (("--upcoming", "-1"), "--upcoming"),
    ],
    ids=["impossible-today", "unknown-format", "step-out-of-range", "negative-upcoming"],
)
def test_usage_errors_exit_2(args: tuple[str, ...], says: str) -> None:
    result = run("timeline", str(SUNRISE), *args)
    stderr = result.stderr.decode("utf-8")
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert says in stderr
    assert result.stdout == b""


def test_missing_file_is_a_usage_error() -> None:
    result = run("check", str(BAD / "no-such-file.toml"))
    stderr = result.stderr.decode("utf-8")
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr and "does not exist" in stderr
