"""Backward planning on hand-computed cases, and its invariants as properties (hypothesis)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pacing.core.guide import Guide, guide_problems
from pacing.core.lea import Lea
from pacing.core.timeline import expand
from pacing.core.workdays import WorkCalendar

D = dt.date


def synthetic(items: list[dict[str, Any]]) -> Guide:
    return Guide.model_validate(
        {"id": "g", "title": "Test guide", "source": "test", "items": items}
    )


def lea(**calendar: Any) -> Lea:
    return Lea.model_validate(
        {"id": "t", "name": "T", "cds": "1234567", "calendar": calendar,
         "monitoring": {"tier": "intensive", "cohort": 2024}}
    )  # fmt: skip


def chain(due: dt.date, duration: int, deadline_days: int = 1) -> Guide:
    return synthetic([
        {"id": "work", "step": 1, "title": "Work", "kind": "task", "duration_days": duration},
        {"id": "deadline", "step": 1, "title": "Deadline", "kind": "deadline",
         "when": {"text": "due", "on": due}, "duration_days": deadline_days,
         "depends_on": ["work"]},
    ])  # fmt: skip


def test_holiday_inside_a_task() -> None:
    # Deadline Wed July 10, 2024; the work must end Tue July 9; 5 working days back skip
    # July 4 (Independence Day) and the weekend: July 9, 8, 5, 3, 2.
    t = expand([chain(D(2024, 7, 10), 5)], lea(), D(2024, 5, 1))
    work = t.get("g/step-1/work")
    assert (work.latest_start, work.latest_finish) == (D(2024, 7, 2), D(2024, 7, 9))
    without = expand([chain(D(2024, 7, 10), 5)], lea(state_holidays=False), D(2024, 5, 1))
    assert without.get("g/step-1/work").latest_start == D(2024, 7, 3)


def test_closure_spanning_a_task() -> None:
    # Winter break Dec 23 - Jan 3; deadline Fri Jan 10, 2025; 10 working days of work ending
    # Thu Jan 9: Jan 9, 8, 7, 6, then Dec 20, 19, 18, 17, 16, 13.
    closures = [{"from": D(2024, 12, 23), "to": D(2025, 1, 3), "name": "Winter break"}]
    t = expand([chain(D(2025, 1, 10), 10)], lea(closures=closures), D(2024, 5, 1))
    work = t.get("g/step-1/work")
    assert (work.latest_start, work.latest_finish) == (D(2024, 12, 13), D(2025, 1, 9))


def test_weekend_deadline_is_kept_with_a_note() -> None:
    t = expand([chain(D(2024, 8, 10), 3, deadline_days=2)], lea(), D(2024, 5, 1))
    deadline = t.get("g/step-1/deadline")
    assert deadline.due == D(2024, 8, 10)  # Saturday, as CDE gives it
    assert (deadline.latest_start, deadline.latest_finish) == (D(2024, 8, 8), D(2024, 8, 9))
    assert any("non-working day (Saturday)" in n for n in deadline.notes)
    assert t.get("g/step-1/work").latest_finish == D(2024, 8, 7)


def test_profile_overrides_win(guides, make_lea, may_2024) -> None:
    base = make_lea("riverbend-usd", overrides={})
    item = "sig-dis-2024/step-1/data-drill-down"
    assert expand(guides, base, may_2024).get(item).duration_days == 30
    moved = make_lea("riverbend-usd", overrides={item: {"due": D(2024, 5, 24), "duration_days": 4}})
    entry = expand(guides, moved, may_2024).get(item)
    assert (entry.due, entry.latest_start, entry.latest_finish) == (
        D(2024, 5, 24), D(2024, 5, 21), D(2024, 5, 24))  # fmt: skip
    assert any("LEA override" in n for n in entry.notes)


def test_slack_and_work_that_should_have_started(guides, make_lea) -> None:
    t = expand(guides, make_lea("riverbend-usd", overrides={}), D(2024, 5, 1))
    drill = t.get("sig-dis-2024/step-1/data-drill-down")  # 30 days, should start Apr 19
    assert drill.status == "at-risk" and drill.slack_days == -8
    assert any("Should have started by April 19, 2024" in n for n in drill.notes)
    parent = t.get("sig-dis-2024/step-1/parent-input")
    assert parent.status == "upcoming" and parent.slack_days == 20


def test_dependency_cycle_is_reported_not_raised() -> None:
    g = synthetic([
        {"id": "a", "step": 1, "title": "A", "kind": "task", "duration_days": 2, "depends_on": ["b"]},
        {"id": "b", "step": 1, "title": "B", "kind": "deadline", "duration_days": 1,
         "when": {"text": "x", "on": D(2024, 7, 1)}, "depends_on": ["a"]},
    ])  # fmt: skip
    assert [message for _, message in guide_problems(g)] == ["dependency cycle: a -> b -> a"]


# ---------------------------------------------------------------- properties


@st.composite
def plans(draw: st.DrawFn) -> tuple[Guide, Lea]:
    n = draw(st.integers(1, 8))
    items: list[dict[str, Any]] = []
    for i in range(n):
        deps = (
            draw(st.lists(st.sampled_from([f"t{j}" for j in range(i)]), unique=True)) if i else []
        )
        items.append({"id": f"t{i}", "step": 1, "title": f"T{i}", "kind": "task",
                      "duration_days": draw(st.integers(1, 15)), "depends_on": deps})  # fmt: skip
    due = draw(st.dates(D(2024, 1, 15), D(2026, 12, 20)))
    items.append({"id": "deadline", "step": 1, "title": "D", "kind": "deadline",
                  "duration_days": draw(st.integers(1, 3)), "when": {"text": "d", "on": due},
                  "depends_on": [f"t{i}" for i in range(n)]})  # fmt: skip
    closures = []
    for _ in range(draw(st.integers(0, 3))):
        start = draw(st.dates(due - dt.timedelta(days=120), due))
        closures.append({"from": start, "to": start + dt.timedelta(days=draw(st.integers(0, 14))),
                         "name": "Closed"})  # fmt: skip
    return synthetic(items), lea(state_holidays=draw(st.booleans()), closures=closures)


@settings(max_examples=150, deadline=None)
@given(plans())
def test_plan_invariants(case: tuple[Guide, Lea]) -> None:
    guide, the_lea = case
    t = expand([guide], the_lea, D(2024, 1, 1))
    closures = [(c.start, c.end, c.name) for c in the_lea.calendar.closures]
    calendar = WorkCalendar.build((2023, 2027), the_lea.calendar.state_holidays, closures)
    by_id = {e.id: e for e in t.items}
    for e in t.items:
        assert e.latest_start and e.latest_finish
        assert e.latest_start <= e.latest_finish <= e.due
        assert calendar.is_working(e.latest_start) and calendar.is_working(e.latest_finish)
        assert calendar.count(e.latest_start, e.latest_finish) + 1 == e.duration_days
        for dep in e.depends_on:
            finish = by_id[dep].latest_finish
            assert finish is not None and finish < e.latest_start


@st.composite
def windowed(draw: st.DrawFn) -> tuple[Guide, Lea]:
    """A submission, then work with a window that follows it, then a deadline."""
    submitted = draw(st.dates(D(2024, 2, 1), D(2024, 10, 1)))
    opens = submitted + dt.timedelta(days=draw(st.integers(-30, 30)))
    closes = opens + dt.timedelta(days=draw(st.integers(0, 60)))
    due = closes + dt.timedelta(days=draw(st.integers(-10, 40)))
    items = [
        {"id": "sub", "step": 1, "title": "S", "kind": "deadline", "submission": True,
         "when": {"text": "s", "on": submitted}, "duration_days": 1},
        {"id": "work", "step": 2, "title": "W", "kind": "window", "follows": ["sub"],
         "when": {"text": "w", "start": opens, "end": closes},
         "duration_days": draw(st.integers(1, 30))},
        {"id": "due", "step": 2, "title": "D", "kind": "deadline", "depends_on": ["work"],
         "when": {"text": "d", "on": max(due, closes)}, "duration_days": 1},
    ]  # fmt: skip
    return synthetic(items), lea(state_holidays=draw(st.booleans()))


@settings(max_examples=150, deadline=None)
@given(windowed())
def test_work_is_never_planned_before_its_window_or_prerequisite(case: tuple[Guide, Lea]) -> None:
    guide, the_lea = case
    t = expand([guide], the_lea, D(2024, 1, 1))
    work, submitted = t.get("g/step-2/work"), t.get("g/step-1/sub").due
    assert work.earliest_start and work.latest_start and work.start
    assert work.latest_start >= work.earliest_start >= work.start
    assert work.earliest_start > submitted
    fits = t.calendar.count(work.latest_start, work.latest_finish + dt.timedelta(days=1))
    if fits < (work.duration_days or 0):  # squeezed: said, never hidden
        assert work.status == "at-risk" and "Cannot fit" in work.warnings[0]
