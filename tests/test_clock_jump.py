"""Clock jumps (a VM resume, an NTP step) seen by the reminder daemon through `ClockGuard`,
with injected wall and monotonic clocks and a real SMTP sink: a forward jump sends no false
overdue notice and drops no future reminder; a jump that persists is believed; going back
re-plans what a believed jump folded."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from smtpd import SmtpServer
from zoneinfo import ZoneInfo

from pacing.adapters.state import State
from pacing.clock import ClockGuard
from pacing.reminders.daemon import Daemon
from pacing.reminders.ledger import Ledger
from pacing.reminders.send import SmtpConfig, SmtpSender

ROOT = Path(__file__).resolve().parent.parent
LA = ZoneInfo("America/Los_Angeles")
START = dt.datetime(2024, 10, 1, 7, 0, tzinfo=LA).astimezone(dt.UTC)
HOUR = dt.timedelta(hours=1)


class Clocks:
    """A wall clock that can jump and a monotonic clock that cannot."""

    def __init__(self) -> None:
        self.wall, self.mono = START, 1000.0

    def advance(self, delta: dt.timedelta) -> None:
        self.wall += delta
        self.mono += delta.total_seconds()


def daemon_for(tmp_path: Path, smtp: SmtpServer, clocks: Clocks) -> Daemon:
    folder = tmp_path / "leas"
    folder.mkdir(parents=True)
    text = (ROOT / "examples" / "riverbend-usd.toml").read_text().replace('"weekly"', '"none"')
    (folder / "riverbend-usd.toml").write_text(text)
    guard = ClockGuard(lambda: clocks.wall, lambda: clocks.mono)
    config = SmtpConfig(host="127.0.0.1", port=smtp.port, tls="none", address="cim@pacing.test")
    state = State(f"sqlite:///{tmp_path / 'state.db'}")
    daemon = Daemon([folder], state, SmtpSender(config), guard)
    guard.on_back = daemon.ledger.revive_folded
    daemon.replan(force=True)
    return daemon


def run_hours(daemon: Daemon, clocks: Clocks, hours: int) -> None:
    for _ in range(hours):
        clocks.advance(HOUR)
        daemon.replan()
        asyncio.run(daemon.step())


def sent(smtp: SmtpServer) -> list[str]:
    return sorted(str(m["Message-ID"]) for m in smtp.sink.messages)


def test_forward_jump_then_back_loses_nothing_and_sends_no_false_overdue(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    control = Clocks()
    with SmtpServer() as calm:
        plain = daemon_for(tmp_path / "calm", calm, control)
        run_hours(plain, control, 12 * 24)  # October 1-13 without a jump
        expected = sent(calm)
    clocks = Clocks()
    daemon = daemon_for(tmp_path / "jumpy", smtp, clocks)
    run_hours(daemon, clocks, 24)
    before = len(smtp.sink.messages)
    folded = {r.key for r in Ledger(daemon.state).rows() if r.status == "folded"}
    clocks.wall += dt.timedelta(days=40)  # an NTP step forward into November
    run_hours(daemon, clocks, 0)
    for _ in range(5):  # five minutes of steps while the jump is not believed
        clocks.advance(dt.timedelta(minutes=1))
        asyncio.run(daemon.step())
    assert len(smtp.sink.messages) == before  # nothing "overdue", nothing caught up
    assert {r.key for r in Ledger(daemon.state).rows() if r.status == "folded"} == folded
    clocks.wall -= dt.timedelta(days=40)  # corrected
    run_hours(daemon, clocks, 11 * 24)
    assert sent(smtp) == expected  # the same reminders as without the jump, each once: no
    assert len(expected) > before  # false overdue notice, no reminder lost


def test_a_jump_that_persists_is_believed_and_going_back_replans(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    clocks = Clocks()
    daemon = daemon_for(tmp_path, smtp, clocks)
    run_hours(daemon, clocks, 2)
    clocks.wall += dt.timedelta(days=20)  # to October 21: past the October 10 deadline
    for _ in range(12):  # twelve minutes: more than the ten-minute grace
        clocks.advance(dt.timedelta(minutes=1))
        asyncio.run(daemon.step())
    rows = Ledger(daemon.state).rows()
    folded = [r for r in rows if r.status == "folded"]
    assert folded, "believed: what fell past is folded or caught up"
    clocks.wall -= dt.timedelta(days=20)  # the clock was wrong after all
    asyncio.run(daemon.step())
    now = clocks.wall
    ahead = [r for r in Ledger(daemon.state).rows() if r.send_at > now]
    assert ahead and not [r for r in ahead if r.status == "folded"]  # re-planned, pending
    revived = {r.key for r in folded if r.send_at > now}
    run_hours(daemon, clocks, 20 * 24)
    final = {r.key: r.status for r in Ledger(daemon.state).rows()}
    assert revived and all(final[k] in ("sent", "folded", "cancelled") for k in revived)
    assert all(n == 1 for n in smtp.sink.ids().values())
