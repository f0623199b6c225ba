"""The state store (SQLite by default, any SQLAlchemy URL): feed revisions and done marks."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from functools import cached_property

import sqlalchemy as sa

from pacing.adapters.statedir import state_dir
from pacing.core.entry import OUTCOMES, DoneMark
from pacing.export.ics import Revision

metadata = sa.MetaData()
feed_revision = sa.Table(
    "feed_revision",
    metadata,
    sa.Column("calendar", sa.String(200), primary_key=True),
    sa.Column("uid", sa.String(300), primary_key=True),
    sa.Column("dates_digest", sa.String(64), nullable=False),
    sa.Column("content_digest", sa.String(64), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("modified", sa.String(32), nullable=False),  # ISO 8601, UTC
)
done_mark = sa.Table(
    "done_mark",
    metadata,
    sa.Column("lea", sa.String(80), primary_key=True),
    sa.Column("item", sa.String(300), primary_key=True),
    sa.Column("done_on", sa.Date, nullable=False),
    sa.Column("note", sa.Text),  # added after 0.1: stores made before get them at start
    sa.Column("outcome", sa.String(32)),
    sa.Column("outcome_on", sa.Date),
)

reminder = sa.Table(
    "reminder",
    metadata,
    sa.Column("key", sa.String(600), primary_key=True),  # LEA|item|offset|recipient
    sa.Column("lea", sa.String(80), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("item_ids", sa.Text, nullable=False),  # item ids, one per line
    sa.Column("due", sa.Date, nullable=False),
    sa.Column("to_addr", sa.String(254), nullable=False),
    sa.Column("cc", sa.Text, nullable=False),  # addresses, one per line
    sa.Column("send_at", sa.DateTime, nullable=False, index=True),  # naive UTC
    # pending -> claimed -> sent | failed | folded (into an overdue notice) | cancelled
    sa.Column("status", sa.String(12), nullable=False, index=True),
    sa.Column("claimed_until", sa.DateTime),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_try", sa.DateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("sent_at", sa.DateTime),
    sa.Column("claimed_by", sa.String(64)),  # the instance holding the claim
    sa.Column("fence", sa.BigInteger),  # the claim's fencing token: only its holder records
)
plan_change = sa.Table(  # bumped by `pacing done`/`undo` so a running daemon re-plans
    "plan_change",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("counter", sa.Integer, nullable=False),
)


instance = sa.Table(  # one row per running daemon: what `status` and /healthz report
    "instance",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),  # naive UTC
    sa.Column("last_step_at", sa.DateTime),
    sa.Column("last_ok_at", sa.DateTime),
    sa.Column("last_error", sa.Text),
)
setting = sa.Table(  # shared by every instance: the feed secrets
    "setting",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def database_url(url: str) -> str:
    """A plain libpq URL (postgresql://user@host:5432/db, as providers hand them out) means
    psycopg 3; any other SQLAlchemy URL is used as given."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url.removeprefix(plain)
    return url


class State:
    def __init__(self, url: str | None = None) -> None:
        given = url or os.environ.get("PACING_DB") or f"sqlite:///{state_dir() / 'pacing.db'}"
        self.url = database_url(given)

    @cached_property
    def engine(self) -> sa.Engine:
        engine = sa.create_engine(self.url)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        metadata.create_all(engine)
        _add_missing_columns(engine, done_mark)
        return engine

    def revisions(self, calendar: str) -> dict[str, Revision]:
        query = sa.select(feed_revision).where(feed_revision.c.calendar == calendar)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {
            r.uid: Revision(
                r.dates_digest, r.content_digest, r.sequence, dt.datetime.fromisoformat(r.modified)
            )
            for r in rows
        }

    def save_revisions(
        self, calendar: str, revisions: Mapping[str, Revision], previous: Mapping[str, Revision]
    ) -> None:
        changed = [(uid, rev) for uid, rev in revisions.items() if previous.get(uid) != rev]
        if not changed:
            return
        table = feed_revision
        with self.engine.begin() as conn:
            conn.execute(
                table.delete().where(
                    table.c.calendar == calendar, table.c.uid.in_([u for u, _ in changed])
                )
            )
            conn.execute(
                table.insert(),
                [
                    {
                        "calendar": calendar,
                        "uid": uid,
                        "dates_digest": rev.dates_digest,
                        "content_digest": rev.content_digest,
                        "sequence": rev.sequence,
                        "modified": rev.modified.isoformat(),
                    }
                    for uid, rev in changed
                ],
            )

    def mark_done(self, lea: str, item: str, mark: DoneMark | None) -> None:
        """Record (or, with None, remove) a done mark; running daemons re-plan."""
        with self.engine.begin() as conn:
            where = (done_mark.c.lea == lea) & (done_mark.c.item == item)
            conn.execute(done_mark.delete().where(where))
            if mark is not None:
                conn.execute(
                    done_mark.insert().values(
                        lea=lea, item=item, done_on=mark.on, note=mark.note,
                        outcome=mark.outcome, outcome_on=mark.outcome_on,
                    )
                )  # fmt: skip
            bumped = conn.execute(
                plan_change.update().values(counter=plan_change.c.counter + 1)
            ).rowcount
            if not bumped:
                conn.execute(plan_change.insert().values(id=1, counter=1))

    def plan_counter(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(plan_change.c.counter)).scalar() or 0)

    def done_marks(self, lea: str) -> dict[str, DoneMark]:
        query = sa.select(done_mark).where(done_mark.c.lea == lea)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {r.item: _mark(r.done_on, r.note, r.outcome, r.outcome_on) for r in rows}


def _mark(on: dt.date, note: str | None, outcome: str | None, when: dt.date | None) -> DoneMark:
    known = next((o for o in OUTCOMES if o == outcome), None)
    return DoneMark(on, note, known, when)


def _add_missing_columns(engine: sa.Engine, table: sa.Table) -> None:
    """Columns added to a table since a store was made (all nullable): added in place, so
    nothing already stored is lost."""
    have = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
    missing = [c for c in table.columns if c.name not in have]
    if not missing:
        return
    with engine.begin() as conn:
        for column in missing:
            kind = column.type.compile(dialect=engine.dialect)
            conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


def _sqlite_pragmas(connection: object, _record: object) -> None:
    """WAL: readers never block the daemon; a busy writer is waited for, not failed."""
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
