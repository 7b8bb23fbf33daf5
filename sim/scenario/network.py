"""The ``network`` section: regions, their quality, outages and our investments.

Outages arrive in each region as a Poisson process; while one lasts, the affected
share of the region's lines sees its network quality drop, loses satisfaction, and
some of those lines call the hotline.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from .types import (
    Money,
    Month,
    NamedMap,
    NonNegativeFloat,
    Probability,
    RegionRef,
    Section,
    Seq,
    check_shares,
)


class Region(Section):
    """A region of our network."""

    share: Probability
    """Share of our lines in the region (the default mix of every tier); shares add up to 1."""
    quality: Probability = 0.85
    """Our perceived network quality there in normal times, 0..1."""
    outages_per_month: NonNegativeFloat = 0.5
    """Mean number of outages per month (Poisson arrivals)."""
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


def _region_shares(regions: dict[str, Region]) -> dict[str, Region]:
    check_shares({name: r.share for name, r in regions.items()}, "network region")
    return regions


class Network(Section):
    """Our network by region."""

    regions: Annotated[NamedMap[Region], AfterValidator(_region_shares)]
    investments: Seq[Investment] = ()
