"""Emails per person over a whole cohort year, this tree against an earlier release.

    python bench/emails.py [--against REF] [--from 2024-07-01] [--until 2025-06-30]

For the example LEAs, a new profile as `pacing init` writes it, and the caseloads fixture
(tests/caseloads), a district that does everything on time (each item done on its date) is
followed day by day: each morning the timeline is planned afresh with the done marks so far,
and the reminders due that day are counted as the emails they make. The earlier release
(`--against`, default the second release, checked out with `git worktree` in a temp folder)
sends one email per reminder; this tree one per person per moment. Goals, per person in `each`
delivery: at most one email per working day, and, over all people, at least half fewer emails.

Then the daemon itself runs the year on this tree (SQLite ledger, an injected clock stepped
through every send instant, the Maildir outbox), and every reminder the ledger planned is
checked to be in exactly one delivered email (its own Message-ID, or its carrier's).
Always exits 0; read PASS/MISS.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import importlib.util
import json
import mailbox
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PREVIOUS = "4b488dd"  # the second release (main before issue 16)
NEW_PROFILE = """id = "penasco-usd"
name = "Peñasco Unified School District"
cds = "1964733"
[monitoring]
tier = "targeted"
level = 3
cohort = 2024
sig_dis = "no"
[[team]]
role = "sped-admin"
name = "Ana Peña"
email = "apena@penasco.example.org"
lead = true
[contacts]
selpa = { name = "Valle SELPA", email = "selpa@valle.example.org" }
fmta_consultant = { name = "Lin Nguyễn", email = "lnguyen@cde.example.gov" }
[calendar]
board_meeting_rule = "FREQ=MONTHLY;BYDAY=2TU"
[reminders]
escalate_overdue_to = ["selpa", "fmta_consultant"]
digest = "{digest}"
"""


def fixtures(folder: Path, digest: str) -> dict[str, list[Path]]:
    """The LEA folders the year is run on (the new profile as this release's init writes it)."""
    new = folder / "new"
    new.mkdir(parents=True, exist_ok=True)
    (new / "penasco-usd.toml").write_text(NEW_PROFILE.replace("{digest}", digest))
    return {"examples": [ROOT / "examples"], "new profile": [new],
            "caseloads": [ROOT / "tests" / "caseloads"]}  # fmt: skip


def year(sources: list[Path], first: dt.date, last: dt.date) -> dict[str, Any]:
    """Day by day, an on-time district: emails per person per day (this process's pacing)."""
    from zoneinfo import ZoneInfo

    from pacing.adapters.caseloads import folder_caseloads
    from pacing.adapters.files import load_lea, profiles_in
    from pacing.adapters.guidepath import bundled_guides
    from pacing.core.caseload_reminders import plan_caseload
    from pacing.core.entry import DoneMark
    from pacing.core.reminders import plan
    from pacing.core.timeline import expand

    guides = bundled_guides()
    leas = [load_lea(p) for s in sources for p in profiles_in(s)]
    dates = {lea.id: {e.id: e.due for e in expand(guides, lea, first, {}).items
                      if e.kind in ("deadline", "report", "task", "window")}
             for lea in leas}  # fmt: skip
    bundled = importlib.util.find_spec("pacing.reminders.bundle") is not None  # one per moment
    per_day: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    reminders = 0
    day = first
    while day <= last:
        timelines = {}
        moments: set[tuple[str, dt.datetime]] = set()
        for lea in leas:
            marks = {i: DoneMark(due) for i, due in dates[lea.id].items() if due < day}
            t = expand(guides, lea, day, marks)
            timelines[lea.id] = t
            zone = ZoneInfo(lea.timezone)
            for r in plan(t):
                if r.send_at.astimezone(zone).date() == day:
                    reminders += 1
                    if bundled:
                        moments.add((r.to, r.send_at))
                    else:
                        per_day[r.to][day.isoformat()] += 1
        for source in (s for s in sources if s.is_dir()):
            for load in folder_caseloads(source, [t.lea for t in timelines.values()]):
                for r in plan_caseload(load, timelines, day, day):  # an email of its own
                    reminders += 1
                    per_day[r.to][day.isoformat()] += 1
        for to, _ in moments:
            per_day[to][day.isoformat()] += 1
        day += dt.timedelta(days=1)
    return {"reminders": reminders,
            "people": {to: {"emails": sum(c.values()), "max_day": max(c.values(), default=0),
                            "days": len(c)} for to, c in per_day.items()}}  # fmt: skip


def run_tree(tree: Path, folder: Path, first: dt.date, last: dt.date, digest: str) -> Any:
    """`year()` in a subprocess importing pacing from `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PACING_STATE_DIR": str(folder / "state")}
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(folder), "--from", first.isoformat(),
         "--until", last.isoformat(), "--digest", digest],
        env=env, capture_output=True, text=True, check=True, cwd=tree,
    )  # fmt: skip
    return json.loads(out.stdout)


def child(folder: Path, first: dt.date, last: dt.date, digest: str) -> None:
    found = {name: year(src, first, last) for name, src in fixtures(folder, digest).items()}
    print(json.dumps(found))


def compare(old: Any, new: Any) -> bool:
    """Per fixture and person: the release's emails, this tree's, this tree's most in a day.
    The "half fewer" goal is judged on the profile as each release's `pacing init` writes it;
    the existing fixtures keep their own settings (`digest = "none"`: bundling alone)."""
    ok = True
    totals: dict[str, tuple[int, int]] = {}
    for name in new:
        print(f"\n{name}: {old[name]['reminders']} reminders (release) / "
              f"{new[name]['reminders']} (this tree)")  # fmt: skip
        print(f"  {'person':40} {'release':>8} {'now':>6} {'max/day':>8}")
        was_all = now_all = 0
        for to in sorted(set(old[name]["people"]) | set(new[name]["people"])):
            was = old[name]["people"].get(to, {"emails": 0, "max_day": 0})
            now = new[name]["people"].get(to, {"emails": 0, "max_day": 0})
            was_all += was["emails"]
            now_all += now["emails"]
            flag = "" if now["max_day"] <= 1 else "  MISS (more than one a day)"
            ok &= now["max_day"] <= 1
            print(f"  {to:40} {was['emails']:>8} {now['emails']:>6} {now['max_day']:>8}"
                  f"  (release max/day {was['max_day']}){flag}")  # fmt: skip
        totals[name] = (was_all, now_all)
        print(f"  all: {was_all} -> {now_all} emails ({now_all / max(was_all, 1):.2f}x)")
    was_all, now_all = (sum(t[i] for t in totals.values()) for i in (0, 1))
    print(f"\nall people, all fixtures: {was_all} emails (release) -> {now_all} (this tree): "
          f"{now_all / max(was_all, 1):.2f}x")  # fmt: skip
    was, now = totals["new profile"]
    ratio = now / max(was, 1)
    print(f"a new profile (as `pacing init` writes it): {was} -> {now} emails, {ratio:.2f}x "
          f"(goal <= 0.50x) {'PASS' if ratio <= 0.5 else 'MISS'}")  # fmt: skip
    print(f"at most one email per person per day, every fixture: {'PASS' if ok else 'MISS'}")
    return ok and ratio <= 0.5


def daemon_year(first: dt.date, last: dt.date, folder: Path) -> None:
    """The daemon through the year (on-time district: done marks on each date): every
    reminder the ledger planned is in exactly one delivered email."""
    os.environ["PACING_STATE_DIR"] = str(folder / "daemon-state")
    from zoneinfo import ZoneInfo

    import sqlalchemy as sa

    from pacing.adapters.state import State, reminder
    from pacing.core.entry import DoneMark
    from pacing.reminders.daemon import Daemon
    from pacing.reminders.send import MaildirSender

    sources = [ROOT / "examples", folder / "new"]
    zone = ZoneInfo("America/Los_Angeles")
    clock = [dt.datetime.combine(first, dt.time(0), zone).astimezone(dt.UTC)]
    state = State()
    box = folder / "outbox"
    daemon = Daemon(sources, state, MaildirSender(box), lambda: clock[0])
    daemon.replan(force=True)
    end = dt.datetime.combine(last, dt.time(23, 59), zone).astimezone(dt.UTC)
    marked: set[tuple[str, str]] = set()

    async def run() -> None:
        while clock[0] < end:
            day = clock[0].astimezone(zone).date()
            for lea_id, t in list(daemon.timelines.items()):
                for e in t.items:
                    if e.kind in ("deadline", "report", "task", "window") and e.due < day \
                            and e.status != "done" and (lea_id, e.id) not in marked:  # fmt: skip
                        state.mark_done(lea_id, e.id, DoneMark(e.due, "bench: on time"))
                        marked.add((lea_id, e.id))
            daemon.replan()
            await daemon.step()
            at = daemon.ledger.next_instant()
            clock[0] = max(clock[0] + dt.timedelta(minutes=1), min(at or end, end))

    asyncio.run(run())
    delivered = collections.Counter(m["Message-ID"] for m in mailbox.Maildir(box))
    with state.engine.connect() as conn:
        rows = conn.execute(sa.select(reminder).where(reminder.c.status == "sent")).all()
    missing = doubled = 0
    for r in rows:
        m = r._mapping
        carrier = (m["last_error"] or "").removeprefix("sent in ") or None
        from pacing.reminders.ledger import _row

        own = _row(r).message_id
        mid = carrier if carrier and carrier.startswith("<") else own
        missing += delivered[mid] == 0
        doubled += delivered[mid] > 1
    print(f"\ndaemon year: {len(rows)} reminders sent in {sum(delivered.values())} emails; "
          f"{missing} not in a delivered email, {doubled} in more than one: "
          f"{'PASS' if not missing and not doubled and rows else 'MISS'}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", default=PREVIOUS)
    parser.add_argument("--from", dest="first", default="2024-07-01")
    parser.add_argument("--until", default="2025-06-30")
    parser.add_argument("--digest", default="weekly")
    parser.add_argument("--child")
    parser.add_argument("--skip-daemon", action="store_true")
    args = parser.parse_args()
    first, last = dt.date.fromisoformat(args.first), dt.date.fromisoformat(args.until)
    if args.child:
        child(Path(args.child), first, last, args.digest)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tree = work / "release"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.against],
                       cwd=ROOT, check=True, capture_output=True)  # fmt: skip
        try:
            # the release's init wrote digest = "none"; this tree's writes "weekly"
            old = run_tree(tree, work / "old", first, last, "none")
            new = run_tree(ROOT, work / "new-tree", first, last, args.digest)
            print(f"emails per person, {first} to {last}, an on-time district "
                  f"(release {args.against} vs this tree)")  # fmt: skip
            compare(old, new)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                           capture_output=True)  # fmt: skip
            shutil.rmtree(tree, ignore_errors=True)
        if not args.skip_daemon:
            (work / "new").mkdir(exist_ok=True)
            fixtures(work, args.digest)
            daemon_year(first, last, work)


if __name__ == "__main__":
    main()
