"""The feed page and the printable checklist in real headless Chromium, served over loopback
HTTP: no console errors, no page errors, no requests beyond the page itself, the chart drawn."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pacing.adapters.files import bundled_guides, load_lea
from pacing.core.timeline import expand
from pacing.export.checklist import render_checklist
from pacing.export.page import render_feed_page

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TOKEN = "k3y-0f-th3-f33d"


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The rendered pages in a folder served by a real HTTP server on 127.0.0.1."""
    root = tmp_path_factory.mktemp("site")
    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    guides = bundled_guides()
    today = dt.date(2024, 5, 1)
    for name in ("riverbend-usd", "sunrise-usd", "lakeside-usd"):
        t = expand(guides, load_lea(ROOT / "examples" / f"{name}.toml"), today)
        feed = f"{base}/feeds/{name}/{TOKEN}.ics"
        page = root / "feeds" / name / TOKEN / "index.html"
        page.parent.mkdir(parents=True)
        page.write_text(render_feed_page(t, feed, "webcal://" + feed.split("://", 1)[1]))
        (root / f"{name}-checklist.html").write_text(render_checklist(t, "html"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)



def load(browser: Any, url: str, base: str) -> tuple[Any, list[str]]:
    """The page at `url`, and every problem seen while loading it."""
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on(
        "request",
        lambda r: None if r.url.startswith(base) else problems.append(f"external request: {r.url}"),
    )
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == 200
    page.wait_for_load_state("networkidle")
    return page, problems


def check_chart(page: Any) -> None:
    svg = page.locator("svg").first
    box = svg.bounding_box()
    assert box is not None and box["width"] > 500 and box["height"] > 100, box
    assert svg.get_attribute("role") == "img"
    assert "Today: May 1, 2024" in svg.text_content()
    today = svg.locator("g.today line").bounding_box()
    assert today is not None and box["x"] < today["x"] < box["x"] + box["width"]


@pytest.mark.parametrize("name", ["riverbend-usd", "sunrise-usd", "lakeside-usd"])
def test_feed_page_in_chromium(browser: Any, site: str, name: str) -> None:
    url = f"{site}/feeds/{name}/{TOKEN}/"
    page, problems = load(browser, url, site)
    try:
        assert problems == []
        check_chart(page)
        webcal = page.locator('a[href^="webcal://"]')
        assert webcal.count() == 1 and webcal.is_visible()
        assert (
            webcal.get_attribute("href")
            == f"webcal://{site.split('://')[1]}/feeds/{name}/{TOKEN}.ics"
        )
        field = page.locator("input#feed-url")
        assert field.input_value() == f"{site}/feeds/{name}/{TOKEN}.ics"
        assert field.get_attribute("readonly") is not None
        assert page.locator("h1").inner_text() == page.title().split(":")[0]
        # the page fits its width: nothing scrolls sideways
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        # the school year's chart shows; the full span is one click away (no script)
        full = page.locator("details.chart-full svg")
        assert not full.is_visible()
        page.locator("details.chart-full summary").click()
        assert full.is_visible()
        if name == "riverbend-usd":
            band = full.locator('g.band[data-period="sig-dis-2024/cceis-budget"]')
            assert band.locator("polygon.band-marker").count() == 8
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "feed-page.png"), full_page=True)
            assert (ARTIFACTS / "feed-page.png").stat().st_size > 10_000
        # printed: the subscribe help is hidden, the chart and the boxes stay
        page.emulate_media(media="print")
        assert not page.locator("#subscribe").is_visible()
        assert page.locator("svg").first.is_visible()
    finally:
        page.close()


def test_checklist_page_in_chromium(browser: Any, site: str) -> None:
    page, problems = load(browser, f"{site}/sunrise-usd-checklist.html", site)
    try:
        assert problems == []
        check_chart(page)
        assert page.locator("article.box").count() == 28
        assert "N/A - write N/A in this box" in page.locator("#box-2").inner_text()
        assert page.locator('a[href^="webcal:"]').count() == 0
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "checklist.png"), full_page=True)
        page.emulate_media(media="print")
        pdf = page.pdf(format="Letter", print_background=True)
        assert pdf.startswith(b"%PDF")
        (ARTIFACTS / "checklist.pdf").write_bytes(pdf)
    finally:
        page.close()
