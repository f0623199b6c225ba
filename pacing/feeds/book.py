"""The feed book: every LEA profile in a folder, rendered once, re-rendered when a profile, a
guide, the date, a done mark or an opt-out changes, and kept at its last good version while a
profile fails to validate."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import format_datetime
from functools import cache
from pathlib import Path

from pacing.adapters.files import CASELOADS_FILE, data_dir, load_lea, profiles_in
from pacing.adapters.guidepath import GuideFile, load_guides_keeping
from pacing.adapters.guidepath import stamp as guide_stamp
from pacing.adapters.state import State
from pacing.cache import ByteCache, MiB
from pacing.core.audience import Audience, audience
from pacing.core.entry import DoneMark
from pacing.core.errors import DataError, Problem, brief, fail
from pacing.core.guide import Guide
from pacing.core.lea import Lea
from pacing.core.timeline import Timeline, expand
from pacing.export.ics import FeedEvent, feed_events, revise, to_ics
from pacing.feeds.caseloads import CaseloadDesk

log = logging.getLogger("pacing.feeds")
ALL = "_all"  # the aggregate feed's id: never a valid LEA slug
FEED_CACHE_BYTES = 256 * MiB  # rendered feeds (plain and gzip) kept in memory, least recent out
TOKEN_CACHE_BYTES = 4 * MiB  # expected tokens of known LEAs (never of ids that are not in the book)


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: a render is one object
class Rendered:
    body: bytes
    gzipped: bytes
    etag: str
    last_modified: dt.datetime
    http_date: str

    @classmethod
    def of(cls, body: bytes, last_modified: dt.datetime) -> Rendered:
        digest = hashlib.sha256(body).hexdigest()[:32]
        http_date = format_datetime(last_modified.astimezone(dt.UTC), usegmt=True)
        return cls(body, gzip.compress(body, mtime=0), f'"{digest}"', last_modified, http_date)

    @property
    def gz_etag(self) -> str:
        return self.etag[:-1] + '-gz"'

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzipped) + 512


STARTED = Rendered(b"", b"", '""', dt.datetime.min.replace(tzinfo=dt.UTC), "")  # a render under way


@dataclass(eq=False)
class BookEntry:
    """One LEA of the book: its last good profile and timeline (a new entry for every change of
    the profile, a guide, a done mark, an opt-out or the date). Its feed is rendered on first
    request and kept in the book's render cache for this entry."""

    path: Path
    stamp: tuple[float, int]
    lea: Lea
    timeline: Timeline
    # who turned the LEA's reminders off from an email (address -> aware instant), read with
    # the done marks: the pages and /healthz say whom the reminders reach (`audience`)
    opted_out: Mapping[str, dt.datetime] = field(default_factory=dict)
    audience: Audience = field(init=False)

    def __post_init__(self) -> None:
        self.audience = audience(self.lea, self.opted_out)


def public_problem(path: Path, error: Exception) -> str:
    """A profile's error as /healthz may show it (no token guards it): the file's name in its
    folder and the fields at fault, never the rejected value, a key a user typed (it may be a
    pasted secret) or an absolute path. The full error is in the log and in `pacing check`."""
    if not isinstance(error, DataError):
        return f"{path.name}: cannot be planned"
    fields = dict.fromkeys(_schema_field(p.field) for p in error.problems)
    shown = ", ".join(f for f in fields if f) or "not valid TOML or not readable"
    return f"{path.name}: {shown}"


def _schema_field(field: str) -> str:
    """`overrides."<an item id>".due` -> `overrides.<key>.due`: only the schema's own names
    and list positions are shown."""
    parts = re.findall(r'\[\d+\]|"[^"]*"|[^.\["]+', field)
    known = _field_names()
    return ".".join(
        p if p in known or re.fullmatch(r"\[\d+\]", p) else "<key>" for p in parts
    ).replace(".[", "[")


@cache
def _field_names() -> frozenset[str]:
    from pacing.core.guide import Guide

    names: set[str] = set()
    for model in (Lea, Guide):
        schema = model.model_json_schema(by_alias=True)
        for table in [schema, *schema.get("$defs", {}).values()]:
            names.update(table.get("properties", {}))
    return frozenset(names)


class FeedBook:
    def __init__(
        self,
        folder: Path,
        state: State,
        now: Callable[[], dt.datetime],
        secrets: Sequence[bytes],
        guide_dir: Path | None = None,
    ) -> None:
        self.folder = folder
        self.state = state
        self.now = now
        self.secrets = list(secrets)
        # the bundled guides' folder; then PACING_GUIDES and the folder's own guides/
        self.guide_dir = guide_dir or data_dir("guides")
        self.entries: dict[str, BookEntry] = {}
        self.errors: dict[str, str] = {}  # profile path -> its current error
        # profile path -> what /healthz may say of it: the file's name and the fields, never a
        # value or the folder's path
        self.problems: dict[str, str] = {}
        self._failed: dict[str, tuple[tuple[float, int], int]] = {}  # path -> stamp, guides
        self._guide_version = 0
        self._guides: tuple[Guide, ...] = ()
        self._guide_stamp: tuple[object, ...] = ()
        self._guide_files: dict[str, GuideFile] = {}  # path -> its last good version
        self._guide_errors: dict[str, str] = {}  # guide path -> its error (also in `errors`)
        self._today: dict[str, dt.date] = {}
        self._aggregate: Rendered | None = None  # refresh sets None when an LEA changes
        self._last_aggregate: Rendered | None = None  # served while a new one renders
        self._by_path: dict[str, str] = {}  # profile path -> LEA id
        self._tokens: ByteCache[str, list[bytes]] = ByteCache(TOKEN_CACHE_BYTES)
        self._renders: ByteCache[str, tuple[BookEntry, Rendered]] = ByteCache(FEED_CACHE_BYTES)
        self._revising = threading.Lock()  # one read-revise-save of a calendar's revisions at once
        self.caseloads = CaseloadDesk(self)
        self._plan_counter = -1

    # -------------------------------------------------------------- tokens

    def token(self, lea_id: str, secret: bytes | None = None) -> str:
        key = secret if secret is not None else self.secrets[0]
        return hmac.new(key, f"pacing-feed:{lea_id}".encode(), hashlib.sha256).hexdigest()[:32]

    def token_ok(self, lea_id: str, token: str) -> bool:
        """Constant-time against every accepted secret (the current one and, while rotating,
        the previous one). Only the tokens of LEAs in the book are kept: an unknown id is
        looked up first and never cached (the same work and the same answer, no memory)."""
        expected = self._tokens.get(lea_id)
        if expected is None:
            expected = [self.token(lea_id, secret).encode() for secret in self.secrets]
            if lea_id == ALL or lea_id in self.entries or lea_id in self.caseloads.ids:
                self._tokens.put(lea_id, expected, 2 * len(lea_id) + 100 * len(expected) + 200)
        given = token.encode("utf-8", "replace")
        found = False
        for candidate in expected:
            found |= hmac.compare_digest(candidate, given)
        return found

    # -------------------------------------------------------------- refresh

    def refresh(self) -> None:
        """Pick up changed guides, profiles and dates; keep the last good feed on errors. Each
        profile loads and plans on its own: a bad, vanishing or unreadable file is recorded
        (log, `errors`, `problems`) and the others go on. Only the state store failing stops
        a refresh (it is everyone's)."""
        guides_changed = self._load_guides()
        counter = self.state.plan_counter()  # `pacing done` / `undo` bump it
        guides_changed |= counter != self._plan_counter
        self._plan_counter = counter
        try:
            paths = profiles_in(self.folder) if self.folder.exists() else []
        except OSError as e:  # the folder itself: keep every last good feed
            log.error("cannot list %s, serving the last good feeds: %s", self.folder, brief(e))
            return
        current = {str(p) for p in paths} | self._guide_errors.keys()  # bad guides stay said
        for lea_id, entry in list(self.entries.items()):
            if str(entry.path) not in current:
                del self.entries[lea_id]
                self._by_path.pop(str(entry.path), None)
                self._aggregate = None
        self.errors = {p: e for p, e in self.errors.items() if p in current}
        self.problems = {p: e for p, e in self.problems.items() if p in current}
        self._failed = {p: f for p, f in self._failed.items() if p in current}
        for path in paths:
            self._refresh_one(path, guides_changed)
        self.caseloads.update()

    def kind_of(self, path: str) -> str:
        """What a file with a problem is: "guide", "caseloads file" or "profile"."""
        if path in self._guide_errors:
            return "guide"
        return "caseloads file" if Path(path).name == CASELOADS_FILE else "profile"

    def _load_guides(self) -> bool:
        """The guides on the folder's search path (bundled, PACING_GUIDES, `folder/guides/`),
        read again when one is added, removed or edited. A bad guide keeps its last good
        version (or is left out) and is named in the log, `errors` and /healthz; the others
        are used."""
        try:
            stamp = guide_stamp([self.folder], self.guide_dir)
        except OSError as e:  # a guide vanished while looking: the next look sees
            log.error("cannot read the guides, keeping the last good ones: %s", brief(e))
            return False
        if stamp == self._guide_stamp:
            return False
        self._guide_stamp = stamp
        files, problems = load_guides_keeping([self.folder], self.guide_dir, self._guide_files)
        errors: dict[str, list[Problem]] = {}
        for problem in problems:
            errors.setdefault(problem.file, []).append(problem)
        for path in self._guide_errors.keys() - errors.keys():
            self.errors.pop(path, None)
            self.problems.pop(path, None)
        for path, found in errors.items():
            error = DataError(found)
            if self._guide_errors.get(path) != str(error):
                log.error("guide error, keeping its last good version: %s", error)
            self.errors[path] = str(error)
            self.problems[path] = public_problem(Path(path), error)
        self._guide_errors = {path: str(DataError(found)) for path, found in errors.items()}
        guides = tuple(f.guide for f in files)
        if guides == self._guides:
            return False
        self._guides = guides
        self._guide_version += 1
        return True

    @staticmethod
    def _stat(path: Path) -> tuple[float, int]:
        st = path.stat()
        return st.st_mtime, st.st_size

    def _refresh_one(self, path: Path, guides_changed: bool) -> None:
        old = self.entries.get(self._by_path.get(str(path), ""))
        try:
            stamp = self._stat(path)
        except OSError:  # gone since the listing: the next refresh forgets it
            return
        if old and not guides_changed and old.stamp == stamp and not self._new_day(old.lea):
            return
        if not guides_changed and self._failed.get(str(path)) == (stamp, self._guide_version):
            return  # failed as it is: not read again until it (or a guide) changes
        try:
            lea = load_lea(path, self._guides)
            if lea.id in self.entries and self.entries[lea.id].path != path:
                raise fail(str(path), "id", f"{lea.id!r} is also the id of another profile")
        except Exception as e:  # load_lea maps content to DataError; anything else, the same
            self._failure(path, stamp, e)
            return
        marks = self.state.done_marks(lea.id)  # the state store failing fails the refresh
        opted_out = self.state.opted_out(lea.id)  # changes bump the plan counter, as marks do
        try:
            entry = self._expand(path, stamp, lea, marks, opted_out)
        except Exception as e:  # planning this profile failed: the others go on
            self._failure(path, stamp, e)
            return
        self.errors.pop(str(path), None)
        self.problems.pop(str(path), None)
        self._failed.pop(str(path), None)
        if old and old.lea.id != lea.id:
            del self.entries[old.lea.id]
        self.entries[lea.id] = entry
        self._by_path[str(path)] = lea.id
        self._aggregate = None
        log.info("planned %s (%d items)", lea.id, len(entry.timeline.items))

    def _failure(self, path: Path, stamp: tuple[float, int], error: Exception) -> None:
        """Record a profile's failure: in full for the log and `errors` (as `pacing check`
        says it), by file name and field only for `problems` (what /healthz shows)."""
        if isinstance(error, DataError):
            message = str(error)
        else:
            message = f"{path}: cannot be planned: {type(error).__name__}: {brief(error)}"
        if self.errors.get(str(path)) != message:
            log.error("profile error, serving its last good feed: %s", message)
        self.errors[str(path)] = message
        self.problems[str(path)] = public_problem(path, error)
        self._failed[str(path)] = (stamp, self._guide_version)

    def _new_day(self, lea: Lea) -> bool:
        from zoneinfo import ZoneInfo

        return self.now().astimezone(ZoneInfo(lea.timezone)).date() != self._today.get(lea.id)

    def _expand(
        self, path: Path, stamp: tuple[float, int], lea: Lea, marks: Mapping[str, DoneMark],
        opted_out: Mapping[str, dt.datetime] | None = None,
    ) -> BookEntry:  # fmt: skip
        from zoneinfo import ZoneInfo

        today = self.now().astimezone(ZoneInfo(lea.timezone)).date()
        timeline = expand(self._guides, lea, today, marks)
        self._today[lea.id] = today
        return BookEntry(path, stamp, lea, timeline, dict(opted_out or {}))

    # -------------------------------------------------------------- rendering
    # feed() and aggregate() render (slow: planning's output to iCalendar, revisions in the
    # state store): the server calls them on its worker threads, never on the event loop.
    # latest_feed() and latest_aggregate() only look (fast): the newest render and whether it
    # is current.

    def latest_feed(self, entry: BookEntry) -> tuple[Rendered | None, bool]:
        """The LEA's newest render still in the cache, and whether it is of this entry."""
        found = self._renders.get(entry.lea.id)
        if found is None:
            return None, False
        return found[1], found[0] is entry

    def feed(self, entry: BookEntry) -> Rendered:
        """The LEA's calendar, rendered once per change (kept while the render cache, bounded
        in bytes, has room for it: a re-render gives the same bytes and ETag)."""
        found, current = self.latest_feed(entry)
        if found is not None and current:
            return found
        events = feed_events(entry.timeline)
        rendered = self._feed(f"CIM: {entry.lea.name}", entry.lea.id, events, self.now())
        self._renders.put(entry.lea.id, (entry, rendered), rendered.size)
        return rendered

    def _feed(
        self, name: str, calendar_id: str, events: Sequence[FeedEvent], now: dt.datetime
    ) -> Rendered:
        with self._revising:
            previous = self.state.revisions(calendar_id)
            revisions = revise(previous, events, now)
            self.state.save_revisions(calendar_id, revisions, previous)
        body = to_ics(name, calendar_id, events, revisions)
        last = max((r.modified for r in revisions.values()), default=now)
        return Rendered.of(body, last)

    def latest_aggregate(self) -> tuple[Rendered | None, bool]:
        """The newest aggregate render, and whether no LEA changed since."""
        current = self._aggregate
        if current is not None and current is not STARTED:
            return current, True
        return self._last_aggregate, False

    def aggregate(self) -> Rendered:
        """One calendar for the whole folder (a SELPA's or consultant's caseload)."""
        found, current = self.latest_aggregate()
        if found is not None and current:
            return found
        self._aggregate = STARTED  # a refresh during the render sets None: then it is not kept
        entries = dict(self.entries)  # the refresh thread may change the book meanwhile
        events = [
            ev
            for lea_id in sorted(entries)
            for ev in feed_events(entries[lea_id].timeline, prefix=True)
        ]
        title = f"CIM: {self.folder.resolve().name} ({len(entries)} LEAs)"
        rendered = self._feed(title, f"{ALL}-{self.folder.resolve().name}", events, self.now())
        if self._aggregate is STARTED:
            self._aggregate = rendered
        self._last_aggregate = rendered
        return rendered
