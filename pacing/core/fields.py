"""Field types shared by the guide and LEA models."""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, StringConstraints

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
