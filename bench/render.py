"""Benchmark rendering the .ics feeds of 2,300 generated LEA profiles in one process.

Per LEA, as the feed book does it: `expand()`, `feed_events()`, `revise()` and `to_ics()`. The
LEAs are bench/expand.py's generator. Two figures, each against the goal (<= 10 ms per LEA):

- cold: the first render of every LEA in a process whose render caches are empty
  (`render_cache_clear()`: no event template, no line, no VTIMEZONE; `revise({}, ...)`: no
  previous revisions), as at a server's start-up; median of 3 such runs;
- steady: what the server does after a date or profile change: every LEA re-planned on another
  day and re-rendered with its previous revisions (most events unchanged), caches as the
  previous renders left them; median of 3 batches (one day later each).

Then the aggregate of all LEAs (one calendar, every event prefixed with its LEA): once with the
caches as the LEA feeds left them, then after one LEA was renamed (planning the timelines is
not counted: the server keeps them). On a miss, a cProfile of 400 LEAs of the missing case (top
functions by own and cumulative time, and the share of to_ics's parts). Always exits 0: it is
a report; read PASS/MISS.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from expand import TODAY, build_leas  # bench/expand.py: the LEA generator

from pacing.adapters.files import bundled_guides
from pacing.core.lea import Lea
from pacing.core.revision import Revision
from pacing.core.timeline import expand
from pacing.export.ics import (
    feed_events,
    render_cache_clear,
    render_cache_info,
    revise,
    to_ics,
)

RUNS = 3
GOAL_MS = 10.0
NOW = dt.datetime(2024, 5, 1, 15, 0, tzinfo=dt.UTC)
STAGES = ("expand", "feed_events", "revise", "to_ics")
WARMUP_LEAS = 20  # imports and lazy set-up, then the caches are cleared
PROFILE_LEAS = 400  # a sample is enough for the shape of the profile
TOP = 20
Revisions = dict[str, Revision]


class Batch:
    """One pass over the LEAs: time, bytes, stage times, the revisions it left, re-stamps."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.size = 0
        self.clock = dict.fromkeys(STAGES, 0.0)
        self.revisions: dict[str, Revisions] = {}
        self.restamped = 0  # events whose revision changed (new, or a date or text change)
        self.events = 0


def render(
    guides: Any, lea: Lea, today: dt.date, now: dt.datetime, previous: Revisions, batch: Batch
) -> None:
    """One LEA's feed, as FeedBook.feed renders it (the state store aside)."""
    t0 = time.perf_counter()
    timeline = expand(guides, lea, today)
    t1 = time.perf_counter()
    events = feed_events(timeline)
    t2 = time.perf_counter()
    revisions = revise(previous, events, now)
    t3 = time.perf_counter()
    body = to_ics(f"CIM: {lea.name}", lea.id, events, revisions)
    t4 = time.perf_counter()
    for stage, spent in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
        batch.clock[stage] += spent
    batch.size += len(body)
    batch.revisions[lea.id] = revisions
    batch.events += len(events)
    batch.restamped += sum(1 for uid, rev in revisions.items() if previous.get(uid) is not rev)


def run(
    guides: Any, leas: list[Lea], today: dt.date, now: dt.datetime, previous: dict[str, Revisions]
) -> Batch:
    batch = Batch()
    started = time.perf_counter()
    for lea in leas:
        render(guides, lea, today, now, previous.get(lea.id, {}), batch)
    batch.seconds = time.perf_counter() - started
    return batch


def cold(guides: Any, leas: list[Lea]) -> Batch:
    render_cache_clear()
    return run(guides, leas, TODAY, NOW, {})


def steady(guides: Any, leas: list[Lea], previous: Batch, day: int) -> Batch:
    """Every LEA re-planned `day` days later, re-rendered with its previous revisions."""
    later = dt.timedelta(days=day)
    return run(guides, leas, TODAY + later, NOW + later, previous.revisions)


def report(label: str, batches: list[Batch], n: int) -> tuple[float, Batch]:
    times = [b.seconds for b in batches]
    per_lea = statistics.median(times) * 1000 / n
    middle = sorted(batches, key=lambda b: b.seconds)[len(batches) // 2]
    verdict = "PASS" if per_lea <= GOAL_MS else "MISS"
    print(f"{label}: runs " + ", ".join(f"{t:.2f} s" for t in times))
    print(
        "  per LEA by stage (median run): "
        + ", ".join(f"{s} {middle.clock[s] * 1000 / n:.2f} ms" for s in STAGES)
    )
    print(
        f"  events re-stamped: {middle.restamped:,} of {middle.events:,} "
        f"({middle.restamped / max(middle.events, 1):.1%})"
    )
    print(
        f"  {label}: {per_lea:.2f} ms/LEA (median of {len(batches)}; goal <= {GOAL_MS:g} ms: "
        f"{per_lea / GOAL_MS:.2f}x of limit) {verdict}"
    )
    return per_lea, middle


def cache_line() -> str:
    info = render_cache_info()
    return "; ".join(
        f"{name} {c['entries']:,} entries, {c['bytes'] / 2**20:.1f} MiB accounted, "
        f"{c['hits'] / max(c['hits'] + c['misses'], 1):.1%} hits"
        for name, c in info.items()
    )


def aggregate(guides: Any, leas: list[Lea]) -> None:
    """The whole folder as one calendar (FeedBook.aggregate), caches as the LEA feeds left
    them (its events differ from the LEAs' by their summary, a placeholder line), then again
    an hour later after one LEA was renamed (its last bytes are reused for unchanged events)."""
    timelines = [expand(guides, lea, TODAY) for lea in leas]
    title = f"CIM: bench ({len(leas)} LEAs)"
    revisions: Revisions = {}
    for label, now in (("first", NOW), ("after one LEA renamed", NOW + dt.timedelta(hours=1))):
        if revisions:
            renamed = leas[0].model_copy(update={"name": leas[0].name + " (renamed)"})
            timelines[0] = expand(guides, renamed, TODAY)
        started = time.perf_counter()
        events = [ev for t in timelines for ev in feed_events(t, prefix=True)]
        planned = time.perf_counter()
        revisions = revise(revisions, events, now)
        revised = time.perf_counter()
        body = to_ics(title, "_all-bench", events, revisions)
        done = time.perf_counter()
        print(
            f"aggregate, {label}: {len(events):,} events, {len(body) / 2**20:.1f} MiB; "
            f"feed_events {planned - started:.2f} s, revise {revised - planned:.2f} s, "
            f"to_ics {done - revised:.2f} s ({(done - started) * 1000 / len(leas):.2f} ms per "
            "LEA in it)"
        )
        del body


def profile(job: Callable[[], object]) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    job()
    profiler.disable()
    print("  own time by part: " + ", ".join(f"{k} {v:.0%}" for k, v in shares(profiler)[:8]))
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(TOP)
    stats.sort_stats("cumulative").print_stats(TOP)
    return out.getvalue()


def shares(profiler: cProfile.Profile) -> list[tuple[str, float]]:
    """Own time by part: icalendar, each pacing module, C built-ins, the rest by file."""
    rows = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in rows.values()) or 1.0
    parts: dict[str, float] = {}
    for (filename, _, _), row in rows.items():
        if "icalendar" in filename:
            part = "icalendar"
        elif "/pacing/" in filename:
            part = "pacing/" + filename.split("/pacing/", 1)[1]
        elif filename == "~":
            part = "built-ins"
        else:
            part = Path(filename).name
        parts[part] = parts.get(part, 0.0) + row[2] / total
    return sorted(parts.items(), key=lambda kv: -kv[1])


def main() -> None:
    started = time.perf_counter()
    guides = bundled_guides()
    leas = build_leas()
    built = time.perf_counter() - started
    n = len(leas)
    run(guides, leas[:WARMUP_LEAS], TODAY, NOW, {})  # imports and lazy set-up only

    colds = [cold(guides, leas) for _ in range(RUNS)]
    first = colds[-1]
    print(f"LEAs: {n} (built and validated in {built:.2f} s)")
    print(f"total .ics bytes: {first.size:,} ({first.size / n / 1024:.1f} KiB per LEA)")
    cold_ms, _ = report("cold (empty caches, first revisions)", colds, n)
    print(f"  caches after a cold run: {cache_line()}")

    steadies = []
    previous = first
    for day in range(1, RUNS + 1):
        previous = steady(guides, leas, previous, day)
        steadies.append(previous)
    steady_ms, _ = report("steady (re-render after a date change)", steadies, n)
    print(f"  caches now: {cache_line()}")
    aggregate(guides, leas)

    sample = leas[:PROFILE_LEAS]
    if cold_ms > GOAL_MS:
        print(f"\ncProfile of a cold render of {len(sample)} LEAs (top {TOP}):")
        render_cache_clear()
        print(profile(lambda: run(guides, sample, TODAY, NOW, {})))
    if steady_ms > GOAL_MS:
        print(f"\ncProfile of a steady re-render of {len(sample)} LEAs (top {TOP}):")
        base = run(guides, sample, TODAY, NOW, {})
        print(profile(lambda: steady(guides, sample, base, 1)))


if __name__ == "__main__":
    main()
