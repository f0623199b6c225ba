"""What a feed consumer was last shown of one event (kept in the state store)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Revision:
    dates_digest: str
    content_digest: str
    sequence: int
    modified: dt.datetime  # UTC
