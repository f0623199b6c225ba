"""A profile folder's caseloads: derived from its profiles, plus `caseloads.toml` when present."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pacing.adapters.files import CASELOADS_FILE, contained, line_of, read_toml, validate
from pacing.core.caseload import Caseload, CaseloadsFile, CaseloadSpec, keyed_caseloads
from pacing.core.caseload import Problem as CaseloadProblem
from pacing.core.errors import DataError, Problem
from pacing.core.lea import Lea

if TYPE_CHECKING:
    from pacing.adapters.state import State

KEEP_TRIES = 3  # reading the stored slugs again when another instance kept some first


def caseloads_file(folder: Path) -> Path:
    return folder / CASELOADS_FILE


def read_named(folder: Path) -> dict[str, CaseloadSpec]:
    """The named caseloads of `folder/caseloads.toml` ({} without the file)."""
    path = caseloads_file(folder)
    if not folder.is_dir() or not path.exists():
        return {}
    with contained(path):
        data, text = read_toml(path)
        return dict(validate(CaseloadsFile, data, path, text).caseload)


def folder_caseloads(
    folder: Path, leas: Sequence[Lea], state: State | None = None
) -> list[Caseload]:
    """Every caseload of the folder's profiles; DataError naming caseloads.toml's fields for an
    LEA id with no profile or a slug taken by another contact. With the state store, each
    email's slug is the one it was given the first time it was seen (and an email seen now for
    the first time gets one, kept there); without, the slugs are as if every email were new."""
    named = read_named(folder)
    loads, problems = _keyed(leas, named, state)
    if problems:
        path = caseloads_file(folder)
        text = path.read_text(encoding="utf-8", errors="replace")
        raise DataError(
            [
                Problem(str(path), field, message, line_of(text, _loc(field)))
                for field, message in problems
            ]
        )
    return loads


def stored_state() -> State | None:
    """The default state store when it exists (for read-only commands: never one created)."""
    from pacing.adapters.state import State
    from pacing.adapters.statedir import database_exists

    return State() if database_exists() else None


def _keyed(
    leas: Sequence[Lea], named: dict[str, CaseloadSpec], state: State | None
) -> tuple[list[Caseload], list[CaseloadProblem]]:
    """The caseloads with the stored slugs; the slugs given now are kept unless the named ones
    have problems (then nothing is served from them). Another instance giving the same email or
    slug first: read again, and take its."""
    known = state.caseload_slugs() if state else {}
    for _ in range(KEEP_TRIES):
        loads, problems, new = keyed_caseloads(leas, named, known)
        if state is None or not new or problems or state.keep_caseload_slugs(new):
            break
        known = state.caseload_slugs()
    return loads, problems


def _loc(field: str) -> tuple[str | int, ...]:
    """`caseload.east.leas[2]` -> ("caseload", "east", "leas", 2)."""
    return tuple(
        int(p[1:-1]) if p.startswith("[") else p for p in re.findall(r"\[\d+\]|[^.\[]+", field)
    )
