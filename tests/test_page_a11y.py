"""The feed page and the printable checklist checked by tools nobody here wrote: axe-core in
real headless Chromium (WCAG 2.1 AA, at 1280 px and at a 390 px phone) and the Nu HTML checker
(vnu), both from tests/kit (npm ci, see tests/setup.sh); and the page's "Next 30 days" section
and school-year chart for a fixed date."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pacing.adapters.files import bundled_guides, load_lea
from pacing.core.timeline import Timeline, expand
from pacing.export.checklist import render_checklist
from pacing.export.checklist import render_feed_page as old_import
from pacing.export.page import render_feed_page

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / "tests" / "kit" / "node_modules"
AXE = KIT / "axe-core" / "axe.min.js"
VNU = KIT / "vnu-jar" / "build" / "dist" / "vnu.jar"
LEAS = ("riverbend-usd", "sunrise-usd", "lakeside-usd")
WIDTHS = (1280, 390)
AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FEED = "https://pacing.example/feeds/x/k3y.ics"


def timeline(name: str, today: dt.date = dt.date(2024, 5, 1)) -> Timeline:
    return expand(bundled_guides(), load_lea(ROOT / "examples" / f"{name}.toml"), today)


def page_html(t: Timeline) -> str:
    return render_feed_page(t, FEED, "webcal://" + FEED.split("://", 1)[1])


def need(path: Path) -> None:
    if not path.exists():
        pytest.fail(f"{path} is missing: run tests/setup.sh (npm ci in tests/kit)")


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Each LEA's feed page and checklist, rendered to files."""
    root = tmp_path_factory.mktemp("pages")
    out = []
    for name in LEAS:
        t = timeline(name)
        (page := root / f"{name}-page.html").write_text(page_html(t))
        (checklist := root / f"{name}-checklist.html").write_text(render_checklist(t, "html"))
        out += [page, checklist]
    return out



def test_the_feed_page_moved_and_the_old_import_still_works() -> None:
    assert old_import is render_feed_page
    assert render_feed_page.__module__ == "pacing.export.page"


@pytest.mark.parametrize("width", WIDTHS)
def test_axe_finds_no_serious_violation_and_nothing_scrolls_sideways(
    browser: Any, pages: list[Path], width: int
) -> None:
    need(AXE)
    script = AXE.read_text()
    for path in pages:
        page = browser.new_page(viewport={"width": width, "height": 900})
        try:
            page.goto(path.as_uri(), wait_until="load")
            page.add_script_tag(content=script)
            result = page.evaluate(
                "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AA
            )
            bad = [
                (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:5])
                for v in result["violations"]
                if v["impact"] in ("serious", "critical")
            ]
            assert bad == [], (path.name, width, bad)
            assert result["passes"], "axe ran no check"
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, (path.name, width, scroll)
            # the chart scrolls inside its own box, which a keyboard can reach
            box = page.locator(".chart-scroll").first
            assert box.evaluate("e => getComputedStyle(e).overflowX") == "auto"
            assert box.get_attribute("tabindex") == "0"
            # item ids are shown, small and muted (axe checked their contrast)
            assert page.locator("code.item-id").count() > 10
        finally:
            page.close()


def test_vnu_reports_no_error(pages: list[Path]) -> None:
    need(VNU)
    java = shutil.which("java")
    if java is None:
        pytest.fail("java (17 or later) is missing: vnu needs it")
    run = subprocess.run(
        [java, "-jar", str(VNU), "--errors-only", "--format", "json", *map(str, pages)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    messages = json.loads(run.stderr or run.stdout)["messages"]
    errors = [(Path(m.get("url", "")).name, m.get("lastLine"), m["message"]) for m in messages]
    assert errors == []
    assert run.returncode == 0


def test_next_30_days_for_riverbend_on_sep_16_2024() -> None:
    # Worked out by hand from the items' dates on Sep 16, 2024 (through Oct 16): open items
    # due, opening (windows) or to be started (plan) in that span, each listed once.
    page = page_html(timeline("riverbend-usd", dt.date(2024, 9, 16)))
    section = page[page.index('<section class="next-up"') : page.index("</section>")]
    assert page.index('<section class="next-up"') < page.index('<section class="subscribe"')
    assert '<h2 id="next-title">Next 30 days</h2>' in section
    rows = re.findall(
        r'<li class="next status-([a-z-]+)( this-week)?" data-id="([^"]+)">\s*'
        r'<time class="when" datetime="([0-9-]+)">.*?<span class="words">([^<]+)</span>'
        r'.*?<code class="item-id" title="[^"]+">([^<]+)</code>',
        section, re.S,
    )  # fmt: skip
    got = [(date, words, short, status, bool(week)) for status, week, _, date, words, short in rows]
    assert got == [
        ("2024-09-25", "Plan: start by", "initiative-inventory", "upcoming", False),
        ("2024-09-25", "Plan: start by", "theory-of-action", "upcoming", False),
        ("2024-10-01", "CDE window opens", "action-plan", "upcoming", False),
        ("2024-10-01", "CDE window opens", "budget-forms", "upcoming", False),
        ("2024-10-01", "CDE window opens", "finalize-plan", "upcoming", False),
        ("2024-10-01", "CDE window opens", "partners-plan-feedback", "upcoming", False),
        ("2024-10-09", "CDE deadline", "step-3-fmta-check-in-october", "upcoming", False),
        ("2024-10-10", "CDE deadline", "step-2-submission", "upcoming", False),
    ]
    assert 'data-id="sig-dis-2024/step-2/step-2-submission"' in section
    assert "(until Thu, Oct 31, 2024)" in section
    assert "Already missed: 17 overdue (CDE), 1 behind plan" in section
    # on May 1, 2024 the open windows ending within the month are due soon
    may = page_html(timeline("riverbend-usd"))
    may = may[may.index('<section class="next-up"') : may.index("</section>")]
    assert re.findall(r'class="item-id" title="[^"]+">([^<]+)<', may) == [
        "case-study", "parent-input", "ppp-review", "data-drill-down", "infrastructure-analysis",
    ]  # fmt: skip
    assert 'class="next status-at-risk this-week"' not in may  # data-drill-down: May 31
    assert may.count(" this-week") == 3  # the three windows opening today


def test_chart_shows_the_school_year_with_the_full_span_one_click_away() -> None:
    page = page_html(timeline("riverbend-usd", dt.date(2024, 9, 16)))
    charts = re.findall(r'<svg [^>]*aria-label="([^"]+)"', page)
    assert len(charts) == 2
    assert "Jul 1, 2024 to Jun 30, 2025" in charts[0]
    assert "Jul 1, 2024 to Jun 30, 2025" not in charts[1]
    full = page[page.index('<details class="chart-full">') :]
    assert full.index("<summary>") < full.index("<svg") < full.index("</details>")
    assert "<script" not in page
    # the printable checklist keeps the full span in its one chart
    checklist = render_checklist(timeline("riverbend-usd", dt.date(2024, 9, 16)), "html")
    assert checklist.count("<svg") == 1 and "<details" not in checklist
    assert re.search(r'<svg [^>]*aria-label="[^"]+"', checklist).group(0) in page  # type: ignore[union-attr]
