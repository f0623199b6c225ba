"""The one module that reads the clock.

SOURCE_DATE_EPOCH pins it (reproducible exports); PACING_NOW (epoch seconds, or ISO 8601 such as
2024-11-20T16:00:00Z) starts it at that instant and lets it run from there (tests that restart a
daemon at a later instant). A bad PACING_NOW is a one-line error.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from pacing.core.errors import fail


def _process_start() -> float:
    """The monotonic time this process started (PACING_NOW counts from there, not from when
    this module was imported, after the profiles were read): Linux's /proc, else now."""
    try:
        fields = Path("/proc/self/stat").read_text().rpartition(")")[2].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # since boot
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic()
    return time.monotonic() - max(age, 0.0)


_STARTED = _process_start()
log = logging.getLogger("pacing.clock")


def start_instant(text: str) -> float:
    """PACING_NOW as epoch seconds: a number, or an ISO 8601 instant (UTC when no offset)."""
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise fail(
            "environment", "PACING_NOW", f"{value!r} is not epoch seconds or an ISO 8601 instant "
            "(e.g. 2024-11-20T16:00:00Z)",
        ) from None  # fmt: skip
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def now() -> dt.datetime:
    """The current time in UTC, whole seconds."""
    pinned = os.environ.get("SOURCE_DATE_EPOCH")
    if pinned:
        return dt.datetime.fromtimestamp(int(pinned), dt.UTC)
    start = os.environ.get("PACING_NOW")
    if start:
        moment = start_instant(start) + time.monotonic() - _STARTED
        return dt.datetime.fromtimestamp(int(moment), dt.UTC)
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def monotonic() -> float:
    """Seconds on a clock no step of the wall clock moves (what waits are measured on)."""
    return time.monotonic()


def today(timezone: str = "America/Los_Angeles") -> dt.date:
    return now().astimezone(ZoneInfo(timezone)).date()


@dataclass
class ClockGuard:
    """The wall clock, checked against the monotonic clock between readings. A forward jump
    (VM resume, NTP step) larger than `tolerance` is not believed until it has persisted for
    `grace` of monotonic time: until then the clock reads as if it had not jumped, so nothing
    falls "overdue" or is folded only by the jump; a jump back to where the clock was before
    it stepped back is believed at once. A backward jump is believed at once (it can only
    delay); after a believed forward jump it is reported to `on_back`, which re-plans what that
    jump folded (never what was delivered)."""

    wall: Callable[[], dt.datetime] = now
    monotonic: Callable[[], float] = time.monotonic
    tolerance: dt.timedelta = dt.timedelta(minutes=2)
    grace: dt.timedelta = dt.timedelta(minutes=10)
    on_back: Callable[[dt.datetime], object] = lambda moment: None
    _trusted: tuple[dt.datetime, float] | None = None  # the last believed (wall, monotonic)
    _jump_since: float | None = None  # monotonic time a forward jump was first seen
    _before_back: tuple[dt.datetime, float] | None = None  # the last trusted before a step back
    _believed_forward: bool = False  # a forward jump was believed (a step back may undo it)

    def __call__(self) -> dt.datetime:
        wall, mono = self.wall(), self.monotonic()
        if self._trusted is None:
            self._trusted = (wall, mono)
            return wall
        drift = wall - _extrapolated(self._trusted, mono)
        if drift > self.tolerance and not self._returned(wall, mono):
            if self._jump_since is None:
                self._jump_since = mono
                log.warning("the clock jumped forward %s: not believed for %s (until then "
                            "the time is %s)", drift, self.grace,
                            f"{wall - drift:%Y-%m-%d %H:%M:%S}Z")  # fmt: skip
            if mono - self._jump_since < self.grace.total_seconds():
                return (wall - drift).replace(microsecond=0)
            log.warning("the clock's forward jump persisted for %s: believed", self.grace)
            self._believed_forward = True
        elif drift < -self.tolerance:
            log.warning("the clock jumped back %s: %s", -drift, f"now {wall:%Y-%m-%d %H:%M:%S}Z")
            self._before_back = self._before_back or self._trusted
            if self._believed_forward:
                self._believed_forward = False
                self.on_back(wall)
        elif self._jump_since is not None:
            log.info("the clock is back where it was expected: the jump is forgotten")
        self._trusted, self._jump_since = (wall, mono), None
        return wall

    def _returned(self, wall: dt.datetime, mono: float) -> bool:
        """Whether a forward jump lands where the clock was before it stepped back."""
        if self._before_back is None:
            return False
        if abs(wall - _extrapolated(self._before_back, mono)) > self.tolerance:
            return False
        log.warning("the clock is back where it was before it stepped back: believed")
        self._before_back = None
        return True


def _extrapolated(trusted: tuple[dt.datetime, float], mono: float) -> dt.datetime:
    """Where a trusted (wall, monotonic) reading says the wall clock is at `mono`."""
    return trusted[0] + dt.timedelta(seconds=mono - trusted[1])
