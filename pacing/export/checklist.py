"""Printable checklists: the pacing-guide table and the Stepwell box checklist, as Markdown,
one self-contained HTML page (with the SVG timeline chart), or CSV for Excel.

The template context built here is shared with the feed page (`pacing.export.page`)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from pacing.adapters.files import data_dir
from pacing.core.agenda import short_id
from pacing.core.entry import OUTCOME_NAMES, SOURCE_NAMES, STATUS_NAMES, Status
from pacing.core.periods import Band
from pacing.core.timeline import Entry, Timeline, tier_label
from pacing.export.gantt import gantt_svg
from pacing.export.timeline import dated_parts, label_date, programs

if TYPE_CHECKING:
    from pacing.export.page import render_feed_page as render_feed_page

FORMATS = ("md", "html", "csv")
NA_TEXT = "N/A - write N/A in this box"
SIG_DIS_LABELS = {"new": "newly identified", "continuing": "continuing", "no": ""}
CSV_COLUMNS = [
    "Step", "Activity", "Date", "Start", "Start time", "End time", "Done", "Status",
    "Requirement", "Submit to", "Resources", "Rule", "Date label", "Date type", "Program",
    "Warnings", "Assumption", "Done note", "Item id",
]  # fmt: skip
BADGES = ("overdue", "behind-plan", "at-risk", "due-soon")  # statuses flagged next to a row
COUNTED: tuple[Status, ...] = ("overdue", "behind-plan", "at-risk", "due-soon", "done")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@cache
def environment() -> Environment:
    """The templates/ environment: HTML templates autoescaped, undefined names an error."""
    env = Environment(
        loader=FileSystemLoader(data_dir("templates")),
        autoescape=select_autoescape(["html", "html.j2"], default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_cell
    env.filters["breakable"] = breakable
    return env


def md_cell(text: object) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, one line)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def breakable(text: object) -> Markup:
    """Escaped text that may wrap after "@" and "/" (long addresses in narrow columns)."""
    out = Markup.escape(str(text))
    return out.replace("@", Markup("@<wbr>")).replace("/", Markup("/<wbr>"))


def safe_url(url: str | None) -> str | None:
    """Only http(s) and mailto links are linked; anything else is shown as text."""
    if not url:
        return None
    scheme = urlsplit(url.strip()).scheme.lower()
    return url.strip() if scheme in ("http", "https", "mailto") else None


def _short(day: dt.date) -> str:
    return f"{day:%b} {day.day}, {day.year}"


def _long(day: dt.date) -> str:
    return f"{day:%B} {day.day}, {day.year}"


def _activity(e: Entry) -> str:
    box = e.item.box if e.item is not None else None
    return f"Box {box}: {e.title}" if box else e.title


def _na_reason(e: Entry) -> str:
    reason = e.na_reason or ""
    return reason.removesuffix(" - write N/A in this box").removesuffix(" - write N/A")


def target(e: Entry) -> tuple[str, str]:
    """The Target date column as (words, dates): ("CDE deadline:", "Oct 10, 2024"),
    ("Plan: finish by", "Sep 10, 2024"), ("CDE window:", "Apr 1, 2024 - May 31, 2024")."""
    label, when = dated_parts(e, _short)
    return label_date(label, "", colon=True).rstrip(), when


def outcome_text(e: Entry) -> str:
    """CDE's answer to a done submission: "Accepted by CDE with conditions (Aug 1, 2024)"."""
    if not e.outcome:
        return ""
    return OUTCOME_NAMES[e.outcome] + (f" ({_short(e.outcome_on)})" if e.outcome_on else "")


def _row(e: Entry, main_program: str = "", seen: set[str] | None = None) -> dict[str, Any]:
    """One pacing-guide row. `main_program`: the step's own program (others are named on the
    row); `seen`: assumptions already shown in this table (shown once per table)."""
    planned = e.latest_start and e.is_open
    assumption = e.assumption or ""
    if seen is not None and assumption:
        if assumption in seen:
            assumption = ""  # the row's label still says the date is assumed
        else:
            seen.add(assumption)
    return {
        "id": e.id,
        "short_id": short_id(e),
        "activity": _activity(e),
        "kind": e.kind,
        "target": " ".join(target(e)),
        "target_label": target(e)[0],
        "target_when": target(e)[1],
        "target_iso": _iso_when(e),
        "source": e.date_source,
        "source_name": SOURCE_NAMES[e.date_source],
        "program": e.program,
        "other_program": e.program if e.program and e.program != main_program else "",
        "start_by": _short(e.latest_start) if planned and e.latest_start else "",
        "done": e.status == "done",
        "done_on": _short(e.done_on) if e.done_on else "",
        "done_iso": e.done_on.isoformat() if e.done_on else "",
        "done_note": e.done_note or "",
        "outcome": outcome_text(e),
        "status": e.status,
        "status_label": STATUS_NAMES[e.status],
        "badge": e.status in BADGES,
        "requirement": e.requirement,
        "na": e.status == "not-applicable",
        "na_reason": _na_reason(e),
        "warnings": list(e.warnings),
        "assumption": assumption,
        "resources": [{"title": r.title, "url": safe_url(r.url)} for r in e.resources],
        "submit_to": list(e.submit_to),
        "rule": e.rule,
    }


def _iso_when(e: Entry) -> str:
    if e.start and e.start != e.due:
        return f"{e.start.isoformat()} \u2013 {e.due.isoformat()}"
    if e.start_time and e.end_time:
        return f"{e.due.isoformat()} {e.start_time:%H:%M}\u2013{e.end_time:%H:%M}"
    return e.due.isoformat()


def _box(e: Entry) -> dict[str, Any]:
    item = e.item
    na = e.status == "not-applicable"
    return {
        "number": item.box,
        "anchor": f"box-{item.box}",
        "title": e.title,
        "step": e.step,
        "id": e.id,
        "short_id": short_id(e),
        "due": _short(e.due),
        "target": " ".join(target(e)),
        "target_label": target(e)[0],
        "target_when": target(e)[1],
        "source": e.date_source,
        "start_by": _short(e.latest_start) if e.latest_start and not na and e.is_open else "",
        "status": e.status,
        "status_label": STATUS_NAMES[e.status],
        "done_on": _short(e.done_on) if e.done_on else "",
        "done_note": e.done_note or "",
        "outcome": outcome_text(e),
        "warnings": [] if na else list(e.warnings),
        "assumption": "" if na else e.assumption or "",
        "requirement": e.requirement,
        "na": na,
        "na_text": NA_TEXT,
        "na_reason": _na_reason(e),
        "condition": item.condition or "",
        "required": [] if na else list(item.required),
        "recommended": [] if na else list(item.recommended),
        "guidance": [] if na else list(item.guidance),
        "submit_to": list(e.submit_to),
    }


def context(t: Timeline, periods: Sequence[Band] | None = None) -> dict[str, Any]:
    """Everything the templates show, as plain values (no model objects)."""
    m = t.lea.monitoring
    steps = []
    for number in sorted({e.step for e in t.items}):
        mine = [e for e in t.items if e.step == number]
        main = max(programs(mine), key=lambda group: len(group[1]))[0]
        seen: set[str] = set()
        rows = [_row(e, main, seen) for e in mine]
        name = t.steps.get(number, "")
        steps.append({"number": number, "name": name, "program": main, "rows": rows})
    counts = {status: sum(e.status == status for e in t.items) for status in COUNTED}
    sources = {e.date_source for e in t.items}
    boxed = [e for e in t.items if e.item is not None and e.item.box]
    boxes = [_box(e) for e in sorted(boxed, key=lambda e: (e.item.box or 0, e.id))]
    return {
        "lea": {
            "id": t.lea.id,
            "name": t.lea.name,
            "cds": t.lea.cds,
            "tier": tier_label(t.lea),
            "cohort": m.cohort,
            "sig_dis": SIG_DIS_LABELS[m.sig_dis],
            "programs": [program for program, _ in programs(list(t.items)) if program],
        },
        "today": _long(t.today),
        "today_iso": t.today.isoformat(),
        "steps": steps,
        "boxes": boxes,
        "no_boxes": (
            "No Stepwell box checklist: no pacing guide for this LEA's cohort (see above)."
            if t.warnings and m.tier == "targeted" and m.level == 3
            else f"No Stepwell box checklist: the Targeted Level 3 Stepwell boxes do not apply "
            f"to {tier_label(t.lea)} LEAs."
        ),
        "counts": counts,
        "count_words": [
            {"status": s, "label": STATUS_NAMES[s].lower(), "n": counts[s]} for s in COUNTED
        ],
        "sources": [name for s, name in SOURCE_NAMES.items() if s in sources],
        "total": len(t.items),
        "assumptions": list(t.assumptions),
        "warnings": list(t.warnings),  # e.g. no pacing guide for the LEA's cohort
        "periods": [
            {"title": b.title, "start": _short(b.start), "end": _short(b.end)}
            for b in _periods(t, periods)
        ],
    }


def _periods(t: Timeline, periods: Sequence[Band] | None) -> Sequence[Band]:
    """The given bands, else the timeline's own report periods."""
    return t.periods if periods is None else periods


def render_checklist(t: Timeline, fmt: str, periods: Sequence[Band] | None = None) -> str:
    """The LEA's pacing-guide table and Stepwell box checklist as "md", "html" or "csv".

    `periods` are the bands of the chart (see `core.periods`); by default the timeline's own."""
    if fmt == "csv":
        return to_csv(t)
    if fmt == "md":
        return environment().get_template("checklist.md.j2").render(context(t, periods))
    if fmt == "html":
        bands = _periods(t, periods)
        ctx = context(t, bands)
        ctx["chart"] = Markup(gantt_svg(t, bands))
        ctx["chart_full"] = ""  # printed: the whole span in the one chart
        return environment().get_template("checklist.html.j2").render(ctx)
    raise ValueError(f"unknown checklist format {fmt!r} (expected one of {', '.join(FORMATS)})")


def __getattr__(name: str) -> Any:
    """`render_feed_page` moved to `pacing.export.page`; imported from here it still works
    (lazily: the page module builds on this one)."""
    if name == "render_feed_page":
        from pacing.export.page import render_feed_page

        return render_feed_page
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def excel_safe(value: object) -> str:
    """A cell Excel will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(t: Timeline, excel: bool = True) -> str:
    """One row per timeline item, CRLF line ends, one value per column: "Date" (ISO, the
    deadline or a window's last day), "Start" (a window's first day, else empty), "Start
    time"/"End time" (HH:MM, meetings); straight quotes only. `excel` (the default): a
    UTF-8 BOM first, so Excel reads the text as UTF-8."""
    from pacing.export.timeline import straight

    out = io.StringIO()
    if excel:
        out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for e in t.items:
        row = _row(e)
        status = row["status_label"] + (f": {e.na_reason}" if e.na_reason else "")
        if row["outcome"]:
            status += f" ({row['outcome']})"
        resources = "; ".join(
            f"{r['title']} ({r['url']})" if r["url"] else r["title"] for r in row["resources"]
        )
        window = e.start is not None and e.start != e.due
        cells = [
            f"Step {e.step}: {t.steps.get(e.step, '')}".rstrip(": "),
            row["activity"],
            e.due.isoformat(),
            e.start.isoformat() if window and e.start else "",
            f"{e.start_time:%H:%M}" if e.start_time else "",
            f"{e.end_time:%H:%M}" if e.end_time else "",
            row["done_iso"],
            status,
            e.requirement,
            "; ".join(e.submit_to),
            resources,
            e.rule,
            e.date_label,
            row["source_name"],
            e.program,
            "; ".join(e.warnings),
            e.assumption or "",
            e.done_note or "",
            e.id,
        ]
        writer.writerow([excel_safe(straight(c)) for c in cells])
    return out.getvalue()
