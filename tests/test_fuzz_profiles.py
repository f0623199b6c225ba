"""Property: whatever a profile file holds, `pacing check` and `pacing timeline` answer with exit
status 0 or 1, bad data as one line per problem on stderr, never a traceback, and in bounded
time (a hang is a failure).

The profiles are the example LEAs mutated by tests/fuzzing.py (deletions, duplications, type
swaps, huge and odd values, deep nesting, control characters, damaged TOML text), run in this
process through click's CliRunner (fast); bench/fuzz.py runs thousands of them as subprocesses.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from click.testing import CliRunner, Result
from fuzzing import mutate
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from pacing.cli.main import cli

SECONDS_PER_RUN = 20.0  # one command on one profile, generous for a loaded CI box
EXAMPLES = 800  # about 20 s on a 2-core box


class Hang(BaseException):
    """Raised in the CLI by the alarm: not an Exception, so nothing in pacing catches it."""


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliRunner]:
    state = tmp_path_factory.mktemp("state")
    yield CliRunner(env={"PACING_STATE_DIR": str(state), "NO_COLOR": "1", "COLUMNS": "100"})


def run(runner: CliRunner, *args: str) -> tuple[Result, float]:
    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"pacing {' '.join(args)} ran over {SECONDS_PER_RUN} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, SECONDS_PER_RUN)
    started = time.monotonic()
    try:
        result = runner.invoke(cli, list(args), catch_exceptions=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return result, time.monotonic() - started


def assert_clean(result: Result, path: Path, one_line: bool) -> None:
    crashed = result.exception if not isinstance(result.exception, SystemExit) else None
    assert crashed is None, f"{type(crashed).__name__}: {crashed}\n{path.read_text()[:2000]}"
    assert result.exit_code in (0, 1), (result.exit_code, result.stderr)
    stderr = result.stderr
    assert "Traceback" not in stderr and "\r" not in stderr, stderr
    lines = stderr.splitlines()
    for line in lines:
        assert line.startswith("pacing: "), f"not one line per problem: {line!r}"
        assert len(line) < 5000, f"a {len(line)}-character error line"
    if result.exit_code == 1:
        assert lines and str(path) in lines[0], stderr
        if one_line:
            assert len(lines) == 1, stderr


@settings(
    max_examples=EXAMPLES,
    deadline=None,  # the time bound is the alarm's, per command
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
    phases=[Phase.generate, Phase.shrink],  # no explain phase: it reruns each case often
)
@given(data=st.data())
def test_any_profile_is_exit_0_or_1_with_one_line_errors(
    runner: CliRunner, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    text = mutate(lambda n: data.draw(st.integers(0, n - 1)) if n > 1 else 0)
    path = tmp_path_factory.mktemp("fuzz") / "profile.toml"
    path.write_text(text, encoding="utf-8")
    checked, _ = run(runner, "check", str(path))
    assert_clean(checked, path, one_line=False)
    planned, _ = run(runner, "timeline", str(path), "--today", "2024-05-01", "--format", "json")
    assert_clean(planned, path, one_line=True)
    event(f"check exit {checked.exit_code}, timeline exit {planned.exit_code}")
    if checked.exit_code == 0:  # what check passes, the timeline plans
        assert planned.exit_code == 0, planned.stderr
