"""Weekly caseload digests on working days (issue 16, point 6): a digest day that is a weekend or a
California state holiday moves to the next working day (the same ISO week while a working day is
left in it, else the next week's first), at the same local time; the week keeps its identity
(ledger key and `due`), is planned and computed as of the day it is sent, and is still folded
once over. The expectations are hand-computed; the daemon runs against a real SMTP server."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from dataclasses import replace
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from smtpd import SmtpServer

import pytest
from testclock import LA, Clock, local

from pacing.adapters.caseloads import folder_caseloads
from pacing.adapters.files import load_lea, profiles_in
from pacing.adapters.state import State
from pacing.core.caseload import Caseload, cde_item
from pacing.core.caseload_reminders import contact_calendar, plan_caseload, send_day
from pacing.core.entry import DoneMark
from pacing.core.guide import Guide
from pacing.core.reminders import Reminder
from pacing.core.timeline import Timeline, expand
from pacing.core.workdays import WorkCalendar
from pacing.reminders.daemon import Daemon
from pacing.reminders.ledger import Ledger
from pacing.reminders.send import SmtpConfig, SmtpSender

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "caseloads"
VALLE = "office@valledelsur-selpa.example.org"  # valle-del-sur-selpa: Mondays 07:00
VALLE_ID = "_caseload/valle-del-sur-selpa"
TA = "rtran@ta.example.org"  # ta-east: Tuesdays 08:30
FRIDAY = "friday@ta.example.org"
FRIDAY_CASELOAD = """
[caseload.fridays]
name = "Friday caseload"
email = "friday@ta.example.org"
leas = ["cedar-sd", "dogwood-usd"]
digest = "weekly"
digest_day = "friday"
digest_time = "07:00"
"""
D = dt.date
# California state holidays of the 2024-25 school year, by hand (Susan B. Anthony Day,
# February 15, 2025, is a Saturday).
HOLIDAYS = {
    D(2024, 7, 4), D(2024, 9, 2), D(2024, 11, 11), D(2024, 11, 28), D(2024, 11, 29),
    D(2024, 12, 25), D(2025, 1, 1), D(2025, 1, 20), D(2025, 2, 17), D(2025, 3, 31),
    D(2025, 5, 26), D(2025, 6, 19),
}  # fmt: skip
MONDAY_HOLIDAYS = {  # Labor, Veterans, MLK, Presidents', Cesar Chavez, Memorial Day
    D(2024, 9, 2): D(2024, 9, 3),
    D(2024, 11, 11): D(2024, 11, 12),
    D(2025, 1, 20): D(2025, 1, 21),
    D(2025, 2, 17): D(2025, 2, 18),
    D(2025, 3, 31): D(2025, 4, 1),
    D(2025, 5, 26): D(2025, 5, 27),
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "leas"
    shutil.copytree(FIXTURE, target)
    return target


def fixture_caseloads(
    guides: tuple[Guide, ...], today: dt.date
) -> tuple[dict[str, Caseload], dict[str, Timeline]]:
    leas = [load_lea(p, guides) for p in profiles_in(FIXTURE)]
    loads = {c.slug: c for c in folder_caseloads(FIXTURE, leas)}
    return loads, {lea.id: expand(guides, lea, today, {}) for lea in leas}


def local_day(r: Reminder) -> dt.date:
    return r.send_at.astimezone(LA).date()


def make_daemon(folder: Path, smtp: SmtpServer, clock: Clock) -> Daemon:
    state = State(f"sqlite:///{folder.parent / 'state.db'}")
    config = SmtpConfig(host="127.0.0.1", port=smtp.port, tls="none", address="cim@pacing.test")
    daemon = Daemon([folder], state, SmtpSender(config), clock,
                    page_url=lambda i: f"https://cim.example.org/feeds/{i}/tok/")  # fmt: skip
    daemon.replan(force=True)
    return daemon


def run_until(daemon: Daemon, clock: Clock, end: dt.datetime) -> None:
    """The daemon's loop without sleeping: wake at the ledger's next instant or at the next
    local midnight (the daily re-plan), re-plan when something changed, step."""
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
    return "".join(str(message["X-Pacing-Key"]).split())


def to(smtp: SmtpServer, address: str) -> list[Message]:
    return [m for m in smtp.sink.messages if key_of(m).startswith("_caseload/") and
            m["To"] == address]  # fmt: skip


def date_of(message: Message) -> dt.datetime:
    return parsedate_to_datetime(str(message["Date"]))


def text_of(message: Message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


# --------------------------------------------------------------------------- the plan (pure)


def test_a_school_year_of_monday_digests_skips_the_monday_holidays(
    guides: tuple[Guide, ...],
) -> None:
    loads, timelines = fixture_caseloads(guides, D(2024, 7, 1))
    valle = loads["valle-del-sur-selpa"]
    assert (valle.digest_day, valle.digest_time) == ("monday", dt.time(7, 0))
    planned = plan_caseload(valle, timelines, D(2024, 7, 1), D(2025, 6, 30))
    mondays = [D(2024, 7, 1) + dt.timedelta(weeks=n) for n in range(53)]  # to June 30, 2025
    assert mondays[-1] == D(2025, 6, 30)
    assert [r.due for r in planned] == mondays  # a week with something to say every week
    want = [MONDAY_HOLIDAYS.get(day, day) for day in mondays]
    assert [local_day(r) for r in planned] == want
    moved = {r.due: local_day(r) for r in planned if local_day(r) != r.due}
    assert moved == MONDAY_HOLIDAYS  # exactly the six Monday holidays, each to its Tuesday
    for r in planned:
        day = local_day(r)
        assert day.weekday() < 5 and day not in HOLIDAYS
        assert r.send_at.astimezone(LA).time() == dt.time(7, 0)  # both sides of DST
        assert r.key == f"{VALLE_ID}|digest|{r.due.isoformat()}|{VALLE}"  # the week's identity


def test_a_holiday_friday_moves_to_the_next_working_day_the_following_monday(
    guides: tuple[Guide, ...],
) -> None:
    loads, timelines = fixture_caseloads(guides, D(2024, 11, 1))
    fridays = replace(loads["valle-del-sur-selpa"], digest_day="friday")
    planned = plan_caseload(fridays, timelines, D(2024, 11, 15), D(2024, 12, 13))
    # The Friday after Thanksgiving (a state holiday) leaves no working day in its ISO week:
    # the digest goes out on the next working day, Monday December 2 (the next ISO week),
    # still the week of November 29; the week of December 6 has its own, on its Friday.
    assert [(r.due, local_day(r)) for r in planned] == [
        (D(2024, 11, 15), D(2024, 11, 15)),
        (D(2024, 11, 22), D(2024, 11, 22)),
        (D(2024, 11, 29), D(2024, 12, 2)),
        (D(2024, 12, 6), D(2024, 12, 6)),
        (D(2024, 12, 13), D(2024, 12, 13)),
    ]
    assert planned[2].send_at == local(2024, 12, 2, 7)
    assert planned[2].key == f"{VALLE_ID}|digest|2024-11-29|{VALLE}"


def test_send_day_rule() -> None:
    calendar = contact_calendar(D(2024, 7, 1), D(2025, 6, 30))
    assert send_day(D(2024, 9, 2), calendar) == D(2024, 9, 3)  # Labor Day: the Tuesday
    assert send_day(D(2024, 9, 4), calendar) == D(2024, 9, 4)  # a working day stays
    assert send_day(D(2024, 12, 25), calendar) == D(2024, 12, 26)  # Christmas, a Wednesday
    assert send_day(D(2024, 11, 28), calendar) == D(2024, 12, 2)  # Thanksgiving and the Friday
    assert send_day(D(2024, 7, 4), calendar) == D(2024, 7, 5)  # Independence Day, a Thursday
    assert send_day(D(2025, 6, 19), calendar) == D(2025, 6, 20)  # Juneteenth, a Thursday
    # A weekend digest day is not a working day either: the Monday after it.
    assert send_day(D(2024, 9, 7), calendar) == D(2024, 9, 9)
    assert send_day(D(2024, 9, 8), calendar) == D(2024, 9, 9)
    assert send_day(D(2025, 2, 15), calendar) == D(2025, 2, 18)  # Sat, then Presidents' Day
    # Never past the week's last day (digest day + 6): a calendar closed all week keeps the day.
    closed = WorkCalendar.build((2024, 2024), False, [(D(2024, 9, 2), D(2024, 9, 13), "closed")])
    assert send_day(D(2024, 9, 2), closed) == D(2024, 9, 2)
    assert send_day(D(2024, 9, 10), closed) == D(2024, 9, 16)  # within 6 days: moved


def test_the_moved_week_is_planned_as_of_the_day_it_is_sent(guides: tuple[Guide, ...]) -> None:
    loads, timelines = fixture_caseloads(guides, D(2024, 8, 20))
    birch = timelines["birch-esd"]
    only = next(e for e in birch.items if cde_item(e) and e.is_open)
    # Birch's one CDE date: Tuesday September 17. As of Monday September 2 it is 15 days away
    # (not in the digest); as of Tuesday September 3, when the Labor Day week's digest is sent,
    # it is due within 14 days: that week has something to say.
    timelines["birch-esd"] = replace(birch, items=(only.evolve(due=D(2024, 9, 17)),))
    load = replace(loads["valle-del-sur-selpa"], leas=("birch-esd",))  # Mondays
    planned = plan_caseload(load, timelines, D(2024, 8, 26), D(2024, 9, 16))
    assert [(r.due, local_day(r)) for r in planned] == [
        (D(2024, 9, 2), D(2024, 9, 3)),
        (D(2024, 9, 9), D(2024, 9, 9)),
        (D(2024, 9, 16), D(2024, 9, 16)),
    ]
    assert all(r.items == ("birch-esd",) for r in planned)


# --------------------------------------------------------------------------- through the daemon


def test_the_labor_day_digest_arrives_on_tuesday(folder: Path, smtp: SmtpServer) -> None:
    clock = Clock(local(2024, 8, 31, 12))  # the Saturday before Labor Day
    daemon = make_daemon(folder, smtp, clock)
    run_until(daemon, clock, local(2024, 9, 2, 23, 59))
    assert to(smtp, VALLE) == []  # nothing on Labor Day
    run_until(daemon, clock, local(2024, 9, 4, 12))
    valle, ta = to(smtp, VALLE), to(smtp, TA)
    assert [date_of(m) for m in valle] == [local(2024, 9, 3, 7)]  # Tuesday, 07:00 local
    assert f"{date_of(valle[0]).astimezone(LA):%a %H:%M %Z}" == "Tue 07:00 PDT"
    assert key_of(valle[0]) == f"{VALLE_ID}|digest|2024-09-02|{VALLE}"  # the week's identity
    assert "Weekly CIM digest for Valle del Sur SELPA, September 3, 2024" in text_of(valle[0])
    assert [date_of(m) for m in ta] == [local(2024, 9, 3, 8, 30)]  # a Tuesday digest: as ever
    rows = [r for r in Ledger(daemon.state).rows() if r.lea == VALLE_ID]
    week = [r for r in rows if r.due == D(2024, 9, 2)]
    assert len(week) == 1 and week[0].status == "sent"
    assert week[0].send_at == local(2024, 9, 3, 7)
    assert all(n == 1 for n in smtp.sink.ids().values())


def test_a_week_already_in_the_ledger_on_the_holiday_is_moved_not_doubled(
    folder: Path, smtp: SmtpServer
) -> None:
    # A ledger written before this rule: the Labor Day week planned for Monday 07:00, and the
    # daemon (down over the weekend) starts again on Labor Day at 08:00, after that instant.
    state = State(f"sqlite:///{folder.parent / 'state.db'}")
    key = f"{VALLE_ID}|digest|2024-09-02|{VALLE}"
    old = Reminder(key, VALLE_ID, "caseload", local(2024, 9, 2, 7), VALLE, (),
                   ("cedar-sd", "dogwood-usd"), D(2024, 9, 2))  # fmt: skip
    assert Ledger(state).sync(VALLE_ID, [old], local(2024, 8, 30, 12)) == (1, 0)
    clock = Clock(local(2024, 9, 2, 8))
    daemon = make_daemon(folder, smtp, clock)
    asyncio.run(daemon.step())
    assert to(smtp, VALLE) == []  # moved to Tuesday: not sent late on the holiday
    rows = [r for r in Ledger(daemon.state).rows() if r.lea == VALLE_ID and r.due == D(2024, 9, 2)]
    assert [r.key for r in rows] == [key] and rows[0].status == "pending"
    run_until(daemon, clock, local(2024, 9, 4, 12))
    assert [date_of(m) for m in to(smtp, VALLE)] == [local(2024, 9, 3, 7)]  # once, on Tuesday
    assert [key_of(m) for m in to(smtp, VALLE)] == [key]


def test_a_holiday_friday_digest_arrives_on_monday(folder: Path, smtp: SmtpServer) -> None:
    with (folder / "caseloads.toml").open("a") as f:
        f.write(FRIDAY_CASELOAD)
    clock = Clock(local(2024, 11, 27, 12))  # the Wednesday before Thanksgiving
    daemon = make_daemon(folder, smtp, clock)
    run_until(daemon, clock, local(2024, 12, 7, 12))
    found = to(smtp, FRIDAY)
    assert [date_of(m) for m in found] == [local(2024, 12, 2, 7), local(2024, 12, 6, 7)]
    assert [key_of(m).split("|")[2] for m in found] == ["2024-11-29", "2024-12-06"]
    assert "Weekly CIM digest for Friday caseload, December 2, 2024" in text_of(found[0])


@pytest.mark.parametrize(
    ("back", "sent"),
    [(local(2024, 9, 8, 12), True), (local(2024, 9, 9, 7, 30), False)],
    ids=["caught-up-on-sunday", "over-on-monday"],
)
def test_a_moved_digest_is_caught_up_in_its_week_and_folded_once_it_is_over(
    folder: Path, smtp: SmtpServer, back: dt.datetime, sent: bool
) -> None:
    clock = Clock(local(2024, 8, 31, 12))  # planned, then down until `back`
    daemon = make_daemon(folder, smtp, clock)
    clock.at = back
    daemon.replan()
    asyncio.run(daemon.step())
    rows = {r.key: r for r in Ledger(daemon.state).rows()}
    week = rows[f"{VALLE_ID}|digest|2024-09-02|{VALLE}"]
    if sent:  # Sunday September 8 is the week's last day: sent late, once
        assert week.status == "sent"
        assert [key_of(m).split("|")[2] for m in to(smtp, VALLE)] == ["2024-09-02"]
        assert "September 8, 2024" in text_of(to(smtp, VALLE)[0])  # as of the sending day
    else:  # Monday September 9: the week is over; that Monday's own digest goes out
        assert (week.status, week.last_error) == ("folded", "the week is over")
        assert [key_of(m).split("|")[2] for m in to(smtp, VALLE)] == ["2024-09-09"]


def test_a_moved_digest_with_nothing_to_say_on_its_day_is_folded(
    folder: Path, smtp: SmtpServer
) -> None:
    clock = Clock(local(2024, 9, 2, 6))  # Labor Day morning
    daemon = make_daemon(folder, smtp, clock)
    key = f"{VALLE_ID}|digest|2024-09-02|{VALLE}"
    row = next(r for r in Ledger(daemon.state).rows() if r.key == key)
    assert row.status == "pending"
    # caseloads.toml breaks (the caseloads keep their last good plan), then Valle's LEAs mark
    # every open CDE item done: on Tuesday the week has nothing to say.
    path = folder / "caseloads.toml"
    path.write_text(path.read_text().replace('"dogwood-usd"]', '"dogwood-usd", "nope"]'))
    for lea_id in ("cedar-sd", "dogwood-usd"):
        for e in daemon.timelines[lea_id].items:
            if cde_item(e) and e.is_open:
                daemon.state.mark_done(lea_id, e.id, DoneMark(D(2024, 9, 2)))
    assert daemon.replan()
    run_until(daemon, clock, local(2024, 9, 2, 23, 59))
    row = next(r for r in Ledger(daemon.state).rows() if r.key == key)
    assert row.status == "pending"  # not due on Labor Day
    run_until(daemon, clock, local(2024, 9, 3, 12))
    row = next(r for r in Ledger(daemon.state).rows() if r.key == key)
    assert (row.status, row.last_error) == ("folded", "nothing to say this week")
    assert to(smtp, VALLE) == []
