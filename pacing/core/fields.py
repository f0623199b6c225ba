"""Field types shared by the guide and LEA models."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sized
from typing import Annotated, Literal, TypeVar, get_args

from pydantic import AfterValidator, StringConstraints

S = TypeVar("S", bound=Sized)

Tier = Literal["universal", "targeted", "intensive"]
Role = Literal[
    "superintendent",
    "gen-ed-admin",
    "sped-admin",
    "site-admin",
    "selpa-rep",
    "sped-teacher",
    "gen-ed-teacher",
    "other",
]
ROLES: tuple[str, ...] = get_args(Role)

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=80)]


def _printable(text: str) -> str:
    """Reject CR/LF and other control characters: they would inject headers or break lines."""
    bad = next((ch for ch in text if not ch.isprintable()), None)
    if bad is not None:
        raise ValueError(f"contains the control character {bad!r}")
    return text


Text = Annotated[str, AfterValidator(_printable)]
EMAIL = re.compile(r"[^@\s<>,;:\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
Email = Annotated[str, StringConstraints(pattern=f"^{EMAIL.pattern}$", max_length=254)]

# Every date a guide or a profile gives lies in this window: the working-day calendar, the
# holidays and the date arithmetic of the core are bounded by it (no overflow near year 1 or
# 9999, no walk over millennia).
FIRST_DAY = dt.date(1990, 1, 1)
LAST_DAY = dt.date(2100, 12, 31)


def in_window(day: dt.date) -> dt.date:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"must be between {FIRST_DAY} and {LAST_DAY}")
    return day


Day = Annotated[dt.date, AfterValidator(in_window)]


def at_most(limit: int, what: str = "entries") -> Callable[[S], S]:
    """A validator: at most `limit` entries (a list or table from a file stays bounded)."""

    def check(value: S) -> S:
        if len(value) > limit:
            raise ValueError(f"at most {limit} {what} (found {len(value)})")
        return value

    return check
