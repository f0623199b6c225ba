"""The durable reminder ledger: plan in, claim, send, record. A claim left by a killed process is
taken again once its lease runs out; a reminder is sent once per key."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from pacing.adapters.state import State, reminder
from pacing.core.reminders import Reminder

LEASE = dt.timedelta(minutes=2)
BACKFILL = dt.timedelta(days=7)
LIVE = ("pending", "claimed")


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

    @property
    def message_id(self) -> str:
        return Reminder(
            self.key, self.lea, "due", self.send_at, self.to, (), (), self.due
        ).message_id


def _row(r: sa.Row[tuple[object, ...]]) -> Row:
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
    )


class Ledger:
    def __init__(self, state: State) -> None:
        self.state = state
        self.engine = state.engine
        self._conn: sa.Connection | None = None

    def sync(self, lea: str, planned: Sequence[Reminder], now: dt.datetime) -> tuple[int, int]:
        """Make the LEA's live reminders match the plan: add new ones, move changed ones,
        cancel those no longer planned (done items, removed dates). Sent ones are never redone.
        Reminders first planned long after their instant (a new LEA, a new guide) are not
        taken in: downtime catch-up is for reminders the ledger already held."""
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
            stale = naive(now - BACKFILL)
            fresh = [
                _values(r)
                for k, r in wanted.items()
                if k not in known and naive(r.send_at) >= stale
            ]
            if fresh:
                conn.execute(reminder.insert(), fresh)
                added = len(fresh)
            for key, row in known.items():
                plan = wanted.get(key)
                if plan is None and row.status in ("pending", "failed"):
                    conn.execute(
                        reminder.update().where(reminder.c.key == key).values(status="cancelled")
                    )
                    cancelled += 1
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
                            .where(reminder.c.key == key)
                            .values(
                                status="pending",
                                send_at=values["send_at"],
                                item_ids=values["item_ids"],
                                cc=values["cc"],
                                due=values["due"],
                            )
                        )
        return added, cancelled

    def ready(self, now: dt.datetime, limit: int = 500) -> list[Row]:
        """Reminders whose instant has come (or whose claim's lease ran out), oldest first."""
        at = naive(now)
        query = (
            sa.select(reminder)
            .where(
                (
                    (reminder.c.status == "pending")
                    & (reminder.c.send_at <= at)
                    & ((reminder.c.next_try.is_(None)) | (reminder.c.next_try <= at))
                )
                | ((reminder.c.status == "claimed") & (reminder.c.claimed_until <= at))
            )
            .order_by(reminder.c.send_at, reminder.c.key)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query).all()]

    def claim_batch(self, keys: Sequence[str], now: dt.datetime) -> set[str]:
        """Claim many in one transaction; returns the keys this process now holds."""
        if not keys:
            return set()
        at = naive(now)
        with self.engine.begin() as conn:
            rows = conn.execute(
                reminder.update()
                .where(reminder.c.key.in_(list(keys)))
                .where((reminder.c.status == "pending")
                       | ((reminder.c.status == "claimed") & (reminder.c.claimed_until <= at)))
                .values(status="claimed", claimed_until=naive(now + LEASE),
                        attempts=reminder.c.attempts + 1)
                .returning(reminder.c.key)
            ).all()  # fmt: skip
        return {r.key for r in rows}

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Record a batch's outcomes on one connection, each committed on its own."""
        with self.engine.connect() as conn:
            self._conn = conn
            try:
                yield
            finally:
                self._conn = None

    def _set(self, key: str, **values: object) -> None:
        statement = reminder.update().where(reminder.c.key == key).values(**values)
        if self._conn is not None:
            self._conn.execute(statement)
            self._conn.commit()  # each outcome is durable before the next email goes out
            return
        with self.engine.begin() as conn:
            conn.execute(statement)

    def sent(self, key: str, now: dt.datetime) -> None:
        self._set(key, status="sent", sent_at=naive(now), claimed_until=None, last_error=None)

    def retry(self, key: str, error: str, at: dt.datetime) -> None:
        self._set(key, status="pending", next_try=naive(at), claimed_until=None, last_error=error)

    def failed(self, key: str, error: str) -> None:
        self._set(key, status="failed", claimed_until=None, last_error=error)

    def release(self, key: str) -> None:
        """Give back a claim that was never sent (shutdown): the next run takes it at once."""
        self._set(key, status="pending", claimed_until=None)

    def fold(self, key: str, why: str) -> None:
        self._set(key, status="folded", claimed_until=None, last_error=why)

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

    def rows(self, leas: Sequence[str] | None = None) -> list[Row]:
        query = sa.select(reminder).order_by(reminder.c.send_at, reminder.c.key)
        if leas:
            query = query.where(reminder.c.lea.in_(list(leas)))
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query).all()]


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
