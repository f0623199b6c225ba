"""Named fixtures: the bundled guides, the example LEAs, and a profile factory."""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from smtpd import SmtpServer
from typing import Any

import pytest

from pacing.adapters.files import bundled_guides
from pacing.core.guide import Guide
from pacing.core.lea import Lea

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's (tests/setup.sh installs it)
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free 127.0.0.1 port, keeping what it receives."""
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium through playwright (never a downloaded browser). Per module:
    playwright's sync API keeps an event loop running in this thread while it is open, and
    later tests run their own (asyncio.run)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (tests/setup.sh does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


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
