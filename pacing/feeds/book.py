"""The feed book: every LEA profile in a folder, rendered once, re-rendered when a profile, a
guide, the date, a done mark or an opt-out changes (only the LEAs the change touches), and kept
at its last good version while a profile fails to validate. An LEA whose calendar cannot be
written is left out of the aggregate and caseload calendars, which name it."""

from __future__ import annotations

import contextlib
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
from secrets import token_hex
from typing import Any

from pacing.adapters.files import CASELOADS_FILE, data_dir, load_lea, profiles_in
from pacing.adapters.guidepath import GuideFile, load_guides_keeping
from pacing.adapters.guidepath import stamp as guide_stamp
from pacing.adapters.state import State
from pacing.cache import ByteCache, MiB
from pacing.core.audience import Audience, audience
from pacing.core.entry import DoneMark
from pacing.core.errors import DataError, Problem, brief, fail
from pacing.core.guide import Guide, applicable_guides, missing_guides
from pacing.core.lea import Lea
from pacing.core.timeline import Timeline, expand
from pacing.export.ics import FeedEvent, feed_events, revise, to_ics
from pacing.feeds.caseloads import CASELOAD, CaseloadDesk

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


GuideKey = tuple[tuple[str, ...], tuple[str, ...]]
EVERY_GUIDE = "*"  # in a set of changed guide ids: a change that touches every LEA
StateByLea = tuple[dict[str, dict[str, DoneMark]], dict[str, dict[str, dt.datetime]]]


class RenderError(Exception):
    """An LEA's calendar cannot be written (its events, or iCalendar refusing one)."""


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
    marks: Mapping[str, DoneMark] = field(default_factory=dict)  # the state store's, as planned
    # the ids of the guides it was planned with and what they said was missing (see uses())
    guide_key: GuideKey = ((), ())
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


def guide_key(guides: Sequence[Guide], lea: Lea) -> GuideKey:
    """What of the guides an LEA's plan depends on, apart from their content: the ids of those
    that apply to it, and what they say is missing for it."""
    chosen = tuple(g.id for g in applicable_guides(guides, lea))
    return chosen, tuple(missing_guides(guides, lea))


def changed_guides(old: Sequence[Guide], new: Sequence[Guide]) -> set[str]:
    """The ids of the guides added, removed or edited; EVERY_GUIDE too when what every plan
    shows of all guides (the steps' titles) changed."""
    before, after = {g.id: g for g in old}, {g.id: g for g in new}
    touched = {i for i in before.keys() | after.keys() if before.get(i) != after.get(i)}
    steps = [{s.number: s.title for g in guides for s in g.steps} for guides in (old, new)]
    if steps[0] != steps[1]:
        touched.add(EVERY_GUIDE)
    return touched


def _state_by_lea(state: State) -> StateByLea:
    """Every LEA's done marks and opt-outs in two reads (as State.done_marks and
    State.opted_out give one LEA's): a change in the store re-plans only the LEAs it is of."""
    found = state.marks_by_lea()
    marks = {lea: dict(done) for lea, (done, _) in found.items() if done}
    opted_out = {lea: dict(outs) for lea, (_, outs) in found.items() if outs}
    return marks, opted_out


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
        # one read-revise-save of a calendar's revisions at once (per calendar: an LEA's feed
        # never waits for the aggregate's)
        self._revising: dict[str, threading.Lock] = {}
        self._locks = threading.Lock()
        self.changes = 0  # bumped when an LEA is planned again, added or removed
        self._silenced: tuple[int, list[str]] = (-1, [])
        self.caseloads = CaseloadDesk(self)
        self._plan_counter = -1
        self._touched: set[str] = set()  # guides changed since the last whole refresh
        # LEA id -> the entry its calendar was last written for, and why that failed (None: it
        # did not): a failing LEA is left out of the aggregate and the caseloads, alone
        self._checked: dict[str, tuple[BookEntry, str | None]] = {}
        # what an unknown id's token is compared with: the same work as a known id's
        self._dummy = [token_hex(16).encode() for _ in self.secrets]

    # -------------------------------------------------------------- tokens

    def token(self, lea_id: str, secret: bytes | None = None) -> str:
        key = secret if secret is not None else self.secrets[0]
        return hmac.new(key, f"pacing-feed:{lea_id}".encode(), hashlib.sha256).hexdigest()[:32]

    def token_ok(self, lea_id: str, token: str) -> bool:
        """Constant-time against every accepted secret (the current one and, while rotating,
        the previous one). Only the tokens of LEAs in the book are kept: an unknown id is
        looked up first and never cached (the same work and the same answer, no memory)."""
        expected = self._tokens.get(lea_id)
        if expected is None and self._known(lea_id):
            expected = [self.token(lea_id, secret).encode() for secret in self.secrets]
            self._tokens.put(lea_id, expected, 2 * len(lea_id) + 100 * len(expected) + 200)
        elif expected is None:  # no HMAC computed: unknown ids answer as fast as known ones
            expected = self._dummy
        given = token.encode("utf-8", "replace")
        found = False
        for candidate in expected:
            found |= hmac.compare_digest(candidate, given)
        return found and expected is not self._dummy

    def _known(self, token_id: str) -> bool:
        """Whether a token id is the aggregate's, an LEA's or a caseload's (constant time)."""
        if token_id == ALL or token_id in self.entries:
            return True
        slug = token_id.removeprefix(f"{CASELOAD}/")
        return slug != token_id and slug in self.caseloads.loads

    # -------------------------------------------------------------- refresh

    def refresh(self) -> None:
        """Pick up changed guides, profiles, dates, done marks and opt-outs; keep the last good
        feed on errors. Only the LEAs a change touches are planned again (a profile: its LEA;
        a guide: the LEAs it applies to; the state store: the LEAs whose marks or opt-outs
        differ). Each profile loads and plans on its own: a bad, vanishing or unreadable file
        is recorded (log, `errors`, `problems`) and the others go on. Only the state store
        failing stops a refresh (it is everyone's; the next one does what this one did not)."""
        self._touched |= self._load_guides()
        counter = self.state.plan_counter()  # `pacing done` / `undo`, an email's link bump it
        state = _state_by_lea(self.state) if counter != self._plan_counter else None
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
                self._checked.pop(lea_id, None)
                self._changed()
        self.errors = {p: e for p, e in self.errors.items() if p in current}
        self.problems = {p: e for p, e in self.problems.items() if p in current}
        self._failed = {p: f for p, f in self._failed.items() if p in current}
        for path in paths:
            self._refresh_one(path, self._touched, state)
        self._touched, self._plan_counter = set(), counter
        self.caseloads.update()

    def kind_of(self, path: str) -> str:
        """What a file with a problem is: "guide", "caseloads file" or "profile"."""
        if path in self._guide_errors:
            return "guide"
        return "caseloads file" if Path(path).name == CASELOADS_FILE else "profile"

    def _load_guides(self) -> set[str]:
        """The guides on the folder's search path (bundled, PACING_GUIDES, `folder/guides/`),
        read again when one is added, removed or edited; the ids of those that changed. A bad
        guide keeps its last good version (or is left out) and is named in the log, `errors`
        and /healthz; the others are used."""
        try:
            stamp = guide_stamp([self.folder], self.guide_dir)
        except OSError as e:  # a guide vanished while looking: the next look sees
            log.error("cannot read the guides, keeping the last good ones: %s", brief(e))
            return set()
        if stamp == self._guide_stamp:
            return set()
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
        touched = changed_guides(self._guides, guides)
        if touched:
            self._guides = guides
            self._guide_version += 1
        return touched

    def uses(self, entry: BookEntry, touched: set[str]) -> bool:
        """Whether changed guides (`touched`, their ids) change the LEA's plan: they applied to
        it or now do, or what is missing for it (no guide for its cohort) changed."""
        if not touched:
            return False
        if EVERY_GUIDE in touched or touched & set(entry.guide_key[0]):
            return True
        return guide_key(self._guides, entry.lea) != entry.guide_key

    @staticmethod
    def _stat(path: Path) -> tuple[float, int]:
        st = path.stat()
        return st.st_mtime, st.st_size

    def _refresh_one(self, path: Path, touched: set[str], state: StateByLea | None) -> None:
        old = self.entries.get(self._by_path.get(str(path), ""))
        try:
            stamp = self._stat(path)
        except OSError:  # gone since the listing: the next refresh forgets it
            return
        if old and old.stamp == stamp and not self._stale(old, touched, state):
            return
        if state is None and self._failed.get(str(path)) == (stamp, self._guide_version):
            return  # failed as it is: not read again until it, a guide or the state changes
        try:
            lea = load_lea(path, self._guides)
            if lea.id in self.entries and self.entries[lea.id].path != path:
                raise fail(str(path), "id", f"{lea.id!r} is also the id of another profile")
        except Exception as e:  # load_lea maps content to DataError; anything else, the same
            self._failure(path, stamp, e)
            return
        if state is None:  # the state store failing fails the refresh
            marks, opted_out = self.state.done_marks(lea.id), self.state.opted_out(lea.id)
        else:
            marks, opted_out = state[0].get(lea.id, {}), state[1].get(lea.id, {})
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
        self._changed()
        log.info("planned %s (%d items)", lea.id, len(entry.timeline.items))

    def _changed(self) -> None:
        self._aggregate = None
        self.changes += 1

    def silenced(self) -> list[str]:
        """The LEAs whose reminders reach nobody, as /healthz says them (by id; worked out
        again only after a change of the book)."""
        changes, found = self._silenced
        if changes != self.changes:
            changes = self.changes
            entries = sorted(list(self.entries.items()))
            found = [e.audience.public() for _, e in entries if e.audience.silenced]
            self._silenced = (changes, found)
        return found

    def _stale(self, entry: BookEntry, touched: set[str], state: StateByLea | None) -> bool:
        """Whether an LEA whose profile is unchanged must be planned again: a new day in its
        zone, a changed guide it uses, other done marks or opt-outs in the state store."""
        if self._new_day(entry.lea) or self.uses(entry, touched):
            return True
        if state is None:
            return False
        marks, opted_out = state[0].get(entry.lea.id, {}), state[1].get(entry.lea.id, {})
        return marks != entry.marks or opted_out != entry.opted_out

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
        key = guide_key(self._guides, lea)
        return BookEntry(path, stamp, lea, timeline, dict(opted_out or {}), dict(marks), key)

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
        in bytes, has room for it: a re-render gives the same bytes and ETag). RenderError
        when it cannot be written: recorded (`render_failure`), and tried again only for a
        new entry."""
        found, current = self.latest_feed(entry)
        if found is not None and current:
            return found
        try:
            events = _events(entry)
            rendered = self._feed(f"CIM: {entry.lea.name}", entry.lea.id, events, self.now())
        except RenderError as e:
            if self._checked.get(entry.lea.id, (None, None))[1] != str(e):
                log.error("cannot write the calendar of %s (%s), left out of the aggregate and "
                          "caseload feeds: %s", entry.lea.id, entry.path.name, e)  # fmt: skip
            self._checked[entry.lea.id] = (entry, str(e))
            raise
        self._checked[entry.lea.id] = (entry, None)
        self._renders.put(entry.lea.id, (entry, rendered), rendered.size)
        return rendered

    def render_failure(self, entry: BookEntry) -> str | None:
        """Why the entry's calendar cannot be written (None: it can, or it was not tried)."""
        checked, why = self._checked.get(entry.lea.id, (None, None))
        return why if checked is entry else None

    def render_failures(self) -> list[str]:
        """The LEAs whose calendar cannot be written, as /healthz says them (file and id)."""
        return [f"profile {e.path.name}: the calendar of {i} cannot be written; it is left out "
                "of the aggregate and caseload feeds (the server log says why)"
                for i, (e, why) in sorted(list(self._checked.items()))
                if why and self.entries.get(i) is e]  # fmt: skip

    def writable(self, members: Sequence[BookEntry]) -> tuple[list[BookEntry], list[BookEntry]]:
        """The members whose own calendar can be written, and those whose cannot (their own
        feed is rendered first when it was not yet for this entry: its failure is theirs)."""
        good: list[BookEntry] = []
        bad: list[BookEntry] = []
        for entry in members:
            if self._checked.get(entry.lea.id, (None, None))[0] is not entry:
                with contextlib.suppress(RenderError):
                    self.feed(entry)
            (bad if self.render_failure(entry) else good).append(entry)
        return good, bad

    def combined(
        self, title: str, calendar_id: str, members: Sequence[BookEntry],
        events_of: Callable[[BookEntry], list[FeedEvent]],
    ) -> Rendered:  # fmt: skip
        """One calendar of several LEAs (the aggregate, a caseload): an LEA whose calendar
        cannot be written is left out, and named in the calendar's description."""
        good, bad = self.writable(members)
        events = [ev for entry in good for ev in events_of(entry)]
        return self._feed(title, calendar_id, events, self.now(), left_out(bad))

    def _feed(
        self, name: str, calendar_id: str, events: Sequence[FeedEvent], now: dt.datetime,
        description: str = "",
    ) -> Rendered:  # fmt: skip
        with self._locks:
            lock = self._revising.setdefault(calendar_id, threading.Lock())
        with lock:
            previous = self.state.revisions(calendar_id)
            revisions = revise(previous, events, now)
            self.state.save_revisions(calendar_id, revisions, previous)
        try:
            body = to_ics(name, calendar_id, events, revisions)
        except Exception as e:  # iCalendar refusing an event: the calendar's own trouble
            raise RenderError(f"{type(e).__name__}: {brief(e)}") from e
        if description:
            body = with_description(body, description)
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
        members = [entries[lea_id] for lea_id in sorted(entries)]
        title = f"CIM: {self.folder.resolve().name} ({len(entries)} LEAs)"
        calendar_id = f"{ALL}-{self.folder.resolve().name}"
        rendered = self.combined(title, calendar_id, members,
                                 lambda e: _events(e, prefix=True))  # fmt: skip
        if self._aggregate is STARTED:
            self._aggregate = rendered
        self._last_aggregate = rendered
        return rendered


def _events(entry: BookEntry, **options: Any) -> list[FeedEvent]:
    """The entry's events (`feed_events`' options); RenderError when they cannot be made."""
    try:
        return feed_events(entry.timeline, **options)
    except Exception as e:
        raise RenderError(f"{type(e).__name__}: {brief(e)}") from e


def left_out(bad: Sequence[BookEntry], limit: int = 10) -> str:
    """The description of a calendar that leaves LEAs out ("" when none is)."""
    if not bad:
        return ""
    named = [f"{e.lea.name} ({e.path.name})" for e in bad[:limit]]
    more = f" and {len(bad) - limit} more" if len(bad) > limit else ""
    return (f"Left out: {', '.join(named)}{more}: their calendar cannot be written from their "
            "profile (the server's /healthz names them, its log says why).")  # fmt: skip


def with_description(body: bytes, text: str) -> bytes:
    """The calendar with DESCRIPTION (RFC 7986) and X-WR-CALDESC `text`, before its first
    component (escaped and folded by icalendar)."""
    from icalendar import Calendar

    holder = Calendar()
    holder.add("description", text)
    holder.add("x-wr-caldesc", text)
    lines = bytes(holder.to_ical()).removeprefix(b"BEGIN:VCALENDAR\r\n")
    lines = lines.removesuffix(b"END:VCALENDAR\r\n")
    at = body.find(b"\r\nBEGIN:", len(b"BEGIN:VCALENDAR")) + 2
    if at == 1:  # no component: before the end
        at = body.rindex(b"END:VCALENDAR\r\n")
    return body[:at] + lines + body[at:]
