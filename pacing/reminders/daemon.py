"""The reminder daemon: a loop that sleeps until the ledger's next instant on the pacing clock
(waking every `watch` seconds to look for changed profiles, guides and done marks) and calls
one testable step: claim ready rows -> fold, catch up or compose -> send -> record.

Several daemons (on any machines, sharing one database) split the work through fenced claims;
each records its liveness in the `instance` table (`pacing status`, `/healthz`)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import signal
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from zoneinfo import ZoneInfo

from pacing.adapters.files import data_dir, load_guide, load_lea, profiles_in
from pacing.adapters.state import State
from pacing.core.errors import DataError, brief
from pacing.core.guide import Guide
from pacing.core.reminders import plan
from pacing.core.timeline import Timeline, expand
from pacing.reminders.actions import Links, without_opted_out
from pacing.reminders.compose import compose, compose_catch_up
from pacing.reminders.ledger import Ledger, Row
from pacing.reminders.send import Outcome, Sender

log = logging.getLogger("pacing.reminders")
RETRY_FIRST = dt.timedelta(minutes=1)
RETRY_MAX = dt.timedelta(hours=2)
MAX_ATTEMPTS = 20
BATCH = 500
LATE = dt.timedelta(minutes=15)  # PACING_LATE_SECONDS: late reminders (status, /healthz, catch-up)
LATE_STEP = dt.timedelta(seconds=60)  # a step starting later than this after its instant is logged
CLOCK_BEHIND = dt.timedelta(minutes=2)  # the clock behind the last recorded step: it went back
PAUSE_AFTER_ERROR = 5.0  # seconds before the loop tries again after a failed step


def backoff(attempts: int) -> dt.timedelta:
    """1, 2, 4 ... minutes, at most two hours."""
    delay: dt.timedelta = RETRY_FIRST * 2 ** max(attempts - 1, 0)
    return min(delay, RETRY_MAX)


def late_after() -> dt.timedelta:
    text = os.environ.get("PACING_LATE_SECONDS")
    return dt.timedelta(seconds=float(text)) if text else LATE


@dataclass
class StepReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    folded: int = 0
    caught_up: int = 0  # rows carried by catch-up emails (counted in neither sent nor folded)
    lost: int = 0  # claims taken over by another daemon (a pause past the lease)


@dataclass
class Daemon:
    sources: Sequence[Path]
    state: State
    sender: Sender
    now: Callable[[], dt.datetime]
    page_url: Callable[[str], str | None] = lambda lea_id: None
    links: Links | None = None  # served (`serve --base-url`): unsubscribe and Mark-done links
    guide_dir: Path = field(default_factory=lambda: data_dir("guides"))
    timelines: dict[str, Timeline] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    stopping: bool = False
    _seen: object = None
    _wake: asyncio.Event | None = None

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.state)
        self.host = socket.gethostname()[:120]
        self.id = f"{self.host[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.started = self.now()
        self.late = late_after()
        self.down_since: dt.datetime | None = None  # the last step any daemon ran before us
        self._failing: dict[str, str] = {}  # what is failing -> its error, logged once

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
        # Each profile on its own: a bad or vanishing file keeps its current reminders and the
        # others are planned; only the state store failing (everyone's) ends the re-plan.
        for path in (p for s in self.sources for p in profiles_in(s)):
            try:
                lea = load_lea(path, guides)
            except Exception as e:  # load_lea maps content to DataError; the rest the same
                self._profile_failed(path, e)
                continue
            marks = self.state.done_marks(lea.id)
            unsubscribed = self.state.opted_out(lea.id)
            try:
                today = self.now().astimezone(ZoneInfo(lea.timezone)).date()
                timeline = expand(guides, lea, today, marks)
                planned = without_opted_out(plan(timeline), unsubscribed)
            except Exception as e:  # planning this profile failed: the others go on
                self._profile_failed(path, e)
                continue
            self.errors.pop(str(path), None)
            self.timelines[lea.id] = timeline
            added, cancelled = self.ledger.sync(lea.id, planned, self.now())
            if added or cancelled:
                log.info("planned %s: %d new, %d cancelled", lea.id, added, cancelled)
        return True

    def _profile_failed(self, path: Path, error: Exception) -> None:
        message = str(error) if isinstance(error, DataError) else f"{path}: {brief(error)}"
        if self.errors.get(str(path)) != message:  # one line per change, not per re-plan
            log.error("profile error, keeping its current reminders: %s", message)
        self.errors[str(path)] = message

    # ---------------------------------------------------------------- one step

    def _fold_reason(self, row: Row, now: dt.datetime) -> str | None:
        timeline = self.timelines.get(row.lea)
        if timeline is None:
            return "the LEA is no longer followed"
        today = now.astimezone(ZoneInfo(timeline.lea.timezone)).date()
        if row.kind in ("due", "start-by", "meeting") and today > row.due:
            return "past due: folded into the overdue notice"
        if row.kind == "digest" and today > row.due + dt.timedelta(days=6):
            return "the week is over"
        if (
            row.kind in ("overdue", "behind-plan")
            and self.down_since is not None
            and row.send_at < self.down_since
            and row.attempts <= 1
            and row.last_error is None
            and now - row.send_at > self.late
        ):  # its notice was due while a daemon still ran: planned afresh since, not repeated
            return "already overdue before the downtime: not repeated"
        return None

    def _messages(self, rows: Sequence[Row], now: dt.datetime) -> list[tuple[Row, ...]]:
        """One message per row, except a recipient's late rows (after downtime), which go in
        one catch-up email (escalated overdue notices, with their copies, stay on their own)."""
        groups: dict[tuple[str, str], list[Row]] = {}
        out: list[tuple[Row, ...]] = []
        for row in rows:
            if now - row.send_at > self.late and not row.cc:
                groups.setdefault((row.lea, row.to), []).append(row)
            else:
                out.append((row,))
        out += [tuple(g) for g in groups.values()]
        return out

    def _compose(self, rows: tuple[Row, ...], now: dt.datetime) -> Message:
        page = self.page_url(rows[0].lea)
        timeline = self.timelines[rows[0].lea]
        if len(rows) == 1:
            return compose(rows[0], timeline, self.sender.address, page, now, self.links)
        return compose_catch_up(rows, timeline, self.sender.address, page, now, self.links)

    async def step(self, now: dt.datetime | None = None) -> StepReport:
        """Send what is due now; every outcome recorded as soon as it is known, and only while
        this daemon still holds the claim (checked before each send, renewed meanwhile)."""
        now = now or self.now()
        report = StepReport()
        wanted: list[Row] = []
        claimed = self.ledger.claim(now, self.id, BATCH, self.late)
        report.claimed = len(claimed)
        for row in claimed:
            reason = self._fold_reason(row, now)
            if reason and self.ledger.fold(row, reason):
                report.folded += 1
            elif not reason:
                wanted.append(row)
        batch = self._messages(wanted, now)
        if not batch:
            return report
        messages = [self._compose(rows, now) for rows in batch]
        done: set[int] = set()
        lost: set[str] = set()

        def record(index: int, outcome: Outcome, error: str) -> None:
            done.add(index)
            rows = batch[index]
            if outcome == "sent":
                kept = (self.ledger.sent(rows[0], self.now()) if len(rows) == 1 else
                        self.ledger.sent_together(rows[0], rows[1:], self.now()))  # fmt: skip
                report.sent += kept
                report.caught_up += (len(rows) - 1) * kept
            elif outcome == "retry" and rows[0].attempts < MAX_ATTEMPTS:
                at = now + backoff(rows[0].attempts)
                kept = all([self.ledger.retry(r, error, at) for r in rows])
                report.retried += 1
                if not error.startswith("not attempted"):  # the sender logged those at once
                    log.warning("will retry %s at %s: %s", rows[0].key, f"{at:%H:%M:%S}Z", error)
            else:
                kept = all([self.ledger.failed(r, error) for r in rows])
                report.failed += 1
                log.error("failed %s: %s", rows[0].key, error)
            if not kept:
                lost.add(rows[0].key)
                log.error("claim lost on %s (lease ran out, another daemon took it): "
                          "this batch stops", rows[0].key)  # fmt: skip

        def stop() -> bool:
            """Asked before each message, in order: the next one is len(done)."""
            if self.stopping or lost:
                return True
            rows = batch[len(done)] if len(done) < len(batch) else ()
            if all(self.ledger.holds(r, self.now()) for r in rows):
                return False
            lost.add(rows[0].key)
            log.error("claim lost on %s before sending it: this batch stops", rows[0].key)
            return True

        try:
            with self.ledger.held(), self._renewing(batch, done, lost):
                await self.sender.send(messages, record, stop)
        finally:
            for index, rows in enumerate(batch):
                if index not in done:  # stopped before sending it: taken again at once
                    for row in rows:
                        self.ledger.release(row)
        report.lost = len(lost)
        log.info("step: %s", report)
        return report

    @contextlib.contextmanager
    def _renewing(
        self, batch: list[tuple[Row, ...]], done: set[int], lost: set[str]
    ) -> Iterator[None]:
        """While a batch is being sent, renew the lease of its claims every third of a lease
        (and record the heartbeat), so a long batch keeps what it holds."""
        every = self.ledger.lease.total_seconds() / 3

        async def renew() -> None:
            while True:
                await asyncio.sleep(every)
                rows = [r for i, g in enumerate(batch) if i not in done for r in g]
                kept = self.ledger.renew(rows, self.now())
                if len(kept) < len(rows):
                    lost.update(r.key for r in rows if r.key not in kept)
                    log.error("%d claims lost while sending: this batch stops",
                              len(rows) - len(kept))  # fmt: skip
                self._beat(True)

        task = asyncio.get_running_loop().create_task(renew())
        try:
            yield
        finally:
            task.cancel()

    # ---------------------------------------------------------------- liveness

    def _beat(self, ok: bool, error: str | None = None) -> None:
        try:
            self.ledger.beat(self.id, self.host, os.getpid(), self.started, self.now(), ok, error)
        except Exception as e:  # liveness must not take the loop down
            self._trouble("recording the heartbeat", e)
        else:
            self._trouble("recording the heartbeat", None)

    def _trouble(self, doing: str, error: BaseException | None) -> str | None:
        """One log line when `doing` starts failing (or fails differently), one when it works
        again: never a line per attempt."""
        before = self._failing.pop(doing, None)
        if error is None:
            if before is not None:
                log.info("%s works again", doing)
            return None
        said = brief(error)
        if said != before:
            log.error("%s failed, will try again: %s", doing, said)
        self._failing[doing] = said
        return said

    async def _guarded(self, at: dt.datetime | None) -> None:
        """One step, never fatal: a failure is one log line (per change) and a pause."""
        now = self.now()
        if at is not None and now - at > LATE_STEP:
            log.warning("step starts late: %d s after the instant it was for (%s)",
                        (now - at).total_seconds(), f"{at:%Y-%m-%d %H:%M:%S}Z")  # fmt: skip
        try:
            report = await self.step()
        except Exception as e:
            self._beat(False, self._trouble("sending reminders", e))
            await self._nap(PAUSE_AFTER_ERROR)
            return
        self._trouble("sending reminders", None)
        self._beat(True)
        if not report.claimed:  # another daemon is claiming what was due: look again soon
            await self._nap(1.0)

    async def _nap(self, seconds: float) -> None:
        """Sleep, or less when asked to stop."""
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(seconds, 0.0))

    # ---------------------------------------------------------------- the loop

    async def run(self, watch_seconds: float = 30.0, signals: bool = True) -> None:
        """Until SIGTERM/SIGINT (or `request_stop`): the email in flight finishes and is
        recorded. With signals=False the caller (the feed server) owns the signals."""
        self._wake = asyncio.Event()
        if signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        self.down_since = self.ledger.last_seen()
        if self.down_since and self.now() < self.down_since - CLOCK_BEHIND:
            log.warning("the clock (%s) is behind the last step recorded (%s): re-planning",
                        f"{self.now():%Y-%m-%d %H:%M}Z", f"{self.down_since:%Y-%m-%d %H:%M}Z")  # fmt: skip
            self.ledger.revive_folded(self.now())
        self.replan(force=True)
        self._beat(True)
        log.info("daemon %s running (lease %g s)", self.id, self.ledger.lease.total_seconds())
        watch_at = self.now() + dt.timedelta(seconds=watch_seconds)
        while not self.stopping:
            if self.now() >= watch_at:  # look for changed profiles, guides, done marks
                watch_at = self.now() + dt.timedelta(seconds=watch_seconds)
                self._replan_guarded()
            at = self._next_instant()
            if at is not None and at <= self.now():
                await self._guarded(at)  # then, at once, the next instant again
                continue
            wake = min(at or watch_at, watch_at)
            await self._nap((wake - self.now()).total_seconds())
        log.info("stopped")

    def _next_instant(self) -> dt.datetime | None:
        try:
            at = self.ledger.next_instant()
        except Exception as e:
            self._beat(False, self._trouble("reading the ledger", e))
            return None
        self._trouble("reading the ledger", None)
        return at

    def _replan_guarded(self) -> None:
        try:
            self.replan()
        except Exception as e:
            self._beat(False, self._trouble("re-planning", e))
            return
        self._trouble("re-planning", None)
        self._beat(True)

    def request_stop(self) -> None:
        log.info("stopping: finishing the email in flight")
        self.stopping = True
        if self._wake is not None:
            self._wake.set()
