"""The LEA's feed page served by `pacing serve`: a notice when its reminder emails reach
nobody (who opted out since when, how to restore them), what is due in the next 30 days, the
subscription help, the chart of the current school year (the full span one click away, no
script), then the same pacing guide and box checklist as the printable checklist."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup

from pacing.core.agenda import agenda, short_id
from pacing.core.audience import Audience, audience
from pacing.core.entry import STATUS_NAMES
from pacing.core.periods import Band
from pacing.core.timeline import Timeline
from pacing.export.checklist import _long, _periods, context, environment
from pacing.export.gantt import gantt_svg, school_year

NEXT_DAYS = 30


def _day(day: dt.date) -> str:
    return f"{day:%a}, {day:%b} {day.day}, {day.year}"


def _month(day: dt.date) -> str:
    return f"{day:%B} {day.year}"


def next_up(t: Timeline, days: int = NEXT_DAYS) -> dict[str, Any]:
    """The open items due, opening or to be started from `t.today` through `today + days`
    (the agenda's lines, earliest first), and one line on what is already missed."""
    found = agenda([t], days)
    lines = [line for week in found.weeks for line in week.lines]
    behind = found.behind[0].text.split(": ", 1)[1] if found.behind else ""
    return {
        "days": days,
        "until": _day(t.today + dt.timedelta(days=days)),
        "behind": behind,
        "items": [
            {
                "id": line.entry.id,
                "short_id": short_id(line.entry),
                "title": line.entry.title,
                "kind": line.entry.kind,
                "step": line.entry.step,
                "words": f"{line.words} opens" if line.until else line.words,
                "date": _day(line.date),
                "date_iso": line.date.isoformat(),
                "until": _day(line.until) if line.until else "",
                "in_days": (line.day - t.today).days,
                "status": line.entry.status,
                "status_label": STATUS_NAMES[line.entry.status],
            }
            for line in lines
        ],
    }


def render_feed_page(
    t: Timeline,
    feed_url: str,
    webcal_url: str,
    periods: Sequence[Band] | None = None,
    opted_out: Mapping[str, dt.datetime] | None = None,
    reach: Audience | None = None,
) -> str:
    """The LEA's feed page: the next 30 days, subscription help, the chart (this school year;
    the full span in a <details>) and the checklist; first, when its reminders reach nobody,
    a notice saying why and how to restore them (`reach`: whom they reach, else worked out
    from `opted_out`)."""
    bands = _periods(t, periods)
    ctx = context(t, bands)
    first, after = school_year(t.today)
    ctx["chart"] = Markup(gantt_svg(t, bands, (first, after)))
    ctx["chart_full"] = Markup(gantt_svg(t, bands))
    ctx["school_year"] = f"{first.year}\u2013{str(after.year)[2:]}"
    ctx["school_year_span"] = f"{_month(first)} \u2013 {_month(after - dt.timedelta(days=1))}"
    ctx["next_up"] = next_up(t)
    ctx["opted_out"] = [  # who turned reminder emails off from an email's one-click link
        {"address": a, "on": _long(at.astimezone(ZoneInfo(t.lea.timezone)).date())}
        for a, at in sorted((opted_out or {}).items())
    ]
    ctx["reach"] = _reach(t, reach or audience(t.lea, opted_out))
    ctx["feed_url"] = feed_url
    ctx["webcal_url"] = webcal_url if webcal_url.lower().startswith("webcal://") else ""
    return environment().get_template("feed_page.html.j2").render(ctx)


def _reach(t: Timeline, found: Audience) -> dict[str, Any] | None:
    """The page's notice when the reminders reach nobody (None when they reach someone)."""
    if not found.silenced:
        return None
    return {
        "empty": not found.to,
        "unnamed": found.unnamed,
        "opted_out": [
            {"address": o.address, "on": _long(o.day), "iso": o.day.isoformat()}
            for o in found.opted_out
        ],
        "placeholders": list(found.placeholders),
        "escalations": list(found.escalations),
        "escalate": bool(found.escalate),
    }
