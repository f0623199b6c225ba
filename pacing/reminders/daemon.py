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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from zoneinfo import ZoneInfo

from pacing import clock
from pacing.adapters.caseloads import caseloads_file, folder_caseloads
from pacing.adapters.files import SkippedGuide, data_dir, load_lea, profiles_in
from pacing.adapters.guidepath import GuideFile, load_guides_keeping
from pacing.adapters.guidepath import stamp as guide_stamp
from pacing.adapters.state import LeaMarks, State
from pacing.core.caseload import Caseload, digest
from pacing.core.caseload_reminders import is_caseload, ledger_id, plan_caseload, weekly, window
from pacing.core.errors import DataError, Problem, brief
from pacing.core.guide import Guide
from pacing.core.lea import DELIVERIES, Delivery, Lea
from pacing.core.reminders import Reminder, plan
from pacing.core.timeline import Timeline, expand
from pacing.reminders.actions import Links, without_opted_out
from pacing.reminders.bundle import compose_bundle
from pacing.reminders.caseload_digest import compose_caseload, local_day
from pacing.reminders.continuity import Continuity, LedgerMismatch
from pacing.reminders.ledger import Ledger, Row
from pacing.reminders.send import Outcome, Sender

log = logging.getLogger("pacing.reminders")
RETRY_FIRST = dt.timedelta(minutes=1)
RETRY_MAX = dt.timedelta(hours=2)
MAX_ATTEMPTS = 20
BATCH = 20  # recipients (emails) per claim: several daemons share a burst
LATE = dt.timedelta(minutes=15)  # PACING_LATE_SECONDS: late reminders (status, /healthz, catch-up)
LATE_STEP = dt.timedelta(seconds=60)  # a step starting later than this after its instant is logged
CLOCK_BEHIND = dt.timedelta(minutes=2)  # the clock behind the last recorded step: it went back
WATCH = 30.0  # seconds: PACING_WATCH_SECONDS
PAUSE_AFTER_ERROR = 5.0  # seconds before the loop tries again after a failed step


def backoff(attempts: int) -> dt.timedelta:
    """1, 2, 4 ... minutes, at most two hours."""
    delay: dt.timedelta = RETRY_FIRST * 2 ** max(attempts - 1, 0)
    return min(delay, RETRY_MAX)


def _domain(address: str) -> str:
    """A recipient as logs and reports show it: the domain only."""
    return "@" + address.rpartition("@")[2]


def _what(row: Row) -> str:
    """A ledger row in a log line: kind, LEA, first item, the recipient's domain."""
    return f"{row.kind} {row.lea} {row.items[0]} to {_domain(row.to)}"


def _stamp(path: Path) -> object:
    """What changes when a file is edited (mtime and size), or None when it is gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def chosen_deliveries(state: State) -> dict[str, Delivery]:
    """How often each person chose to get email (from an email's link or `pacing db delivery`)."""
    return {a: m for a, (m, _) in state.deliveries().items() if m in DELIVERIES}


def watch_from_env() -> float:
    """PACING_WATCH_SECONDS: how often the daemon looks for changes and re-reads the clock."""
    text = os.environ.get("PACING_WATCH_SECONDS", "")
    try:
        seconds = float(text) if text else WATCH
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 3600:
        raise DataError([Problem("environment", "PACING_WATCH_SECONDS",
                                 f"{text!r} is not a number of seconds in (0, 3600]")])  # fmt: skip
    return seconds


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
    carried: int = 0  # rows carried by another row's email (counted in neither sent nor folded)
    lost: int = 0  # claims taken over by another daemon (a pause past the lease)


@dataclass
class Daemon:
    sources: Sequence[Path]
    state: State
    sender: Sender
    now: Callable[[], dt.datetime]
    page_url: Callable[[str], str | None] = lambda lea_id: None
    links: Links | None = None  # the base URL known: unsubscribe, Mark-done, delivery links
    mailto: str | None = None  # PACING_UNSUBSCRIBE_MAILTO: the mailto form of List-Unsubscribe
    # the bundled guides' folder; then PACING_GUIDES and each source's guides/ folder
    guide_dir: Path = field(default_factory=lambda: data_dir("guides"))
    timelines: dict[str, Timeline] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    stopping: bool = False
    monotonic: Callable[[], float] = clock.monotonic  # what waits are measured on
    mark_file: Path | None = None  # the state dir's copy of the ledger's marks (continuity)
    _seen: object = None
    _wake: asyncio.Event | None = None
    _guide_files: dict[str, GuideFile] = field(default_factory=dict)  # path -> last good
    _guide_errors: dict[str, str] = field(default_factory=dict)  # source|guide path -> error
    _guide_stamps: dict[str, object] = field(default_factory=dict)  # source -> guides' stamp
    _skipped: dict[str, tuple[SkippedGuide, ...]] = field(default_factory=dict)  # never valid
    _guides_of: dict[str, tuple[Guide, ...]] = field(default_factory=dict)  # source -> guides
    _stamps: dict[str, object] = field(default_factory=dict)  # profile path -> as planned
    _file_stamps: dict[str, object] = field(default_factory=dict)  # path -> as last seen
    _lea_of: dict[str, str] = field(default_factory=dict)  # profile path -> LEA id
    _marks: Mapping[str, LeaMarks] = field(default_factory=dict)  # as last planned
    _chosen: dict[str, Delivery] = field(default_factory=dict)  # people's delivery choices
    _counter: int | None = None  # the state store's plan counter, as last planned
    _high: dt.datetime | None = None  # the latest time seen (see `_latest`)
    _late_said: dt.datetime | None = None  # the last instant whose late start was logged
    _caseload_stamps: dict[str, object] = field(default_factory=dict)  # folder -> stamp

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.state)
        self.continuity = Continuity(self.state, self.mark_file)
        self.host = socket.gethostname()[:120]
        self.id = f"{self.host[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.started = self.now()
        self.late = late_after()
        self.down_since: dt.datetime | None = None  # the last step any daemon ran before us
        self._failing: dict[str, str] = {}  # what is failing -> its error, logged once
        self.caseloads: dict[str, Caseload] = {}  # by ledger id: the folders' caseloads
        self.caseload_errors: dict[str, str] = {}  # folder (or folder#slug) -> its error
        self._source_of: dict[str, Path] = {}  # LEA id -> the source it was planned from
        self._caseload_source: dict[str, Path] = {}  # caseload ledger id -> its folder
        self._weekly: set[str] = set()  # caseloads synced with a weekly digest last time

    # ---------------------------------------------------------------- planning

    def _fingerprint(self) -> object:
        paths = [p for s in self.sources for p in profiles_in(s)]
        named = [c for s in self.sources if s.is_dir() and (c := caseloads_file(s)).exists()]
        self._file_stamps = {str(p): _stamp(p) for p in [*paths, *named]}
        guides = guide_stamp(self.sources, self.guide_dir)  # bundled, PACING_GUIDES, guides/
        return (tuple(self._file_stamps.items()), guides, self.state.plan_counter(),
                self.now().date())  # fmt: skip

    def replan(self, force: bool = False) -> bool:
        """Re-plan what changed, and only that: a profile (its LEA), a source's guides (its
        LEAs), a done mark or an opt-out (that LEA), a delivery choice (every LEA), the LEA's
        date. Whether anything changed."""
        seen = self._fingerprint()
        if seen == self._seen and not force:
            return False
        self._seen = seen
        counter = self.state.plan_counter()
        marks: Mapping[str, LeaMarks] = self._marks
        everyone = False
        counted = force or counter != self._counter  # marks, opt-outs or choices changed
        if counted:
            self._counter = counter
            marks = self.state.marks_by_lea()
            chosen = chosen_deliveries(self.state)  # people's own choices, from their emails
            everyone = force or chosen != self._chosen
            self._chosen = chosen
        touched: set[Path] = set()
        for source in self.sources:
            changed, guides = self._guides_changed(source)
            for path in profiles_in(source):
                if everyone or changed or self._stale(path, marks):
                    self._replan_profile(source, path, guides, marks)
                    touched.add(source)
        self._marks = marks
        for source in (s for s in self.sources if s.is_dir()):
            named = self._caseloads_changed(source)
            if counted or named or source in touched:
                self._replan_caseloads(source)
        return True

    def _stale(self, path: Path, marks: Mapping[str, LeaMarks]) -> bool:
        """Whether a profile's plan may have changed: its file, its marks or its date."""
        lea_id = self._lea_of.get(str(path))
        if lea_id is None or self._stamps.get(str(path)) != self._file_stamps.get(str(path)):
            return True
        timeline = self.timelines.get(lea_id)
        if timeline is None or marks.get(lea_id) != self._marks.get(lea_id):
            return True
        return self.now().astimezone(ZoneInfo(timeline.lea.timezone)).date() != timeline.today

    def _replan_profile(
        self, source: Path, path: Path, guides: tuple[Guide, ...],
        marks: Mapping[str, LeaMarks],
    ) -> None:  # fmt: skip
        """One profile: a bad or vanishing file keeps its current reminders; so does an LEA
        whose program's guide does not validate yet (never cancelled for a guide's typo)."""
        self._stamps[str(path)] = self._file_stamps.get(str(path))
        try:
            lea = load_lea(path, guides)
        except Exception as e:  # load_lea maps content to DataError; the rest the same
            self._profile_failed(path, e)
            return
        self._lea_of[str(path)] = lea.id
        waiting = self._waits_for_guide(source, guides, lea)
        if waiting:
            self._profile_failed(path, DataError([Problem(str(path), "guides", waiting)]))
            return
        done, unsubscribed = marks.get(lea.id, ((), ()))
        try:
            today = self.now().astimezone(ZoneInfo(lea.timezone)).date()
            timeline = expand(guides, lea, today, dict(done))
            planned = without_opted_out(plan(timeline, self._chosen), dict(unsubscribed))
        except Exception as e:  # planning this profile failed: the others go on
            self._profile_failed(path, e)
            return
        self.errors.pop(str(path), None)
        self.timelines[lea.id] = timeline
        self._source_of[lea.id] = source
        added, cancelled = self.ledger.sync(lea.id, planned, self._latest())
        if added or cancelled:
            log.info("planned %s: %d new, %d cancelled", lea.id, added, cancelled)

    def _latest(self) -> dt.datetime:
        """The latest time this daemon (or, before it started, any) has seen: what is first
        planned long before it is not taken in, even while the clock is stepped back (so a
        step back never sends what the ledger left out)."""
        self._high = max(self.now(), self._high or self.now())
        return self._high

    def _caseloads_changed(self, folder: Path) -> bool:
        path = caseloads_file(folder)
        stamp = _stamp(path) if path.exists() else None
        if self._caseload_stamps.get(str(folder), False) == stamp:
            return False
        self._caseload_stamps[str(folder)] = stamp
        return True

    def _replan_caseloads(self, folder: Path) -> None:
        """The weekly digests of the folder's caseloads (see core.caseload_reminders), from the
        timelines just planned. A bad caseloads.toml is one log line (per change): the LEAs'
        reminders go on and the last good caseloads are kept."""
        now = self.now()
        leas = [self.timelines[i].lea for i, s in self._source_of.items() if s == folder]
        try:
            loads = folder_caseloads(folder, leas, self.state)
        except (DataError, OSError) as e:
            where = caseloads_file(folder)
            message = str(e) if isinstance(e, DataError) else f"{where}: {brief(e)}"
            if self.caseload_errors.get(str(folder)) != message:
                log.error("caseloads error, keeping the current caseload digests: %s", message)
            self.caseload_errors[str(folder)] = message
            return
        self.caseload_errors = {k: v for k, v in self.caseload_errors.items()
                                if k.split("#")[0] != str(folder)}  # fmt: skip
        fresh = {ledger_id(c.slug): c for c in loads}
        for key in [k for k, s in self._caseload_source.items() if s == folder and k not in fresh]:
            del self.caseloads[key], self._caseload_source[key]  # gone from the folder
            if key in self._weekly:
                self._sync_caseload(key, [], now)
        for key, load in fresh.items():
            if self._caseload_source.setdefault(key, folder) != folder:
                other = self._caseload_source[key]
                message = f"{folder}: caseload {load.slug!r} is also {other}'s: not planned"
                if self.caseload_errors.get(f"{folder}#{load.slug}") != message:
                    log.error("caseloads error: %s", message)
                self.caseload_errors[f"{folder}#{load.slug}"] = message
                continue
            self.caseloads[key] = load
            if not weekly(load) and key not in self._weekly:
                continue  # no digest asked for, none planned before
            start, until = window(local_day(load, now))
            planned = plan_caseload(load, self.timelines, start, until)
            self._sync_caseload(key, without_opted_out(planned, self.state.opted_out(key)), now)

    def _sync_caseload(self, key: str, planned: list[Reminder], now: dt.datetime) -> None:
        """A week first planned after its instant (a new caseload, a first start, a week that
        only now has something to say) is not taken in: last week's digest is not sent on the
        first day; a week the ledger already held is caught up after downtime as usual."""
        added, cancelled = self.ledger.sync(key, planned, self._latest(), backfill=self.late)
        if planned:
            self._weekly.add(key)
        else:
            self._weekly.discard(key)
        if added or cancelled:
            log.info("planned %s: %d new, %d cancelled", key, added, cancelled)

    def _guides_changed(self, source: Path) -> tuple[bool, tuple[Guide, ...]]:
        """The guides of a source's search path (bundled, PACING_GUIDES, its guides/), and
        whether they changed since the last re-plan. A bad guide keeps its last good version
        (logged once per change); one with none yet is skipped (see `_waits_for_guide`)."""
        stamp = guide_stamp([source], self.guide_dir)
        if self._guide_stamps.get(str(source)) == stamp:
            return False, self._guides_of[str(source)]
        files, problems = load_guides_keeping([source], self.guide_dir, self._guide_files)
        said = {f"{source}|{p.file}": str(p) for p in problems}
        for key, problem in said.items():
            if self._guide_errors.get(key) != problem:
                log.error("guide error, keeping the last good guides: %s", problem)
        others = {k: v for k, v in self._guide_errors.items() if not k.startswith(f"{source}|")}
        self._guide_errors = {**others, **said}
        by_file: dict[str, list[Problem]] = {}
        for found in (p for p in problems if p.file not in self._guide_files):
            by_file.setdefault(found.file, []).append(found)
        skipped = (SkippedGuide.of(Path(f), found) for f, found in by_file.items())
        self._skipped[str(source)] = tuple(skipped)
        self._guide_stamps[str(source)] = stamp
        self._guides_of[str(source)] = tuple(f.guide for f in files)
        return True, self._guides_of[str(source)]

    def _waits_for_guide(self, source: Path, guides: tuple[Guide, ...], lea: Lea) -> str | None:
        """Why an LEA keeps its reminders as planned: a guide on its search path that has never
        validated would plan it (the CLI's rule: `SkippedGuide.concerns`). The other LEAs are
        planned as usual."""
        bad = [s for s in self._skipped.get(str(source), ()) if s.concerns(lea, guides)]
        if not bad:
            return None
        return f"waits for a guide that does not validate, its reminders kept: {bad[0].problems[0]}"

    @property
    def guide_errors(self) -> list[str]:
        """The guides that do not validate (their last good version, if any, is used)."""
        return sorted(set(self._guide_errors.values()))

    def _profile_failed(self, path: Path, error: Exception) -> None:
        message = str(error) if isinstance(error, DataError) else f"{path}: {brief(error)}"
        if self.errors.get(str(path)) != message:  # one line per change, not per re-plan
            log.error("profile error, keeping its current reminders: %s", message)
        self.errors[str(path)] = message

    # ---------------------------------------------------------------- one step

    def _fold_reason(self, row: Row, now: dt.datetime) -> str | None:
        if is_caseload(row.lea):
            return self._caseload_fold_reason(row, now)
        floor = self.continuity.floor
        if floor is not None and row.send_at <= floor:
            return "due before the high-water mark of the ledger it replaced: not sent again"
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

    def _caseload_fold_reason(self, row: Row, now: dt.datetime) -> str | None:
        """A caseload digest is not sent once its week is over, nor for a week found to have
        nothing to say at send time (as of the sending day, from the current timelines)."""
        load = self.caseloads.get(row.lea)
        if load is None or not weekly(load) or load.email != row.to:
            return "the caseload's weekly digest is no longer asked for"
        today = local_day(load, now)
        if today > row.due + dt.timedelta(days=6):
            return "the week is over"
        if not digest(load, self.timelines, today):
            return "nothing to say this week"
        return None

    def _caseload_waits(self, row: Row) -> bool:
        """A digest of a caseload unknown while a caseloads.toml fails waits for the fix
        (retried) rather than being folded as no longer asked for."""
        return is_caseload(row.lea) and row.lea not in self.caseloads and bool(self.caseload_errors)

    def _ends_of_day(self, rows: Sequence[Row], now: dt.datetime) -> dict[str, dt.datetime]:
        """The end of each recipient's day (in the zone of the LEA of their reminder): what is
        planned for them later that day goes in this morning's email."""
        ends: dict[str, dt.datetime] = {}
        for row in rows:
            timeline = self.timelines.get(row.lea)
            if timeline is None or row.to in ends:
                continue
            zone = ZoneInfo(timeline.lea.timezone)
            day = now.astimezone(zone).date() + dt.timedelta(days=1)
            ends[row.to] = dt.datetime.combine(day, dt.time(0), zone) - dt.timedelta(seconds=1)
        return ends

    def _messages(self, rows: Sequence[Row], now: dt.datetime) -> list[tuple[Row, ...]]:
        """One message per recipient: every reminder due to one person now, across items and
        LEAs (and, after downtime, the late ones); the carrier (first) row is the one with the
        smallest key, so a message resent after a kill keeps its Message-ID. A caseload digest
        is an email of its own."""
        groups: dict[str, list[Row]] = {}
        out: list[tuple[Row, ...]] = []
        for row in rows:
            if is_caseload(row.lea):
                out.append((row,))
            else:
                groups.setdefault(row.to, []).append(row)
        out += [tuple(sorted(g, key=lambda r: r.key)) for g in groups.values()]
        return out

    def _compose(self, rows: tuple[Row, ...], now: dt.datetime) -> Message:
        if is_caseload(rows[0].lea):  # never grouped: one row, its caseload's digest
            load = self.caseloads[rows[0].lea]
            return compose_caseload(rows[0], load, self.timelines, self.sender.address,
                                    self.page_url, now, self.links)  # fmt: skip
        late = all(now - r.send_at > self.late for r in rows)
        return compose_bundle(rows, self.timelines, self.sender.address, self.page_url, now,
                              self.links, late, self.mailto)  # fmt: skip

    def _composed(
        self, batch: list[tuple[Row, ...]], now: dt.datetime, report: StepReport
    ) -> tuple[list[tuple[Row, ...]], list[Message]]:
        """Each message composed on its own: one that cannot be made is split into its rows,
        and a row that still cannot be made is retried later (then failed) alone, with the
        reason; the rest of the batch goes out."""
        kept: list[tuple[Row, ...]] = []
        messages: list[Message] = []
        for rows in batch:
            try:
                messages.append(self._compose(rows, now))
                kept.append(rows)
                continue
            except Exception as e:
                if len(rows) > 1:
                    log.error("cannot compose the email to %s (%d reminders), sending them one "
                              "by one: %s", _domain(rows[0].to), len(rows), brief(e))  # fmt: skip
                    more, made = self._composed([(r,) for r in rows], now, report)
                    kept += more
                    messages += made
                    continue
                self._give_up_or_retry(rows, f"cannot compose: {brief(e)}", now, report)
        return kept, messages

    def _give_up_or_retry(
        self, rows: tuple[Row, ...], error: str, now: dt.datetime, report: StepReport
    ) -> bool:
        """Retry later with backoff, or, after MAX_ATTEMPTS, record the rows failed."""
        row = rows[0]
        what = _what(row)
        if row.attempts < MAX_ATTEMPTS:
            at = now + backoff(row.attempts)
            report.retried += 1
            log.warning("will retry %s at %s: %s", what, f"{at:%H:%M:%S}Z", error)
            return all([self.ledger.retry(r, error, at) for r in rows])
        report.failed += 1
        log.error("failed %s: %s", what, error)
        return all([self.ledger.failed(r, error) for r in rows])

    async def step(self, now: dt.datetime | None = None) -> StepReport:
        """Send what is due now; every outcome recorded as soon as it is known, and only while
        this daemon still holds the claim (renewed before each send and meanwhile). A step
        claims a few recipients (BATCH), so daemons sharing a ledger share a burst."""
        now = now or self.now()
        report = StepReport()
        wanted: list[Row] = []
        claimed = self.ledger.claim(now, self.id, BATCH, self.late)
        claimed += self.ledger.claim_rest_of_day(self._ends_of_day(claimed, now), now, self.id)
        report.claimed = len(claimed)
        with self.ledger.held():  # one connection for what is folded or put off
            for row in claimed:
                if self._caseload_waits(row):
                    self.ledger.retry(row, "caseloads.toml has errors: waiting for a fix",
                                      now + RETRY_MAX)  # fmt: skip
                    report.retried += 1
                    continue
                reason = self._fold_reason(row, now)
                if reason and self.ledger.fold(row, reason):
                    report.folded += 1
                elif not reason:
                    wanted.append(row)
        batch, messages = self._composed(self._messages(wanted, now), now, report)
        if not batch:
            return report
        done: set[int] = set()
        lost: set[str] = set()

        def record(index: int, outcome: Outcome, error: str) -> None:
            done.add(index)
            rows = batch[index]
            if outcome == "sent":
                kept = (self.ledger.sent(rows[0], self.now()) if len(rows) == 1 else
                        self.ledger.sent_together(rows[0], rows[1:], self.now()))  # fmt: skip
                report.sent += kept
                report.carried += (len(rows) - 1) * kept
            elif outcome == "retry" and rows[0].attempts < MAX_ATTEMPTS:
                at = now + backoff(rows[0].attempts)
                kept = all([self.ledger.retry(r, error, at) for r in rows])
                report.retried += 1
                if not error.startswith("not attempted"):  # the sender logged those at once
                    log.warning("will retry %s at %s: %s", _what(rows[0]), f"{at:%H:%M:%S}Z",
                                error)  # fmt: skip
            else:
                kept = all([self.ledger.failed(r, error) for r in rows])
                report.failed += 1
                log.error("failed %s: %s", _what(rows[0]), error)
            if not kept:
                lost.add(rows[0].key)
                log.error("claim lost on %s (lease ran out, another daemon took it): "
                          "this batch stops", rows[0].key)  # fmt: skip

        def stop() -> bool:
            """Asked before each message, in order (the next one is len(done)): its claims are
            renewed, so it goes out only while this daemon holds every row it carries."""
            if self.stopping or lost:
                return True
            rows = batch[len(done)] if len(done) < len(batch) else ()
            if len(self.ledger.renew(rows, self.now())) == len(rows):
                return False
            lost.add(rows[0].key)
            log.error("claim lost on %s before sending it: this batch stops", rows[0].key)
            return True

        broken: str | None = None
        try:
            with self.ledger.held(), self._renewing(batch, done, lost):
                await self.sender.send(messages, record, stop)
        except Exception as e:  # a sender's own bug: those not reported wait, never a hot loop
            broken = f"sender failed: {brief(e)}"
            log.error("%s", broken)
        finally:
            for index, rows in enumerate(batch):
                if index in done:
                    continue
                if broken is not None:
                    self._give_up_or_retry(rows, broken, now, report)
                else:  # stopped before sending it: taken again at once
                    for row in rows:
                        self.ledger.release(row)
        report.lost = len(lost)
        log.info("step: %s", report)
        return report

    @contextlib.contextmanager
    def _renewing(
        self, batch: list[tuple[Row, ...]], done: set[int], lost: set[str]
    ) -> Iterator[None]:
        """While a batch is being sent, renew the lease of its claims as it starts and every
        third of a lease (and record the heartbeat), so a long batch keeps what it holds."""
        every = self.ledger.lease.total_seconds() / 3

        async def renew() -> None:
            while True:  # at once (composing took some of the lease), then every third
                rows = [r for i, g in enumerate(batch) if i not in done for r in g]
                kept = self.ledger.renew(rows, self.now())
                if len(kept) < len(rows):
                    lost.update(r.key for r in rows if r.key not in kept)
                    log.error("%d claims lost while sending: this batch stops",
                              len(rows) - len(kept))  # fmt: skip
                await asyncio.sleep(every)
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
        """One step, never fatal: a failure is one log line (per change) and a pause. Only a
        ledger that is not the one it was (emptied, swapped) stops the daemon."""
        now = self.now()
        if at is not None and now - at > LATE_STEP and at != self._late_said:
            self._late_said = at  # once per instant, not on every step of a long burst
            log.warning("step starts late: %d s after the instant it was for (%s)",
                        (now - at).total_seconds(), f"{at:%Y-%m-%d %H:%M:%S}Z")  # fmt: skip
        try:
            self.continuity.verify()
            report = await self.step()
            if report.sent:
                self.continuity.delivered()
        except LedgerMismatch:
            raise
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

    async def run(self, watch_seconds: float = WATCH, signals: bool = True) -> None:
        """Until SIGTERM/SIGINT (or `request_stop`): the email in flight finishes and is
        recorded. With signals=False the caller (the feed server) owns the signals. Waits are
        measured on the monotonic clock and never longer than `watch_seconds`; the wall clock
        is read afresh on every wake, so a step of it either way is seen within one watch.
        Re-planning runs in a worker thread (the feed server's loop keeps answering)."""
        self._wake = asyncio.Event()
        if signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        self.continuity.open(self.state.accept_empty_ledger)
        self.down_since = self._high = self.ledger.last_seen()
        if self.down_since and self.now() < self.down_since - CLOCK_BEHIND:
            log.warning("the clock (%s) is behind the last step recorded (%s): what was sent "
                        "or folded stays so; the rest goes out by this clock",
                        f"{self.now():%Y-%m-%d %H:%M}Z", f"{self.down_since:%Y-%m-%d %H:%M}Z")  # fmt: skip
        await asyncio.to_thread(self.replan, True)
        self._beat(True)
        log.info("daemon %s running (lease %g s)", self.id, self.ledger.lease.total_seconds())
        watch_at = self.monotonic() + watch_seconds
        while not self.stopping:
            if self.monotonic() >= watch_at:  # look for changed profiles, guides, done marks
                watch_at = self.monotonic() + watch_seconds
                await asyncio.to_thread(self._verify_and_replan)
            at, now = self._next_instant(), self.now()
            if at is not None and at <= now:
                await self._guarded(at)  # then, at once, the next instant again
                continue
            wait = watch_at - self.monotonic()
            await self._nap(wait if at is None else min(wait, (at - now).total_seconds()))
        log.info("stopped")

    def _next_instant(self) -> dt.datetime | None:
        try:
            at = self.ledger.next_instant()
        except Exception as e:
            self._beat(False, self._trouble("reading the ledger", e))
            return None
        self._trouble("reading the ledger", None)
        return at

    def _verify_and_replan(self) -> None:
        """Every watch: the ledger is still the one opened (emptied while running: stop), and
        what changed is re-planned."""
        try:
            self.continuity.verify()
        except LedgerMismatch:
            raise
        except Exception as e:  # the store is unreachable: the re-plan reports it
            log.debug("cannot check the ledger's marks: %s", brief(e))
        self._replan_guarded()

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
