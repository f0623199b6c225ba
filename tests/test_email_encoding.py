"""Emails with any names in them (issue 16): every header RFC 2047-encoded so that it decodes
back to exactly its text (Peña, Nguyễn, Cañada, right-to-left text, emoji, combining marks,
200-character words), sent through a real SMTP server on 127.0.0.1 (aiosmtpd) and written to a
real Maildir; a message that cannot be encoded or is refused fails alone; a From with a display
name; every subject of the examples over a year; the HTML parts checked by the Nu HTML checker."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email
import email.policy
import json
import mailbox
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from smtpd import Sink, SmtpServer
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacing.adapters.files import bundled_guides, load_lea
from pacing.core.caseload import Caseload
from pacing.core.caseload_reminders import ledger_id
from pacing.core.reminders import plan
from pacing.core.timeline import Timeline, expand
from pacing.reminders.actions import Links
from pacing.reminders.bundle import compose, compose_bundle
from pacing.reminders.caseload_digest import compose_caseload, digest_subject
from pacing.reminders.compose import envelope, subject
from pacing.reminders.ledger import Row
from pacing.reminders.send import MaildirSender, SmtpConfig, SmtpSender, flatten

ROOT = Path(__file__).resolve().parent.parent
VNU = ROOT / "tests" / "kit" / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
GUIDES = bundled_guides()
NOW = dt.datetime(2024, 10, 21, 15, tzinfo=dt.UTC)  # 08:00 in Los Angeles, a Monday
FROM = "pacing@district.org"
SECRET = b"s" * 32
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'
READ = email.policy.default


# ---- a real SMTP server that keeps what it was given (envelope and bytes) -------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    content: bytes


@dataclass
class Recorder(Sink):
    """tests/smtpd.py's Sink, keeping each message's envelope and bytes too; DATA holding
    `refuse` is answered 550."""

    received: list[Received] = field(default_factory=list)
    refuse_data: bytes | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_data and self.refuse_data in envelope.content:
            return "550 5.7.1 Message refused"
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          list(envelope.mail_options), envelope.content))  # fmt: skip
        return await super().handle_DATA(server, session, envelope)


class Server(SmtpServer):
    """tests/smtpd.py's server with the Recorder as its sink."""

    sink: Recorder

    def __init__(self, utf8: bool = True, refuse_data: bytes | None = None) -> None:
        super().__init__(Recorder(refuse_data=refuse_data), utf8)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with Server() as s:
        yield s


Outcomes = dict[int, tuple[str, str]]


def smtp_send(port: int, messages: Sequence[Message], sender: str = FROM) -> Outcomes:
    out: Outcomes = {}
    config = SmtpConfig(host="127.0.0.1", port=port, tls="none", address=sender, timeout=10)
    asyncio.run(SmtpSender(config).send(messages, lambda i, o, e: out.__setitem__(i, (o, e)),
                                        lambda: False))  # fmt: skip
    return out


def maildir_send(folder: Path, messages: Sequence[Message]) -> tuple[Outcomes, list[bytes]]:
    out: Outcomes = {}
    asyncio.run(MaildirSender(folder).send(messages, lambda i, o, e: out.__setitem__(i, (o, e)),
                                           lambda: False))  # fmt: skip
    box = mailbox.Maildir(folder, create=False)
    return out, [box.get_bytes(key) for key in box.iterkeys()]


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=READ)
    assert isinstance(message, EmailMessage)
    return message


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None, kind
    return str(part.get_content())


# ---- the example reminders, with names changed ------------------------------------------------

BASE_LEA = load_lea(ROOT / "examples" / "riverbend-usd.toml", GUIDES)
BASE = expand(GUIDES, BASE_LEA, NOW.date(), {})


def as_row(r: Any) -> Row:
    return Row(r.key, r.lea, r.kind, r.items, r.due, r.to, r.cc, r.send_at, "pending", 0, None)


def _rows() -> list[Row]:
    """One reminder of each kind (the first, from the plan of riverbend-usd)."""
    kinds: dict[str, Row] = {}
    for r in plan(BASE):
        if r.items and any(e.id == r.items[0] for e in BASE.items):
            kinds.setdefault(r.kind, as_row(r))
    return list(kinds.values())[:5]


ROWS = _rows()


def renamed(lea_name: str, title: str, note: str) -> Timeline:
    """The example's timeline with the LEA's name, the reminded items' titles and a note
    (shown under each item) replaced."""
    wanted = {i for r in ROWS for i in r.items}
    items = tuple(e.evolve(title=title, warnings=(note,)) if e.id in wanted else e
                  for e in BASE.items)  # fmt: skip
    return dataclasses.replace(BASE, lea=BASE_LEA.model_copy(update={"name": lea_name}),
                               items=items)  # fmt: skip


def caseload_row(load: Caseload) -> Row:
    lea = ledger_id(load.slug)
    assert load.email is not None
    key = f"{lea}|{NOW.date()}|caseload|{load.email}"
    return Row(key, lea, "caseload", (), NOW.date(), load.email, (), NOW, "pending", 0, None)


def digest_for(t: Timeline, name: str, sender: str = FROM) -> EmailMessage:
    load = Caseload(slug="penasco-selpa", name=name, email="rtran@ta.example.org",
                    roles=("named",), leas=(t.lea.id,), digest="weekly")  # fmt: skip
    return compose_caseload(caseload_row(load), load, {t.lea.id: t}, sender, lambda _: None, NOW)


# ---- names as people write them ---------------------------------------------------------------

SEEDS = ["Peña", "Nguyễn", "Cañada", "Muñoz", "Peñasco", "SELPA", "الرياض", "مدرسة", "מחוז",
         "בית-ספר", "😀", "🏫📚", "José", "Jose\u0301", "A\u0308\u0301", "Ỹ", "O'Brien", "Dr.",
         '"quoted"', "a&b", "<b>", "=?utf-8?q?x?=", "(CDE):", "-", "...", "x" * 200,
         "ñ" * 200, "東京都"]  # fmt: skip
PRINTABLE = st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl",
                                                             "Zp", "Zs"))  # fmt: skip
WORD = st.one_of(st.sampled_from(SEEDS), st.text(PRINTABLE, min_size=1, max_size=12),
                 st.text(PRINTABLE, min_size=200, max_size=200))  # fmt: skip
NAMES = st.lists(WORD, min_size=1, max_size=6).map(" ".join).filter(str.isprintable)
# A display name whose runs of non-ASCII words each fit one encoded word (45 bytes of UTF-8):
# Python's address parser keeps the space between two encoded words that RFC 2047 drops, so a
# longer run (split as RFC 2047 says, see test_a_long_display_name_is_split_as_rfc_2047_says)
# reads with a space more in Python, not in a mail client.
DISPLAY = st.lists(st.one_of(st.sampled_from(SEEDS[:22]), st.text(PRINTABLE, min_size=1,
                                                                  max_size=6)),
                   min_size=1, max_size=4).map(" ".join).filter(
                       lambda n: n.isprintable() and len(n.encode()) <= 40)  # fmt: skip


def quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def utf8(text: str) -> str:
    """A header's text as the bytes parser gives it (8-bit bytes as surrogates), decoded."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8")


def check(got: EmailMessage, sent: EmailMessage, sender_name: str, to: str) -> None:
    """The message as read back: the same Subject, From, To and bodies as composed."""
    line = str(sent["Subject"])
    assert str(got["Subject"]) == line
    assert len(line) <= 78 and "  " not in line and line == line.strip()
    (author,) = got["From"].addresses
    assert (author.display_name, author.addr_spec) == (sender_name, FROM)
    assert [utf8(a.addr_spec) for a in got["To"].addresses] == [to]  # SMTPUTF8: raw UTF-8
    assert str(got["Message-ID"]) == str(sent["Message-ID"])
    assert str(got["X-Pacing-Key"]) == str(sent["X-Pacing-Key"])
    assert got["Auto-Submitted"] == "auto-generated"
    for kind in ("plain", "html"):
        assert body(got, kind) == body(sent, kind)
    assert got.get_content_type() == "multipart/alternative"
    assert [p.get_content_charset() for p in got.iter_parts()] == ["utf-8", "utf-8"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lea_name=NAMES, title=NAMES, note=NAMES, caseload=NAMES, contact=DISPLAY)
def test_any_names_arrive_as_written(server: Server, lea_name: str, title: str, note: str,
                                     caseload: str, contact: str) -> None:  # fmt: skip
    t = renamed(lea_name, title, note)
    sender = f"{quoted(contact)} <{FROM}>"
    # the display name as configured ('"=?utf-8?q?x?=" <...>' is read as "x", by Python)
    contact = HeaderRegistry()("From", sender).addresses[0].display_name
    messages = [compose(r, t, sender, "https://cim.example.org/p/", NOW) for r in ROWS]
    messages.append(digest_for(t, caseload, sender))
    # the daemon's own path: one person's reminders of one moment in one email
    one = "lead@riverbend.example.org"
    same = [dataclasses.replace(r, key=r.key + "|b", to=one) for r in ROWS]
    messages.append(compose_bundle(same, {t.lea.id: t}, sender, lambda _: None, NOW))
    to_utf8 = dataclasses.replace(ROWS[0], to="josé.peña@riverbend.example.org")
    messages.append(compose(to_utf8, t, sender, None, NOW))  # a non-ASCII address: SMTPUTF8
    tos = [str(m["To"]) for m in messages]
    assert all(lea_name in body(m, "plain") for m in messages)  # the name is in the bodies

    before = len(server.sink.received)
    outcomes = smtp_send(server.port, messages, sender)
    assert outcomes == {i: ("sent", "") for i in range(len(messages))}
    received = server.sink.received[before:]
    assert len(received) == len(messages)
    for got, sent, to in zip(received, messages, tos, strict=True):
        assert got.mail_from == FROM and got.rcpt_tos == [to]  # the addr-spec, not the name
        assert ("SMTPUTF8" in got.mail_options) == (not to.isascii())
        check(parsed(got.content), sent, contact, to)
        if to.isascii():  # RFC 2047 throughout: 7-bit headers, lines within SMTP's limit
            head = got.content.split(b"\r\n\r\n", 1)[0]
            assert head.isascii() and max(map(len, head.split(b"\r\n"))) <= 998

    with tempfile.TemporaryDirectory() as folder:
        outcomes, stored = maildir_send(Path(folder) / "outbox", messages)
    assert outcomes == {i: ("sent", "") for i in range(len(messages))}
    by_id = {str(m["Message-ID"]) + utf8(str(m["To"])): m for m in map(parsed, stored)}
    for sent, to in zip(messages, tos, strict=True):
        check(by_id[str(sent["Message-ID"]) + to], sent, contact, to)


# ---- one message that cannot go fails alone ---------------------------------------------------


def legacy(subject_line: str, to: str) -> MIMEMultipart:
    """A message built the old way (compat32, a short non-ASCII Subject kept raw): it cannot
    be written in ASCII, which used to fail the daemon's whole step."""
    message = MIMEMultipart("alternative")
    message["Subject"], message["From"], message["To"] = subject_line, FROM, to
    message["Message-ID"] = "<legacy@pacing>"
    message.attach(MIMEText("hello", "plain", "utf-8"))
    return message


def test_a_message_that_cannot_be_sent_fails_alone() -> None:
    t = renamed("Peñasco Unified School District", "Submit Step 3", "Nguyễn")
    good = [compose(dataclasses.replace(r, to=f"ok{i}@riverbend.example.org"), t, FROM, None,
                    NOW) for i, r in enumerate(ROWS[:4])]  # fmt: skip
    unencodable = legacy("Weekly CIM digest: 2 LEAs overdue, 1 due by Nov 12 - Peñasco SELPA",
                         "bad@riverbend.example.org")  # fmt: skip
    refused = compose(dataclasses.replace(ROWS[0], to="refused@riverbend.example.org"), t, FROM,
                      None, NOW)  # fmt: skip
    refused["X-Refuse-Me"] = "yes"
    utf8 = compose(dataclasses.replace(ROWS[0], to="josé@riverbend.example.org"), t, FROM, None,
                   NOW)  # fmt: skip
    batch: list[Message] = [good[0], unencodable, good[1], refused, good[2], utf8, good[3]]
    with Server(utf8=False, refuse_data=b"X-Refuse-Me") as plain_server:
        outcomes = smtp_send(plain_server.port, batch)
        arrived = [parsed(r.content) for r in plain_server.sink.received]
    assert [outcomes[i][0] for i in range(len(batch))] == \
        ["sent", "failed", "sent", "failed", "sent", "failed", "sent"]  # fmt: skip
    assert outcomes[1][1].startswith("cannot encode header Subject: UnicodeEncodeError")
    assert outcomes[3][1].startswith("550 ")
    assert "SMTPUTF8" in outcomes[5][1]
    assert all("\n" not in text and len(text) <= 300 for _, text in outcomes.values())
    assert [str(m["To"]) for m in arrived] == [str(m["To"]) for m in good]

    with tempfile.TemporaryDirectory() as folder:
        outcomes, stored = maildir_send(Path(folder) / "outbox", batch)
    assert [outcomes[i][0] for i in range(len(batch))] == \
        ["sent", "failed", "sent", "sent", "sent", "sent", "sent"]  # fmt: skip
    assert outcomes[1][1].startswith("cannot encode header Subject: ")
    assert len(stored) == 6 and "josé@riverbend.example.org" in {str(parsed(r)["To"])
                                                                 for r in stored}  # fmt: skip


def test_a_header_that_raises_while_flattening_fails_alone(server: Server) -> None:
    class Exploding(str):
        name = "X-Exploding"

        def fold(self, *, policy: Any) -> str:
            raise ValueError("no way to write this")

    t = renamed("Cañada USD", "Submit Step 3", "note")
    batch = [compose(r, t, FROM, None, NOW) for r in ROWS[:3]]
    batch[1]["X-Exploding"] = Exploding("boom")
    before = len(server.sink.received)
    outcomes = smtp_send(server.port, batch)
    assert outcomes[0] == ("sent", "") and outcomes[2] == ("sent", "")
    assert outcomes[1] == ("failed", "cannot encode header X-Exploding: ValueError: no way to "
                           "write this")  # fmt: skip
    assert len(server.sink.received) == before + 2


# ---- the sender with a display name; the mailto form of List-Unsubscribe ------------------------


def test_from_with_a_display_name(server: Server) -> None:
    t = renamed("Peñasco USD", "Submit Step 3", "note")
    row = ROWS[0]
    for name in ("Ana Peña", "Nguyễn Thị Minh Khai", "Peña, Ana", "CIM team (Riverbend)"):
        sender = f"{quoted(name)} <{FROM}>"
        desk = Links("https://cim.example.org", SECRET, mailto=f"{quoted(name)} <unsub+cim@district.org>")
        served = compose(row, t, sender, None, NOW, desk)
        heads = str(served["List-Unsubscribe"]).split(", ")
        assert heads[0].startswith("<https://cim.example.org/act/unsubscribe/")
        mailto = urlsplit(heads[1].strip("<>"))
        assert mailto.scheme == "mailto" and mailto.query == "subject=unsubscribe%20riverbend-usd"
        assert Address(addr_spec=unquote(mailto.path)).addr_spec == "unsub+cim@district.org"
        unserved = compose(row, t, sender, None, NOW)  # no links, no mailto: no header at all
        assert unserved["List-Unsubscribe"] is None
        one_click = compose(row, t, sender, None, NOW, Links("https://cim.example.org", SECRET))
        assert "mailto:" not in str(one_click["List-Unsubscribe"])  # never the From address

        before = len(server.sink.received)
        assert smtp_send(server.port, [served], sender) == {0: ("sent", "")}
        got = server.sink.received[before]
        assert got.mail_from == FROM  # the envelope sender is the addr-spec
        message = parsed(got.content)
        (author,) = message["From"].addresses
        assert (author.display_name, author.addr_spec) == (name, FROM)
        raw_from = got.content.split(b"\r\nFrom: ", 1)[1].split(b"\r\n", 1)[0]
        assert raw_from.isascii()
        assert str(message["List-Unsubscribe"]) == str(served["List-Unsubscribe"])
    mailto_only = envelope(row, FROM, NOW, "Subject", "text", "<p>html</p>", None,
                           mailto="cim@district.org")  # fmt: skip
    assert str(mailto_only["List-Unsubscribe"]) == \
        "<mailto:cim@district.org?subject=unsubscribe%20riverbend-usd>"  # fmt: skip
    assert mailto_only["List-Unsubscribe-Post"] is None  # one-click needs the https link


def test_a_long_display_name_is_split_as_rfc_2047_says() -> None:
    name = "مكتب التعليم الخاص في منطقة الرياض التعليمية الكبرى"  # 47 letters, 2 bytes each
    message = envelope(ROWS[0], f"{name} <{FROM}>", NOW, "Subject", "text", "<p>x</p>", None)
    raw = flatten(message, email.policy.SMTP)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    folded = head.split("\r\nFrom: ", 1)[1].split("\r\nTo:", 1)[0]
    words = folded.replace("\r\n", "").rsplit(" <", 1)[0].split(" ")
    assert len(words) > 1 and all(len(w) <= 75 and w.startswith("=?utf-8?") for w in words)
    assert str(make_header(decode_header(" ".join(words)))) == name  # RFC 2047's reading
    assert parsed(raw)["From"].addresses[0].addr_spec == FROM


# ---- every subject of the examples over a year --------------------------------------------------


def test_every_subject_of_the_examples_over_a_year_decodes_to_itself() -> None:
    """Every reminder of the three examples from July 2024 to June 2025, and the weekly digest
    subjects: at most 78 characters, single spaces, and decoded back (the policy's parser and
    email.header) to exactly that."""
    start, end = dt.datetime(2024, 7, 1, tzinfo=dt.UTC), dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
    lines: set[str] = set()
    for name in ("riverbend-usd", "sunrise-usd", "lakeside-usd"):
        lea = load_lea(ROOT / "examples" / f"{name}.toml", GUIDES)
        t = expand(GUIDES, lea, dt.date(2024, 7, 1), {})
        for r in plan(t):
            if start <= r.send_at < end:
                first = t.get(r.items[0]) if r.items else None
                lines.add(subject(r.kind, first, r.due, lea.short_name, len(r.items),
                                  r.send_at.year))  # fmt: skip
        lines.add(subject("catch-up", None, dt.date(2024, 10, 1), lea.short_name, 7))
    for title in ("Valle del Sur SELPA", "Robin Tran, TA facilitator (FMTA consultant)",
                  "Peñasco SELPA", "Distrito Escolar Unificado de la Cañada Flintridge Nguyễn"):
        lines.add(digest_subject([], dt.date(2024, 11, 12), title, 2024))
    assert len(lines) > 45
    for line in sorted(lines):
        assert len(line) <= 78 and "  " not in line and line == line.strip(), line
        message = envelope(ROWS[0], FROM, NOW, line, "text", "<p>html</p>", None)
        raw = flatten(message, email.policy.SMTP)
        assert str(parsed(raw)["Subject"]) == line
        head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
        folded = head.split("Subject: ", 1)[1].split("\r\nFrom:", 1)[0].replace("\r\n", "")
        assert str(make_header(decode_header(folded))) == line
        assert all(len(x) <= 78 for x in head.split("\r\n") if not x.startswith("X-Pacing"))


# ---- the HTML parts -----------------------------------------------------------------------------


def test_html_parts_pass_vnu_and_fit_a_phone(tmp_path: Path) -> None:
    if not VNU.exists():
        pytest.fail(f"{VNU} is missing: run tests/setup.sh (npm ci in tests/kit)")
    java = shutil.which("java")
    if java is None:
        pytest.fail("java (17 or later) is missing: vnu needs it")
    t = renamed("Distrito Escolar Unificado de Peñasco", "Nguyễn's plan \u2013 مدرسة 😀",
                "Cañada <note> & \"quotes\"")  # fmt: skip
    links = Links("https://cim.example.org", SECRET, mailto="cim@district.org")
    messages = [compose(r, t, FROM, "https://cim.example.org/p/", NOW, links) for r in ROWS]
    messages.append(digest_for(t, "Peñasco SELPA"))
    one = "lead@riverbend.example.org"  # the daemon's path: a bundle, links for each part
    same = [dataclasses.replace(r, to=one) for r in ROWS]
    messages.append(compose_bundle(same, {t.lea.id: t}, FROM, lambda _: "https://x.org/p/",
                                   NOW, links))  # fmt: skip
    pages = []
    for index, message in enumerate(messages):
        html = body(message, "html")
        assert VIEWPORT in html and '<html lang="en">' in html
        assert "<title>" in html and "<title></title>" not in html
        pages.append(tmp_path / f"email-{index}.html")
        pages[-1].write_text(html, encoding="utf-8")
    run = subprocess.run([java, "-jar", str(VNU), "--errors-only", "--format", "json",
                          *map(str, pages)], capture_output=True, text=True, timeout=300)  # fmt: skip
    messages_ = json.loads(run.stderr or run.stdout)["messages"]
    assert [(Path(m.get("url", "")).name, m.get("lastLine"), m["message"]) for m in messages_] == []
    assert run.returncode == 0
