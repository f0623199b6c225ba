"""The one module that reads the clock (SOURCE_DATE_EPOCH pins it, for reproducible output)."""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo


def now() -> dt.datetime:
    """The current time in UTC, whole seconds."""
    pinned = os.environ.get("SOURCE_DATE_EPOCH")
    if pinned:
        return dt.datetime.fromtimestamp(int(pinned), dt.UTC)
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def today(timezone: str = "America/Los_Angeles") -> dt.date:
    return now().astimezone(ZoneInfo(timezone)).date()
