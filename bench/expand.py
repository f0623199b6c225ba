"""Benchmark `expand()` over 2,300 generated LEA profiles in one process.

Goal: <= 2 ms per LEA (warm). Always exits 0: it is a report; read PASS/MISS.

    python bench/expand.py
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from typing import Any

from pacing.adapters.files import bundled_guides, known_ids
from pacing.core.lea import Lea
from pacing.core.timeline import applicable_guides, expand

N_LEAS = 2300
RUNS = 3
GOAL_MS = 2.0
TODAY = dt.date(2024, 5, 1)
SEED = 2024

ROLES = ["superintendent", "sped-admin", "gen-ed-admin", "site-admin", "selpa-rep"]
RULES = [
    "FREQ=MONTHLY;BYDAY=2TU",
    "FREQ=MONTHLY;BYDAY=3TH",
    "FREQ=MONTHLY;BYDAY=1MO,3MO",
    "FREQ=MONTHLY;BYDAY=4WE",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU",
]
CLOSURES = [
    {"from": "2024-11-25", "to": "2024-11-29", "name": "Thanksgiving break"},
    {"from": "2024-12-23", "to": "2025-01-03", "name": "Winter break"},
    {"from": "2025-02-17", "to": "2025-02-21", "name": "February break"},
    {"from": "2025-03-31", "to": "2025-04-04", "name": "Spring break"},
    {"from": "2025-06-16", "to": "2025-08-08", "name": "Summer break"},
]
# Real item ids from the bundled guides, with overrides that make sense for them.
SIG_DIS_OVERRIDES: list[tuple[str, dict[str, Any]]] = [
    ("sig-dis-2024/step-1/data-drill-down", {"duration_days": 25}),
    ("sig-dis-2024/step-1/case-study", {"duration_days": 30}),
    ("sig-dis-2024/step-2/theory-of-action", {"duration_days": 15}),
    ("sig-dis-2024/step-3/action-plan", {"duration_days": 20}),
    ("sig-dis-2024/step-1/step-1-submission", {"due": "2024-07-01"}),
]
L3_OVERRIDES: list[tuple[str, dict[str, Any]]] = [
    ("targeted-l3-2024/step-1/box-10-data-drill-down", {"duration_days": 30}),
    ("targeted-l3-2024/step-2/box-19-root-cause-1", {"duration_days": 20}),
    ("targeted-l3-2024/step-3/box-27-plan-for-improvement-link", {"duration_days": 35}),
]
IMPLEMENTATION_OVERRIDES: list[tuple[str, dict[str, Any]]] = [
    (
        "implementation-2024/step-4/cim-team-meeting",
        {"rrule": "FREQ=MONTHLY;BYDAY=2WE", "start_time": "15:30", "end_time": "16:30"},
    ),
    (
        "implementation-2024/step-4/cim-team-meeting",
        {"dates": ["2024-09-11", "2024-10-09", "2024-11-13", "2025-01-15"]},
    ),
    ("implementation-2024/step-4/progress-report", {"duration_days": 8}),
]
DONE: dict[str, list[str]] = {
    "sig": ["sig-dis-2024/step-0/assurance-of-compliance", "sig-dis-2024/step-0/intro-series"],
    "l3": ["targeted-l3-2024/step-1/box-01-cim-team"],
}


def profile(i: int, rng: random.Random) -> dict[str, Any]:
    """One varied LEA profile (as a TOML file would load), deterministic for the seed."""
    tier = rng.choice(["universal", "targeted", "targeted", "targeted", "intensive"])
    monitoring: dict[str, Any] = {
        "tier": tier,
        "cohort": 2024,
        "sig_dis": rng.choice(["new", "continuing", "no", "no"]),
        "sig_dis_indicators": rng.randint(1, 4),
    }
    if tier == "targeted":
        monitoring["level"] = rng.randint(1, 3)
    if monitoring["sig_dis"] != "no" and rng.random() < 0.5:
        monitoring["cceis_services_start"] = f"2024-09-{rng.randint(2, 16):02d}"

    calendar: dict[str, Any] = {
        "state_holidays": rng.random() < 0.8,
        "board_packet_lead_days": rng.choice([0, 5, 10, 15]),
    }
    if rng.random() < 0.5:
        calendar["board_meeting_rule"] = rng.choice(RULES)
    else:
        start = dt.date(2024, rng.randint(7, 9), rng.randint(1, 20))
        calendar["board_meetings"] = [
            (start + dt.timedelta(weeks=4 * k)).isoformat() for k in range(rng.randint(4, 14))
        ]
    if rng.random() < 0.6:
        calendar["closures"] = rng.sample(CLOSURES, rng.randint(1, 4))

    overrides: dict[str, dict[str, Any]] = {}
    done: dict[str, str] = {}
    candidates: list[tuple[str, dict[str, Any]]] = []
    if monitoring["sig_dis"] != "no":
        candidates += SIG_DIS_OVERRIDES
        if rng.random() < 0.3:
            done.update(dict.fromkeys(DONE["sig"], "2024-04-15"))
    if tier == "targeted" and monitoring["level"] == 3:
        candidates += L3_OVERRIDES
        if rng.random() < 0.3:
            done.update(dict.fromkeys(DONE["l3"], "2024-04-20"))
    if tier in ("targeted", "intensive"):
        candidates += IMPLEMENTATION_OVERRIDES
    if candidates and rng.random() < 0.4:
        for item_id, change in rng.sample(candidates, min(len(candidates), rng.randint(1, 3))):
            overrides[item_id] = change

    team = [
        {"role": role, "name": f"Person {i}-{k}", "email": f"p{k}@lea{i}.example.org"}
        for k, role in enumerate(rng.sample(ROLES, rng.randint(2, 5)))
    ]
    team[0]["lead"] = True
    contacts = {"fmta_consultant": {"name": "Casey Park", "email": "cpark@cde.example.gov"}}
    if rng.random() < 0.5:
        contacts["selpa"] = {"name": f"SELPA {i % 40}", "email": f"cim@selpa{i % 40}.example.org"}
    return {
        "id": f"lea-{i:04d}",
        "name": f"LEA {i:04d} Unified School District",
        "cds": f"{10_000_000_000_000 + i:014d}",
        "monitoring": monitoring,
        "team": team,
        "contacts": contacts,
        "calendar": calendar,
        "overrides": overrides,
        "done": done,
    }


def build_leas(n: int = N_LEAS) -> list[Lea]:
    rng = random.Random(SEED)
    guides = bundled_guides()
    leas = []
    for i in range(n):
        lea = Lea.model_validate(profile(i, rng))
        known = known_ids(applicable_guides(guides, lea))
        unknown = [k for k in (*lea.overrides, *lea.done) if k not in known]
        assert not unknown, f"{lea.id}: unknown item ids {unknown}"
        leas.append(lea)
    return leas


def run_batch(leas: list[Lea]) -> tuple[float, int]:
    guides = bundled_guides()
    started = time.perf_counter()
    items = sum(len(expand(guides, lea, today=TODAY).items) for lea in leas)
    return time.perf_counter() - started, items


def main() -> None:
    started = time.perf_counter()
    bundled_guides()  # loading the TOML guides is not part of expand()
    leas = build_leas()
    built = time.perf_counter() - started
    mix: dict[str, int] = {}
    for lea in leas:
        m = lea.monitoring
        key = f"{m.tier}{m.level or ''}" + ("+sigdis" if m.sig_dis != "no" else "")
        mix[key] = mix.get(key, 0) + 1

    cold, items = run_batch(leas)
    warm = [run_batch(leas)[0] for _ in range(RUNS)]
    per_lea = statistics.median(warm) * 1000 / len(leas)
    cold_per_lea = cold * 1000 / len(leas)
    ratio = per_lea / GOAL_MS

    print(f"LEAs: {len(leas)} (built and validated in {built:.2f} s)")
    print("mix: " + ", ".join(f"{k} {v}" for k, v in sorted(mix.items())))
    print(f"total items: {items} ({items / len(leas):.1f} per LEA)")
    print(f"cold (first) run: {cold * 1000:.0f} ms, {cold_per_lea:.2f} ms/LEA")
    print("warm runs: " + ", ".join(f"{w * 1000:.0f} ms" for w in warm))
    verdict = "PASS" if per_lea <= GOAL_MS else "MISS"
    print(
        f"expand: {per_lea:.2f} ms/LEA (median of {RUNS} warm runs; goal <= {GOAL_MS} ms: "
        f"{ratio:.2f}x of limit) {verdict}"
    )


if __name__ == "__main__":
    main()
