"""The project's calendar validation kit, tests/kit/ (installed by tests/setup.sh)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

KIT = Path(__file__).resolve().parent / "kit"


def kit(tool: str) -> Path:
    assert (KIT / ".venv").is_dir(), "run tests/setup.sh first (.ci/run does)"
    return KIT / tool


def icscheck(path: Path) -> str:
    """icscheck's report on one .ics file; fails unless every check passed."""
    done = subprocess.run(
        [str(kit("icscheck")), str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^RESULT: PASS \((\d+)/\1 checks passed\)$", done.stdout, re.M), done.stdout
    return done.stdout


def feedcheck(url: str) -> str:
    """feedcheck's report on a served feed; fails unless every step passed."""
    done = subprocess.run(
        [str(kit("feedcheck")), "--tz", "America/Los_Angeles", "--from", "2024-01-01",
         "--to", "2027-12-31", url],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RESULT: PASS" in done.stdout, done.stdout
    return done.stdout
