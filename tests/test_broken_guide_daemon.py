"""A guide with a typo in the folder's guides/ (next year's, being written) never freezes the
reminders of the folder: a running `pacing remind` keeps planning every other LEA (a done mark
cancels its reminders, a new profile gets its own), holds only an LEA whose program has no
usable guide, and names the broken guide."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from pg import BURST_AT, environment

ROOT = Path(__file__).resolve().parent.parent
PACING = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
BOX = "sig-dis-2024/step-4/unduplicated-count/2025"
TYPO = """id = "targeted-l3-2025"
label = "Targeted Level 3, 2025-26 cohort"
applies_to = { tiers = ["targeted"], levels = [3], cohorts = [2025] }
[periods.year]
start = 2025-07-01
end = 2026-06-3O
"""


def counts(state: Path, lea: str) -> dict[str, int]:
    try:
        with sqlite3.connect(state / "pacing.db") as db:
            rows = db.execute("SELECT status, count(*) FROM reminder WHERE lea = ? GROUP BY "
                              "status", (lea,)).fetchall()  # fmt: skip
    except sqlite3.OperationalError:
        return {}
    return dict(rows)


def item_rows(state: Path, lea: str, item: str) -> dict[str, int]:
    with sqlite3.connect(state / "pacing.db") as db:
        rows = db.execute("SELECT status, count(*) FROM reminder WHERE lea = ? AND item_ids = ? "
                          "GROUP BY status", (lea, item)).fetchall()  # fmt: skip
    return dict(rows)


def wait_for(what: object, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    start = time.monotonic()
    while not what():  # type: ignore[operator]
        assert proc.poll() is None, "the daemon stopped"
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.3)


def test_a_broken_guide_holds_only_its_own_leas(tmp_path: Path) -> None:
    folder, state = tmp_path / "leas", tmp_path / "state"
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns("*.json"))
    (folder / "guides").mkdir()
    early = BURST_AT.replace(month=9, day=3)  # September 2024: box 19 is still ahead
    env = environment(PACING_STATE_DIR=str(state), PACING_WATCH_SECONDS="1",
                      PACING_NOW=f"{early:%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*PACING, "remind", str(folder)], env=env, stdout=out,
                                stderr=out)  # fmt: skip
    try:
        wait_for(lambda: counts(state, "riverbend-usd").get("pending", 0) > 10, proc)
        (folder / "guides" / "targeted-l3-2025.toml").write_text(TYPO)  # never validated
        pending = item_rows(state, "riverbend-usd", BOX).get("pending", 0)
        assert pending
        done = subprocess.run([*PACING, "done", str(folder / "riverbend-usd.toml"), BOX],
                              env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        wait_for(lambda: not item_rows(state, "riverbend-usd", BOX).get("pending"), proc)
        assert item_rows(state, "riverbend-usd", BOX).get("cancelled", 0) >= pending
        # a new LEA of the 2024 cohort gets its reminders; one of the 2025 cohort is held
        text = (folder / "riverbend-usd.toml").read_text()
        (folder / "pine-usd.toml").write_text(text.replace('id = "riverbend-usd"',
                                                           'id = "pine-usd"'))  # fmt: skip
        (folder / "next-usd.toml").write_text(text.replace('id = "riverbend-usd"', 'id = '
                                              '"next-usd"').replace("cohort = 2024", "cohort = 2025"))  # fmt: skip
        wait_for(lambda: counts(state, "pine-usd").get("pending", 0) > 10, proc)
        time.sleep(3)
        assert not counts(state, "next-usd")
        said = log.read_text()
        assert "targeted-l3-2025.toml" in said and "next-usd.toml" in said
    finally:
        proc.terminate()
        proc.wait(30)
