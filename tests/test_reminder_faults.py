"""Fault test: a burst of 2,000+ reminders; the daemon (a real `pacing remind` process) is killed
with SIGKILL at random points and restarted until done; every reminder reaches the real SMTP
server, exactly once counted by Message-ID.

SMTP has no idempotent submission: a kill after the server accepted a message but before the
ledger recorded it (a window of well under a millisecond per kill) makes the next run send that
one message again, with the same Message-ID, so receivers recognise it. The test allows at most
one such retry per kill and checks it is one."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from smtpd import SmtpServer
from zoneinfo import ZoneInfo

from pacing.adapters.state import State
from pacing.reminders.daemon import Daemon
from pacing.reminders.ledger import LEASE, Ledger
from pacing.reminders.send import MaildirSender

ROOT = Path(__file__).resolve().parent.parent
LA = ZoneInfo("America/Los_Angeles")
T0 = dt.datetime(2024, 11, 1, 7, 0, tzinfo=LA).astimezone(dt.UTC)  # planned while running
T1 = dt.datetime(2024, 11, 30, 12, 0, tzinfo=LA).astimezone(dt.UTC)  # back after downtime
ROLES = '["lead", "superintendent", "sped-admin", "selpa-rep", "sped-teacher"]'
TEAM = """
[[team]]
role = "sped-teacher"
name = "Kim Lee"
email = "klee@riverbend.example.org"
"""


def write_leas(folder: Path, count: int) -> None:
    base = (ROOT / "examples" / "riverbend-usd.toml").read_text()
    for n in range(count):
        text = (base.replace('id = "riverbend-usd"', f'id = "lea-{n:02d}"')
                .replace("Riverbend Unified", f"Burst {n:02d} Unified")
                .replace('"weekly"', '"none"').replace("offsets_days = [14, 7, 1]",
                                                       "offsets_days = " + str(list(range(40))))
                .replace('to = ["lead", "sped-admin"]', f"to = {ROLES}"))  # fmt: skip
        (folder / f"lea-{n:02d}.toml").write_text(text + TEAM)


def test_sigkill_burst_every_reminder_exactly_once(tmp_path: Path) -> None:
    folder = tmp_path / "leas"
    folder.mkdir()
    write_leas(folder, 6)
    state = State(f"sqlite:///{tmp_path / 'pacing.db'}")
    Daemon([folder], state, MaildirSender(tmp_path / "unused"), lambda: T0).replan(force=True)
    ledger = Ledger(state)
    burst = [r for r in ledger.rows() if T0 < r.send_at <= T1 and r.status == "pending"]
    assert len(burst) >= 2000, len(burst)

    rng = random.Random(20241130)
    kills = 0
    with SmtpServer() as smtp:
        env = {**os.environ, "PACING_STATE_DIR": str(tmp_path), "PACING_SMTP_HOST": "127.0.0.1",
               "PACING_SMTP_PORT": str(smtp.port), "PACING_SMTP_TLS": "none",
               "PACING_MAIL_FROM": "cim@pacing.test"}  # fmt: skip
        deadline = time.monotonic() + 600
        for run in range(80):
            # each restart comes back a lease later, so claims left by a killed run are retaken
            start = T1 + (LEASE + dt.timedelta(seconds=5)) * run
            env["PACING_NOW"] = str(start.timestamp())
            proc = subprocess.Popen(
                [sys.executable, "-c", "from pacing.cli.main import main; main()", "remind",
                 str(folder)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if not remaining(ledger) or run >= 20:
                finished = _wait_until_drained(ledger, proc)
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=30) == 0
                if finished:
                    break
                continue
            time.sleep(rng.uniform(0.5, 3.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            assert time.monotonic() < deadline
        received = smtp.sink.ids()

    rows = ledger.rows()
    sent = {r.message_id for r in rows if r.status == "sent"}
    assert kills >= 3
    assert not remaining(ledger), "reminders left unsent"
    assert len(sent) >= 2000
    assert set(received) == sent  # nothing lost, nothing extra: one Message-ID per reminder
    retried = {mid: n for mid, n in received.items() if n > 1}
    assert all(n == 2 for n in retried.values()) and len(retried) <= kills, retried
    by_id = {r.message_id: r for r in rows}
    assert all(by_id[mid].attempts >= 2 for mid in retried)  # only a claim retaken after a kill
    print(f"{len(sent)} reminders, {kills} kills, {len(retried)} resent with the same Message-ID")


def remaining(ledger: Ledger) -> list[str]:
    """Burst reminders not yet sent (or folded): pending, or claimed by a killed run."""
    return [r.key for r in ledger.rows() if r.status in ("pending", "claimed") and r.send_at <= T1]


def _wait_until_drained(ledger: Ledger, proc: subprocess.Popen[bytes]) -> bool:
    for _ in range(1200):
        if proc.poll() is not None:
            return False
        if not remaining(ledger):
            return True
        time.sleep(0.1)
    return False
