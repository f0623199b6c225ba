"""The `pacing` command: a thin layer over the core, with one error boundary."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

import click

from pacing.core.errors import DataError, one_line

FORMATS = ("table", "json", "csv", "md")


class Pacing(click.Group):
    """The one error boundary: bad data is one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DataError as e:
            click.echo(f"pacing: {e}", err=True)
            ctx.exit(1)
        except OSError as e:
            click.echo(f"pacing: {one_line(str(e))}", err=True)
            ctx.exit(1)


class DateType(click.ParamType):  # type: ignore[type-arg]
    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{one_line(str(value))!r} is not a valid date (YYYY-MM-DD)", param, ctx)


DATE = DateType()
EXISTING = click.Path(exists=True, path_type=Path)


@click.group(cls=Pacing, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pacing")
def cli() -> None:
    """Deadlines and backward-planned pacing for California special-education CIM."""


@cli.command()
def guides() -> None:
    """List the bundled pacing guides."""
    from pacing.adapters.files import bundled_guides

    for g in bundled_guides():
        dated = f"{len(g.items)} items" if g.items else "applicability model"
        click.echo(f"{g.id:22} {dated:20} {g.title}")
        click.echo(f"{'':22} {'':20} {g.source}")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=EXISTING)
def check(paths: tuple[Path, ...]) -> None:
    """Validate guide and LEA profile files (exit 1 on problems)."""
    from pacing.adapters.files import check_file, profiles_in
    from pacing.core.lea import Lea
    from pacing.core.timeline import team_warnings

    failed = 0
    for path in (p for given in paths for p in profiles_in(given)):
        try:
            loaded = check_file(path)
        except DataError as e:
            failed += 1
            for problem in e.problems:
                click.echo(f"pacing: {problem}", err=True)
            continue
        if isinstance(loaded, Lea):
            for warning in team_warnings(_guides(), loaded):
                click.echo(f"pacing: warning: {path}: team: {warning}", err=True)
        click.echo(f"ok {path}")
    if failed:
        sys.exit(1)


def _guides() -> tuple[Any, ...]:
    from pacing.adapters.files import bundled_guides

    return bundled_guides()


@cli.command()
@click.argument("profile", type=EXISTING)
@click.option("--today", type=DATE, help="Plan as of this date (default: today in the LEA's zone).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--step", type=click.IntRange(0, 4), help="Only this CIM step (0 = preparation).")
@click.option("--upcoming", type=click.IntRange(0), metavar="DAYS", help="Only what is due or "
              "should start within DAYS (plus anything overdue or at risk).")  # fmt: skip
def timeline(
    profile: Path, today: dt.date | None, fmt: str, step: int | None, upcoming: int | None
) -> None:
    """Print an LEA's backward-planned timeline."""
    from pacing.adapters.files import load_lea
    from pacing.clock import today as clock_today
    from pacing.core.timeline import expand, select_items
    from pacing.export import timeline as export

    lea = load_lea(profile)
    t = expand(_guides(), lea, today or clock_today(lea.timezone))
    items = select_items(t, step, upcoming)
    if fmt == "json":
        click.echo(export.to_json(t, items), nl=False)
    elif fmt == "csv":
        click.echo(export.to_csv(items), nl=False)
    elif fmt == "md":
        click.echo(export.to_md(t, items), nl=False)
    else:
        from rich.console import Console

        export.print_table(Console(highlight=False, markup=False, emoji=False), t, items)


@cli.command("ta-hours")
@click.argument("profile", type=EXISTING)
def ta_hours(profile: Path) -> None:
    """TA hour budget from the Menu of Services (CDE-funded hours, estimate, cost beyond)."""
    from pacing.adapters.files import load_lea
    from pacing.export.tahours import ta_budget

    lea = load_lea(profile)
    budget = ta_budget(_guides(), lea)
    if budget is None:
        click.echo(f"{lea.name}: no TA Menu of Services applies (not a 2024 Sig Dis LEA).")
        return
    click.echo(f"{lea.name}: {budget.guide.title}")
    for step_no in sorted({s.step for s in budget.services}):
        click.echo(f"Step {step_no}")
        for s in (s for s in budget.services if s.step == step_no):
            hours = f"{s.hours_min:g}-{s.hours_max:g} h" if s.hours_max else "as agreed"
            click.echo(f"  {hours:>10}  {s.title}")
    n = lea.monitoring.sig_dis_indicators
    click.echo(f"Estimate for all listed services: {budget.hours_min:g}-{budget.hours_max:g} hours")
    click.echo(f"CDE-funded: {budget.funded_hours:g} hours ({n} indicator(s) x 20)")
    low, high = budget.cost_beyond(budget.hours_min), budget.cost_beyond(budget.hours_max)
    click.echo(f"Beyond the funded hours at ${budget.rate:g}/hour: ${low:,.0f}-${high:,.0f}")
    for item in budget.guide.items:
        if item.when:
            click.echo(f"Deadline: {item.title}: {item.when.text}")


def main() -> None:
    if os.environ.get("NO_COLOR"):
        os.environ.setdefault("TERM", "dumb")
    cli(prog_name="pacing")
