"""Network outages per region: Poisson arrivals in continuous time, exponential durations.

While an outage lasts, the affected share of the region's units sees our network
quality drop (a larger network gap in that month's hazard), loses satisfaction,
and some of those units call the hotline during the outage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scenario import Scenario


@dataclass(frozen=True)
class Outage:
    region: int
    """Region index, in the order of ``network.regions``."""
    start: float
    """Start in months since the beginning of the horizon (month m covers [m-1, m))."""
    hours: float
    severity: float
    """Share of the region's units affected."""

    @property
    def month(self) -> int:
        return int(self.start) + 1


def outage_rate(scenario: Scenario, region_index: int, month: int) -> float:
    """Outages per month in a region, after our investments there."""
    name = list(scenario.network.regions)[region_index]
    rate = scenario.network.regions[name].outages_per_month
    for investment in scenario.network.investments:
        if investment.region == name and investment.month <= month:
            rate *= 1.0 - investment.outage_reduction
    return rate


def draw_outages(scenario: Scenario, region_index: int, month: int, rng: np.random.Generator) -> list[Outage]:
    """Outages starting in ``month`` in one region (a Poisson process, so their number is Poisson)."""
    region = list(scenario.network.regions.values())[region_index]
    count = rng.poisson(outage_rate(scenario, region_index, month))
    starts = np.sort(month - 1 + rng.random(count))
    hours = rng.exponential(region.outage_hours, size=count)
    return [Outage(region_index, float(s), float(h), region.outage_severity) for s, h in zip(starts, hours)]
