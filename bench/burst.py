"""One burst through a slow relay, shared by several `pacing remind` processes on one fresh
PostgreSQL database (PACING_TEST_PG_URL, default 127.0.0.1:5432): the setup of
tests/test_burst_sharing.py at a real relay's pace.

    python bench/burst.py [--delay 1.0] [--daemons 1 3]

For each daemon count, in order: the seconds from the first email accepted to the last, each
daemon's first and last email, and the ratio to the first count's time; each run is checked
(each reminder sent once, one email per person, no claim lost). Goal: 3 daemons <= 0.4x one.
With the defaults it takes about 8 minutes (304 emails at 1 s, then a third of that, plus
start-up). Always exits 0; read PASS/MISS."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import test_burst_sharing as t
from pg import write_burst


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=1.0, help="the relay's seconds per email")
    parser.add_argument("--daemons", type=int, nargs="+", default=[1, 3])
    args = parser.parse_args()
    t.DELAY = args.delay
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "leas"
        folder.mkdir()
        write_burst(folder, leas=t.LEAS, teachers=t.TEACHERS, days=1)
        first: float | None = None
        for n in args.daemons:
            run = t.burst(folder, root / f"run-{n}", daemons=n)
            t.check(run)
            first = first or run.seconds
            ratio = run.seconds / first
            spans = ", ".join(f"{a:.1f}-{b:.1f}" for a, b in run.spans)
            print(f"{n} daemon(s): {len(run.messages)} emails ({len(run.keys)} reminders) through "
                  f"a {args.delay} s relay in {run.seconds:.1f} s (each one's first-last email: "
                  f"{spans} s); {ratio:.2f}x the first", flush=True)  # fmt: skip
            if n == 3 and args.daemons[0] == 1:
                print(f"goal: 3 daemons <= 0.4x one: {'PASS' if ratio <= 0.4 else 'MISS'}")


if __name__ == "__main__":
    main()
