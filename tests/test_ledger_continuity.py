"""An emptied, replaced or restored ledger never sends again what was delivered: `pacing remind`
on a real PostgreSQL and on the state dir's SQLite, after TRUNCATE, DELETE, a new database, a
TRUNCATE while running, and a restore of an older backup; `pacing db migrate --to URL` moves
the ledger with its marks; `--accept-empty-ledger` folds what was due before the high-water
mark."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from smtpd import SmtpServer

import psycopg
from pg import BURST_AT, environment, fresh_database, remind, write_burst

PACING = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
DAY = dt.timedelta(days=1)


def at(moment: dt.datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


@contextlib.contextmanager
def daemon(folder: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = remind(folder, env, log)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)


def settle(smtp: SmtpServer, proc: subprocess.Popen[bytes], quiet: float = 4.0) -> int:
    """Wait until no email has arrived for `quiet` seconds (at most 90 s): how many came."""
    seen, since, start = -1, time.monotonic(), time.monotonic()
    while time.monotonic() - since < quiet:
        assert proc.poll() is None, "the daemon stopped"
        assert time.monotonic() - start < 90, "email kept coming"
        if len(smtp.sink.messages) != seen:
            seen, since = len(smtp.sink.messages), time.monotonic()
        time.sleep(0.3)
    return seen


def refused(folder: Path, env: dict[str, str], *args: str) -> str:
    """`pacing remind` stops at once: exit 1, one line, no traceback; that line."""
    done = subprocess.run([*PACING, "remind", *args, str(folder)], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = [x for x in done.stderr.splitlines() if not x.startswith(("pacing: reminders go",
                                                                      "ts=", "pacing: emails"))]  # fmt: skip
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def setup(tmp_path: Path, smtp: SmtpServer, **values: str) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "leas"
    folder.mkdir(exist_ok=True)
    write_burst(folder, leas=4, teachers=1, days=30)
    env = environment(PACING_STATE_DIR=str(tmp_path / "state"), PACING_SMTP_HOST="127.0.0.1",
                      PACING_SMTP_PORT=str(smtp.port), PACING_WATCH_SECONDS="1",
                      PACING_NOW=at(BURST_AT), **values)  # fmt: skip
    return folder, env


def test_postgresql_new_migrated_truncated_while_running_and_dropped_never_resends(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    with fresh_database() as url, fresh_database() as other:
        folder, env = setup(tmp_path, smtp, PACING_DB=url)
        with daemon(folder, env, tmp_path / "first.log") as proc:
            delivered = settle(smtp, proc)
        assert delivered >= 8  # one email per person (4 LEAs, 2 people each)
        moved = {**env, "PACING_DB": other}
        assert "is new or emptied" in refused(folder, moved)  # a new database: not a fresh start
        migrated = subprocess.run([*PACING, "db", "migrate", "--to", other], env=env,
                                  capture_output=True, text=True, timeout=60)  # fmt: skip
        assert migrated.returncode == 0 and "copied into" in migrated.stdout, migrated.stderr
        log = tmp_path / "moved.log"
        with daemon(folder, moved, log) as proc:
            assert settle(smtp, proc) == delivered  # the ledger moved: nothing sent again
            with psycopg.connect(other, autocommit=True) as db:
                db.execute("TRUNCATE reminder")  # while it runs: it stops at its next watch
            assert proc.wait(30) == 1
        assert "lost rows" in log.read_text()
        assert "lost rows" in refused(folder, moved)
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        assert "is new or emptied" in refused(folder, env)
    assert len(smtp.sink.messages) == delivered and max(smtp.sink.ids().values()) == 1


def test_accept_empty_ledger_folds_what_was_due_before_the_high_water_mark(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    folder, env = setup(tmp_path, smtp)
    with daemon(folder, env, tmp_path / "first.log") as proc:
        delivered = settle(smtp, proc)
    db = tmp_path / "state" / "pacing.db"
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM reminder")
    said = refused(folder, env)
    assert "lost rows" in said, said
    assert len(smtp.sink.messages) == delivered
    accept = {**env, "PACING_ACCEPT_EMPTY_LEDGER": "1"}  # as --accept-empty-ledger does
    with daemon(folder, accept, tmp_path / "accepted.log") as proc:
        assert settle(smtp, proc) == delivered  # everything due before the mark: folded
    with sqlite3.connect(db) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM reminder GROUP BY status"))
        reasons = {r for (r,) in conn.execute("SELECT last_error FROM reminder WHERE status = "
                                              "'folded'")}  # fmt: skip
    assert statuses.get("folded") and "pending" in statuses
    assert any("high-water mark" in (r or "") for r in reasons)
    # and later reminders go out as usual
    later = {**env, "PACING_NOW": at(BURST_AT + 3 * DAY)}
    with daemon(folder, later, tmp_path / "later.log") as proc:
        assert settle(smtp, proc) > delivered
    assert max(smtp.sink.ids().values()) == 1


def test_restoring_an_older_backup_never_resends_what_came_after_it(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    folder, env = setup(tmp_path, smtp)
    db = tmp_path / "state" / "pacing.db"
    with daemon(folder, env, tmp_path / "first.log") as proc:
        first = settle(smtp, proc)
    backup = tmp_path / "backup.db"
    with sqlite3.connect(db) as source, sqlite3.connect(backup) as copy:
        source.backup(copy)
    later = {**env, "PACING_NOW": at(BURST_AT + 3 * DAY)}  # Monday's burst
    with daemon(folder, later, tmp_path / "second.log") as proc:
        second = settle(smtp, proc)
    assert second > first
    for leftover in (db.with_name("pacing.db-wal"), db.with_name("pacing.db-shm")):
        leftover.unlink(missing_ok=True)
    os.replace(backup, db)
    assert "older backup" in refused(folder, later)
    accepted = subprocess.Popen([*PACING, "remind", "--accept-empty-ledger", str(folder)],
                                env=later, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert settle(smtp, accepted) == second  # Monday's burst: not sent again
    finally:
        accepted.terminate()
        accepted.wait(30)
    assert max(smtp.sink.ids().values()) == 1


def test_the_marks_rule_each_case() -> None:
    from pacing.reminders.continuity import Mark, mismatch

    t = dt.datetime(2024, 10, 11, 14, 30, tzinfo=dt.UTC)
    ours, local = Mark("a", t, "db"), Mark("a", t, "db")
    assert mismatch(Mark(None, None), None, None) is None  # a new store, a new state dir
    assert mismatch(Mark(None, None), t, None) is None  # made before the marks: adopted
    assert mismatch(Mark(None, None), None, Mark("a", None)) is None  # nothing delivered yet
    assert "new or emptied" in (mismatch(Mark(None, None), None, local) or "")
    assert mismatch(ours, t, local) is None
    assert mismatch(ours, t + DAY, local) is None  # another instance delivered since
    assert "lost rows" in (mismatch(ours, None, local) or "")  # TRUNCATE, DELETE
    assert "lost rows" in (mismatch(ours, t - DAY, None) or "")  # on another machine too
    assert mismatch(ours, None, local, floor=t) is None  # accepted: folded up to the mark
    assert "not the one" in (mismatch(Mark("b", t), t, local) or "")
    assert "older backup" in (mismatch(Mark("a", t - DAY), t - DAY, local) or "")
