"""The feed book's caseloads: which LEAs each follows (recomputed when a profile or
caseloads.toml changes, kept at the last good version while caseloads.toml fails) and their
calendars (CDE's dates of their LEAs; with `plan`, pacing's plan too), rendered once per change."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pacing.adapters.caseloads import caseloads_file, folder_caseloads
from pacing.cache import ByteCache, MiB
from pacing.core.caseload import Caseload, Row, cde_item, leas, rows
from pacing.core.errors import DataError, brief
from pacing.core.lea import Lea
from pacing.export.ics import FeedEvent, feed_events

if TYPE_CHECKING:
    from pacing.feeds.book import BookEntry, FeedBook, Rendered

log = logging.getLogger("pacing.feeds")
CASELOAD_CACHE_BYTES = 128 * MiB  # rendered caseload feeds (plain and gzip), least recent out
CASELOAD = "_caseload"  # the URL part before a caseload's slug: never a valid LEA slug
CASELOAD_CSV = "caseload.csv"  # the page's CSV download, beside it


def _schema_field(field: str) -> str:
    """`caseload.<a slug>.leas[2]` -> `caseload.<slug>.leas[2]`: no name a user typed."""
    parts = field.split(".")
    return ".".join(p if n != 1 else "<slug>" for n, p in enumerate(parts))


def feed_id(slug: str) -> str:
    """The id a caseload's token is made from (`book.token(feed_id(slug))`)."""
    return f"{CASELOAD}/{slug}"


class CaseloadDesk:
    def __init__(self, book: FeedBook) -> None:
        self.book = book
        self.loads: dict[str, Caseload] = {}
        self.error: str | None = None  # caseloads.toml's error, as `pacing check` says it
        self.problem: str | None = None  # as /healthz may say it: file name and fields only
        self._seen: tuple[object, ...] = ()
        self._renders: ByteCache[tuple[str, bool], tuple[tuple[BookEntry, ...], Rendered]] = (
            ByteCache(CASELOAD_CACHE_BYTES)
        )

    def update(self) -> None:
        """Recompute the caseloads when the book's LEAs or caseloads.toml changed."""
        path = caseloads_file(self.book.folder)
        try:
            st = path.stat()
            file_stamp: object = (st.st_mtime, st.st_size)
        except OSError:
            file_stamp = None
        entries = dict(self.book.entries)
        seen = (file_stamp, *sorted((i, e.lea.contacts) for i, e in entries.items()))
        if seen != self._seen:
            self._seen = seen
            self._load(path, [e.lea for e in entries.values()])
        if self.problem:  # the book's refresh keeps only its profiles' problems
            self.book.problems[str(path)] = self.problem

    def _load(self, path: Path, leas: list[Lea]) -> None:
        try:
            loads = folder_caseloads(self.book.folder, leas, self.book.state)
        except DataError as e:
            if self.error != str(e):
                log.error("caseloads error, keeping the last good caseloads: %s", e)
            self.error = str(e)
            fields = dict.fromkeys(_schema_field(p.field) for p in e.problems)
            self.problem = f"{path.name}: {', '.join(f for f in fields if f) or 'not valid'}"
            return
        except OSError as e:
            log.error("cannot read %s, keeping the last good caseloads: %s", path, brief(e))
            return
        self.error = self.problem = None
        self.loads = {c.slug: c for c in loads}

    @property
    def ids(self) -> set[str]:
        """The ids of the caseloads' tokens (see `feed_id`)."""
        return {feed_id(slug) for slug in self.loads}

    def members(self, load: Caseload) -> tuple[BookEntry, ...]:
        """The caseload's planned LEAs (a profile that fails has no entry)."""
        entries = self.book.entries
        return tuple(entries[i] for i in load.leas if i in entries)

    def rows(self, load: Caseload) -> list[Row]:
        return rows(load, {e.lea.id: e.timeline for e in self.members(load)})

    def today(self, load: Caseload) -> dt.date:
        return self.book.now().astimezone(ZoneInfo(load.timezone)).date()

    # ------------------------------------------------------------------ feeds

    def latest(self, load: Caseload, plan: bool) -> tuple[Rendered | None, bool]:
        """The newest render of the caseload's feed, and whether its LEAs are unchanged since."""
        found = self._renders.get((load.slug, plan))
        if found is None:
            return None, False
        return found[1], found[0] == self.members(load)

    def feed(self, load: Caseload, plan: bool = False) -> Rendered:
        """CDE's dates of the caseload's LEAs, each summary prefixed with the LEA's short name;
        `plan` adds the planned work (start-by and finish-by targets). Same UIDs as the LEAs'
        own feeds. An LEA whose calendar cannot be written is left out, and named in the
        calendar's description."""
        found, current = self.latest(load, plan)
        if found is not None and current:
            return found
        members = self.members(load)
        keep = None if plan else cde_item

        def events(entry: BookEntry) -> list[FeedEvent]:
            return feed_events(entry.timeline, prefix=True, start_by=plan, keep=keep)

        what = "CDE dates and plan" if plan else "CDE dates"
        title = f"CIM: {load.title} ({leas(len(members))}, {what})"
        calendar_id = f"{CASELOAD}-{load.slug}" + ("-plan" if plan else "")
        rendered = self.book.combined(title, calendar_id, members, events)
        self._renders.put((load.slug, plan), (members, rendered), rendered.size)
        return rendered
