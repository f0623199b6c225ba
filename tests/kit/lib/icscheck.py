"""icscheck FILE.ics: six independent checks of one iCalendar file; exit 0 only if all pass.

  structure  the kit's strict reader of the raw octets (structure.py, standard library only)
  icalendar  python icalendar: parse errors, required properties, start/end, and every RRULE
             expanded over 2024-2028 with recurring-ical-events
  ical       python ical (allenporter): strict pydantic models; the timeline is walked
  ical.js    Mozilla's parser (Thunderbird), through drivers/icaljs_check.mjs
  node-ical  the lenient Node parser many web calendars use, through drivers/nodeical_check.cjs
  libical    the C library (Evolution), through build/libical-check (drivers/libical_check.c)

A checker that is not installed fails: run tests/setup.sh.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import structure

KIT = Path(__file__).resolve().parent.parent
FROM, TO = dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2029, 1, 1, tzinfo=dt.UTC)


def in_range(start: dt.date) -> bool:
    """Whether an occurrence starts in 2024-2028 (dates and floating times read as UTC)."""
    if not isinstance(start, dt.datetime):
        start = dt.datetime(start.year, start.month, start.day)
    return FROM <= (start if start.tzinfo else start.replace(tzinfo=dt.UTC)) < TO


@dataclass
class Outcome:
    name: str
    version: str = ""
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.counts)


def check_structure(path: Path) -> Outcome:
    report = structure.check(path.read_bytes())
    return Outcome("structure", "stdlib", report.errors, report.warnings, report.counts)


def check_icalendar(path: Path) -> Outcome:
    import icalendar
    import recurring_ical_events

    out = Outcome(
        "icalendar",
        f"{icalendar.__version__}, recurring-ical-events {version('recurring-ical-events')}",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calendars = icalendar.Calendar.from_ical(path.read_bytes(), multiple=True)
    out.warnings += [f"python warning: {w.message}" for w in caught]
    counts = dict.fromkeys(("VEVENT", "VTODO", "VALARM"), 0)
    for cal in calendars:
        for comp in cal.walk():
            label = f"{comp.name}[{comp.get('UID') or comp.get('SUMMARY') or '?'}]"
            if comp.name in counts:
                counts[comp.name] += 1
            out.errors += [f"{label} {prop or 'line'}: {msg}" for prop, msg in comp.errors]
            out.errors += [f"{label} has no {p}" for p in comp.required if p not in comp]
            if comp.name in ("VEVENT", "VTODO") and not comp.errors:
                try:
                    comp.start, comp.end  # noqa: B018 (computing them is the check)
                except icalendar.IncompleteComponent:
                    pass  # a VTODO with only a DUE
                except Exception as e:
                    out.errors.append(f"{label} start/end: {type(e).__name__}: {e}")
        try:  # every RRULE expanded, as a calendar view does
            found = recurring_ical_events.of(cal, components=["VEVENT", "VTODO"]).between(FROM, TO)
            events = [c.start for c in found if c.name == "VEVENT"]
            counts["occurrences"] = counts.get("occurrences", 0) + sum(map(in_range, events))
        except Exception as e:
            out.errors.append(f"recurring-ical-events: {type(e).__name__}: {e}")
    out.counts = counts if calendars else {}
    return out


def check_ical(path: Path) -> Outcome:
    from ical.calendar_stream import IcsCalendarStream
    from ical.exceptions import CalendarParseError

    out = Outcome("ical", version("ical"))
    try:
        stream = IcsCalendarStream.from_ics(path.read_bytes().decode("utf-8", errors="replace"))
    except CalendarParseError as e:
        detail = [line for line in (e.detailed_error or "").splitlines() if line.strip()]
        more = f" ({detail[0]})" if detail and "detailed_error" in str(e) else ""
        out.errors.append(f"parse failed: {e}{more}")
        return out
    counts = dict.fromkeys(("VEVENT", "VTODO", "VALARM"), 0)
    for cal in stream.calendars:
        counts["VEVENT"] += len(cal.events)
        counts["VTODO"] += len(cal.todos)
        counts["VALARM"] += sum(len(e.alarm) for e in cal.events)
        counts["VALARM"] += sum(len(t.alarms) for t in cal.todos)
        try:  # what a calendar view does: every occurrence in the range, recurrences expanded
            events = [e.start for e in cal.timeline_tz(dt.UTC).overlapping(FROM, TO)]
            counts["occurrences"] = counts.get("occurrences", 0) + sum(map(in_range, events))
        except Exception as e:
            out.errors.append(f"timeline: {type(e).__name__}: {e}")
    out.counts = counts if stream.calendars else {}
    return out


def check_driver(name: str, command: list[str], needs: Path) -> Outcome:
    if not needs.exists() or not shutil.which(command[0]):
        return Outcome(name, errors=[f"not installed: {needs} (run tests/setup.sh)"])
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return Outcome(
            name,
            errors=[
                f"driver crashed (exit {done.returncode}): {(done.stderr or done.stdout)[-600:]}"
            ],
        )
    return Outcome(name, report["version"], report["errors"], report["warnings"], report["counts"])


def check_icaljs(path: Path) -> Outcome:
    command = ["node", str(KIT / "drivers" / "icaljs_check.mjs"), str(path)]
    return check_driver("ical.js", command, KIT / "node_modules" / "ical.js")


def check_nodeical(path: Path) -> Outcome:
    command = ["node", str(KIT / "drivers" / "nodeical_check.cjs"), str(path)]
    return check_driver("node-ical", command, KIT / "node_modules" / "node-ical")


def check_libical(path: Path) -> Outcome:
    binary = KIT / "build" / "libical-check"
    return check_driver("libical", [str(binary), str(path)], binary)


CHECKS: dict[str, Callable[[Path], Outcome]] = {
    "structure": check_structure,
    "icalendar": check_icalendar,
    "ical": check_ical,
    "ical.js": check_icaljs,
    "node-ical": check_nodeical,
    "libical": check_libical,
}


def run(name: str, path: Path) -> Outcome:
    try:
        return CHECKS[name](path)
    except Exception as e:  # a parser that gives up fails its check
        return Outcome(name, errors=[f"{type(e).__name__}: {e}"])


def main() -> int:
    parser = argparse.ArgumentParser(prog="icscheck", description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("-q", "--quiet", action="store_true", help="only the summary lines")
    args = parser.parse_args()
    if not args.file.is_file():
        parser.error(f"no such file: {args.file}")
    with ThreadPoolExecutor() as pool:  # node and libical run while python parses
        drivers = {name: pool.submit(run, name, args.file) for name in ("ical.js", "node-ical", "libical")}
        outcomes = [drivers[n].result() if n in drivers else run(n, args.file) for n in CHECKS]
    print(f"icscheck: {args.file} ({args.file.stat().st_size} bytes)")
    for o in outcomes:
        counts = " ".join(f"{k}={v}" for k, v in o.counts.items())
        name = f"{o.name} {o.version}".strip()
        n = len(o.warnings)
        warned = f" ({n} warning{'' if n == 1 else 's'})" if n else ""
        print(f"  [{'PASS' if o.ok else 'FAIL'}] {name:<48} {counts}{warned}")
    for key in ("VEVENT", "VTODO", "VALARM", "occurrences"):
        seen = {o.name: o.counts[key] for o in outcomes if o.ok and key in o.counts}
        if len(set(seen.values())) > 1:
            print(f"  [WARN] the checkers count {key} differently: {seen}")
    for o in outcomes:
        if (o.errors or o.warnings) and not args.quiet:
            print(f"\n  {o.name}:")
            print("".join(f"    error:   {e}\n" for e in o.errors[:30]), end="")
            print("".join(f"    warning: {w}\n" for w in o.warnings[:30]), end="")
    passed = sum(o.ok for o in outcomes)
    verdict = "PASS" if passed == len(outcomes) else "FAIL"
    print(f"\nRESULT: {verdict} ({passed}/{len(outcomes)} checks passed)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
