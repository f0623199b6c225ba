"""One email per person per moment: every reminder due to one recipient at one instant, across
items and LEAs, as one message. CDE's dates come first (missed ones first of all), then pacing's
plan, meetings and the Monday overview; an item is listed once, under its most urgent reminder;
the subject says how many and names the most urgent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pacing.core.dates import long_date
from pacing.core.entry import STATUS_NAMES, Entry, source_sentence
from pacing.core.errors import one_line
from pacing.core.lea import Lea
from pacing.core.timeline import Timeline
from pacing.reminders.compose import (
    _dated,
    _environments,
    _fit,
    css_class,
    envelope,
    headline,
    plain,
    subject,
    subject_head,
)
from pacing.reminders.ledger import Row

if TYPE_CHECKING:
    from pacing.reminders.actions import Links

# The order of a message's parts: a missed date first, then CDE's (and assumed or district)
# dates, then pacing's plan, then the Monday overview; by kind and date within each.
RANK = {"escalation": 0, "overdue": 1, "due": 2, "meeting": 3, "start-by": 4, "behind-plan": 6,
        "digest": 7}  # fmt: skip
PLANNED_AFTER = 3  # a "due" reminder of a plan ranks with the plan's nudges (the preview's order)


@dataclass
class Part:
    """One reminder (ledger row) of the message, with the entries it lists."""

    row: Row
    lea: Lea
    kind: str
    headline: str
    entries: list[Entry]
    page_url: str | None = None
    unsubscribe_url: str | None = None
    done_urls: dict[str, str] = field(default_factory=dict)


def rank(row: Row, first: Entry | None) -> tuple[int, int, dt.date, str, str]:
    missed = row.kind in ("escalation", "overdue")
    planned = first is not None and first.date_source == "planned"
    group = 0 if missed else 3 if row.kind == "digest" else 2 if planned else 1
    return group, RANK.get(row.kind, 8), row.due, row.lea, row.key


def _entries(row: Row, timeline: Timeline) -> list[Entry]:
    wanted = set(row.items)
    return [e for e in timeline.items if e.id in wanted]


def parts(rows: Sequence[Row], timelines: Mapping[str, Timeline]) -> list[Part]:
    """The rows as parts, most urgent first; an item already listed (the 7- and 1-day reminders
    of one deadline on one morning, an item of the overview that has its own reminder) is not
    listed again, and a part left with nothing to list is left out."""
    found = []
    for row in rows:
        entries = _entries(row, timelines[row.lea])
        found.append((rank(row, entries[0] if entries else None), row, entries))
    listed: set[tuple[str, str]] = set()
    out: list[Part] = []
    for _, row, entries in sorted(found, key=lambda f: f[0]):
        fresh = [e for e in entries if (row.lea, e.id) not in listed]
        if not fresh:
            continue
        listed.update((row.lea, e.id) for e in fresh)
        first = entries[0] if row.kind != "digest" else None
        kind = "overdue" if row.kind == "escalation" else row.kind
        title = one_line(plain(headline(kind, first, row.due, len(fresh))))
        out.append(Part(row, timelines[row.lea].lea, row.kind, title, fresh))
    return out


def _subject(found: list[Part], late: bool, year: int) -> str:
    """The most urgent part's subject; with more lines, "<head>, +N more: <title> - <LEA>"."""
    lines = sum(len(p.entries) for p in found)
    top = found[0]
    leas = list(dict.fromkeys(p.lea.short_name for p in found))
    name = leas[0] if len(leas) == 1 else f"{len(leas)} LEAs"
    first = top.entries[0] if top.kind != "digest" else None
    kind = "overdue" if top.kind == "escalation" else top.kind
    if late:
        return subject("catch-up", None, top.row.due, name, lines, year)
    if len(found) == 1:
        return subject(kind, first, top.row.due, name, lines, year)
    head = subject_head(kind, first, top.row.due, lines if first is None else 1, year)
    title = first.title if first is not None else f"{lines} items"
    return _fit(f"{head}, +{lines - (1 if first else lines)} more", title, name)


def _links(found: list[Part], to: str, links: Links | None, now: dt.datetime,
           page_url: Callable[[str], str | None]) -> None:  # fmt: skip
    """Each part's page, one-click and Mark-done links (no Mark done on an escalation: its
    reader is outside the team)."""
    for part in found:
        part.page_url = page_url(part.lea.id)
        if links is None:
            continue
        part.unsubscribe_url = links.unsubscribe(part.lea.id, to, now)
        if part.kind != "escalation":
            part.done_urls = {e.id: links.done(part.lea.id, to, e.id, now) for e in part.entries}


def compose_bundle(
    rows: Sequence[Row],
    timelines: Mapping[str, Timeline],
    sender: str,
    page_url: Callable[[str], str | None],
    now: dt.datetime,
    links: Links | None = None,
    late: bool = False,
    mailto: str | None = None,
) -> Message:
    """The one email for one recipient's rows (`late`: they came due while no daemon ran;
    `mailto`: an address that acts on unsubscribe mail, else the links' own, if any).
    Its Message-ID is its first row's (the carrier): the daemon records the others as carried."""
    import css_inline

    # a row planned with copies (before escalations had rows of their own): nobody's links in
    # it, whoever clicks would act as its recipient
    copied = rows[0].cc if len(rows) == 1 and rows[0].kind == "overdue" else ()
    mailto = mailto or (links.mailto if links is not None else None)
    links = None if copied else links
    found = parts(rows, timelines)
    if not found:
        raise ValueError("nothing to list: every item of these reminders is gone")
    to = rows[0].to
    lead = timelines[found[0].row.lea].lea
    year = now.astimezone(ZoneInfo(lead.timezone)).year
    line = _subject(found, late, year)
    _links(found, to, links, now, page_url)
    footers = list({p.lea.id: p for p in found}.values())
    if late:
        title = headline("catch-up", None, found[0].row.due, sum(len(p.entries) for p in found))
    elif len(found) == 1:
        title = found[0].headline
    else:
        title = f"{sum(len(p.entries) for p in found)} reminders, the most urgent first"
    context: dict[str, Any] = {
        "parts": found, "headline": title, "long": long_date, "dated": _dated,
        "source_sentence": source_sentence, "status_names": STATUS_NAMES, "plain": plain,
        "css_class": css_class, "footers": footers,
        "names": ", ".join(p.lea.name for p in footers),
        "ids": [e.id for p in found for e in p.entries],
        "any_unsubscribe": any(p.unsubscribe_url for p in footers),
        "delivery_url": links.delivery(to, now) if links is not None else None,
    }  # fmt: skip
    text_env, html_env = _environments()
    text = text_env.get_template("bundle.txt.j2").render(context)
    html = css_inline.inline(html_env.get_template("bundle.html.j2").render(context))
    carrier = rows[0]
    one_click = footers[0].unsubscribe_url if len(footers) == 1 else None
    return envelope(carrier, sender, now, line, text, html, one_click, copied, mailto=mailto)


def compose(
    row: Row,
    timeline: Timeline,
    sender: str,
    page_url: str | None,
    now: dt.datetime,
    links: Links | None = None,
) -> Message:
    """The email of one ledger row alone (a bundle of one)."""
    return compose_bundle([row], {timeline.lea.id: timeline}, sender, lambda _: page_url, now,
                          links)  # fmt: skip


def compose_catch_up(
    rows: Sequence[Row],
    timeline: Timeline,
    sender: str,
    page_url: str | None,
    now: dt.datetime,
    links: Links | None = None,
) -> Message:
    """One email for one recipient's reminders that came due while no daemon ran."""
    return compose_bundle(rows, {timeline.lea.id: timeline}, sender, lambda _: page_url, now,
                          links, late=True)  # fmt: skip
