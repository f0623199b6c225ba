"""Backward planning: each task's latest start and finish, as late as possible, in working days."""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import graphlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pacing.core.dates import long_date
from pacing.core.lea import Lea
from pacing.core.workdays import WorkCalendar

if TYPE_CHECKING:
    from pacing.core.timeline import Entry


@dataclass(frozen=True)
class Slot:
    latest_start: dt.date
    latest_finish: dt.date
    notes: tuple[str, ...] = ()
    at_risk: bool = False
    bound_by: str | None = None  # the dependant whose start sets the latest finish


@dataclass(frozen=True)
class Plan:
    slots: dict[str, Slot] = field(default_factory=dict)
    depends_on: dict[str, tuple[str, ...]] = field(default_factory=dict)


def backward_plan(
    drafts: Sequence[Entry], calendar: WorkCalendar, lea: Lea, meetings: Sequence[dt.date]
) -> Plan:
    """Walk dependants before their dependencies; each finishes the working day before the
    earliest latest-start of what depends on it, and no later than its own due date."""
    live = {d.id: d for d in drafts if not d.na_reason}
    deps = {i: tuple(x for x in d.depends_on if x in live) for i, d in live.items()}
    dependants: dict[str, list[str]] = defaultdict(list)
    for item_id, needs in deps.items():
        for need in needs:
            dependants[need].append(item_id)
    order = list(graphlib.TopologicalSorter(deps).static_order())  # guides are checked acyclic
    slots: dict[str, Slot] = {}
    for item_id in reversed(order):
        draft = live[item_id]
        bounds = [(calendar.back(_anchor(live[d], slots), 1), d) for d in dependants[item_id]]
        if draft.duration_days:
            if draft.kind != "meeting" and draft.due != dt.date.max:
                bounds.append((calendar.on_or_before(draft.due), ""))
            if not bounds:  # undated work whose dependants are all not applicable
                continue
            finish, bound_by = min(bounds)
            slot = _slot(draft, finish, calendar, lea, meetings)
            slots[item_id] = dataclasses.replace(slot, bound_by=bound_by or None)
    return Plan(slots, deps)


def _anchor(draft: Entry, slots: dict[str, Slot]) -> dt.date:
    """When a dependant begins: its planned latest start, else its fixed start or date."""
    slot = slots.get(draft.id)
    if slot:
        return slot.latest_start
    return draft.start or draft.due


def _slot(
    draft: Entry, finish: dt.date, calendar: WorkCalendar, lea: Lea, meetings: Sequence[dt.date]
) -> Slot:
    duration = draft.duration_days or 1
    item = draft.item
    if item is not None and item.snap == "board-meeting":
        return _board_slot(draft, finish, calendar, lea, meetings, duration)
    return Slot(calendar.back(finish, duration - 1), finish)


def _board_slot(
    draft: Entry,
    finish: dt.date,
    calendar: WorkCalendar,
    lea: Lea,
    meetings: Sequence[dt.date],
    duration: int,
) -> Slot:
    """Land on the last board meeting on or before `finish`, with the packet lead time before it."""
    lead = lea.calendar.board_packet_lead_days
    at = bisect.bisect_right(meetings, finish)
    if at == 0:
        fallback = Slot(calendar.back(finish, duration - 1), finish)
        if not meetings:
            return fallback
        note = f"No board meeting on or before {long_date(finish)}: schedule one"
        return dataclasses.replace(fallback, notes=(note,), at_risk=True)
    meeting = meetings[at - 1]
    packet = calendar.back(meeting, lead) if lead else meeting
    note = (
        f"Board meeting {long_date(meeting)}; documents final for the board packet by "
        f"{long_date(calendar.back(packet, 1))} ({lead} working days before)"
    )
    return Slot(packet, meeting, (note,))
