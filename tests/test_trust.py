"""Dates a district can trust: where each date comes from, what can be overdue, whom a miss may
alarm, plans that fit (or say why not), assumptions that behave like assumptions, reminders on
working days. Every expectation below is computed by hand in its comment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from pacing.adapters.state import State
from pacing.cli.main import cli
from pacing.core.entry import DoneMark
from pacing.core.guide import Guide
from pacing.core.lea import Lea
from pacing.core.reminders import plan
from pacing.core.timeline import Timeline, expand

D = dt.date
S3 = "sig-dis-2024/step-3/"
T = "targeted-l3-2024/"
MakeLea = Callable[..., Lea]
SHORT_OCTOBER = {  # the LEA's own estimates for the October work: 3 + 2 (parallel 2) + 2 days
    S3 + "action-plan": {"duration_days": 3},
    S3 + "budget-forms": {"duration_days": 2},
    S3 + "partners-plan-feedback": {"duration_days": 2},
    S3 + "finalize-plan": {"duration_days": 2},
}


def riverbend(make_lea: MakeLea, **changes: object) -> Lea:
    changes.setdefault("overrides", {})
    return make_lea("riverbend-usd", **changes)


# ---------------------------------------------------------------- where dates come from


def test_each_item_says_where_its_date_comes_from(guides, make_lea: MakeLea) -> None:
    t = expand(guides, riverbend(make_lea), D(2024, 5, 1))
    source = {e.id: e.date_source for e in t.items}
    assert source["sig-dis-2024/step-1/step-1-submission"] == "cde"  # "Due July 10, 2024"
    assert source["sig-dis-2024/step-1/step-1-consolidation"] == "planned"  # no date in seed
    assert source[S3 + "action-plan"] == "cde"  # "October 2024"
    assert source["sig-dis-2024/step-4/quarterly-report/2025-03"] == "cde"  # April 10, 2025
    # The years of the annual count and the end of the tracking are pacing's assumptions.
    assert source["sig-dis-2024/step-4/unduplicated-count/2025"] == "assumed"
    assert source["sig-dis-2024/step-4/student-tracking"] == "assumed"
    assert source["implementation-2024/step-4/cim-team-meeting/2025-02"] == "assumed"
    count = t.get("sig-dis-2024/step-4/unduplicated-count/2026")
    assert count.assumption and "first count follows the first budget year" in count.assumption
    assert count.program == "CIM for Sig Dis (2024)"
    assert any("Years of the annual" not in a and "first count" in a for a in t.assumptions)
    moved = make_lea("sunrise-usd")  # its own meeting rule (2nd Wednesday)
    meeting = expand(guides, moved, D(2024, 5, 1)).get(
        "implementation-2024/step-4/cim-team-meeting/2025-02"
    )
    assert (meeting.date_source, meeting.due, meeting.assumption) == ("lea", D(2025, 2, 12), None)
    box = expand(guides, moved, D(2024, 5, 1)).get(T + "step-2/box-16-prioritized-problem-areas")
    assert (box.date_source, box.program) == ("planned", "Targeted Level 3 (2024 cohort)")


# ---------------------------------------------------------------- overdue and escalation


def test_on_time_district_gets_no_overdue_notice_and_nothing_outside_its_team(
    guides, make_lea: MakeLea
) -> None:
    """Sunrise submitted Steps 1, 2 and 3 on time (its [done] table): replanned every day
    from April 2024 to January 2025 as the daemon would, it is never told it is overdue and
    no email goes to the SELPA or the FMTA consultant."""
    sunrise = make_lea("sunrise-usd")
    team = {m.email for m in sunrise.team}
    zone = ZoneInfo(sunrise.timezone)
    day, sent = D(2024, 4, 1), []
    while day < D(2025, 1, 31):
        known = {k: v for k, v in sunrise.done.items() if isinstance(v, dt.date) and v < day}
        week = day + dt.timedelta(days=1)  # the daemon re-plans on every change: daily here
        t = expand(guides, sunrise.model_copy(update={"done": known}), day)
        sent += [r for r in plan(t) if day <= r.send_at.astimezone(zone).date() < week]
        day = week
    assert sent, "the team still gets its own reminders"
    assert [r for r in sent if r.kind == "overdue"] == []
    assert {r.to for r in sent} <= team and all(r.cc == () for r in sent)
    nudges = {r.items[0] for r in sent if r.kind == "behind-plan"}  # boxes not marked one by one
    assert nudges and all(expand(guides, sunrise, D(2024, 5, 1)).get(i).date_source == "planned"
                          for i in nudges)  # fmt: skip


def test_issue_command_shows_no_overdue_for_an_on_time_district(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["remind", "examples/sunrise-usd.toml", "--dry-run", "--from", "2024-10-08",
         "--until", "2024-12-08"],
        env={"PACING_STATE_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "overdue" not in result.output and " cc " not in result.output


def test_overdue_only_on_real_dates_and_escalation_only_for_cde_submissions(
    guides, make_lea: MakeLea
) -> None:
    t = expand(guides, riverbend(make_lea), D(2024, 7, 11))
    submission = t.get("sig-dis-2024/step-1/step-1-submission")  # due July 10, not done
    assert (submission.status, submission.escalates) == ("overdue", True)
    consolidation = t.get("sig-dis-2024/step-1/step-1-consolidation")  # a plan that passed
    assert (consolidation.status, consolidation.escalates) == ("behind-plan", False)
    prework = t.get("sig-dis-2024/step-1/step-2-prework")  # CDE's date, nothing to submit
    assert (prework.status, prework.escalates) == ("overdue", False)
    assert t.get("sig-dis-2024/step-1/step-2-workshop").status == "past"  # a meeting
    reminders = {(r.items[0], r.kind, r.to): r for r in plan(t)}
    lead = "amoreno@riverbend.example.org"
    assert ("sig-dis-2024/step-1/step-1-submission", "overdue", lead) in reminders
    selpa = "cim@north-selpa.example.org"  # told once, in its own email (no Cc)
    assert ("sig-dis-2024/step-1/step-1-submission", "escalation", selpa) in reminders
    assert ("sig-dis-2024/step-1/step-1-consolidation", "behind-plan", lead) in reminders
    assert ("sig-dis-2024/step-1/step-2-prework", "overdue", lead) in reminders
    told = {r.items[0] for r in reminders.values() if r.kind == "escalation"}
    assert "sig-dis-2024/step-1/step-1-consolidation" not in told
    assert "sig-dis-2024/step-1/step-2-prework" not in told
    assert all(r.cc == () for r in reminders.values())


def test_optional_boxes_and_a_planned_box_never_escalate(guides, make_lea: MakeLea) -> None:
    # Sunrise without its done marks, as of December 9, 2024: every box is late.
    t = expand(guides, make_lea("sunrise-usd", done={}), D(2024, 12, 9))
    root_cause_2 = t.get(T + "step-2/box-20-root-cause-2")
    assert (root_cause_2.status, root_cause_2.escalates) == ("behind-plan", False)
    told = {r.items[0] for r in plan(t) if r.kind == "escalation"}
    assert told == {T + "step-1/step-1-submission", T + "step-2/step-2-submission",
                       T + "step-3/box-28-submission"}  # fmt: skip


def test_a_done_submission_closes_its_boxes(guides, make_lea: MakeLea) -> None:
    sunrise = make_lea("sunrise-usd").model_copy(
        update={"done": {T + "step-1/step-1-submission": D(2024, 7, 9)}}
    )
    t = expand(guides, sunrise, D(2024, 8, 1))
    box = t.get(T + "step-1/box-10-data-drill-down")
    assert (box.status, box.done_on) == ("done", D(2024, 7, 9))
    assert box.done_note and "Submit Step 1" in box.done_note
    assert t.get(T + "step-2/box-16-prioritized-problem-areas").status != "done"  # next step


def test_outcomes_conditions_and_returned(guides, make_lea: MakeLea) -> None:
    step1 = T + "step-1/step-1-submission"
    box26 = T + "step-2/box-26-additional-relevant-data"
    plain = expand(guides, make_lea("sunrise-usd"), D(2024, 8, 1))
    assert plain.get(box26).requirement == "optional"
    conditions = {step1: DoneMark(D(2024, 7, 9), None, "accepted-with-conditions")}
    t = expand(guides, make_lea("sunrise-usd", done={}), D(2024, 8, 1), conditions)
    assert t.get(box26).requirement == "required"
    assert t.get(step1).outcome == "accepted-with-conditions"
    returned = {step1: DoneMark(D(2024, 7, 9), None, "returned", D(2024, 7, 20))}
    t = expand(guides, make_lea("sunrise-usd", done={}), D(2024, 8, 1), returned)
    entry = t.get(step1)
    assert entry.status == "at-risk" and "Returned by CDE on July 20, 2024" in entry.warnings[0]
    assert t.get(T + "step-1/box-10-data-drill-down").status != "done"  # not closed


def test_plan_approval_starts_step_4(guides, make_lea: MakeLea) -> None:
    implement = "sig-dis-2024/step-4/implement"
    before = expand(guides, riverbend(make_lea), D(2025, 1, 1)).get(implement)
    assert (before.start, before.date_source) == (D(2024, 12, 7), "assumed")
    approved = {S3 + "step-3-submission": DoneMark(D(2024, 12, 5), None, "accepted",
                                                   D(2025, 2, 3))}  # fmt: skip
    after = expand(guides, riverbend(make_lea), D(2025, 1, 1), approved).get(implement)
    assert (after.start, after.date_source, after.assumption) == (D(2025, 2, 3), "cde", None)
    assert "approval on February 3, 2025" in after.rule


# ---------------------------------------------------------------- feasible plans


def test_step_3_follows_the_step_2_submission(guides, make_lea: MakeLea) -> None:
    t = expand(guides, riverbend(make_lea), D(2024, 5, 1))
    plan_work = t.get(S3 + "action-plan")
    # After the October 10 submission: Friday October 11 at the earliest, never September.
    assert plan_work.earliest_start == D(2024, 10, 11)
    assert plan_work.latest_start is not None and plan_work.latest_start >= D(2024, 10, 11)


def test_board_meeting_in_the_window_with_packet_lead(guides, make_lea: MakeLea) -> None:
    # With 3 + 2 + 2 days of October work after the Oct 10 submission (Oct 11, 14, 15; then
    # 16-17; then 18, 21), the Nov 12 meeting fits: documents final 10 working days before
    # it (Oct 28, 29, 30, 31, Nov 1, 4, 5, 6, 7, 8; Nov 11 is Veterans Day) = October 28.
    t = expand(guides, riverbend(make_lea, overrides=SHORT_OCTOBER), D(2024, 5, 1))
    approvals = t.get(S3 + "approvals")
    assert (approvals.latest_start, approvals.latest_finish) == (D(2024, 10, 29), D(2024, 11, 12))
    assert approvals.notes[-1] == (
        "Board meeting November 12, 2024; documents final for the board packet by "
        "October 28, 2024 (10 working days before)"
    )
    assert t.calendar.count(D(2024, 10, 28), D(2024, 11, 12)) == 10
    assert t.get(S3 + "finalize-plan").latest_finish == D(2024, 10, 28)
    assert approvals.warnings == ()


def test_no_november_board_meeting(guides, make_lea: MakeLea) -> None:
    # Meetings Oct 8 and Dec 10 only. Oct 8 is before the work can be ready (it follows the
    # Oct 10 submission); Dec 10 is after Dec 3, the last day that leaves the Dec 5 check-in
    # and the two days of the Dec 6 submission. Soonest possible meeting: documents final
    # Oct 21, plus 10 working days = Nov 4.
    meetings = {"board_meetings": [D(2024, 10, 8), D(2024, 12, 10)]}
    lea = riverbend(make_lea, overrides=SHORT_OCTOBER, calendar=meetings)
    approvals = expand(guides, lea, D(2024, 5, 1)).get(S3 + "approvals")
    assert approvals.status == "at-risk"
    assert approvals.latest_finish != D(2024, 10, 8)
    assert approvals.warnings[-1].startswith(
        "No board meeting in time: schedule a special board meeting between November 4, 2024 "
        "and December 3, 2024"
    )
    # A Dec 3 meeting still meets the CDE deadline: taken, and said to be after the target.
    meetings = {"board_meetings": [D(2024, 10, 8), D(2024, 12, 3)]}
    lea = riverbend(make_lea, overrides=SHORT_OCTOBER, calendar=meetings)
    approvals = expand(guides, lea, D(2024, 5, 1)).get(S3 + "approvals")
    assert (approvals.latest_finish, approvals.status) == (D(2024, 12, 3), "upcoming")
    assert "after the guide's target" in approvals.warnings[0]


def test_thanksgiving_closure_keeps_the_nov_26_meeting(guides, make_lea: MakeLea) -> None:
    # The board meets Nov 26, in the Thanksgiving-week closure (Nov 25-29). Documents final
    # 10 working days before: Nov 22, 21, 20, 19, 18, 15, 14, 13, 12, 8 -> November 8.
    calendar = {
        "board_meetings": [D(2024, 10, 8), D(2024, 11, 26), D(2024, 12, 10)],
        "closures": [{"from": D(2024, 11, 25), "to": D(2024, 11, 29), "name": "Thanksgiving"}],
    }
    t = expand(guides, riverbend(make_lea, calendar=calendar), D(2024, 5, 1))
    approvals = t.get(S3 + "approvals")
    assert approvals.latest_finish == D(2024, 11, 26)
    assert "documents final for the board packet by November 8, 2024" in approvals.notes[-1]
    # Default October work (10 + 5 + 5 days after Oct 10) ends Nov 7: late for the window,
    # said so, but in time for the packet.
    finalize = t.get(S3 + "finalize-plan")
    assert finalize.latest_finish == D(2024, 11, 8)
    assert "after the guide's target" in finalize.warnings[0]


def test_no_board_calendar_is_said(guides, make_lea: MakeLea) -> None:
    t = expand(guides, riverbend(make_lea, calendar={"board_meetings": []}), D(2024, 5, 1))
    assert "No board meeting dates in the profile" in t.get(S3 + "approvals").warnings[-1]


def test_work_needing_families_is_flagged_in_the_summer_break(guides, make_lea: MakeLea) -> None:
    summer = {"closures": [{"from": D(2024, 6, 14), "to": D(2024, 8, 16), "name": "Summer break",
                            "kind": "summer"}]}  # fmt: skip
    t = expand(guides, make_lea("sunrise-usd", done={}, calendar=summer), D(2024, 5, 1))
    parent = t.get(T + "step-1/box-07-parent-input")
    assert any("Summer break" in w and "families" in w for w in parent.warnings)
    assert t.get(T + "step-1/box-01-cim-team").warnings == ()  # office work: not flagged
    assert t.calendar.is_working(D(2024, 7, 1))  # the district office works in the summer


# ---------------------------------------------------------------- assumptions


def test_assumed_meeting_on_new_years_day_moves_cde_dates_stay(guides, make_lea) -> None:
    t = expand(guides, riverbend(make_lea), D(2024, 5, 1))
    # "First Wednesday" of January 2025 is New Year's Day, inside the Dec 23 - Jan 3 winter
    # break: the next working day is Monday, January 6.
    january = t.get("implementation-2024/step-4/cim-team-meeting/2025-01")
    assert january.due == D(2025, 1, 6)
    assert "New Year's Day" in january.notes[-1]
    # CDE's own Saturday date (the report due October 10, 2026) is kept as given.
    report = t.get("sig-dis-2024/step-4/quarterly-report/2026-09")
    assert report.due == D(2026, 10, 10)
    assert any("CDE's date is kept as given" in n for n in report.notes)


# ---------------------------------------------------------------- reminders on working days


@pytest.mark.parametrize("name", ["sunrise-usd", "riverbend-usd", "lakeside-usd"])
def test_reminders_never_on_a_non_working_day(guides, make_lea, name: str) -> None:
    lea = make_lea(name, done={})
    t = expand(guides, lea, D(2024, 1, 1))
    zone = ZoneInfo(lea.timezone)
    days = [r.send_at.astimezone(zone) for r in plan(t)]
    in_2025 = [d for d in days if d.year == 2025]
    assert in_2025, "a whole year of reminders"
    assert [d for d in days if not t.calendar.is_working(d.date())] == []
    assert {(d.hour, d.minute) for d in days} == {(lea.reminders.send_at.hour,
                                                   lea.reminders.send_at.minute)}  # fmt: skip


def test_working_day_rule_can_be_turned_off(guides, make_lea: MakeLea) -> None:
    lea = make_lea("lakeside-usd", reminders={"working_days_only": False})
    t: Timeline = expand(guides, lea, D(2024, 1, 1))
    zone = ZoneInfo(lea.timezone)
    assert any(r.send_at.astimezone(zone).weekday() >= 5 for r in plan(t))


def test_weekend_reminder_moves_back_and_overdue_forward(guides, make_lea: MakeLea) -> None:
    lea = make_lea("lakeside-usd", done={})
    t = expand(guides, lea, D(2024, 1, 1))
    report = "implementation-2024/step-4/progress-report/2025-03"
    # Lakeside's first quarterly progress report is due Thursday April 10, 2025 (assumed):
    # 30 days before is Tuesday March 11 (kept); the overdue notice is Friday April 11.
    # Its 2025-06 report is due Thursday July 10; 1 day before: Wednesday July 9; the
    # 2025-12 report is due Saturday January 10, 2026 -> moved by the assumption to Monday
    # January 12; its 0-day reminder is that Monday and its overdue notice Tuesday the 13th.
    by = {(r.items[0], r.kind, r.offset_days): r.send_at.astimezone(ZoneInfo(lea.timezone)).date()
          for r in plan(t) if r.to == "cito@lakeside.example.org"}  # fmt: skip
    assert by[(report, "due", 30)] == D(2025, 3, 11)
    assert by[(report, "overdue", 0)] == D(2025, 4, 11)
    december = "implementation-2024/step-4/progress-report/2025-12"
    assert t.get(december).due == D(2026, 1, 12)
    assert by[(december, "due", 0)] == D(2026, 1, 12)
    assert by[(december, "overdue", 0)] == D(2026, 1, 13)
    # 14 days before January 12 is Monday December 29, 2025 (a working day for Lakeside).
    assert by[(december, "due", 14)] == D(2025, 12, 29)


# ---------------------------------------------------------------- done marks in the store


def test_done_with_note_and_outcome_via_cli(tmp_path: Path) -> None:
    env = {"PACING_STATE_DIR": str(tmp_path)}
    item = "targeted-l3-2024/step-1/step-1-submission"
    profile = tmp_path / "p.toml"
    text = Path("examples/sunrise-usd.toml").read_text()
    profile.write_text(text.split("[done]")[0])
    run = CliRunner().invoke
    result = run(cli, ["done", str(profile), item, "--on", "2024-07-09", "--note", "Sent by Luis"],
                 env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    result = run(cli, ["done", str(profile), item, "--outcome", "accepted-with-conditions",
                       "--outcome-on", "2024-08-02"], env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "accepted-with-conditions on 2024-08-02" in result.output
    mark = State(f"sqlite:///{tmp_path / 'pacing.db'}").done_marks("sunrise-usd")[item]
    assert mark == DoneMark(D(2024, 7, 9), "Sent by Luis", "accepted-with-conditions",
                            D(2024, 8, 2))  # fmt: skip
    box = "targeted-l3-2024/step-1/box-07-parent-input"
    result = run(cli, ["done", str(profile), box, "--outcome", "accepted"], env=env)
    assert result.exit_code == 1 and "is not a step's submission" in result.output
    done_in_profile = run(cli, ["undo", "examples/sunrise-usd.toml", item], env=env)
    assert done_in_profile.exit_code == 1 and "remove it there" in done_in_profile.output


def test_guide_references_must_be_submissions() -> None:
    from pacing.core.guide import guide_problems

    g = Guide.model_validate({"id": "g", "title": "G", "source": "s", "items": [
        {"id": "a", "step": 1, "title": "A", "kind": "deadline", "when": {"text": "x",
         "on": D(2024, 7, 1)}},
        {"id": "b", "step": 2, "title": "B", "kind": "task", "duration_days": 2,
         "follows": ["a"], "required_if_conditions": "a"},
        {"id": "c", "step": 2, "title": "C", "kind": "deadline", "depends_on": ["b"],
         "when": {"text": "y", "on": D(2024, 9, 1)}},
    ]})  # fmt: skip
    assert [m for _, m in guide_problems(g)] == [
        "'a' is not a submission of this guide", "'a' is not a submission of this guide"
    ]
