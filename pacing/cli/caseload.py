"""`pacing caseload DIR`: each caseload of a profile folder, one row per LEA."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from pacing.cli.main import DATE, EXISTING, _timeline, cli
from pacing.core.caseload import Caseload, Row, leas
from pacing.core.timeline import Timeline

FORMATS = ("table", "json", "csv", "md")


@cli.command()
@click.argument("folder", type=EXISTING)
@click.option("--contact", metavar="EMAIL", help="Only the caseloads of this email.")
@click.option("--name", "slug", metavar="SLUG", help="Only the caseload with this slug.")
@click.option("--today", type=DATE, help="As of this date (default: today in each LEA's zone).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def caseload(
    folder: Path, contact: str | None, slug: str | None, today: dt.date | None, fmt: str
) -> None:
    """The caseloads of a profile folder (one per SELPA and FMTA consultant in the profiles'
    [contacts], plus caseloads.toml's): per LEA its program, step, next CDE deadline, days
    left, overdue and behind-plan counts, last submission and done marks."""
    from pacing.adapters.caseloads import folder_caseloads, stored_state
    from pacing.adapters.files import profiles_in
    from pacing.core.caseload import rows, select
    from pacing.core.errors import DataError

    if contact and slug:
        raise click.UsageError("give --contact or --name, not both")
    timelines: dict[str, Timeline] = {}
    failed: list[str] = []
    for path in profiles_in(folder):
        try:
            t = _timeline(path, today)
        except DataError as e:  # one bad profile never hides the others' rows
            failed.append(str(e))
            continue
        timelines[t.lea.id] = t
    loads = select(
        folder_caseloads(folder, [t.lea for t in timelines.values()], stored_state()),
        contact=contact,
        name=slug,
    )
    if not loads and (contact or slug):
        wanted = f"--contact {contact}" if contact else f"--name {slug}"
        raise click.UsageError(f"no caseload matches {wanted} (see `pacing caseload {folder}`)")
    found = [(load, rows(load, timelines)) for load in loads]
    click.echo(_render(found, fmt), nl=False)
    for error in failed:
        click.echo(f"pacing: {error}", err=True)
    if failed:
        raise SystemExit(1)


def _render(found: Sequence[tuple[Caseload, list[Row]]], fmt: str) -> str:
    from pacing.export.caseload import attention_order, caseload_csv, caseload_table_rows

    if fmt == "json":
        return json.dumps([_doc(load, rows) for load, rows in found], indent=2) + "\n"
    if fmt == "csv":  # one table: the caseload's slug first on each row
        lines = []
        for n, (load, rows) in enumerate(found):
            body = caseload_csv(load, rows).splitlines(keepends=True)
            lines += [("caseload," if i == 0 else f"{load.slug},") + line
                      for i, line in enumerate(body) if i or not n]  # fmt: skip
        return "".join(lines)
    if fmt == "md":
        out = []
        for load, rows in found:
            table = caseload_table_rows(attention_order(rows))
            out.append(f"## {load.title} ({leas(len(rows))})\n")
            if table:
                out.append("| " + " | ".join(table[0]) + " |")
                out.append("|" + "---|" * len(table[0]))
                out += ["| " + " | ".join(_md(v) for v in r.values()) + " |" for r in table]
            out.append("")
        return "\n".join(out) + "\n"
    return _table(found)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _table(found: Sequence[tuple[Caseload, list[Row]]]) -> str:
    """A terminal table per caseload, narrow enough for 100 columns: who needs attention
    first (the CSV, JSON and Markdown forms have every column)."""
    import io

    from rich.console import Console
    from rich.table import Table

    from pacing.export.caseload import attention_order, item_title

    buffer = io.StringIO()
    console = Console(file=buffer, highlight=False, markup=False, emoji=False, width=120)
    for load, rows in found:
        table = Table(title=f"{load.title}: {leas(len(rows))}", title_justify="left")
        for column in ("LEA", "Step", "Next CDE date", "Days", "Overdue", "Behind plan",
                       "Last submission", "Done"):  # fmt: skip
            table.add_column(column, no_wrap=column in ("Days", "Overdue", "Done"))
        for r in attention_order(rows):
            due, last = r.next_due, r.last_submission
            table.add_row(
                r.short_name,
                r.step.split(":")[0],
                f"{due.date_label} {due.due:%Y-%m-%d}: {item_title(due)}" if due else "",
                "" if r.days_left is None else str(r.days_left),
                str(r.overdue),
                str(r.behind_plan),
                f"{item_title(last)} ({(last.done_on or last.due):%Y-%m-%d})" if last else "",
                f"{r.done}/{r.total}",
            )
        console.print(table)
    return buffer.getvalue()


def _doc(load: Caseload, rows: Sequence[Row]) -> dict[str, Any]:
    def entry(e: Any) -> dict[str, Any] | None:
        if e is None:
            return None
        return {"id": e.id, "title": e.title, "due": e.due.isoformat(), "label": e.date_label,
                "date_source": e.date_source, "done_on": e.done_on and e.done_on.isoformat()}  # fmt: skip

    return {
        "slug": load.slug,
        "name": load.name,
        "title": load.title,
        "email": load.email,
        "roles": list(load.roles),
        "digest": load.digest,
        "leas": [
            {
                "id": r.lea_id,
                "name": r.name,
                "programs": list(r.programs),
                "step": r.step,
                "next_cde_item": entry(r.next_due),
                "days_left": r.days_left,
                "overdue": r.overdue,
                "behind_plan": r.behind_plan,
                "at_risk": r.at_risk,
                "last_submission": entry(r.last_submission),
                "done": r.done,
                "total": r.total,
            }
            for r in rows
        ],
    }
