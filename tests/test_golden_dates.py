"""Every dated item of seeds 000, 002, 003 and 004 comes out on the seed's own date."""

from __future__ import annotations

import datetime as dt

import pytest

from pacing.core.timeline import Timeline, expand

D = dt.date
T = dt.time


@pytest.fixture
def sig_dis(guides, make_lea, may_2024) -> Timeline:  # a new Sig Dis 2024 LEA, Targeted Level 3
    lea = make_lea("riverbend-usd", monitoring={"level": 3}, overrides={}, done={})
    return expand(guides, lea, may_2024)


# (item id, start, due) exactly as seed 003 states the date or window.
SEED_003 = [
    ("sig-dis-2024/step-0/intro-series", None, D(2024, 4, 1)),  # "Prior to April 2, 2024"
    ("sig-dis-2024/step-0/virtual-meeting", None, D(2024, 4, 2)),
    ("sig-dis-2024/step-0/assurance-of-compliance", None, D(2024, 4, 19)),
    ("sig-dis-2024/step-0/spp-tap-mou-meeting", None, D(2024, 4, 19)),
    ("sig-dis-2024/step-0/fmta-meeting", D(2024, 3, 21), D(2024, 4, 30)),  # Late March - April
    ("sig-dis-2024/step-1/identify-team", D(2024, 4, 1), D(2024, 4, 30)),
    ("sig-dis-2024/step-1/team-meetings", D(2024, 4, 1), D(2026, 9, 30)),  # April 2024 - ongoing
    ("sig-dis-2024/step-1/partner-meetings", D(2024, 4, 1), D(2026, 9, 30)),
    ("sig-dis-2024/step-1/workshop-a-prework", None, D(2024, 4, 10)),
    ("sig-dis-2024/step-1/step-1-workshop", D(2024, 4, 11), D(2024, 4, 25)),
    ("sig-dis-2024/step-1/data-drill-down", D(2024, 4, 1), D(2024, 5, 31)),
    ("sig-dis-2024/step-1/infrastructure-analysis", D(2024, 4, 1), D(2024, 5, 31)),
    ("sig-dis-2024/step-1/step-2-prework", None, D(2024, 6, 10)),
    ("sig-dis-2024/step-1/step-2-workshop", None, D(2024, 6, 11)),
    ("sig-dis-2024/step-1/ppp-review", D(2024, 5, 1), D(2024, 6, 30)),
    ("sig-dis-2024/step-1/case-study", D(2024, 5, 1), D(2024, 6, 30)),
    ("sig-dis-2024/step-1/parent-input", D(2024, 5, 1), D(2024, 6, 30)),
    ("sig-dis-2024/step-1/step-1-fmta-check-in", None, D(2024, 7, 9)),
    ("sig-dis-2024/step-1/step-1-submission", None, D(2024, 7, 10)),
    ("sig-dis-2024/step-2/partners-root-causes", D(2024, 7, 1), D(2024, 10, 31)),
    ("sig-dis-2024/step-2/initiative-inventory", D(2024, 7, 1), D(2024, 10, 31)),
    ("sig-dis-2024/step-2/theory-of-action", D(2024, 7, 1), D(2024, 10, 31)),
    ("sig-dis-2024/step-2/target-population", D(2024, 7, 1), D(2024, 10, 31)),
    ("sig-dis-2024/step-2/step-2-submission", None, D(2024, 10, 10)),
    ("sig-dis-2024/step-3/action-plan", D(2024, 10, 1), D(2024, 10, 31)),
    ("sig-dis-2024/step-3/budget-forms", D(2024, 10, 1), D(2024, 10, 31)),
    ("sig-dis-2024/step-3/step-3-fmta-check-in-october", None, D(2024, 10, 9)),
    ("sig-dis-2024/step-3/partners-plan-feedback", D(2024, 10, 1), D(2024, 10, 31)),
    ("sig-dis-2024/step-3/finalize-plan", D(2024, 10, 1), D(2024, 10, 31)),
    ("sig-dis-2024/step-3/approvals", D(2024, 11, 1), D(2024, 11, 30)),
    ("sig-dis-2024/step-3/step-3-fmta-check-in", None, D(2024, 12, 5)),
    ("sig-dis-2024/step-3/step-3-submission", None, D(2024, 12, 6)),
    ("sig-dis-2024/step-4/implement", D(2024, 12, 7), D(2026, 9, 30)),
    ("sig-dis-2024/step-4/final-budget-amendment", D(2025, 3, 1), D(2025, 3, 31)),
    ("sig-dis-2024/step-4/quarterly-report/2025-03", None, D(2025, 4, 10)),
    ("sig-dis-2024/step-4/quarterly-report/2025-06", None, D(2025, 7, 10)),
    ("sig-dis-2024/step-4/quarterly-report/2025-09", None, D(2025, 10, 10)),
    ("sig-dis-2024/step-4/quarterly-report/2025-12", None, D(2026, 1, 10)),
    ("sig-dis-2024/step-4/quarterly-report/2026-03", None, D(2026, 4, 10)),
    ("sig-dis-2024/step-4/quarterly-report/2026-06", None, D(2026, 7, 10)),
    ("sig-dis-2024/step-4/quarterly-report/2026-09", None, D(2026, 10, 10)),
    ("sig-dis-2024/step-4/quarterly-report/2026-12", None, D(2027, 1, 10)),
    ("sig-dis-2024/step-4/unduplicated-count/2025", None, D(2025, 7, 10)),
    ("sig-dis-2024/step-4/unduplicated-count/2026", None, D(2026, 7, 10)),
    ("sig-dis-2024/step-4/unduplicated-count/2027", None, D(2027, 7, 10)),
    # Seed 002: TA Menu of Services.
    ("ta-menu-2024/step-0/facilitator-mou", None, D(2024, 4, 19)),
    ("ta-menu-2024/step-1/cde-funded-ta-complete", None, D(2024, 6, 30)),
    # Seed 000: the three Stepwell submissions.
    ("targeted-l3-2024/step-1/step-1-submission", None, D(2024, 7, 10)),
    ("targeted-l3-2024/step-2/step-2-submission", None, D(2024, 10, 10)),
    ("targeted-l3-2024/step-3/box-28-submission", None, D(2024, 12, 6)),
]


@pytest.mark.parametrize(("item_id", "start", "due"), SEED_003, ids=[s[0] for s in SEED_003])
def test_seed_dates(sig_dis: Timeline, item_id: str, start: dt.date | None, due: dt.date) -> None:
    entry = sig_dis.get(item_id)
    assert (entry.start, entry.due) == (start, due)
    assert entry.rule


def test_every_dated_seed_item_is_covered(sig_dis: Timeline) -> None:
    seeds = {e.id for e in sig_dis.items if e.guide != "implementation-2024"}
    dated = {e.id for e in sig_dis.items if e.id in seeds and (e.series or e.item.when)}
    assert dated == {s[0] for s in SEED_003} | {"sig-dis-2024/step-4/student-tracking"}


def test_timed_meetings(sig_dis: Timeline) -> None:
    meeting = sig_dis.get("sig-dis-2024/step-0/virtual-meeting")
    assert (meeting.kind, meeting.start_time, meeting.end_time) == ("meeting", T(12), T(13, 30))
    workshop = sig_dis.get("sig-dis-2024/step-1/step-2-workshop")
    assert (workshop.start_time, workshop.end_time) == (T(11), T(13))


def test_quarterly_reports_come_from_the_budget_period(sig_dis: Timeline) -> None:
    reports = [e for e in sig_dis.items if e.series == "sig-dis-2024/step-4/quarterly-report"]
    assert len(reports) == 8
    assert reports[0].title.endswith("(July 1, 2024 - March 31, 2025)")
    assert reports[-1].title.endswith("(October 1, 2026 - December 31, 2026)")
    assert "10th day of the month after the quarter ends" in reports[1].rule
    assert "27-month CCEIS budget period July 1, 2024 - September 30, 2026" in reports[1].rule
    assert "final expenditure" in " ".join(reports[6].notes)
    assert all(e.submit_to == ("SigDisp@cde.ca.gov",) for e in reports)


def test_requirement_differs_for_new_and_continuing(guides, make_lea, may_2024) -> None:
    new = expand(guides, make_lea("riverbend-usd"), may_2024)
    cont = expand(guides, make_lea("riverbend-usd", monitoring={"sig_dis": "continuing"}), may_2024)
    item = "sig-dis-2024/step-0/intro-series"
    assert (new.get(item).requirement, cont.get(item).requirement) == ("required", "recommended")


def test_student_tracking_starts_at_cceis_services_start(sig_dis: Timeline) -> None:
    tracking = sig_dis.get("sig-dis-2024/step-4/student-tracking")
    assert (tracking.start, tracking.due) == (D(2024, 9, 3), D(2028, 9, 30))


def test_targeted_l3_boxes(guides, make_lea, may_2024) -> None:
    t = expand(guides, make_lea("sunrise-usd"), may_2024)
    boxes = [e for e in t.items if e.item.box]
    assert sorted(e.item.box for e in boxes) == list(range(1, 29))
    na = {e.item.box for e in boxes if e.status == "not-applicable"}
    assert na == {2, 3, 4, 5, 6, 8, 9, 12, 18, 23, 24, 25}
    assert all("write N/A" in (e.na_reason or "") for e in boxes if e.item.box in na)
    optional = {e.item.box for e in boxes if e.requirement == "optional"}
    assert optional == {20, 21, 22, 26}


# Seed 004: progress reports by tier and level, the monthly CIM team meeting. The report day is
# pacing's assumption (the 10th): Saturday January 10, 2026 moves to Monday January 12.
@pytest.mark.parametrize(
    ("changes", "dues", "submit_to"),
    [
        ({"monitoring": {"tier": "intensive", "level": None}},
         [D(2025, 4, 10), D(2025, 7, 10), D(2025, 10, 10), D(2026, 1, 12), D(2026, 4, 10),
          D(2026, 7, 10)],
         ("FMTA consultant Morgan Lee <mlee@cde.example.gov>", "intensivemonitoring@cde.ca.gov")),
        ({"monitoring": {"level": 3}}, [D(2025, 7, 10), D(2026, 1, 12), D(2026, 7, 10)],
         ("FMTA consultant Morgan Lee <mlee@cde.example.gov>", "targetedmonitoring@cde.ca.gov")),
        ({"monitoring": {"level": 2}}, [D(2025, 7, 10), D(2026, 1, 12), D(2026, 7, 10)],
         ("SELPA East Valley SELPA <office@eastvalley-selpa.example.org>",)),
    ],
)  # fmt: skip
def test_progress_reports(guides, make_lea, may_2024, changes, dues, submit_to) -> None:
    t = expand(guides, make_lea("sunrise-usd", **changes), may_2024)
    reports = [e for e in t.items if e.series == "implementation-2024/step-4/progress-report"]
    assert [e.due for e in reports] == dues
    assert all(e.submit_to == submit_to for e in reports)
    assert all("Progress Report Template" in (e.item.assumption or "") for e in reports)


def test_level_1_progress_report_is_optional_universal_not_applicable(guides, make_lea, may_2024):
    level_1 = expand(guides, make_lea("sunrise-usd", monitoring={"level": 1}), may_2024)
    report = level_1.get("implementation-2024/step-4/progress-report/2025-06")
    assert report.requirement == "optional"
    universal = make_lea("sunrise-usd", monitoring={"tier": "universal", "level": None})
    assert not [e for e in expand(guides, universal, may_2024).items if e.step == 4]


def test_monthly_meeting_follows_assumption_and_override(guides, make_lea, may_2024) -> None:
    default = expand(guides, make_lea("lakeside-usd"), may_2024)
    meetings = [
        e for e in default.items if e.series == "implementation-2024/step-4/cim-team-meeting"
    ]
    assert len(meetings) == 18 and meetings[1].due == D(2025, 2, 5)  # first Wednesday
    assert "first Wednesday" in (meetings[0].assumption or "")
    # January 1, 2025 is the first Wednesday and New Year's Day: moved to Thursday January 2.
    assert meetings[0].due == D(2025, 1, 2) and "New Year's Day" in meetings[0].notes[-1]
    custom = expand(guides, make_lea("sunrise-usd"), may_2024)  # overrides: 2nd Wednesday 15:30
    first = custom.get("implementation-2024/step-4/cim-team-meeting/2025-01")
    assert (first.due, first.start_time, first.end_time) == (D(2025, 1, 8), T(15, 30), T(16, 30))
