"""Fuzz `pacing check` and `pacing timeline` with mutated LEA profiles, each a subprocess.

Every profile is an example LEA mutated by tests/fuzzing.py (the generator of the fuzz property
test, here driven by random.Random(seed + n)): keys deleted or duplicated, types swapped, huge and
odd values (dates near year 1 or 9999, INTERVAL=0 and never-matching RRULEs, control characters,
100,000-character strings), values nested 30-600 deep, damaged TOML text. Each profile runs
`pacing check PROFILE` and `pacing timeline PROFILE --today 2024-05-01 --format json` as fresh
subprocesses with a timeout each, and each run is counted as: exit 0, exit 1 (one line per
problem on stderr), traceback, hang (timeout), or other (another exit status, or stderr that is
not one `pacing: ` line per problem). Goal: 0 tracebacks, 0 hangs, 0 other.

    python bench/fuzz.py [--count 2200] [--seed 2024] [--timeout 30] [--jobs CPUs]

Profiles that fail are kept (their paths are printed). Takes about 9 minutes on 2 cores for
2,200 profiles (4,400 runs). Always exits 0: it is a report; read PASS/MISS.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fuzzing import mutate  # noqa: E402  (tests/fuzzing.py, shared with the property test)

CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
COMMANDS = {
    "check": ["check"],
    "timeline": ["timeline", "--today", "2024-05-01", "--format", "json"],
}


def classify(result: subprocess.CompletedProcess[bytes]) -> str:
    stderr = result.stderr.decode("utf-8", "replace")
    if "Traceback" in stderr:
        return "traceback"
    if result.returncode not in (0, 1):
        return "other"
    lines = stderr.splitlines()
    if any(not line.startswith("pacing: ") for line in lines) or b"\r" in result.stderr:
        return "other"
    if result.returncode == 1 and not lines:
        return "other"
    return f"exit {result.returncode}"


def run_case(n: int, seed: int, folder: Path, env: dict[str, str], timeout: float) -> list[str]:
    path = folder / f"profile-{n:05d}.toml"
    path.write_text(mutate(random.Random(seed + n).randrange), encoding="utf-8")
    outcomes = []
    for name, args in COMMANDS.items():
        command = [*CLI, args[0], str(path), *args[1:]]
        try:
            result = subprocess.run(
                command, capture_output=True, env=env, timeout=timeout, check=False, cwd=ROOT
            )
            outcome = classify(result)
        except subprocess.TimeoutExpired:
            outcome = "hang"
        outcomes.append(f"{name}: {outcome}")
    if all(o.endswith(("exit 0", "exit 1")) for o in outcomes):
        path.unlink()
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2200)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pacing-fuzz-"))
    folder = work / "profiles"
    folder.mkdir()
    env = {
        **os.environ,
        "PACING_STATE_DIR": str(work / "state"),
        "PACING_CACHE_DIR": str(work / "cache"),
        "NO_COLOR": "1",
        "COLUMNS": "100",
    }
    counts: collections.Counter[str] = collections.Counter()
    failures: list[tuple[int, list[str]]] = []
    started = time.monotonic()
    with ThreadPoolExecutor(options.jobs) as pool:
        jobs = [
            pool.submit(run_case, n, options.seed, folder, env, options.timeout)
            for n in range(options.count)
        ]
        for n, job in enumerate(jobs):
            outcomes = job.result()
            counts.update(outcomes)
            counts.update(o.split(": ", 1)[1] for o in outcomes)
            if not all(o.endswith(("exit 0", "exit 1")) for o in outcomes):
                failures.append((n, outcomes))
            if (n + 1) % 200 == 0:
                print(f"  {n + 1} profiles, {time.monotonic() - started:.0f} s", flush=True)
    elapsed = time.monotonic() - started
    runs = options.count * len(COMMANDS)
    print(
        f"\n{options.count} mutated profiles (seed {options.seed}), {runs} runs in {elapsed:.0f} s"
    )
    print(f"{'':10} {'exit 0':>8} {'exit 1':>8} {'traceback':>10} {'hang':>6} {'other':>6}")
    for name in [*COMMANDS, "all"]:
        prefix = "" if name == "all" else f"{name}: "
        row = [counts[f"{prefix}{k}"] for k in ("exit 0", "exit 1", "traceback", "hang", "other")]
        print(f"{name:10} {row[0]:>8} {row[1]:>8} {row[2]:>10} {row[3]:>6} {row[4]:>6}")
    for n, outcomes in failures[:20]:
        print(f"  {folder / f'profile-{n:05d}.toml'}: {', '.join(outcomes)}")
    bad = counts["traceback"] + counts["hang"] + counts["other"]
    print(f"{'PASS' if bad == 0 else 'MISS'}: {bad} runs with a traceback, a hang or other output")
    if not failures:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
