"""The `pacing` command: a thin layer over the core, with one error boundary."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from pacing.core.entry import OUTCOMES, Outcome
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
        except BrokenPipeError:
            raise
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
    from pacing.core.timeline import select_items
    from pacing.export import timeline as export

    t = _timeline(profile, today)
    items = select_items(t, step, upcoming)
    note = _no_items_note(t)
    if note and fmt == "json":
        import json

        doc = {**json.loads(export.to_json(t, [])), "note": note}
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    if note and fmt == "csv":  # a header-only CSV stays machine-readable; the why goes to stderr
        click.echo(export.to_csv([]), nl=False)
        click.echo(f"pacing: {note}", err=True)
        return
    if note:
        click.echo(note)
        return
    if fmt == "json":
        click.echo(export.to_json(t, items), nl=False)
    elif fmt == "csv":
        click.echo(export.to_csv(items), nl=False)
    elif fmt == "md":
        click.echo(export.to_md(t, items), nl=False)
    else:
        from rich.console import Console

        export.print_table(Console(highlight=False, markup=False, emoji=False), t, items)


def _no_items_note(t: Any) -> str | None:
    """One line saying why an LEA's timeline is empty (a Universal-tier LEA); None otherwise."""
    from pacing.core.timeline import tier_label

    if t.items:
        return None
    m = t.lea.monitoring
    if m.tier == "universal":
        return (
            f'{t.lea.name} is in the Universal tier: "Resources and tools are available to '
            'maintain compliance and improve outcomes for all students" (CDE). The CIM guides '
            "set no steps or deadlines for Universal-tier LEAs, so there is no timeline; "
            "see https://caltan.info/monitoring"
        )
    return (
        f"{t.lea.name}: no bundled pacing guide applies to {tier_label(t.lea)} LEAs of the "
        f"{m.cohort} cohort (see `pacing guides`)."
    )


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

    def steps_text(numbers: list[int]) -> str:
        if len(numbers) == 1:
            return f"Step {numbers[0]}"
        return f"Steps {', '.join(map(str, numbers[:-1]))} and {numbers[-1]}"

    rate = f"${budget.rate:g}/hour"
    click.echo(f"{lea.name}: {budget.guide.title}")
    funded_steps: list[int] = []
    paid_steps: list[int] = []
    for step_no in sorted({s.step for s in budget.services}):
        in_step = [s for s in budget.services if s.step == step_no]
        funded = budget.counts_against_funding(in_step[0])
        if any(s.hours_max for s in in_step):
            (funded_steps if funded else paid_steps).append(step_no)
        how = "CDE-funded hours count against these" if funded else f"paid at {rate}"
        click.echo(f"Step {step_no} ({how})")
        for s in in_step:
            hours = f"{s.hours_min:g}-{s.hours_max:g} h" if s.hours_max else "as agreed"
            click.echo(f"  {hours:>10}  {s.title}")
    (fmin, fmax), (pmin, pmax) = budget.hours(True), budget.hours(False)
    click.echo(f"Estimate for all listed services: {budget.hours_min:g}-{budget.hours_max:g} hours")
    if paid_steps:
        click.echo(f"  {steps_text(funded_steps)}: {fmin:g}-{fmax:g} hours, less the funded hours")
        click.echo(f"  {steps_text(paid_steps)}: {pmin:g}-{pmax:g} hours, all paid at {rate}")
    n = budget.indicators
    per = f"{budget.per_indicator:g}"
    if budget.minimum:
        per = f"a minimum of {per}"
    click.echo(
        f"CDE-funded: {budget.funded_hours:g} hours ({per} hours per indicator x {n} "
        f"indicator{'' if n == 1 else 's'}, seed 002)"
        + (f", for {steps_text(funded_steps)} services only" if paid_steps else "")
    )
    if budget.funded_until_text:
        until = budget.funded_until
        by = f" by {until:%B} {until.day}, {until.year}" if until else ""
        click.echo(
            f"Cut-off: {budget.funded_until_text} (seed 002): the funded hours pay only for "
            f"services done{by}."
        )
    if budget.assumption:
        click.echo(f"Assumption: {budget.assumption}")
    low, high = budget.cost()
    click.echo(f"Cost beyond the funded hours at {rate}: ${low:,.0f}-${high:,.0f}")
    f = f"{budget.funded_hours:g}"
    click.echo(
        f"  floor (max(0, {fmin:g} - {f}) + {pmin:g}) x ${budget.rate:g}, "
        f"ceiling (max(0, {fmax:g} - {f}) + {pmax:g}) x ${budget.rate:g}"
    )
    if budget.minimum:
        click.echo(
            "The funded hours are a minimum, so this cost is an upper-bound estimate: "
            "more CDE-funded hours would lower it."
        )
    unpriced = [s.title for s in budget.services if not s.hours_max]
    if unpriced:
        click.echo(f"Not in the estimate (no hours in the menu): {'; '.join(unpriced)}")
    for item in budget.guide.items:
        if item.when:
            click.echo(f"Deadline: {item.title}: {item.when.text}")


@cli.command()
@click.argument("source", type=EXISTING)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here "
              "instead of stdout.")  # fmt: skip
@click.option("--no-tasks", is_flag=True, help="Leave out the backward-planned 'Start by' events.")
@click.option("--todo", is_flag=True, help="Add VTODOs (DUE, STATUS) for clients that show tasks.")
def ics(source: Path, output: Path | None, no_tasks: bool, todo: bool) -> None:
    """Export an LEA profile (or a folder of them, as one calendar) as .ics."""
    from pacing.adapters.files import load_lea, profiles_in
    from pacing.adapters.state import State
    from pacing.clock import now
    from pacing.core.timeline import expand
    from pacing.export.ics import feed_events, revise, to_ics

    state, stamp = State(), now()
    paths = profiles_in(source)
    leas = [load_lea(p) for p in paths]
    aggregate = source.is_dir()
    events = []
    for lea in leas:
        today = stamp.astimezone(ZoneInfo(lea.timezone)).date()
        t = expand(_guides(), lea, today, state.done_marks(lea.id))
        events += feed_events(t, prefix=aggregate, start_by=not no_tasks)
    if aggregate:
        name, calendar_id = (
            f"CIM: {source.resolve().name} ({len(leas)} LEAs)",
            f"_all-{source.resolve().name}",
        )
    else:
        name, calendar_id = f"CIM: {leas[0].name}", leas[0].id
    previous = state.revisions(calendar_id + ("#todo" if todo else ""))
    revisions = revise(previous, events, stamp)
    state.save_revisions(calendar_id + ("#todo" if todo else ""), revisions, previous)
    body = to_ics(name, calendar_id, events, revisions, todo=todo)
    if output:
        output.write_bytes(body)
    else:
        sys.stdout.buffer.write(body)


@cli.command()
@click.argument("profile", type=EXISTING)
@click.option("--format", "fmt", type=click.Choice(("md", "html", "csv")), required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--today", type=DATE, help="As of this date (default: today in the LEA's zone).")
def checklist(profile: Path, fmt: str, output: Path | None, today: dt.date | None) -> None:
    """Printable pacing-guide table and Stepwell box checklist (md, html or csv)."""
    from pacing.export.checklist import render_checklist

    t = _timeline(profile, today)
    text = render_checklist(t, fmt)
    if output:
        output.write_text(text, encoding="utf-8", newline="")
    else:
        click.echo(text, nl=False)


def _timeline(profile: Path, today: dt.date | None) -> Any:
    from pacing.adapters.files import load_lea
    from pacing.adapters.statedir import database_exists
    from pacing.clock import today as clock_today
    from pacing.core.timeline import expand

    lea = load_lea(profile)
    done = {}
    if database_exists():  # done marks live in the state store
        from pacing.adapters.state import State

        done = State().done_marks(lea.id)
    return expand(_guides(), lea, today or clock_today(lea.timezone), done)


@cli.command()
@click.argument("profile", type=EXISTING)
@click.argument("item_id")
@click.option("--on", "on", type=DATE, help="Done on this date (default: today).")
@click.option("--note", help="What was done or sent, shown in the timeline and checklist.")
@click.option("--outcome", type=click.Choice(OUTCOMES), help="For a submission: what CDE "
              "said (accepted with conditions makes Stepwell box 26 required).")  # fmt: skip
@click.option("--outcome-on", type=DATE, help="When CDE said it (default: today); the Sig Dis "
              "plan's approval date starts Step 4.")  # fmt: skip
def done(
    profile: Path,
    item_id: str,
    on: dt.date | None,
    note: str | None,
    outcome: Outcome | None,
    outcome_on: dt.date | None,
) -> None:
    """Mark an item done (the pacing guide's "Done" column); reminders for it stop. Run it
    again with --outcome when CDE answers a submission."""
    from pacing.adapters.state import State
    from pacing.clock import today
    from pacing.core.entry import DoneMark
    from pacing.core.errors import fail

    t = _timeline(profile, None)
    entry = _entry(t, item_id, profile)
    if outcome and not (entry.item is not None and entry.item.submission):
        raise fail(str(profile), "--outcome", f"{entry.id} is not a step's submission")
    state = State()
    before = state.done_marks(t.lea.id).get(entry.id)
    now = today(t.lea.timezone)
    mark = DoneMark(
        on or (before.on if before else now),
        one_line(note) if note else before.note if before else None,
        outcome or (before.outcome if before else None),
        outcome_on or (now if outcome else before.outcome_on if before else None),
    )
    state.mark_done(t.lea.id, entry.id, mark)
    said = f", {mark.outcome} on {mark.outcome_on}" if mark.outcome else ""
    click.echo(f"done: {entry.id} ({entry.title}) on {mark.on.isoformat()}{said}")


@cli.command()
@click.argument("profile", type=EXISTING)
@click.argument("item_id")
def undo(profile: Path, item_id: str) -> None:
    """Remove a done mark."""
    from pacing.adapters.state import State
    from pacing.core.errors import fail

    t = _timeline(profile, None)
    entry = _entry(t, item_id, profile)
    if entry.id in t.lea.done:
        raise fail(str(profile), f"done.{entry.id}", "done in the profile: remove it there")
    State().mark_done(t.lea.id, entry.id, None)
    click.echo(f"not done: {entry.id} ({entry.title})")


def _entry(t: Any, item_id: str, profile: Path) -> Any:
    from pacing.core.errors import fail

    found = next((e for e in t.items if e.id == item_id), None)
    if found is None:
        raise fail(str(profile), "ITEM-ID", f"unknown item {item_id!r} (see `pacing timeline`)")
    return found


@cli.command()
@click.argument("profiles", nargs=-1, type=EXISTING)
@click.option("--next", "show_next", default=10, show_default=True, help="Next reminders shown.")
def status(profiles: tuple[Path, ...], show_next: int) -> None:
    """Reminders: next to send, late ones, sent/failed counts, last errors, and each daemon's
    last successful step (times in the LEA's zone when the profiles are given)."""
    from collections import Counter

    from pacing.adapters.files import load_lea, profiles_in
    from pacing.adapters.state import State
    from pacing.clock import now
    from pacing.reminders.ledger import Ledger

    found = [load_lea(p) for given in profiles for p in profiles_in(given)]
    zones = {lea.id: ZoneInfo(lea.timezone) for lea in found}
    only = {z.key for z in zones.values()}
    common = ZoneInfo(only.pop()) if len(only) == 1 else None

    def at(moment: dt.datetime | None, lea: str | None = None) -> str:
        if moment is None:
            return "never"
        zone = zones.get(lea or "") or common
        if zone is None:
            return f"{moment:%Y-%m-%d %H:%M}Z"
        return f"{moment.astimezone(zone):%Y-%m-%d %H:%M %Z}"

    ledger = Ledger(State())
    rows = ledger.rows(list(zones) or None)
    counts = Counter(r.status for r in rows)
    click.echo(", ".join(f"{k}: {counts[k]}" for k in
                         ("pending", "claimed", "sent", "failed", "folded", "cancelled")))  # fmt: skip
    moment = now()
    late = [r for r in rows if r.status in ("pending", "claimed") and r.send_at <= moment]
    if late:
        oldest = late[0]
        click.echo(f"late: {len(late)} not sent after their instant, the oldest due "
                   f"{at(oldest.send_at, oldest.lea)} ({oldest.lea}, {oldest.to})")  # fmt: skip
    else:
        click.echo("late: none")
    upcoming = [r for r in rows if r.status == "pending" and r.send_at > moment][:show_next]
    for r in upcoming:
        click.echo(f"next  {at(r.send_at, r.lea)}  {r.kind:8} {r.to:32} {r.items[0]}")
    for r in [r for r in rows if r.last_error and r.status in ("failed", "pending")][-10:]:
        click.echo(f"error {r.status:7} {r.to:32} {r.items[0]}: {r.last_error}")
    for d in ledger.instances():
        problem = f"; last error: {d['last_error']}" if d["last_error"] else ""
        click.echo(f"daemon {d['id']} (pid {d['pid']}): last successful step "
                   f"{at(d['last_ok_at'])}, last step {at(d['last_step_at'])}{problem}")  # fmt: skip


@cli.command()
@click.argument("sources", nargs=-1, required=True, type=EXISTING)
@click.option("--dry-run", is_flag=True, help="Print what would be sent, send nothing.")
@click.option("--from", "start", type=DATE, help="With --dry-run: from this date (default today).")
@click.option("--until", type=DATE, help="With --dry-run: until this date (default +30 days).")
@click.option("--accept-empty-ledger", is_flag=True, help="Start although the state dir's "
              "reminder ledger is gone (reminders of the last week may be sent again).")  # fmt: skip
def remind(
    sources: tuple[Path, ...],
    dry_run: bool,
    start: dt.date | None,
    until: dt.date | None,
    accept_empty_ledger: bool,
) -> None:
    """The reminder daemon (or, with --dry-run, a preview: local send time, to, item)."""
    if dry_run:
        _preview(sources, start, until)
        return
    if start or until:
        raise click.UsageError("--from and --until go with --dry-run (a preview)")
    import asyncio

    _accept_empty(accept_empty_ledger)
    daemon = _daemon(sources, None)
    asyncio.run(daemon.run())


def _preview(sources: tuple[Path, ...], start: dt.date | None, until: dt.date | None) -> None:
    from pacing.adapters.files import load_lea, profiles_in
    from pacing.adapters.state import State
    from pacing.clock import today
    from pacing.core.reminders import plan
    from pacing.core.timeline import expand

    state = State()
    for path in (p for s in sources for p in profiles_in(s)):
        lea = load_lea(path)
        first = start or today(lea.timezone)
        last = until or first + dt.timedelta(days=30)
        t = expand(_guides(), lea, first, state.done_marks(lea.id))
        zone = ZoneInfo(lea.timezone)
        for r in sorted(plan(t), key=lambda r: (r.send_at, r.key)):
            local = r.send_at.astimezone(zone)
            if first <= local.date() <= last:
                cc = f" cc {', '.join(r.cc)}" if r.cc else ""
                items = r.items[0] if len(r.items) == 1 else f"{len(r.items)} items"
                click.echo(f"{local:%Y-%m-%d %H:%M %Z}  {lea.id:16} {r.kind:8} {r.to}{cc}  {items}")


def _logs() -> None:
    """Structured (logfmt) log lines on stderr: time, level, component, message."""
    import logging

    logging.basicConfig(
        level=logging.INFO,
        format='ts=%(asctime)s level=%(levelname)s logger=%(name)s msg="%(message)s"',
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


def _daemon(sources: tuple[Path, ...], page_url: Any) -> Any:
    from pacing.adapters.state import State
    from pacing.adapters.statedir import state_dir
    from pacing.clock import ClockGuard, now
    from pacing.reminders.daemon import Daemon
    from pacing.reminders.send import MaildirSender, SmtpConfig, SmtpSender

    _logs()
    try:
        config = SmtpConfig.from_env(config_file=state_dir() / "pacing.toml")
    except ValueError as e:
        from pacing.core.errors import fail

        raise fail("environment", "PACING_SMTP_TLS", str(e)) from None
    sender = SmtpSender(config) if config else MaildirSender(state_dir() / "outbox")
    now()  # a bad PACING_NOW is a one-line error here, not a traceback in the loop
    click.echo(f"pacing: reminders go to {sender.describe()}", err=True)
    kwargs = {"page_url": page_url} if page_url else {}
    clock = ClockGuard(now)  # a clock jump is not believed at once (see ClockGuard)
    daemon = Daemon(list(sources), State(), sender, clock, **kwargs)
    clock.on_back = daemon.ledger.revive_folded
    return daemon


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8180, show_default=True, type=click.IntRange(0, 65535))
@click.option("--base-url", help="Public URL when behind a proxy, e.g. https://cim.example.org")
@click.option("--no-reminders", is_flag=True, help="Serve feeds only.")
@click.option("--accept-empty-ledger", is_flag=True, help="Start although the state dir's "
              "reminder ledger is gone (reminders of the last week may be sent again).")  # fmt: skip
def serve(
    folder: Path,
    host: str,
    port: int,
    base_url: str | None,
    no_reminders: bool,
    accept_empty_ledger: bool,
) -> None:
    """Serve the folder's LEA feeds (and their pages) over HTTP, and send their reminders."""
    import asyncio
    import contextlib
    import signal

    import uvicorn

    from pacing.feeds.server import create_app, uvicorn_options

    _accept_empty(accept_empty_ledger)
    _logs()
    book = _book(folder)
    book.refresh()
    base = base_url or f"http://{host}:{port}"
    click.echo(f"pacing: serving {len(book.entries)} LEA feeds from {folder} on {base}")
    _print_urls(book, base)
    app = create_app(book, base)  # the page's URLs: never from a request's Host header
    config = uvicorn.Config(app, host=host, port=port, **uvicorn_options())
    server = uvicorn.Server(config)
    if no_reminders:
        server.run()
        return

    def page(lea_id: str) -> str:
        return f"{base}/feeds/{lea_id}/{book.token(lea_id)}/"

    daemon = _daemon((folder,), page)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]

    async def both() -> None:
        def stop() -> None:  # SIGTERM/SIGINT: the feeds stop, the email in flight finishes
            server.should_exit = True
            daemon.request_stop()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        reminders = asyncio.create_task(daemon.run(signals=False))
        await server.serve()
        daemon.request_stop()
        await reminders

    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:  # uvicorn[standard] brings it; plain asyncio works too
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(both())


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8180, show_default=True, type=click.IntRange(0, 65535))
@click.option("--base-url", help="Public URL when behind a proxy, e.g. https://cim.example.org")
@click.option("--rotate", is_flag=True, help="New secret: new URLs; the old ones keep working "
              "until --retire-old-urls.")  # fmt: skip
@click.option("--retire-old-urls", is_flag=True, help="End a rotation: the URLs from before the "
              "last --rotate stop working.")  # fmt: skip
def feeds(
    folder: Path, host: str, port: int, base_url: str | None, rotate: bool, retire_old_urls: bool
) -> None:
    """Print each LEA's subscription URLs (as `serve` with the same options serves them)."""
    from pacing.adapters.state import State

    if rotate:
        State().rotate_feed_secret()
    if retire_old_urls:
        State().retire_previous_secret()
    book = _book(folder)
    book.refresh()
    _print_urls(book, base_url or f"http://{host}:{port}")


def _book(folder: Path) -> Any:
    from pacing.adapters.state import State
    from pacing.clock import now
    from pacing.feeds.book import FeedBook

    state = State()
    return FeedBook(folder, state, now, state.feed_secrets())


def _accept_empty(accept: bool) -> None:
    """--accept-empty-ledger: every state store this process opens may start afresh."""
    from pacing.adapters.state import ACCEPT_EMPTY

    if accept:
        os.environ[ACCEPT_EMPTY] = "1"


@cli.group()
def db() -> None:
    """The state store: schema upgrades and checks (PACING_DB, else the state dir's SQLite)."""


@db.command("upgrade")
@click.option("--accept-empty-ledger", is_flag=True, help="Start a new ledger although the "
              "state dir's is gone (reminders of the last week may be sent again).")  # fmt: skip
def db_upgrade(accept_empty_ledger: bool) -> None:
    """Upgrade the schema to this release's (also done at every start, one instance at a
    time)."""
    from pacing.adapters.state import State

    _accept_empty(accept_empty_ledger)
    state = State()
    now = state.schema_version()
    before = state.upgraded_from
    click.echo(f"schema: {now} (up to date)" if before == now else f"schema: {before or 'new'} -> {now}")


@db.command("check")
def db_check() -> None:
    """Check the state store: integrity, schema version, ledger counts."""
    from collections import Counter

    import sqlalchemy as sa

    from pacing.adapters.state import State, reminder

    state = State()
    with state.engine.connect() as conn:
        if state.engine.dialect.name == "sqlite":
            click.echo(f"integrity: {conn.exec_driver_sql('PRAGMA integrity_check').scalar()}")
        rows = conn.execute(sa.select(reminder.c.status)).scalars().all()
    click.echo(f"schema: {state.schema_version()}")
    counts = Counter(rows)
    click.echo("reminders: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))


def _print_urls(book: Any, base: str) -> None:
    from pacing.feeds.server import feed_urls

    for lea_id, name, url, page in feed_urls(book, base):
        click.echo(f"{lea_id}: {name}")
        click.echo(f"  feed:   {url}")
        click.echo(f"  webcal: webcal://{url.split('://', 1)[1]}")
        if page:
            click.echo(f"  page:   {page}")
    for error in book.errors.values():
        click.echo(f"pacing: {error}", err=True)


def main() -> None:
    if os.environ.get("NO_COLOR"):
        os.environ.setdefault("TERM", "dumb")
    try:
        cli(prog_name="pacing")
    except BrokenPipeError:  # `pacing ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
