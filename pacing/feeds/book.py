"""The feed book: every LEA profile in a folder, rendered once, re-rendered when a profile, a
guide or the date changes, and kept at its last good version while a profile fails to validate."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path

from pacing.adapters.files import data_dir, load_guide, load_lea, profiles_in
from pacing.adapters.state import State
from pacing.core.errors import DataError, fail
from pacing.core.guide import Guide
from pacing.core.lea import Lea
from pacing.core.timeline import Timeline, expand
from pacing.export.ics import FeedEvent, feed_events, revise, to_ics

log = logging.getLogger("pacing.feeds")
ALL = "_all"  # the aggregate feed's id: never a valid LEA slug


@dataclass(frozen=True)
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


@dataclass
class BookEntry:
    """One LEA of the book: its last good profile and timeline; its feed, rendered on first
    request and kept until the profile, a guide, a done mark or the date changes."""

    path: Path
    stamp: tuple[float, int]
    lea: Lea
    timeline: Timeline
    feed: Rendered | None = None


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
        self.guide_dir = guide_dir or data_dir("guides")
        self.entries: dict[str, BookEntry] = {}
        self.errors: dict[str, str] = {}  # profile path -> its current error
        self._guides: tuple[Guide, ...] = ()
        self._guide_stamp: tuple[tuple[str, float, int], ...] = ()
        self._today: dict[str, dt.date] = {}
        self._aggregate: Rendered | None = None
        self._by_path: dict[str, str] = {}  # profile path -> LEA id
        self._tokens: dict[str, list[bytes]] = {}
        self._plan_counter = -1

    # -------------------------------------------------------------- tokens

    def token(self, lea_id: str, secret: bytes | None = None) -> str:
        key = secret if secret is not None else self.secrets[0]
        return hmac.new(key, f"pacing-feed:{lea_id}".encode(), hashlib.sha256).hexdigest()[:32]

    def token_ok(self, lea_id: str, token: str) -> bool:
        """Constant-time against every accepted secret (the current one and, while rotating,
        the previous one)."""
        expected = self._tokens.get(lea_id)
        if expected is None:
            expected = [self.token(lea_id, secret).encode() for secret in self.secrets]
            if len(self._tokens) < 100_000:  # unknown ids cannot grow it without bound
                self._tokens[lea_id] = expected
        given = token.encode("utf-8", "replace")
        found = False
        for candidate in expected:
            found |= hmac.compare_digest(candidate, given)
        return found

    # -------------------------------------------------------------- refresh

    def refresh(self) -> None:
        """Pick up changed guides, profiles and dates; keep the last good feed on errors."""
        guides_changed = self._load_guides()
        counter = self.state.plan_counter()  # `pacing done` / `undo` bump it
        guides_changed |= counter != self._plan_counter
        self._plan_counter = counter
        paths = profiles_in(self.folder) if self.folder.exists() else []
        current = {str(p) for p in paths}
        for lea_id, entry in list(self.entries.items()):
            if str(entry.path) not in current:
                del self.entries[lea_id]
                self._by_path.pop(str(entry.path), None)
                self._aggregate = None
        self.errors = {p: e for p, e in self.errors.items() if p in current}
        for path in paths:
            self._refresh_one(path, guides_changed)

    def _load_guides(self) -> bool:
        files = sorted(self.guide_dir.glob("*.toml"))
        stamp = tuple((str(p), *self._stat(p)) for p in files)
        if stamp == self._guide_stamp:
            return False
        try:
            guides = tuple(load_guide(p) for p in files)
        except DataError as e:
            log.error("guide error, keeping the last good guides: %s", e)
            self._guide_stamp = stamp
            return False
        self._guides, self._guide_stamp = guides, stamp
        return True

    @staticmethod
    def _stat(path: Path) -> tuple[float, int]:
        st = path.stat()
        return st.st_mtime, st.st_size

    def _refresh_one(self, path: Path, guides_changed: bool) -> None:
        old = self.entries.get(self._by_path.get(str(path), ""))
        stamp = self._stat(path)
        if old and not guides_changed and old.stamp == stamp and not self._new_day(old.lea):
            return
        try:
            lea = load_lea(path, self._guides)
            if lea.id in self.entries and self.entries[lea.id].path != path:
                raise fail(str(path), "id", f"{lea.id!r} is also the id of another profile")
        except DataError as e:
            if str(path) not in self.errors:
                log.error("profile error, serving its last good feed: %s", e)
            self.errors[str(path)] = str(e)
            return
        self.errors.pop(str(path), None)
        if old and old.lea.id != lea.id:
            del self.entries[old.lea.id]
        self.entries[lea.id] = self._expand(path, stamp, lea)
        self._by_path[str(path)] = lea.id
        self._aggregate = None
        log.info("planned %s (%d items)", lea.id, len(self.entries[lea.id].timeline.items))

    def _new_day(self, lea: Lea) -> bool:
        from zoneinfo import ZoneInfo

        return self.now().astimezone(ZoneInfo(lea.timezone)).date() != self._today.get(lea.id)

    def _expand(self, path: Path, stamp: tuple[float, int], lea: Lea) -> BookEntry:
        from zoneinfo import ZoneInfo

        today = self.now().astimezone(ZoneInfo(lea.timezone)).date()
        self._today[lea.id] = today
        timeline = expand(self._guides, lea, today, self.state.done_marks(lea.id))
        return BookEntry(path, stamp, lea, timeline)

    def feed(self, entry: BookEntry) -> Rendered:
        """The LEA's calendar, rendered once per change."""
        if entry.feed is None:
            events = feed_events(entry.timeline)
            entry.feed = self._feed(f"CIM: {entry.lea.name}", entry.lea.id, events, self.now())
        return entry.feed

    def _feed(
        self, name: str, calendar_id: str, events: Sequence[FeedEvent], now: dt.datetime
    ) -> Rendered:
        previous = self.state.revisions(calendar_id)
        revisions = revise(previous, events, now)
        self.state.save_revisions(calendar_id, revisions, previous)
        body = to_ics(name, calendar_id, events, revisions)
        last = max((r.modified for r in revisions.values()), default=now)
        return Rendered.of(body, last)

    def aggregate(self) -> Rendered:
        """One calendar for the whole folder (a SELPA's or consultant's caseload)."""
        if self._aggregate is None:
            events = [
                ev
                for lea_id in sorted(self.entries)
                for ev in feed_events(self.entries[lea_id].timeline, prefix=True)
            ]
            title = f"CIM: {self.folder.resolve().name} ({len(self.entries)} LEAs)"
            self._aggregate = self._feed(
                title, f"{ALL}-{self.folder.resolve().name}", events, self.now()
            )
        return self._aggregate
