"""Checklists (md, html, csv), the feed page and the SVG chart, for each example LEA."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import profile_data
from jinja2 import StrictUndefined

from pacing.adapters.files import bundled_guides, load_lea
from pacing.core.lea import Lea
from pacing.core.periods import timeline_periods
from pacing.core.timeline import Timeline, expand
from pacing.export.checklist import (
    CSV_COLUMNS,
    environment,
    excel_safe,
    render_checklist,
    render_feed_page,
    safe_url,
)
from pacing.export.gantt import gantt_svg

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PROFILES = ["sunrise-usd", "riverbend-usd", "lakeside-usd"]
MAY_1 = dt.date(2024, 5, 1)
FEED = "https://cim.example.org/feeds/sunrise-usd/abc123.ics"
WEBCAL = "webcal://cim.example.org/feeds/sunrise-usd/abc123.ics"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip
MD_HEADER = "| Activity | Target date | Done | Resources | Submit to |"


def timeline(name: str) -> Timeline:
    return expand(bundled_guides(), load_lea(EXAMPLES / f"{name}.toml"), MAY_1)


def periods(name: str) -> list:  # type: ignore[type-arg]
    return timeline_periods(bundled_guides(), load_lea(EXAMPLES / f"{name}.toml"))


class Page(HTMLParser):
    """Records tag nesting (every end tag must close the innermost open element), external
    asset references, and the text inside each element with an id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.external: list[str] = []
        self.text_by_id: dict[str, list[str]] = {}
        self.open_ids: list[tuple[str, int]] = []
        self.data: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attr))
        for key in ("src", "href", "xlink:href"):
            value = attr.get(key, "")
            asset = tag in ("script", "img", "iframe", "link", "source", "image", "use", "embed")
            if re.match(r"(https?:)?//", value) and asset:
                self.external.append(f"<{tag} {key}={value}>")
        if tag in VOID:
            return
        self.stack.append(tag)
        if "id" in attr:
            self.text_by_id[attr["id"]] = []
            self.open_ids.append((attr["id"], len(self.stack)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        while self.open_ids and self.open_ids[-1][1] == len(self.stack):
            self.open_ids.pop()
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.data.append(data)
        for element_id, _ in self.open_ids:
            self.text_by_id[element_id].append(data)

    def text(self, element_id: str) -> str:
        return " ".join(" ".join(self.text_by_id[element_id]).split())


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    return parser


def assert_self_contained(page: str) -> Page:
    parsed = parse(page)
    assert parsed.errors == []
    assert parsed.stack == [], f"unclosed: {parsed.stack}"
    assert parsed.external == []
    tags = [t for t, _ in parsed.tags]
    for needed in ("html", "head", "body", "main", "svg", "table", "style"):
        assert needed in tags
    assert "script" not in tags and "img" not in tags and "iframe" not in tags
    links = [a for tag, a in parsed.tags if tag == "link"]
    assert links == [{"rel": "icon", "href": "data:,"}]  # no favicon request
    css = "".join(re.findall(r"<style>(.*?)</style>", page, re.S))
    assert "@import" not in css and "url(" not in css and "@font-face" not in css
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert '<meta charset="utf-8">' in page
    return parsed


# ------------------------------------------------------------------------------ HTML


@pytest.mark.parametrize("name", PROFILES)
def test_html_is_one_self_contained_page(name: str) -> None:
    t = timeline(name)
    page = render_checklist(t, "html")
    parsed = assert_self_contained(page)
    assert page.count("<svg") == 1
    assert "@media print" in page
    assert f"<h1>{t.lea.name}</h1>" in page
    assert "Pacing guide" in parsed.text("guide-title")
    assert f"CDS code</dt><dd>{t.lea.cds}" in page
    assert 'As of</dt><dd><time datetime="2024-05-01">May 1, 2024</time>' in page
    assert "Cohort</dt><dd>2024" in page
    # one table row per timeline item, grouped by step
    rows = [a for tag, a in parsed.tags if tag == "tr" and "data-id" in a]
    assert [a["data-id"] for a in rows] == [
        e.id for step in sorted({e.step for e in t.items}) for e in t.items if e.step == step
    ]
    assert render_checklist(t, "html") == page  # deterministic


def test_sunrise_html_has_all_28_boxes_in_order() -> None:
    t = timeline("sunrise-usd")
    parsed = parse(render_checklist(t, "html"))
    boxes = [a["id"] for tag, a in parsed.tags if tag == "article"]
    assert boxes == [f"box-{n}" for n in range(1, 29)]
    box2 = parsed.text("box-2")
    assert "Box 2 Educational Partner Group" in box2
    assert "N/A - write N/A in this box" in box2
    assert "Not applicable to Targeted Level 3 LEAs" in box2
    assert "Required" not in box2
    box7 = parsed.text("box-7")
    assert "N/A" not in box7
    required = t.get("targeted-l3-2024/step-1/box-07-parent-input").item.required[0]
    assert "Required" in box7 and " ".join(required.split()) in box7
    assert "identifies the target group, which must include parents" in box7
    assert "Recommended Seeds of Partnership" in box7
    box1 = parsed.text("box-1")
    assert "done May 10, 2024" in box1 and "Appoint and identify a CIM Team lead." in box1
    assert "Additional guidance" in box1
    box20 = parsed.text("box-20")  # optional: its condition is shown
    assert "optional" in box20 and "Applies if the LEA has identified multiple Root Causes" in box20


def test_html_pacing_table_shows_done_na_and_resources() -> None:
    page = render_checklist(timeline("sunrise-usd"), "html")
    parsed = parse(page)
    assert re.search(r'<tr class="status-not-applicable na" data-id="targeted-l3-2024/step-1/'
                     r'box-02-educational-partner-group">', page)  # fmt: skip
    assert "N/A: Not applicable to Targeted Level 3 LEAs" in page
    assert '<span class="check" role="img" aria-label="done">☑</span> Jul 9, 2024' in page
    assert '<span class="check" role="img" aria-label="not done">☐</span>' in page
    links = [a["href"] for tag, a in parsed.tags if tag == "a"]
    assert "http://caltan.info" in links
    headers = re.findall(r'<th scope="col" class="[^"]+">([^<]+)</th>', page)
    assert headers[:5] == ["Activity", "Target date", "Done", "Resources", "Submit to"]
    assert "FMTA consultant Morgan Lee &lt;mlee@<wbr>cde.example.gov&gt;" in page


def test_lakeside_has_no_boxes() -> None:
    page = render_checklist(timeline("lakeside-usd"), "html")
    parsed = parse(page)
    assert not [a for tag, a in parsed.tags if tag == "article"]
    assert "No Stepwell box checklist" in page and "Intensive LEAs" in page


def test_riverbend_chart_has_the_cceis_period_and_its_8_reports() -> None:
    t = timeline("riverbend-usd")
    page = render_checklist(t, "html", periods("riverbend-usd"))
    svg = page[page.index("<svg") : page.index("</svg>") + 6]
    band = re.search(
        r'<g class="band" data-period="sig-dis-2024/cceis-budget">(.*?)</g>', svg, re.S
    )
    assert band, "no CCEIS band"
    assert "27-month CCEIS budget period (Jul 1, 2024 \u2013 Sep 30, 2026)" in band.group(1)
    assert '<rect class="period"' in band.group(1)
    markers = re.findall(
        r'<polygon class="band-marker report[^"]*" data-id="([^"]+)"', band.group(1)
    )
    reports = [e.id for e in t.items if e.series == "sig-dis-2024/step-4/quarterly-report"]
    assert len(markers) == 8 and markers == reports
    assert (
        "CCEIS" in page
        and "27-month CCEIS budget period</b>: Jul 1, 2024 \u2013 Sep 30, 2026" in page
    )
    # the default periods come from the bundled guides
    assert render_checklist(t, "html") == page


def test_gantt_svg() -> None:
    t = timeline("sunrise-usd")
    svg = gantt_svg(t, periods("sunrise-usd"))
    assert svg.startswith(
        '<svg xmlns="http://www.w3.org/2000/svg" class="gantt" role="img" aria-label="'
    )
    assert 'viewBox="0 0 960 ' in svg and svg.rstrip().endswith("</svg>")
    assert gantt_svg(t, periods("sunrise-usd")) == svg
    parsed = parse(svg)
    assert parsed.errors == [] and parsed.stack == []
    steps = [a["data-step"] for tag, a in parsed.tags if tag == "g" and "data-step" in a]
    assert steps == ["0", "1", "2", "3", "4"]
    assert "No dated items for this LEA" in svg  # step 0 of a Targeted Level 3 LEA
    assert "Today: May 1, 2024" in svg and '<g class="today">' in svg
    assert "cceis" not in svg.lower()
    # every item shape has a hover title; not-applicable items are left out
    shapes = re.findall(r'<(rect|polygon) class="[^"]*" data-id="([^"]+)"[^>]*><title>', svg)
    drawn = {i for _, i in shapes}
    assert drawn == {e.id for e in t.items if e.status != "not-applicable"}
    # status colours: done items green
    assert re.search(r'class="item deadline status-done"[^>]*fill="#2e7d32"', svg)
    # the monthly meeting series in one row of ticks
    series = re.search(r'<g class="series" data-series="implementation-2024/step-4/cim-team-meeting">'
                       r"(.*?)</g>", svg, re.S)  # fmt: skip
    assert series and series.group(1).count('class="item meeting') == 18
    assert "(18 meetings)" in series.group(1)
    years = re.findall(r">(20\d\d)</text>", svg)
    assert years == ["2024", "2025", "2026"]


def test_gantt_without_periods_draws_report_series_in_a_row() -> None:
    t = timeline("riverbend-usd")
    svg = gantt_svg(t)
    assert '<g class="band"' not in svg
    assert 'data-series="sig-dis-2024/step-4/quarterly-report"' in svg
    assert "(8 reports)" in svg


def test_overdue_and_at_risk_colours() -> None:
    svg = gantt_svg(timeline("riverbend-usd"))
    assert re.search(r'class="item deadline status-overdue"[^>]*fill="#c62828"', svg)
    assert re.search(r'class="item window status-at-risk"[^>]*stroke="#b26a00"', svg)


def test_timeline_periods() -> None:
    bands = periods("riverbend-usd")
    cceis = next(b for b in bands if b.key == "sig-dis-2024/cceis-budget")
    title, start, end, *_ = cceis
    assert (title, start, end) == ("27-month CCEIS budget period", dt.date(2024, 7, 1),
                                   dt.date(2026, 9, 30))  # fmt: skip
    assert cceis.series == ("sig-dis-2024/step-4/quarterly-report",)
    assert not any("CCEIS" in b.title for b in periods("sunrise-usd"))


# ------------------------------------------------------------------------------ escaping


def test_hostile_names_are_escaped() -> None:
    hostile = "<script>alert(1)</script> & \"Co\" 'x'"
    lea = Lea.model_validate({**profile_data("riverbend-usd"), "name": hostile})
    t = expand(bundled_guides(), lea, MAY_1)
    for page in (
        render_checklist(t, "html"),
        render_feed_page(t, FEED + '?"><script>x</script>', WEBCAL),
    ):
        assert "<script" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert_self_contained(page)
        svg = page[page.index("<svg") : page.index("</svg>")]
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;" in svg
    md = render_checklist(t, "md")
    assert md.startswith(f"# {hostile}: CIM pacing checklist")


def test_entry_text_is_escaped_everywhere() -> None:
    t = timeline("sunrise-usd")
    first = t.items[0]
    evil = dataclasses.replace(first, title="<b onmouseover=x>|=cmd|", submit_to=("a|b",))
    t = dataclasses.replace(t, items=(evil, *t.items[1:]))
    page = render_checklist(t, "html")
    assert "<b onmouseover" not in page and "&lt;b onmouseover=x&gt;" in page
    assert "\\|=cmd\\|" in render_checklist(t, "md")
    assert "a\\|b" in render_checklist(t, "md")


def test_unsafe_urls_are_not_linked() -> None:
    assert safe_url("javascript:alert(1)") is None
    assert safe_url(" JavaScript:alert(1)") is None
    assert safe_url("data:text/html,x") is None
    assert safe_url("https://caltan.info") == "https://caltan.info"
    assert safe_url(None) is None


# ------------------------------------------------------------------------------ feed page


def test_feed_page() -> None:
    t = timeline("sunrise-usd")
    page = render_feed_page(t, FEED, WEBCAL, periods("sunrise-usd"))
    parsed = assert_self_contained(page)
    links = [a for tag, a in parsed.tags if tag == "a" and a.get("href", "").startswith("webcal:")]
    assert [a["href"] for a in links] == [WEBCAL]
    inputs = [a for tag, a in parsed.tags if tag == "input"]
    assert inputs == [{"id": "feed-url", "class": "feed-url", "type": "text", "readonly": "",
                       "value": FEED}]  # fmt: skip
    text = " ".join(" ".join(parsed.data).split())
    assert "Other calendars → From URL" in text
    assert "Add calendar → Subscribe from web" in text
    assert "12 hours" in text
    assert '<meta name="robots" content="noindex, nofollow">' in page
    assert '<meta name="referrer" content="no-referrer">' in page
    # the same chart and checklist as the printable page
    assert [a["id"] for tag, a in parsed.tags if tag == "article"] == [
        f"box-{n}" for n in range(1, 29)
    ]
    assert gantt_svg(t, periods("sunrise-usd")) in page


def test_feed_page_without_a_webcal_url() -> None:
    page = render_feed_page(timeline("lakeside-usd"), FEED, "javascript:alert(1)")
    assert "javascript:" not in page and 'href="webcal' not in page
    assert f'value="{FEED}"' in page


# ------------------------------------------------------------------------------ Markdown


@pytest.mark.parametrize("name", PROFILES)
def test_md(name: str) -> None:
    t = timeline(name)
    md = render_checklist(t, "md")
    assert md.startswith(f"# {t.lea.name}: CIM pacing checklist\n")
    assert MD_HEADER in md
    assert "- As of: May 1, 2024\n" in md
    assert md.count(MD_HEADER) == len({e.step for e in t.items})
    table_rows = [line for line in md.splitlines() if line.startswith("| ") and line != MD_HEADER]
    assert len(table_rows) == len(t.items)
    assert all(row.count(" | ") == 4 for row in table_rows)
    assert "\n\n\n" not in md
    assert render_checklist(t, "md") == md


def test_md_boxes() -> None:
    md = render_checklist(timeline("sunrise-usd"), "md")
    assert [int(n) for n in re.findall(r"^### Box (\d+): ", md, re.M)] == list(range(1, 29))
    box2 = md.split("### Box 2: ")[1].split("### Box 3: ")[0]
    assert "**N/A - write N/A in this box** (Not applicable to Targeted Level 3 LEAs)" in box2
    box7 = md.split("### Box 7: ")[1].split("### Box 8: ")[0]
    assert "Required:\n\n- [ ] In this box, enter a parent input summary" in box7
    assert "Recommended:\n\n- [ ] Seeds of Partnership" in box7
    assert "☑ May 10, 2024" in md  # box 1 done
    assert "~~Box 2: Educational Partner Group~~ (N/A: Not applicable" in md
    lakeside = render_checklist(timeline("lakeside-usd"), "md")
    assert "No Stepwell box checklist" in lakeside and "### Box" not in lakeside


# ------------------------------------------------------------------------------ CSV


@pytest.mark.parametrize("name", PROFILES)
def test_csv(name: str) -> None:
    t = timeline(name)
    text = render_checklist(t, "csv")
    assert text.startswith("\ufeffStep,Activity,Date,Start,Start time,End time,Done,")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    assert rows[0] == CSV_COLUMNS
    assert len(rows) == len(t.items) + 1
    assert [r[-1] for r in rows[1:]] == [e.id for e in t.items]
    assert all(len(r) == len(CSV_COLUMNS) for r in rows)
    for row, e in zip(rows[1:], t.items, strict=True):
        assert row[0] == f"Step {e.step}: {t.steps[e.step]}"
        assert row[6] == (e.done_on.isoformat() if e.done_on else "")
        assert row[8] == e.requirement
        assert row[2] == e.due.isoformat()
        assert row[3] == (e.start.isoformat() if e.start and e.start != e.due else "")
    text.encode("utf-8")  # no lone surrogates


def test_csv_values() -> None:
    rows = list(csv.reader(io.StringIO(render_checklist(timeline("sunrise-usd"), "csv")[1:])))
    by_id = {r[-1]: r for r in rows[1:]}
    box1 = by_id["targeted-l3-2024/step-1/box-01-cim-team"]
    assert box1[1:9] == ["Box 1: CIM Team", "2024-05-15", "", "", "", "2024-05-10", "Done",
                         "required"]  # fmt: skip
    box2 = by_id["targeted-l3-2024/step-1/box-02-educational-partner-group"]
    assert box2[7].startswith("Not applicable: Not applicable to Targeted Level 3 LEAs")
    box7 = by_id["targeted-l3-2024/step-1/box-07-parent-input"]
    assert box7[10] == "Seeds of Partnership (on caltan.info) (http://caltan.info)"
    meeting = next(r for r in rows if r[-1].endswith("cim-team-meeting/2025-01"))
    assert meeting[2:6] == ["2025-01-08", "", "15:30", "16:30"]


def test_csv_is_formula_safe() -> None:
    t = timeline("lakeside-usd")
    evil = [
        dataclasses.replace(e, title=title)
        for e, title in zip(t.items, ["=1+1", "+SUM(A1)", "-2", "@cmd", "ok=1"], strict=False)
    ]
    t = dataclasses.replace(t, items=tuple(evil))
    rows = list(csv.reader(io.StringIO(render_checklist(t, "csv")[1:])))
    activities = [r[1] for r in rows[1:]]
    assert all(a.startswith("'") for a in activities[:4])
    assert "'=1+1" in activities[0]
    assert excel_safe("ok=1") == "ok=1" and excel_safe(None) == "" and excel_safe("\t=x") == "'\t=x"


# ------------------------------------------------------------------------------ environment


def test_environment() -> None:
    env = environment()
    assert env is environment()
    assert env.undefined is StrictUndefined
    assert env.get_template("checklist.html.j2").render is not None
    html_t = env.from_string("{{ x }}")  # strings are not autoescaped: Markdown stays raw
    assert html_t.render(x="<b>") == "<b>"


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown checklist format 'pdf'"):
        render_checklist(timeline("sunrise-usd"), "pdf")
