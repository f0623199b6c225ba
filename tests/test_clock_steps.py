"""The wall clock stepped under a running `pacing remind` (libfaketime, driven from outside the
process through its timestamp file; the monotonic clock is left alone, as an NTP step or a VM
snapshot restore leaves it): back 2 days while a burst falls due, then back 30 days, forward
30 days. Nothing delivered is sent again, the burst goes out once the clock is right again,
within a few watches, never a day later."""

from __future__ import annotations

import datetime as dt
import glob
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from smtpd import SmtpServer

from pg import LA, environment, remind, write_burst

DAY = dt.timedelta(days=1)
BURST_AT = dt.datetime(2024, 10, 11, 0, 0, tzinfo=LA).astimezone(dt.UTC)  # Friday's first
WATCH = 1.0  # PACING_WATCH_SECONDS: how often the daemon re-reads the clock at the least
LIBFAKETIME = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))


class SteppedClock:
    """The daemon's wall clock, as an offset from the real one (libfaketime's file)."""

    def __init__(self, path: Path, start: dt.datetime) -> None:
        self.path = path
        self.offset = start - dt.datetime.now(dt.UTC)
        self.write()

    def write(self) -> None:
        self.path.write_text(f"{self.offset.total_seconds():+.0f}\n")

    def step(self, delta: dt.timedelta) -> None:
        self.offset += delta
        self.write()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def env(self) -> dict[str, str]:
        assert LIBFAKETIME, "libfaketime is missing: tests/setup.sh installs Debian's faketime"
        return {"LD_PRELOAD": LIBFAKETIME[0], "FAKETIME_TIMESTAMP_FILE": str(self.path),
                "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "NO_FAKE_STAT": "1", "DONT_FAKE_MONOTONIC": "1"}  # fmt: skip


def ledger(state: Path) -> list[tuple[str, str, dt.datetime]]:
    """The daemon's ledger rows (none while its store is still being made)."""
    try:
        with sqlite3.connect(state / "pacing.db") as db:
            rows = db.execute("SELECT key, status, send_at FROM reminder").fetchall()
    except sqlite3.OperationalError:
        return []
    return [(k, s, dt.datetime.fromisoformat(t).replace(tzinfo=dt.UTC)) for k, s, t in rows]


def due_and_open(state: Path, until: dt.datetime) -> int:
    return sum(1 for _, s, at in ledger(state) if at <= until and s in ("pending", "claimed"))


def wait_for(what: object, seconds: float, proc: subprocess.Popen[bytes]) -> float:
    """Seconds until `what()` held (a failure after `seconds`, or if the daemon died)."""
    start = time.monotonic()
    while not what():  # type: ignore[operator]
        assert proc.poll() is None, "the daemon died"
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.2)
    return time.monotonic() - start


def test_clock_steps_back_and_forward_resend_nothing_and_lose_nothing(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    folder, state = tmp_path / "leas", tmp_path / "state"
    folder.mkdir()
    write_burst(folder, leas=10, teachers=1, days=30)
    for profile in folder.glob("*.toml"):  # at midnight: the burst is a day of its own, not
        # carried by the start's catch-up (which takes the rest of each person's day)
        profile.write_text(profile.read_text().replace('send_at = "07:30"', 'send_at = "00:00"'))
    clock = SteppedClock(tmp_path / "faketime", BURST_AT - dt.timedelta(seconds=40))
    env = environment(PACING_STATE_DIR=str(state), PACING_SMTP_HOST="127.0.0.1",
                      PACING_SMTP_PORT=str(smtp.port), PACING_WATCH_SECONDS=str(WATCH),
                      **clock.env())  # fmt: skip
    log = tmp_path / "daemon.log"
    proc = remind(folder, env, log)
    try:
        # the week before the burst is caught up at start (one email per person; what each
        # has later that day comes along, so part of the burst may go out at once)
        wait_for(lambda: smtp.sink.messages and due_and_open(state, clock.now()) == 0, 60, proc)
        caught_up = len(smtp.sink.messages)
        waiting = sum(1 for _, s, at in ledger(state) if at == BURST_AT and s == "pending")
        assert waiting > 100
        # back 2 days before the burst: by this clock it is not due, and what was delivered
        # stays delivered, while the burst's instant passes in real time
        clock.step(-2 * DAY)
        time.sleep(3 * WATCH)
        while clock.now() + 2 * DAY < BURST_AT + dt.timedelta(seconds=5):
            time.sleep(0.5)
        assert len(smtp.sink.messages) == caught_up
        clock.step(2 * DAY)  # the clock is right again: the burst is due, and goes out
        restored = clock.now()
        took = wait_for(lambda: due_and_open(state, restored) == 0, 60, proc)
        print(f"{waiting} reminders of the burst sent {took:.1f} s after the clock came back")
        assert took < 30 * WATCH + 30  # within watches, not the day the old clock slept to
        after_burst = len(smtp.sink.messages)
        assert after_burst > caught_up
        for delta in (-30 * DAY, 30 * DAY):  # a month back, a month forward (not believed)
            clock.step(delta)
            time.sleep(4 * WATCH + 2)
            clock.step(-delta)
            time.sleep(4 * WATCH + 2)
            assert len(smtp.sink.messages) == after_burst, f"a step of {delta} sent email"
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(30)
    ids = Counter(str(m["Message-ID"]) for m in smtp.sink.messages)
    assert ids and max(ids.values()) == 1, "a reminder was sent twice"
    rows = ledger(state)
    assert not [k for k, s, at in rows if at <= restored and s in ("pending", "claimed")]
    assert not [k for k, s, at in rows if at == BURST_AT and s != "sent"]
    text = log.read_text()
    assert "jumped back" in text and "jumped forward" in text


def test_pacing_now_counts_from_the_process_start_not_from_the_import() -> None:
    """Reading profiles before `pacing.clock` is imported does not hold the clock back."""
    code = ("import time; time.sleep(1.5)\n"
            "from pacing.clock import now; print(now().isoformat())")  # fmt: skip
    env = environment(PACING_NOW="2024-10-11T14:30:00Z")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True, timeout=60)  # fmt: skip
    started = dt.datetime(2024, 10, 11, 14, 30, tzinfo=dt.UTC)
    assert dt.datetime.fromisoformat(done.stdout.strip()) - started >= dt.timedelta(seconds=1)
