"""A profile folder's caseloads: derived from its profiles, plus `caseloads.toml` when present."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pacing.adapters.files import CASELOADS_FILE, contained, line_of, read_toml, validate
from pacing.core.caseload import Caseload, CaseloadsFile, CaseloadSpec, caseloads
from pacing.core.errors import DataError, Problem
from pacing.core.lea import Lea


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


def folder_caseloads(folder: Path, leas: Sequence[Lea]) -> list[Caseload]:
    """Every caseload of the folder's profiles; DataError naming caseloads.toml's fields for an
    LEA id with no profile or a slug taken by another contact."""
    named = read_named(folder)
    loads, problems = caseloads(leas, named)
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


def _loc(field: str) -> tuple[str | int, ...]:
    """`caseload.east.leas[2]` -> ("caseload", "east", "leas", 2)."""
    return tuple(
        int(p[1:-1]) if p.startswith("[") else p for p in re.findall(r"\[\d+\]|[^.\[]+", field)
    )
