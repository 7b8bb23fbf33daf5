"""The ``reference`` section: the conditions the tiers' stated churn describes.

A tier's ``baseline_churn`` was measured somewhere: in normal service, at list prices, with no
campaign running. The engine calibrates each tier's hazard to reproduce it under those conditions,
and everything the scenario adds on top (an outage crisis in a region, an understaffed hotline,
campaigns, price moves) moves churn away from it. By default the reference is the scenario's own
network and the hotline's staffing in month 1; a scenario that starts in a crisis says here what
normal service is, so that the crisis raises churn instead of being read as normal.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .network import OutageRate
from .types import Probability, RefMap, RegionRef, Section


class NormalRegion(Section):
    """A region in normal service; a figure left out is the region's own (``network.regions``)."""

    quality: Probability | None = None
    outages_per_month: OutageRate | None = None
    outage_hours: Annotated[float, Field(gt=0.0, le=720.0)] | None = None
    outage_severity: Probability | None = None
    outage_quality_drop: Probability | None = None
    outage_satisfaction_drop: Probability | None = None
    outage_call_share: Probability | None = None


class Reference(Section):
    """Normal service: what the stated churn was measured in."""

    regions: RefMap[RegionRef, NormalRegion] = {}
    """Regions whose normal service differs from the scenario's (a region in crisis), by name."""
    agents: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    """Agents on shift in normal times; by default the staffing of month 1."""
