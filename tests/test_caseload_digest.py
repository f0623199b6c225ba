"""The weekly caseload digest (issue 10): once per week per opted-in caseload, at its day and time
in its zone, through a real SMTP server on 127.0.0.1; nothing in a week with nothing to say; the
ledger's guarantees (no resend after a second step or a restart, catch-up within the week)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import shutil
import subprocess
import sys
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from smtpd import SmtpServer
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from testclock import Clock, local

from pacing.adapters.caseloads import folder_caseloads
from pacing.adapters.files import load_lea, profiles_in
from pacing.adapters.state import State
from pacing.core.caseload import cde_item
from pacing.core.caseload_reminders import ledger_id, page_id, plan_caseload
from pacing.core.entry import DoneMark
from pacing.core.guide import Guide
from pacing.core.timeline import expand
from pacing.reminders.actions import Links, answer
from pacing.reminders.caseload_digest import digest_subject
from pacing.reminders.daemon import Daemon
from pacing.reminders.ledger import Ledger
from pacing.reminders.send import SmtpConfig, SmtpSender

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "caseloads"
CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
LA = ZoneInfo("America/Los_Angeles")
VALLE = "office@valledelsur-selpa.example.org"  # valle-del-sur-selpa: Mondays 07:00
TA = "rtran@ta.example.org"  # ta-east: Tuesdays 08:30
QUIET = "quiet@ta.example.org"  # quiet (added here): Wednesdays 09:00, nothing to say in the fall
NOT_WEEKLY = {"cim@northcoast-selpa.example.org", "cpark@cde.example.gov", "jcruz@cde.example.gov"}
ALDER_STEP_2 = "targeted-l3-2024/step-2/step-2-submission"
SECRET = b"s" * 32
QUIET_CASELOAD = """
# Two LEAs with no CDE date in the fall of 2024: Birch's first is April 10, 2025; Elm has none.
[caseload.quiet]
name = "Quiet caseload"
email = "quiet@ta.example.org"
leas = ["birch-esd", "elm-usd"]
digest = "weekly"
digest_day = "wednesday"
digest_time = "09:00"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The fixture folder (5 LEAs, two SELPAs, two consultants, two weekly digests) plus a
    weekly caseload with nothing to say this fall."""
    target = tmp_path / "leas"
    shutil.copytree(FIXTURE, target)
    with (target / "caseloads.toml").open("a") as f:
        f.write(QUIET_CASELOAD)
    return target


def make_daemon(folder: Path, smtp: SmtpServer, clock: Clock, links: Links | None = None) -> Daemon:
    state = State(f"sqlite:///{folder.parent / 'state.db'}")
    config = SmtpConfig(host="127.0.0.1", port=smtp.port, tls="none", address="cim@pacing.test")
    daemon = Daemon([folder], state, SmtpSender(config), clock, links=links,
                    page_url=lambda i: f"https://cim.example.org/feeds/{i}/tok/")  # fmt: skip
    daemon.replan(force=True)
    return daemon


def run_until(daemon: Daemon, clock: Clock, end: dt.datetime) -> None:
    """What the daemon's loop does, without sleeping: wake at the ledger's next instant or at
    the next local midnight (the daily re-plan), re-plan when something changed, step."""
    for _ in range(2000):
        midnight = dt.datetime.combine(clock().astimezone(LA).date() + dt.timedelta(days=1),
                                       dt.time(0, 1), LA).astimezone(dt.UTC)  # fmt: skip
        at = min(x for x in (daemon.ledger.next_instant(), midnight, end) if x is not None)
        clock.at = max(at, clock())
        daemon.replan()
        asyncio.run(daemon.step())
        if clock() >= end:
            return
    raise AssertionError("the loop did not reach the end")


def key_of(message: Message) -> str:
    """The ledger key (a long header is folded: unfolded here)."""
    return "".join(str(message["X-Pacing-Key"]).split())


def digests(smtp: SmtpServer) -> list[Message]:
    return [m for m in smtp.sink.messages if key_of(m).startswith("_caseload/")]


def body(message: Message, kind: str) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == kind)
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def text_of(message: Message) -> str:
    return body(message, "text/plain")


def html_of(message: Message) -> str:
    return body(message, "text/html")


def listed(message: Message) -> set[str]:
    """The LEAs a digest lists (by name)."""
    return set(re.findall(r"^== (.+) \(CDS \d+\)$", text_of(message), re.M))


def expected_leas(folder: Path, state: State, guides: tuple[Guide, ...], to: str,
                  day: dt.date) -> set[str]:  # fmt: skip
    """Independently of the digest code: the caseload's LEAs with a CDE item overdue on `day`,
    or open and due within 14 days of it, by the timelines' own statuses on that day."""
    leas = [load_lea(p, guides) for p in profiles_in(folder)]
    load = next(c for c in folder_caseloads(folder, leas) if c.email == to)
    found = set()
    for lea in leas:
        if lea.id not in load.leas:
            continue
        marks = {i: m for i, m in state.done_marks(lea.id).items() if m.on <= day}  # by then
        t = expand(guides, lea, day, marks)
        if any(cde_item(e) and (e.status == "overdue" or (e.is_open and day <= e.due <=
               day + dt.timedelta(days=14))) for e in t.items):  # fmt: skip
            found.add(lea.name)
    return found


def test_one_digest_per_week_per_caseload_and_none_in_an_empty_week(
    folder: Path, smtp: SmtpServer, guides: tuple[Guide, ...]
) -> None:
    clock = Clock(local(2024, 10, 27))  # a Sunday; three weeks from here (across the DST end)
    daemon = make_daemon(folder, smtp, clock)
    run_until(daemon, clock, local(2024, 11, 6))
    # After the second week's digests, Alder submits Step 2: it has nothing more to report.
    daemon.state.mark_done("alder-usd", ALDER_STEP_2, DoneMark(dt.date(2024, 11, 6)))
    run_until(daemon, clock, local(2024, 11, 17))

    found = digests(smtp)
    by_to: dict[str, list[Message]] = {}
    for m in found:
        by_to.setdefault(str(m["To"]), []).append(m)
    assert set(by_to) == {VALLE, TA}  # not the caseloads without digest, not the quiet one
    assert not {str(m["To"]) for m in smtp.sink.messages} & (NOT_WEEKLY | {QUIET})
    weeks = {  # Monday November 11 is Veterans Day: Valle's digest goes out on the Tuesday
        VALLE: [local(2024, 10, 28, 7), local(2024, 11, 4, 7), local(2024, 11, 12, 7)],
        TA: [local(2024, 10, 29, 8, 30), local(2024, 11, 5, 8, 30), local(2024, 11, 12, 8, 30)],
    }
    for to, instants in weeks.items():
        dates = [parsedate_to_datetime(str(m["Date"])) for m in by_to[to]]
        assert dates == instants, (to, dates)  # once a week, at its day and local time
    assert [f"{d.astimezone(LA):%a %H:%M %Z}" for d in weeks[TA]] == \
        ["Tue 08:30 PDT", "Tue 08:30 PST", "Tue 08:30 PST"]  # fmt: skip
    assert all(n == 1 for n in smtp.sink.ids().values())

    # Each digest lists exactly the LEAs with CDE items overdue or due in the next 14 days.
    lists = {to: [listed(m) for m in by_to[to]] for to in by_to}
    cedar, dogwood, alder = "Cedar School District", "Dogwood Unified School District", \
        "Alder Unified School District"  # fmt: skip
    assert lists[VALLE] == [{cedar, dogwood}] * 3  # Elm (universal) has no CDE date
    assert lists[TA] == [{alder, dogwood}, {alder, dogwood}, {dogwood}]
    for to, instants in weeks.items():
        for message, at in zip(by_to[to], instants, strict=True):
            want = expected_leas(folder, daemon.state, guides, to, at.astimezone(LA).date())
            assert listed(message) == want
    for message in found:
        subject = " ".join(str(message["Subject"]).split())
        assert subject.startswith("Weekly CIM digest: ") and len(subject) <= 78, subject
        assert message["List-Unsubscribe"] is None  # not served; no mailto from the From address
        text, html = text_of(message), html_of(message)
        assert "Plan: finish" not in text and "caseloads.toml" in text  # how to stop it
        assert "https://cim.example.org/feeds/dogwood-usd/tok/" in text
        assert 'href="https://cim.example.org/feeds/dogwood-usd/tok/"' in html
        assert "https://cim.example.org/feeds/_caseload/" in text  # the caseload's page
    first = by_to[TA][0]
    assert " ".join(str(first["Subject"]).split()) == \
        "Weekly CIM digest: 2 LEAs overdue, 1 due by Nov 12 - Robin Tran, TA facilit..."  # fmt: skip
    assert "Submit Step 2 (Investigate) in Stepwell\n    CDE deadline: October 10, 2024 " \
        "(19 days ago)" in text_of(first)  # fmt: skip

    # The ledger: the quiet caseload had no week to plan; a second step and a restart resend
    # nothing.
    rows = [r for r in Ledger(daemon.state).rows() if r.kind == "caseload"]
    assert not [r for r in rows if r.to == QUIET]
    assert sorted(r.send_at for r in rows if r.status == "sent") == \
        sorted(weeks[VALLE] + weeks[TA])  # fmt: skip
    count = len(smtp.sink.messages)
    asyncio.run(daemon.step())
    clock.at = local(2024, 11, 12, 7)  # the clock back at a digest's instant, a new process
    again = make_daemon(folder, smtp, clock)
    asyncio.run(again.step())
    clock.at = local(2024, 11, 12, 8, 45)
    again.replan()
    asyncio.run(again.step())
    assert len(smtp.sink.messages) == count


def test_the_quiet_caseload_is_planned_once_it_has_something_to_say(
    folder: Path, guides: tuple[Guide, ...]
) -> None:
    leas = [load_lea(p, guides) for p in profiles_in(folder)]
    load = next(c for c in folder_caseloads(folder, leas) if c.slug == "quiet")
    timelines = {lea.id: expand(guides, lea, dt.date(2024, 10, 1), {}) for lea in leas}
    planned = plan_caseload(load, timelines, dt.date(2024, 10, 1), dt.date(2025, 4, 20))
    # Birch's first CDE-side date is April 10, 2025 (an assumed one): within 14 days of the
    # Wednesdays April 2 and 9; overdue on the 16th unless marked done.
    assert [r.due for r in planned] == [dt.date(2025, 4, 2), dt.date(2025, 4, 9),
                                        dt.date(2025, 4, 16)]  # fmt: skip
    assert {r.items for r in planned} == {("birch-esd",)}
    assert planned[0].key == "_caseload/quiet|digest|2025-04-02|quiet@ta.example.org"
    assert planned[0].send_at == local(2025, 4, 2, 9) and planned[0].kind == "caseload"
    marks = {"birch-esd": {e.id: DoneMark(dt.date(2025, 4, 8)) for e in timelines["birch-esd"].items
                           if e.due == dt.date(2025, 4, 10)}}  # fmt: skip
    assert marks["birch-esd"]
    timelines["birch-esd"] = expand(guides, timelines["birch-esd"].lea, dt.date(2024, 10, 1),
                                    marks["birch-esd"])  # fmt: skip
    planned = plan_caseload(load, timelines, dt.date(2024, 10, 1), dt.date(2025, 4, 20))
    assert planned == []  # done before its date: nothing to say in any week
    assert page_id("quiet") == ledger_id("quiet") == "_caseload/quiet"
    from pacing.feeds.caseloads import feed_id

    assert feed_id("quiet") == page_id("quiet")  # the page link is the caseload page's


def test_bad_caseloads_toml_keeps_lea_reminders_and_an_emptied_week_is_folded(
    folder: Path, smtp: SmtpServer, guides: tuple[Guide, ...], caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(local(2024, 11, 4, 6))
    daemon = make_daemon(folder, smtp, clock)
    key = f"_caseload/ta-east|digest|2024-11-05|{TA}"
    assert key in {r.key for r in Ledger(daemon.state).rows()}
    path = folder / "caseloads.toml"
    path.write_text(path.read_text().replace('"dogwood-usd"]', '"dogwood-usd", "nope"]'))
    caplog.set_level(logging.INFO, "pacing.reminders")
    assert daemon.replan()
    # Alder and Dogwood mark every CDE item done: ta-east has nothing to say this week; the
    # caseloads cannot be planned again (caseloads.toml is bad) but the LEAs' timelines are.
    for lea_id in ("alder-usd", "dogwood-usd"):
        for e in daemon.timelines[lea_id].items:
            if cde_item(e) and e.is_open:
                daemon.state.mark_done(lea_id, e.id, DoneMark(dt.date(2024, 11, 4)))
    assert daemon.replan()
    assert daemon.replan(force=True)
    errors = [r for r in caplog.records if "caseloads error" in r.getMessage()]
    assert len(errors) == 1 and "nope" in errors[0].getMessage()  # one line, not per re-plan
    assert not daemon.errors  # the LEAs are planned as usual
    run_until(daemon, clock, local(2024, 11, 5, 12))
    row = next(r for r in Ledger(daemon.state).rows() if r.key == key)
    assert row.status == "folded" and row.last_error == "nothing to say this week"
    assert not [m for m in smtp.sink.messages if m["To"] == TA]
    valle = [m for m in digests(smtp) if m["To"] == VALLE]  # the last good caseloads
    assert len(valle) == 1 and listed(valle[0]) == {"Cedar School District"}
    assert [m for m in smtp.sink.messages if not key_of(m).startswith("_caseload")]


def test_downtime_catches_up_within_the_week_and_folds_a_week_that_is_over(
    folder: Path, smtp: SmtpServer
) -> None:
    clock = Clock(local(2024, 11, 3, 12))  # planned on Sunday, then down until Wednesday
    daemon = make_daemon(folder, smtp, clock)
    clock.at = local(2024, 11, 6, 10)
    daemon.replan()
    asyncio.run(daemon.step())
    late = digests(smtp)
    assert sorted(str(m["To"]) for m in late) == [VALLE, TA]  # each once, late, in its week
    assert all(parsedate_to_datetime(str(m["Date"])) == clock() for m in late)
    clock.at = local(2024, 11, 19, 7, 30)  # down again from Wednesday to Tuesday week
    daemon.replan()
    asyncio.run(daemon.step())
    rows = {r.key: r for r in Ledger(daemon.state).rows() if r.kind == "caseload"}
    over = [r for r in rows.values() if r.due in (dt.date(2024, 11, 11), dt.date(2024, 11, 12))]
    assert len(over) == 2 and all(r.status == "folded" and r.last_error == "the week is over"
                                  for r in over)  # fmt: skip
    now = digests(smtp)[len(late) :]
    assert [str(m["To"]) for m in now] == [VALLE]  # this week's (Monday's), late: sent
    assert "|2024-11-18|" in key_of(now[0])
    assert all(n == 1 for n in smtp.sink.ids().values())


def test_one_click_unsubscribe_per_caseload(folder: Path, smtp: SmtpServer) -> None:
    links = Links("https://cim.example.org", SECRET)
    clock = Clock(local(2024, 11, 5, 8, 30))
    daemon = make_daemon(folder, smtp, clock, links)
    asyncio.run(daemon.step())
    message = next(m for m in digests(smtp) if m["To"] == TA)
    heads = "".join(str(message["List-Unsubscribe"]).split())
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = heads.split(",")[0].strip("<> ")
    assert url.startswith("https://cim.example.org/act/unsubscribe/") and url in text_of(message)
    leas = [t.lea for t in daemon.timelines.values()]
    loads = {c.slug: c for c in folder_caseloads(folder, leas)}
    book: Any = SimpleNamespace(entries={}, caseloads=SimpleNamespace(loads=loads),
                                secrets=[SECRET], state=daemon.state)  # fmt: skip
    token = url.rsplit("/", 1)[1]
    status, page = answer(book, "unsubscribe", token, "GET", clock())
    assert status == 200 and b"the weekly digest of Robin Tran, TA facilitator" in page
    assert answer(book, "unsubscribe", token, "POST", clock())[0] == 200
    assert daemon.state.opted_out("_caseload/ta-east").keys() == {TA}
    assert daemon.replan()
    rows = [r for r in Ledger(daemon.state).rows() if r.to == TA and r.status != "sent"]
    assert rows and all(r.status == "cancelled" for r in rows)  # its next weeks: none


def test_subject_fits_and_counts_leas() -> None:
    one = SimpleNamespace(overdue=(1,), due_soon=())
    two = SimpleNamespace(overdue=(1,), due_soon=(2,))
    soon = SimpleNamespace(overdue=(), due_soon=(2,))
    nov15 = dt.date(2024, 11, 15)
    subject = digest_subject([one, two, soon, soon], nov15, "Valle del Sur SELPA", 2024)  # type: ignore[list-item]
    assert subject == "Weekly CIM digest: 2 LEAs overdue, 3 due by Nov 15 - Valle del Sur SELPA"
    assert digest_subject([soon], nov15, "X", 2024) == "Weekly CIM digest: 1 LEA due by Nov 15 - X"  # type: ignore[list-item]
    long = digest_subject([two], nov15, "A very long caseload name " * 5, 2024)  # type: ignore[list-item]
    assert len(long) <= 78 and long.startswith("Weekly CIM digest: 1 LEA overdue, 1 due by Nov 15")


def test_dry_run_lists_caseload_digests(folder: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PACING_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1"}
    out = subprocess.run([*CLI, "remind", str(folder), "--dry-run", "--from", "2024-10-28",
                          "--until", "2024-11-13"], env=env, capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    lines = [line for line in out.splitlines() if " caseload " in line]
    assert lines == [
        "2024-10-29 08:30 PDT  _caseload/ta-east caseload rtran@ta.example.org  "
        "2 LEAs: alder-usd, dogwood-usd",
        "2024-11-05 08:30 PST  _caseload/ta-east caseload rtran@ta.example.org  "
        "2 LEAs: alder-usd, dogwood-usd",
        "2024-11-12 08:30 PST  _caseload/ta-east caseload rtran@ta.example.org  "
        "2 LEAs: alder-usd, dogwood-usd",
        "2024-10-28 07:00 PDT  _caseload/valle-del-sur-selpa caseload "
        f"{VALLE}  2 LEAs: cedar-sd, dogwood-usd",
        "2024-11-04 07:00 PST  _caseload/valle-del-sur-selpa caseload "
        f"{VALLE}  2 LEAs: cedar-sd, dogwood-usd",
        "2024-11-12 07:00 PST  _caseload/valle-del-sur-selpa caseload "
        f"{VALLE}  2 LEAs: cedar-sd, dogwood-usd",
    ]  # the quiet caseload has nothing to say: no line; Veterans Day's digest on the Tuesday
    assert " due " in out  # the LEAs' own reminders as before
