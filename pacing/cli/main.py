"""The `pacing` command: a thin layer over the core, with one error boundary."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

from pacing.core.entry import OUTCOMES, Outcome
from pacing.core.errors import DataError, one_line
from pacing.core.fields import ROLES
from pacing.core.lea import DELIVERIES

if TYPE_CHECKING:  # the commands import what they use lazily; the types are real
    from collections.abc import Callable, Mapping, Sequence

    from pacing.adapters.files import SkippedGuide
    from pacing.core.agenda import Agenda, Line
    from pacing.core.entry import DoneMark, Entry
    from pacing.core.guide import Guide
    from pacing.core.lea import Lea
    from pacing.core.reminders import Reminder
    from pacing.core.timeline import Timeline
    from pacing.feeds.book import FeedBook
    from pacing.reminders.actions import LinkConfig, Links
    from pacing.reminders.daemon import Daemon

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
@click.option("--log-format", type=click.Choice(("logfmt", "json")), help="Log lines of `serve` "
              "and `remind` (default: PACING_LOG_FORMAT, else logfmt).")  # fmt: skip
def cli(log_format: str | None) -> None:
    """Deadlines and backward-planned pacing for California special-education CIM."""
    if log_format:
        from pacing import logs

        logs.choose(log_format)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=EXISTING)
def check(paths: tuple[Path, ...]) -> None:
    """Validate guide and LEA profile files (exit 1 on problems).

    The profiles checked together must have distinct ids and CDS codes; in a folder of
    profiles every TOML file must be a profile; reminders must name someone and escalations
    a defined contact (reminders that reach nobody, all named having opted out or `to = []`,
    are warned about, with how to restore them). Guides are checked too where profiles find
    them (the guides/ folder beside them, PACING_GUIDES): a guide id defined twice, or a
    placeholder (TODO) still to fill, is an error; a profile whose cohort has no guide is
    warned about."""
    from pacing.adapters.caseloads import caseloads_file, folder_caseloads
    from pacing.adapters.checks import clashes, reminder_problems, silenced, stored_opt_outs
    from pacing.adapters.files import (
        NOT_A_PROFILE,
        is_profile,
        load_lea,
        profiles_in,
        read_toml,
    )
    from pacing.cli.guides import guide_check, search_path_check
    from pacing.core.errors import Problem
    from pacing.core.timeline import missing_guides, team_warnings

    failed: set[Path] = set()
    passed: list[Path] = []  # "ok" once the profiles checked together are known not to clash
    profiles: list[tuple[Path, Lea, str]] = []
    said: set[str] = set()  # a guide's problem is said once, not again for each profile

    def fail(path: Path, problems: list[Problem]) -> None:
        failed.add(path)
        for problem in problems:
            if str(problem) not in said:
                said.add(str(problem))
                click.echo(f"pacing: {problem}", err=True)

    for given in paths:
        files: dict[Path, tuple[dict[str, Any], str]] = {}
        for path in profiles_in(given):
            try:
                files[path] = read_toml(path)
            except DataError as e:
                fail(path, e.problems)
        # a folder with a profile in it is a profile folder: its other TOML files are strays
        of_profiles = given.is_dir() and any(is_profile(data) for data, _ in files.values())
        for path, (data, text) in files.items():
            try:
                if not is_profile(data):
                    if of_profiles:
                        raise DataError([Problem(str(path), "", NOT_A_PROFILE)])
                    for warning in guide_check(path):  # invalid or unfilled: a DataError
                        click.echo(f"pacing: warning: {warning}", err=True)
                    passed.append(path)
                    continue
                lea = load_lea(path)
            except DataError as e:
                fail(path, e.problems)
                continue
            profiles.append((path, lea, text))
            silent = reminder_problems(lea, path, text)
            if silent:
                fail(path, silent)
                continue
            guides = _guides(path, warn=False)  # a guide that does not load: its own error
            for warning in team_warnings(guides, lea):
                click.echo(f"pacing: warning: {path}: team: {warning}", err=True)
            for warning in missing_guides(guides, lea):
                click.echo(f"pacing: warning: {path}: {warning}", err=True)
            passed.append(path)
        if given.is_dir() and caseloads_file(given).exists():  # named caseloads, digests
            try:
                folder_caseloads(given, [lea for p, lea, _ in profiles if p.parent == given])
                passed.append(caseloads_file(given))
            except DataError as e:
                fail(caseloads_file(given), e.problems)
    for path, problems, warnings in search_path_check(paths, set(passed) | failed):
        if problems:  # the guides beside the profiles, in PACING_GUIDES; ids defined twice
            fail(path, problems)
        elif path not in passed:
            passed.append(path)
        for warning in warnings:
            click.echo(f"pacing: warning: {warning}", err=True)
    # reminders that reach nobody (everyone named opted out, to = [], a placeholder): warned
    outs, unread = stored_opt_outs([lea.id for path, lea, _ in profiles if path not in failed])
    if unread:
        click.echo(f"pacing: warning: {unread}", err=True)
    for path, lea, text in (p for p in profiles if p[0] not in failed):
        for nobody in silenced(lea, path, text, outs.get(lea.id)):
            click.echo(f"pacing: warning: {nobody}", err=True)
    for problem in clashes(profiles):
        fail(Path(problem.file), [problem])
    for path in passed:
        if path not in failed:
            click.echo(f"ok {path}")
    if failed:
        sys.exit(1)


def _answer(check: Callable[[str], Any], flag: str | None = None) -> Callable[[Any], Any]:
    """A prompt's value_proc (or a flag's check) from a field check: ValueError ->
    BadParameter (a prompt asks again; a flag is a usage error naming it)."""

    def convert(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return check(value)
        except ValueError as e:
            message = str(e).removeprefix("Value error, ")
            raise click.BadParameter(message, param_hint=flag) from None

    return convert


@cli.command()
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="The new profile (default: <id>.toml here; '-' for stdout). Never replaced. "
              "With --directory: the folder for the new profiles (default: here).")  # fmt: skip
@click.option("--directory", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CDE's public schools and districts file (pubschls.txt): one profile per "
              "active district selected by --cds, --county and --district-type.")  # fmt: skip
@click.option("--county", multiple=True, help="With --directory: the districts of this county "
              "(repeat for several).")  # fmt: skip
@click.option("--district-type", multiple=True, help="With --directory: CDE's DOCType, e.g. "
              "'Unified School District' (repeat for several).")  # fmt: skip
@click.option("--monitoring", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With --directory: a CSV of cds, tier, level, cohort, sig_dis, "
              "sig_dis_indicators per LEA (LEAs without a row take the flags).")  # fmt: skip
@click.option("--name", help="The LEA's full name, e.g. 'Sunrise Unified School District'.")
@click.option("--id", "lea_id", help="Short id for URLs (default: from the name, e.g. sunrise-usd).")
@click.option("--cds", multiple=True, help="CDS code (14 digits, or the 7-digit district code); "
              "with --directory, repeat it for several districts.")  # fmt: skip
@click.option("--tier", type=click.Choice(("universal", "targeted", "intensive")))
@click.option("--level", type=click.IntRange(1, 3), help="1-3 (required for targeted).")
@click.option("--cohort", type=click.IntRange(2000, 2100), help="The cohort's year, e.g. 2024.")
@click.option("--sig-dis", type=click.Choice(("new", "continuing", "no")), help="Significant "
              "disproportionality status (default: no).")  # fmt: skip
@click.option("--lead-name", help="The CIM team lead, who gets the reminders.")
@click.option("--lead-email")
@click.option("--lead-role", type=click.Choice(ROLES), help="Default: sped-admin.")
@click.option("--selpa-name", help="SELPA contact (told when a CDE deadline is missed).")
@click.option("--selpa-email")
@click.option("--fmta-name", help="The LEA's FMTA consultant at CDE.")
@click.option("--fmta-email")
@click.option("--board-rule", help="Board meetings: '2nd Tuesday' or an RRULE.")
@click.option("--timezone", help="Default: America/Los_Angeles.")
@click.option("--schema", "schema", metavar="PATH|URL", help="For the '#:schema' line (default: "
              "this installation's profile.schema.json, relative to the file).")  # fmt: skip
@click.option("-y", "--yes", is_flag=True, help="Ask nothing (also when stdin is no terminal).")
@click.option("--interactive", is_flag=True, help="Ask even when stdin is not a terminal.")
def init(output: Path | None, yes: bool, interactive: bool, schema: str | None,
         **given: Any) -> None:  # fmt: skip
    """Write a new, commented LEA profile: asks on a terminal, takes flags otherwise.

    With --directory, one profile per active district of CDE's public schools and districts
    file, in the folder -o names; existing profiles are reported and kept."""
    from pacing.adapters import onboarding as ob

    asking = not yes and (interactive or sys.stdin.isatty())
    directory, codes = given.pop("directory"), given.pop("cds")
    selectors = {"--county": given.pop("county"), "--district-type": given.pop("district_type"),
                 "--monitoring": given.pop("monitoring")}  # fmt: skip
    if directory is not None:
        _init_from_directory(directory, codes, output, schema, asking, selectors, given)
        return
    used = [flag for flag, value in selectors.items() if value]
    if used:
        raise click.UsageError(f"{', '.join(used)} only with --directory")
    given["cds"] = codes[-1] if codes else None  # without --directory, the last one (as before)
    stdout = output is not None and str(output) == "-"
    if output is not None and not stdout and output.is_dir():
        raise click.BadParameter(f"File {str(output)!r} is a directory.", param_hint="'-o' / "
                                 "'--output'")  # fmt: skip
    if output is not None and not stdout and output.exists():
        _refuse(output)
    checks = {
        "name": ob.text, "lea_id": ob.slug, "cds": ob.cds, "lead_name": ob.text,
        "lead_email": ob.email, "selpa_name": ob.text, "selpa_email": ob.email,
        "fmta_name": ob.text, "fmta_email": ob.email, "board_rule": ob.board_rule,
        "timezone": ob.timezone,
    }  # fmt: skip
    flag = {"lea_id": "--id"}
    values = {
        key: _answer(checks[key], flag.get(key, f"--{key.replace('_', '-')}"))(value)
        if key in checks else value
        for key, value in given.items()
    }  # fmt: skip

    def ask(key: str, prompt: str, required: bool = True, **kw: Any) -> Any:
        if values[key] is not None or not asking:
            return values[key]
        if key in checks:
            kw["value_proc"] = _answer(checks[key] if required else _optional(checks[key]))
        if not required:
            kw.setdefault("default", "")
            kw.setdefault("show_default", False)
        values[key] = click.prompt(prompt, **kw) or None
        return values[key]

    name = ask("name", "LEA name (e.g. Sunrise Unified School District)")
    if name and values["lea_id"] is None:
        suggested = ob.suggest_id(name)
        values["lea_id"] = ask("lea_id", "Short id", default=suggested) if asking else suggested
    ask("cds", "CDS code (14 digits)")
    tier = ask("tier", "Monitoring tier", type=click.Choice(("universal", "targeted", "intensive")))
    if tier == "targeted":
        ask("level", "Level", type=click.IntRange(1, 3))
    elif tier == "intensive" and asking and values["level"] is None:
        values["level"] = click.prompt("Level (1-3, blank if none)", default="",
                                       show_default=False, value_proc=_answer(_level))  # fmt: skip
    ask("cohort", "Cohort year", type=click.IntRange(2000, 2100), default=2024)
    ask("sig_dis", "Significant disproportionality", type=click.Choice(("new", "continuing",
        "no")), default="no")  # fmt: skip
    ask("lead_role", "The CIM team lead's role", type=click.Choice(ROLES),
        default="sped-admin")  # fmt: skip
    ask("lead_name", "The CIM team lead's name (gets the reminders)")
    ask("lead_email", "The lead's email")
    for who, label in (("selpa", "SELPA"), ("fmta", "FMTA consultant")):
        if ask(f"{who}_name", f"{label} contact name (blank: none)", required=False):
            ask(f"{who}_email", f"{label} email")
    ask("board_rule", "Board meetings (e.g. '2nd Tuesday'; blank: none yet)", required=False)

    if tier == "universal" and values["level"] is not None:
        raise click.UsageError("a universal LEA has no level (leave out --level)")
    required = {"name": "--name", "cds": "--cds", "tier": "--tier", "cohort": "--cohort",
                "lead_name": "--lead-name", "lead_email": "--lead-email"}  # fmt: skip
    if tier == "targeted":
        required["level"] = "--level"
    for who in ("selpa", "fmta"):
        if (values[f"{who}_name"] is None) != (values[f"{who}_email"] is None):
            required[f"{who}_name" if values[f"{who}_name"] is None else f"{who}_email"] = (
                f"--{who}-name and --{who}-email"
            )
    missing = [flag for key, flag in required.items() if values[key] is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (give them, or run `pacing init` "
                               "on a terminal to be asked)")  # fmt: skip
    selpa = (values["selpa_name"], values["selpa_email"]) if values["selpa_name"] else None
    fmta = (values["fmta_name"], values["fmta_email"]) if values["fmta_name"] else None
    answers = ob.Answers(
        name=values["name"], id=values["lea_id"], cds=values["cds"], tier=tier,
        cohort=values["cohort"], level=values["level"], sig_dis=values["sig_dis"] or "no",
        lead_role=values["lead_role"] or "sped-admin", lead_name=values["lead_name"],
        lead_email=values["lead_email"], timezone=values["timezone"] or "America/Los_Angeles",
        selpa=selpa, fmta=fmta, board_rule=values["board_rule"],
        escalate=[k for k, c in (("selpa", selpa), ("fmta_consultant", fmta)) if c],
    )  # fmt: skip
    target = None if stdout else output or Path(f"{answers.id}.toml")
    ref = schema if schema is not None else ob.schema_ref(target)
    text = ob.render(answers, target, ref or None)
    ob.validated(text, str(target or "<stdout>"))  # a DataError here is a bug: one line
    if target is None:
        click.echo(text, nl=False)
        return
    try:
        ob.write_new(target, text)
    except FileExistsError:
        _refuse(target)
    click.echo(f"wrote {target}; next: pacing check {target}")
    if not ref:
        click.echo("pacing: no profile.schema.json here: give --schema for editors' help", err=True)


def _init_from_directory(path: Path, codes: tuple[str, ...], output: Path | None,
                         schema: str | None, asking: bool, selectors: dict[str, Any],
                         given: dict[str, Any]) -> None:  # fmt: skip
    """`init --directory`: every check and question first, then the files; a profile already
    in the folder (same CDS code or file) is reported and kept. Exit 1 when a --cds code
    could not be used (unknown, a school, a closed district) or nothing was selected."""
    from pacing.adapters import directory as cde
    from pacing.adapters import onboarding as ob

    per_lea = [f for f, k in (("--name", "name"), ("--id", "lea_id"), ("--lead-name",
               "lead_name"), ("--lead-email", "lead_email")) if given[k] is not None]  # fmt: skip
    if per_lea:
        raise click.UsageError(f"{', '.join(per_lea)}: per LEA, not with --directory (the "
                               "names and administrators come from the file)")  # fmt: skip
    if not (codes or selectors["--county"] or selectors["--district-type"]):
        raise click.UsageError("--directory needs --cds, --county or --district-type")
    if output is not None and (str(output) == "-" or output.is_file()):
        raise click.BadParameter("with --directory, a folder", param_hint="'-o' / '--output'")
    checks = {"cds": ob.cds, "selpa_name": ob.text, "selpa_email": ob.email,
              "fmta_name": ob.text, "fmta_email": ob.email, "board_rule": ob.board_rule,
              "timezone": ob.timezone}  # fmt: skip
    wanted = [_answer(ob.cds, "--cds")(code) for code in codes]
    values = {k: _answer(checks[k], f"--{k.replace('_', '-')}")(v) if k in checks else v
              for k, v in given.items()}  # fmt: skip
    for who in ("selpa", "fmta"):
        if (values[f"{who}_name"] is None) != (values[f"{who}_email"] is None):
            raise click.UsageError(f"give --{who}-name and --{who}-email together")
    if values["tier"] == "universal" and values["level"] is not None:
        raise click.UsageError("a universal LEA has no level (leave out --level)")

    found = cde.select(cde.read_directory(path), wanted, selectors["--county"],
                       selectors["--district-type"])  # fmt: skip
    monitoring = cde.read_monitoring(selectors["--monitoring"]) if selectors["--monitoring"] else {}
    failed = bool(found.unknown or found.schools or set(r.cds for r in found.closed) & found.named
                  or found.filtered)  # fmt: skip
    for code in found.unknown:
        _note(f"{code}: not in {path}")
    for row in found.schools:
        _note(f"{cde.describe(row)}: a school, not a district: skipped (its district: "
             f"--cds {row.code})")  # fmt: skip
    for row in found.filtered:
        _note(f"{cde.describe(row)}: left out by --county/--district-type")
    for row in found.closed:
        _note(f"{cde.describe(row)}: {row.status or 'no status'} in the directory, not Active: "
             "skipped")  # fmt: skip
    if found.school_rows:
        _note(f"skipped {found.school_rows} school row(s): profiles are one per district")
    if not found.chosen:
        _note("no active district selected: nothing written")
        sys.exit(1)

    folder = output or Path(".")
    held = cde.scan(folder)
    common = {"selpa": (values["selpa_name"], values["selpa_email"]) if values["selpa_name"]
              else None, "fmta": (values["fmta_name"], values["fmta_email"])
              if values["fmta_name"] else None, "lead_role": values["lead_role"],
              "timezone": values["timezone"], "board_rule": values["board_rule"]}  # fmt: skip
    planned: list[tuple[cde.Row, dict[str, Any]]] = []
    missing: list[str] = []
    for row in found.chosen:
        if row.code in held.districts:
            _note(f"{cde.describe(row)}: {held.districts[row.code]} exists: not overwritten")
            continue
        lea = cde.merged(values, monitoring.get(row.code))
        if asking and row.code not in monitoring:
            lea = _ask_monitoring(cde.name_of(row), lea)
        problems = cde.monitoring_problems(lea)
        if problems:
            where = (f"line {monitoring[row.code].line} of {selectors['--monitoring']}"
                     if row.code in monitoring else "flags")  # fmt: skip
            missing.append(f"{cde.describe(row)} ({where}): {', '.join(problems)}")
        planned.append((row, lea))
    if missing:
        raise click.UsageError("monitoring values missing or contradictory (give --tier, "
                               "--level, --cohort, --sig-dis, a --monitoring row, or run on a "
                               "terminal to be asked): " + "; ".join(missing))  # fmt: skip

    texts: list[tuple[Path, str, str | None]] = []
    for row, lea in planned:
        lea_id = held.unique_id(ob.suggest_id(cde.name_of(row)))
        target = folder / f"{lea_id}.toml"
        answers, no_lead = cde.answers_for(row, lea_id, lea, common)
        ref = schema if schema is not None else ob.schema_ref(target)
        text = cde.profile_text(row, answers, path.name, target, ref or None,
                                lea["sig_dis_indicators"], no_lead is None)  # fmt: skip
        ob.validated(text, str(target))  # a DataError here is a bug: one line
        texts.append((target, text, no_lead and f"{cde.describe(row)}: {no_lead}"))
    folder.mkdir(parents=True, exist_ok=True)
    wrote = 0
    for target, text, no_lead in texts:
        try:
            ob.write_new(target, text)
        except FileExistsError:
            _note(f"{target} exists: not overwritten")
            continue
        wrote += 1
        click.echo(f"wrote {target}")
        if no_lead:
            _note(f"{target}: {no_lead}: no lead and no reminders until you add one (see the "
                 "TO DO in the file)")  # fmt: skip
    if wrote:
        click.echo(f"wrote {wrote} profile(s); next: pacing check {folder}")
    if failed:
        sys.exit(1)


def _note(message: str) -> None:
    click.echo(f"pacing: {message}", err=True)


def _ask_monitoring(name: str, lea: dict[str, Any]) -> dict[str, Any]:
    """init's monitoring questions for one LEA without a --monitoring row (the flags given
    are the answers, not asked)."""
    if lea["tier"] is None:
        lea["tier"] = click.prompt(f"{name}: monitoring tier",
                                   type=click.Choice(("universal", "targeted", "intensive")))
    if lea["tier"] == "targeted" and lea["level"] is None:
        lea["level"] = click.prompt(f"{name}: level", type=click.IntRange(1, 3))
    elif lea["tier"] == "intensive" and lea["level"] is None:
        lea["level"] = click.prompt(f"{name}: level (1-3, blank if none)", default="",
                                    show_default=False, value_proc=_answer(_level))  # fmt: skip
    if lea["cohort"] is None:
        lea["cohort"] = click.prompt(f"{name}: cohort year", type=click.IntRange(2000, 2100),
                                     default=2024)  # fmt: skip
    if lea["sig_dis"] is None:
        lea["sig_dis"] = click.prompt(f"{name}: significant disproportionality",
                                      type=click.Choice(("new", "continuing", "no")), default="no")
    return lea


def _optional(check: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda value: check(value) if value.strip() else None


def _level(value: str) -> int | None:
    if not value.strip():
        return None
    if value.strip() not in ("1", "2", "3"):
        raise ValueError(f"{value.strip()!r}: 1, 2 or 3 (or blank)")
    return int(value)


def _refuse(path: Path) -> None:
    click.echo(f"pacing: {path} exists: not overwritten (choose another -o FILE)", err=True)
    sys.exit(1)


def _guides(*sources: Path, warn: bool = True) -> tuple[Guide, ...]:
    """The guides for profiles in `sources`: bundled, PACING_GUIDES, the guides/ beside them.
    A guide file that does not load is skipped, with one warning line (see `_profile`)."""
    from pacing.adapters.files import usable_guides

    found = usable_guides(sources)
    if warn:
        _warn_skipped(found.skipped)
    return found.guides


def _warn_skipped(skipped: Sequence[SkippedGuide]) -> None:
    """One warning line on stderr per guide file skipped, once per command."""
    ctx = click.get_current_context(silent=True)
    said: set[str] = ctx.meta.setdefault("pacing.skipped_guides", set()) if ctx else set()
    for guide in skipped:
        if str(guide.path) not in said:
            said.add(str(guide.path))
            click.echo(f"pacing: warning: {guide.warning}", err=True)


def _profile(profile: Path) -> tuple[Lea, tuple[Guide, ...]]:
    """The LEA and the guides it is planned with. A guide file beside it that does not load
    is skipped with a warning, unless the LEA would be planned with it: then its problems
    are the error (naming the guide file)."""
    from pacing.adapters.files import load_lea, usable_guides

    found = usable_guides([profile])
    lea = load_lea(profile, found)  # raises for a skipped guide the LEA would use
    _warn_skipped(found.skipped)
    return lea, found.for_lea(lea)


def _stored_marks(lea_id: str) -> dict[str, DoneMark]:
    """The LEA's done marks in the state store (none when there is no store yet)."""
    from pacing.adapters.statedir import database_exists

    if not database_exists():
        return {}
    from pacing.adapters.state import State

    return State().done_marks(lea_id)


@cli.command()
@click.argument("profile", type=EXISTING)
@click.option("--today", type=DATE, help="Plan as of this date (default: today in the LEA's zone).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--step", type=click.IntRange(0, 4), help="Only this CIM step (0 = preparation).")
@click.option("--upcoming", type=click.IntRange(0), metavar="DAYS", help="Only what is due or "
              "should start within DAYS (plus anything overdue or at risk).")  # fmt: skip
@click.option("--excel", is_flag=True, help="With --format csv: a UTF-8 BOM so Excel reads it.")
def timeline(
    profile: Path,
    today: dt.date | None,
    fmt: str,
    step: int | None,
    upcoming: int | None,
    excel: bool,
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
        click.echo(export.to_csv([], excel=excel), nl=False)
        click.echo(f"pacing: {note}", err=True)
        return
    if note:
        click.echo(note)
        return
    if fmt == "json":
        click.echo(export.to_json(t, items), nl=False)
    elif fmt == "csv":
        click.echo(export.to_csv(items, excel=excel), nl=False)
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
    if t.warnings:  # a program the LEA is in has no guide for its cohort (see README)
        return f"{t.lea.name}: " + "; ".join(t.warnings)
    return (
        f"{t.lea.name}: no pacing guide applies to {tier_label(t.lea)} LEAs of the "
        f"{m.cohort} cohort (see `pacing guides`)."
    )


@cli.command("ta-hours")
@click.argument("profile", type=EXISTING)
def ta_hours(profile: Path) -> None:
    """TA hour budget from the Menu of Services (CDE-funded hours, estimate, cost beyond)."""
    from pacing.adapters.files import load_lea
    from pacing.export.tahours import ta_budget

    lea = load_lea(profile)
    budget = ta_budget(_guides(profile), lea)
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
        t = expand(_guides(source), lea, today, state.done_marks(lea.id))
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
@click.option("--excel/--no-excel", default=True, show_default=True, help="With --format csv: "
              "a UTF-8 BOM so Excel reads it.")  # fmt: skip
def checklist(
    profile: Path, fmt: str, output: Path | None, today: dt.date | None, excel: bool
) -> None:
    """Printable pacing-guide table and Stepwell box checklist (md, html or csv)."""
    from pacing.export.checklist import render_checklist, to_csv

    t = _timeline(profile, today)
    text = to_csv(t, excel=excel) if fmt == "csv" else render_checklist(t, fmt)
    if output:
        output.write_text(text, encoding="utf-8", newline="")
    else:
        click.echo(text, nl=False)


def _timeline(profile: Path, today: dt.date | None) -> Timeline:
    from pacing.clock import today as clock_today
    from pacing.core.timeline import expand

    lea, guides = _profile(profile)
    done = _stored_marks(lea.id)  # done marks live in the state store
    return expand(guides, lea, today or clock_today(lea.timezone), done)


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
    from pacing.core.timeline import expand

    lea, guides = _profile(profile)
    now = today(lea.timezone)
    marks = _stored_marks(lea.id)
    entry = _entry(expand(guides, lea, now, marks), item_id, profile)
    if outcome and not (entry.item is not None and entry.item.submission):
        raise fail(str(profile), "--outcome", f"{entry.id} is not a step's submission")
    before = marks.get(entry.id)
    mark = DoneMark(
        on or (before.on if before else now),
        one_line(note) if note else before.note if before else None,
        outcome or (before.outcome if before else None),
        outcome_on or (now if outcome else before.outcome_on if before else None),
    )
    _refuse_conflicts(profile, guides, lea, entry.id, {**marks, entry.id: mark})
    State().mark_done(lea.id, entry.id, mark)
    said = f", {mark.outcome} on {mark.outcome_on}" if mark.outcome else ""
    click.echo(f"done: {entry.id} ({entry.title}) on {mark.on.isoformat()}{said}")


def _refuse_conflicts(
    profile: Path, guides: Sequence[Guide], lea: Lea, item_id: str, marks: Mapping[str, DoneMark]
) -> None:
    """A done mark whose date would open an item after it ends (CDE's acceptance of the Sig
    Dis plan after Step 4's window) is refused, naming the option, before it is stored."""
    from pacing.core.errors import Problem
    from pacing.core.timeline import date_conflicts

    options = {"outcome_on": "--outcome-on", "on": "--on"}
    before = set(date_conflicts(guides, lea, {k: v for k, v in marks.items() if k != item_id}))
    problems = [
        Problem(str(profile), options.get(loc[-1], ".".join(loc)), message)
        for loc, message in date_conflicts(guides, lea, marks)
        if (loc, message) not in before  # only what this mark causes
    ]
    if problems:
        raise DataError(problems)


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


def _entry(t: Timeline, item_id: str, profile: Path) -> Entry:
    """The item an id names: a full id or a unique short one ("box-19", "step-2-submission");
    else one line with what it matched or did-you-mean suggestions (exit 1)."""
    from pacing.core.agenda import find
    from pacing.core.errors import fail

    found = find(t.items, item_id)
    if found.entry is not None:
        return found.entry
    if found.matches:
        shown = ", ".join(found.matches[:5])
        more = f" and {len(found.matches) - 5} more" if len(found.matches) > 5 else ""
        message = (
            f"{item_id!r} matches {len(found.matches)} items: {shown}{more} (give more of the id)"
        )
    else:
        hint = f"did you mean {' or '.join(found.suggestions)}? " if found.suggestions else ""
        message = f"unknown item {item_id!r} ({hint}ids: `pacing timeline` or `pacing agenda`)"
    raise fail(str(profile), "ITEM-ID", message)


@cli.command()
@click.argument("source", type=EXISTING)
@click.option("--days", type=click.IntRange(0), default=14, show_default=True,
              help="How far ahead to look.")  # fmt: skip
@click.option("--today", type=DATE, help="As of this date (default: today in each LEA's zone).")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text",
              show_default=True)  # fmt: skip
def agenda(source: Path, days: int, today: dt.date | None, fmt: str) -> None:
    """What is due next across the LEAs (a profile or a folder of them): this week, the
    following weeks, then a one-line overdue summary per LEA; ids work with `pacing done`."""
    from pacing.adapters.files import profiles_in
    from pacing.core.agenda import agenda as next_actions

    timelines = [_timeline(p, today) for p in profiles_in(source)]
    found = next_actions(timelines, days)
    if fmt == "json":
        import json

        click.echo(json.dumps(_agenda_doc(found, timelines), indent=2, ensure_ascii=False))
        return
    for line in _agenda_text(found):
        click.echo(line)


def _agenda_when(line: Line) -> str:
    """ "CDE deadline 2024-10-10", "Meeting 2025-03-12 15:30"."""
    e = line.entry
    when = f"{line.words} {line.date:%Y-%m-%d}"
    if line.until:
        when += f" \u2192 {line.until:%Y-%m-%d}"
    if line.date == e.due and e.start_time:
        when += f" {e.start_time:%H:%M}"
    return when


def _agenda_text(found: Agenda) -> list[str]:
    out: list[str] = []
    for week in found.weeks:
        start = f"{week.monday:%Y-%m-%d}"
        out.append(f"This week (Monday {start})" if week.this_week else f"Week of {start}")
        if not week.lines:
            out.append("  Nothing due this week.")
        for line in week.lines:
            status = " (at risk)" if line.entry.status == "at-risk" else ""
            out.append(f"  {line.lea}  {_agenda_when(line)}  {line.entry.title}{status}")
            out.append(f"      {line.short_id}")
        out.append("")
    if found.behind:
        out.append("Missed (see `pacing timeline PROFILE --upcoming 0`):")
        out += [f"  {b.text}" for b in found.behind]
    else:
        out.append("Nothing overdue or behind plan.")
    return out


def _agenda_doc(found: Agenda, timelines: list[Timeline]) -> dict[str, Any]:
    return {
        "days": found.days,
        "leas": [
            {"id": t.lea.id, "name": t.lea.name, "today": t.today.isoformat()} for t in timelines
        ],
        "weeks": [
            {
                "monday": week.monday.isoformat(),
                "this_week": week.this_week,
                "items": [
                    {
                        "lea": line.lea_id,
                        "lea_name": line.lea,
                        "id": line.entry.id,
                        "short_id": line.short_id,
                        "title": line.entry.title,
                        "kind": line.entry.kind,
                        "status": line.entry.status,
                        "date_label": line.words,
                        "date": line.date.isoformat(),
                        "until": line.until.isoformat() if line.until else None,
                        "due": line.entry.due.isoformat(),
                        "start_time": (
                            f"{line.entry.start_time:%H:%M}" if line.entry.start_time else None
                        ),
                    }
                    for line in week.lines
                ],
            }
            for week in found.weeks
        ],
        "behind": [
            {
                "lea": b.lea_id,
                "overdue": b.overdue_count,
                "overdue_by_source": dict(b.overdue),
                "behind_plan": b.behind_plan,
                "at_risk": b.at_risk,
                "text": b.text,
            }
            for b in found.behind
        ],
    }


@cli.command()
@click.argument("profiles", nargs=-1, type=EXISTING)
@click.option("--next", "show_next", default=10, show_default=True, help="Next reminders shown.")
def status(profiles: tuple[Path, ...], show_next: int) -> None:
    """Reminders: next to send, late ones, sent/failed counts, the rows that failed or wait
    for a retry (recipients' domains only), the LEAs whose reminders reach nobody (who opted
    out since when, how to restore them), and each daemon's last successful step, in each
    LEA's local time (without profiles: the profiles' default zone, America/Los_Angeles,
    unless the LEAs given say otherwise)."""
    from collections import Counter

    from pacing.adapters.statedir import database_exists
    from pacing.clock import now
    from pacing.core.audience import audience, trouble
    from pacing.core.lea import Lea
    from pacing.reminders.ledger import Ledger, Row

    paths, found, skipped, refused = _status_profiles(profiles)
    zones = {lea.id: ZoneInfo(lea.timezone) for lea in found}
    for given in profiles:  # a folder's caseload digests, in each contact's zone
        if given.is_dir():
            from pacing.adapters.caseloads import folder_caseloads, stored_state

            here = [lea for lea in found if lea.id in zones]
            for load in folder_caseloads(given, here, stored_state()):
                zones[f"_caseload/{load.slug}"] = ZoneInfo(load.timezone)
    only = {z.key for z in zones.values()}
    default = ZoneInfo(str(Lea.model_fields["timezone"].default))
    common = ZoneInfo(only.pop()) if len(only) == 1 else None if zones else default

    def at(moment: dt.datetime | None, lea: str | None = None) -> str:
        if moment is None:
            return "never"
        zone = zones.get(lea or "") or common
        if zone is None:
            return f"{moment:%Y-%m-%d %H:%M}Z"
        return f"{moment.astimezone(zone):%Y-%m-%d %H:%M %Z}"

    moment = now()  # a bad PACING_NOW is one line, before anything else
    rows: list[Row] = []
    daemons: list[dict[str, Any]] = []
    troubles: tuple[list[Row], int] = ([], 0)
    outs: dict[str, dict[str, dt.datetime]] = {}
    if database_exists():  # a status never creates a state store
        from pacing.adapters.state import State

        ledger = Ledger(State())
        rows = ledger.rows(list(zones) or None)
        daemons = ledger.instances()
        troubles = ledger.troubles(10, list(zones) or None)
        outs = {lea.id: ledger.state.opted_out(lea.id) for lea in found}
    said = [(lea.id, audience(lea, outs.get(lea.id)), str(path))
            for path, lea in zip(paths, found, strict=True)]  # fmt: skip
    silenced = [lea_id for lea_id, a, _ in said if a.silenced]
    counts = Counter(r.status for r in rows)
    click.echo(", ".join(f"{k}: {counts[k]}" for k in
                         ("pending", "claimed", "sent", "failed", "folded", "cancelled")))  # fmt: skip
    where = " ".join(str(p) for p in profiles) or "DIR"
    folder = str(profiles[0]) if len(profiles) == 1 and profiles[0].is_dir() else "DIR"
    if not rows and found and len(silenced) == len(found):
        click.echo("no reminders: they reach nobody (see below)")
    elif not rows:
        whose = "for these LEAs " if profiles else ""
        click.echo(f"no reminders yet {whose}(the reminder daemon plans them): start "
                   f"`pacing serve {folder}` or `pacing remind {where}`; "
                   f"`pacing remind {where} --dry-run` previews them")  # fmt: skip
    elif not zones:
        click.echo(f"times in {default.key}; `pacing status {where}` shows each LEA's own zone")
    late = [r for r in rows if r.status in ("pending", "claimed") and r.send_at <= moment]
    if late:
        oldest = late[0]
        click.echo(f"late: {len(late)} not sent after their instant, the oldest due "
                   f"{at(oldest.send_at, oldest.lea)} ({oldest.lea}, {oldest.to})")  # fmt: skip
    else:
        click.echo("late: none")
    upcoming = [r for r in rows if r.status == "pending" and r.send_at > moment][:show_next]
    if rows and not upcoming:
        why = f" (the reminders of {', '.join(silenced)} reach nobody)" if silenced else ""
        click.echo(f"next: none pending{why}")
    for r in upcoming:
        what = r.lea if r.kind == "caseload" else r.items[0]  # a digest: its caseload
        click.echo(f"next  {at(r.send_at, r.lea)}  {r.kind:8} {r.to:32} {what}")
    for r in troubles[0]:  # recipients' domains and plain reasons only
        click.echo("error " + trouble(r.status, r.kind, r.lea, r.items, r.to, r.attempts,
                                      r.last_error))  # fmt: skip
    if troubles[1] > len(troubles[0]):
        click.echo(f"error ... and {troubles[1] - len(troubles[0])} more failed or retrying")
    for lea_id, a, path in said:  # opt-outs, reminders that reach nobody, how to restore
        if a.summary(path):
            click.echo(f"{lea_id}: {a.summary(path)}")
    if not daemons:
        click.echo(f"daemon: none has run yet (`pacing serve {folder}` or `pacing remind {where}`)")
    for d in daemons:
        problem = f"; last error: {d['last_error']}" if d["last_error"] else ""
        click.echo(f"daemon {d['id']} (pid {d['pid']}): last successful step "
                   f"{at(d['last_ok_at'])}, last step {at(d['last_step_at'])}{problem}")  # fmt: skip
    _status_guides(skipped, refused)


def _status_profiles(
    profiles: tuple[Path, ...],
) -> tuple[list[Path], list[Lea], list[SkippedGuide], list[DataError]]:
    """The profiles and their LEAs; the guide files skipped on their search paths (not
    valid); and, apart, the errors of the LEAs that would be planned with one of those."""
    from pacing.adapters.files import load_lea, profiles_in, usable_guides

    paths: list[Path] = []
    found: list[Lea] = []
    skipped: dict[str, SkippedGuide] = {}
    refused: list[DataError] = []
    for given in profiles:
        guides = usable_guides([given])
        skipped.update((str(s.path), s) for s in guides.skipped)
        for path in profiles_in(given):
            try:
                found.append(load_lea(path, guides))
            except DataError as e:
                if not all(p.file in skipped for p in e.problems):
                    raise  # the profile's own problem: an error, as ever
                refused.append(e)
                continue
            paths.append(path)
    return paths, found, list(skipped.values()), refused


def _status_guides(skipped: Sequence[SkippedGuide], refused: Sequence[DataError]) -> None:
    """`status`'s last lines: each guide file skipped, and the LEAs refused for it (exit 1)."""
    _warn_skipped(skipped)
    for guide in skipped:
        click.echo(f"guide skipped: {guide.path} is not valid (`pacing check {guide.path}`)")
    for error in refused:
        click.echo(f"pacing: {error}", err=True)
    if refused:
        sys.exit(1)


@cli.command()
@click.argument("sources", nargs=-1, required=True, type=EXISTING)
@click.option("--dry-run", is_flag=True, help="Print what would be sent, send nothing.")
@click.option("--from", "start", type=DATE, help="With --dry-run: from this date (default today).")
@click.option("--until", type=DATE, help="With --dry-run: until this date (default +30 days).")
@click.option("--accept-empty-ledger", is_flag=True, help="Start although the state dir's "
              "reminder ledger is gone (reminders of the last week may be sent again).")  # fmt: skip
@click.option("--base-url", help="The public https URL of `pacing serve` (as given to it), for "
              "the links in emails: page, Mark done, one-click unsubscribe (default: "
              "PACING_BASE_URL, else none).")  # fmt: skip
@click.option("--insecure-links", is_flag=True, help="Allow an http base URL (local testing "
              "only: one-click unsubscribe needs https).")  # fmt: skip
def remind(
    sources: tuple[Path, ...],
    dry_run: bool,
    start: dt.date | None,
    until: dt.date | None,
    accept_empty_ledger: bool,
    base_url: str | None,
    insecure_links: bool,
) -> None:
    """The reminder daemon (or, with --dry-run, a preview: local send time, to, item)."""
    config = _link_config(base_url, insecure_links)
    if dry_run:
        _preview(sources, start, until)
        click.echo(f"pacing: {_links_said(config, 'would carry')}", err=True)
        return
    if start or until:
        raise click.UsageError("--from and --until go with --dry-run (a preview)")
    import asyncio

    _reminders_reach_someone(sources)
    _accept_empty(accept_empty_ledger)
    page, links = _email_links(config, sources[0])
    daemon = _daemon(sources, page, links)
    click.echo(f"pacing: {_links_said(config, 'carry')}", err=True)
    from pacing.reminders.daemon import watch_from_env

    asyncio.run(daemon.run(watch_from_env()))


def _link_config(base_url: str | None, insecure: bool) -> LinkConfig:
    """Where emailed links point: --base-url (a bad one: one line naming it, exit 2), else
    PACING_BASE_URL or the [links] table of the state dir's pacing.toml (exit 1 naming it).
    One-click unsubscribe needs https: http only with --insecure-links."""
    from dataclasses import replace

    from pacing.adapters.statedir import state_dir
    from pacing.reminders.actions import BASE_URL, LinkConfig, base_url_problem

    env = dict(os.environ)
    if base_url is not None:
        problem = base_url_problem(base_url.strip(), insecure)
        if problem:
            click.echo(f"pacing: --base-url: {problem}", err=True)
            sys.exit(2)
        env[BASE_URL] = base_url  # the flag wins over the variable and the file
    config = LinkConfig.from_env(env, state_dir() / "pacing.toml", insecure)
    return replace(config, origin="--base-url") if base_url is not None else config


def _links_said(config: LinkConfig, verb: str) -> str:
    """What `remind` says of the links in its emails."""
    mailto = f"; List-Unsubscribe mailto: {config.mailto}" if config.mailto else ""
    if config.base_url:
        return (f"emails {verb} links under {config.base_url} ({config.origin}): the LEA's "
                f"page, Mark done, one-click unsubscribe{mailto}")  # fmt: skip
    return (f"emails {verb} no links (page, Mark done, one-click unsubscribe): no --base-url "
            f"or PACING_BASE_URL (the public https URL of `pacing serve`){mailto}")  # fmt: skip


def _email_links(
    config: LinkConfig, where: Path
) -> tuple[Callable[[str], str | None] | None, Links | None]:
    """The page URL of each LEA (and caseload) and the action links under the configured base
    URL (none without one), signed with the state store's current feed secret: the URLs a
    `serve` sharing the state store serves and accepts."""
    from pacing.adapters.state import State
    from pacing.clock import now
    from pacing.feeds.book import FeedBook
    from pacing.reminders.actions import Links

    base = config.base_url
    if base is None:
        return None, None
    state = State()
    secrets = state.feed_secrets()
    book = FeedBook(where if where.is_dir() else where.parent, state, now, secrets)

    def page(lea_id: str) -> str:
        return f"{base}/feeds/{lea_id}/{book.token(lea_id)}/"

    return page, Links(base, secrets[0], mailto=config.mailto)


def _reminders_reach_someone(sources: tuple[Path, ...]) -> None:
    """Reminders that would go nowhere (no lead, an escalation to an undefined contact) are
    an error before any preview or daemon starts, not silence."""
    from pacing.adapters.checks import reminder_problems
    from pacing.adapters.files import load_lea, profiles_in

    problems = [
        problem
        for path in (p for s in sources for p in profiles_in(s))
        for problem in reminder_problems(load_lea(path), path, path.read_text(encoding="utf-8"))
    ]
    if problems:
        raise DataError(problems)


def _preview(sources: tuple[Path, ...], start: dt.date | None, until: dt.date | None) -> None:
    from pacing.adapters.files import load_lea, profiles_in
    from pacing.adapters.state import State
    from pacing.clock import today
    from pacing.core.reminders import plan
    from pacing.core.timeline import expand
    from pacing.reminders.actions import without_opted_out
    from pacing.reminders.bundle import PLANNED_AFTER, RANK
    from pacing.reminders.daemon import chosen_deliveries

    state = State()
    _reminders_reach_someone(sources)
    from pacing.adapters.checks import silenced_sources

    for warning in silenced_sources(sources, state.opted_out):  # never silence unseen
        click.echo(f"pacing: warning: {warning}", err=True)
    timelines: dict[Path, dict[str, Timeline]] = {}  # per source: its caseloads' digests
    chosen = chosen_deliveries(state)
    emails: dict[tuple[dt.datetime, str], list[tuple[int, dt.datetime, Reminder]]] = {}
    for source, path in ((s, p) for s in sources for p in profiles_in(s)):
        lea = load_lea(path)
        first = start or today(lea.timezone)
        last = until or first + dt.timedelta(days=30)
        t = expand(_guides(path), lea, first, state.done_marks(lea.id))
        timelines.setdefault(source, {})[lea.id] = t
        zone = ZoneInfo(lea.timezone)
        planned = without_opted_out(plan(t, chosen), state.opted_out(lea.id))  # opted out: none
        for r in planned:
            local = r.send_at.astimezone(zone)
            if first <= local.date() <= last:
                planned_due = r.kind == "due" and any(
                    e.date_source == "planned" for e in t.items if e.id == r.items[0])
                rank = RANK.get(r.kind, 9) + (PLANNED_AFTER if planned_due else 0)
                emails.setdefault((r.send_at, r.to), []).append((rank, local, r))
    for (_, to), found_rows in sorted(emails.items()):
        _preview_email(to, [(local, r) for _, local, r in sorted(found_rows, key=lambda f: (f[0], f[2].key))])
    for source, found in timelines.items():
        if source.is_dir():
            _preview_caseloads(source, found, start, until, state)


def _preview_email(to: str, rows: list[tuple[dt.datetime, Reminder]]) -> None:
    """One line per email (local send time, LEA, kind, to, item), the most urgent reminder
    first; an email that carries more lists them below it, one indented line each."""
    local, r = rows[0]
    items = r.items[0] if len(r.items) == 1 else f"{len(r.items)} items"
    more = f"  (+{len(rows) - 1} more in this email)" if len(rows) > 1 else ""
    click.echo(f"{local:%Y-%m-%d %H:%M %Z}  {r.lea:16} {r.kind:8} {to}  {items}{more}")
    for _, r in rows[1:]:
        items = r.items[0] if len(r.items) == 1 else f"{len(r.items)} items"
        click.echo(f"    + {r.lea:16} {r.kind:8} {items}")


def _preview_caseloads(
    folder: Path,
    timelines: dict[str, Timeline],
    start: dt.date | None,
    until: dt.date | None,
    state: Any,
) -> None:
    """The folder's weekly caseload digests (kind `caseload`) in the preview: the weeks with
    something to say, as of each digest day (see pacing.core.caseload_reminders)."""
    from pacing.adapters.caseloads import folder_caseloads
    from pacing.clock import today
    from pacing.core.caseload_reminders import ledger_id, plan_caseload
    from pacing.reminders.actions import without_opted_out

    for load in folder_caseloads(folder, [t.lea for t in timelines.values()], state):
        first = start or today(load.timezone)
        last = until or first + dt.timedelta(days=30)
        planned = plan_caseload(load, timelines, first, last)
        zone = ZoneInfo(load.timezone)
        for r in without_opted_out(planned, state.opted_out(ledger_id(load.slug))):
            leas = f"{len(r.items)} LEA{'' if len(r.items) == 1 else 's'}: {', '.join(r.items)}"
            click.echo(f"{r.send_at.astimezone(zone):%Y-%m-%d %H:%M %Z}  {r.lea:16} {r.kind:8} "
                       f"{r.to}  {leas}")  # fmt: skip


def _logs() -> None:
    """Structured log lines on stderr (logfmt, or JSON with --log-format / PACING_LOG_FORMAT):
    time, level, component, message, fields."""
    from pacing import logs

    logs.setup()


def _daemon(
    sources: tuple[Path, ...],
    page_url: Callable[[str], str | None] | None,
    links: Links | None = None,
) -> Daemon:
    from pacing.adapters.state import State
    from pacing.adapters.statedir import state_dir
    from pacing.clock import ClockGuard, now
    from pacing.reminders.actions import LinkConfig
    from pacing.reminders.continuity import MARK_FILE
    from pacing.reminders.daemon import Daemon
    from pacing.reminders.send import MaildirSender, SmtpConfig, SmtpSender

    _logs()
    config = SmtpConfig.from_env(config_file=state_dir() / "pacing.toml")  # errors name the variable
    sender = SmtpSender(config) if config else MaildirSender(state_dir() / "outbox")
    now()  # a bad PACING_NOW is a one-line error here, not a traceback in the loop
    click.echo(f"pacing: reminders go to {sender.describe()}", err=True)
    clock = ClockGuard(now)  # a clock jump is not believed at once (see ClockGuard)
    daemon = Daemon(list(sources), State(), sender, clock, links=links,  # links: base URL known
                    mark_file=state_dir() / MARK_FILE)  # fmt: skip
    # the mailto form of List-Unsubscribe, with or without a base URL (an address someone reads)
    daemon.mailto = LinkConfig.from_env(config_file=state_dir() / "pacing.toml", insecure=True).mailto
    if page_url is not None:
        daemon.page_url = page_url
    clock.on_back = daemon.ledger.revive_folded
    return daemon


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8180, show_default=True, type=click.IntRange(0, 65535))
@click.option("--base-url", help="Public URL when behind a proxy, e.g. https://cim.example.org "
              "(default: PACING_BASE_URL); emails carry links under it.")  # fmt: skip
@click.option("--no-reminders", is_flag=True, help="Serve feeds only.")
@click.option("--accept-empty-ledger", is_flag=True, help="Start although the state dir's "
              "reminder ledger is gone (reminders of the last week may be sent again).")  # fmt: skip
@click.option("--insecure-links", is_flag=True, help="Allow an http base URL for the links in "
              "emails (local testing only: one-click unsubscribe needs https); without a base "
              "URL, links under http://HOST:PORT.")  # fmt: skip
def serve(
    folder: Path,
    host: str,
    port: int,
    base_url: str | None,
    no_reminders: bool,
    accept_empty_ledger: bool,
    insecure_links: bool,
) -> None:
    """Serve the folder's LEA feeds (and their pages) over HTTP, and send their reminders."""
    import asyncio
    import contextlib
    import signal

    import uvicorn

    from pacing import logs
    from pacing.feeds.server import create_app, uvicorn_options

    linking = _link_config(base_url, insecure_links or no_reminders)  # no emails: no links
    _accept_empty(accept_empty_ledger)
    _logs()
    book = _book(folder)
    book.refresh()
    base = linking.base_url or f"http://{host}:{port}"
    click.echo(f"pacing: serving {len(book.entries)} LEA feeds from {folder} on {base}")
    _print_urls(book, base)
    app = logs.AccessLog(create_app(book, base))  # the page's URLs: never from the Host header
    options = {**uvicorn_options(), "log_config": None, "access_log": False}  # our formatter
    if logs.debugging():
        options["log_level"] = "debug"
    config = uvicorn.Config(app, host=host, port=port, **options)
    server = uvicorn.Server(config)
    if no_reminders:
        server.run()
        return

    def page(lea_id: str) -> str:
        return f"{base}/feeds/{lea_id}/{book.token(lea_id)}/"

    from pacing.reminders.actions import Links

    # action links only under a configured public URL (or, for testing, the local http one)
    linked = linking.base_url is not None or insecure_links
    links = Links(base, book.secrets[0], mailto=linking.mailto) if linked else None
    daemon = _daemon((folder,), page, links)
    from pacing.reminders.daemon import watch_from_env

    watch = watch_from_env()
    if not linked:
        click.echo("pacing: emails carry no action links (Mark done, one-click unsubscribe): "
                   "no --base-url or PACING_BASE_URL", err=True)  # fmt: skip
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]

    async def both() -> None:
        def stop() -> None:  # SIGTERM/SIGINT: the feeds stop, the email in flight finishes
            server.should_exit = True
            daemon.request_stop()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        reminders = asyncio.create_task(daemon.run(watch, signals=False))
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
@click.option("--base-url", help="Public URL when behind a proxy, e.g. https://cim.example.org "
              "(default: PACING_BASE_URL).")  # fmt: skip
@click.option("--rotate", is_flag=True, help="New secret: new URLs; the old ones keep working "
              "until --retire-old-urls.")  # fmt: skip
@click.option("--retire-old-urls", is_flag=True, help="End a rotation: the URLs from before the "
              "last --rotate stop working.")  # fmt: skip
def feeds(
    folder: Path, host: str, port: int, base_url: str | None, rotate: bool, retire_old_urls: bool
) -> None:
    """Print each LEA's subscription URLs (as `serve` with the same options serves them)."""
    from pacing.adapters.state import State

    linking = _link_config(base_url, True)  # --base-url, else PACING_BASE_URL, as `serve`
    if rotate:
        State().rotate_feed_secret()
    if retire_old_urls:
        State().retire_previous_secret()
    book = _book(folder)
    book.refresh()
    _print_urls(book, linking.base_url or f"http://{host}:{port}")


def _book(folder: Path) -> FeedBook:
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
    """The state store: schema upgrades and checks, opt-ins and delivery choices (PACING_DB,
    else the state dir's SQLite)."""


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


@db.command("migrate")
@click.option("--to", "url", required=True, metavar="URL", help="The new store, e.g. "
              "postgresql://pacing@db.example.org/pacing (a new, empty database).")  # fmt: skip
def db_migrate(url: str) -> None:
    """Copy the state store (PACING_DB, else the state dir's SQLite) into a new database: the
    reminder ledger with its marks, done marks, opt-outs, delivery choices and the feed secret.
    Stop the daemons first; then set PACING_DB=URL for every instance. Nothing is sent again
    and no feed URL changes."""
    from pacing.adapters.state import State
    from pacing.adapters.storecopy import copy_store

    source, target = State(), State(url)
    copied = copy_store(source, target)
    said = ", ".join(f"{name} {n}" for name, n in copied.items() if n)
    click.echo(f"copied into {target.engine.url.render_as_string(hide_password=True)}: "
               f"{said or 'nothing (the store was empty)'}")  # fmt: skip
    click.echo(f"now set PACING_DB={url} for every instance (`pacing db check` shows it)")


@db.command("opt-in")
@click.argument("profile", type=EXISTING)
@click.argument("address")
@click.option("--caseload", "slug", metavar="SLUG", help="PROFILE is the profile folder: the "
              "weekly digest of its caseload SLUG goes to ADDRESS again.")  # fmt: skip
def db_opt_in(profile: Path, address: str, slug: str | None) -> None:
    """Send an LEA's reminders (or a caseload's digest) to ADDRESS again after it unsubscribed
    from an email."""
    from pacing.adapters.files import load_lea
    from pacing.adapters.state import State
    from pacing.core.errors import fail

    if slug:
        key, what = f"_caseload/{slug}", f"the weekly digest of caseload {slug}"
    else:
        lea = load_lea(profile)
        key, what = lea.id, f"reminders of {lea.id}"
    if not State().opt_in(key, address):
        raise fail(str(profile), "ADDRESS", f"{address!r} had not turned off {what}")
    click.echo(f"{what} go{'es' if slug else ''} to {address} again")


@db.command("delivery")
@click.argument("address")
@click.argument("mode", type=click.Choice(DELIVERIES))
def db_delivery(address: str, mode: str) -> None:
    """How often ADDRESS gets email, for every LEA it gets email from: each (every reminder,
    several on one morning in one email), daily (one summary each working morning) or weekly
    (the Monday overview, plus any overdue CDE deadline at once). As the link in an email
    does; it wins over the profiles' [reminders] delivery."""
    from pacing.adapters.onboarding import email
    from pacing.adapters.state import State
    from pacing.clock import now

    try:
        address = email(address).lower()
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="ADDRESS") from None
    state = State()
    was = state.deliveries().get(address)
    state.set_delivery(address, mode, now())
    if was is not None and was[0] == mode:
        click.echo(f"{address} already gets email: {mode} (since {was[1]:%Y-%m-%d})")
    else:
        click.echo(f"{address} gets email: {mode}" + (f" (was {was[0]})" if was else ""))


@db.command("check")
def db_check() -> None:
    """Check the state store: integrity, schema version, ledger counts."""
    from collections import Counter

    import sqlalchemy as sa

    from pacing.adapters.state import State, reminder
    from pacing.reminders.continuity import Continuity

    state = State()
    with state.engine.connect() as conn:
        if state.engine.dialect.name == "sqlite":
            click.echo(f"integrity: {conn.exec_driver_sql('PRAGMA integrity_check').scalar()}")
        rows = conn.execute(sa.select(reminder.c.status)).scalars().all()
    click.echo(f"schema: {state.schema_version()}")
    counts = Counter(rows)
    click.echo("reminders: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
    mark, _, floor = Continuity(state, None).stored()
    delivered = f"{mark.high_water:%Y-%m-%d %H:%M}Z" if mark.high_water else "nothing yet"
    folded = f"; folded up to {floor:%Y-%m-%d %H:%M}Z (accepted empty)" if floor else ""
    click.echo(f"ledger: {mark.identity or 'no marks yet'}, delivered up to {delivered}{folded}")


def _print_urls(book: Any, base: str) -> None:
    from pacing.feeds.server import feed_urls

    for lea_id, name, url, page in feed_urls(book, base):
        click.echo(f"{lea_id}: {name}")
        click.echo(f"  feed:   {url}")
        click.echo(f"  webcal: webcal://{url.split('://', 1)[1]}")
        if lea_id.startswith("_caseload/"):
            click.echo(f"  plan:   {url}?include=plan")
        if page:
            click.echo(f"  page:   {page}")
    for error in [*book.errors.values(), *filter(None, [book.caseloads.error])]:
        click.echo(f"pacing: {error}", err=True)


# Commands in modules of their own (they register themselves on `cli`).
from pacing.cli import caseload as _caseload  # noqa: E402, F401
from pacing.cli import guides as _guides_cli  # noqa: E402, F401


def main() -> None:
    if os.environ.get("NO_COLOR"):
        os.environ.setdefault("TERM", "dumb")
    try:
        cli(prog_name="pacing")
    except BrokenPipeError:  # `pacing ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
