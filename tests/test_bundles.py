"""One email per person per moment, escalations once, delivery by person, and a message that
cannot be made fails alone: through the daemon and a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from email.message import Message
from pathlib import Path
from smtpd import SmtpServer
from typing import Any

import pytest
from testclock import Clock, local

from pacing.adapters.state import State
from pacing.core.reminders import plan
from pacing.core.timeline import expand
from pacing.reminders.daemon import Daemon
from pacing.reminders.ledger import Ledger
from pacing.reminders.send import SmtpConfig, SmtpSender

ROOT = Path(__file__).resolve().parent.parent
SUNRISE = (ROOT / "examples" / "sunrise-usd.toml").read_text().split("[done]")[0]
RIVERBEND = (ROOT / "examples" / "riverbend-usd.toml").read_text().split("[done]")[0]


def daemon_for(tmp_path: Path, smtp: SmtpServer, clock: Clock, **profiles: str) -> Daemon:
    folder = tmp_path / "leas"
    folder.mkdir(exist_ok=True)
    for name, text in profiles.items():
        (folder / f"{name.replace('_', '-')}.toml").write_text(text)
    state = State(f"sqlite:///{tmp_path / 'state.db'}")
    config = SmtpConfig(host="127.0.0.1", port=smtp.port, tls="none", address="cim@pacing.test")
    daemon = Daemon([folder], state, SmtpSender(config), clock)
    daemon.replan(force=True)
    return daemon


def run_until(daemon: Daemon, clock: Clock, end: dt.datetime) -> None:
    """Step through every instant the ledger has, as the daemon's loop would."""

    async def go() -> None:
        while clock.at <= end:
            daemon.replan()
            await daemon.step()
            at = daemon.ledger.next_instant()
            if at is None or at > end:
                return
            clock.move_to(max(at, clock.at + dt.timedelta(seconds=1)))

    asyncio.run(go())


def text_of(message: Message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_one_email_per_person_per_moment_across_items_and_leas(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    """Two LEAs with one lead (one person on both teams): every morning's reminders of both
    arrive as one email, CDE's dates before pacing's plan, and every reminder the ledger sent
    is in exactly one delivered email."""
    shared = "lortega@sunrise.example.org"
    riverbend = RIVERBEND.replace('to = ["lead", "sped-admin"]', f'to = ["{shared}"]')
    riverbend = riverbend.replace('digest = "weekly"', 'digest = "none"')
    clock = Clock(local(2024, 9, 1, 7, 0))
    daemon = daemon_for(tmp_path, smtp, clock, sunrise_usd=SUNRISE, riverbend_usd=riverbend)
    run_until(daemon, clock, local(2025, 1, 31, 23, 0))
    mine = [m for m in smtp.sink.messages if m["To"] == shared]
    days = Counter(str(m["Date"])[:16] for m in mine)
    assert mine and max(days.values()) == 1, days  # one email a moment
    rows = [r for r in Ledger(daemon.state).rows() if r.to == shared and r.status == "sent"]
    ids = Counter(str(m["Message-ID"]) for m in mine)
    assert all(n == 1 for n in ids.values())
    for r in rows:  # each sent reminder is in exactly one delivered email
        carrier = (r.last_error or "").removeprefix("sent in ") or r.message_id
        assert ids[carrier] == 1, r.key
    assert len(rows) > len(mine)  # some emails carried several reminders
    both = [m for m in mine if "Sunrise" in text_of(m) and "Riverbend" in text_of(m)]
    assert both, "no morning had both LEAs in one email"
    plan_words = "This date is pacing's plan"
    mixed = [text_of(m) for m in mine if plan_words in text_of(m) and "CDE's" in text_of(m)]
    for body in mixed:  # CDE's dates first, then pacing's plan
        last_cde = max(body.rfind("This is CDE's"), body.rfind("CDE's own date"))
        assert last_cde == -1 or last_cde < body.find(plan_words), body
    assert all(len(" ".join(str(m["Subject"]).split())) <= 78 for m in mine)


def test_offsets_collapsed_by_a_closure_are_one_line(guides: Any, make_lea: Any) -> None:
    """A closure moves the 14-, 7- and 1-day reminders of one deadline onto one morning: one
    reminder, not three."""
    lea = make_lea("lakeside-usd", reminders={"offsets_days": [14, 7, 1]},
                   calendar={"closures": [{"from": "2024-11-04", "to": "2024-12-06",
                                           "name": "Long closure"}]})  # fmt: skip
    t = expand(guides, lea, dt.date(2024, 9, 1))
    by = Counter((r.to, r.items, r.send_at) for r in plan(t) if r.kind == "due")
    assert by and max(by.values()) == 1


def test_escalation_once_per_outside_recipient_whoever_opted_out(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    """Riverbend's two team recipients, its SELPA told of a missed CDE deadline: one email to
    the SELPA per item and day (not one per team recipient), with no Mark done link; the team
    opting out does not silence it."""
    riverbend = RIVERBEND.replace('digest = "weekly"', 'digest = "none"')
    clock = Clock(local(2024, 6, 1, 7, 0))
    daemon = daemon_for(tmp_path, smtp, clock, riverbend_usd=riverbend)
    for who in ("amoreno@riverbend.example.org", "jwu@riverbend.example.org"):
        daemon.state.opt_out("riverbend-usd", who, clock.at)
    run_until(daemon, clock, local(2025, 6, 30, 23, 0))
    selpa = [m for m in smtp.sink.messages if m["To"] == "cim@north-selpa.example.org"]
    assert selpa and not [m for m in smtp.sink.messages if "riverbend.example.org" in m["To"]]
    assert all(m["Cc"] is None for m in smtp.sink.messages)
    escalated = [r for r in Ledger(daemon.state).rows() if r.kind == "escalation"]
    keys = Counter((r.to, r.items, r.send_at) for r in escalated)
    assert escalated and max(keys.values()) == 1
    for m in selpa:
        assert "Overdue" in str(m["Subject"]) and "Mark done" not in text_of(m)
        assert "contact of Riverbend" in " ".join(text_of(m).split())


def test_delivery_per_person(guides: Any, make_lea: Any) -> None:
    """`weekly` readers get the Monday overview and overdue notices only; `daily` every
    reminder; `each` with the overview on loses only what the overview covers."""
    lea = make_lea("riverbend-usd", reminders={"digest": "weekly", "delivery": {
        "lead": "weekly", "sped-admin": "daily"}})  # fmt: skip
    t = expand(guides, lea, dt.date(2024, 9, 1))
    kinds: dict[str, set[str]] = {}
    for r in plan(t):
        kinds.setdefault(r.to, set()).add(r.kind)
    lead = next(m.email for m in lea.team if m.lead)
    admin = next(m.email for m in lea.team if m.role == "sped-admin")
    assert kinds[lead] <= {"digest", "overdue"}
    assert {"due", "start-by", "meeting"} <= kinds[admin] and "digest" not in kinds[admin]
    chosen = plan(t, {admin: "weekly"})  # a person's own choice wins over the profile
    assert {r.kind for r in chosen if r.to == admin} <= {"digest", "overdue"}


def test_a_message_that_cannot_be_composed_fails_alone(
    tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Composing one LEA's email raises: that reminder is retried later with the reason
    (kind, LEA, item, recipient's domain in the log), the other LEA's email goes out."""
    import pacing.reminders.bundle as bundle

    real = bundle.parts

    def broken(rows: Any, timelines: Any) -> Any:
        if any(r.lea == "sunrise-usd" for r in rows):
            raise UnicodeEncodeError("ascii", "Peña", 2, 3, "ordinal not in range(128)")
        return real(rows, timelines)

    monkeypatch.setattr(bundle, "parts", broken)
    clock = Clock(local(2024, 11, 20, 8, 0))
    daemon = daemon_for(tmp_path, smtp, clock, sunrise_usd=SUNRISE, riverbend_usd=RIVERBEND)
    report = asyncio.run(daemon.step())
    assert report.sent >= 1 and report.retried >= 1
    assert all("sunrise" not in str(m["To"]) for m in smtp.sink.messages)
    waiting = [r for r in Ledger(daemon.state).rows() if r.lea == "sunrise-usd" and r.last_error]
    assert waiting and all("cannot compose" in (r.last_error or "") for r in waiting)
    assert all(r.status == "pending" for r in waiting)  # retried with backoff, not lost


def test_a_sender_that_raises_does_not_spin(tmp_path: Path, smtp: SmtpServer) -> None:
    """A sender's own bug: the rows wait with backoff (never a retry every 5 s)."""
    clock = Clock(local(2024, 11, 20, 8, 0))
    daemon = daemon_for(tmp_path, smtp, clock, sunrise_usd=SUNRISE)

    class Broken:
        address = "cim@pacing.test"

        def describe(self) -> str:
            return "broken"

        async def send(self, messages: Any, report: Any, stop: Any) -> None:
            raise RuntimeError("boom")

    daemon.sender = Broken()
    asyncio.run(daemon.step())
    rows = [r for r in Ledger(daemon.state).rows() if r.last_error]
    assert rows and all("sender failed: " in (r.last_error or "") for r in rows)
    at = daemon.ledger.next_instant()
    assert at is not None and at >= clock.at + dt.timedelta(minutes=1)
