"""Reminder emails: multipart text and HTML from jinja2 templates, CSS inlined, safe headers."""

from __future__ import annotations

import datetime as dt
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from functools import cache
from typing import Any

from pacing.core.dates import long_date
from pacing.core.errors import one_line
from pacing.core.timeline import Entry, Timeline
from pacing.reminders.ledger import Row

HEADLINES = {
    "due": "{title}: due {when}",
    "start-by": "Start now: {title} (due {when})",
    "overdue": "Overdue: {title} (was due {when})",
    "digest": "CIM week of {when}: {count} item(s) coming up",
}


@cache
def _environments() -> tuple[Any, Any]:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from pacing.adapters.files import data_dir

    loader = FileSystemLoader(data_dir("templates"))
    text = Environment(loader=loader, undefined=StrictUndefined, autoescape=False,
                       trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    html = Environment(loader=loader, undefined=StrictUndefined, autoescape=True)
    return text, html


def headline(row: Row, entries: list[Entry]) -> str:
    first = entries[0].title if entries else "CIM item"
    when = long_date(row.due)
    text = HEADLINES[row.kind].format(title=first, when=when, count=len(entries))
    return one_line(text)


def _header(value: str) -> str:
    """One line always (control characters escaped); RFC 2047-encoded when not ASCII."""
    value = one_line(value)
    return value if value.isascii() else Header(value, "utf-8").encode()


def compose(
    row: Row, timeline: Timeline, sender: str, page_url: str | None, now: dt.datetime
) -> MIMEMultipart:
    """The email for one ledger row. Every header value is made one line first, so names and
    keys cannot inject headers (profiles reject CR/LF as well)."""
    import css_inline

    entries = [e for e in timeline.items if e.id in set(row.items)]
    title = headline(row, entries)
    context = {"lea": timeline.lea, "entries": entries, "headline": title,
               "page_url": page_url, "long": long_date}  # fmt: skip
    text_env, html_env = _environments()
    message = MIMEMultipart("alternative")
    message["Subject"] = _header(f"[{timeline.lea.name}] {title}")
    message["From"] = _header(sender)
    message["To"] = _header(row.to)
    if row.cc and row.kind == "overdue":
        message["Cc"] = _header(", ".join(row.cc))
    message["Message-ID"] = row.message_id
    message["Date"] = format_datetime(now)
    message["X-Pacing-Key"] = _header(row.key)
    message["List-Unsubscribe"] = _header(
        f"<mailto:{sender}?subject=unsubscribe%20{timeline.lea.id}>"
    )
    message["Auto-Submitted"] = "auto-generated"
    text = text_env.get_template("reminder.txt.j2").render(context)
    html = css_inline.inline(html_env.get_template("reminder.html.j2").render(context))
    message.attach(MIMEText(text, "plain", "utf-8"))
    message.attach(MIMEText(html, "html", "utf-8"))
    return message
