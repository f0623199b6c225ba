"""The named periods reports run over (the 27-month CCEIS budget period, implementation), as
bands for the chart and the checklist."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

from pacing.core.dates import period_bounds
from pacing.core.guide import Guide, applicable_guides
from pacing.core.lea import Lea


class Band(NamedTuple):
    """A named span drawn as a band (e.g. the 27-month CCEIS budget period), with the
    occurrences of the series run over it (`Entry.series` ids) drawn on it as markers.
    Unpacks like (title, start, end, ...)."""

    title: str
    start: dt.date
    end: dt.date
    series: tuple[str, ...] = ()
    key: str = ""


def timeline_periods(guides: Sequence[Guide], lea: Lea) -> tuple[Band, ...]:
    """The periods of the LEA's applicable guides over which reports are due (the CCEIS budget period and
    its quarterly reports, the implementation period and its progress reports, ...), each with
    the report series run over it, in date order."""
    bands = []
    for guide in applicable_guides(guides, lea):
        for key, period in guide.periods.items():
            series = tuple(
                f"{guide.id}/step-{item.step}/{item.id}"
                for item in guide.items
                if item.series and item.series.period == key and item.kind == "report"
            )
            if series:
                start, end = period_bounds(period, lea)
                bands.append(Band(period.title, start, end, series, f"{guide.id}/{key}"))
    return tuple(sorted(bands, key=lambda b: (b.start, b.end, b.key)))
