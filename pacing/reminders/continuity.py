"""The ledger's continuity: a reminder ledger that was emptied (TRUNCATE, DELETE, dropped
tables), replaced (PACING_DB pointed at a new database) or restored from an older backup never
sends again what was delivered.

The store keeps the ledger's identity and its high-water mark (the last delivered instant) in
its `setting` table, which a TRUNCATE or DELETE of the reminder rows leaves alone; the state dir
keeps a copy (`ledger-mark.json`), which a new or dropped database does not touch. The daemon
compares them with the ledger's own rows at start and before each step; a mismatch stops it with
one line and the ways out. `--accept-empty-ledger` then takes the ledger as it is and folds every
reminder due before the high-water mark instead of sending it (the `floor`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from pacing.adapters.state import State, reminder, setting
from pacing.core.errors import DataError, Problem

log = logging.getLogger("pacing.reminders")
IDENTITY, HIGH_WATER, FLOOR = "ledger_id", "ledger_high_water", "ledger_floor"
MARK_FILE = "ledger-mark.json"
WAYS_OUT = ("restore the ledger (or point PACING_DB back at it), copy a ledger with `pacing db "
            "migrate --to URL`, or start with --accept-empty-ledger: reminders due before the "
            "high-water mark are then recorded as folded, never sent")  # fmt: skip


@dataclass(frozen=True)
class Mark:
    """What a ledger (or the state dir's copy) says of itself."""

    identity: str | None
    high_water: dt.datetime | None
    where: str = ""


class LedgerMismatch(DataError):
    """The ledger is not the one that delivered what its marks say."""


def _instant(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC) if text else None


def _text(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%S}"


def _shown(moment: dt.datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}Z" if moment else "nothing"


def mismatch(
    stored: Mark, rows_end: dt.datetime | None, local: Mark | None,
    floor: dt.datetime | None = None,
) -> str | None:  # fmt: skip
    """Why this ledger cannot be trusted to know what was delivered (None: it can). `stored`:
    the store's own marks; `rows_end`: the last delivery its rows record (or the `floor` an
    accepted empty ledger folds up to); `local`: the state dir's copy of the marks of the
    ledger it last used."""
    rows_end = max((m for m in (rows_end, floor) if m), default=None)
    said = local.high_water if local else None
    if stored.identity is None:  # a new store, or one made before the marks existed
        if said is not None and (rows_end is None or rows_end < said):
            return (f"the reminder ledger is new or emptied, but the ledger this "
                    f"state dir last used ({local.where if local else ''}) had delivered "
                    f"reminders up to {_shown(said)}")  # fmt: skip
        return None
    if local is not None and local.identity not in (None, stored.identity):
        return (f"the reminder ledger is not the one this state dir last used "
                f"({local.where}, which had delivered up to {_shown(said)})")  # fmt: skip
    if stored.high_water is not None and (rows_end is None or rows_end < stored.high_water):
        return (f"the reminder ledger lost rows: it had delivered up to "
                f"{_shown(stored.high_water)}, its rows now end at {_shown(rows_end)} "
                "(a TRUNCATE, a DELETE or a restore)")  # fmt: skip
    known = max((m for m in (stored.high_water, rows_end) if m), default=None)
    if said is not None and (known is None or known < said):
        return (f"the reminder ledger ends at {_shown(known)}, before the last "
                f"delivery this state dir saw ({_shown(said)}): restored from an older backup?")  # fmt: skip
    return None


class Continuity:
    """The marks of one state store, and the state dir's copy (`mark_file`; None: none kept)."""

    def __init__(self, state: State, mark_file: Path | None) -> None:
        self.state = state
        self.mark_file = mark_file
        self.floor: dt.datetime | None = None
        self.where = state.engine.url.render_as_string(hide_password=True)

    # ---------------------------------------------------------------- reading

    def stored(self) -> tuple[Mark, dt.datetime | None, dt.datetime | None]:
        """The store's marks, the last delivery its rows record, and the floor."""
        names = (IDENTITY, HIGH_WATER, FLOOR)
        with self.state.engine.connect() as conn:
            found = dict(conn.execute(sa.select(setting.c.name, setting.c.value)
                                      .where(setting.c.name.in_(names))).all())  # fmt: skip
            last = conn.execute(sa.select(sa.func.max(reminder.c.sent_at))
                                .where(reminder.c.status == "sent")).scalar()  # fmt: skip
        mark = Mark(found.get(IDENTITY), _instant(found.get(HIGH_WATER)), self.where)
        rows_end = last.replace(tzinfo=dt.UTC) if last else None
        return mark, rows_end, _instant(found.get(FLOOR))

    def local(self) -> Mark | None:
        """The state dir's copy; an unreadable one counts as none (the store's marks still
        guard against an emptied ledger)."""
        if self.mark_file is None or not self.mark_file.exists():
            return None
        try:
            data = json.loads(self.mark_file.read_text())
            return Mark(data["id"], _instant(data.get("high_water")), data.get("where", ""))
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("%s is unreadable, ignored: %s", self.mark_file, e)
            return None

    # ---------------------------------------------------------------- the checks

    def open(self, accept: bool) -> None:
        """At start: adopt a new store (or one made before the marks), check a known one;
        on a mismatch, stop with one line, or with `accept` take the ledger as it is."""
        stored, rows_end, floor = self.stored()
        local = self.local()
        problem = mismatch(stored, rows_end, local, floor)
        if problem and not accept:
            raise self._stop(problem)
        identity = stored.identity or (local.identity if local else None) or secrets.token_hex(8)
        high = max((m for m in (stored.high_water, rows_end, local and local.high_water) if m),
                   default=None)  # fmt: skip
        if problem:
            floor = max((m for m in (floor, high) if m), default=None)
            log.warning("%s; accepted (--accept-empty-ledger): reminders due before %s are "
                        "folded, not sent", problem, _shown(floor))  # fmt: skip
        self._store(identity, high, floor)
        self.floor = floor
        self._write_local(identity, high)

    def verify(self) -> None:
        """Before each step and re-plan: the ledger is still the one opened (not emptied,
        dropped or swapped while running)."""
        stored, rows_end, floor = self.stored()
        problem = mismatch(stored, rows_end, self.local(), floor)
        if stored.identity is None:  # dropped and made again while running
            problem = problem or "the reminder ledger lost its marks while running"
        if problem:
            raise self._stop(problem)

    def delivered(self) -> None:
        """After a step that sent: the high-water mark follows the last delivery."""
        stored, rows_end, _ = self.stored()
        if rows_end is None or (stored.high_water and rows_end <= stored.high_water):
            return
        self._store(stored.identity, rows_end, None)
        if stored.identity:
            self._write_local(stored.identity, rows_end)

    # ---------------------------------------------------------------- writing

    def _store(self, identity: str | None, high: dt.datetime | None, floor: dt.datetime | None) -> None:
        """Write the marks: the identity once (the first daemon to start wins), the high-water
        mark and the floor only forward."""
        wanted = {IDENTITY: identity or None, HIGH_WATER: _text(high) if high else None,
                  FLOOR: _text(floor) if floor else None}  # fmt: skip
        for name, value in wanted.items():
            if value is None:
                continue
            with contextlib.suppress(sa.exc.IntegrityError), self.state.engine.begin() as conn:
                conn.execute(setting.insert().values(name=name, value=value))
            if name != IDENTITY:
                with self.state.engine.begin() as conn:
                    conn.execute(setting.update().where(setting.c.name == name)
                                 .where(setting.c.value < value).values(value=value))  # fmt: skip

    def _write_local(self, identity: str, high: dt.datetime | None) -> None:
        """The state dir's copy, replaced atomically."""
        if self.mark_file is None:
            return
        data = {"id": identity, "high_water": _text(high) if high else None, "where": self.where}
        part = self.mark_file.with_name(self.mark_file.name + ".part")
        part.write_text(json.dumps(data) + "\n")
        os.replace(part, self.mark_file)

    def _stop(self, problem: str) -> LedgerMismatch:
        return LedgerMismatch([Problem(self.where, "", f"{problem}: {WAYS_OUT}")])
