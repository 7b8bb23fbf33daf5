"""What a simulation can hold: the upper bounds the scenario reader puts on sizes, rates and money.

Each bound comes from the engine's arrays or from the machine, and is stated here once with its
reason, so that the schema, the error a planner sees and the engine agree:

* a unit's region and running lever are one-byte codes in the subscriber arrays
  (:mod:`sim.subscribers`): at most 256 regions, and 127 levers (the lever code's top bit marks a
  save-desk offer);
* a simulated unit takes about 36 bytes (37 at the peak, measured in ``bench/``), so the units a run
  simulates, at the start and joining over the horizon, are bounded to keep a run within a few GB;
* a unit's number (``uid``) is a 32-bit integer, which bounds the units of one tier;
* outages are simulated one by one, so their rate is bounded, and the mean outage-hours of a region
  cannot exceed the hours of a month;
* money is summed over lines, months and replications and squared for the intervals: bounded amounts
  keep every sum and square finite.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Scenario

MAX_REGIONS = 256
"""A unit's region is a one-byte code."""
MAX_TIER_UNITS = 2_000_000_000
"""Lines (or accounts) of one tier: a unit's number is a 32-bit integer."""
MAX_SIMULATED_UNITS = 100_000_000
"""Units one run simulates, at the start and joining over the horizon: at about 37 bytes each, some 4 GB."""
MAX_MONEY = 1e12
"""Largest amount of money in a scenario; sums over lines, months and replications, and their squares,
stay finite."""
MAX_VALUE = 1e15
"""Largest value (margin retained over the horizon) a stated response curve may give."""
MAX_QUANTITY = 1e12
"""Largest count of lines, offers or capacity: more than any market holds, small enough that sums stay
finite."""
MAX_OPERATOR_LINES = 1e10
"""A rival's lines: more than the people on earth."""
MAX_OUTAGES_PER_MONTH = 60.0
"""Outages are simulated one by one: two a day in a region at most."""
HOURS_PER_MONTH = 744.0
"""The longest month (31 days): a region cannot be out for longer on average."""
MAX_CALL_RATE = 100.0
"""Calls per line per month: three a day."""

BOUND_REASONS: dict[float, str] = {
    MAX_TIER_UNITS: "a unit's number in the simulation is a 32-bit integer",
    MAX_MONEY: "money is summed over lines, months and replications, and larger amounts would overflow the sums",
    MAX_VALUE: "values are summed and squared for their intervals, and larger ones would overflow",
    MAX_OPERATOR_LINES: "that is more than the people on earth",
}
"""Why a value bound is where it is, for the planner's message; keyed by the bound, which no other field
uses (smaller bounds such as 60 or 100 are shared by fields of different reasons, and say it in the schema)."""

COUNT_REASONS: dict[tuple[str, ...], str] = {
    ("network", "regions"): "a unit's region is held in one byte",
    ("levers",): "a unit's running lever is held in one byte, its top bit marking a save-desk offer",
}
"""Why a list or mapping holds at most so many items, by its key path."""


def projected_units(scenario: Scenario) -> dict[str, float]:
    """An upper estimate of the units each tier simulates over the horizon: those at the start (after
    ``run.scale``) plus the segment's growth and the new lines we take, none of them leaving."""
    from ..population import (
        initial_units,  # the engine's own rounding of the scaled units
    )

    horizon = scenario.meta.horizon_months
    ours = float(sum(t.line_count for t in scenario.tiers.values()))
    rivals = sum(scenario.market.operators[k].lines for k in scenario.market.competitors)
    overall = ours / (ours + rivals) if ours + rivals > 0 else 1.0
    projected = {}
    for name, tier in scenario.tiers.items():
        units = initial_units(tier, scenario.run.scale)
        per_line = units / max(tier.line_count, 1)
        market = tier.market
        share = market.share if market.share is not None else overall
        segment = tier.line_count / share
        growth = max(1.0, (1.0 + market.growth) ** (horizon / 12.0))
        new_lines = segment * growth * market.leaving * horizon + segment * (growth - 1.0)
        plan = market.gross_adds
        if plan is None:
            joining = share * new_lines
        elif plan.lines is None:
            joining = float(plan.share_of_new_lines or 0.0) * new_lines
        else:
            joining = sum(plan.monthly(m) or 0.0 for m in range(1, horizon + 1))
        projected[name] = units + joining * per_line
    return projected


def scale_within(units: float, scale: float) -> float:
    """A ``run.scale`` (two significant digits, rounded down) at which ``units`` simulated at ``scale``
    fit in :data:`MAX_SIMULATED_UNITS`."""
    wanted = MAX_SIMULATED_UNITS / units * scale
    digits = 1 - math.floor(math.log10(wanted))
    return math.floor(wanted * 10**digits) / 10**digits
