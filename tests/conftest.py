"""Named fixtures: the bundled guides, the example LEAs, and a profile factory."""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pacing.adapters.files import bundled_guides
from pacing.core.guide import Guide
from pacing.core.lea import Lea

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def guides() -> tuple[Guide, ...]:
    return bundled_guides()


def profile_data(name: str) -> dict[str, Any]:
    return tomllib.loads((EXAMPLES / f"{name}.toml").read_text())


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if value and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture
def make_lea() -> Callable[..., Lea]:
    """An example LEA with changes merged in: make_lea("riverbend-usd", calendar={...})."""

    def make(name: str = "sunrise-usd", **changes: Any) -> Lea:
        return Lea.model_validate(merge(profile_data(name), changes))

    return make


@pytest.fixture
def may_2024() -> dt.date:
    return dt.date(2024, 5, 1)
