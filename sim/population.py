"""Drawing the subscriber base: each tier's units at the start of month 1, and units that join later.

A tier's units come from its stated figures (region mix, tenure, contract share, satisfaction, a
normal spread of own propensity) or, for a scenario built from a customer table, from the table's
rows (:mod:`sim.customers.population`). The arrays they fill are :mod:`sim.subscribers`.
"""

from __future__ import annotations

import numpy as np

from .customers.population import apply_rows, choose_rows, load_table_population
from .scenario import Scenario
from .scenario.tiers import Tier
from .streams import TierGenerators, name_key
from .subscribers import ACTIVE, FIELDS, NO_MONTH, PROPENSITY_STEP, TierState, empty_arrays


def region_shares(scenario: Scenario, tier: Tier) -> np.ndarray:
    """The tier's share of units per region, in the order of ``network.regions``."""
    regions = list(scenario.network.regions)
    if tier.regions:
        return np.array([tier.regions.get(r, 0.0) for r in regions], dtype=float)
    return np.array([scenario.network.regions[r].share for r in regions], dtype=float)


MIN_SIMULATED_UNITS = 2_000
"""A tier thinned by ``run.scale`` keeps at least this many units (or all it has), so small tiers
such as key accounts are never reduced to a handful."""


def tier_scale(tier: Tier, scale: float) -> float:
    """The share of a tier's units that is simulated. A run simulates at most every unit (scale 1); a
    calibration sample may ask for more, drawing a small tier several times over."""
    if scale >= 1.0:
        return scale
    return min(1.0, max(scale, MIN_SIMULATED_UNITS / max(tier.unit_count, 1)))


def initial_units(tier: Tier, scale: float) -> int:
    """Deciding units simulated for a tier at the run's scale (at least one)."""
    return max(1, int(round(tier.unit_count * tier_scale(tier, scale))))


def fill_new_units(state: TierState, tier: Tier, rows: slice, month: int, shares: np.ndarray,
                   rng: np.random.Generator, *, at_start: bool) -> None:
    """Give units in ``rows`` their starting attributes: region, tenure, contract, satisfaction."""
    n = rows.stop - rows.start
    state.batch_starts.append(state.next_uid)
    state.uid[rows] = np.arange(state.next_uid, state.next_uid + n, dtype=np.int32)
    state.next_uid += n
    # Grouped by region (the other attributes are drawn independently of it): a region's new units are
    # one run of rows, which an outage reads without an index.
    state.region[rows] = np.sort(rng.choice(len(shares), size=n, p=shares)).astype(np.uint8) if len(shares) > 1 else 0
    state.status[rows] = ACTIVE
    state.churn_month[rows] = NO_MONTH
    if at_start:
        # Tenure is exponential with the tier's mean; contracts are at a uniformly spread point of their term.
        tenure = np.minimum(rng.exponential(tier.tenure.mean_months, size=n), 600.0)
        state.join_month[rows] = (1 - np.floor(tenure)).astype(np.int16)
        under = rng.random(n) < tier.contract.share
        remaining = rng.integers(0, tier.contract.term_months, size=n)
        state.contract_end[rows] = np.where(under, month + remaining, month - 1).astype(np.int16)
        spread = rng.normal(0.0, 0.08, size=n)
        state.satisfaction[rows] = np.clip(tier.satisfaction + spread, 0.0, 1.0).astype(np.float32)
    else:
        # A new line starts its tenure now; new contract lines sign a full term.
        state.join_month[rows] = month
        under = rng.random(n) < tier.contract.share
        state.contract_end[rows] = np.where(under, month + tier.contract.term_months - 1, month - 1).astype(np.int16)
        state.satisfaction[rows] = np.float32(tier.satisfaction)
    state.complaints[rows] = 0
    state.last_offer[rows] = NO_MONTH
    state.effect_until[rows] = NO_MONTH
    state.effect_lever[rows] = 0
    # A normal propensity, kept in one byte per unit.
    steps = np.rint(rng.standard_normal(n) * (tier.risk_spread / PROPENSITY_STEP))
    state.propensity[rows] = np.clip(steps, -127, 127).astype(np.int8)
    state.model_error[rows] = np.clip(np.rint(rng.standard_normal(n) / PROPENSITY_STEP), -127, 127).astype(np.int8)


def group_by_region(state: TierState) -> None:
    """Reorder the units ``[0, size)`` by region (in a stable order), keeping uids in row order: each
    unit keeps its attributes and takes the uid of its new row."""
    n = state.size
    order = np.argsort(state.region[:n], kind="stable")
    for name in FIELDS:
        if name != "uid":
            values = getattr(state, name)
            values[:n] = values[:n][order]


def build_population(scenario: Scenario, generators: TierGenerators, scale: float = 1.0) -> list[TierState]:
    """The subscriber base at the start of month 1, one :class:`TierState` per tier, each drawn from its
    own generator (``generators(tier name)``), so a tier's units do not depend on the other tiers."""
    states = []
    horizon = scenario.meta.horizon_months
    table = None
    if scenario.population is not None:
        # A customer table: the tiers' units are its rows.
        table = load_table_population(scenario)
    for index, (name, tier) in enumerate(scenario.tiers.items()):
        rng = generators(name)
        units = initial_units(tier, scale)
        rows = None
        if table is not None:
            rows = choose_rows(table, name, units, rng)
            units = rows.size
        # Room for the expected gross adds plus a margin, so growth rarely needs a copy.
        room = int(units * (tier.gross_add_rate * horizon * 1.2 + 0.02)) + 16
        arrays = empty_arrays(units + room)
        lines_per_unit = int(tier.lines_per_account or 1)
        weight = tier.unit_count / units
        state = TierState(name=name, index=index, key=name_key(name), lines_per_unit=lines_per_unit, weight=weight,
                          size=units, **arrays)
        fill_new_units(state, tier, slice(0, units), 1, region_shares(scenario, tier), rng, at_start=True)
        if table is not None and rows is not None:
            apply_rows(state, table, rows, list(scenario.network.regions))
            group_by_region(state)
        if tier.kind == "enterprise":
            state.account_of_line = np.repeat(np.arange(units, dtype=np.int32), lines_per_unit)
        states.append(state)
    return states
