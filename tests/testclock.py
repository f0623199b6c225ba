"""An injected clock for the daemon tests, and local times in the LEAs' zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

LA = ZoneInfo("America/Los_Angeles")


class Clock:
    """Stands still until moved: `daemon.step()` sees exactly the instant a test chose."""

    def __init__(self, start: dt.datetime) -> None:
        self.at = start

    def __call__(self) -> dt.datetime:
        return self.at

    def move_to(self, moment: dt.datetime) -> None:
        self.at = moment


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    """hh:mm on y-m-d in Los Angeles, as UTC."""
    return dt.datetime(y, m, d, hh, mm, tzinfo=LA).astimezone(dt.UTC)
