"""Planning in working days. Backwards: each piece of work's latest start and finish, as late as
what depends on it allows. Forwards: its earliest start (its window opens, its prerequisites are
in). A plan that cannot fit is at risk with a warning that says why and what to do; it is never
moved, silently, before its window or its prerequisite."""

from __future__ import annotations

import dataclasses
import datetime as dt
import graphlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pacing.core.dates import long_date
from pacing.core.entry import Entry
from pacing.core.lea import Lea
from pacing.core.workdays import WorkCalendar

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Slot:
    latest_start: dt.date
    latest_finish: dt.date
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    at_risk: bool = False
    bound_by: str | None = None  # the dependant whose start sets the latest finish


@dataclass(frozen=True)
class Earliest:
    day: dt.date
    why: str  # "its window opens", "after “Submit Step 2 ...”"


@dataclass(frozen=True)
class Plan:
    slots: dict[str, Slot] = field(default_factory=dict)
    depends_on: dict[str, tuple[str, ...]] = field(default_factory=dict)
    earliest: dict[str, Earliest] = field(default_factory=dict)


def backward_plan(
    drafts: Sequence[Entry],
    calendar: WorkCalendar,
    lea: Lea,
    meetings: Sequence[dt.date],
    done: Mapping[str, dt.date] | None = None,
) -> Plan:
    """Walk dependants before their dependencies; each finishes the working day before the
    earliest latest-start of what depends on it, and no later than its own due date."""
    live = {d.id: d for d in drafts if not d.na_reason}
    deps = {i: tuple(x for x in d.depends_on if x in live) for i, d in live.items()}
    follows = {i: tuple(x for x in d.follows if x in live) for i, d in live.items()}
    dependants: dict[str, list[str]] = defaultdict(list)
    for item_id, needs in deps.items():
        for need in needs:
            dependants[need].append(item_id)
    graph = {i: (*deps[i], *follows[i]) for i in live}  # ordered: the output is deterministic
    order = list(graphlib.TopologicalSorter(graph).static_order())  # guides are checked acyclic
    earliest = _earliest(live, graph, order, calendar, done or {})
    slots: dict[str, Slot] = {}
    for item_id in reversed(order):
        draft = live[item_id]
        if not draft.duration_days:
            continue
        bounds = [(calendar.back(_anchor(live[d], slots), 1), d) for d in dependants[item_id]]
        own = draft.due if draft.kind != "meeting" and draft.due != dt.date.max else None
        if own is None and not bounds:  # undated work whose dependants are all not applicable
            continue
        work = _Work(draft, calendar, earliest.get(item_id), live)
        slots[item_id] = work.slot(min(bounds) if bounds else None, own, lea, meetings)
    return Plan(slots, deps, earliest)


def _earliest(
    live: Mapping[str, Entry],
    graph: Mapping[str, tuple[str, ...]],
    order: Sequence[str],
    calendar: WorkCalendar,
    done: Mapping[str, dt.date],
) -> dict[str, Earliest]:
    """Forwards: work starts when its window opens and the day after its prerequisites are in.
    A submission counts as in on its date (or the day it was done); other work as soon as its
    working days allow."""
    finish: dict[str, dt.date] = {}
    earliest: dict[str, Earliest] = {}
    for item_id in order:
        draft = live[item_id]
        found = [
            Earliest(calendar.on_or_after(finish[x] + ONE_DAY), f"after \u201c{live[x].title}\u201d")
            for x in graph[item_id]
            if x in finish
        ]
        board = draft.item is not None and draft.item.snap == "board-meeting"
        if draft.start and draft.kind != "meeting" and not board:  # a board item's window
            found.append(Earliest(draft.start, "when its window opens"))  # is for the meeting
        if found:
            earliest[item_id] = max(found, key=lambda e: e.day)
        if item_id in done:
            finish[item_id] = done[item_id]
        elif (draft.item is not None and draft.item.submission) or not draft.duration_days:
            if draft.due != dt.date.max:
                finish[item_id] = draft.start or draft.due if draft.kind == "window" else draft.due
        elif item_id in earliest:
            finish[item_id] = calendar.forward(earliest[item_id].day, draft.duration_days - 1)
    return earliest


def _anchor(draft: Entry, slots: dict[str, Slot]) -> dt.date:
    """When a dependant begins: its planned latest start, else its fixed start or date."""
    slot = slots.get(draft.id)
    if slot:
        return slot.latest_start
    return draft.start or draft.due


@dataclass(frozen=True)
class _Work:
    draft: Entry
    calendar: WorkCalendar
    earliest: Earliest | None
    live: Mapping[str, Entry]

    @property
    def duration(self) -> int:
        return self.draft.duration_days or 1

    def slot(
        self,
        bound: tuple[dt.date, str] | None,
        own: dt.date | None,
        lea: Lea,
        meetings: Sequence[dt.date],
    ) -> Slot:
        item = self.draft.item
        if item is not None and item.snap == "board-meeting":
            return self._board(bound, own, lea, meetings)
        return self._within_window(bound, own)

    def _within_window(self, bound: tuple[dt.date, str] | None, own: dt.date | None) -> Slot:
        """Inside the guide's window when it fits; a window is a target, not a deadline, so
        after it (with a warning) when only that fits before what depends on it."""
        limits = [b for b in (bound, (self.calendar.on_or_before(own), "") if own else None) if b]
        finish, by = min(limits)
        slot = self._fit(finish, by)
        later = bound and own and self.draft.kind == "window" and bound[0] > finish
        if slot.at_risk and later and bound:
            moved = self._fit(*bound)
            if not moved.at_risk:
                warning = (
                    f"Does not fit in the guide's window ({self._when()}): planned to finish by "
                    f"{long_date(moved.latest_finish)}, after the guide's target"
                )
                return dataclasses.replace(moved, warnings=(warning,))
        return slot

    def _fit(self, finish: dt.date, by: str) -> Slot:
        """`duration` working days ending on `finish`; at risk when that starts too early."""
        start = self.calendar.back(finish, self.duration - 1)
        first = self.earliest
        if first is None or start >= first.day:
            return Slot(start, finish, bound_by=by or None)
        room = max(0, self.calendar.count(first.day, finish + ONE_DAY))
        until = f"to leave time for \u201c{self.live[by].title}\u201d" if by else "its date"
        warning = (
            f"Cannot fit: needs {self.duration} working days but only {room} lie between "
            f"{long_date(first.day)} ({first.why}) and {long_date(finish)} ({until}). Start as "
            "soon as it can, shorten it (override duration_days) or talk to your FMTA consultant"
        )
        return Slot(first.day, max(finish, first.day), (), (warning,), True, by or None)

    def _when(self) -> str:
        item = self.draft.item
        return item.when.text if item is not None and item.when else long_date(self.draft.due)

    def _board(
        self,
        bound: tuple[dt.date, str] | None,
        own: dt.date | None,
        lea: Lea,
        meetings: Sequence[dt.date],
    ) -> Slot:
        """The latest board meeting that still lets the CDE deadline be met, preferring one in
        the guide's window, with the packet lead time before it."""
        draft, lead = self.draft, lea.calendar.board_packet_lead_days
        last = bound[0] if bound else draft.due
        first = self.earliest.day if self.earliest else dt.date.min
        feasible = [m for m in meetings if m <= last and _packet(m, lead, self.calendar)[1] >= first]
        window = (draft.start or draft.due, draft.due)
        inside = [m for m in feasible if window[0] <= m <= window[1]]
        if feasible:
            meeting = (inside or feasible)[-1]
            docs, start = _packet(meeting, lead, self.calendar)
            note = (
                f"Board meeting {long_date(meeting)}; documents final for the board packet by "
                f"{long_date(docs)} ({lead} working days before)"
            )
            warnings: tuple[str, ...] = ()
            if not inside:
                side = "after" if meeting > window[1] else "before"
                warnings = (
                    f"No board meeting in the guide's window ({self._when()}): planned on the "
                    f"{long_date(meeting)} meeting, {side} the guide's target",
                )
            by = bound[1] if bound else None
            return Slot(start, meeting, (note,), warnings, bound_by=by)
        slot = self._within_window(bound, own)
        if not meetings:
            warning = (
                "No board meeting dates in the profile ([calendar] board_meetings or "
                "board_meeting_rule): add them so the approval is planned on a meeting"
            )
            return dataclasses.replace(slot, warnings=(*slot.warnings, warning))
        soonest = ""
        if self.earliest:  # documents final the day before the approval work can start
            docs = self.calendar.back(first, 1)
            soonest = f"{long_date(self.calendar.forward(docs, lead) if lead else first)} and "
        warning = (
            f"No board meeting in time: schedule a special board meeting between {soonest}"
            f"{long_date(last)} (the last day that still meets the CDE deadline), or shorten "
            "the work before it (its durations are pacing's estimates)"
        )
        return dataclasses.replace(slot, warnings=(*slot.warnings, warning), at_risk=True)


def _packet(meeting: dt.date, lead: int, calendar: WorkCalendar) -> tuple[dt.date, dt.date]:
    """When documents must be final for a meeting's board packet (`lead` working days before
    it), and the day the approval work starts (the packet is out)."""
    if not lead:
        return meeting, meeting
    docs = calendar.back(meeting - ONE_DAY, lead - 1)
    return docs, min(meeting, calendar.on_or_after(docs + ONE_DAY))
