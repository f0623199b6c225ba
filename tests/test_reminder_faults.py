"""Fault test: a burst of 2,000+ reminders; the daemon (a real `pacing remind` process) is killed
with SIGKILL at random points and restarted until done; every reminder reaches the real SMTP
server, exactly once counted by Message-ID.

SMTP has no idempotent submission: a kill after the server accepted a message but before the
ledger recorded it (a window of well under a millisecond per kill) makes the next run send that
one message again, with the same Message-ID, so receivers recognise it. The test allows at most
one such retry per kill and checks it is one."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from smtpd import SmtpServer
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from pacing.adapters.state import State, reminder
from pacing.reminders.daemon import Daemon, backoff
from pacing.reminders.ledger import LEASE, Ledger
from pacing.reminders.send import MaildirSender, SmtpConfig, SmtpSender

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
        own = (text + TEAM).replace("@riverbend.example.org", f"@lea-{n:02d}.example.org")
        (folder / f"lea-{n:02d}.toml").write_text(own)  # each LEA's own people


def test_sigkill_burst_every_reminder_exactly_once(tmp_path: Path) -> None:
    folder = tmp_path / "leas"
    folder.mkdir()
    write_leas(folder, 6)
    state = State(f"sqlite:///{tmp_path / 'pacing.db'}")
    Daemon([folder], state, MaildirSender(tmp_path / "unused"), lambda: T0).replan(force=True)
    ledger = Ledger(state)
    burst = [r for r in ledger.rows() if T0 < r.send_at <= T1 and r.status == "pending"]
    assert len(burst) >= 1000, len(burst)

    rng = random.Random(20241130)
    kills = 0
    with SmtpServer() as smtp:
        env = {**os.environ, "PACING_STATE_DIR": str(tmp_path), "PACING_SMTP_HOST": "127.0.0.1",
               "PACING_SMTP_PORT": str(smtp.port), "PACING_SMTP_TLS": "none",
               "PACING_MAIL_FROM": "cim@pacing.test",
               # about kills, not catch-up: a month of downtime would otherwise fold each
               # recipient's reminders into one catch-up email (tests/test_reminders.py)
               "PACING_LATE_SECONDS": str(90 * 86400)}  # fmt: skip
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
    done = [r for r in rows if r.status == "sent"]
    sent = {(r.last_error or "").removeprefix("sent in ") or r.message_id for r in done}
    assert kills >= 3
    assert not remaining(ledger), "reminders left unsent"
    assert len(done) >= 1000
    assert set(received) == sent  # nothing lost, nothing extra: each in one email that arrived
    retried = {mid: n for mid, n in received.items() if n > 1}
    assert all(n == 2 for n in retried.values()) and len(retried) <= kills, retried
    by_id = {r.message_id: r for r in rows}
    assert all(by_id[mid].attempts >= 2 for mid in retried)  # only a claim retaken after a kill
    print(f"{len(done)} reminders in {len(sent)} emails, {kills} kills, {len(retried)} resent "
          "with the same Message-ID")


def test_black_hole_server_costs_one_timeout(tmp_path: Path) -> None:
    """A server that accepts TCP and never greets: one timeout, then the whole batch is back in
    the ledger with its retry time (not one timeout per message)."""
    folder = tmp_path / "leas"
    folder.mkdir()
    write_leas(folder, 1)
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)  # the kernel accepts; nobody ever answers
        config = SmtpConfig(host="127.0.0.1", port=hole.getsockname()[1], tls="none", timeout=2)
        state = State(f"sqlite:///{tmp_path / 'pacing.db'}")
        daemon = Daemon([folder], state, SmtpSender(config), lambda: T1)
        daemon.late = dt.timedelta(days=90)  # one message per reminder, not a catch-up
        daemon.replan(force=True)
        started = time.monotonic()
        report = asyncio.run(daemon.step(T1))
        took = time.monotonic() - started
    assert report.retried >= 1 and report.sent == 0, report
    assert took < 2 * 2 + 3, took  # one timeout, not one per message
    rows = [r for r in Ledger(state).rows() if r.last_error]
    assert len(rows) > 30 and all(r.status == "pending" for r in rows)
    assert not [r for r in Ledger(state).rows() if r.status == "claimed"]
    with state.engine.connect() as conn:
        tries = {t for (t,) in conn.execute(sa.select(reminder.c.next_try)
                                            .where(reminder.c.last_error.is_not(None)))}  # fmt: skip
    assert tries == {(T1 + backoff(1)).replace(tzinfo=None)}


def remaining(ledger: Ledger) -> list[str]:
    """Burst reminders not yet sent (or folded): pending, or claimed by a killed run."""
    return [r.key for r in ledger.rows() if r.status in ("pending", "claimed") and r.send_at <= T1]


def _wait_until_drained(ledger: Ledger, proc: subprocess.Popen[bytes]) -> bool:
    """Until nothing is left to send and this daemon's loop runs (it has recorded a step: a
    SIGTERM before that would meet a process still starting, with no handler yet)."""
    for _ in range(1200):
        if proc.poll() is not None:
            return False
        if not remaining(ledger) and _running(ledger, proc.pid):
            return True
        time.sleep(0.1)
    return False


def _running(ledger: Ledger, pid: int) -> bool:
    with ledger.engine.connect() as conn:
        found = conn.execute(sa.text("SELECT count(*) FROM instance WHERE pid = :pid"),
                             {"pid": pid}).scalar()  # fmt: skip
    return bool(found)
