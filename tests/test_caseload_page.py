"""The caseload page and its CSV on the fixture folder tests/caseloads (five LEAs, two SELPAs,
two FMTA consultants, the named caseload `ta-east`) on Nov 1, 2024: the rows worked out by
hand, the CSV through the csv module, and the page in real headless Chromium at 1280 and 390 px
(exactly its LEAs, sorting, filtering, no sideways scroll, no script needed to read it),
checked by axe-core and the Nu HTML checker (vnu) from tests/kit."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pacing.adapters.caseloads import folder_caseloads
from pacing.adapters.files import bundled_guides, load_lea, profiles_in
from pacing.core.caseload import Caseload, Row, rows
from pacing.core.timeline import Timeline, expand
from pacing.export.caseload import (
    CSV_COLUMNS,
    caseload_csv,
    caseload_table_rows,
    render_caseload_page,
)

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "tests" / "caseloads"
KIT = ROOT / "tests" / "kit" / "node_modules"
AXE = KIT / "axe-core" / "axe.min.js"
VNU = KIT / "vnu-jar" / "build" / "dist" / "vnu.jar"
AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
WIDTHS = (1280, 390)
TODAY = dt.date(2024, 11, 1)
BASE = "https://pacing.example/feeds"
NAMES = {
    "alder-usd": "Alder Unified School District",
    "birch-esd": "Birch Elementary School District",
    "cedar-sd": "Cedar School District",
    "dogwood-usd": "Dogwood Unified School District",
    "elm-usd": "Elm Unified School District",
}
MEMBERS = {  # worked out from the profiles' [contacts] and caseloads.toml
    "casey-park": ["alder-usd", "cedar-sd"],
    "jamie-cruz": ["birch-esd", "dogwood-usd"],
    "north-coast-selpa": ["alder-usd", "birch-esd"],
    "ta-east": ["alder-usd", "dogwood-usd"],
    "valle-del-sur-selpa": ["cedar-sd", "dogwood-usd", "elm-usd"],
}


@pytest.fixture(scope="module")
def timelines() -> dict[str, Timeline]:
    guides = bundled_guides()
    return {t.lea.id: t for t in (expand(guides, load_lea(p), TODAY) for p in profiles_in(FOLDER))}


@pytest.fixture(scope="module")
def loads(timelines: dict[str, Timeline]) -> dict[str, Caseload]:
    return {c.slug: c for c in folder_caseloads(FOLDER, [t.lea for t in timelines.values()])}


def urls(slug: str) -> dict[str, Any]:
    feed = f"{BASE}/_caseload/{slug}/t0k3n.ics"
    return {
        "feed_url": feed,
        "webcal_url": "webcal://" + feed.split("://", 1)[1],
        "plan_feed_url": feed + "?include=plan",
        "csv_url": f"{BASE}/_caseload/{slug}/t0k3n.csv",
        "lea_pages": {lea: f"{BASE}/{lea}/k3y-{lea}/" for lea in NAMES},
    }


def page_of(load: Caseload, timelines: dict[str, Timeline]) -> str:
    return render_caseload_page(load, rows(load, timelines), TODAY, **urls(load.slug))


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-lea="([^"]+)"', html)


# ------------------------------------------------------------------------------- rows and CSV


def test_each_caseload_lists_exactly_its_leas(
    loads: dict[str, Caseload], timelines: dict[str, Timeline]
) -> None:
    assert sorted(loads) == sorted(MEMBERS)
    for slug, members in MEMBERS.items():
        assert [r.lea_id for r in rows(loads[slug], timelines)] == members
        html = page_of(loads[slug], timelines)
        assert sorted(row_ids(html)) == members
        for lea, name in NAMES.items():
            assert (name in html) == (lea in members), (slug, lea)


def test_rows_worked_out_by_hand(
    loads: dict[str, Caseload], timelines: dict[str, Timeline]
) -> None:
    by_id = {r.lea_id: r for r in rows(loads["casey-park"], timelines)}
    alder = caseload_table_rows([by_id["alder-usd"]])[0]
    # Alder (Targeted Level 3, 2024): Step 1 submitted Jul 9 (its [done]), the Step 2
    # submission (CDE deadline Oct 10) is overdue, seven Step 2 boxes are past pacing's plan;
    # next: Step 3's submission, CDE deadline Dec 6 (29 days of November + 6).
    assert alder == {
        "LEA id": "alder-usd",
        "LEA": "Alder Unified School District",
        "Programs": "Targeted Level 3 (2024 cohort); Implementation and Monitoring (2024 cohort)",
        "Step": "Step 2: Investigate",
        "Next CDE item": "Submission (Step 3)",
        "Next CDE date": "2024-12-06",
        "Date label": "CDE deadline",
        "Days left": "35",
        "Overdue": "1",
        "Behind plan": "7",
        "Last submission": "Submit Step 1 (Gather and Inquire) in Stepwell",
        "Submitted on": "2024-07-09",
        "Done": "8",
        "Total": "21",
    }
    # Cedar (Sig Dis, new): the approvals window closes Nov 30, 29 days away
    cedar = caseload_table_rows([by_id["cedar-sd"]])[0]
    assert (cedar["Next CDE date"], cedar["Date label"], cedar["Days left"]) == (
        "2024-11-30", "CDE window ends", "29",
    )  # fmt: skip
    assert cedar["Last submission"] == cedar["Submitted on"] == ""
    # Birch (Implementation and Monitoring only): the next CDE item is an assumed date
    birch = [r for r in rows(loads["jamie-cruz"], timelines) if r.lea_id == "birch-esd"]
    got = caseload_table_rows(birch)[0]
    assert (got["Next CDE date"], got["Date label"], got["Days left"]) == (
        "2025-04-10", "Due (assumed date)", "160",
    )  # fmt: skip
    # Elm (universal): nothing to do, nothing due
    elm = [r for r in rows(loads["valle-del-sur-selpa"], timelines) if r.lea_id == "elm-usd"]
    assert caseload_table_rows(elm)[0] == {
        **dict.fromkeys(CSV_COLUMNS, ""),
        "LEA id": "elm-usd", "LEA": "Elm Unified School District",
        "Overdue": "0", "Behind plan": "0", "Done": "0", "Total": "0",
    }  # fmt: skip


def test_csv_round_trips_with_its_columns_who_needs_attention_first(
    loads: dict[str, Caseload], timelines: dict[str, Timeline]
) -> None:
    load = loads["valle-del-sur-selpa"]
    found = rows(load, timelines)
    text = caseload_csv(load, found)
    assert not text.startswith("\ufeff") and text.endswith("\r\n")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    got = list(reader)
    assert reader.fieldnames == CSV_COLUMNS
    # cedar and dogwood: 27 overdue each (ties by id); elm: none and nothing due
    assert [r["LEA id"] for r in got] == ["cedar-sd", "dogwood-usd", "elm-usd"]
    assert got == sorted(caseload_table_rows(found), key=lambda r: r["LEA id"])
    assert got[0]["Next CDE item"] == (
        "Obtain Required Approvals & Signatures (including Board Meeting presentation, if needed)"
        " (Step 3)"  # the current step is 1: the title says whose window it is
    )
    for r in got:
        for column in ("Next CDE date", "Submitted on"):
            assert r[column] == "" or dt.date.fromisoformat(r[column])
    excel = caseload_csv(load, found, excel=True)
    assert excel == "\ufeff" + text
    assert excel.encode("utf-8").startswith(b"\xef\xbb\xbf")


def test_csv_cells_never_run_as_formulas() -> None:
    load = Caseload("x", "X", None, ("named",), ("evil",))
    row = Row("evil", "=HYPERLINK(\u201chttp://x\u201d)", "E", ("-p",), "", None, None, 0, 0, 0,
              None, 0, 0)  # fmt: skip
    got = next(csv.DictReader(io.StringIO(caseload_csv(load, [row]), newline="")))
    assert got["LEA"] == '\'=HYPERLINK("http://x")'
    assert got["Programs"] == "'-p"
    assert got["Overdue"] == "0"


def test_page_says_what_each_count_and_feed_is(
    loads: dict[str, Caseload], timelines: dict[str, Timeline]
) -> None:
    html = page_of(loads["valle-del-sur-selpa"], timelines)
    assert "<title>Valle del Sur SELPA: CIM caseload, 3 LEAs</title>" in html
    assert "<h1>Valle del Sur SELPA</h1>" in html
    assert row_ids(html) == ["cedar-sd", "dogwood-usd", "elm-usd"]  # attention first
    assert f'<a href="{BASE}/cedar-sd/k3y-cedar-sd/">Cedar School District</a>' in html
    assert f'href="{BASE}/_caseload/valle-del-sur-selpa/t0k3n.csv"' in html
    assert ">Download CSV</a>" in html
    assert 'href="webcal://pacing.example/feeds/_caseload/valle-del-sur-selpa/t0k3n.ics"' in html
    assert (
        'href="webcal://pacing.example/feeds/_caseload/valle-del-sur-selpa/t0k3n.ics?include=plan"'
        in html
    )
    assert f'value="{BASE}/_caseload/valle-del-sur-selpa/t0k3n.ics?include=plan"' in html
    assert "The first calendar has only CDE's dates" in html
    assert "the second adds pacing's plan, estimates" in html
    assert "a nudge to the district's team, never late to CDE" in html
    assert '<time datetime="2024-11-30">Nov 30, 2024</time>' in html
    assert html.count('<span class="label">CDE window ends</span>') == 2
    # titles of the other kinds of caseload
    assert "<h1>Casey Park (FMTA consultant)</h1>" in page_of(loads["casey-park"], timelines)
    ta = page_of(loads["ta-east"], timelines)
    assert "<title>Robin Tran, TA facilitator: CIM caseload, 2 LEAs</title>" in ta
    assert row_ids(ta) == ["dogwood-usd", "alder-usd"]  # 27 overdue before 1


def test_page_escapes_and_drops_what_it_cannot_link(timelines: dict[str, Timeline]) -> None:
    load = Caseload("one", "<One & Co>", None, ("named",), ("alder-usd",))
    got = rows(load, timelines)
    html = render_caseload_page(
        load, got, TODAY, feed_url="https://x/f.ics", webcal_url="javascript:alert(1)",
        plan_feed_url="https://x/f.ics?include=plan", csv_url="https://x/f.csv", lea_pages={},
    )  # fmt: skip
    assert "<h1>&lt;One &amp; Co&gt;</h1>" in html
    assert "CIM caseload, 1 LEA</title>" in html
    assert "javascript:" not in html and 'href="webcal:' not in html
    assert "Alder Unified School District<code" in html  # no page given: not linked


# ------------------------------------------------------------------------- in real Chromium


@pytest.fixture(scope="module")
def pages(
    tmp_path_factory: pytest.TempPathFactory,
    loads: dict[str, Caseload],
    timelines: dict[str, Timeline],
) -> dict[str, Path]:
    """Each caseload's page, rendered to a file."""
    root = tmp_path_factory.mktemp("caseload-pages")
    out = {}
    for slug, load in loads.items():
        out[slug] = root / f"{slug}.html"
        out[slug].write_text(page_of(load, timelines), encoding="utf-8")
    return out



def open_page(
    browser: Any, path: Path, width: int, script: bool = True
) -> tuple[Any, Any, list[str]]:
    """A new context at `width` px, the page loaded, and every problem seen while loading."""
    context = browser.new_context(
        viewport={"width": width, "height": 900}, java_script_enabled=script
    )
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: None if r.url == path.as_uri() else problems.append(r.url))
    page.goto(path.as_uri(), wait_until="load")
    return context, page, problems


def shown(page: Any) -> list[str]:
    """The LEAs of the rows a reader sees, top to bottom."""
    ids: list[str] = page.eval_on_selector_all(
        "#caseload tbody tr",
        "rows => rows.filter(r => r.offsetParent !== null).map(r => r.dataset.lea)",
    )
    return ids


def fits(page: Any, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("width", WIDTHS)
def test_chromium_shows_exactly_its_leas(browser: Any, pages: dict[str, Path], width: int) -> None:
    for slug, members in MEMBERS.items():
        context, page, problems = open_page(browser, pages[slug], width)
        try:
            assert sorted(shown(page)) == members
            names = page.locator("#caseload tbody th a").all_inner_texts()
            assert sorted(names) == sorted(NAMES[m] for m in members)
            assert page.locator("#caseload-tools").is_visible()
            fits(page, width)
            assert problems == []
        finally:
            context.close()


def test_chromium_sorts_by_a_column_from_its_heading(browser: Any, pages: dict[str, Path]) -> None:
    context, page, problems = open_page(browser, pages["valle-del-sur-selpa"], 1280)
    try:
        assert shown(page) == ["cedar-sd", "dogwood-usd", "elm-usd"]
        lea = page.locator("#caseload thead th").nth(0)
        assert lea.get_attribute("aria-sort") is None  # the default: attention, no column
        page.get_by_role("button", name="LEA", exact=True).click()
        assert lea.get_attribute("aria-sort") == "ascending"
        assert shown(page) == ["cedar-sd", "dogwood-usd", "elm-usd"]
        page.get_by_role("button", name="LEA", exact=True).click()
        assert lea.get_attribute("aria-sort") == "descending"
        assert shown(page) == ["elm-usd", "dogwood-usd", "cedar-sd"]
        # overdue: the most first; a second click, the fewest first (and LEA's sort is gone)
        overdue = page.locator("#caseload thead th").nth(5)
        page.get_by_role("button", name="Overdue", exact=True).click()
        assert overdue.get_attribute("aria-sort") == "descending"
        assert lea.get_attribute("aria-sort") is None
        assert shown(page) == ["cedar-sd", "dogwood-usd", "elm-usd"]
        page.get_by_role("button", name="Overdue", exact=True).click()
        assert shown(page) == ["elm-usd", "cedar-sd", "dogwood-usd"]
        assert page.locator("#lea-sort").input_value() == "5:ascending"
        assert "sorted by Overdue, lowest first" in page.locator("#lea-shown").inner_text()
        # back to who needs attention first
        page.select_option("#lea-sort", "attention")
        assert shown(page) == ["cedar-sd", "dogwood-usd", "elm-usd"]
        assert overdue.get_attribute("aria-sort") is None
        assert problems == []
    finally:
        context.close()


def test_chromium_at_390_px_cards_sort_menu_and_filter(
    browser: Any, pages: dict[str, Path]
) -> None:
    context, page, problems = open_page(browser, pages["casey-park"], 390)
    try:
        assert shown(page) == ["cedar-sd", "alder-usd"]  # 27 overdue, then 1
        # rows are cards: the headings are off screen, each cell says what it is
        first = page.locator("#caseload tbody tr").first
        assert first.evaluate("e => getComputedStyle(e).display") == "block"
        label = first.locator('td[data-label="Days left"]').evaluate(
            "e => getComputedStyle(e, '::before').content"
        )
        assert label == '"Days left"'
        box = first.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        page.get_by_label("Sort by").select_option("3:descending")  # next deadline, latest
        assert shown(page) == ["alder-usd", "cedar-sd"]
        assert page.locator("#caseload thead th").nth(3).get_attribute("aria-sort") == "descending"
        fits(page, 390)
        page.get_by_label("Filter LEAs").fill("alder")
        assert shown(page) == ["alder-usd"]
        assert "Showing 1 of 2 LEAs" in page.locator("#lea-shown").inner_text()
        page.get_by_label("Filter LEAs").fill("")
        assert shown(page) == ["alder-usd", "cedar-sd"]
        assert problems == []
    finally:
        context.close()


def test_chromium_filter_hides_rows(browser: Any, pages: dict[str, Path]) -> None:
    context, page, problems = open_page(browser, pages["valle-del-sur-selpa"], 1280)
    try:
        field = page.get_by_label("Filter LEAs")
        field.fill("dogwood")
        assert shown(page) == ["dogwood-usd"]
        assert page.locator('#caseload tr[data-lea="cedar-sd"]').is_hidden()
        field.fill("sig dis")  # every word, anywhere in the row: the Sig Dis programs
        assert shown(page) == ["cedar-sd", "dogwood-usd"]
        field.fill("no such lea")
        assert shown(page) == []
        assert page.locator("#lea-shown").inner_text().startswith("Showing 0 of 3 LEAs")
        field.fill("")
        assert shown(page) == ["cedar-sd", "dogwood-usd", "elm-usd"]
        assert problems == []
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_chromium_without_script_the_table_is_complete(
    browser: Any, pages: dict[str, Path], width: int
) -> None:
    context, page, _ = open_page(browser, pages["valle-del-sur-selpa"], width, script=False)
    try:
        assert shown(page) == ["cedar-sd", "dogwood-usd", "elm-usd"]
        assert page.locator("#caseload thead button").count() == 0
        assert page.locator("#caseload-tools").is_hidden()  # no control that would do nothing
        assert page.get_by_role("link", name="Download CSV").is_visible()
        fits(page, width)
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_axe_finds_no_violation(browser: Any, pages: dict[str, Path], width: int) -> None:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run tests/setup.sh (npm ci in tests/kit)")
    script = AXE.read_text()
    for slug, path in pages.items():
        context, page, _ = open_page(browser, path, width)
        try:
            page.add_script_tag(content=script)
            run = "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})"
            for state in ("as loaded", "sorted and filtered"):
                if state != "as loaded":
                    page.get_by_label("Sort by").select_option("4:descending")
                    page.get_by_label("Filter LEAs").fill("d")
                result = page.evaluate(run, AA)
                bad = [
                    (v["id"], [n["target"] for n in v["nodes"]][:5]) for v in result["violations"]
                ]
                assert bad == [], (slug, width, state, bad)
                assert result["passes"], "axe ran no check"
        finally:
            context.close()


def test_vnu_reports_no_error(pages: dict[str, Path]) -> None:
    if not VNU.exists():
        pytest.fail(f"{VNU} is missing: run tests/setup.sh (npm ci in tests/kit)")
    java = shutil.which("java")
    if java is None:
        pytest.fail("java (17 or later) is missing: vnu needs it")
    run = subprocess.run(
        [java, "-jar", str(VNU), "--errors-only", "--format", "json", *map(str, pages.values())],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    messages = json.loads(run.stderr or run.stdout)["messages"]
    assert [(Path(m.get("url", "")).name, m.get("lastLine"), m["message"]) for m in messages] == []
    assert run.returncode == 0


def test_chromium_on_the_served_page_follows_an_lea_link(browser: Any, tmp_path: Path) -> None:
    """The page as `pacing serve` serves it: exactly its LEAs, each linked to its own page."""
    import os

    from serving import printed_urls, serving

    folder = tmp_path / "leas"
    shutil.copytree(FOLDER, folder)
    env = {**os.environ, "PACING_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1",
           "PACING_NOW": "2024-11-01T16:00:00Z"}  # fmt: skip
    cli = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
    with serving(folder, env, tmp_path / "server.log", "--no-reminders") as (base, _):
        out = subprocess.run([*cli, "feeds", str(folder), "--port", base.rsplit(":", 1)[1]],
                             env=env, capture_output=True, text=True, check=True).stdout  # fmt: skip
        urls = printed_urls(out)
        context = browser.new_context(viewport={"width": 390, "height": 900})
        try:
            page = context.new_page()
            page.goto(urls["_caseload/valle-del-sur-selpa"][1], wait_until="load")
            assert sorted(shown(page)) == MEMBERS["valle-del-sur-selpa"]
            fits(page, 390)
            page.locator("#caseload tbody tr[data-lea='dogwood-usd'] th a").click()
            page.wait_for_load_state("load")
            assert page.url == urls["dogwood-usd"][1]
            assert "Dogwood Unified School District" in page.title()
        finally:
            context.close()
