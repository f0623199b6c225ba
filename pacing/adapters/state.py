"""The state store: feed revisions, done marks, the reminder ledger, the instances, the feed
secret, the opt-outs, the delivery choices, the caseloads' slugs. SQLite in the state dir by
default; `PACING_DB` takes a PostgreSQL URL (shared by any number of instances) or any
SQLAlchemy URL. The schema is versioned by Alembic (pacing/adapters/migrations) and upgraded at
start, one instance at a time."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import secrets
import sqlite3
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa

from pacing.adapters.statedir import state_dir
from pacing.core.entry import OUTCOMES, DoneMark
from pacing.core.errors import DataError, Problem
from pacing.core.lea import DELIVERIES
from pacing.core.revision import Revision

# an LEA's done marks (item, mark) and opt-outs (address, since), in a comparable form
LeaMarks = tuple[tuple[tuple[str, DoneMark], ...], tuple[tuple[str, dt.datetime], ...]]
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ADVISORY_LOCK = 0x7061_6369_6E67  # "pacing": one schema upgrade at a time on PostgreSQL
ACCEPT_EMPTY = "PACING_ACCEPT_EMPTY_LEDGER"

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
opt_out = sa.Table(  # a recipient who unsubscribed from an LEA's reminders (one-click, RFC 8058)
    "opt_out",
    metadata,
    sa.Column("lea", sa.String(80), primary_key=True),
    sa.Column("address", sa.String(254), primary_key=True),  # lower case
    sa.Column("at", sa.DateTime, nullable=False),  # naive UTC
)
delivery = sa.Table(  # how often a person gets email: an email's link or `pacing db delivery`
    "delivery",
    metadata,
    sa.Column("address", sa.String(254), primary_key=True),  # lower case
    sa.Column("mode", sa.String(16), nullable=False),  # each | daily | weekly
    sa.Column("since", sa.DateTime, nullable=False),  # naive UTC
)
setting = sa.Table(  # shared by every instance: the feed secrets
    "setting",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
caseload_slug = sa.Table(  # a caseload's slug, given once per email: its URLs never move
    "caseload_slug",
    metadata,
    sa.Column("email", sa.String(254), primary_key=True),  # lower case
    sa.Column("slug", sa.String(80), nullable=False, unique=True),
    sa.Column("since", sa.DateTime, nullable=False),  # naive UTC
)


def database_url(url: str) -> str:
    """A plain libpq URL (postgresql://user@host:5432/db, as providers hand them out) means
    psycopg 3; any other SQLAlchemy URL is used as given."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url.removeprefix(plain)
    return url


class State:
    def __init__(self, url: str | None = None, accept_empty_ledger: bool | None = None) -> None:
        given = url or os.environ.get("PACING_DB") or f"sqlite:///{state_dir() / 'pacing.db'}"
        self.url = database_url(given)
        if accept_empty_ledger is None:
            accept_empty_ledger = os.environ.get(ACCEPT_EMPTY, "") not in ("", "0")
        self.accept_empty_ledger = accept_empty_ledger
        self.upgraded_from: str | None = None

    @cached_property
    def engine(self) -> sa.Engine:
        """The engine, its schema upgraded; a damaged, emptied or replaced SQLite ledger is a
        one-line error (never a silent resend of what it had sent)."""
        engine = sa.create_engine(self.url, pool_pre_ping=True)
        path = sqlite_file(engine)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        if path is not None:
            _check_sqlite(path, self.accept_empty_ledger)
            _private(path)
        try:
            self.upgraded_from = upgrade(engine)
        except sa.exc.DatabaseError as e:
            where = str(path) if path else engine.url.render_as_string(hide_password=True)
            raise DataError([Problem(where, "", f"cannot open the state db: {_reason(e)}")]) from None
        if path is not None:
            _remember_ledger(path)
        return engine

    def schema_version(self) -> str | None:
        with self.engine.connect() as conn:
            return _current_revision(conn)

    def feed_secrets(self) -> list[bytes]:
        """The secrets feed tokens derive from: PACING_FEED_SECRET when set, else the current
        one in the db (made once, shared by every instance) and, while a rotation is under way,
        the previous one. A state dir's `feed-secret` file from 0.1 is taken over."""
        configured = os.environ.get("PACING_FEED_SECRET")
        if configured:
            return [configured.encode()]
        found = self._settings()
        if "feed-secret" not in found:
            self._set_once("feed-secret", _secret_from_files() or secrets.token_hex(32))
            found = self._settings()
        keys = ("feed-secret", "feed-secret.previous")
        return [bytes.fromhex(found[k]) for k in keys if k in found]

    def rotate_feed_secret(self) -> None:
        """New feed URLs; the old ones keep working until `retire_previous_secret`."""
        current = self.feed_secrets()[0].hex()
        with self.engine.begin() as conn:
            conn.execute(setting.delete().where(setting.c.name.like("feed-secret%")))
            conn.execute(setting.insert(), [
                {"name": "feed-secret.previous", "value": current},
                {"name": "feed-secret", "value": secrets.token_hex(32)},
            ])  # fmt: skip

    def retire_previous_secret(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(setting.delete().where(setting.c.name == "feed-secret.previous"))

    def _settings(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return {r.name: r.value for r in conn.execute(sa.select(setting)).all()}

    def _set_once(self, name: str, value: str) -> None:
        """Set unless another instance set it first (then theirs stands)."""
        with contextlib.suppress(sa.exc.IntegrityError), self.engine.begin() as conn:
            conn.execute(setting.insert().values(name=name, value=value))

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

    def opt_out(self, lea: str, address: str, at: dt.datetime) -> None:
        """Record that `address` wants no more of the LEA's reminders (again: the first stands);
        running daemons re-plan, and the ledger cancels what it held for the address."""
        values = {"lea": lea, "address": address.lower(),
                  "at": at.astimezone(dt.UTC).replace(tzinfo=None)}  # fmt: skip
        with contextlib.suppress(sa.exc.IntegrityError), self.engine.begin() as conn:
            conn.execute(opt_out.insert().values(**values))
            self._bump(conn)  # only when it is new: a replayed link changes nothing

    def opt_in(self, lea: str, address: str) -> bool:
        """Undo an opt-out (the address asked to hear again); whether there was one."""
        where = (opt_out.c.lea == lea) & (opt_out.c.address == address.lower())
        with self.engine.begin() as conn:
            found = conn.execute(opt_out.delete().where(where)).rowcount
            if found:
                self._bump(conn)
        return bool(found)

    def opted_out(self, lea: str) -> dict[str, dt.datetime]:
        """The LEA's opted-out addresses (lower case) and when (aware, UTC)."""
        query = sa.select(opt_out).where(opt_out.c.lea == lea).order_by(opt_out.c.address)
        with self.engine.connect() as conn:
            return {r.address: r.at.replace(tzinfo=dt.UTC) for r in conn.execute(query).all()}

    def set_delivery(self, address: str, mode: str, at: dt.datetime) -> None:
        """Record how often `address` wants email (`each`, `daily` or `weekly`, for every LEA
        it gets email from); the same choice again keeps its first time. Running daemons
        re-plan."""
        if mode not in DELIVERIES:
            raise ValueError(f"delivery must be {', '.join(DELIVERIES)}, not {mode!r}")
        key = address.strip().lower()
        values = {"address": key, "mode": mode, "since": at.astimezone(dt.UTC).replace(tzinfo=None)}
        where = delivery.c.address == key
        with self.engine.connect() as conn:
            was = conn.execute(sa.select(delivery.c.mode).where(where)).scalar()
        if was == mode:
            return
        try:
            with self.engine.begin() as conn:
                if was is None:
                    conn.execute(delivery.insert().values(**values))
                else:
                    conn.execute(delivery.update().where(where, delivery.c.mode != mode)
                                 .values(**values))  # fmt: skip
        except sa.exc.IntegrityError:  # another instance recorded a first choice at once
            with self.engine.begin() as conn:
                conn.execute(delivery.update().where(where, delivery.c.mode != mode)
                             .values(**values))  # fmt: skip
        self._bump()

    def deliveries(self) -> dict[str, tuple[str, dt.datetime]]:
        """Each address's own choice (lower case): its mode and since when (aware, UTC)."""
        query = sa.select(delivery).order_by(delivery.c.address)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {r.address: (r.mode, r.since.replace(tzinfo=dt.UTC)) for r in rows}

    def _bump(self, conn: sa.Connection | None = None) -> None:
        """Tell running daemons and servers to re-plan (in `conn`'s transaction if given)."""
        if conn is None:
            with self.engine.begin() as conn:
                return self._bump(conn)
        bumped = conn.execute(plan_change.update().values(counter=plan_change.c.counter + 1))
        if not bumped.rowcount:
            conn.execute(plan_change.insert().values(id=1, counter=1))

    def plan_counter(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(plan_change.c.counter)).scalar() or 0)

    def done_marks(self, lea: str) -> dict[str, DoneMark]:
        query = sa.select(done_mark).where(done_mark.c.lea == lea)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {r.item: _mark(r.done_on, r.note, r.outcome, r.outcome_on) for r in rows}

    def marks_by_lea(self) -> dict[str, LeaMarks]:
        """Every LEA's done marks and opt-outs, in two queries (what a re-plan compares to
        find the LEAs a change touched)."""
        with self.engine.connect() as conn:
            marks = conn.execute(sa.select(done_mark).order_by(done_mark.c.item)).all()
            outs = conn.execute(sa.select(opt_out).order_by(opt_out.c.address)).all()
        found: dict[str, tuple[list[tuple[str, DoneMark]], list[tuple[str, dt.datetime]]]] = {}
        for r in marks:
            found.setdefault(r.lea, ([], []))[0].append(
                (r.item, _mark(r.done_on, r.note, r.outcome, r.outcome_on)))  # fmt: skip
        for o in outs:
            found.setdefault(o.lea, ([], []))[1].append((o.address, o.at.replace(tzinfo=dt.UTC)))
        return {lea: (tuple(d), tuple(a)) for lea, (d, a) in found.items()}

    def caseload_slugs(self) -> dict[str, str]:
        """The slug given to each caseload email (lower case), kept from its first sight."""
        query = sa.select(caseload_slug.c.email, caseload_slug.c.slug)
        with self.engine.connect() as conn:
            return {r.email: r.slug for r in conn.execute(query).all()}

    def keep_caseload_slugs(self, slugs: Mapping[str, str], at: dt.datetime | None = None) -> bool:
        """Record the slugs of emails seen for the first time (email -> slug), all or none:
        False when another instance gave one of the emails or slugs first (read them again)."""
        when = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
        rows = [{"email": e.lower(), "slug": s, "since": when} for e, s in slugs.items()]
        if not rows:
            return True
        try:
            with self.engine.begin() as conn:
                conn.execute(caseload_slug.insert(), rows)
        except sa.exc.IntegrityError:
            return False
        return True


def _mark(on: dt.date, note: str | None, outcome: str | None, when: dt.date | None) -> DoneMark:
    known = next((o for o in OUTCOMES if o == outcome), None)
    return DoneMark(on, note, known, when)


def sqlite_file(engine: sa.Engine) -> Path | None:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    return Path(database) if database and database != ":memory:" else None


@contextlib.contextmanager
def _schema_lock(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One instance upgrades the schema at a time: a PostgreSQL advisory lock, or an exclusive
    lock on a file beside the SQLite db."""
    path = sqlite_file(engine)
    with contextlib.ExitStack() as stack:
        if path is not None:
            lock = stack.enter_context(open(path.with_name(path.name + ".lock"), "a"))
            fcntl.flock(lock, fcntl.LOCK_EX)
        conn = stack.enter_context(engine.connect())
        if engine.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_lock(ADVISORY_LOCK)))
            stack.callback(
                lambda: conn.execute(sa.select(sa.func.pg_advisory_unlock(ADVISORY_LOCK)))
            )
            conn.commit()
        yield conn


def upgrade(engine: sa.Engine) -> str | None:
    """Bring the schema to the newest revision (a store made by 0.1, which had no version, is
    stamped as the baseline first); returns the revision it was at."""
    from alembic import command
    from alembic.config import Config

    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per upgrade, below
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _schema_lock(engine) as conn:
        config.attributes["connection"] = conn
        before = _current_revision(conn)
        if before is None and sa.inspect(conn).has_table("done_mark"):  # made by 0.1
            command.stamp(config, "0001")
            before = "0001"
        command.upgrade(config, "head")
        conn.commit()
        after = _current_revision(conn)
    if after != before:
        logging.getLogger("pacing.state").info("state db schema: %s -> %s", before, after)
    return before


def _current_revision(conn: sa.Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _check_sqlite(path: Path, accept_empty: bool) -> None:
    """Before anything is written: the file must be a sound SQLite db, and a state dir that
    held a ledger must still hold that ledger (not an emptied or new one)."""
    marker = _marker(path)
    where = str(path)
    if path.exists() and path.stat().st_size:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                result = db.execute("PRAGMA quick_check").fetchone()
                tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as e:
            result, tables = (str(e),), 0
        if result != ("ok",):
            raise _damaged(where, f"the state db is damaged ({result[0]})")
        if tables:
            return
    if marker.exists() and not accept_empty:
        raise _damaged(where, "the state db is empty or missing, but this state dir held a "
                       "reminder ledger: starting afresh would send again what it had sent")  # fmt: skip


def _damaged(where: str, what: str) -> DataError:
    advice = (f"{what}. Restore it from a backup, or move it away and start with "
              "--accept-empty-ledger (`pacing db check` shows the state store)")  # fmt: skip
    return DataError([Problem(where, "", advice)])


def _private(path: Path) -> None:
    """The db holds the feed secret: readable by its owner only (SQLite gives its -wal and -shm
    files the db's mode)."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".ledger")


def _remember_ledger(path: Path) -> None:
    """Note beside the db that this state dir now holds a ledger (see `_check_sqlite`)."""
    marker = _marker(path)
    if not marker.exists():
        marker.write_text("This state dir holds a pacing reminder ledger in " + path.name + "\n")


def _secret_from_files() -> str | None:
    path = state_dir() / "feed-secret"
    return path.read_text().strip() if path.exists() else None


def _reason(error: sa.exc.DatabaseError) -> str:
    return str(error.orig).strip().splitlines()[0] if error.orig else str(error)


def _sqlite_pragmas(connection: object, _record: object) -> None:
    """WAL: readers never block the daemon; a busy writer is waited for, not failed."""
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
