"""The one module that reads the clock.

SOURCE_DATE_EPOCH pins it (reproducible exports); PACING_NOW (epoch seconds, or ISO 8601 such as
2024-11-20T16:00:00Z) starts it at that instant and lets it run from there (tests that restart a
daemon at a later instant). A bad PACING_NOW is a one-line error.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from zoneinfo import ZoneInfo

from pacing.core.errors import fail

_STARTED = time.monotonic()


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


def today(timezone: str = "America/Los_Angeles") -> dt.date:
    return now().astimezone(ZoneInfo(timezone)).date()
