"""Drawing the subscriber base: each tier's units at the start of month 1, and units that join later.

A tier's units come from its stated figures (region mix, tenure, contract share, satisfaction, a
normal spread of own propensity) or, for a scenario built from a customer table, from the table's
rows (:mod:`sim.customers.population`). The arrays they fill are :mod:`sim.subscribers`.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping

import numpy as np

from . import kernels
from .accounts import LINES_DTYPE, account_sizes
from .base_at_rest import MAX_TENURE, BaseAtRest, SatisfactionAtRest, decision_cycle
from .customers.population import apply_rows, choose_rows, load_table_population
from .scale import initial_units
from .scenario import Scenario
from .scenario.tiers import Tier
from .streams import TierGenerators, name_key
from .subscribers import (
    ACTIVE,
    FIELDS,
    NO_MONTH,
    PROPENSITY_STEP,
    TierState,
    empty_arrays,
)


def region_shares(scenario: Scenario, tier: Tier) -> np.ndarray:
    """The tier's share of units per region, in the order of ``network.regions``."""
    regions = list(scenario.network.regions)
    if tier.regions:
        return np.array([tier.regions.get(r, 0.0) for r in regions], dtype=float)
    return np.array([scenario.network.regions[r].share for r in regions], dtype=float)


def stratified_uniforms(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniforms in [0, 1), one in each of ``n`` equal strata, in a random order.

    Each is uniform on its own, so a unit's attribute has exactly its stated law; together they cover
    the law evenly, so a tier of a few dozen accounts has the stated spread of risk in every
    replication instead of one that depends on the draw (stratified sampling). Replications then
    differ by what happens to the units, far less by who they are.
    """
    u = rng.permutation(n).astype(np.float64)
    u += rng.random(n)
    u *= 1.0 / n
    return u


def normal_quantile(u: np.ndarray) -> np.ndarray:
    """The standard normal quantile of ``u`` (see :func:`sim.kernels.normal_quantile`): the engine's core
    does not depend on scipy."""
    return kernels.normal_quantile(np.ascontiguousarray(u, dtype=np.float64).ravel()).reshape(np.shape(u))


def fill_new_units(state: TierState, tier: Tier, rows: slice, month: int, shares: np.ndarray,
                   rng: np.random.Generator, *, at_start: bool, rest: BaseAtRest | None = None,
                   satisfaction: SatisfactionAtRest | None = None) -> None:
    """Give units in ``rows`` their starting attributes: region, tenure, contract, satisfaction, their own
    propensity and the churn model's error about them. Each attribute is drawn by stratified sampling
    (:func:`stratified_uniforms`), independently of the others, but for a starting base at rest
    (``rest``), whose tenure and propensity are drawn together: the oldest lines are the least likely
    to leave, as the likeliest left before them. ``satisfaction``: the starting base's satisfaction as
    normal service leaves it (by default every line at the tier's usual level)."""
    n = rows.stop - rows.start
    state.batch_starts.append(state.next_uid)
    state.uid[rows] = np.arange(state.next_uid, state.next_uid + n, dtype=np.int32)
    state.next_uid += n
    # Grouped by region (the other attributes are drawn independently of it): a region's new units are
    # one run of rows, which an outage reads without an index.
    if len(shares) > 1:
        state.region[rows] = kernels.sorted_regions(stratified_uniforms(rng, n), np.cumsum(shares) / np.sum(shares))
    else:
        state.region[rows] = 0
    state.status[rows] = ACTIVE
    state.churn_month[rows] = NO_MONTH
    under = stratified_uniforms(rng, n) < tier.contract.share
    propensity = None
    if at_start:
        # Tenure is the base at rest's, or exponential with the tier's stated mean; contracts are at a
        # uniformly spread point of their term.
        u = stratified_uniforms(rng, n)
        if rest is not None and tier.tenure.mean_months is None:
            tenure, propensity = rest.draw(u, stratified_uniforms(rng, n))
        else:
            mean = tier.tenure.mean_months or first_guess_tenure(tier)
            tenure = np.minimum(-mean * np.log1p(-u), 600.0)
        state.join_month[rows] = (1 - np.floor(tenure)).astype(np.int16)
        remaining = np.floor(stratified_uniforms(rng, n) * tier.contract.term_months).astype(np.int64)
        cycle = decision_cycle(tier)
        if cycle > 1 and rest is not None and tier.tenure.mean_months is None:
            # Accounts at rest that tender every term: the months to the next tender follow from the tenure
            # (they joined on a new contract, re-signed at each tender), as the base at rest counts them.
            # The oldest accounts are counted together at the last tenure: their tenders stay spread evenly.
            at = np.asarray(tenure, dtype=np.int64)
            remaining = np.where(at >= MAX_TENURE, remaining, np.mod(cycle - 1 - at, cycle))
        state.contract_end[rows] = np.where(under, month + remaining, month - 1).astype(np.int16)
    else:
        # A new line starts its tenure now; new contract lines sign a full term.
        state.join_month[rows] = month
        state.contract_end[rows] = np.where(under, month + tier.contract.term_months - 1, month - 1).astype(np.int16)
        state.satisfaction[rows] = np.float32(tier.satisfaction)
    state.complaints[rows] = 0
    state.last_offer[rows] = NO_MONTH
    state.effect_until[rows] = NO_MONTH
    state.effect_lever[rows] = 0
    # A normal propensity (or the base at rest's), kept in one byte per unit.
    if propensity is None:
        state.propensity[rows] = kernels.normal_steps(stratified_uniforms(rng, n), tier.risk_spread, PROPENSITY_STEP)
    else:
        state.propensity[rows] = np.clip(np.rint(propensity / PROPENSITY_STEP), -127, 127).astype(np.int8)
    if at_start:
        # Satisfaction as normal service leaves it: lines recover towards the tier's usual level, so any
        # other spread at the start would fade over the first year and the tier's churn with it; the
        # spread that lasts is the outages', by region and by how likely the line is to leave.
        if satisfaction is None:
            state.satisfaction[rows] = np.float32(tier.satisfaction)
        else:
            state.satisfaction[rows] = satisfaction.draw(state.region[rows], state.propensity[rows],
                                                         stratified_uniforms(rng, n)).astype(np.float32)
    state.model_error[rows] = kernels.normal_steps(stratified_uniforms(rng, n), 1.0, PROPENSITY_STEP)
    if state.lines is not None:
        # Drawn last, and only where sizes vary: the other attributes' draws are those of accounts all
        # the same size, and size is independent of them (a large group is no likelier to leave).
        if tier.account_size is not None and tier.account_size.spread > 0:
            state.lines[rows] = account_sizes(tier, stratified_uniforms(rng, n))
        else:
            state.lines[rows] = round(tier.lines_per_unit)


def group_by_region(state: TierState) -> np.ndarray:
    """Reorder the units ``[0, size)`` by region (in a stable order), keeping uids in row order: each
    unit keeps its attributes and takes the uid of its new row. Returns the order: the new row ``i``
    holds the unit that was in row ``order[i]``."""
    n = state.size
    order = np.argsort(state.region[:n], kind="stable")
    for name in FIELDS:
        if name != "uid":
            values = getattr(state, name)
            values[:n] = values[:n][order]
    return order


def first_guess_tenure(tier: Tier) -> float:
    """The mean tenure of a base at rest if churn did not depend on tenure or propensity: the first
    guess of the calibration, before the tier's hazard (and so its base at rest) is known."""
    return min(600.0, 1.0 / tier.baseline_churn)


def renewal_table(tier: Tier) -> np.ndarray:
    """256 propensities (int8 steps) at evenly spaced quantiles of the tier's spread: a renewed line
    takes one of them, chosen by eight random bits (:func:`sim.kernels.age_rows`)."""
    quantiles = normal_quantile((np.arange(256) + 0.5) / 256) * tier.risk_spread
    return np.clip(np.rint(quantiles / PROPENSITY_STEP), -127, 127).astype(np.int8)


def build_population(scenario: Scenario, generators: TierGenerators, scale: float = 1.0, *,
                     rest: Mapping[str, BaseAtRest], satisfaction: Mapping[str, SatisfactionAtRest] | None = None,
                     minimum: int | None = None) -> list[TierState]:
    """The subscriber base at the start of month 1, one :class:`TierState` per tier, each drawn from its
    own generator (``generators(tier name)``), so a tier's units do not depend on the other tiers.
    A tier without a stated mean tenure is drawn from its base at rest in ``rest`` (from the calibration,
    :func:`sim.engine.prepare`); missing there, from a first guess (:func:`first_guess_tenure`).
    ``satisfaction``: per tier, the starting base's law of satisfaction by region (:func:`fill_new_units`).
    ``minimum``: units drawn of every tier at least (:func:`sim.scale.tier_scale`)."""
    states = []
    horizon = scenario.meta.horizon_months
    table = None
    if scenario.population is not None:
        # A customer table: the tiers' units are its rows.
        table = load_table_population(scenario)
    for index, (name, tier) in enumerate(scenario.tiers.items()):
        rng = generators(name)
        units = initial_units(tier, scale, minimum)
        rows = None
        if table is not None:
            rows = choose_rows(table, name, units, rng)
            units = rows.size
        # Room for the lines replacing the expected leavers plus a margin, so joining rarely needs a copy.
        room = int(units * (tier.baseline_churn * horizon * 1.2 + 0.02)) + 16
        arrays = empty_arrays(units + room)
        lines_per_unit = max(1, round(tier.lines_per_unit))
        weight = tier.unit_count / units
        state = TierState(name=name, index=index, key=name_key(name), lines_per_unit=lines_per_unit, weight=weight,
                          size=units, **arrays)
        if tier.kind == "enterprise":
            state.lines = np.empty(units + room, dtype=LINES_DTYPE)
        fill_new_units(state, tier, slice(0, units), 1, region_shares(scenario, tier), rng, at_start=True,
                       rest=rest.get(name), satisfaction=(satisfaction or {}).get(name))
        if table is not None and rows is not None:
            apply_rows(state, table, rows, list(scenario.network.regions))
            # The starting units' uids are their rows after the regrouping (uid i in row i).
            state.table_rows = rows[group_by_region(state)]
        states.append(state)
    return states


REUSED_BASE_BYTES = 256 * 2**20
"""A process keeps the last starting base it drew up to this size (about 7M lines): beyond it, keeping a
second copy would cost more memory per line than a replication of an operator's whole base may take."""

_last_base: tuple[tuple[object, ...], tuple, list[TierState]] | None = None
_last_base_lock = threading.Lock()


def starting_base(scenario: Scenario, generators: TierGenerators, scale: float, key: tuple[int, int], *,
                  rest: Mapping[str, BaseAtRest], satisfaction: Mapping[str, SatisfactionAtRest] | None = None,
                  minimum: int | None = None) -> list[TierState]:
    """:func:`build_population`, drawn once for the runs of a replication that follow one another.

    The strategies compared, and the closed loop's designs, start each replication from the same base
    (common random numbers): its draws are fixed by the scenario, the calibration's base at rest, the
    seed and the replication (``key``: seed, replication), ``scale`` and ``minimum``. The last base drawn
    is kept untouched and each later run of the same replication gets a copy of it: the same arrays as
    drawing it again, without the draws. The scenario and the calibration's laws are matched as the
    objects they are (held here, so never mistaken for others), not as equal values: a base is reused
    only within one stage's runs of one scenario."""
    global _last_base
    inputs = (scenario, rest, satisfaction)
    wanted = (*key, scale, minimum)
    last = _last_base
    if last is not None and last[1] == wanted and all(a is b for a, b in zip(last[0], inputs)):
        return copy.deepcopy(last[2])
    states = build_population(scenario, generators, scale, rest=rest, satisfaction=satisfaction, minimum=minimum)
    size = sum(getattr(state, name).nbytes for state in states for name in FIELDS)
    with _last_base_lock:
        _last_base = (inputs, wanted, copy.deepcopy(states)) if size <= REUSED_BASE_BYTES else None
    return states

