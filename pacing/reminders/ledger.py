"""The durable reminder ledger: plan in, claim, send, record. Shared by any number of daemons.

A claim records its claimant (`claimed_by`, the daemon instance) and a fencing token (`fence`,
bumped by every claim of the row); outcomes are recorded only by the claim that is still held
(UPDATE ... WHERE key AND claimed_by AND fence), so a daemon whose lease ran out (a pause, a
slow batch) can neither record over another's claim nor, checking before each send, send it.
A claim left by a killed process is taken again once its lease runs out; a reminder is sent
once per key (at most the one in flight at a kill is sent again, with the same Message-ID).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from pacing.adapters.state import State, instance, reminder
from pacing.core.caseload_reminders import CASELOAD
from pacing.core.reminders import Reminder

log = logging.getLogger("pacing.reminders")
LEASE = dt.timedelta(minutes=2)  # the default; PACING_LEASE_SECONDS sets it
BACKFILL = dt.timedelta(days=7)
LIVE = ("pending", "claimed")


def lease_from_env() -> dt.timedelta:
    text = os.environ.get("PACING_LEASE_SECONDS")
    if not text:
        return LEASE
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        from pacing.core.errors import fail

        raise fail("environment", "PACING_LEASE_SECONDS", f"{text!r} is not a positive number")
    return dt.timedelta(seconds=seconds)


def naive(moment: dt.datetime) -> dt.datetime:
    """Stored as naive UTC (portable across SQLite and PostgreSQL)."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def aware(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Row:
    key: str
    lea: str
    kind: str
    items: tuple[str, ...]
    due: dt.date
    to: str
    cc: tuple[str, ...]
    send_at: dt.datetime
    status: str
    attempts: int
    last_error: str | None
    claimed_by: str | None = None
    fence: int | None = None

    @property
    def message_id(self) -> str:
        return Reminder(
            self.key, self.lea, "due", self.send_at, self.to, (), (), self.due
        ).message_id


def _row(r: sa.Row[Any]) -> Row:
    m = r._mapping
    return Row(
        m["key"],
        m["lea"],
        m["kind"],
        tuple(m["item_ids"].split("\n")),
        m["due"],
        m["to_addr"],
        tuple(x for x in m["cc"].split("\n") if x),
        aware(m["send_at"]),
        m["status"],
        m["attempts"],
        m["last_error"],
        m["claimed_by"],
        m["fence"],
    )


def _insert(engine: sa.Engine, table: sa.Table) -> Any:
    """INSERT for the engine's dialect (both offer ON CONFLICT)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


class Ledger:
    def __init__(self, state: State, lease: dt.timedelta | None = None) -> None:
        self.state = state
        self.engine = state.engine
        self.lease = lease or lease_from_env()
        self._conn: sa.Connection | None = None

    # ---------------------------------------------------------------- the plan

    def sync(
        self,
        lea: str,
        planned: Sequence[Reminder],
        now: dt.datetime,
        backfill: dt.timedelta = BACKFILL,
    ) -> tuple[int, int]:
        """Make the LEA's live reminders match the plan: add new ones, move changed ones,
        cancel those no longer planned (done items, removed dates). Sent ones are never redone.
        Reminders first planned long after their instant (a new LEA, a new guide) are not
        taken in (`backfill`: how long after is long): downtime catch-up is for reminders the
        ledger already held. Safe to run by several daemons at once: new rows go in with ON
        CONFLICT DO NOTHING, and changes touch only rows still in the state they were read in."""
        wanted = {r.key: r for r in planned}
        added = cancelled = 0
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(
                    reminder.c.key,
                    reminder.c.status,
                    reminder.c.send_at,
                    reminder.c.item_ids,
                    reminder.c.cc,
                    reminder.c.due,
                ).where(reminder.c.lea == lea)
            ).all()
            known = {r.key: r for r in rows}
            stale = naive(now - backfill)
            fresh = [
                _values(r)
                for k, r in wanted.items()
                if k not in known and naive(r.send_at) >= stale
            ]
            if fresh:
                statement = _insert(self.engine, reminder).on_conflict_do_nothing(
                    index_elements=[reminder.c.key]
                )
                added = conn.execute(statement, fresh).rowcount or 0
            for key, row in known.items():
                plan = wanted.get(key)
                same = (reminder.c.key == key) & (reminder.c.status == row.status)
                if plan is None and row.status in ("pending", "failed"):
                    done = conn.execute(reminder.update().where(same).values(status="cancelled"))
                    cancelled += done.rowcount
                elif plan is not None and row.status in ("pending", "cancelled"):
                    values = _values(plan)
                    changed = (
                        row.status == "cancelled"
                        or row.send_at != values["send_at"]
                        or row.item_ids != values["item_ids"]
                        or row.cc != values["cc"]
                        or row.due != values["due"]
                    )
                    if changed:
                        conn.execute(
                            reminder.update()
                            .where(same)
                            .values(
                                status="pending",
                                send_at=values["send_at"],
                                item_ids=values["item_ids"],
                                cc=values["cc"],
                                due=values["due"],
                            )
                        )
        return added, cancelled

    # ---------------------------------------------------------------- claims

    def _ready(self, at: dt.datetime) -> Any:
        return (
            (reminder.c.status == "pending")
            & (reminder.c.send_at <= at)
            & ((reminder.c.next_try.is_(None)) | (reminder.c.next_try <= at))
        ) | ((reminder.c.status == "claimed") & (reminder.c.claimed_until <= at))

    def ready(self, now: dt.datetime, limit: int = 500) -> list[Row]:
        """Reminders whose instant has come (or whose claim's lease ran out), oldest first."""
        query = (
            sa.select(reminder)
            .where(self._ready(naive(now)))
            .order_by(reminder.c.send_at, reminder.c.key)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query).all()]

    def claim(
        self, now: dt.datetime, owner: str, limit: int = 500, late: dt.timedelta | None = None
    ) -> list[Row]:
        """Claim all the ready reminders of up to `limit` recipients (one email each: one email
        per person per moment) in one transaction; each claim records its owner and a new
        fence. Recipients with a reminder late by more than `late` come first, by address; then
        the others, oldest first. When fewer than SHARE * `limit` recipients are ready, a claim
        takes a quarter of them (SHARE; at least FEW), so several daemons finish a burst together.
        On PostgreSQL a recipient another daemon is claiming is skipped (an advisory lock per
        recipient, held until commit): no one's rows are split between two claims. On SQLite
        the UPDATE picks its recipients itself, atomically (one writer)."""
        at = naive(now)
        people = self._recipients(now, late)
        with self.engine.begin() as conn:
            ready = list(conn.execute(people.limit(limit * SHARE)).scalars())
            take = min(limit, max(-(-len(ready) // SHARE), FEW), len(ready))
            if not take:
                return []
            if self.engine.dialect.name == "postgresql":
                mine = list(conn.execute(_LOCK, {"people": ready, "take": take}).scalars())
                which = reminder.c.key.in_(
                    sa.select(reminder.c.key).where(self._ready(at))
                    .where(reminder.c.to_addr.in_(mine)).with_for_update(skip_locked=True)
                    .scalar_subquery()
                )  # fmt: skip
            else:
                which = reminder.c.to_addr.in_(people.limit(take).scalar_subquery())
            rows = self._claim(conn, which, at, now, owner)
        return sorted(rows, key=lambda r: (r.send_at, r.key))

    def _recipients(self, now: dt.datetime, late: dt.timedelta | None) -> sa.Select[Any]:
        """The recipients of ready reminders, in claiming order."""
        first = sa.func.min(reminder.c.send_at)
        order: list[Any] = [first, reminder.c.to_addr]
        if late is not None:
            tier = sa.func.min(sa.case((reminder.c.send_at < naive(now - late), 0), else_=1))
            order = [tier, sa.case((tier == 1, first)), reminder.c.to_addr]
        return (
            sa.select(reminder.c.to_addr).where(self._ready(naive(now)))
            .group_by(reminder.c.to_addr).order_by(*order)
        )  # fmt: skip

    def claim_rest_of_day(
        self, until: Mapping[str, dt.datetime], now: dt.datetime, owner: str
    ) -> list[Row]:
        """Claim each person's reminders planned later on the same day (`until`: the end of
        their day), so that a person on two LEAs' teams with different send times gets one
        email that morning. Rows waiting for a retry and caseload digests stay where they are."""
        at = naive(now)
        rows: list[Row] = []
        by_end: dict[dt.datetime, list[str]] = {}
        for address, end in until.items():
            by_end.setdefault(naive(end), []).append(address)
        with self.engine.begin() as conn:
            for end, people in by_end.items():
                which = (
                    (reminder.c.status == "pending") & (reminder.c.send_at <= end)
                    & reminder.c.to_addr.in_(people) & ~reminder.c.lea.startswith(CASELOAD + "/")
                    & (reminder.c.next_try.is_(None) | (reminder.c.next_try <= at))
                )  # fmt: skip
                chosen = sa.select(reminder.c.key).where(which).with_for_update(skip_locked=True)
                statement = (
                    reminder.update().where(reminder.c.key.in_(chosen.scalar_subquery()))
                    .where(which)
                    .values(status="claimed", claimed_until=naive(now + self.lease),
                            attempts=reminder.c.attempts + 1, claimed_by=owner or None,
                            fence=sa.func.coalesce(reminder.c.fence, 0) + 1)
                    .returning(*reminder.c)
                )  # fmt: skip
                rows += [_row(r) for r in conn.execute(statement).all()]
        return rows

    def claim_batch(self, keys: Sequence[str], now: dt.datetime, owner: str = "") -> set[str]:
        """Claim these keys (those still ready); returns the keys this process now holds."""
        if not keys:
            return set()
        with self.engine.begin() as conn:
            held = self._claim(conn, reminder.c.key.in_(list(keys)), naive(now), now, owner)
        return {r.key for r in held}

    def _claim(
        self, conn: sa.Connection, which: Any, at: dt.datetime, now: dt.datetime, owner: str
    ) -> list[Row]:
        statement = (
            reminder.update()
            .where(which)
            .where(self._ready(at))  # compare-and-set: still ready when the UPDATE runs
            .values(status="claimed", claimed_until=naive(now + self.lease),
                    attempts=reminder.c.attempts + 1, claimed_by=owner or None,
                    fence=sa.func.coalesce(reminder.c.fence, 0) + 1)
            .returning(*reminder.c)
        )  # fmt: skip
        return [_row(r) for r in conn.execute(statement).all()]

    def _mine(self, row: Row) -> Any:
        return (
            (reminder.c.key == row.key)
            & (reminder.c.status == "claimed")
            & (reminder.c.claimed_by == row.claimed_by)
            & (reminder.c.fence == row.fence)
        )

    def renew(self, rows: Sequence[Row], now: dt.datetime) -> set[str]:
        """Extend the lease of the claims still held (same claimant, same fence: also one whose
        lease ran out that no one took over); returns their keys (the others are lost)."""
        wanted = {(r.key, r.fence) for r in rows}
        if not wanted:
            return set()
        statement = (
            reminder.update()
            .where(sa.tuple_(reminder.c.key, reminder.c.fence).in_(sorted(wanted)))
            .where((reminder.c.status == "claimed") & (reminder.c.claimed_by == rows[0].claimed_by))
            .values(claimed_until=naive(now + self.lease))
            .returning(reminder.c.key)
        )
        if self._conn is not None:  # sending a batch (`held`): before each email
            kept = {r.key for r in self._conn.execute(statement).all()}
            self._conn.commit()
            return kept
        with self.engine.begin() as conn:
            return {r.key for r in conn.execute(statement).all()}

    # ---------------------------------------------------------------- outcomes

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Record a batch's outcomes on one connection, each committed on its own."""
        with self.engine.connect() as conn:
            self._conn = conn
            try:
                yield
            finally:
                self._conn = None

    def _set(self, row: Row | str, **values: object) -> bool:
        """Record on a claim still held (a Row with its claimant and fence), or, given a bare
        key (tools, tests), unconditionally. False: the claim was lost."""
        if isinstance(row, Row) and row.fence is not None:
            where = self._mine(row)
        else:
            where = reminder.c.key == (row.key if isinstance(row, Row) else row)
        statement = reminder.update().where(where).values(**values)
        if self._conn is not None:
            done = self._conn.execute(statement).rowcount
            self._conn.commit()  # each outcome is durable before the next email goes out
        else:
            with self.engine.begin() as conn:
                done = conn.execute(statement).rowcount
        return bool(done)

    def sent(self, row: Row | str, now: dt.datetime) -> bool:
        if isinstance(row, Row) and row.fence is not None and self._conn is not None:
            # the hot path (one per email): a statement compiled once
            mine = {"key": row.key, "by": row.claimed_by, "fence": row.fence, "at": naive(now)}
            done = self._conn.execute(_SENT, mine).rowcount
            self._conn.commit()
            return bool(done)
        return self._set(row, status="sent", sent_at=naive(now), claimed_until=None,
                         last_error=None)  # fmt: skip

    def retry(self, row: Row | str, error: str, at: dt.datetime) -> bool:
        return self._set(row, status="pending", next_try=naive(at), claimed_until=None,
                         last_error=error)  # fmt: skip

    def failed(self, row: Row | str, error: str) -> bool:
        return self._set(row, status="failed", claimed_until=None, last_error=error)

    def release(self, row: Row | str) -> bool:
        """Give back a claim that was never sent (shutdown): the next run takes it at once."""
        return self._set(row, status="pending", claimed_until=None)

    def fold(self, row: Row | str, why: str) -> bool:
        return self._set(row, status="folded", claimed_until=None, last_error=why)

    def sent_together(self, carrier: Row, carried: Sequence[Row], now: dt.datetime) -> bool:
        """One email carried several reminders (one recipient's moment, or a catch-up): its
        carrier row and the rows it carried are sent, the carried ones noting the carrier's
        Message-ID, in one transaction, only if every claim is still held."""
        why = f"sent in {carrier.message_id}"
        try:
            with self.engine.begin() as conn:
                done = conn.execute(
                    reminder.update().where(self._mine(carrier)).values(
                        status="sent", sent_at=naive(now), claimed_until=None, last_error=None)
                ).rowcount  # fmt: skip
                for row in carried:
                    done += conn.execute(
                        reminder.update().where(self._mine(row)).values(
                            status="sent", sent_at=naive(now), claimed_until=None,
                            last_error=why)
                    ).rowcount  # fmt: skip
                if done != 1 + len(carried):
                    raise _Lost
        except _Lost:
            return False
        return True

    # ---------------------------------------------------------------- looking

    def next_instant(self) -> dt.datetime | None:
        """When the next reminder (or retry, or lease expiry) falls due."""
        with self.engine.connect() as conn:
            pending = conn.execute(
                sa.select(
                    sa.func.min(sa.func.coalesce(reminder.c.next_try, reminder.c.send_at))
                ).where(reminder.c.status == "pending")
            ).scalar()
            lease = conn.execute(
                sa.select(sa.func.min(reminder.c.claimed_until)).where(
                    reminder.c.status == "claimed"
                )
            ).scalar()
        found = [aware(x) for x in (pending, lease) if x is not None]
        return min(found) if found else None

    def late(
        self, now: dt.datetime, leas: Sequence[str] | None = None
    ) -> tuple[int, dt.datetime | None]:
        """Reminders whose instant has passed and that are not sent: (count, oldest instant)."""
        query = sa.select(sa.func.count(), sa.func.min(reminder.c.send_at)).where(
            reminder.c.status.in_(LIVE) & (reminder.c.send_at <= naive(now))
        )
        if leas:
            query = query.where(reminder.c.lea.in_(list(leas)))
        with self.engine.connect() as conn:
            count, oldest = conn.execute(query).one()
        return int(count), aware(oldest) if oldest else None

    def rows(self, leas: Sequence[str] | None = None) -> list[Row]:
        query = sa.select(reminder).order_by(reminder.c.send_at, reminder.c.key)
        if leas:
            query = query.where(reminder.c.lea.in_(list(leas)))
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query).all()]

    # ---------------------------------------------------------------- instances

    def beat(self, who: str, host: str, pid: int, started: dt.datetime, at: dt.datetime,
             ok: bool, error: str | None = None) -> None:  # fmt: skip
        """Upsert this daemon's liveness row: a loop iteration ran at `at` (ok or not)."""
        values: dict[str, Any] = {"last_step_at": naive(at)}
        values.update({"last_ok_at": naive(at), "last_error": None} if ok else
                      {"last_error": error})  # fmt: skip
        statement = _insert(self.engine, instance).values(
            id=who, host=host, pid=pid, started_at=naive(started), **values
        )
        with self.engine.begin() as conn:
            conn.execute(statement.on_conflict_do_update(index_elements=[instance.c.id],
                                                         set_=values))  # fmt: skip

    def instances(self) -> list[dict[str, Any]]:
        query = sa.select(instance).order_by(instance.c.started_at)
        with self.engine.connect() as conn:
            found = [dict(r._mapping) for r in conn.execute(query).all()]
        for r in found:
            for name in ("started_at", "last_step_at", "last_ok_at"):
                r[name] = aware(r[name]) if r[name] else None
        return found

    def revive_folded(self, after: dt.datetime) -> int:
        """The clock went back: reminders folded as past (whose instant is still ahead of
        `after`) are pending again, to go out at their time."""
        with self.engine.begin() as conn:
            return conn.execute(
                reminder.update()
                .where(reminder.c.status == "folded", reminder.c.send_at > naive(after))
                .values(status="pending", claimed_until=None, claimed_by=None, last_error=None)
            ).rowcount

    def last_seen(self) -> dt.datetime | None:
        """The last successful step any daemon recorded (before this one started)."""
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(sa.func.max(instance.c.last_ok_at))).scalar()
        return aware(found) if found else None

    def troubles(self, limit: int = 10, leas: Sequence[str] | None = None) -> tuple[list[Row], int]:
        """The rows that failed and those waiting for a retry after an error (pending with a
        `last_error`), the latest instant first, at most `limit`; and how many there are."""
        which = (reminder.c.status == "failed") | (
            (reminder.c.status == "pending") & reminder.c.last_error.is_not(None)
        )
        if leas:
            which = which & reminder.c.lea.in_(list(leas))
        query = sa.select(reminder).where(which)
        query = query.order_by(reminder.c.send_at.desc(), reminder.c.key).limit(limit)
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(reminder).where(which))
            count = int(total.scalar() or 0)
            return [_row(r) for r in conn.execute(query).all()], count


SHARE, FEW = 4, 5  # near the end of a burst a claim takes a quarter of the ready recipients
# The recipients (among those listed) no other transaction is claiming, up to :take; each one's
# advisory lock (in a space of pacing's own) is held until this transaction ends.
_LOCK = sa.text(
    "SELECT p FROM unnest(CAST(:people AS text[])) AS p "
    "WHERE pg_try_advisory_xact_lock(7461, hashtext(p)) LIMIT :take"
)
_CLAIM = "key = :key AND status = 'claimed' AND claimed_by = :by AND fence = :fence"
_SENT = sa.text(
    "UPDATE reminder SET status = 'sent', sent_at = :at, claimed_until = NULL, "
    f"last_error = NULL WHERE {_CLAIM}"
).bindparams(sa.bindparam("at", type_=sa.DateTime))


class _Lost(Exception):
    """A claim was taken over: roll the transaction back."""


def _values(r: Reminder) -> dict[str, object]:
    return {
        "key": r.key,
        "lea": r.lea,
        "kind": r.kind,
        "item_ids": "\n".join(r.items),
        "due": r.due,
        "to_addr": r.to,
        "cc": "\n".join(r.cc),
        "send_at": naive(r.send_at),
        "status": "pending",
        "attempts": 0,
        "last_error": None,
    }
