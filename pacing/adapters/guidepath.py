"""Where guides come from: the bundled guides, then every folder in `PACING_GUIDES` (a path list,
`os.pathsep`-separated), then the `guides/` folder beside the profiles in use (`DIR/guides/`
for a folder of profiles, the profile's own folder's `guides/` for one file).

Every guide knows where it came from; one guide id defined twice on a search path is an error
naming both files. Guides outside the package are validated once per version of their content
(a changed file is read again, an unchanged one is not).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pacing.adapters.files import (
    EDITOR_FILES,
    bundled_guides,
    data_dir,
    line_of,
    load_guide,
    read_toml,
)
from pacing.core.errors import DataError, Problem
from pacing.core.guide import Guide

ENV = "PACING_GUIDES"
GUIDES = "guides"  # the folder of local guides beside the profiles
Origin = Literal["bundled", "PACING_GUIDES", "local"]
MAX_CACHED = 256  # validated guides kept per process (by path and content)


@dataclass(frozen=True)
class GuideFile:
    guide: Guide
    path: Path
    origin: Origin

    @property
    def where(self) -> str:
        """Where it came from, for `pacing guides`: "bundled", "PACING_GUIDES: <path>",
        "local: <path>"."""
        return "bundled" if self.origin == "bundled" else f"{self.origin}: {self.path}"


def local_folder(source: Path) -> Path:
    """The guides folder beside `source` (a profile folder, or one profile file)."""
    return source / GUIDES if source.is_dir() else source.parent / GUIDES


def guide_folders(
    sources: Iterable[Path] = (), bundled: Path | None = None, env: bool = True
) -> list[tuple[Path, Origin]]:
    """The search path, first to last, each folder once. A folder named in PACING_GUIDES that
    does not exist is an error (`env=False`: PACING_GUIDES left out); a missing local
    `guides/` folder is just not there."""
    folders: list[tuple[Path, Origin]] = [(bundled or data_dir("guides"), "bundled")]
    for part in os.environ.get(ENV, "").split(os.pathsep) if env else ():
        if not part.strip():
            continue
        folder = Path(part).expanduser()
        if not folder.is_dir():
            raise DataError([Problem(ENV, str(folder), "not a folder (PACING_GUIDES lists "
                                     "folders of guide files)")])  # fmt: skip
        folders.append((folder, "PACING_GUIDES"))
    folders += [(local_folder(s), "local") for s in sources]
    seen: set[Path] = set()
    out: list[tuple[Path, Origin]] = []
    for folder, origin in folders:
        try:
            key = folder.resolve()
        except OSError:
            key = folder.absolute()
        if key in seen or (origin == "local" and not folder.is_dir()):
            continue
        seen.add(key)
        out.append((folder, origin))
    return out


def guide_paths(folder: Path) -> list[Path]:
    """A folder's guide files: regular `*.toml` files, no editor locks, backups or swap files
    and no dangling symlinks."""
    found = []
    for candidate in sorted(folder.glob("*.toml")):
        if EDITOR_FILES.fullmatch(candidate.name):
            continue
        try:
            if not stat.S_ISREG(candidate.stat().st_mode):  # follows symlinks
                continue
        except OSError:
            continue
        found.append(candidate)
    return found


def stamp(sources: Iterable[Path] = (), bundled: Path | None = None) -> tuple[object, ...]:
    """What changes when a guide on the search path is added, removed or edited (for the feed
    server and the reminder daemon to look at cheaply)."""
    out: list[object] = [os.environ.get(ENV, "")]
    try:
        folders = guide_folders(sources, bundled)
    except DataError:  # a PACING_GUIDES folder that is not there (yet): said when loading
        folders = guide_folders(sources, bundled, env=False)
    for folder, origin in folders:
        for path in guide_paths(folder):
            try:
                st = path.stat()
            except OSError:
                continue
            out.append((origin, str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


_validated: dict[tuple[str, str], Guide] = {}


def _load(path: Path) -> Guide:
    """One guide file, validated once per content (a changed file is read again)."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return load_guide(path)  # says why, as one line
    key = (str(path.absolute()), digest)
    found = _validated.get(key)
    if found is None:
        found = load_guide(path)
        if len(_validated) >= MAX_CACHED:
            _validated.pop(next(iter(_validated)))
        _validated[key] = found
    return found


def load_guide_files(
    sources: Sequence[Path] = (), bundled: Path | None = None
) -> tuple[GuideFile, ...]:
    """Every guide on the search path of `sources`, in search-path order. Bad guide files and
    ids defined twice are one DataError (each problem names its file; a clash names both)."""
    files: list[GuideFile] = []
    problems: list[Problem] = []
    for folder, origin in guide_folders(sources, bundled):
        for _, found in _folder(folder, origin, bundled):
            if isinstance(found, DataError):
                problems += found.problems
            else:
                files.append(found)
    problems += duplicate_problems(files)
    if problems:
        raise DataError(problems)
    return tuple(files)


def load_guides_keeping(
    sources: Sequence[Path],
    bundled: Path | None = None,
    previous: dict[str, GuideFile] | None = None,
) -> tuple[tuple[GuideFile, ...], list[Problem]]:
    """As `load_guide_files`, for the feed server and the reminder daemon: one bad guide
    never stops the others. A file that does not load is reported and its last good version
    (in `previous`, by path; updated here) is kept, or it is left out; of an id defined twice
    the first on the search path is kept."""
    kept = previous if previous is not None else {}
    problems: list[Problem] = []
    try:
        folders = guide_folders(sources, bundled)
    except DataError as e:  # a PACING_GUIDES folder that is not there
        problems += e.problems
        folders = guide_folders(sources, bundled, env=False)
    files: list[GuideFile] = []
    for folder, origin in folders:
        for path, found in _folder(folder, origin, bundled):
            if isinstance(found, DataError):
                problems += found.problems
                if str(path) in kept:
                    files.append(kept[str(path)])
                continue
            kept[str(path)] = found
            files.append(found)
    clashes = duplicate_problems(files)
    problems += clashes
    clashing = {p.file for p in clashes}
    return tuple(f for f in files if str(f.path) not in clashing), problems


def _folder(
    folder: Path, origin: Origin, bundled: Path | None
) -> Iterator[tuple[Path, GuideFile | DataError]]:
    """Each guide file of a folder, loaded, or the error that it is not a valid guide."""
    if origin == "bundled" and bundled is None:  # validated once, kept in the user cache
        listed = sorted(folder.glob("*.toml"))  # as bundled_guides() lists them
        for guide, path in zip(bundled_guides(), listed, strict=True):
            yield path, GuideFile(guide, path, origin)
        return
    for path in guide_paths(folder):
        try:
            yield path, GuideFile(_load(path), path, origin)
        except DataError as e:
            yield path, e


def duplicate_problems(files: Iterable[GuideFile]) -> list[Problem]:
    first: dict[str, GuideFile] = {}
    problems = []
    for found in files:
        before = first.setdefault(found.guide.id, found)
        if before is found or _same(before.path, found.path):
            continue
        line = None
        with contextlib.suppress(DataError):
            line = line_of(read_toml(found.path)[1], ("id",))
        problems.append(Problem(str(found.path), "id", f"guide id {found.guide.id!r} is also "
                                f"defined in {before.path} ({before.origin})", line))  # fmt: skip
    return problems


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def guides_for(sources: Sequence[Path] = (), bundled: Path | None = None) -> tuple[Guide, ...]:
    """The guides a profile (or a folder of them) is planned with."""
    return tuple(f.guide for f in load_guide_files(sources, bundled))
