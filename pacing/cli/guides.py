"""`pacing guides`, `pacing guide new`, `pacing guide diff`, and what `pacing check` checks of
guides: the guide search path (bundled, PACING_GUIDES, the guides/ folder beside the profiles),
authoring the next cohort's guide, and reviewing a new CDE release."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import click

from pacing.cli.main import EXISTING, cli
from pacing.core.errors import DataError, Problem, fail
from pacing.core.guide import Condition, Guide

SHOWN = 60


# ---------------------------------------------------------------- what check says of guides


def search_sources(paths: Sequence[Path]) -> list[Path]:
    """The profile folders (or files) whose search path `paths` stand for: a `guides/` folder
    or a file in one stands for the profiles beside it."""
    from pacing.adapters.guidepath import GUIDES

    out = []
    for path in paths:
        if path.is_dir() and path.name == GUIDES:
            out.append(path.parent)
        elif path.is_file() and path.parent.name == GUIDES:
            out.append(path.parent.parent)
        else:
            out.append(path)
    return out


def unfilled_problems(path: Path, guide: Guide) -> list[Problem]:
    """One problem per placeholder still in a guide file, naming its field and line."""
    from pacing.adapters.files import dotted, line_of, read_toml
    from pacing.core.authoring import DATE_KEYS, TIME_KEYS

    text = read_toml(path)[1]
    problems = []
    for loc, value in guide.unfilled:
        key = loc[-1] if loc else ""
        if key == value:
            what = "unfilled occurrence key: CDE's occurrence (e.g. 2026-09)"
        elif key in DATE_KEYS:
            what = "unfilled date: CDE's date (YYYY-MM-DD)"
        elif key in TIME_KEYS:
            what = "unfilled time: CDE's time (HH:MM)"
        else:
            what = "unfilled: CDE's words"
        shown = value if len(value) <= SHOWN else value[: SHOWN - 3] + "..."
        message = f"{what} still a placeholder ({shown!r}); the guide is not used until filled"
        problems.append(Problem(str(path), dotted(loc), message, line_of(text, loc)))
    return problems


def guide_check(path: Path) -> list[str]:
    """Check one guide file: a DataError for what is wrong or unfilled (one problem each); the
    warnings otherwise (dates assumed until confirmed)."""
    from pacing.adapters.files import load_guide

    guide = load_guide(path)
    if guide.unfilled:
        raise DataError(unfilled_problems(path, guide))
    return unconfirmed_warnings(path, guide)


def unconfirmed_warnings(path: Path, guide: Guide) -> list[str]:
    items = guide.unconfirmed_items()
    if not items:
        return []
    notes = "; ".join(dict.fromkeys(i.date_note for i in items if i.date_note)) or "assumed"
    return [
        f"{path}: {len(items)} items have assumed dates ({notes}): they are never escalated "
        "until confirmed; check them against CDE's guide, then set confirmed = true (per "
        "item, or once at the top for the whole guide)"
    ]


def search_path_check(
    paths: Sequence[Path], checked: set[Path]
) -> Iterator[tuple[Path, list[Problem], list[str]]]:
    """For `pacing check PATH...`: every guide on the search path of PATH... that is not
    bundled and not already `checked` (path, problems, warnings), then the guide ids defined
    twice (a problem naming both files)."""
    from pacing.adapters.files import load_guide
    from pacing.adapters.guidepath import GuideFile, duplicate_problems, guide_folders, guide_paths

    sources = search_sources(paths)
    try:
        folders = guide_folders(sources)
    except DataError as e:
        yield Path(e.problems[0].file), e.problems, []
        return
    found: list[GuideFile] = []
    done = {p.resolve() for p in checked}
    for folder, origin in folders:
        for path in guide_paths(folder):
            if origin == "bundled" or path.resolve() in done:
                guide = _quiet(path)
                if guide is not None:
                    found.append(GuideFile(guide, path, origin))
                continue
            done.add(path.resolve())
            try:
                guide = load_guide(path)
            except DataError as e:
                yield path, e.problems, []
                continue
            found.append(GuideFile(guide, path, origin))
            problems = unfilled_problems(path, guide) if guide.unfilled else []
            yield path, problems, [] if problems else unconfirmed_warnings(path, guide)
    for problem in duplicate_problems(found):
        yield Path(problem.file), [problem], []


def _quiet(path: Path) -> Guide | None:
    from pacing.adapters.files import load_guide

    try:
        return load_guide(path)
    except DataError:
        return None  # said where it was checked


# ---------------------------------------------------------------- pacing guides


def applicability(c: Condition) -> str:
    """What a guide applies to, in words: "targeted level 3", "Sig Dis new, continuing"."""
    parts = []
    if c.tiers:
        parts.append("/".join(c.tiers))
    if c.levels:
        parts.append("level " + "/".join(map(str, c.levels)))
    if c.sig_dis:
        parts.append("Sig Dis " + "/".join(c.sig_dis))
    return " ".join(parts) or "every LEA"


def _state(guide: Guide) -> str:
    if not guide.items:
        return "reference (no dates)"
    if guide.unfilled:
        return f"{len(guide.unfilled)} unfilled: not used"
    unconfirmed = len(guide.unconfirmed_items())
    if unconfirmed:
        return f"{len(guide.items)} items, {unconfirmed} with assumed dates"
    return f"{len(guide.items)} items"


@cli.command("guides")
@click.argument("source", required=False, type=EXISTING)
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table",
              show_default=True)  # fmt: skip
def guides_command(source: Path | None, fmt: str) -> None:
    """List the pacing guides: bundled, then PACING_GUIDES folders, then the guides/ folder
    beside SOURCE (a profile folder or a profile file): id, title, cohort and who the guide
    applies to, version, where it comes from."""
    from pacing.adapters.guidepath import load_guide_files

    found = load_guide_files(search_sources([source]) if source else [])
    if fmt == "json":
        doc = [
            {
                "id": f.guide.id,
                "title": f.guide.title,
                "program": f.guide.program,
                "applies_to": f.guide.applies_to.model_dump(exclude_none=True),
                "cohorts": f.guide.applies_to.cohorts,
                "version": f.guide.version,
                "origin": f.origin,
                "path": str(f.path),
                "items": len(f.guide.items),
                "unfilled": len(f.guide.unfilled),
                "unconfirmed": len(f.guide.unconfirmed_items()),
            }
            for f in found
        ]
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    click.echo(f"{'ID':22} {'COHORT':7} {'APPLIES TO':24} {'VERSION':10} {'FROM':13} STATE")
    for f in found:
        g = f.guide
        cohort = ",".join(map(str, g.applies_to.cohorts or [])) or "any"
        version = g.version or "-"
        click.echo(f"{g.id:22} {cohort:7} {applicability(g.applies_to):24} {version:10} "
                   f"{f.origin:13} {_state(g)}")  # fmt: skip
        click.echo(f"  {g.title}")
        if f.origin != "bundled":
            click.echo(f"  {f.path}")


# ---------------------------------------------------------------- pacing guide new / diff


@cli.group("guide")
def guide_group() -> None:
    """Author and review pacing guides (see README: "Add CDE's next pacing guide")."""


def _find(ref: str, within: Path | None) -> tuple[Guide, Path]:
    """A guide by file path, or by id on the search path (bundled, PACING_GUIDES, the guides/
    folder beside `within`, else in the current folder)."""
    from pacing.adapters.files import load_guide
    from pacing.adapters.guidepath import load_guide_files

    path = Path(ref)
    if path.is_file():
        return load_guide(path), path
    files = load_guide_files(search_sources([within or Path.cwd()]))
    for f in files:
        if f.guide.id == ref:
            return f.guide, f.path
    known = ", ".join(f.guide.id for f in files)
    raise click.BadParameter(f"no guide file or guide id {ref!r} (known: {known})")


@guide_group.command("new")
@click.option("--like", "like", required=True, metavar="ID|FILE",
              help="The guide to start from, e.g. targeted-l3-2024.")  # fmt: skip
@click.option("--cohort", required=True, type=click.IntRange(2000, 2100),
              help="The new guide's cohort, e.g. 2025.")  # fmt: skip
@click.option("--shift-years", type=click.IntRange(-50, 50), metavar="N",
              help="Shift every date by N years (marked assumed until confirmed) instead of "
              "leaving placeholders.")  # fmt: skip
@click.option("--id", "new_id", help="The new guide's id (default: the old one with the new "
              "cohort's year).")  # fmt: skip
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The new guide file (default: <id>.toml here; '-' for stdout). Never "
              "replaced.")  # fmt: skip
@click.option(
    "--in",
    "within",
    type=EXISTING,
    metavar="DIR",
    help="Find --like among the guides of this profile folder too (its guides/).",
)
def guide_new(like: str, cohort: int, shift_years: int | None, new_id: str | None,
              output: Path | None, within: Path | None) -> None:  # fmt: skip
    """Write the next cohort's guide from an earlier one: the same steps, items, Stepwell
    boxes, N/A rules, durations and dependencies; every CDE date (and its wording) left as a
    TODO placeholder that `pacing check` lists until you fill it from CDE's guide. With
    --shift-years N, the dates are shifted instead and shown as assumed (never escalated)
    until you set confirmed = true."""
    import re

    from pacing.adapters.files import read_toml, validate
    from pacing.core.authoring import fill_placeholders, new_guide, old_cohort, toml_text

    if shift_years == 0:
        raise click.BadParameter("0 shifts nothing (leave it out for placeholders)",
                                 param_hint="'--shift-years'")  # fmt: skip
    old, path = _find(like, within)
    data = read_toml(path)[0]
    was = old_cohort(data)
    if was is None:
        raise fail(str(path), "applies_to.cohorts", "the guide names no cohort: nothing to "
                   "roll forward (write the new guide by hand)")  # fmt: skip
    if new_id is None:
        new_id = (
            old.id.replace(str(was), str(cohort)) if str(was) in old.id else f"{old.id}-{cohort}"
        )
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", new_id) or len(new_id) > 80:
        raise click.BadParameter(f"{new_id!r} is not an id (a-z, 0-9 and dashes)",
                                 param_hint="'--id'")  # fmt: skip
    if new_id == old.id:
        raise click.BadParameter(f"the new guide needs an id other than {old.id!r}",
                                 param_hint="'--id'")  # fmt: skip
    clash = _clash(new_id, within, output)
    if clash is not None:
        raise fail(str(clash), "id", f"guide id {new_id!r} is already defined here (give "
                   "--id, or edit that file)")  # fmt: skip
    rolled = new_guide(data, new_id, cohort, shift_years)
    stdout = output is not None and str(output) == "-"
    target = None if stdout else output or Path(f"{new_id}.toml")
    made = f"pacing guide new --like {old.id} --cohort {cohort}"
    if shift_years:
        header = [
            f"Made by `{made} --shift-years {shift_years}` from {path.name}.",
            f'Every date is shifted by {shift_years} year(s) and marked date_source = "assumed":',
            "the timeline shows them as assumed dates and reminders never escalate them.",
            f"Check each against CDE's {cohort} guide, then set `confirmed = true` on the item",
            "(or once, below, for the whole guide). `pacing guide diff` compares two guides.",
        ]
    else:
        header = [
            f"Made by `{made}` from {path.name}.",
            f"Fill every TODO from CDE's {cohort} pacing guide (`pacing check FILE` lists",
            "them, one line each); the guide is not used for planning until all are filled.",
            "Wording other than dates is copied from the earlier guide: review it too.",
        ]
    header.append('Schema: guides/guide.schema.json; README: "Add CDE\'s next pacing guide".')
    text = toml_text(rolled.data, header)
    import tomllib

    where = str(target or "<stdout>")
    try:
        filled, _ = fill_placeholders(tomllib.loads(text))
        validate(Guide, filled, Path(where), text)  # a DataError here is a bug: one line
    except tomllib.TOMLDecodeError as e:
        raise fail(where, "", f"cannot be written as TOML: {e}") from None
    if target is None:
        click.echo(text, nl=False)
        return
    try:
        with target.open("x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        click.echo(f"pacing: {target} exists: not overwritten (choose another -o FILE)", err=True)
        raise SystemExit(1) from None
    if shift_years:
        click.echo(f"wrote {target} ({new_id}): {rolled.shifted} dates shifted by {shift_years} "
                   f"year(s), assumed until confirmed; next: pacing check {target}")  # fmt: skip
    else:
        click.echo(f"wrote {target} ({new_id}): {rolled.placeholders} placeholders to fill from "
                   f"CDE's {cohort} guide; next: pacing check {target}")  # fmt: skip
    click.echo("put it in the guides/ folder beside your profiles (or a PACING_GUIDES folder)")


def _clash(new_id: str, within: Path | None, output: Path | None) -> Path | None:
    from pacing.adapters.guidepath import load_guide_files

    places = [within or Path.cwd()]
    if output is not None and str(output) != "-":
        places.append(output.parent)
    try:
        files = load_guide_files(search_sources(places))
    except DataError:
        return None  # `pacing check` says what is wrong there
    return next((f.path for f in files if f.guide.id == new_id), None)


@guide_group.command("diff")
@click.argument("old")
@click.argument("new")
@click.option(
    "--in",
    "within",
    type=EXISTING,
    metavar="DIR",
    help="Find guide ids among the guides of this profile folder too (its guides/).",
)
def guide_diff(old: str, new: str, within: Path | None) -> None:
    """What changed from guide OLD to guide NEW (ids or files): items added, removed,
    re-dated, re-worded or otherwise changed, matched by their id within the guide (so
    targeted-l3-2024/step-1/x matches targeted-l3-2025/step-1/x)."""
    from pacing.core.authoring import diff_guides, diff_lines

    a, _ = _find(old, within)
    b, _ = _find(new, within)
    for line in diff_lines(a, b, diff_guides(a, b)):
        click.echo(line)
