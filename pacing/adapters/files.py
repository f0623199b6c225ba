"""Reading guides and LEA profiles from TOML files, with errors that name file, field and line."""

from __future__ import annotations

import os
import pickle
import re
import tomllib
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pacing.core.errors import DataError, Problem
from pacing.core.guide import Guide, Item, guide_problems
from pacing.core.lea import Lea
from pacing.core.timeline import applicable_guides

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]


def data_dir(name: str) -> Path:
    """Bundled data: `pacing/_data/<name>` in a wheel, `<repo>/<name>` in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_data" / name, package.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled {name}/ not found next to {package}")


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError([Problem(str(path), "", f"cannot read: {e}")]) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        found = re.search(r"\(at line (\d+), column \d+\)", str(e))
        message = re.sub(r"\s*\(at line.*\)", "", str(e)) or "invalid TOML"
        line = int(found.group(1)) if found else None
        raise DataError([Problem(str(path), "", f"invalid TOML: {message}", line)]) from None


def validate(model: type[M], data: dict[str, Any], path: Path, text: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise DataError([_problem(path, text, err["loc"], err) for err in e.errors()]) from None


def _problem(path: Path, text: str, loc: Loc, err: Any) -> Problem:
    field = dotted(loc)
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "string_pattern_mismatch" and field.endswith("email"):
        message = "not an email address"
    shown = err.get("input")
    showable = isinstance(shown, str | int | float) and not isinstance(shown, bool)
    if showable and repr(shown) not in message and err["type"] != "missing":
        message = f"{message} (got {shown!r})"
    return Problem(str(path), field, message, line_of(text, loc))


def dotted(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad key: the key itself is named already
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
            out += f".{key}" if out else key
    return out


@cache
def _key_lines(text: str) -> dict[Loc, int]:
    """Where each table and key starts, from the TOML text (a light reading, for messages)."""
    lines: dict[Loc, int] = {}
    table: Loc = ()
    arrays: dict[Loc, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.fullmatch(r"(\[\[?)\s*([^\]]+?)\s*\]\]?(\s*#.*)?", line)
        if header:
            path: Loc = tuple(_split_key(header.group(2)))
            if header.group(1) == "[[":
                arrays[path] = arrays.get(path, -1) + 1  # the n-th [[table]] of that name
                path = (*path, arrays[path])
            table = path
            lines.setdefault(table, number)
            continue
        assignment = re.match(r'((?:"[^"]*"|[A-Za-z0-9_.-]+|\s)+?)\s*=', line)
        if assignment and not line.startswith("#"):
            lines.setdefault((*table, *_split_key(assignment.group(1))), number)
    return lines


def _split_key(key: str) -> list[str]:
    return [p.strip().strip('"') for p in re.findall(r'"[^"]*"|[^.]+', key)]


def line_of(text: str, loc: Loc) -> int | None:
    lines = _key_lines(text)
    for end in range(len(loc), 0, -1):
        found = lines.get(tuple(loc[:end]))
        if found:
            return found
    return None


def load_guide(path: Path) -> Guide:
    data, text = read_toml(path)
    guide = validate(Guide, data, path, text)
    problems = [
        Problem(str(path), dotted(loc), message, line_of(text, loc))
        for loc, message in guide_problems(guide)
    ]
    if problems:
        raise DataError(problems)
    return guide


@cache
def bundled_guides() -> tuple[Guide, ...]:
    """The bundled guides, validated once per version of their files: the validated models are
    kept in the user cache dir, keyed by pacing's version and the files' names, sizes and
    modification times (a cold start then skips parsing and validation)."""
    files = sorted(data_dir("guides").glob("*.toml"))
    cached = _guide_cache(files)
    try:
        found = pickle.loads(cached.read_bytes())
        if isinstance(found, tuple) and all(isinstance(g, Guide) for g in found):
            return found
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError):
        pass
    guides = tuple(load_guide(p) for p in files)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(pickle.dumps(guides, protocol=pickle.HIGHEST_PROTOCOL))
        partial.replace(cached)
    except OSError:  # a read-only cache dir only costs speed
        pass
    return guides


def _guide_cache(files: Sequence[Path]) -> Path:
    import hashlib

    from pacing import __version__
    from pacing.core import guide, lea

    models = [Path(guide.__file__), Path(lea.__file__)]  # a changed model invalidates it too
    stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in [*files, *models]]
    key = hashlib.sha256(repr((__version__, stats)).encode()).hexdigest()[:24]
    folder = os.environ.get("PACING_CACHE_DIR")
    if not folder:
        import platformdirs

        folder = platformdirs.user_cache_dir("pacing", appauthor=False)
    return Path(folder) / f"guides-{key}.pickle"


def load_lea(path: Path, guides: Sequence[Guide] | None = None) -> Lea:
    data, text = read_toml(path)
    lea = validate(Lea, data, path, text)
    guides = bundled_guides() if guides is None else guides
    known = known_ids(applicable_guides(guides, lea))
    problems = [
        Problem(str(path), dotted((section, key)), message, line_of(text, (section, key)))
        for section, key, message in _unknown_items(lea, known)
    ]
    if problems:
        raise DataError(problems)
    return lea


def known_ids(guides: Iterable[Guide]) -> dict[str, Item]:
    """Item ids an override or a done mark may name (a series id and its occurrences)."""
    return {item_id: item for g in guides for item_id, item in g.item_ids().items()}


def _unknown_items(lea: Lea, known: dict[str, Item]) -> Iterable[tuple[str, str, str]]:
    for section, keys in (("overrides", lea.overrides), ("done", lea.done)):
        for key in keys:
            series = known.get(key.rsplit("/", 1)[0])
            if key not in known and not (series and series.series):
                yield section, key, "unknown item for this LEA (see `pacing timeline`)"
    for key, over in lea.overrides.items():
        item = known.get(key)
        if item and not item.series and (over.rrule or over.dates):
            yield "overrides", key, "'rrule' and 'dates' apply to a series, not to one item"


def is_profile(data: dict[str, Any]) -> bool:
    return "monitoring" in data or "cds" in data


def check_file(path: Path) -> Guide | Lea:
    data, _ = read_toml(path)
    return load_lea(path) if is_profile(data) else load_guide(path)


def profiles_in(path: Path) -> list[Path]:
    return sorted(path.glob("*.toml")) if path.is_dir() else [path]
