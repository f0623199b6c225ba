"""A timeline as JSON (the DESIGN contract), CSV, Markdown or a terminal table."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pacing.core.agenda import short_id
from pacing.core.entry import OUTCOME_NAMES, SOURCE_NAMES, STATUS_NAMES, span_label
from pacing.core.timeline import Entry, Timeline

if TYPE_CHECKING:
    from rich.console import Console

STATUS_STYLE = {
    "done": "green",
    "overdue": "bold red",
    "behind-plan": "yellow",
    "at-risk": "bold yellow",
    "due-soon": "yellow",
    "upcoming": "",
    "past": "dim",
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
        "date_source": e.date_source,
        "program": e.program,
        "warnings": list(e.warnings),
        "assumption": e.assumption,
        "earliest_start": _iso(e.earliest_start),
        "series": e.series,
        "occurrence": e.occurrence,
        "duration_days": e.duration_days,
        "done_on": _iso(e.done_on),
        "done_note": e.done_note,
        "outcome": e.outcome,
        "outcome_on": _iso(e.outcome_on),
        "notes": list(e.notes),
    }


def to_json(t: Timeline, items: list[Entry]) -> str:
    doc = {
        "lea": {"id": t.lea.id, "name": t.lea.name},
        "today": t.today.isoformat(),
        "items": [entry_dict(e) for e in items],
        "assumptions": list(t.assumptions),
        "warnings": list(t.warnings),  # e.g. no pacing guide for the LEA's cohort
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


CSV_FIELDS = [
    "id", "step", "title", "kind", "start", "due", "start_time", "end_time", "latest_start",
    "latest_finish", "slack_days", "status", "requirement", "na_reason", "submit_to", "rule",
    "date_source", "program", "warnings",
]  # fmt: skip


STRAIGHT_QUOTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
})  # fmt: skip


def straight(value: object) -> object:
    """Text with straight quotes only (curly ones show as mojibake in some spreadsheets)."""
    return value.translate(STRAIGHT_QUOTES) if isinstance(value, str) else value


def to_csv(items: list[Entry], excel: bool = False) -> str:
    """One row per item, one value per column (dates ISO, times HH:MM), straight quotes;
    `excel`: a UTF-8 BOM first, so Excel reads the text as UTF-8."""
    out = io.StringIO()
    if excel:
        out.write("\ufeff")
    writer = csv.DictWriter(out, CSV_FIELDS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for e in items:
        row = entry_dict(e)
        row["submit_to"] = "; ".join(e.submit_to)
        row["warnings"] = "; ".join(e.warnings)
        writer.writerow({k: straight(v) for k, v in row.items()})
    return out.getvalue()


# ---------------------------------------------------------------- dates in words (shared)


def label_date(label: str, when: str, colon: bool = False) -> str:
    """A date after what it is: "CDE deadline 2024-10-10", "Plan: finish by 2024-09-10";
    with `colon`, "CDE deadline: Oct 10, 2024" (never after "by")."""
    sep = ": " if colon and not label.endswith((":", " by")) else " "
    return f"{label}{sep}{when}"


def dated_parts(e: Entry, day: Callable[[dt.date], str], dash: str = " \u2013 ") -> tuple[str, str]:
    """What an entry's dates are and the dates: ("CDE window", "Apr 1, 2024 - May 31, 2024"),
    ("Plan: finish by", "Sep 10, 2024"), ("CDE meeting", "Apr 2, 2024, 12:00-13:30")."""
    if e.start and e.start != e.due:
        return span_label(e.date_source), f"{day(e.start)}{dash}{day(e.due)}"
    when = day(e.due)
    if e.start_time and e.end_time:
        when += f", {e.start_time:%H:%M}\u2013{e.end_time:%H:%M}"
    return e.date_label, when


def dated(
    e: Entry, day: Callable[[dt.date], str], colon: bool = False, dash: str = " \u2013 "
) -> str:
    """An entry's dates after the words for what they are: "CDE deadline: Oct 10, 2024",
    "Plan: finish by Sep 10, 2024", "CDE window: Apr 1, 2024 - May 31, 2024" (`day` formats
    one date; without `colon`, "CDE deadline 2024-10-10")."""
    return label_date(*dated_parts(e, day, dash), colon=colon)


def programs(items: list[Entry]) -> list[tuple[str, list[Entry]]]:
    """The items grouped by program, programs in order of their first item, dates kept."""
    groups: dict[str, list[Entry]] = {}
    for e in items:
        groups.setdefault(e.program, []).append(e)
    return list(groups.items())


def date_types(items: list[Entry]) -> str:
    """What the kinds of dates among `items` are (SOURCE_NAMES), e.g. "CDE's date; Plan
    (pacing's estimate, not a CDE deadline)"."""
    present = {e.date_source for e in items}
    return "; ".join(name for source, name in SOURCE_NAMES.items() if source in present)


# ---------------------------------------------------------------- Markdown


def _md(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _iso_day(day: dt.date) -> str:
    return f"{day:%Y-%m-%d}"


def when_text(e: Entry) -> str:
    """The Due column: "CDE deadline 2024-10-10", "CDE window 2024-04-01 → 2024-05-31"."""
    return dated(e, _iso_day, dash=" \u2192 ")


def _done_words(e: Entry) -> str:
    """After "Done": the day, CDE's answer, the note ("2024-07-09; Accepted by CDE ...")."""
    parts = [f"{e.done_on:%Y-%m-%d}"] if e.done_on else []
    if e.outcome:
        on = f" on {e.outcome_on:%Y-%m-%d}" if e.outcome_on else ""
        parts.append(f"{OUTCOME_NAMES[e.outcome]}{on}")
    if e.done_note:
        parts.append(e.done_note)
    return "; ".join(parts)


def to_md(t: Timeline, items: list[Entry]) -> str:
    lines = [f"# {_md(t.lea.name)}: CIM timeline as of {t.today:%B} {t.today.day}, {t.today.year}"]
    if sources := date_types(items):
        lines += ["", f"Date types: {_md(sources)}."]
    for program, group in programs(items):
        lines += [
            "",
            f"## {_md(program or 'Other items')}",
            "",
            "| Due | Step | Item | Id | Status | Start by | Submit to | Rule |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for e in group:
            status = STATUS_NAMES[e.status] + (f" ({e.na_reason})" if e.na_reason else "")
            if e.status == "done" and (done := _done_words(e)):
                status += f" {done}"
            start_by = f"{e.latest_start:%Y-%m-%d}" if e.latest_start else ""
            lines.append(
                f"| {_md(when_text(e))} | {e.step} | {_md(e.title)} | `{_md(short_id(e))}` "
                f"| {_md(status)} | {start_by} "
                f"| {_md(', '.join(e.submit_to))} | {_md(e.rule)} |"
            )
        warned = [e for e in group if e.warnings]
        if warned:
            lines += ["", "Warnings:", ""]
            lines += [
                f"- {_md(e.title)} ({_md(when_text(e))}): {_md(w)}"
                for e in warned
                for w in e.warnings
            ]
    if t.warnings:
        lines += ["", "## Warnings", "", *(f"- {_md(w)}" for w in t.warnings)]
    if t.assumptions:
        lines += ["", "## Assumptions", "", *(f"- {_md(a)}" for a in t.assumptions)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- terminal table


def _table_item(e: Entry) -> Any:
    """The Item cell: the title, then dim lines for the short id, CDE's answer, the done note,
    warnings."""
    from rich.text import Text

    text = e.title
    if e.start_time and e.end_time:
        text += f" ({e.start_time:%H:%M}-{e.end_time:%H:%M})"
    if e.start and e.start != e.due:
        text += f" [from {e.start:%Y-%m-%d}]"
    cell = Text(f"{text} — {e.na_reason}" if e.na_reason else text)
    cell.append(f"\n{short_id(e)}", style="dim")  # what `pacing done` takes
    if e.outcome:
        on = f" on {e.outcome_on:%Y-%m-%d}" if e.outcome_on else ""
        cell.append(f"\n{OUTCOME_NAMES[e.outcome]}{on}", style="dim")
    if e.done_note:
        cell.append(f"\n{e.done_note}", style="dim")
    for warning in e.warnings:
        cell.append(f"\n⚠ {warning}", style="dim")
    return cell


def print_table(console: Console, t: Timeline, items: list[Entry]) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    m = t.lea.monitoring
    tier = f"{m.tier} level {m.level}" if m.level else m.tier
    title = f"{t.lea.name} · {tier} · cohort {m.cohort} · as of {t.today.isoformat()}"
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column("Due", max_width=15)
    table.add_column("St", justify="right", no_wrap=True)
    table.add_column("Item", ratio=1, overflow="fold")
    table.add_column("Status", max_width=11)
    table.add_column("Start by", no_wrap=True)
    table.add_column("Slack", justify="right", no_wrap=True)
    groups = programs(items)
    for n, (program, group) in enumerate(groups):
        if len(groups) > 1 or program:
            heading = Text(f"Program: {program or 'other items'}", style="bold")
            table.add_row("", "", heading, "", "", "")
        for i, e in enumerate(group):
            planned = e.latest_start and e.is_open
            table.add_row(
                Text(f"{e.date_label} {e.due:%Y-%m-%d}"),
                str(e.step),
                _table_item(e),
                STATUS_NAMES[e.status] + (f"\n{e.done_on:%Y-%m-%d}" if e.done_on else ""),
                f"{e.latest_start:%Y-%m-%d}" if planned and e.latest_start else "",
                f"{e.slack_days:+d}d" if planned and e.slack_days is not None else "",
                style=STATUS_STYLE[e.status],
                end_section=i == len(group) - 1 and n < len(groups) - 1,
            )
    console.print(table)
    console.print(f"{len(items)} items; slack in working days. Rules: --format md or json.")
    if sources := date_types(items):
        console.print(Text(f"Date types: {sources}."))
    for warning in t.warnings:  # e.g. no pacing guide for the LEA's cohort: never silent
        console.print(Text(f"Warning: {warning}", style="bold yellow"))
    if t.assumptions:
        footer = Table.grid(padding=(0, 1))
        footer.add_column(no_wrap=True)
        footer.add_column(ratio=1)
        for a in t.assumptions:
            footer.add_row("-", Text(a))
        console.print("Assumptions:")
        console.print(footer)
