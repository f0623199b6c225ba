"""`pacing done`, `undo`, `status`, `remind --dry-run`, and the daemon's embedded default."""

from __future__ import annotations

import json
import mailbox
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
ITEM = "targeted-l3-2024/step-3/box-27-plan-for-improvement-link"
STEP_3 = '"targeted-l3-2024/step-3/box-28-submission" = 2024-12-05\n'


@pytest.fixture
def sunrise(tmp_path: Path) -> str:
    """Sunrise before its Step 3 submission (which, done, closes box 27)."""
    text = (ROOT / "examples" / "sunrise-usd.toml").read_text()
    assert STEP_3 in text
    path = tmp_path / "leas" / "sunrise-usd.toml"
    path.parent.mkdir()
    path.write_text(text.replace(STEP_3, ""))
    return str(path)


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PACING_STATE_DIR": str(tmp_path), "NO_COLOR": "1", **env}
    return subprocess.run([*CLI, *args], env=full, capture_output=True, text=True, check=False)


def status_of(tmp_path: Path, sunrise: str, today: str) -> str:
    out = run(tmp_path, "timeline", sunrise, "--today", today, "--format", "json").stdout
    return next(i["status"] for i in json.loads(out)["items"] if i["id"] == ITEM)


def test_done_and_undo_reach_the_timeline_and_the_feed(tmp_path: Path, sunrise: str) -> None:
    before = status_of(tmp_path, sunrise, "2024-11-20")
    assert before == "at-risk"  # should have started by October 28
    done = run(tmp_path, "done", sunrise, ITEM, "--on", "2024-11-19")
    assert done.returncode == 0 and "done: " + ITEM in done.stdout
    assert status_of(tmp_path, sunrise, "2024-11-20") == "done"
    ics = run(tmp_path, "ics", sunrise, SOURCE_DATE_EPOCH="1732000000").stdout
    assert "SUMMARY:Done: Plan for Improvement link" in ics.replace("\r\n ", "")
    assert run(tmp_path, "undo", sunrise, ITEM).returncode == 0
    assert status_of(tmp_path, sunrise, "2024-11-20") == before
    bad = run(tmp_path, "done", sunrise, "targeted-l3-2024/step-3/nope")
    assert bad.returncode == 1 and "ITEM-ID: unknown item" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_dry_run_lists_local_times_recipients_and_items(tmp_path: Path, sunrise: str) -> None:
    out = run(tmp_path, "remind", sunrise, "--dry-run", "--from", "2024-11-01",
              "--until", "2024-11-30").stdout  # fmt: skip
    lines = out.splitlines()
    assert (
        "2024-11-04 08:00 PST  sunrise-usd      due      lortega@sunrise.example.org  " + ITEM
        in lines
    )
    emails = [line for line in lines if not line.startswith("    + ")]  # one line per email
    assert all(" 08:00 " in line for line in emails)
    more = [line for line in lines if line.startswith("    + ")]  # what an email also carries
    assert all("sunrise-usd" in line for line in more)
    assert not run(tmp_path, "status").stdout.startswith("pending: 1")  # a preview stores nothing


def test_daemon_defaults_to_maildir_and_stops_on_sigterm(tmp_path: Path, sunrise: str) -> None:
    env = {**os.environ, "PACING_STATE_DIR": str(tmp_path), "PACING_NOW": "1732118400"}
    env.pop("PACING_SMTP_HOST", None)  # 2024-11-20 16:00 UTC = 08:00 in Los Angeles
    proc = subprocess.Popen([*CLI, "remind", sunrise], env=env, stderr=subprocess.PIPE, text=True)
    outbox = tmp_path / "outbox"
    deadline = time.monotonic() + 60
    while not (outbox / "new").is_dir() or not list((outbox / "new").iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert "reminders go to Maildir outbox" in (proc.stderr.read() if proc.stderr else "")
    subjects = [" ".join(str(m["Subject"]).split()) for m in mailbox.Maildir(outbox)]
    assert (  # box 27 is pacing's plan, not a CDE deadline: never "due"
        "Plan: finish by Dec 4: Plan for Improvement link - Sunrise USD" in subjects
    )
    status = run(tmp_path, "status", sunrise, PACING_NOW="2024-11-20T16:00:00Z").stdout
    assert "sent: " in status and "next " in status and "late: none" in status
    assert " PST " in status  # reminder times in the LEA's zone
    assert "daemon " in status and "last successful step 2024-11-20 08:0" in status
    later = run(tmp_path, "status", sunrise, PACING_NOW="2024-12-20T16:00:00Z").stdout
    assert "late: " in later and "not sent after their instant, the oldest due" in later


def test_bad_pacing_now_is_one_line(tmp_path: Path, sunrise: str) -> None:
    bad = run(tmp_path, "status", sunrise, PACING_NOW="next tuesday")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == ("pacing: environment: PACING_NOW: 'next tuesday' is not epoch "
                                  "seconds or an ISO 8601 instant (e.g. 2024-11-20T16:00:00Z)")  # fmt: skip
