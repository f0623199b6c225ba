"""TA hour budget from the Menu of Services: funded hours, estimated range, cost beyond."""

from __future__ import annotations

from dataclasses import dataclass

from pacing.core.guide import Guide, TaService
from pacing.core.lea import Lea


@dataclass(frozen=True)
class TaBudget:
    guide: Guide
    services: tuple[TaService, ...]
    funded_hours: float
    rate: float
    hours_min: float
    hours_max: float

    def cost_beyond(self, hours: float) -> float:
        return max(0.0, hours - self.funded_hours) * self.rate


def ta_budget(guides: tuple[Guide, ...] | list[Guide], lea: Lea) -> TaBudget | None:
    """The budget from the first applicable guide with TA funding; None when none applies."""
    for guide in guides:
        if guide.ta_funding and guide.applies_to.matches(lea):
            funding = guide.ta_funding
            services = tuple(guide.services)
            return TaBudget(
                guide,
                services,
                funding.funded_hours_per_indicator * lea.monitoring.sig_dis_indicators,
                funding.hourly_rate_usd,
                sum(s.hours_min or 0 for s in services),
                sum(s.hours_max or 0 for s in services),
            )
    return None
