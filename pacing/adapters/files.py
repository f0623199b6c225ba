"""Reading guides and LEA profiles from TOML files, with errors that name file, field and line."""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import stat
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pacing.core.errors import DataError, Problem
from pacing.core.guide import Condition, Guide, Item, guide_problems
from pacing.core.lea import Lea
from pacing.core.timeline import applicable_guides, date_conflicts, missing_guides

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]
MAX_BYTES = 1_000_000  # a guide or profile file; a bigger one is refused before it is parsed
MAX_DEPTH = 24  # nesting of tables and arrays ([...], {...} and dotted keys)
SHOWN_CHARS = 60  # of a rejected value in a message
# What file content can make loading raise besides DataError (the parser, validators, date
# arithmetic): always one line naming the file, never a traceback.
CONTENT_ERRORS = (
    RecursionError, OverflowError, ValueError, UnicodeError, MemoryError, TypeError, KeyError,
    IndexError, AttributeError, ArithmeticError, AssertionError, re.error,
)  # fmt: skip
# Editors' lock, backup and swap files (Emacs `.#name.toml` and `#name.toml#`, `name.toml~`,
# vim `.name.toml.swp`): never profiles.
CASELOADS_FILE = "caseloads.toml"  # a profile folder's named caseloads: not a profile
EDITOR_FILES = re.compile(r"\.#.*|.*~|\..*\.sw[a-p]|#.*#")


def data_dir(name: str) -> Path:
    """Bundled data: `pacing/_data/<name>` in a wheel, `<repo>/<name>` in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_data" / name, package.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled {name}/ not found next to {package}")


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """The file's TOML and its text. A file over MAX_BYTES, not a regular file, not UTF-8 or
    nested deeper than MAX_DEPTH is one DataError (size and nesting: before parsing)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise DataError([Problem(str(path), "", "cannot read: not a regular file")])
        if info.st_size > MAX_BYTES:
            raise DataError([_too_big(path)])
        with path.open("rb") as file:
            raw = file.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:  # grew since stat
            raise DataError([_too_big(path)])
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError([Problem(str(path), "", f"cannot read: {e}")]) from None
    deep = _too_deep(text)
    if deep:
        message = f"invalid TOML: arrays or tables nested deeper than {MAX_DEPTH} levels"
        raise DataError([Problem(str(path), "", message, deep)])
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        found = re.search(r"\(at line (\d+), column \d+\)", str(e))
        message = re.sub(r"\s*\(at line.*\)", "", str(e)) or "invalid TOML"
        line = int(found.group(1)) if found else None
        raise DataError([Problem(str(path), "", f"invalid TOML: {message}", line)]) from None
    except CONTENT_ERRORS as e:  # RecursionError, MemoryError: beyond what the scan saw
        raise DataError([Problem(str(path), "", f"invalid TOML: {_kind(e)}")]) from None
    loc = _deep_key(data)
    if loc:
        message = f"tables nested deeper than {MAX_DEPTH} levels"
        shown = dotted(loc[:MAX_DEPTH])
        raise DataError([Problem(str(path), shown, message, line_of(text, loc))])
    return data, text


def _too_big(path: Path) -> Problem:
    return Problem(str(path), "", f"larger than {MAX_BYTES:,} bytes: not read")


def _kind(error: BaseException) -> str:
    if isinstance(error, RecursionError):
        return "nested too deeply"
    if isinstance(error, MemoryError):
        return "too large"
    return f"not usable ({type(error).__name__}: {str(error)[:SHOWN_CHARS]})"


# Where nesting happens in TOML text: brackets and braces, outside strings and comments.
TOKENS = re.compile(r"\"\"\"|'''|[\"'#\[\]{}\n]")
ENDS = {
    '"""': re.compile(r'(?:[^\\]|\\.)*?"""', re.DOTALL),
    "'''": re.compile(r".*?'''", re.DOTALL),
    '"': re.compile(r'(?:[^"\\\n]|\\.)*"'),
    "'": re.compile(r"[^'\n]*'"),
    "#": re.compile(r"[^\n]*"),
}


def _too_deep(text: str) -> int | None:
    """The line where arrays and inline tables nest deeper than MAX_DEPTH (tomllib recurses
    on them), or None. A light scan: malformed text is left to the parser."""
    depth, line, at = 0, 1, 0
    while True:
        token = TOKENS.search(text, at)
        if token is None:
            return None
        kind, at = token.group(), token.end()
        if kind == "\n":
            line += 1
        elif kind in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif kind in "]}":
            depth = max(depth - 1, 0)
        else:
            end = ENDS[kind].match(text, at)
            if end is None:
                return None  # an unclosed string: the parser says where
            line += end.group().count("\n")
            at = end.end()


def _deep_key(data: dict[str, Any]) -> Loc | None:
    """The whole path to a value nested deeper than MAX_DEPTH (dotted keys nest without
    brackets), or None."""
    stack: list[tuple[Loc, Any]] = [((), data)]
    while stack:
        loc, value = stack.pop()
        if len(loc) > MAX_DEPTH:
            while isinstance(value, dict | list) and value:  # down to the value, for its line
                key, value = next(
                    iter(value.items() if isinstance(value, dict) else enumerate(value))
                )
                loc = (*loc, key)
            return loc
        if isinstance(value, dict):
            stack.extend(((*loc, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*loc, n), v) for n, v in enumerate(value))
    return None


@contextlib.contextmanager
def contained(path: Path) -> Iterator[None]:
    """Whatever file content makes loading raise becomes one DataError naming the file."""
    try:
        yield
    except DataError:
        raise
    except CONTENT_ERRORS as e:
        raise DataError([Problem(str(path), "", f"cannot be loaded: {_kind(e)}")]) from None


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
    if showable and err["type"] != "missing":
        text_of = repr(shown)
        if len(text_of) > SHOWN_CHARS:
            text_of = f"{text_of[:SHOWN_CHARS]}... ({len(text_of):,} characters)"
        if repr(shown) in message:  # a validator's own words show it: shortened there
            message = message.replace(repr(shown), text_of)
        else:
            message = f"{message} (got {text_of})"
    if len(message) > 4 * SHOWN_CHARS + 200:
        message = message[: 4 * SHOWN_CHARS + 200] + "..."
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


@lru_cache(maxsize=8)
def _key_lines(text: str) -> dict[Loc, int]:
    """Where each table and key starts, from the TOML text (a light reading, for messages)."""
    lines: dict[Loc, int] = {}
    table: Loc = ()
    arrays: dict[Loc, int] = {}
    latest: dict[Loc, Loc] = {}  # an array's name -> its last element ("items" -> items[3])
    for number, raw in enumerate(text.split("\n"), start=1):  # lines as the parser counts
        line = raw.strip()
        header = HEADER.fullmatch(line)
        if header and header.group(2).strip():
            name: Loc = tuple(_split_key(header.group(2).strip()))
            path = _in_element(name, latest)  # [items.series]: the last [[items]]'s
            if header.group(1) == "[[":
                arrays[path] = arrays.get(path, -1) + 1  # the n-th [[table]] of that name
                path = (*path, arrays[path])
                latest[name] = path
            table = path
            lines.setdefault(table, number)
            continue
        assignment = KEY.match(line)
        if assignment and not line.startswith("#"):
            lines.setdefault((*table, *_split_key(assignment.group(1))), number)
    return lines


def _in_element(name: Loc, latest: dict[Loc, Loc]) -> Loc:
    """A table header's path with the array elements it is in: `items.when` after the fourth
    `[[items]]` is items[3].when."""
    for end in range(len(name) - 1, 0, -1):
        element = latest.get(name[:end])
        if element is not None:
            return (*element, *name[end:])
    return name


# (linear patterns: no nested or adjacent repetition that could backtrack on a long line)
HEADER = re.compile(r"(\[\[?)([^\]]*)\]\]?(\s*#.*)?")
# a key: bare or quoted parts joined by dots (linear: no nested repetition to backtrack in)
KEY = re.compile(
    r'((?:"[^"\n]*"|[A-Za-z0-9_-]+)(?:[ \t]*\.[ \t]*(?:"[^"\n]*"|[A-Za-z0-9_-]+))*)\s*='
)


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
    """A guide file, validated; its placeholders ("TODO ...", see pacing.core.authoring) are
    kept on the guide (`unfilled`): it loads, and is not used for planning until filled."""
    from pacing.core.authoring import fill_placeholders

    with contained(path):
        data, text = read_toml(path)
        data, unfilled = fill_placeholders(data)
        guide = validate(Guide, data, path, text)
        if unfilled:
            guide = guide.with_unfilled(unfilled)
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


# ---------------------------------------------------------------- guides that do not load


@dataclass(frozen=True)
class SkippedGuide:
    """A guide file on the search path that does not load (a typo in next year's guide): left
    out of planning; only the LEAs it would apply to are refused."""

    path: Path
    problems: tuple[Problem, ...]
    applies_to: Condition | None  # what the file says it applies to; None: that is unreadable

    @classmethod
    def of(cls, path: Path, problems: Sequence[Problem]) -> SkippedGuide:
        return cls(path, tuple(problems), _applies_to(path))

    def concerns(self, lea: Lea, guides: Sequence[Guide]) -> bool:
        """Whether the LEA would be planned with it: it applies to the LEA; or, when what it
        applies to cannot be read, one of the LEA's programs has no guide for its cohort."""
        if self.applies_to is not None:
            return self.applies_to.matches(lea)
        return bool(missing_guides(guides, lea))

    @property
    def warning(self) -> str:
        """One line: the file, its first problem, and what skipping it means."""
        more = len(self.problems) - 1
        first = f"{self.problems[0]}" + (f" (and {more} more)" if more else "")
        return (
            f"{first}: guide skipped (not valid); the LEAs it applies to are refused until it "
            "is fixed (`pacing check`)"
        )


@dataclass(frozen=True)
class GuideSet:
    """The guides of a search path that load, and the guide files skipped."""

    guides: tuple[Guide, ...]
    skipped: tuple[SkippedGuide, ...] = ()

    def for_lea(self, lea: Lea) -> tuple[Guide, ...]:
        """The guides to plan the LEA with; a DataError naming the skipped guide file(s) it
        would be planned with."""
        bad = [s for s in self.skipped if s.concerns(lea, self.guides)]
        if bad:
            raise DataError([p for s in bad for p in s.problems])
        return self.guides


def usable_guides(sources: Sequence[Path]) -> GuideSet:
    """The guides for profiles in `sources` (bundled, PACING_GUIDES, the guides/ beside them):
    a guide file that does not load is skipped, not an error for every LEA. Still errors: a
    PACING_GUIDES folder that is not there, and one guide id defined in two files (which of
    them plans an LEA cannot be told)."""
    from pacing.adapters.guidepath import guide_folders, load_guides_keeping

    guide_folders(sources)  # raises for a PACING_GUIDES folder that is not there
    files, problems = load_guides_keeping(sources)
    by_file: dict[str, list[Problem]] = {}
    for problem in problems:
        by_file.setdefault(problem.file, []).append(problem)
    clashes = [p for name, found in by_file.items() if _loads(Path(name)) for p in found]
    if clashes:  # the file loads: its problem is its id, also another file's
        raise DataError(clashes)
    skipped = tuple(SkippedGuide.of(Path(name), found) for name, found in by_file.items())
    return GuideSet(tuple(f.guide for f in files), skipped)


def _loads(path: Path) -> bool:
    try:
        load_guide(path)
    except DataError:
        return False
    return True


def _applies_to(path: Path) -> Condition | None:
    """What a guide file that does not load says it applies to, if that much can be read (no
    `applies_to`: every LEA, as for a valid guide)."""
    try:
        data, _ = read_toml(path)
        return Condition.model_validate(data.get("applies_to", {}))
    except (DataError, ValidationError, *CONTENT_ERRORS):
        return None


NOT_A_PROFILE = "not an LEA profile (no [monitoring] table)"


def load_lea(path: Path, guides: Sequence[Guide] | GuideSet | None = None) -> Lea:
    """A profile, validated against the guides it is planned with (default: those of its
    search path, skipping guide files that do not load unless the LEA would use one)."""
    with contained(path):
        data, text = read_toml(path)
        if not is_profile(data):  # a guide or a stray TOML: one line, not its fields' errors
            raise DataError([Problem(str(path), "", NOT_A_PROFILE)])
        lea = validate(Lea, data, path, text)
    if guides is None:  # the bundled guides, PACING_GUIDES and the guides/ beside the profile
        guides = usable_guides([path])
    if isinstance(guides, GuideSet):
        guides = guides.for_lea(lea)
    with contained(path):
        chosen = applicable_guides(guides, lea)
        known = known_ids(chosen)
        problems = [
            Problem(str(path), dotted((section, key)), message, line_of(text, (section, key)))
            for section, key, message in [*_unknown_items(lea, known), *_periods(lea, chosen)]
        ]
        if not problems:  # dates only once every item they name is known
            problems = [
                Problem(str(path), dotted(loc), message, line_of(text, loc))
                for loc, message in date_conflicts(guides, lea)
            ]
    if problems:
        raise DataError(problems)
    return lea


def _periods(lea: Lea, guides: Iterable[Guide]) -> Iterable[tuple[str, str, str]]:
    """A profile date that starts a guide's period must not fall after its end."""
    from pacing.core.dates import long_date, period_bounds

    start = lea.monitoring.cceis_services_start
    for guide in guides:
        for period in guide.periods.values():
            if start and period.profile_start == "cceis_services_start":
                end = period_bounds(period, lea)[1]
                if start > end:
                    message = f"after the end of the {period.title} ({long_date(end)})"
                    yield "monitoring", "cceis_services_start", message
                    return


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
    """The `*.toml` files of a folder (or the file itself), leaving out what is no profile:
    dangling symlinks (Emacs' `.#name.toml` lock is one), editor lock, backup and swap files,
    and whatever is not a regular file (a FIFO would block the reader)."""
    if not path.is_dir():
        return [path]
    found = []
    for candidate in sorted(path.glob("*.toml")):
        if EDITOR_FILES.fullmatch(candidate.name) or candidate.name == CASELOADS_FILE:
            continue
        try:
            if not stat.S_ISREG(candidate.stat().st_mode):  # follows symlinks
                continue
        except OSError:  # dangling symlink, gone since the listing, unreadable
            continue
        found.append(candidate)
    return found
