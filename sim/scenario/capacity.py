"""What a simulation can hold: the upper bounds the scenario reader puts on sizes, rates and money.

Each bound comes from the engine's arrays or from the machine, and is stated here once with its
reason, so that the schema, the error a planner sees and the engine agree:

* a unit's region and running lever are one-byte codes in the subscriber arrays
  (:mod:`sim.subscribers`): at most 256 regions, and 127 levers (the lever code's top bit marks a
  save-desk offer);
* a simulated unit's arrays take about 36 bytes (56 at a run's peak, measured in ``bench/``), so the units a run
  simulates, at the start and joining over the horizon, are bounded to keep a run within a few GB;
* a unit's number (``uid``) is a 32-bit integer, which bounds the units of one tier;
* calls and outages are simulated one by one, so their rate is bounded, and the mean outage-hours of a region
  cannot exceed the hours of a month;
* money is summed over lines, months and replications and squared for the intervals: bounded amounts
  keep every sum and square finite.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..scale import initial_units

if TYPE_CHECKING:
    from .model import Scenario

MAX_REGIONS = 256
"""A unit's region is a one-byte code."""
MAX_TIER_UNITS = 2_000_000_000
"""Lines (or accounts) of one tier: a unit's number is a 32-bit integer."""
MAX_SIMULATED_UNITS = 100_000_000
"""Units one run simulates, at the start and joining over the horizon: at about 65 bytes each at a run's peak
(the 100M-line benchmark's 85M units took 5.55 GB), some 6.5 GB."""
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
MAX_CALL_RATE = 10.0
"""Calls per line per month in normal times: one every three days (operators see about 0.1)."""
MAX_CALLS_PER_UNIT = 1_000.0
"""Calls a month of one deciding unit (an enterprise account's lines together): each call is drawn and
settled one by one, and the calibration simulates at least 5,000 units of every tier for 27 months."""

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


def projected_lines(scenario: Scenario) -> dict[str, float]:
    """An upper estimate of the lines each tier may hold over the horizon: its whole segment (our lines
    and the rivals' in it, every one of which a price war can bring to us), grown by the segment's growth,
    plus the segment's new lines, none of them leaving."""
    horizon = scenario.meta.horizon_months
    ours = float(sum(t.line_count for t in scenario.tiers.values()))
    rivals = sum(scenario.market.operators[k].lines for k in scenario.market.competitors)
    overall = ours / (ours + rivals) if ours + rivals > 0 else 1.0
    projected = {}
    for name, tier in scenario.tiers.items():
        market = tier.market
        # The rivals hold the rest of the segment only if they have lines (sim.competition.segment_pools).
        share = (market.share if market.share is not None else overall) if rivals > 0 else 1.0
        segment = tier.line_count / share
        growth = max(1.0, (1.0 + market.growth) ** (horizon / 12.0))
        new_lines = segment * growth * market.leaving * horizon + segment * (growth - 1.0)
        plan = market.gross_adds
        stated = 0.0 if plan is None or plan.lines is None else sum(plan.monthly(m) or 0.0 for m in range(1, horizon + 1))
        projected[name] = segment * growth + new_lines + stated
    return projected


def projected_units(scenario: Scenario) -> dict[str, float]:
    """An upper estimate of the units each tier may simulate over the horizon, at ``run.scale``
    (:func:`projected_lines` in the engine's units)."""
    return {name: initial_units(tier, scenario.run.scale) / max(tier.line_count, 1) * lines
            for (name, tier), lines in zip(scenario.tiers.items(), projected_lines(scenario).values())}


def scale_within(units: float, scale: float) -> float:
    """A ``run.scale`` (two significant digits, rounded down) at which ``units`` simulated at ``scale``
    fit in :data:`MAX_SIMULATED_UNITS`."""
    wanted = MAX_SIMULATED_UNITS / units * scale
    digits = 1 - math.floor(math.log10(wanted))
    return math.floor(wanted * 10**digits) / 10**digits


MAX_WAITING_CALLERS = 20_000
"""Callers the hotline's queue may hold at once: it is simulated caller by caller (some 50 µs each), its long-run state
included (:func:`sim.queue.stationary_state`)."""


def hotline_waiting(scenario: Scenario) -> float:
    """An upper estimate of the callers waiting at once in the hotline's long-run state: those arriving
    within a caller's patience at the normal rate of the most lines the tiers may hold
    (:func:`projected_lines`: a price war can bring a segment's every line to us). An outage's burst of
    calls opens on that state and is simulated for its share of the sample only. The queue runs at full
    scale, whatever ``run.scale``."""
    cc = scenario.contact_center
    if cc.patience_minutes is None:
        # Patient callers of a hotline at or a hair below full load warm up from empty, within the sample
        # (sim.queue.stationary_state): their queue holds what arrives in its window.
        return 0.0
    lines = projected_lines(scenario)
    calls = sum(lines[name] * t.call_rate for name, t in scenario.tiers.items())
    return calls / (cc.open_hours_per_month * 60.0) * cc.patience_minutes
