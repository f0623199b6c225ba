"""The timeline as an inline SVG Gantt chart: one lane per CIM step, today marked (pure)."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pacing.core.dates import long_date
from pacing.core.entry import OUTCOME_NAMES, SOURCE_NAMES, STATUS_NAMES, Status
from pacing.core.periods import Band
from pacing.core.timeline import Entry, Timeline
from pacing.export.timeline import dated

WIDTH = 960
GUTTER = 168  # lane labels
RIGHT = 12
AXIS_Y = 32  # the time axis line; lanes start below it
ROW = 18
LANE_PAD = 6
FONT = 11
CHAR_W = 6.1  # average glyph width at FONT px (Helvetica/Arial), for fitting labels
MAX_LABEL = 40
GAP = 6

# (stroke / solid, tint) per status; not-applicable items are not drawn. Every solid colour
# is at least 4.5:1 against white (it is also used for text beside the chart).
COLOURS = {
    "done": ("#2e7d32", "#c8e6c9"),
    "overdue": ("#c62828", "#ffcdd2"),
    "behind-plan": ("#6d4c41", "#d7ccc8"),
    "at-risk": ("#b26a00", "#ffe0b2"),
    "due-soon": ("#455a64", "#cfd8dc"),
    "upcoming": ("#455a64", "#cfd8dc"),
    "past": ("#616161", "#e0e0e0"),
}
LEGEND_STATUSES: tuple[Status, ...] = (
    "done",
    "overdue",
    "behind-plan",
    "at-risk",
    "past",
    "upcoming",
)
PLAN_DASH = "3 2"  # the outline of pacing's plan (its estimate, not a CDE date)
BAND = ("#1565c0", "#e3f2fd")
TODAY = "#6a1b9a"
GRID = "#e4e8eb"
TEXT = "#263238"
MUTED = "#607d8b"
HALO: dict[str, str | float] = {"stroke": "#ffffff", "stroke_width": 3, "paint_order": "stroke"}

Shape = Literal["bar", "work", "diamond", "tick"]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _n(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _text_w(text: str, size: float = FONT) -> float:
    return len(text) * CHAR_W * size / FONT


def _clip(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 1)].rstrip() + "\u2026"


def _short(day: dt.date) -> str:
    return f"{day:%b} {day.day}, {day.year}"


def when_label(e: Entry) -> str:
    """Human dates of an entry: a window's span, a meeting's time, or the due date."""
    if e.start and e.start != e.due:
        return f"{_short(e.start)} \u2013 {_short(e.due)}"
    if e.start_time and e.end_time:
        return f"{_short(e.due)}, {e.start_time:%H:%M}\u2013{e.end_time:%H:%M}"
    return _short(e.due)


def series_title(e: Entry) -> str:
    title = e.item.title if e.item is not None else e.title
    return title.replace(" ({span})", "").replace("{span}", "").strip()


def _hover(e: Entry) -> str:
    """The tooltip: title, what the date is and the date, status, program, warnings."""
    parts = [e.title, dated(e, _short, colon=True), STATUS_NAMES[e.status]]
    if e.latest_start and e.is_open:
        parts.append(f"start by {_short(e.latest_start)}")
    if e.done_on:
        parts.append(f"done {_short(e.done_on)}")
    if e.outcome:
        parts.append(OUTCOME_NAMES[e.outcome])
    if e.program:
        parts.append(e.program)
    parts += [f"\u26a0 {w}" for w in e.warnings]
    return " \u00b7 ".join(parts)


@dataclass(frozen=True)
class _Scale:
    start: dt.date
    end: dt.date
    left: float = GUTTER
    right: float = WIDTH - RIGHT

    def x(self, day: dt.date) -> float:
        """The x of `day`, held inside the chart (a bar crossing an edge is cut there)."""
        span = max((self.end - self.start).days, 1)
        x = self.left + (day - self.start).days / span * (self.right - self.left)
        return min(max(x, self.left), self.right)

    @property
    def per_month(self) -> float:
        return (self.right - self.left) / max((self.end - self.start).days / 30.44, 1)


@dataclass
class _Mark:
    """One drawn item: its shape, where, and where its label goes."""

    entry: Entry
    shape: Shape
    x0: float
    x1: float
    label: str
    label_x: float = 0.0
    anchor: str = "start"
    inside: bool = False


@dataclass
class _Row:
    spans: list[tuple[float, float]] = field(default_factory=list)
    marks: list[_Mark] = field(default_factory=list)

    def free(self, a: float, b: float) -> bool:
        return all(b + GAP <= s or a >= e + GAP for s, e in self.spans)


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _months(start: dt.date, end: dt.date) -> Iterable[dt.date]:
    day = _month_start(start)
    while day <= end:
        yield day
        day = _next_month(day)


def _mark(e: Entry, scale: _Scale) -> _Mark:
    begin = e.start if e.kind == "window" else e.latest_start if e.kind == "task" else None
    label = _clip(e.title)
    if begin and begin < e.due:
        shape: Shape = "bar" if e.kind == "window" else "work"
        return _Mark(e, shape, scale.x(begin), scale.x(e.due + dt.timedelta(days=1)), label)
    x = scale.x(e.due)
    shape = "tick" if e.kind == "meeting" else "diamond"
    return _Mark(e, shape, x - 5, x + 5, label)


def _place(mark: _Mark, scale: _Scale) -> list[tuple[float, float]]:
    """Candidate spans (shape + label) in order of preference (shortens the label to fit)."""
    width = _text_w(mark.label)
    if mark.shape in ("bar", "work") and mark.x1 - mark.x0 >= width + 8:
        mark.label = _clip(mark.entry.title, int((mark.x1 - mark.x0 - 8) / CHAR_W))
        return [(mark.x0, mark.x1)]
    out = []
    if mark.x1 + 4 + width <= scale.right:
        out.append((mark.x0, mark.x1 + 4 + width))
    if mark.x0 - 4 - width >= scale.left:
        out.append((mark.x0 - 4 - width, mark.x1))
    if not out:  # no room either side: shorten the label to the wider side
        room_right = scale.right - mark.x1 - 4
        room_left = mark.x0 - 4 - scale.left
        chars = int(max(room_right, room_left) / CHAR_W)
        mark.label = _clip(mark.label, max(chars, 4))
        width = _text_w(mark.label)
        if room_right >= room_left:
            out.append((mark.x0, mark.x1 + 4 + width))
        else:
            out.append((mark.x0 - 4 - width, mark.x1))
    return out


def _settle(mark: _Mark, span: tuple[float, float]) -> None:
    if span == (mark.x0, mark.x1):
        mark.inside, mark.label_x, mark.anchor = True, mark.x0 + 4, "start"
    elif span[0] < mark.x0:
        mark.label_x, mark.anchor = mark.x0 - 4, "end"
    else:
        mark.label_x, mark.anchor = mark.x1 + 4, "start"


def _pack(entries: list[Entry], scale: _Scale) -> list[_Row]:
    """First-fit rows: no two shapes or labels overlap within a row."""
    marks = sorted((_mark(e, scale) for e in entries), key=lambda m: (m.x0, m.x1, m.entry.id))
    rows: list[_Row] = []
    for mark in marks:
        candidates = _place(mark, scale)
        chosen = next(((row, span) for row in rows for span in candidates if row.free(*span)), None)
        if chosen is None:
            chosen = (_Row(), candidates[0])
            rows.append(chosen[0])
        row, span = chosen
        _settle(mark, span)
        row.spans.append(span)
        row.marks.append(mark)
    return rows


@dataclass
class _Canvas:
    parts: list[str] = field(default_factory=list)

    def add(self, svg: str) -> None:
        self.parts.append(svg)

    def text(self, x: float, y: float, text: str, **attrs: str | float) -> None:
        extra = "".join(f' {k.rstrip("_").replace("_", "-")}="{_e(v)}"' for k, v in attrs.items())
        self.add(f'<text x="{_n(x)}" y="{_n(y)}"{extra}>{_e(text)}</text>')


def _shape_svg(mark: _Mark, y: float) -> str:
    e = mark.entry
    stroke, tint = COLOURS.get(e.status, COLOURS["upcoming"])
    cls = f"item {e.kind} status-{e.status}"
    tip = f"<title>{_e(_hover(e))}</title>"
    mid = y + ROW / 2
    planned = e.date_source == "planned"
    dash = f' stroke-dasharray="{PLAN_DASH}"' if planned else ""
    if planned:
        cls += " planned"
    if mark.shape in ("bar", "work"):
        plain = mark.shape == "work" and e.status in ("upcoming", "due-soon")
        fill = "#ffffff" if plain else tint
        return (
            f'<rect class="{cls}" data-id="{_e(e.id)}" x="{_n(mark.x0)}" y="{_n(mid - 5)}" '
            f'width="{_n(max(mark.x1 - mark.x0, 1))}" height="10" rx="2" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.2"{dash}>{tip}</rect>'
        )
    x = (mark.x0 + mark.x1) / 2
    if mark.shape == "tick":
        return (
            f'<rect class="{cls}" data-id="{_e(e.id)}" x="{_n(x - 1.25)}" y="{_n(mid - 6)}" '
            f'width="2.5" height="12" fill="{stroke}">{tip}</rect>'
        )
    points = f"{_n(x)},{_n(mid - 5.5)} {_n(x + 5.5)},{_n(mid)} {_n(x)},{_n(mid + 5.5)} {_n(x - 5.5)},{_n(mid)}"
    if planned:  # a plan's finish-by date: a hollow, dashed diamond
        return (
            f'<polygon class="{cls}" data-id="{_e(e.id)}" points="{points}" fill="{tint}" '
            f'stroke="{stroke}" stroke-width="1.4"{dash}>{tip}</polygon>'
        )
    return (
        f'<polygon class="{cls}" data-id="{_e(e.id)}" points="{points}" fill="{stroke}" '
        f'stroke="#ffffff" stroke-width="0.8">{tip}</polygon>'
    )


def _series_row(entries: list[Entry], scale: _Scale, canvas: _Canvas, y: float) -> None:
    """A series collapsed into one row: a tick per meeting or a diamond per report."""
    first = entries[0]
    count = len(entries)
    noun = "meeting" if first.kind == "meeting" else "report"
    suffix = f" ({count} {noun}{'s' * (count != 1)})"
    marks = [_mark(e, scale) for e in entries]
    for m in marks:
        m.shape = "tick" if first.kind == "meeting" else "diamond"
        x = scale.x(m.entry.due)
        m.x0, m.x1 = x - 5, x + 5
    lo, hi = marks[0].x0, marks[-1].x1
    canvas.add(f'<g class="series" data-series="{_e(first.series or "")}">')
    canvas.add(
        f'<line x1="{_n(lo + 5)}" x2="{_n(hi - 5)}" y1="{_n(y + ROW / 2)}" y2="{_n(y + ROW / 2)}" '
        f'stroke="{GRID}" stroke-width="2"/>'
    )
    for m in marks:
        canvas.add(_shape_svg(m, y))
    _row_label(canvas, series_title(first), suffix, lo, hi, y, scale)
    canvas.add("</g>")


def _row_label(
    canvas: _Canvas, title: str, suffix: str, lo: float, hi: float, y: float, s: _Scale
) -> None:
    """A label right of the row's last mark, else left of its first (title shortened to fit)."""
    label = _clip(title, MAX_LABEL) + suffix
    right, left = s.right - hi - 4, lo - 4 - s.left
    room = right if right >= _text_w(label) or right >= left else left
    label = _clip(title, max(int(room / CHAR_W) - len(suffix), 4)) + suffix
    if room == right:
        canvas.text(hi + 4, y + ROW / 2 + 4, label, fill=TEXT, **HALO)
    else:
        canvas.text(lo - 4, y + ROW / 2 + 4, label, fill=TEXT, text_anchor="end", **HALO)


def _band_rows(band: Band, entries: list[Entry], scale: _Scale, canvas: _Canvas, y: float) -> None:
    """The band (label above, bar below) with its reports as diamonds on it."""
    x0, x1 = scale.x(band.start), scale.x(band.end + dt.timedelta(days=1))
    dates = f"{long_date(band.start)} \u2013 {long_date(band.end)}"
    label = f"{band.title} ({_short(band.start)} \u2013 {_short(band.end)})"
    anchor_x, anchor = x0, "start"
    if x0 + _text_w(label) > scale.right:
        anchor_x, anchor = min(x1, scale.right), "end"
    canvas.add(f'<g class="band" data-period="{_e(band.key or band.title)}">')
    canvas.text(anchor_x, y + 12, label, fill=BAND[0], text_anchor=anchor, font_weight="bold")
    top = y + ROW
    canvas.add(
        f'<rect class="period" x="{_n(x0)}" y="{_n(top + 2)}" width="{_n(max(x1 - x0, 1))}" '
        f'height="{ROW - 4}" rx="3" fill="{BAND[1]}" stroke="{BAND[0]}" stroke-width="1">'
        f"<title>{_e(band.title)}: {_e(dates)}</title></rect>"
    )
    for e in entries:
        x = scale.x(e.due)
        stroke = COLOURS.get(e.status, COLOURS["upcoming"])[0]
        mid = top + ROW / 2
        points = f"{_n(x)},{_n(mid - 6)} {_n(x + 6)},{_n(mid)} {_n(x)},{_n(mid + 6)} {_n(x - 6)},{_n(mid)}"
        canvas.add(
            f'<polygon class="band-marker report status-{e.status}" data-id="{_e(e.id)}" '
            f'points="{points}" fill="{stroke}" stroke="#ffffff" stroke-width="0.8">'
            f"<title>{_e(_hover(e))}</title></polygon>"
        )
    canvas.add("</g>")


@dataclass
class _Lane:
    number: int | None
    name: str
    packed: list[_Row]
    series: list[list[Entry]]
    bands: list[tuple[Band, list[Entry]]]

    @property
    def height(self) -> float:
        rows = len(self.packed) + len(self.series) + 2 * len(self.bands)
        return max(rows * ROW, 2 * ROW) + 2 * LANE_PAD


def school_year(day: dt.date) -> tuple[dt.date, dt.date]:
    """The school year around `day`: July 1 and the next July 1 (the end is exclusive)."""
    first = dt.date(day.year if day.month >= 7 else day.year - 1, 7, 1)
    return first, first.replace(year=first.year + 1)


def _begin(e: Entry) -> dt.date:
    return min(d for d in (e.due, e.start, e.latest_start) if d)


def _range(t: Timeline, entries: list[Entry], bands: Sequence[Band]) -> tuple[dt.date, dt.date]:
    days = [t.today]
    for e in entries:
        days.append(e.due)
        days.extend(d for d in (e.start, e.latest_start) if d)
    for b in bands:
        days += [b.start, b.end]
    return _month_start(min(days)), _next_month(max(days))


def gantt_svg(
    t: Timeline, periods: Sequence[Band] = (), span: tuple[dt.date, dt.date] | None = None
) -> str:
    """An inline SVG (no scripts, no external assets) of the LEA's timeline: a lane per CIM
    step with windows as bars, planned work (latest start to due) as dashed bars, deadlines
    and reports as diamonds, meetings as ticks (a series in one row), `periods` as bands with
    their reports on them, and a line at today. Deterministic.

    `span` (first day, day after the last): only what falls in it, bars cut at its edges
    (`school_year(t.today)` for the current school year); by default every dated item."""
    entries = [e for e in t.items if e.status != "not-applicable" and e.due != dt.date.max]
    if span is not None:
        entries = [e for e in entries if e.due >= span[0] and _begin(e) < span[1]]
        periods = [b for b in periods if b.end >= span[0] and b.start < span[1]]
    on_band = {s for b in periods for s in b.series}
    scale = _Scale(*(span or _range(t, entries, periods)))
    steps = sorted({*t.steps, *(e.step for e in entries)})
    lanes = []
    for step in steps:
        mine = [e for e in entries if e.step == step]
        series: dict[str, list[Entry]] = {}
        for e in mine:
            if e.series and e.series not in on_band:
                series.setdefault(e.series, []).append(e)
        groups = {k: v for k, v in series.items() if len(v) >= 2}
        single = [e for e in mine if not (e.series and (e.series in on_band or e.series in groups))]
        packed = _pack(single, scale)
        lanes.append(_Lane(step, t.steps.get(step, ""), packed, list(groups.values()), []))
    loose: list[tuple[Band, list[Entry]]] = []
    for band in periods:
        drawn = [e for e in entries if e.series in band.series]
        home = next((lane for lane in lanes if drawn and lane.number == drawn[0].step), None)
        (home.bands if home else loose).append((band, drawn))
    if loose:
        lanes.append(_Lane(None, "Periods", [], [], loose))

    top = AXIS_Y + 4
    lanes_h = sum(lane.height for lane in lanes)
    bottom = top + lanes_h
    legend_y = bottom + 24
    height = legend_y + 40
    c = _Canvas()
    m = t.lea.monitoring
    summary = (
        f"Timeline chart for {t.lea.name}: {len(entries)} dated items, "
        f"{_short(scale.start)} to {_short(scale.end - dt.timedelta(days=1))}; "
        f"today is {_short(t.today)}"
    )
    c.add(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gantt" role="img" '
        f'aria-label="{_e(summary)}" width="{WIDTH}" height="{_n(height)}" '
        f'viewBox="0 0 {WIDTH} {_n(height)}" font-family="Helvetica, Arial, sans-serif" '
        f'font-size="{FONT}" preserveAspectRatio="xMinYMin meet">'
    )
    c.add(f"<title>{_e(summary)}</title>")
    tier = f"{m.tier} level {m.level}" if m.level else m.tier
    c.add(f"<desc>{_e(f'CIM steps of {t.lea.name} ({tier}, cohort {m.cohort})')}</desc>")
    c.add(f'<rect x="0" y="0" width="{WIDTH}" height="{_n(height)}" fill="#ffffff"/>')

    # lanes: alternating shading and labels
    y: float = top
    for n, lane in enumerate(lanes):
        shade = "#f6f8f9" if n % 2 == 0 else "#ffffff"
        c.add(
            f'<rect class="lane" x="0" y="{_n(y)}" width="{WIDTH}" height="{_n(lane.height)}" '
            f'fill="{shade}"/>'
        )
        head = f"Step {lane.number}" if lane.number is not None else lane.name
        c.text(8, y + LANE_PAD + 12, head, fill=TEXT, font_weight="bold")
        if lane.number is not None:
            c.text(8, y + LANE_PAD + 26, _clip(lane.name, 26), fill=MUTED)
        if not (lane.packed or lane.series or lane.bands):
            c.text(GUTTER + 8, y + LANE_PAD + 12, "No dated items for this LEA", fill=MUTED,
                   font_style="italic", font_size=FONT - 1)  # fmt: skip
        y += lane.height

    # time axis: year labels and gridlines, month ticks, quarter gridlines
    c.add('<g class="axis">')
    per_month = scale.per_month
    for day in _months(scale.start, scale.end):
        x = scale.x(day)
        quarter = day.month in (1, 4, 7, 10)
        if day.month == 1 or day == scale.start:
            c.add(
                f'<line x1="{_n(x)}" x2="{_n(x)}" y1="2" y2="{_n(bottom)}" stroke="#b0bec5" '
                f'stroke-width="{1 if day.month == 1 else 0.6}"/>'
            )
        elif quarter:
            c.add(
                f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{AXIS_Y}" y2="{_n(bottom)}" stroke="{GRID}" '
                f'stroke-width="0.8"/>'
            )
        if day < scale.end:
            tick = 7 if quarter else 4
            c.add(
                f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{AXIS_Y - tick}" y2="{AXIS_Y}" '
                f'stroke="{MUTED}" stroke-width="0.8"/>'
            )
            if per_month >= 24 or (per_month >= 9 and quarter):
                c.text(x + 2, AXIS_Y - 9, f"{day:%b}", fill=MUTED, font_size=FONT - 1.5)
    for year in range(scale.start.year, scale.end.year + 1):
        a = scale.x(max(scale.start, dt.date(year, 1, 1)))
        b = scale.x(min(scale.end, dt.date(year + 1, 1, 1)))
        if b - a >= 30:
            c.text((a + b) / 2, 12, str(year), fill=TEXT, font_weight="bold", text_anchor="middle")
    c.add(
        f'<line x1="{GUTTER}" x2="{WIDTH - RIGHT}" y1="{AXIS_Y}" y2="{AXIS_Y}" stroke="{MUTED}"/>'
    )
    c.add("</g>")

    # items
    y = top
    for lane in lanes:
        row_y: float = y + LANE_PAD
        c.add(f'<g class="step" data-step="{_e(lane.number if lane.number is not None else "")}">')
        for row in lane.packed:
            for mark in row.marks:
                c.add(_shape_svg(mark, row_y))
                halo = {} if mark.inside else HALO
                c.text(mark.label_x, row_y + ROW / 2 + 4, mark.label, fill=TEXT,
                       text_anchor=mark.anchor, font_size=FONT - 0.5, **halo)  # fmt: skip
            row_y += ROW
        for group in lane.series:
            _series_row(group, scale, c, row_y)
            row_y += ROW
        for band, drawn in lane.bands:
            _band_rows(band, drawn, scale, c, row_y)
            row_y += 2 * ROW
        c.add("</g>")
        y += lane.height

    # today
    tx = scale.x(t.today)
    label = f"Today: {_short(t.today)}"
    anchor = "start" if tx + 4 + _text_w(label) <= WIDTH - RIGHT else "end"
    lx = tx + 4 if anchor == "start" else tx - 4
    c.add(
        f'<g class="today"><line x1="{_n(tx)}" x2="{_n(tx)}" y1="{AXIS_Y - 2}" '
        f'y2="{_n(bottom + 6)}" stroke="{TODAY}" stroke-width="1.6" stroke-dasharray="5 3">'
        f"<title>{_e(label)}</title></line>"
    )
    c.text(lx, bottom + 16, label, fill=TODAY, font_weight="bold", text_anchor=anchor)
    c.add("</g>")

    _legend(c, legend_y, bool(periods))
    c.add("</svg>")
    return "\n".join(c.parts) + "\n"


def _legend(c: _Canvas, y: float, bands: bool) -> None:
    """Two rows: the shapes (a plan's dashed outline among them), then the status colours."""
    neutral, tint = COLOURS["upcoming"]
    x = 8.0
    c.add(f'<g class="legend" transform="translate(0 {_n(y)})">')

    def item(swatch: str, label: str, width: float = 14, row: float = 0) -> None:
        nonlocal x
        c.add(swatch.format(x=_n(x), cx=_n(x + 7), r=_n(x + 14), top=_n(row - 4)))
        c.text(x + width + 6, row + 4, label, fill=TEXT, font_size=FONT - 1)
        x += width + 6 + len(label) * 5.2 + 16

    item(
        f'<rect x="{{x}}" y="-4" width="14" height="9" rx="2" fill="{tint}" stroke="{neutral}"/>',
        "Window",
    )
    item(
        f'<polygon points="{{cx}},-5 {{r}},0.5 {{cx}},6 {{x}},0.5" fill="{neutral}"/>',
        "Deadline / report",
    )
    item(f'<rect x="{{cx}}" y="-5" width="2.5" height="11" fill="{neutral}"/>', "Meeting")
    if bands:
        item(
            f'<rect x="{{x}}" y="-4" width="14" height="9" rx="2" fill="{BAND[1]}" '
            f'stroke="{BAND[0]}"/>',
            "Period",
        )
    dx = x + 26  # the plan's swatch: a dashed bar and a dashed hollow diamond
    item(
        f'<g class="legend-plan"><rect x="{{x}}" y="-4" width="14" height="9" rx="2" '
        f'fill="#ffffff" stroke="{neutral}" stroke-dasharray="{PLAN_DASH}"/>'
        f'<polygon points="{_n(dx)},-5 {_n(dx + 5.5)},0.5 {_n(dx)},6 {_n(dx - 5.5)},0.5" '
        f'fill="{tint}" stroke="{neutral}" stroke-width="1.2" stroke-dasharray="{PLAN_DASH}"/>'
        "</g>",
        SOURCE_NAMES["planned"],
        width=32,
    )
    x = 8.0
    for status in LEGEND_STATUSES:
        name = STATUS_NAMES[status]
        if status == "upcoming":
            name += f" / {STATUS_NAMES['due-soon'].lower()}"
        swatch = f'<rect x="{{x}}" y="{{top}}" width="14" height="9" rx="2" fill="{COLOURS[status][0]}"/>'
        item(swatch, name, row=18)
    c.add("</g>")
