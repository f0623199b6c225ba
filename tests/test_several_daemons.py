"""Several daemons, real peers: `pacing remind` processes on one fresh PostgreSQL database (or
one SQLite state dir) and an aiosmtpd sink; every reminder is counted by Message-ID."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from smtpd import Sink, SmtpServer
from typing import Any

from pg import BURST_AT, environment, fresh_database, remind, write_burst

from pacing.adapters.state import State
from pacing.reminders.daemon import Daemon
from pacing.reminders.ledger import Ledger, Row
from pacing.reminders.send import MaildirSender


def planned(folder: Path, scratch: Path, at: dt.datetime) -> list[Row]:
    """The ledger a daemon plans at `at` (in a scratch SQLite file): what the burst holds."""
    state = State(f"sqlite:///{scratch}")
    Daemon([folder], state, MaildirSender(scratch.parent / "unused"), lambda: at).replan(True)
    rows = Ledger(state).rows()
    state.engine.dispose()
    return rows


def unfinished(ledger: Ledger, until: dt.datetime) -> int:
    return sum(1 for r in ledger.rows() if r.status in ("pending", "claimed")
               and r.send_at <= until)  # fmt: skip


def wait_for(condition: Any, seconds: float, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        assert all(p.poll() is None for p in procs), "a daemon died"
        time.sleep(0.2)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    return [p.wait(timeout=60) for p in procs]


def carrier_of(row: Row) -> str:
    """The Message-ID of the email that carried a sent reminder (its own, or its carrier's)."""
    return (row.last_error or "").removeprefix("sent in ") or row.message_id


def check_exactly_once(ledger: Ledger, received: Counter[str], burst: set[str]) -> list[Row]:
    """Nothing lost: every burst reminder sent in an email that arrived; nothing extra."""
    rows = ledger.rows()
    by_key = {r.key: r for r in rows}
    sent = {carrier_of(r) for r in rows if r.status == "sent"}
    assert set(received) == sent
    assert all(by_key[k].status == "sent" for k in burst)
    return rows


def test_three_daemons_on_postgresql_send_a_burst_exactly_once(tmp_path: Path) -> None:
    folder = tmp_path / "leas"
    folder.mkdir()
    write_burst(folder, leas=5, teachers=40)
    burst = {r.key for r in planned(folder, tmp_path / "scratch.db", BURST_AT)
             if r.send_at == BURST_AT}  # fmt: skip
    assert len(burst) >= 2000, len(burst)
    with fresh_database() as url, SmtpServer() as smtp:
        env = environment(PACING_DB=url, PACING_STATE_DIR=str(tmp_path),
                          PACING_SMTP_HOST="127.0.0.1", PACING_SMTP_PORT=str(smtp.port),
                          PACING_NOW=f"{BURST_AT:%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip
        procs = [remind(folder, env, tmp_path / f"remind-{n}.log") for n in range(3)]
        ledger = Ledger(State(url))
        wait_for(lambda: len(smtp.sink.ids()) > 100 and not unfinished(ledger, BURST_AT),
                 300, procs)  # fmt: skip
        assert stop_all(procs) == [0, 0, 0]
        received = smtp.sink.ids()
        rows = check_exactly_once(ledger, received, burst)
        assert all(n == 1 for n in received.values()), "sent twice"
        by = Counter(
            r.claimed_by.split(":")[1] for r in rows if r.status == "sent" and r.claimed_by
        )
        assert len(by) == 3, by  # all three took part
        ledger.engine.dispose()
    logs = "".join((tmp_path / f"remind-{n}.log").read_text() for n in range(3))
    assert "Traceback" not in logs and "UniqueViolation" not in logs
    print(f"{len(burst)} burst reminders, {len(received)} messages; by daemon: {dict(by)}")


def test_killed_and_paused_daemons_lose_nothing(tmp_path: Path) -> None:
    """One daemon SIGKILLed mid-burst, another SIGSTOPped past its lease and resumed: every
    reminder still goes out; at most the one in flight per kill is sent again; once resumed,
    the paused daemon sees its claims were taken and sends nothing more of them."""
    folder = tmp_path / "leas"
    folder.mkdir()
    write_burst(folder, leas=5, teachers=40)
    burst = {r.key for r in planned(folder, tmp_path / "scratch.db", BURST_AT)
             if r.send_at == BURST_AT}  # fmt: skip
    lease = 3.0
    with fresh_database() as url, SmtpServer() as smtp:
        env = environment(PACING_DB=url, PACING_STATE_DIR=str(tmp_path),
                          PACING_SMTP_HOST="127.0.0.1", PACING_SMTP_PORT=str(smtp.port),
                          PACING_NOW=f"{BURST_AT:%Y-%m-%dT%H:%M:%SZ}",
                          PACING_LEASE_SECONDS=str(lease))  # fmt: skip
        procs = [remind(folder, env, tmp_path / f"remind-{n}.log") for n in range(3)]
        ledger = Ledger(State(url))
        wait_for(lambda: len(smtp.sink.messages) > 40, 300, procs)  # of about 210
        killed, paused, steady = procs
        killed.send_signal(signal.SIGKILL)
        paused.send_signal(signal.SIGSTOP)
        assert killed.wait(timeout=10) == -signal.SIGKILL
        time.sleep(lease * 3)  # past the lease: the steady daemon takes the claims over
        before = smtp.sink.ids()
        paused.send_signal(signal.SIGCONT)
        wait_for(lambda: not unfinished(ledger, BURST_AT), 300, [paused, steady])
        time.sleep(lease)
        assert stop_all([paused, steady]) == [0, 0]
        received = smtp.sink.ids()
        check_exactly_once(ledger, received, burst)
        resent = {mid: n for mid, n in received.items() if n > 1}
        assert all(n == 2 for n in resent.values()) and len(resent) <= 2, resent
        again = [m for m in smtp.sink.messages[sum(before.values()):]
                 if before.get(str(m["Message-ID"]))]  # fmt: skip
        assert len(again) <= 1  # at most the paused one's message in flight at SIGSTOP
        ledger.engine.dispose()
    paused_log = (tmp_path / "remind-1.log").read_text()
    assert "Traceback" not in paused_log + (tmp_path / "remind-2.log").read_text()
    print(f"{len(burst)} burst reminders, {len(received)} messages, resent: {len(resent)}; "
          f"paused daemon: {paused_log.count('claim lost')} 'claim lost' lines")  # fmt: skip


class Slow(Sink):
    """Takes a second per message (the daemon waits for each answer)."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(1.0)
        return await super().handle_DATA(server, session, envelope)


def test_slow_server_two_bursts_20_s_apart_both_sent_on_sqlite(tmp_path: Path) -> None:
    """One daemon, the embedded SQLite default, PACING_NOW: a step that outlasts the gap to
    the next instant is followed at once by the next step (once, only the first was sent)."""
    folder = tmp_path / "leas"
    folder.mkdir()
    write_burst(folder, leas=2, teachers=0, days=8)
    second = folder / "lea-01.toml"
    second.write_text(second.read_text().replace('send_at = "07:30"', 'send_at = "07:30:20"'))
    rows = planned(folder, tmp_path / "scratch.db", BURST_AT)
    second = BURST_AT + dt.timedelta(seconds=20)
    both = {r.key for r in rows if r.send_at in (BURST_AT, second)}
    assert {r.send_at for r in rows if r.key in both} == {BURST_AT, second}
    with SmtpServer() as smtp:
        smtp.controller.handler = smtp.sink = Slow()
        env = environment(PACING_STATE_DIR=str(tmp_path / "state"),
                          PACING_SMTP_HOST="127.0.0.1", PACING_SMTP_PORT=str(smtp.port),
                          PACING_NOW=f"{BURST_AT - dt.timedelta(seconds=5):%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip
        proc = remind(folder, env, tmp_path / "remind.log")
        try:
            time.sleep(3)  # the daemon made the state db
            ledger = Ledger(State(f"sqlite:///{tmp_path / 'state' / 'pacing.db'}"))

            def sent() -> bool:
                return all(r.status == "sent" for r in ledger.rows() if r.key in both)

            wait_for(sent, 150, [proc])
        finally:
            assert stop_all([proc]) == [0]
        received = smtp.sink.ids()
        assert all(n == 1 for n in received.values())
        check_exactly_once(ledger, received, both)
        ledger.engine.dispose()
    log = (tmp_path / "remind.log").read_text()
    assert "Traceback" not in log


def test_two_daemons_on_one_sqlite_state_dir_never_double_send(tmp_path: Path) -> None:
    """The fenced claims on one SQLite file: leases short enough to run out while a batch is
    being sent to a slowish server, unless renewed; no Message-ID arrives twice."""
    folder = tmp_path / "leas"
    folder.mkdir()
    write_burst(folder, leas=2, teachers=4)
    rows = planned(folder, tmp_path / "scratch.db", BURST_AT)
    burst = {r.key for r in rows if r.send_at == BURST_AT}

    class Slowish(Sink):
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            await asyncio.sleep(0.03)
            return await super().handle_DATA(server, session, envelope)

    with SmtpServer() as smtp:
        smtp.controller.handler = smtp.sink = Slowish()
        env = environment(PACING_STATE_DIR=str(tmp_path / "state"),
                          PACING_SMTP_HOST="127.0.0.1", PACING_SMTP_PORT=str(smtp.port),
                          PACING_NOW=f"{BURST_AT:%Y-%m-%dT%H:%M:%SZ}",
                          PACING_LEASE_SECONDS="2")  # fmt: skip
        procs = [remind(folder, env, tmp_path / f"remind-{n}.log") for n in range(2)]
        time.sleep(3)  # the first one made the state db
        ledger = Ledger(State(f"sqlite:///{tmp_path / 'state' / 'pacing.db'}"))
        wait_for(lambda: not unfinished(ledger, BURST_AT), 300, procs)
        assert stop_all(procs) == [0, 0]
        received = smtp.sink.ids()
        check_exactly_once(ledger, received, burst)
        assert all(n == 1 for n in received.values()), "sent twice"
    logs = "".join((tmp_path / f"remind-{n}.log").read_text() for n in range(2))
    assert "Traceback" not in logs
    print(f"{len(burst)} burst reminders, {len(received)} messages, none twice")
