"""Shared by the several-daemon tests and the bench: a fresh PostgreSQL database per test (on
the real server at 127.0.0.1:5432, or PACING_TEST_PG_URL; never skipped: unreachable is a
failure), a burst of reminders due at one instant, and `pacing remind` processes."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("PACING_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()", "remind"]

# A burst: reminders of every open item due in the next 60 days, to N team members of each
# LEA, all at 07:30 on Friday October 11, 2024 (Riverbend's send_at; the weekend's move to
# Friday). Only these are on time; the week before (backfill) is late: one catch-up each.
LA = ZoneInfo("America/Los_Angeles")
BURST_AT = dt.datetime(2024, 10, 11, 7, 30, tzinfo=LA).astimezone(dt.UTC)


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """CREATE DATABASE pacing_test_<random>; its plain libpq URL; dropped at the end."""
    import psycopg

    name = f"pacing_test_{secrets.token_hex(6)}"
    with psycopg.connect(SERVER, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = SERVER.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(SERVER, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_burst(folder: Path, leas: int, teachers: int, days: int = 60) -> None:
    """`leas` profiles from examples/riverbend-usd.toml, each reminding its lead and
    `teachers` special-education teachers (its own people) of everything due within `days`
    days."""
    base = (ROOT / "examples" / "riverbend-usd.toml").read_text()
    team = "".join(
        f'\n[[team]]\nrole = "sped-teacher"\nname = "Teacher {t}"\n'
        f'email = "t{t}@riverbend.example.org"\n'
        for t in range(teachers)
    )
    offsets = "offsets_days = " + str(list(range(days)))
    for n in range(leas):
        text = (base.replace('id = "riverbend-usd"', f'id = "lea-{n:02d}"')
                .replace("Riverbend Unified", f"Burst {n:02d} Unified")
                .replace('"weekly"', '"none"').replace("offsets_days = [14, 7, 1]", offsets)
                .replace('to = ["lead", "sped-admin"]', 'to = ["lead", "sped-teacher"]'))  # fmt: skip
        assert offsets in text and '"sped-teacher"]' in text
        own = (text + team).replace("@riverbend.example.org", f"@lea-{n:02d}.example.org")
        (folder / f"lea-{n:02d}.toml").write_text(own)  # each LEA's own people


def remind(folder: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([*CLI, str(folder)], env=env, stdout=out, stderr=out)


def environment(**values: str) -> dict[str, str]:
    """The test's environment: no PACING_* or SOURCE_DATE_EPOCH from outside, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PACING_", "SOURCE_DATE"))}
    return {**env, "PACING_SMTP_TLS": "none", "PACING_MAIL_FROM": "cim@pacing.test", **values}
