"""Reminders end to end against a real SMTP server on 127.0.0.1; time is injected, never slept."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from smtpd import SmtpServer
from zoneinfo import ZoneInfo

import pytest

from pacing.adapters.state import State
from pacing.core.entry import DoneMark
from pacing.core.reminders import plan
from pacing.core.timeline import expand
from pacing.reminders.daemon import Daemon
from pacing.reminders.ledger import Ledger
from pacing.reminders.send import SmtpConfig, SmtpSender

ROOT = Path(__file__).resolve().parent.parent
LA = ZoneInfo("America/Los_Angeles")


class Clock:
    def __init__(self, start: dt.datetime) -> None:
        self.at = start

    def __call__(self) -> dt.datetime:
        return self.at

    def move_to(self, moment: dt.datetime) -> None:
        self.at = moment


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=LA).astimezone(dt.UTC)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


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
    wanted = "[Sunrise Unified School District] Plan for Improvement link: due December 4, 2024"
    assert wanted in subjects, subjects
    message = messages[subjects.index(wanted)]
    assert message["To"] == "lortega@sunrise.example.org" and message["From"] == "cim@pacing.test"
    assert message["List-Unsubscribe"].startswith("<mailto:")
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


def test_downtime_sends_late_or_folds_into_overdue(tmp_path: Path, smtp: SmtpServer) -> None:
    clock = Clock(local(2024, 10, 1, 7, 0))
    text = (ROOT / "examples" / "riverbend-usd.toml").read_text().replace('"weekly"', '"none"')
    daemon = make_daemon(tmp_path, smtp, clock, "riverbend-usd", text=text)  # planned, running
    down_until = local(2024, 10, 20, 12, 0)  # down from Oct 1 until after Step 2's due date
    clock.move_to(down_until)
    step(daemon)
    today = dt.date(2024, 10, 20)
    missed = [r for r in Ledger(daemon.state).rows()
              if local(2024, 10, 1, 7, 0) < r.send_at <= down_until]  # fmt: skip
    late = [r for r in missed if r.kind in ("due", "start-by") and r.due >= today]
    folded = [r for r in missed if r.kind in ("due", "start-by") and r.due < today]
    overdue = [r for r in missed if r.kind == "overdue"]
    assert late and folded and overdue
    assert all(r.status == "sent" for r in late + overdue)
    assert all(r.status == "folded" and "overdue notice" in (r.last_error or "") for r in folded)
    # Copied to the SELPA only when a CDE submission was missed (Step 2, due October 10).
    by_id = {r.message_id: r for r in overdue}
    notices = [m for m in smtp.sink.messages if m["Message-ID"] in by_id]
    assert len(notices) == len(overdue)
    assert all((m["Cc"] or "") == ", ".join(by_id[m["Message-ID"]].cc) for m in notices)
    escalated = {r.items[0] for r in overdue if r.cc == ("cim@north-selpa.example.org",)}
    assert escalated == {"sig-dis-2024/step-2/step-2-submission"}
    assert {r.message_id for r in late + overdue} <= set(smtp.sink.ids())
    assert not {r.message_id for r in folded} & set(smtp.sink.ids())
    assert all(n == 1 for n in smtp.sink.ids().values())
