"""The shared icscheck/feedcheck kit (../shared/tools/icscheck), installed by its setup.sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent.parent / "shared" / "tools" / "icscheck"


def kit(tool: str) -> Path:
    path = KIT / tool
    assert (KIT / ".venv").is_dir(), f"run {KIT}/setup.sh first (.ci/run does)"
    return path


def icscheck(path: Path) -> str:
    done = subprocess.run(
        [str(kit("icscheck")), "-q", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RESULT: PASS (6/6 checks passed)" in done.stdout, done.stdout
    return done.stdout


def feedcheck(url: str) -> str:
    done = subprocess.run(
        [str(kit("feedcheck")), "--tz", "America/Los_Angeles", "--from", "2024-01-01",
         "--to", "2027-12-31", url],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RESULT: PASS" in done.stdout, done.stdout
    return done.stdout
