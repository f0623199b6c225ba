"""The one module that reads the clock."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def today(timezone: str = "America/Los_Angeles") -> dt.date:
    return dt.datetime.now(ZoneInfo(timezone)).date()
