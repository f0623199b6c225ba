"""Reminders end to end against a real SMTP server on 127.0.0.1; time is injected, never slept."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path
from smtpd import SmtpServer
from typing import Any
from zoneinfo import ZoneInfo

from testclock import Clock, local

from pacing.adapters.state import State, reminder
from pacing.core.entry import DoneMark
from pacing.core.reminders import plan
from pacing.core.timeline import expand
from pacing.reminders.daemon import Daemon
from pacing.reminders.ledger import Ledger
from pacing.reminders.send import SmtpConfig, SmtpSender

ROOT = Path(__file__).resolve().parent.parent
LA = ZoneInfo("America/Los_Angeles")


def make_daemon(tmp_path: Path, smtp: SmtpServer, clock: Clock, profile: str = "sunrise-usd",
                text: str | None = None) -> Daemon:  # fmt: skip
    folder = tmp_path / "leas"
    folder.mkdir(exist_ok=True)
    target = folder / f"{profile}.toml"
    if text is None:  # nothing done yet (a done submission closes the boxes it contains)
        text = (ROOT / "examples" / f"{profile}.toml").read_text().split("[done]")[0]
    target.write_text(text)
    state = State(f"sqlite:///{tmp_path / 'state.db'}")
    config = SmtpConfig(host="127.0.0.1", port=smtp.port, tls="none", address="cim@pacing.test")
    daemon = Daemon([folder], state, SmtpSender(config), clock,
                    page_url=lambda lea: f"http://127.0.0.1:8180/feeds/{lea}/token/")  # fmt: skip
    daemon.replan(force=True)
    return daemon


def step(daemon: Daemon) -> None:
    asyncio.run(daemon.step())


def test_sends_due_reminders_once_with_full_content(tmp_path: Path, smtp: SmtpServer) -> None:
    clock = Clock(local(2024, 11, 20, 8, 0))  # 14 days before box 27 is due (Dec 4, 2024)
    daemon = make_daemon(tmp_path, smtp, clock)
    step(daemon)
    messages = smtp.sink.messages
    subjects = [" ".join(str(m["Subject"]).split()) for m in messages]
    wanted = (  # box 27 is pacing's plan, not a CDE deadline: never "due"
        "Plan: finish by Dec 4: Plan for Improvement link - Sunrise USD"
    )
    assert wanted in subjects, subjects
    message = messages[subjects.index(wanted)]
    assert message["To"] == "lortega@sunrise.example.org" and message["From"] == "cim@pacing.test"
    assert message["List-Unsubscribe"] is None  # not served, no unsubscribe mailto configured
    assert message["Message-ID"].endswith("@pacing>")
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in message.walk()
             if not p.is_multipart()}  # fmt: skip
    text, html = parts["text/plain"], parts["text/html"]
    for body in (text, html):
        assert "Sunrise Unified School District" in body and "December 4, 2024" in body
        assert "Stepwell" in body and "Planned backwards from" in body
        assert "Provide the link to the LEA" in body
        assert "http://127.0.0.1:8180/feeds/sunrise-usd/token/" in body
    assert 'style="' in html  # CSS inlined
    count = len(messages)
    step(daemon)
    clock.move_to(clock.at + dt.timedelta(hours=1))
    step(daemon)
    assert len(smtp.sink.messages) == count  # never twice
    assert all(n == 1 for n in smtp.sink.ids().values())


def test_reminders_at_8_local_across_dst(guides, make_lea) -> None:
    lea = make_lea("lakeside-usd", reminders={"offsets_days": list(range(0, 100)),
                                              "working_days_only": False})
    reminders = plan(expand(guides, lea, dt.date(2025, 1, 1)))
    days = {r.send_at.astimezone(LA).date(): r.send_at for r in reminders if r.kind == "due"}
    for day in (dt.date(2025, 3, 8), dt.date(2025, 3, 9), dt.date(2025, 3, 10),
                dt.date(2025, 11, 1), dt.date(2025, 11, 2), dt.date(2025, 11, 3)):  # fmt: skip
        assert day in days, day
        assert days[day].astimezone(LA).time() == dt.time(8, 0)
    assert days[dt.date(2025, 3, 8)].hour == 16 and days[dt.date(2025, 3, 10)].hour == 15  # UTC
    assert days[dt.date(2025, 11, 1)].hour == 15 and days[dt.date(2025, 11, 3)].hour == 16


def test_done_item_gets_no_further_reminders(tmp_path: Path, smtp: SmtpServer) -> None:
    clock = Clock(local(2024, 9, 1, 7, 0))
    daemon = make_daemon(tmp_path, smtp, clock)
    item = "targeted-l3-2024/step-2/box-26-additional-relevant-data"
    daemon.state.mark_done("sunrise-usd", item, DoneMark(dt.date(2024, 9, 1)))
    assert daemon.replan()
    rows = [r for r in Ledger(daemon.state).rows() if item in r.items]
    assert rows and all(r.status == "cancelled" for r in rows if r.kind in ("due", "overdue"))
    clock.move_to(local(2024, 10, 12, 9, 0))
    step(daemon)
    assert not [m for m in smtp.sink.messages if "Additional Relevant Data" in str(m["Subject"])]
    daemon.state.mark_done("sunrise-usd", item, None)  # undo: back to pending
    assert daemon.replan()
    assert any(r.status == "pending" for r in Ledger(daemon.state).rows() if item in r.items)


def test_moved_date_replaces_reminders_without_doubling(tmp_path: Path, smtp: SmtpServer) -> None:
    clock = Clock(local(2025, 2, 1, 7, 0))
    daemon = make_daemon(tmp_path, smtp, clock, "riverbend-usd")
    item = "sig-dis-2024/step-4/final-budget-amendment"
    profile = tmp_path / "leas" / "riverbend-usd.toml"
    text = profile.read_text().replace("digest", "working_days_only = false\ndigest")
    profile.write_text(text)
    assert daemon.replan()
    before = {r.key: r.send_at for r in Ledger(daemon.state).rows()
              if r.items == (item,) and r.kind != "digest"}  # fmt: skip
    profile.write_text(text + f'\n[overrides."{item}"]\ndue = 2025-03-21\n')
    assert daemon.replan()
    after = {r.key: r.send_at for r in Ledger(daemon.state).rows()
             if r.items == (item,) and r.kind != "digest"}  # fmt: skip
    assert before.keys() == after.keys()
    assert all(after[k] == before[k] - dt.timedelta(days=10) for k in before if "digest" not in k)


def test_temporary_failures_are_retried_until_delivered(tmp_path: Path, smtp: SmtpServer) -> None:
    clock = Clock(local(2024, 11, 20, 8, 0))
    text = (ROOT / "examples" / "sunrise-usd.toml").read_text().split("[done]")[0].replace(
        'to = ["lead"]', 'to = ["lead", "superintendent", "gen-ed-admin", "site-admin"]')  # fmt: skip
    daemon = make_daemon(tmp_path, smtp, clock, text=text)
    expected = len(Ledger(daemon.state).ready(clock()))
    assert expected == 4
    smtp.sink.busy, smtp.sink.close_next = 3, 1
    step(daemon)
    delivered = len(smtp.sink.messages)
    assert delivered < expected
    retry = [r for r in Ledger(daemon.state).rows() if r.status == "pending" and r.last_error]
    assert retry and any("451" in (r.last_error or "") for r in retry)
    assert any("421" in (r.last_error or "") for r in retry)
    for minutes in (1, 3, 7, 15, 31):
        clock.move_to(local(2024, 11, 20, 8, 0) + dt.timedelta(minutes=minutes))
        step(daemon)
    assert len(smtp.sink.messages) == expected
    assert all(n == 1 for n in smtp.sink.ids().values())


def test_permanent_failure_is_recorded_and_others_delivered(tmp_path: Path, smtp: SmtpServer):
    clock = Clock(local(2024, 11, 20, 8, 0))
    text = (ROOT / "examples" / "sunrise-usd.toml").read_text().split("[done]")[0].replace(
        'to = ["lead"]', 'to = ["lead", "superintendent"]')  # fmt: skip
    daemon = make_daemon(tmp_path, smtp, clock, text=text)
    smtp.sink.refuse = {"dreyes@sunrise.example.org"}
    step(daemon)
    rows = Ledger(daemon.state).rows()
    failed = [r for r in rows if r.status == "failed"]
    sent = [r for r in rows if r.status == "sent"]
    assert failed and all(r.to == "dreyes@sunrise.example.org" for r in failed)
    assert all("550" in (r.last_error or "") for r in failed)
    assert sent and all(r.to == "lortega@sunrise.example.org" for r in sent)
    assert len(smtp.sink.messages) == len(sent)


def test_downtime_catches_up_in_one_email_per_recipient(tmp_path: Path, smtp: SmtpServer) -> None:
    """Late reminders for one recipient go in ONE catch-up email (the rows it carried record
    its Message-ID); a missed CDE submission is told once to the SELPA in an email of its own
    (issue 16: escalations have rows of their own, no Cc); past-due reminders fold as before."""
    clock = Clock(local(2024, 10, 1, 7, 0))
    text = (ROOT / "examples" / "riverbend-usd.toml").read_text().replace('"weekly"', '"none"')
    daemon = make_daemon(tmp_path, smtp, clock, "riverbend-usd", text=text)  # planned, running
    down_until = local(2024, 10, 20, 12, 0)  # down from Oct 1 until after Step 2's due date
    clock.move_to(down_until)
    step(daemon)
    today = dt.date(2024, 10, 20)
    missed = [r for r in Ledger(daemon.state).rows() if r.send_at <= down_until]
    late = [r for r in missed if r.kind in ("due", "start-by") and r.due >= today]
    folded = [r for r in missed if r.kind in ("due", "start-by") and r.due < today]
    overdue = [r for r in missed if r.kind == "overdue"]
    escalated = [r for r in missed if r.kind == "escalation"]
    assert late and folded and overdue and escalated
    assert all(r.status == "folded" and "overdue notice" in (r.last_error or "") for r in folded)
    # Told to the SELPA only when a CDE submission was missed (Step 2, due October 10), once.
    assert {r.items[0] for r in escalated} == {"sig-dis-2024/step-2/step-2-submission"}
    assert {r.to for r in escalated} == {"cim@north-selpa.example.org"} and len(escalated) == 1
    received = {m["Message-ID"]: m for m in smtp.sink.messages}
    assert all(m["Cc"] is None for m in received.values())
    # Everything that came due while down: one catch-up email per recipient.
    caught = late + overdue + escalated
    recipients = {r.to for r in caught}
    assert len(recipients) == 3 and len(caught) > 2 * len(recipients)
    carriers = {r.to: r for r in caught if r.status == "sent" and not r.last_error}
    assert carriers.keys() == recipients  # one carrier each, the smallest key
    for r in caught:
        carrier = carriers[r.to]
        assert r is carrier or (r.status == "sent"
                                and r.last_error == f"sent in {carrier.message_id}")  # fmt: skip
        assert r.key >= carrier.key
    for to, carrier in carriers.items():
        message = received[carrier.message_id]
        assert message["To"] == to
        if to != "cim@north-selpa.example.org":
            assert "Catch-up:" in str(message["Subject"])
        body = next(p for p in message.walk() if p.get_content_type() == "text/plain")
        text = body.get_payload(decode=True).decode()
        assert all(i in text for r in caught if r.to == to for i in r.items)
    assert len(smtp.sink.messages) == len(carriers)
    assert all(n == 1 for n in smtp.sink.ids().values())
    assert not {r.message_id for r in folded} & set(smtp.sink.ids())


def test_overdue_before_the_downtime_is_not_repeated(tmp_path: Path, smtp: SmtpServer) -> None:
    """A daemon last ran on October 12; the ledger lost its rows (restored from an old backup)
    and the daemon comes back on October 15: the Step 2 overdue notice (due October 11, before
    the downtime) is planned afresh but not repeated; nothing is sent for it."""
    clock = Clock(local(2024, 10, 12, 9, 0))
    text = (ROOT / "examples" / "riverbend-usd.toml").read_text().replace('"weekly"', '"none"')
    daemon = make_daemon(tmp_path, smtp, clock, "riverbend-usd", text=text)
    daemon._beat(True)  # a daemon ran a step on October 12
    with daemon.state.engine.begin() as conn:
        conn.execute(reminder.delete())
    clock.move_to(local(2024, 10, 15, 9, 0))
    daemon.down_since = daemon.ledger.last_seen()
    daemon.replan(force=True)
    step(daemon)
    rows = [r for r in Ledger(daemon.state).rows() if r.kind == "overdue"
            and r.items == ("sig-dis-2024/step-2/step-2-submission",)]  # fmt: skip
    assert rows and all(r.status == "folded" for r in rows)
    assert all("before the downtime" in (r.last_error or "") for r in rows)
    assert not {r.message_id for r in rows} & set(smtp.sink.ids())


def test_healthz_reasons_late_reminders_and_a_silent_loop(tmp_path: Path, smtp: SmtpServer) -> None:
    from types import SimpleNamespace

    from pacing.feeds.server import reminder_problems

    clock = Clock(local(2024, 11, 20, 8, 0))
    daemon = make_daemon(tmp_path, smtp, clock)
    book: Any = SimpleNamespace(state=daemon.state)
    assert reminder_problems(book) == []  # no daemon in this process yet
    daemon._beat(True)

    def at(moment: dt.datetime) -> None:  # pacing.clock pinned at this instant
        os.environ["SOURCE_DATE_EPOCH"] = str(int(moment.timestamp()))

    at(clock())
    try:
        assert reminder_problems(book) == []  # due now, not late yet
        clock.move_to(clock() + dt.timedelta(minutes=20))
        daemon._beat(True)
        at(clock())
        problems = reminder_problems(book)
        assert len(problems) == 1 and "reminders late by more than 900 s" in problems[0]
        step(daemon)  # sent now
        assert reminder_problems(book) == []
        at(clock() + dt.timedelta(minutes=4))
        assert reminder_problems(book) == ["reminder loop has not run a step for 240 s "
                                           "(limit 180 s)"]  # fmt: skip
    finally:
        del os.environ["SOURCE_DATE_EPOCH"]
