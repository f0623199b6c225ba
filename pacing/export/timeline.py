"""A timeline as JSON (the DESIGN contract), CSV, Markdown or a terminal table."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import TYPE_CHECKING, Any

from pacing.core.timeline import Entry, Timeline

if TYPE_CHECKING:
    from rich.console import Console

STATUS_STYLE = {
    "done": "green",
    "overdue": "bold red",
    "at-risk": "bold yellow",
    "due-soon": "yellow",
    "upcoming": "",
    "not-applicable": "dim",
}


def _iso(value: dt.date | dt.time | None) -> str | None:
    if value is None:
        return None
    return value.strftime("%H:%M") if isinstance(value, dt.time) else value.isoformat()


def entry_dict(e: Entry) -> dict[str, Any]:
    """The DESIGN contract's fields, then pacing's extensions (series, notes, done_on, ...)."""
    return {
        "id": e.id,
        "guide": e.guide,
        "step": e.step,
        "title": e.title,
        "kind": e.kind,
        "start": _iso(e.start),
        "due": _iso(e.due),
        "start_time": _iso(e.start_time),
        "end_time": _iso(e.end_time),
        "latest_start": _iso(e.latest_start),
        "latest_finish": _iso(e.latest_finish),
        "slack_days": e.slack_days,
        "depends_on": list(e.depends_on),
        "status": e.status,
        "requirement": e.requirement,
        "na_reason": e.na_reason,
        "submit_to": list(e.submit_to),
        "resources": [{"title": r.title, "url": r.url} for r in e.resources],
        "rule": e.rule,
        "series": e.series,
        "occurrence": e.occurrence,
        "duration_days": e.duration_days,
        "done_on": _iso(e.done_on),
        "notes": list(e.notes),
    }


def to_json(t: Timeline, items: list[Entry]) -> str:
    doc = {
        "lea": {"id": t.lea.id, "name": t.lea.name},
        "today": t.today.isoformat(),
        "items": [entry_dict(e) for e in items],
        "assumptions": list(t.assumptions),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


CSV_FIELDS = [
    "id", "step", "title", "kind", "start", "due", "start_time", "end_time", "latest_start",
    "latest_finish", "slack_days", "status", "requirement", "na_reason", "submit_to", "rule",
]  # fmt: skip


def to_csv(items: list[Entry]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for e in items:
        row = entry_dict(e)
        row["submit_to"] = "; ".join(e.submit_to)
        writer.writerow(row)
    return out.getvalue()


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def when_text(e: Entry) -> str:
    if e.start and e.start != e.due:
        return f"{e.start:%Y-%m-%d} → {e.due:%Y-%m-%d}"
    if e.start_time and e.end_time:
        return f"{e.due:%Y-%m-%d} {e.start_time:%H:%M}-{e.end_time:%H:%M}"
    return f"{e.due:%Y-%m-%d}"


def to_md(t: Timeline, items: list[Entry]) -> str:
    lines = [
        f"# {_md(t.lea.name)}: CIM timeline as of {t.today:%B} {t.today.day}, {t.today.year}",
        "",
        "| Due | Step | Item | Status | Start by | Submit to | Rule |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in items:
        status = e.status + (f" ({e.na_reason})" if e.na_reason else "")
        start_by = f"{e.latest_start:%Y-%m-%d}" if e.latest_start else ""
        lines.append(
            f"| {when_text(e)} | {e.step} | {_md(e.title)} | {status} | {start_by} "
            f"| {_md(', '.join(e.submit_to))} | {_md(e.rule)} |"
        )
    if t.assumptions:
        lines += ["", "Assumptions:", *(f"- {_md(a)}" for a in t.assumptions)]
    return "\n".join(lines) + "\n"


def _table_item(e: Entry) -> str:
    text = e.title
    if e.start_time and e.end_time:
        text += f" ({e.start_time:%H:%M}-{e.end_time:%H:%M})"
    if e.start and e.start != e.due:
        text += f" [from {e.start:%Y-%m-%d}]"
    return f"{text} — {e.na_reason}" if e.na_reason else text


def print_table(console: Console, t: Timeline, items: list[Entry]) -> None:
    from rich import box
    from rich.table import Table

    m = t.lea.monitoring
    tier = f"{m.tier} level {m.level}" if m.level else m.tier
    title = f"{t.lea.name} · {tier} · cohort {m.cohort} · as of {t.today.isoformat()}"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Due", no_wrap=True)
    table.add_column("St", justify="right", no_wrap=True)
    table.add_column("Item", ratio=1, overflow="fold")
    table.add_column("Status", no_wrap=True)
    table.add_column("Start by", no_wrap=True)
    table.add_column("Slack", justify="right", no_wrap=True)
    for e in items:
        planned = e.latest_start and e.status not in ("done", "not-applicable")
        table.add_row(
            f"{e.due:%Y-%m-%d}",
            str(e.step),
            _table_item(e),
            "n/a" if e.status == "not-applicable" else e.status,
            f"{e.latest_start:%Y-%m-%d}" if planned and e.latest_start else "",
            f"{e.slack_days:+d}d" if planned and e.slack_days is not None else "",
            style=STATUS_STYLE[e.status],
        )
    console.print(table)
    console.print(f"{len(items)} items; slack in working days. Rules: --format md or json.")
