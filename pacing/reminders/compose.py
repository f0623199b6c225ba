"""Reminder emails: multipart text and HTML from jinja2 templates, CSS inlined, safe headers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from email.headerregistry import HeaderRegistry
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP
from email.utils import format_datetime
from functools import cache
from typing import Any, cast

from pacing.core.dates import long_date
from pacing.core.entry import STATUS_NAMES, Entry, source_sentence
from pacing.core.errors import one_line
from pacing.core.timeline import Timeline
from pacing.export.timeline import dated
from pacing.reminders.ledger import Row

# Headlines (the Subject after the LEA's name). A plan (pacing's estimate) is never "due" or
# "overdue"; CDE's dates say they are CDE's; assumed and district dates say so.
DIGEST = "CIM week of {when}: {count} item(s) coming up"
CATCH_UP = "Catch-up: {count} item(s) you were not reminded of on time"
BEHIND_PLAN = "Behind plan: {title} (planned to finish {when})"
TAGS = {"assumed": "assumed date", "lea": "district's date"}
WAS = {  # (source, a window?) -> the words before a passed date
    ("cde", False): "CDE deadline was",
    ("cde", True): "CDE window ended",
    ("assumed", False): "assumed due date was",
    ("assumed", True): "assumed window ended",
    ("lea", False): "district's due date was",
    ("lea", True): "district's window ended",
}


def _date_words(e: Entry, when: str, inner: bool = False) -> str:
    """ "CDE deadline October 10, 2024", "plan: finish by ...", "due ... (assumed date)"
    (`inner`: inside parentheses, "due ..., assumed date")."""
    window = e.kind == "window"
    if e.date_source == "planned":
        return f"plan: finish by {when}"
    if e.date_source == "cde":
        return f"{'CDE window ends' if window else 'CDE deadline'} {when}"
    tag = TAGS[e.date_source]
    words = f"{'window ends' if window else 'due'} {when}"
    return f"{words}, {tag}" if inner else f"{words} ({tag})"


def headline(kind: str, e: Entry | None, due: dt.date, count: int = 1) -> str:
    """The reminder's headline: "Plan: finish Root Cause #1 by October 9, 2024", "Submit Step 2
    ...: CDE deadline October 10, 2024", "Overdue: ... (CDE deadline was October 10, 2024)",
    "Start now: ... (plan: finish by ...)", "Behind plan: ... (planned to finish ...)"."""
    when = long_date(due)
    if kind == "catch-up":
        return CATCH_UP.format(count=count)
    if kind == "digest" or e is None:
        return DIGEST.format(when=when, count=count)
    title = e.title
    if kind == "behind-plan" or (kind == "overdue" and e.date_source == "planned"):
        return BEHIND_PLAN.format(title=title, when=when)
    if kind == "overdue":
        return f"Overdue: {title} ({WAS[e.date_source, e.kind == 'window']} {when})"
    if kind == "start-by":
        return f"Start now: {title} ({_date_words(e, when, inner=True)})"
    if e.date_source == "planned":
        return f"Plan: finish {title} by {when}"
    return f"{title}: {_date_words(e, when)}"


@cache
def _environments() -> tuple[Any, Any]:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from pacing.adapters.files import data_dir

    loader = FileSystemLoader(data_dir("templates"))
    text = Environment(loader=loader, undefined=StrictUndefined, autoescape=False,
                       trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    html = Environment(loader=loader, undefined=StrictUndefined, autoescape=True)
    return text, html


Bodies = tuple[str, str, str]
_BODIES: dict[tuple[int, str, tuple[str, ...], dt.date, str | None], tuple[Timeline, Bodies]] = {}


def _bodies(
    kind: str, items: tuple[str, ...], due: dt.date, timeline: Timeline, page_url: str | None
) -> Bodies:
    """Subject line, text and HTML: the same for every recipient of one reminder, so they are
    kept for the timeline they were made from (a re-planned timeline is a new object)."""
    key = (id(timeline), kind, items, due, page_url)
    found = _BODIES.get(key)
    if found is not None and found[0] is timeline:
        return found[1]
    if len(_BODIES) > 2048:
        _BODIES.clear()
    made = _render(kind, items, due, timeline, page_url)
    _BODIES[key] = (timeline, made)
    return made


def _render(
    kind: str, items: tuple[str, ...], due: dt.date, timeline: Timeline, page_url: str | None
) -> Bodies:
    import css_inline

    wanted = set(items)
    entries = [e for e in timeline.items if e.id in wanted]
    first = entries[0] if entries else None
    title = one_line(headline(kind, first, due, len(entries)))
    context = {"lea": timeline.lea, "entries": entries, "headline": title, "kind": kind,
               "page_url": page_url, "long": long_date, "dated": _dated,
               "source_sentence": source_sentence, "status_names": STATUS_NAMES}  # fmt: skip
    text_env, html_env = _environments()
    text = text_env.get_template("reminder.txt.j2").render(context)
    html = css_inline.inline(html_env.get_template("reminder.html.j2").render(context))
    return title, text, html


def _dated(e: Entry) -> str:
    """The item's date after what it is: "CDE deadline: October 10, 2024"."""
    return dated(e, long_date, colon=True)


# Header values are folded as text (never parsed as addresses or ids), the way email.policy does.
_FOLDING = SMTP.clone(header_factory=HeaderRegistry(use_default_map=False))
# An ASCII value is left as it is (compat32 folds it at spaces) unless a word in it would make a
# line longer than SMTP's 998 bytes: a long unbroken LEA name would fail every reminder at SMTP.
_LONGEST_WORD = 900


class _Folded:
    """A header value that a compat32 message (aiosmtplib and the Maildir flatten MIMEMultipart
    with compat32) folds the way email.policy.SMTP does: a word too long for any line becomes
    RFC 2047 encoded words on lines of their own, non-ASCII words are encoded, and everything else
    stays readable. SMTP servers refuse lines over 998 bytes (`500 Line too long`)."""

    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value

    def encode(self, splitchars: str = ";, \t", maxlinelen: int | None = None,
               linesep: str = "\n") -> str:  # fmt: skip
        """Header.encode's signature, which compat32's fold calls."""
        policy = _FOLDING.clone(linesep=linesep, max_line_length=maxlinelen or 78)
        folded = str(policy.fold(self.name, self.value))
        return folded[len(self.name) + 2 : -len(linesep)]

    def __str__(self) -> str:
        return self.value

    def __eq__(self, other: object) -> bool:
        return str(other) == self.value

    def __hash__(self) -> int:
        return hash(self.value)


def _header(value: str, name: str = "Subject") -> str:
    """One line always (control characters escaped); folded and RFC 2047-encoded when it is not
    ASCII or has a word too long for an SMTP line; else the plain string."""
    value = one_line(value)
    if value.isascii() and all(len(word) <= _LONGEST_WORD for word in value.split()):
        return value
    return cast(str, _Folded(name, value))  # compat32 takes Header-like values (typeshed: str)


def compose(
    row: Row, timeline: Timeline, sender: str, page_url: str | None, now: dt.datetime
) -> MIMEMultipart:
    """The email for one ledger row. Every header value is made one line first, so names and
    keys cannot inject headers (profiles reject CR/LF as well)."""
    title, text, html = _bodies(row.kind, row.items, row.due, timeline, page_url)
    message = MIMEMultipart("alternative")
    message["Subject"] = _header(f"[{timeline.lea.name}] {title}", "Subject")
    message["From"] = _header(sender, "From")
    message["To"] = _header(row.to, "To")
    if row.cc and row.kind == "overdue":
        message["Cc"] = _header(", ".join(row.cc), "Cc")
    message["Message-ID"] = row.message_id
    message["Date"] = format_datetime(now)
    message["X-Pacing-Key"] = _header(row.key, "X-Pacing-Key")
    message["List-Unsubscribe"] = _header(
        f"<mailto:{sender}?subject=unsubscribe%20{timeline.lea.id}>", "List-Unsubscribe"
    )
    message["Auto-Submitted"] = "auto-generated"
    message.attach(MIMEText(text, "plain", "utf-8"))
    message.attach(MIMEText(html, "html", "utf-8"))
    return message


def compose_catch_up(
    rows: Sequence[Row], timeline: Timeline, sender: str, page_url: str | None, now: dt.datetime
) -> MIMEMultipart:
    """One email for one recipient's reminders that came due while no daemon ran: every item
    listed once. Its Message-ID is the oldest row's (the carrier), so a resend after a kill is
    recognised; the other rows are recorded as carried by it."""
    items = tuple(dict.fromkeys(item for r in rows for item in r.items))
    return compose(replace(rows[0], kind="catch-up", items=items, cc=()), timeline, sender,
                   page_url, now)  # fmt: skip
