"""The state store: a store made by 0.1 upgrades with nothing lost (SQLite and PostgreSQL),
instances upgrade one at a time, and a damaged, emptied or missing ledger is a one-line error,
never a silent resend."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pg import fresh_database

from pacing.adapters.state import State
from pacing.core.entry import DoneMark
from pacing.core.errors import DataError

CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
SECRET = "ab" * 32

# The schema exactly as pacing 0.1 created it (metadata.create_all of its state.py).
OLD = sa.MetaData()
sa.Table("feed_revision", OLD,
         sa.Column("calendar", sa.String(200), primary_key=True),
         sa.Column("uid", sa.String(300), primary_key=True),
         sa.Column("dates_digest", sa.String(64), nullable=False),
         sa.Column("content_digest", sa.String(64), nullable=False),
         sa.Column("sequence", sa.Integer, nullable=False),
         sa.Column("modified", sa.String(32), nullable=False))  # fmt: skip
sa.Table("done_mark", OLD,
         sa.Column("lea", sa.String(80), primary_key=True),
         sa.Column("item", sa.String(300), primary_key=True),
         sa.Column("done_on", sa.Date, nullable=False))  # fmt: skip
sa.Table("reminder", OLD,
         sa.Column("key", sa.String(600), primary_key=True),
         sa.Column("lea", sa.String(80), nullable=False, index=True),
         sa.Column("kind", sa.String(16), nullable=False),
         sa.Column("item_ids", sa.Text, nullable=False),
         sa.Column("due", sa.Date, nullable=False),
         sa.Column("to_addr", sa.String(254), nullable=False),
         sa.Column("cc", sa.Text, nullable=False),
         sa.Column("send_at", sa.DateTime, nullable=False, index=True),
         sa.Column("status", sa.String(12), nullable=False, index=True),
         sa.Column("claimed_until", sa.DateTime),
         sa.Column("attempts", sa.Integer, nullable=False, default=0),
         sa.Column("next_try", sa.DateTime),
         sa.Column("last_error", sa.Text),
         sa.Column("sent_at", sa.DateTime))  # fmt: skip
sa.Table("plan_change", OLD,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("counter", sa.Integer, nullable=False))  # fmt: skip


def make_old_store(url: str) -> None:
    engine = sa.create_engine(State(url).url)  # the same driver mapping, no upgrade
    OLD.create_all(engine)
    with engine.begin() as conn:
        conn.execute(OLD.tables["done_mark"].insert().values(
            lea="sunrise-usd", item="x/step-1/a", done_on=dt.date(2024, 7, 9)))
        conn.execute(OLD.tables["reminder"].insert().values(
            key="sunrise-usd|x|due-7|a@b.org", lea="sunrise-usd", kind="due", item_ids="x",
            due=dt.date(2024, 7, 10), to_addr="a@b.org", cc="", attempts=1, status="sent",
            send_at=dt.datetime(2024, 7, 3, 15), sent_at=dt.datetime(2024, 7, 3, 15)))
        conn.execute(OLD.tables["feed_revision"].insert().values(
            calendar="sunrise-usd", uid="u", dates_digest="d", content_digest="c", sequence=3,
            modified="2024-07-01T00:00:00+00:00"))
        conn.execute(OLD.tables["plan_change"].insert().values(id=1, counter=7))
    engine.dispose()  # fmt: skip


def assert_upgraded_with_nothing_lost(state: State) -> None:
    assert state.schema_version() == "0005"
    assert state.done_marks("sunrise-usd") == {"x/step-1/a": DoneMark(dt.date(2024, 7, 9))}
    assert state.revisions("sunrise-usd")["u"].sequence == 3
    assert state.plan_counter() == 7
    with state.engine.connect() as conn:
        sent = conn.execute(sa.text("SELECT status, attempts FROM reminder")).all()
    assert [tuple(r) for r in sent] == [("sent", 1)]
    mark = DoneMark(dt.date(2024, 7, 9), "note", "accepted", dt.date(2024, 8, 1))
    state.mark_done("sunrise-usd", "x/step-1/a", mark)  # the new columns work
    assert state.done_marks("sunrise-usd")["x/step-1/a"] == mark


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def test_sqlite_store_from_0_1_upgrades_with_nothing_lost(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PACING_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("PACING_FEED_SECRET", raising=False)
    (tmp_path / "feed-secret").write_text(SECRET + "\n")  # 0.1 kept it in a file
    url = f"sqlite:///{tmp_path / 'pacing.db'}"
    make_old_store(url)
    state = State(url)
    assert_upgraded_with_nothing_lost(state)
    assert state.upgraded_from == "0001"
    assert state.feed_secrets() == [bytes.fromhex(SECRET)]  # same URLs as before
    assert (tmp_path / "pacing.db").stat().st_mode & 0o777 == 0o600


def test_postgres_store_from_0_1_upgrades_with_nothing_lost(pg_url: str) -> None:
    make_old_store(pg_url)
    assert_upgraded_with_nothing_lost(State(pg_url))


def test_instances_starting_at_once_upgrade_one_at_a_time(pg_url: str, tmp_path: Path) -> None:
    """Five processes open one fresh database at the same moment: one creates the schema
    (under an advisory lock), the others find it; none fails. They share one feed secret."""
    env = {**os.environ, "PACING_DB": pg_url, "PACING_STATE_DIR": str(tmp_path)}
    env.pop("PACING_FEED_SECRET", None)
    code = ("from pacing.adapters.state import State; s = State(); "
            "print(s.schema_version(), s.feed_secrets()[0].hex())")  # fmt: skip
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(5)]  # fmt: skip
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, [err for _, err in results]
    outputs = {out.strip() for out, _ in results}
    assert len(outputs) == 1 and outputs.pop().startswith("0005 ")


def test_rotation_is_shared_through_the_database(pg_url: str) -> None:
    first, second = State(pg_url), State(pg_url)
    old = first.feed_secrets()
    assert second.feed_secrets() == old
    first.rotate_feed_secret()
    assert second.feed_secrets()[1:] == old and second.feed_secrets()[0] != old[0]
    second.retire_previous_secret()
    assert len(first.feed_secrets()) == 1


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PACING_STATE_DIR": str(tmp_path)}
    env.pop("PACING_DB", None)
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=False,
                          timeout=120)  # fmt: skip


@pytest.mark.parametrize("damage", ["emptied", "deleted", "garbage"])
def test_damaged_ledger_is_one_line_never_a_resend(tmp_path: Path, damage: str) -> None:
    assert run(tmp_path, "db", "upgrade").returncode == 0  # a state dir with a ledger
    db = tmp_path / "pacing.db"
    for extra in tmp_path.glob("pacing.db-*"):
        extra.unlink()
    if damage == "emptied":
        db.write_bytes(b"")
    elif damage == "deleted":
        db.unlink()
    else:
        db.write_bytes(db.read_bytes()[:100] + b"\x00garbage" * 512)
    out = run(tmp_path, "remind", "examples", "--dry-run")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert str(db) in out.stderr and "--accept-empty-ledger" in out.stderr
    if damage != "garbage":  # the way out, on purpose
        again = run(tmp_path, "db", "upgrade", "--accept-empty-ledger")
        assert again.returncode == 0 and "schema: new -> 0005" in again.stdout, again.stderr
        assert run(tmp_path, "db", "check").returncode == 0


def test_garbage_db_reported_by_state(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    db.write_bytes(b"not a database at all" * 100)
    with pytest.raises(DataError, match="the state db is damaged"):
        assert State(f"sqlite:///{db}").engine
