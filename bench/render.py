"""Benchmark rendering the .ics feeds of 2,300 generated LEA profiles in one process.

Per LEA, as the feed book does it: `expand()`, `feed_events()`, `revise({}, ...)` (a first
render: no previous revisions) and `to_ics()`. The LEAs are bench/expand.py's generator.
Goal: <= 10 ms per LEA (median of 3 batches). On a miss, cProfile one batch of a sample and
print the top functions. Always exits 0: it is a report; read PASS/MISS.

    python bench/render.py
"""

from __future__ import annotations

import cProfile
import datetime as dt
import io
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from expand import TODAY, build_leas  # bench/expand.py: the LEA generator

from pacing.adapters.files import bundled_guides
from pacing.core.lea import Lea
from pacing.core.timeline import expand
from pacing.export.ics import feed_events, revise, to_ics

RUNS = 3
GOAL_MS = 10.0
NOW = dt.datetime(2024, 5, 1, 15, 0, tzinfo=dt.UTC)
STAGES = ("expand", "feed_events", "revise", "to_ics")
WARMUP_LEAS = 100
PROFILE_LEAS = 400  # a sample is enough for the shape of the profile
TOP = 25


def render(guides: Any, lea: Lea, clock: dict[str, float] | None = None) -> int:
    """One LEA's feed, bytes returned; stage times added to `clock` when given."""
    t0 = time.perf_counter()
    timeline = expand(guides, lea, TODAY)
    t1 = time.perf_counter()
    events = feed_events(timeline)
    t2 = time.perf_counter()
    revisions = revise({}, events, NOW)
    t3 = time.perf_counter()
    body = to_ics(f"CIM: {lea.name}", lea.id, events, revisions)
    t4 = time.perf_counter()
    if clock is not None:
        for stage, spent in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            clock[stage] += spent
    return len(body)


def run_batch(guides: Any, leas: list[Lea]) -> tuple[float, int, dict[str, float]]:
    clock = dict.fromkeys(STAGES, 0.0)
    started = time.perf_counter()
    size = sum(render(guides, lea, clock) for lea in leas)
    return time.perf_counter() - started, size, clock


def profile(guides: Any, leas: list[Lea]) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for lea in leas:
        render(guides, lea)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(TOP)
    stats.sort_stats("cumulative").print_stats(TOP)
    return out.getvalue()


def main() -> None:
    started = time.perf_counter()
    guides = bundled_guides()
    leas = build_leas()
    built = time.perf_counter() - started

    warmup = leas[:WARMUP_LEAS]  # first imports and caches; a full cold batch adds nothing
    cold = run_batch(guides, warmup)[0]
    batches = [run_batch(guides, leas) for _ in range(RUNS)]
    size = batches[0][1]
    times = [b[0] for b in batches]
    per_lea = statistics.median(times) * 1000 / len(leas)
    middle = sorted(batches, key=lambda b: b[0])[RUNS // 2]

    print(f"LEAs: {len(leas)} (built and validated in {built:.2f} s)")
    print(f"total .ics bytes: {size:,} ({size / len(leas) / 1024:.1f} KiB per LEA)")
    print(f"cold warm-up ({len(warmup)} LEAs): {cold * 1000 / len(warmup):.2f} ms/LEA")
    print("batches: " + ", ".join(f"{t * 1000:.0f} ms" for t in times))
    print(
        "per LEA by stage (median batch): "
        + ", ".join(f"{s} {middle[2][s] * 1000 / len(leas):.2f} ms" for s in STAGES)
    )
    verdict = "PASS" if per_lea <= GOAL_MS else "MISS"
    print(
        f"render: {per_lea:.2f} ms/LEA (median of {RUNS} batches; goal <= {GOAL_MS:g} ms: "
        f"{per_lea / GOAL_MS:.2f}x of limit) {verdict}"
    )
    if verdict == "MISS":
        sample = leas[:PROFILE_LEAS]
        print(f"\ncProfile of {len(sample)} LEAs (top {TOP} by own time, then cumulative):")
        print(profile(guides, sample))


if __name__ == "__main__":
    main()
