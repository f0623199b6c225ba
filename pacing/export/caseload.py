"""A caseload's page and CSV: one row per LEA (programs, step, next CDE deadline, days left,
overdue and behind-plan counts, last submission, done marks), who needs attention first; an
LEA whose reminder emails reach nobody is marked (who opted out since when, how to restore).

`caseload_table_rows` gives the CSV's columns as strings for `pacing caseload`'s other forms."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from typing import Any

from pacing.core.audience import Audience
from pacing.core.caseload import Caseload, Row
from pacing.core.entry import Entry
from pacing.export.checklist import _long, _short, environment, excel_safe
from pacing.export.timeline import straight

CSV_COLUMNS = [
    "LEA id", "LEA", "Programs", "Step", "Next CDE item", "Next CDE date", "Date label",
    "Days left", "Overdue", "Behind plan", "Last submission", "Submitted on", "Done", "Total",
]  # fmt: skip
NUMBERS = ("Days left", "Overdue", "Behind plan", "Done", "Total")  # never formula-guarded
REACH_COLUMN = "Reminders"  # last, when whom the reminders reach is known (the served CSV)

# The page's columns: (heading, data type for the sort script, the first sort's direction).
COLUMNS = [
    ("LEA", "text", "ascending"),
    ("Programs", "text", "ascending"),
    ("Step", "number", "ascending"),
    ("Next CDE deadline", "text", "ascending"),
    ("Days left", "number", "ascending"),
    ("Overdue", "number", "descending"),
    ("Behind plan", "number", "descending"),
    ("Last submission", "text", "descending"),
    ("Done", "number", "descending"),
]
ORDER_WORDS = {  # the sort menu's words for each data type and direction
    ("text", "ascending"): "A to Z",
    ("text", "descending"): "Z to A",
    ("number", "ascending"): "lowest first",
    ("number", "descending"): "highest first",
}
DATE_ORDER_WORDS = {"ascending": "earliest first", "descending": "latest first"}
DATE_COLUMNS = ("Next CDE deadline", "Last submission")
NEVER = "9999-12-31"  # the sort key of "no date" (a date sort puts it last)


def attention_order(rows: Sequence[Row]) -> list[Row]:
    """Who needs attention first: most overdue, then fewest days left; ties by LEA id."""
    return sorted(rows, key=lambda r: (r.attention, r.lea_id))


def item_title(e: Entry) -> str:
    """The item's title with its step when the title does not say it: "Submission (Step 3)"."""
    if not e.step or f"Step {e.step}" in e.title:
        return e.title
    return f"{e.title} (Step {e.step})"


def _submitted_on(e: Entry) -> dt.date:
    return e.done_on or e.due


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ------------------------------------------------------------------------------ CSV and tables


def reach_words(found: Audience | None) -> str:
    """The Reminders column: empty when the LEA's reminders reach someone, else why not and
    how to restore them ("reach nobody: a@x opted out on 2024-10-02; restore: ...")."""
    if found is None or not found.silenced:
        return ""
    return f"reach nobody: {found.why}; restore: {found.advice().replace('`', '')}"


def caseload_table_rows(
    rows: Sequence[Row], reach: Mapping[str, Audience] | None = None
) -> list[dict[str, str]]:
    """The CSV's columns as strings (dates ISO, empty when there is none), in the given order;
    with `reach` (LEA id -> whom its reminders reach), the Reminders column too."""
    out = []
    for r in rows:
        due, last = r.next_due, r.last_submission
        extra = {REACH_COLUMN: reach_words(reach.get(r.lea_id))} if reach is not None else {}
        out.append(
            {
                "LEA id": r.lea_id,
                "LEA": r.name,
                "Programs": "; ".join(r.programs),
                "Step": r.step,
                "Next CDE item": item_title(due) if due else "",
                "Next CDE date": due.due.isoformat() if due else "",
                "Date label": due.date_label if due else "",
                "Days left": "" if r.days_left is None else str(r.days_left),
                "Overdue": str(r.overdue),
                "Behind plan": str(r.behind_plan),
                "Last submission": item_title(last) if last else "",
                "Submitted on": _submitted_on(last).isoformat() if last else "",
                "Done": str(r.done),
                "Total": str(r.total),
                **extra,
            }
        )
    return out


def caseload_csv(
    load: Caseload,
    rows: Sequence[Row],
    *,
    excel: bool = False,
    reach: Mapping[str, Audience] | None = None,
) -> str:
    """A header row, then one row per LEA (who needs attention first), CRLF line ends, straight
    quotes, no cell Excel would run as a formula; `excel`: a UTF-8 BOM first, so Excel reads
    the text as UTF-8; `reach` (LEA id -> whom its reminders reach): a last column,
    Reminders. (`load` is for the caller's file name; the rows say everything.)"""
    out = io.StringIO()
    if excel:
        out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    columns = [*CSV_COLUMNS, REACH_COLUMN] if reach is not None else CSV_COLUMNS
    writer.writerow(columns)
    for cells in caseload_table_rows(attention_order(rows), reach):
        writer.writerow(
            [cells[c] if c in NUMBERS else excel_safe(straight(cells[c])) for c in columns]
        )
    return out.getvalue()


# ------------------------------------------------------------------------------------- the page


def _page_row(
    r: Row, order: int, lea_pages: Mapping[str, str], reach: Audience | None = None
) -> dict[str, Any]:
    """One LEA's cells, with the sort keys the page's script reads."""
    due, last = r.next_due, r.last_submission
    silenced = reach is not None and reach.silenced
    step_number = r.step.split(":", 1)[0].removeprefix("Step ").strip()
    return {
        "order": order,
        "id": r.lea_id,
        "name": r.name,
        "short_name": r.short_name,
        "url": lea_pages.get(r.lea_id, ""),
        "programs": list(r.programs),
        "step": r.step,
        "step_key": step_number if step_number.isdigit() else "99",
        "due": _dated(due, due.due) if due else None,
        "due_key": due.due.isoformat() if due else NEVER,
        "days_left": r.days_left,
        "days_key": 99999 if r.days_left is None else r.days_left,
        "overdue": r.overdue,
        "behind_plan": r.behind_plan,
        "at_risk": r.at_risk,
        "last": _dated(last, _submitted_on(last)) if last else None,
        "last_key": _submitted_on(last).isoformat() if last else "",
        "done": r.done,
        "total": r.total,
        "done_key": f"{r.done / r.total:.4f}" if r.total else "-1",
        "reach": _reach_marker(reach) if reach is not None and silenced else None,
    }


def _reach_marker(found: Audience) -> dict[str, Any]:
    """The row's marker when the LEA's reminder emails reach nobody."""
    return {
        "why": found.why,
        "opted_out": [
            {"address": o.address, "on": _short(o.day), "iso": o.day.isoformat()}
            for o in found.opted_out
        ],
        "advice": found.advice().replace("`", ""),
    }


def _dated(e: Entry, day: dt.date) -> dict[str, str]:
    return {
        "title": item_title(e),
        "label": e.date_label,
        "date": _short(day),
        "iso": day.isoformat(),
    }


def _sort_options() -> list[dict[str, str]]:
    """The sort menu (the script's; the headers' buttons do the same at wide widths)."""
    options = []
    for n, (heading, kind, first) in enumerate(COLUMNS):
        for direction in (first, "descending" if first == "ascending" else "ascending"):
            words = (
                DATE_ORDER_WORDS[direction]
                if heading in DATE_COLUMNS
                else ORDER_WORDS[(kind, direction)]
            )
            options.append({"value": f"{n}:{direction}", "label": f"{heading}, {words}"})
    return options


def _webcal(url: str) -> str:
    """The webcal:// form of an http(s) feed address (calendar apps subscribe from it)."""
    scheme, sep, rest = url.partition("://")
    return f"webcal://{rest}" if sep and scheme.lower() in ("http", "https") else ""


def render_caseload_page(
    load: Caseload,
    rows: Sequence[Row],
    today: dt.date,
    *,
    feed_url: str,
    webcal_url: str,
    plan_feed_url: str,
    csv_url: str,
    lea_pages: Mapping[str, str],
    reach: Mapping[str, Audience] | None = None,
) -> str:
    """The caseload's page: its LEAs, who needs attention first, sortable and filterable (a
    small inline script; the table is complete without it), the CSV download and the two
    calendar subscriptions (CDE's dates only; with pacing's plan). `reach` (LEA id -> whom
    its reminders reach) marks the LEAs whose reminder emails reach nobody."""
    found = reach or {}
    table = [
        _page_row(r, n, lea_pages, found.get(r.lea_id)) for n, r in enumerate(attention_order(rows))
    ]
    webcal = webcal_url if webcal_url.lower().startswith("webcal://") else ""
    ctx = {
        "title": load.title,
        "slug": load.slug,
        "email": load.email or "",
        "lea_count": _plural(len(rows), "LEA"),
        "overdue_leas": sum(r.overdue > 0 for r in rows),
        "behind_leas": sum(r.behind_plan > 0 for r in rows),
        "silenced_leas": sum(1 for r in table if r["reach"]),
        "today": _long(today),
        "today_iso": today.isoformat(),
        "columns": [{"heading": h, "type": k, "first": f} for h, k, f in COLUMNS],
        "sort_options": _sort_options(),
        "rows": table,
        "feed_url": feed_url,
        "webcal_url": webcal,
        "plan_feed_url": plan_feed_url,
        "plan_webcal_url": _webcal(plan_feed_url) if webcal else "",
        "csv_url": csv_url,
    }
    return environment().get_template("caseload.html.j2").render(ctx)
