"""The ``network`` section: regions, their quality, outages and our investments.

Outages arrive in each region as a Poisson process; while one lasts, the affected
share of the region's lines sees its network quality drop, loses satisfaction, and
some of those lines call the hotline.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from .capacity import HOURS_PER_MONTH, MAX_OUTAGES_PER_MONTH, MAX_REGIONS
from .types import (
    Money,
    Month,
    NamedMap,
    Probability,
    RegionRef,
    Section,
    Seq,
    check_shares,
    fail,
)

OutageRate = Annotated[float, Field(ge=0.0, le=MAX_OUTAGES_PER_MONTH)]
"""Mean outages a month in a region: at most 60, two a day (outages are simulated one by one)."""


class Region(Section):
    """A region of our network."""

    share: Probability
    """Share of our lines in the region (the default mix of every tier); shares add up to 1."""
    quality: Probability = 0.85
    """Our perceived network quality there in normal times, 0..1."""
    outages_per_month: OutageRate = 0.5
    """Mean number of outages per month (Poisson arrivals); at most 60 (two a day), and with
    ``outage_hours`` at most 744 outage-hours a month (the hours of the longest month)."""
    outage_hours: Annotated[float, Field(gt=0.0, le=720.0)] = 4.0
    """Mean outage duration in hours (exponential)."""
    outage_severity: Probability = 0.2
    """Share of the region's lines an outage affects."""
    outage_quality_drop: Probability = 0.3
    """Drop in perceived quality for affected lines in the month of an outage lasting a day or more;
    a shorter outage weighs by its share of a day."""
    outage_satisfaction_drop: Probability = 0.05
    """Satisfaction an affected line loses per outage."""
    outage_call_share: Probability = 0.05
    """Share of affected lines that call the hotline about the outage."""

    @model_validator(mode="after")
    def _outage_hours_fit_a_month(self) -> Region:
        check_outage_hours(self.outages_per_month, self.outage_hours, ())
        return self


class Investment(Section):
    """Our network investment: quality up in a region from a month on."""

    region: RegionRef
    month: Month
    """First month with the higher quality."""
    quality_gain: Annotated[float, Field(ge=-1.0, le=1.0)]
    """Added to the region's quality (capped at 1)."""
    outage_reduction: Probability = 0.0
    """Share of the region's outages avoided from then on."""
    cost: Money = 0.0
    """Its cost, reported beside retention spend (not part of the retention budget)."""


def check_outage_hours(rate: float, hours: float, at: tuple[str, ...]) -> None:
    """A region's mean outage-hours a month fit in a month: outages are simulated one by one, and more
    would only stack outages on outages (and the work of a run with them)."""
    if rate * hours > HOURS_PER_MONTH:
        raise fail(f"{rate:g} outages a month of {hours:g} hours each are {rate * hours:,.0f} outage-hours a "
                   f"month, more than the {HOURS_PER_MONTH:g} hours of a month",
                   f"lower outages_per_month or outage_hours so that their product is at most {HOURS_PER_MONTH:g} "
                   "(a region out all month long is 1 outage of 744 hours)", at=at + ("outages_per_month",))


def _region_shares(regions: dict[str, Region]) -> dict[str, Region]:
    check_shares({name: r.share for name, r in regions.items()}, "network region")
    return regions


class Network(Section):
    """Our network by region."""

    regions: Annotated[NamedMap[Region], Field(max_length=MAX_REGIONS), AfterValidator(_region_shares)]
    """Our regions by name: at most 256 (a unit's region is held in one byte)."""
    investments: Seq[Investment] = ()
