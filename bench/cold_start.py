"""Benchmark the CLI's cold start against the bare import time of its dependencies.

Each command runs as a fresh subprocess of this interpreter (same venv), interleaved,
N times; medians are compared. Goal: each CLI run <= 1.5x the bare dependency imports.
Always exits 0: it is a report; read PASS/MISS.

    python bench/cold_start.py [N]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = 15
GOAL = 1.5
# The dependency modules `pacing timeline` really uses, imported bare: pydantic's BaseModel (a
# plain `import pydantic` is lazy and builds nothing), the `holidays` country module for the US
# (it loads the library's whole country registry), rich's console and table.
DEPS = (
    "import click, json, tomllib, zoneinfo; from pydantic import BaseModel, TypeAdapter; "
    "from dateutil.rrule import rrulestr; "
    "from holidays.countries.united_states import UnitedStates; "
    "from rich.console import Console; from rich.table import Table"
)
CLI = "from pacing.cli.main import main; main()"
TIMELINE = ["timeline", "examples/sunrise-usd.toml", "--today", "2024-05-01", "--format"]

# An empty state dir: a fresh user's cold start (no state store to open yet).
ENV = {**os.environ, "PACING_STATE_DIR": tempfile.mkdtemp(prefix="pacing-bench-")}

COMMANDS: dict[str, list[str]] = {
    "a deps import": [sys.executable, "-c", DEPS],
    "b timeline json": [sys.executable, "-c", CLI, *TIMELINE, "json"],
    "c timeline table": [sys.executable, "-c", CLI, *TIMELINE, "table"],
    "d --help": [sys.executable, "-c", CLI, "--help"],
}


def run_once(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        argv, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        print(f"warning: {argv[2:]} exited {done.returncode}: {err[-1:] or ''}")
    return elapsed * 1000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else N
    for argv in COMMANDS.values():  # one discarded round: byte-compile, warm the page cache
        run_once(argv)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(n):
        for name, argv in COMMANDS.items():
            times[name].append(run_once(argv))

    medians = {name: statistics.median(ms) for name, ms in times.items()}
    base = medians["a deps import"]
    print(f"python: {sys.executable} ({sys.version.split()[0]}); N={n} each, interleaved")
    for name, ms in times.items():
        spread = f"min {min(ms):.0f}, max {max(ms):.0f}"
        print(f"({name[0]}) {name[2:]:16} median {medians[name]:6.1f} ms  ({spread})")
    for name, median in medians.items():
        if name == "a deps import":
            continue
        ratio = median / base
        verdict = "PASS" if ratio <= GOAL else "MISS"
        print(f"({name[0]})/(a) {name[2:]:16} {ratio:.2f}x (goal <= {GOAL}x) {verdict}")


if __name__ == "__main__":
    main()
