"""TA hour budget from the Menu of Services: funded hours, estimated range, cost beyond.

The CDE-funded hours pay only for the services of the menu steps the guide names
(`ta_funding.funded_steps`: work done before the funding cut-off); the services of the other
steps are paid at the hourly rate whatever is left of the funded hours.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pacing.core.guide import Guide, TaService, select
from pacing.core.lea import Lea


@dataclass(frozen=True)
class TaBudget:
    guide: Guide
    services: tuple[TaService, ...]
    funded_hours: float
    rate: float
    hours_min: float  # every listed service
    hours_max: float
    per_indicator: float = 0.0
    indicators: int = 1
    minimum: bool = False  # the funded hours are a minimum: the cost is an upper bound
    funded_steps: tuple[int, ...] | None = None  # None: the funded hours count against every step
    funded_until: dt.date | None = None
    funded_until_text: str | None = None
    assumption: str | None = None

    def counts_against_funding(self, service: TaService) -> bool:
        return self.funded_steps is None or service.step in self.funded_steps

    def hours(self, funded: bool) -> tuple[float, float]:
        """Min and max hours of the services the funded hours can (or cannot) pay for."""
        chosen = [s for s in self.services if self.counts_against_funding(s) == funded]
        return sum(s.hours_min or 0 for s in chosen), sum(s.hours_max or 0 for s in chosen)

    def cost(self) -> tuple[float, float]:
        """Floor and ceiling of what the LEA pays beyond the funded hours, in dollars."""
        (fmin, fmax), (omin, omax) = self.hours(True), self.hours(False)
        floor = max(0.0, fmin - self.funded_hours) + omin
        ceiling = max(0.0, fmax - self.funded_hours) + omax
        return floor * self.rate, ceiling * self.rate


def ta_budget(guides: tuple[Guide, ...] | list[Guide], lea: Lea) -> TaBudget | None:
    """The budget from the first applicable guide with TA funding; None when none applies."""
    for guide in guides:
        if guide.ta_funding and guide.applies_to.matches(lea):
            funding = guide.ta_funding
            services = tuple(guide.services)
            indicators = lea.monitoring.sig_dis_indicators
            steps = select(funding.funded_steps, lea) if funding.funded_steps else None
            assumption = (
                select(funding.funded_steps_assumption, lea)
                if funding.funded_steps_assumption
                else None
            )
            return TaBudget(
                guide,
                services,
                funding.funded_hours_per_indicator * indicators,
                funding.hourly_rate_usd,
                sum(s.hours_min or 0 for s in services),
                sum(s.hours_max or 0 for s in services),
                per_indicator=funding.funded_hours_per_indicator,
                indicators=indicators,
                minimum=funding.funded_hours_minimum,
                funded_steps=tuple(sorted(steps)) if steps is not None else None,
                funded_until=funding.funded_until,
                funded_until_text=funding.funded_until_text,
                assumption=assumption,
            )
    return None
