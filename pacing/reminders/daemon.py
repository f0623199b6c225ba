"""The reminder daemon: APScheduler is only the clock. It wakes at the next reminder instant
(or every `watch` seconds to look for changed profiles, guides and done marks) and calls one
testable step: ready rows -> fold or claim -> compose -> send -> record."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from pacing.adapters.files import data_dir, load_guide, load_lea, profiles_in
from pacing.adapters.state import State
from pacing.core.errors import DataError
from pacing.core.guide import Guide
from pacing.core.reminders import plan
from pacing.core.timeline import Timeline, expand
from pacing.reminders.compose import compose
from pacing.reminders.ledger import Ledger, Row
from pacing.reminders.send import Outcome, Sender

log = logging.getLogger("pacing.reminders")
RETRY_FIRST = dt.timedelta(minutes=1)
RETRY_MAX = dt.timedelta(hours=2)
MAX_ATTEMPTS = 20


def backoff(attempts: int) -> dt.timedelta:
    """1, 2, 4 ... minutes, at most two hours."""
    delay: dt.timedelta = RETRY_FIRST * 2 ** max(attempts - 1, 0)
    return min(delay, RETRY_MAX)


@dataclass
class StepReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    folded: int = 0


@dataclass
class Daemon:
    sources: Sequence[Path]
    state: State
    sender: Sender
    now: Callable[[], dt.datetime]
    page_url: Callable[[str], str | None] = lambda lea_id: None
    guide_dir: Path = field(default_factory=lambda: data_dir("guides"))
    timelines: dict[str, Timeline] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    stopping: bool = False
    _seen: object = None
    _done: asyncio.Event | None = None

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.state)

    # ---------------------------------------------------------------- planning

    def _fingerprint(self) -> object:
        paths = [p for s in self.sources for p in profiles_in(s)]
        files = [*paths, *sorted(self.guide_dir.glob("*.toml"))]
        stats = tuple((str(p), (st := p.stat()).st_mtime_ns, st.st_size) for p in files)
        return stats, self.state.plan_counter(), self.now().date()

    def replan(self, force: bool = False) -> bool:
        """Re-plan when a profile, a guide, a done mark or the date changed."""
        seen = self._fingerprint()
        if seen == self._seen and not force:
            return False
        self._seen = seen
        try:
            guides: tuple[Guide, ...] = tuple(
                load_guide(p) for p in sorted(self.guide_dir.glob("*.toml"))
            )
        except DataError as e:
            log.error("guide error, keeping the current plan: %s", e)
            return False
        for path in (p for s in self.sources for p in profiles_in(s)):
            try:
                lea = load_lea(path, guides)
            except DataError as e:
                self.errors[str(path)] = str(e)
                log.error("profile error, keeping its current reminders: %s", e)
                continue
            self.errors.pop(str(path), None)
            today = self.now().astimezone(ZoneInfo(lea.timezone)).date()
            timeline = expand(guides, lea, today, self.state.done_marks(lea.id))
            self.timelines[lea.id] = timeline
            added, cancelled = self.ledger.sync(lea.id, plan(timeline), self.now())
            if added or cancelled:
                log.info("planned %s: %d new, %d cancelled", lea.id, added, cancelled)
        return True

    # ---------------------------------------------------------------- one step

    def _fold_reason(self, row: Row, now: dt.datetime) -> str | None:
        timeline = self.timelines.get(row.lea)
        if timeline is None:
            return "the LEA is no longer followed"
        today = now.astimezone(ZoneInfo(timeline.lea.timezone)).date()
        if row.kind in ("due", "start-by") and today > row.due:
            return "past due: folded into the overdue notice"
        if row.kind == "digest" and today > row.due + dt.timedelta(days=6):
            return "the week is over"
        return None

    async def step(self, now: dt.datetime | None = None) -> StepReport:
        """Send what is due now; every outcome recorded as soon as it is known."""
        now = now or self.now()
        report = StepReport()
        batch: list[tuple[Row, object]] = []
        wanted: list[Row] = []
        for row in self.ledger.ready(now):
            reason = self._fold_reason(row, now)
            if reason:
                self.ledger.fold(row.key, reason)
                report.folded += 1
            else:
                wanted.append(row)
        held = self.ledger.claim_batch([r.key for r in wanted], now)
        for row in (r for r in wanted if r.key in held):
            page = self.page_url(row.lea)
            message = compose(row, self.timelines[row.lea], self.sender.address, page, now)
            batch.append((row, message))
        if not batch:
            return report

        reported: set[int] = set()

        def record(index: int, outcome: Outcome, error: str) -> None:
            reported.add(index)
            row = batch[index][0]
            if outcome == "sent":
                self.ledger.sent(row.key, self.now())
                report.sent += 1
            elif outcome == "retry" and row.attempts + 1 < MAX_ATTEMPTS:
                self.ledger.retry(row.key, error, now + backoff(row.attempts + 1))
                report.retried += 1
                log.warning("will retry %s: %s", row.key, error)
            else:
                self.ledger.failed(row.key, error)
                report.failed += 1
                log.error("failed %s: %s", row.key, error)

        messages = [m for _, m in batch]
        try:
            with self.ledger.held():
                await self.sender.send(messages, record, lambda: self.stopping)  # type: ignore[arg-type]
        finally:
            for index, (row, _) in enumerate(batch):
                if index not in reported:  # stopped before sending it
                    self.ledger.release(row.key)
        log.info("step: %s", report)
        return report

    # ---------------------------------------------------------------- the clock

    async def run(self, watch_seconds: float = 30.0, signals: bool = True) -> None:
        """Until SIGTERM/SIGINT (or `request_stop`): the email in flight finishes and is
        recorded. With signals=False the caller (the feed server) owns the signals."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.date import DateTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        done = self._done = asyncio.Event()
        if signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        scheduler = AsyncIOScheduler(timezone=dt.UTC)
        busy = asyncio.Lock()

        def wake_at_next() -> None:
            at = self.ledger.next_instant()
            if at is not None and not self.stopping:
                at = max(at, self.now())
                # misfire_grace_time=None: a late wake-up still runs (APScheduler's default
                # would drop a job that is more than a second late).
                scheduler.add_job(tick, DateTrigger(run_date=at), id="tick",
                                  replace_existing=True, misfire_grace_time=None)  # fmt: skip

        async def tick() -> None:
            async with busy:
                await self.step()
                wake_at_next()

        async def watch() -> None:
            async with busy:
                if self.replan():
                    wake_at_next()

        self.replan(force=True)
        scheduler.add_job(watch, IntervalTrigger(seconds=watch_seconds), id="watch",
                          misfire_grace_time=None, coalesce=True, max_instances=1)  # fmt: skip
        scheduler.start()
        wake_at_next()
        await done.wait()
        async with busy:  # the step in flight finishes and records
            scheduler.shutdown(wait=False)
        log.info("stopped")

    def request_stop(self) -> None:
        log.info("stopping: finishing the email in flight")
        self.stopping = True
        if self._done is not None:
            self._done.set()
