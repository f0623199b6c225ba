"""The one module that reads the clock.

SOURCE_DATE_EPOCH pins it (reproducible exports); PACING_NOW (epoch seconds) starts it at that
instant and lets it run from there (tests that restart a daemon at a later instant).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from zoneinfo import ZoneInfo

_STARTED = time.monotonic()


def now() -> dt.datetime:
    """The current time in UTC, whole seconds."""
    pinned = os.environ.get("SOURCE_DATE_EPOCH")
    if pinned:
        return dt.datetime.fromtimestamp(int(pinned), dt.UTC)
    start = os.environ.get("PACING_NOW")
    if start:
        moment = float(start) + time.monotonic() - _STARTED
        return dt.datetime.fromtimestamp(int(moment), dt.UTC)
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def today(timezone: str = "America/Los_Angeles") -> dt.date:
    return now().astimezone(ZoneInfo(timezone)).date()
