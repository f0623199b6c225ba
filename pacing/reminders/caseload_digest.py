"""The weekly caseload digest email: multipart text and HTML from templates/caseload_digest.*.j2.

Only CDE's side of the work appears (`caseload.cde_item`: CDE's dates, and dates the guide
assumes or the district set, each said to be so); pacing's plan never does. The content is
computed when the email is composed, from the current timelines, as of the sending day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pacing.core.caseload import DIGEST_DAYS, Caseload, DigestLea, digest
from pacing.core.caseload_reminders import page_id
from pacing.core.dates import long_date
from pacing.core.entry import Entry
from pacing.core.errors import one_line
from pacing.core.timeline import Timeline
from pacing.export.timeline import dated
from pacing.reminders.compose import _environments, _fit, envelope, short_date
from pacing.reminders.ledger import Row

if TYPE_CHECKING:
    from pacing.reminders.actions import Links

HEAD = "Weekly CIM digest"


def local_day(load: Caseload, now: dt.datetime) -> dt.date:
    """The day it is for the caseload's contact: at send time, the day the digest is computed
    as of (a digest moved off a holiday: the working day it goes out; its week stays the
    row's `due`, see `caseload_reminders.send_day`)."""
    return now.astimezone(ZoneInfo(load.timezone)).date()


def _leas(count: int) -> str:
    return f"{count} LEA{'' if count == 1 else 's'}"


def digest_subject(found: Sequence[DigestLea], until: dt.date, title: str, year: int) -> str:
    """ "Weekly CIM digest: 2 LEAs overdue, 3 due by Nov 15 - Valle del Sur SELPA" (counts of
    LEAs; at most 78 characters, the caseload's name giving way first)."""
    late = sum(1 for d in found if d.overdue)
    soon = sum(1 for d in found if d.due_soon)
    parts = [f"{_leas(late)} overdue"] if late else []
    if soon:
        parts.append(f"{soon if parts else _leas(soon)} due by {short_date(until, year)}")
    return _fit(HEAD, ", ".join(parts) or "nothing to report", title)


def _when(e: Entry, today: dt.date) -> str:
    days = (e.due - today).days
    if days < 0:
        return f"{-days} day{'' if days == -1 else 's'} ago"
    if days == 0:
        return "today"
    return "tomorrow" if days == 1 else f"in {days} days"


def _item(e: Entry, today: dt.date) -> dict[str, str]:
    return {"dated": dated(e, long_date, colon=True), "title": one_line(e.title),
            "when": _when(e, today), "program": e.program}  # fmt: skip


def _context(
    load: Caseload,
    found: Sequence[DigestLea],
    timelines: Mapping[str, Timeline],
    today: dt.date,
    page_url: Callable[[str], str | None],
    unsubscribe: str | None,
) -> dict[str, Any]:
    until = today + dt.timedelta(days=DIGEST_DAYS)
    late = [d for d in found if d.overdue]
    ordered = late + [d for d in found if not d.overdue]  # overdue first, then in id order
    leas = []
    for d in ordered:
        lea = timelines[d.lea_id].lea
        leas.append({"id": lea.id, "name": lea.name, "short_name": lea.short_name,
                     "cds": lea.cds, "page": page_url(lea.id),
                     "overdue": [_item(e, today) for e in d.overdue],
                     "soon": [_item(e, today) for e in d.due_soon]})  # fmt: skip
    headline = f"{HEAD} for {load.title}, {long_date(today)}"
    return {"load": load, "headline": one_line(headline), "leas": leas, "today": long_date(today),
            "until": long_date(until), "days": DIGEST_DAYS, "followed": len(load.leas),
            "overdue_count": len(late), "caseload_page": page_url(page_id(load.slug)),
            "weekday": load.digest_day.capitalize(), "at": f"{load.digest_time:%H:%M}",
            "unsubscribe_url": unsubscribe}  # fmt: skip


def compose_caseload(
    row: Row,
    load: Caseload,
    timelines: Mapping[str, Timeline],
    sender: str,
    page_url: Callable[[str], str | None],
    now: dt.datetime,
    links: Links | None = None,
) -> EmailMessage:
    """The digest email for one ledger row, as of the sending day (the daemon folds the row
    instead when there is nothing to say). With `links` (served) it carries RFC 8058 one-click
    unsubscribe, per caseload and address, and the mailto form when `links.mailto` is set."""
    import css_inline

    today = local_day(load, now)
    found = digest(load, timelines, today)
    unsubscribe = links.unsubscribe(row.lea, row.to, now) if links is not None else None
    context = _context(load, found, timelines, today, page_url, unsubscribe)
    text_env, html_env = _environments()
    text = text_env.get_template("caseload_digest.txt.j2").render(context)
    html = css_inline.inline(html_env.get_template("caseload_digest.html.j2").render(context))
    until = today + dt.timedelta(days=DIGEST_DAYS)

    line = digest_subject(found, until, load.title, today.year)
    mailto = links.mailto if links is not None else None
    return envelope(row, sender, now, line, text, html, unsubscribe, mailto=mailto)
