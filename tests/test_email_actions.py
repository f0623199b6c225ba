"""Emails people can act on: short subjects with the action and date first, plain words in the
bodies, and (served) RFC 8058 one-click unsubscribe and "Mark done" through a real `serve`."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from smtpd import SmtpServer

import pytest
from serving import free_port

from pacing.adapters.files import load_lea
from pacing.adapters.state import State
from pacing.core.guide import Guide
from pacing.core.reminders import plan
from pacing.core.timeline import expand
from pacing.reminders import actions
from pacing.reminders.actions import Claim, Links, sign, verify
from pacing.reminders.bundle import compose, compose_bundle, compose_catch_up
from pacing.reminders.compose import rrule_words
from pacing.reminders.ledger import Row

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
ITEM = "targeted-l3-2024/step-3/box-27-plan-for-improvement-link"
STEP_3 = '"targeted-l3-2024/step-3/box-28-submission" = 2024-12-05\n'
LEAD = "lortega@sunrise.example.org"
HEADS = ("Due ", "Window ends ", "Plan: finish by ", "Overdue since ", "Behind plan (",
         "Start now (", "Meeting ", "CIM week of ", "Catch-up: ")  # fmt: skip
INTERNAL = ("FREQ=", "Seed 00", "seed 00", "at-risk")
NOW = dt.datetime(2024, 10, 21, 15, tzinfo=dt.UTC)
SECRET = b"s" * 32


def as_row(r: object) -> Row:
    return Row(r.key, r.lea, r.kind, r.items, r.due, r.to, r.cc, r.send_at, "pending", 0, None)  # type: ignore[attr-defined]


def bodies(message: Message) -> list[str]:
    return [p.get_payload(decode=True).decode() for p in message.walk() if not p.is_multipart()]


def test_every_subject_fits_with_the_action_and_date_first(
    guides: tuple[Guide, ...], tmp_path: Path
) -> None:
    links = Links("https://cim.example.org", SECRET)
    kinds: set[str] = set()
    for name in ("riverbend-usd", "sunrise-usd", "lakeside-usd"):
        path = tmp_path / f"{name}.toml"  # nothing done yet: every reminder is planned
        path.write_text((ROOT / "examples" / f"{name}.toml").read_text().split("[done]")[0])
        lea = load_lea(path, guides)
        t = expand(guides, lea, dt.date(2024, 9, 1), {})
        rows = [as_row(r) for r in plan(t)]
        firsts = {(r.kind, r.items): r for r in rows}  # one email per reminder, not per recipient
        late = [r for r in rows if not r.cc][:5]
        messages = [compose(r, t, "cim@pacing.test", None, NOW, links) for r in firsts.values()]
        messages.append(compose_catch_up(late, t, "cim@pacing.test", None, NOW, links))
        for message in messages:
            subject = str(message["Subject"])
            kinds.add(subject.split(" ")[0])
            assert len(subject) <= 78, subject
            assert subject.startswith(HEADS), subject
            assert subject.endswith(f" - {lea.short_name}"), subject
            if "Plan: finish" in subject or "Behind plan" in subject:  # a plan is no deadline
                assert "Due" not in subject and "Overdue" not in subject and "CDE" not in subject
            for body in bodies(message):
                assert not [w for w in INTERNAL if w in body], (subject, body)
    assert {"Due", "Plan:", "Overdue", "Behind", "Start", "Meeting", "CIM", "Catch-up:"} <= kinds


def test_rules_read_as_sentences() -> None:
    assert rrule_words("FREQ=MONTHLY;BYDAY=2WE") == "the 2nd Wednesday of each month"
    assert rrule_words("FREQ=MONTHLY;BYDAY=-1FR") == "the last Friday of each month"
    assert rrule_words("FREQ=WEEKLY;BYDAY=MO,TH") == "every Monday and Thursday"
    assert rrule_words("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU") == "every other Tuesday"
    assert rrule_words("FREQ=YEARLY;BYMONTH=7;BYMONTHDAY=10") == "July 10 each year"
    assert rrule_words("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=1") == "on a repeating schedule"


def test_headers_served_and_not(guides: tuple[Guide, ...]) -> None:
    lea = load_lea(ROOT / "examples" / "riverbend-usd.toml", guides)
    t = expand(guides, lea, dt.date(2024, 9, 1), {})
    rows = [as_row(r) for r in plan(t)]
    plain_row = next(r for r in rows if not r.cc)
    desk = Links("https://x.example", SECRET, mailto="Unsubscribe Desk <off@pacing.test>")
    served = compose(plain_row, t, "Ana Peña <cim@pacing.test>", None, NOW, desk)
    https, mailto = str(served["List-Unsubscribe"]).split(", ")
    assert https.startswith("<https://x.example/act/unsubscribe/")
    assert mailto == "<mailto:off@pacing.test?subject=unsubscribe%20riverbend-usd>"  # addr-spec
    assert served["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert all("/act/done/" in b and "Mark done" in b for b in bodies(served))
    # served without a mailto: the one-click link alone, never a mailto to the From address
    alone = compose(plain_row, t, "cim@pacing.test", None, NOW, Links("https://x.example", SECRET))
    assert str(alone["List-Unsubscribe"]).startswith("<https://") and "mailto" not in str(alone)
    # not served: no header at all
    alone = compose(plain_row, t, "cim@pacing.test", None, NOW)
    assert alone["List-Unsubscribe"] is None and alone["List-Unsubscribe-Post"] is None
    assert not any("/act/" in b for b in bodies(alone))
    # an escalation to the SELPA (its own row, never a Cc): its reader's own one-click link,
    # and no Mark done (the reader is outside the district's team)
    told = next(r for r in rows if r.kind == "escalation")
    assert not any(r.cc for r in rows)
    message = compose_bundle([told], {lea.id: t}, "cim@pacing.test", lambda _: None, NOW, desk)
    assert message["To"] == told.to and message["Cc"] is None
    assert str(message["List-Unsubscribe"]).startswith("<https://x.example/act/unsubscribe/")
    assert not any("/act/done/" in b or "Mark done" in b for b in bodies(message))


def test_tokens_are_signed_expiring_and_compared_in_constant_time(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    claim = Claim("done", "sunrise-usd", "a@x.example", ITEM, dt.date(2024, 12, 1))
    token = sign(SECRET, claim)
    assert verify([SECRET], token, "done", NOW) == (200, claim)
    assert verify([b"other", SECRET], token, "done", NOW) == (200, claim)  # during a rotation
    assert verify([SECRET], token, "unsubscribe", NOW) == (404, None)  # not for this action
    assert verify([SECRET], token, "done", NOW + dt.timedelta(days=60))[0] == 410
    payload, _, mac = token.partition(".")
    forged = sign(SECRET, Claim("done", "sunrise-usd", "b@x.example", ITEM, claim.expires))
    calls: list[int] = []
    real = actions.hmac.compare_digest

    def counted(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(actions.hmac, "compare_digest", counted)
    for bad in (f"{forged.partition('.')[0]}.{mac}", f"{payload}.{mac[:-1]}A", "x", "", "a.b.c"):
        calls.clear()
        assert verify([SECRET, b"old"], bad, "done", NOW) == (404, None)
        assert len(calls) == 2  # every secret compared, however close the forgery


# ---------------------------------------------------------------- a real `serve`


def http(url: str, data: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str], SmtpServer]]:
    leas = tmp_path / "leas"
    leas.mkdir()
    text = (ROOT / "examples" / "sunrise-usd.toml").read_text()
    (leas / "sunrise-usd.toml").write_text(text.replace(STEP_3, ""))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with SmtpServer() as smtp:
        env = {**os.environ, "PACING_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1",
               "PACING_SMTP_HOST": "127.0.0.1", "PACING_SMTP_PORT": str(smtp.port),
               "PACING_SMTP_TLS": "none", "PACING_MAIL_FROM": "cim@pacing.test",
               "PACING_UNSUBSCRIBE_MAILTO": "cim@pacing.test",
               # just after box 27's 14-day reminder (08:00 on Nov 20, 2024, Los Angeles)
               "PACING_NOW": "2024-11-20T16:00:05Z", "PACING_LATE_SECONDS": "3600"}  # fmt: skip
        env.pop("PACING_DB", None)
        env.pop("PACING_FEED_SECRET", None)
        (tmp_path / "state").mkdir()
        proc = subprocess.Popen([*CLI, "serve", str(leas), "--port", str(port), "--base-url",
                                 base, "--insecure-links"], env=env, stderr=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL)  # fmt: skip
        try:
            yield base, leas / "sunrise-usd.toml", env, smtp
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def wait_for(smtp: SmtpServer, words: str) -> Message:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with smtp.sink.lock:
            found = [m for m in smtp.sink.messages if words in str(m["Subject"])]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no email with {words!r}: {[m['Subject'] for m in smtp.sink.messages]}")


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout


def test_one_click_unsubscribe_and_mark_done_through_serve(served) -> None:  # type: ignore[no-untyped-def]
    base, profile, env, smtp = served
    message = wait_for(smtp, "Plan for Improvement link")
    assert (
        str(message["Subject"]) == "Plan: finish by Dec 4: Plan for Improvement link - Sunrise USD"
    )
    assert message["To"] == LEAD
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = " ".join(str(message["List-Unsubscribe"]).split()).split(", ")
    assert mailto == "<mailto:cim@pacing.test?subject=unsubscribe%20sunrise-usd>"
    unsubscribe = https.strip("<>")
    assert unsubscribe.startswith(f"{base}/act/unsubscribe/")
    text = bodies(message)[0]
    done_url = next(w for w in text.split() if "/act/done/" in w)
    preview = ["remind", str(profile), "--dry-run", "--from", "2024-11-20", "--until", "2025-01-31"]
    assert LEAD in cli(env, *preview)

    # a link checker's GET changes nothing: a page with a button
    status, page = http(unsubscribe)
    assert status == 200 and '<form method="post">' in page and LEAD in page
    assert LEAD in cli(env, *preview)
    # the mail client's one-click POST (RFC 8058)
    status, page = http(unsubscribe, b"List-Unsubscribe=One-Click")
    assert status == 200 and "no more reminders" in page
    assert LEAD not in cli(env, *preview)
    assert [r for r in State(f"sqlite:///{env['PACING_STATE_DIR']}/pacing.db")
            .opted_out("sunrise-usd")] == [LEAD]  # fmt: skip

    # forged and expired tokens
    token = unsubscribe.rsplit("/", 1)[1]
    assert http(f"{base}/act/unsubscribe/{token[:-2]}xx", b"")[0] == 404
    assert http(f"{base}/act/done/{token}")[0] == 404  # an unsubscribe token is no done token
    secret = State(f"sqlite:///{env['PACING_STATE_DIR']}/pacing.db").feed_secrets()[0]
    old = Links(base, secret, ttl=dt.timedelta(days=-1)).unsubscribe("sunrise-usd", LEAD, NOW)
    assert http(old, b"")[0] == 410

    # Mark done: GET confirms, POST records it; the timeline shows it done
    status, page = http(done_url)
    assert status == 200 and "Mark done" in page and "Plan for Improvement link" in page
    timeline = ["timeline", str(profile), "--today", "2024-11-20", "--format", "json"]
    item = next(i for i in json.loads(cli(env, *timeline))["items"] if i["id"] == ITEM)
    assert item["status"] != "done"
    status, page = http(done_url, b"")
    assert status == 200 and "is marked done" in page
    item = next(i for i in json.loads(cli(env, *timeline))["items"] if i["id"] == ITEM)
    assert item["status"] == "done"
    assert http(done_url)[1].count("is marked done") == 1  # a second visit: already done


def test_the_page_lists_opt_outs_and_opt_in_undoes_one(tmp_path: Path, guides) -> None:
    from pacing.export.page import render_feed_page

    state = State(f"sqlite:///{tmp_path / 'p.db'}")
    at = dt.datetime(2024, 11, 21, 17, tzinfo=dt.UTC)
    state.opt_out("sunrise-usd", "Dreyes@Sunrise.example.org", at)
    lea = load_lea(ROOT / "examples" / "sunrise-usd.toml", guides)
    timeline = expand(guides, lea, dt.date(2024, 11, 20))
    page = render_feed_page(timeline, "http://x/f.ics", "webcal://x/f.ics",
                            opted_out=state.opted_out("sunrise-usd"))  # fmt: skip
    assert "Reminder emails turned off" in page and "since November 21, 2024" in page
    assert "dreyes@" in page
    assert state.opt_in("sunrise-usd", "dreyes@sunrise.example.org")
    assert state.opted_out("sunrise-usd") == {} and not state.opt_in("sunrise-usd", "x@y.org")
