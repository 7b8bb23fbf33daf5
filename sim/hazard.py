"""The monthly churn hazard: a logit of named drivers, calibrated to the stated baseline churn.

For a deciding unit *i* of tier *t* in month *m*::

    logit h = base_t
            + price_gap       * (our price - best competitor offer the unit sees)
            + network_gap     * (best competitor quality - our quality in the unit's region [- outage drop])
            + satisfaction    * (1 - satisfaction_i)
            + complaints      * escalated complaints of the last three months
            + out_of_contract * [contract over by the end of the month]
            + tenure          * years with us
            + [contract runs]  * -200  for an account deciding at its renewal only (probability 0)
            + competitor_pressure * campaign intensity aimed at the tier
            + the unit's own propensity (normal, spread ``risk_spread``: what a churn model ranks on)
            + log(1 - hazard_reduction)  while an accepted offer lasts
            + log(1 + backfire)          in the month a contacted unit declined an offer

``base_t`` is solved (bisection on the mean hazard) so that the tier's units at the
start, under *baseline conditions* (list prices, no campaign, no outage, no complaint,
no offer), churn at the stated ``baseline_churn``. Everything a scenario adds on top
(a campaign, an outage, a price war, a retention offer) moves churn away from it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import kernels
from .accounts import IN_CONTRACT_LOCK
from .base_at_rest import BaseAtRest, SatisfactionAtRest, base_at_rest, decision_cycle
from .population import build_population
from .scenario import Scenario
from .scenario.tiers import Tier
from .streams import TierGenerators, seeded_per_tier
from .subscribers import PROPENSITY_STEP, TierState

F32 = np.float32


@dataclass(frozen=True)
class MarketView:
    """What a tier's units see of the market in one month."""

    price_gap: float
    """Our relative price minus the best competitor's effective relative price."""
    best_quality: float
    """Best network quality among competitors."""
    pressure: float
    """Combined competitor campaign intensity aimed at the tier, 0..1."""


@dataclass(frozen=True)
class TierHazard:
    """A tier's calibrated coefficients."""

    base: float
    price_gap: float
    network_gap: float
    satisfaction: float
    complaints: float
    out_of_contract: float
    tenure_per_month: float
    competitor_pressure: float
    region_quality: np.ndarray
    """Our network quality per region (index = region number)."""
    loyalty_months: int = 600
    """Tenure beyond this many months weighs as this many (loyalty stops growing)."""
    in_contract: float = 0.0
    """Added while the contract runs: :data:`sim.accounts.IN_CONTRACT_LOCK` for an enterprise tier whose
    accounts decide at renewal only (``decides_at: renewal``), 0 otherwise."""

    @classmethod
    def of(cls, tier: Tier, base: float, region_quality: np.ndarray) -> TierHazard:
        s = tier.sensitivity
        return cls(base=base, price_gap=s.price_gap, network_gap=s.network_gap, satisfaction=s.satisfaction,
                   complaints=s.complaints, out_of_contract=s.out_of_contract, tenure_per_month=s.tenure / 12.0,
                   competitor_pressure=s.competitor_pressure, region_quality=region_quality,
                   loyalty_months=tier.tenure.loyalty_months,
                   in_contract=IN_CONTRACT_LOCK if tier.decides_at == "renewal" else 0.0)

    def with_base(self, base: float) -> TierHazard:
        return dataclasses.replace(self, base=base)

    def tenure_term(self, tenure: np.ndarray | float) -> np.ndarray | float:
        """The tenure driver's log-odds at ``tenure`` months (growing up to the loyalty months)."""
        return self.tenure_per_month * np.minimum(tenure, self.loyalty_months)


def logit_coefficients(hazard: TierHazard, view: MarketView, month: int, region_quality: np.ndarray,
                       lines_per_unit: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The tier's logit as a few float32 numbers for :mod:`sim.kernels`: ``coef`` (see
    :data:`sim.kernels.LOGIT_COEFFICIENTS`) and the region term per one-byte region code."""
    # Terms that are the same for every unit of the tier fold into one scalar.
    scalar = (hazard.base + hazard.price_gap * view.price_gap + hazard.satisfaction
              + hazard.competitor_pressure * view.pressure + hazard.tenure_per_month * month)
    network = hazard.network_gap * (view.best_quality - region_quality)
    scalar += float(network[0])
    # The region's term relative to region 0, looked up from the one-byte region code.
    by_region = (network - network[0]).astype(F32)
    # Complaints count per line of an account, so that a large account's many calls do not count as many grievances.
    # Tenure counts up to the loyalty months: a unit that joined earlier weighs as one that joined then.
    coef = np.array([scalar, -hazard.satisfaction, hazard.out_of_contract, -hazard.tenure_per_month,
                     PROPENSITY_STEP, hazard.complaints / lines_per_unit, month - hazard.loyalty_months,
                     hazard.in_contract], dtype=F32)
    return coef, by_region


def dense_logit(state: TierState, hazard: TierHazard, view: MarketView, month: int,
                region_quality: np.ndarray, out: np.ndarray | None = None, *,
                lever_log_odds: np.ndarray | None = None) -> np.ndarray:
    """The logit of every unit's hazard (float32, rows ``[0, size)``).

    From the dense attributes only; with ``lever_log_odds`` (per lever) also the complaints and the
    offers running. Outages and backfire, which concern few rows, are added by the caller.
    """
    n = state.size
    coef, by_region = logit_coefficients(hazard, view, month, region_quality, state.lines_per_unit)
    logit = out[:n] if out is not None else np.empty(n, dtype=F32)
    sparse = lever_log_odds is not None
    odds = lever_log_odds if sparse else np.zeros(1, F32)
    kernels.logit_rows(logit, n, month, state.satisfaction, state.region, state.contract_end, state.join_month,
                       state.propensity, by_region, coef, state.complaints, state.effect_until, state.effect_lever,
                       odds, sparse)
    return logit


def probability(logit: np.ndarray) -> np.ndarray:
    """Logistic function in place (float32): the monthly churn probability. In numpy, whose exp is
    vectorized (several times the speed of a compiled loop calling the C library's exp per row)."""
    np.negative(logit, out=logit)
    # An account locked in its contract has a logit of -200: exp overflows to inf, its probability to 0.
    with np.errstate(over="ignore"):
        np.exp(logit, out=logit)
    logit += F32(1.0)
    np.reciprocal(logit, out=logit)
    return logit


def baseline_view(scenario: Scenario) -> MarketView:
    """The market at list prices with no campaigns: the conditions the stated churn refers to."""
    competitors = [scenario.market.operators[c] for c in scenario.market.competitors]
    return MarketView(price_gap=1.0 - min(op.price_index for op in competitors),
                      best_quality=max(op.network_quality for op in competitors), pressure=0.0)


def region_quality(scenario: Scenario) -> np.ndarray:
    return np.array([r.quality for r in scenario.network.regions.values()], dtype=float)


CALIBRATION_UNITS = 400_000
"""Units per tier used to solve the base hazard; more changes the base by far less than 0.01 pp."""


REST_ROUNDS = 6
"""Rounds of solving the base hazard on a base at rest and the base at rest for that hazard, at most."""


@dataclass(frozen=True)
class Solved:
    """What :func:`calibrate` solves: the tiers' hazards and what a base at rest needs of them."""

    hazards: dict[str, TierHazard]
    drivers: dict[str, float]
    """Per tier, the log of the mean odds of its units' drivers other than tenure and own propensity."""
    joining: dict[str, np.ndarray]
    """Per tier, the regions of the lines joining a base at rest: those of its leavers (a region's
    leavers are replaced in that region), so that the tier's regional mix stays put."""


SOLVING_THREADS = 2
"""Tiers whose base hazards the first guess solves at once (threads of one process)."""


def calibrate(scenario: Scenario, seed: int) -> Solved:
    """Solve each tier's base hazard so baseline conditions reproduce its stated baseline churn.

    A tier without a stated mean tenure is a base at rest (:mod:`sim.base_at_rest`), whose tenures and
    propensities depend on its hazard: the two are solved in turn until the base hazard moves by less
    than 0.001. Returns the hazards and, per tier, the log of the mean odds of its units' drivers other
    than tenure and own propensity (what :func:`rest_of` follows a cohort with).

    The solve uses its own population draw (from ``seed``), so the result is the same for
    every replication and strategy of a run.
    """
    quality = region_quality(scenario)
    view = baseline_view(scenario)
    hazards: dict[str, TierHazard] = {}
    drivers: dict[str, float] = {}
    joining: dict[str, np.ndarray] = {}
    regions = len(scenario.network.regions)
    largest = max(t.unit_count for t in scenario.tiers.values())
    scale = min(1.0, CALIBRATION_UNITS / largest)
    rest: dict[str, BaseAtRest] = {}
    for _ in range(REST_ROUNDS):
        # Small tiers are drawn at least CALIBRATION_UNITS/10 times over so the solve is not noisy.
        states = sample_population(scenario, seeded_per_tier(seed, 2**31 - 1), scale, CALIBRATION_UNITS // 10,
                                   rest)
        moved = 0.0
        starts = [TierHazard.of(tier, 0.0, quality) for tier in scenario.tiers.values()]
        logits = [dense_logit(tier_state, start, view, 1, quality).astype(np.float64)
                  for tier_state, start in zip(states, starts)]
        # The tiers' solves are independent and spend their time in numpy's loops, which let go of
        # Python's lock: two at a time on two cores, each the same bits as alone.
        with ThreadPoolExecutor(SOLVING_THREADS) as pool:
            bases = list(pool.map(_solve_base, logits, [tier.baseline_churn for tier in scenario.tiers.values()]))
        for tier_state, (name, tier), start, offsets, base in zip(states, scenario.tiers.items(), starts, logits,
                                                                   bases):
            moved = max(moved, abs(base - hazards[name].base)) if name in hazards else math.inf
            hazards[name] = start.with_base(base)
            n = tier_state.size
            own = (start.tenure_term(1 - tier_state.join_month[:n].astype(np.float64))
                   + PROPENSITY_STEP * tier_state.propensity[:n].astype(np.float64))
            other = offsets - own
            if tier.decides_at == "renewal" and decision_cycle(tier) > 1:
                # Accounts deciding at their tender: the drivers at a decision (the locked months are the cycle's).
                other = other[other > IN_CONTRACT_LOCK / 2] if (other > IN_CONTRACT_LOCK / 2).any() else other
            drivers[name] = float(other.max() + np.log(np.mean(np.exp(other - other.max()))))
            leaving = 1.0 / (1.0 + np.exp(-(offsets + base)))
            by_region = np.bincount(tier_state.region[:n], weights=leaving, minlength=regions)
            joining[name] = by_region / by_region.sum() if by_region.sum() > 0 else by_region
        rest = rests(scenario, hazards, drivers)
        if moved < 1e-3 or not rest:
            break
    return Solved(hazards, drivers, joining)


def rests(scenario: Scenario, hazards: Mapping[str, TierHazard], drivers: Mapping[str, float]) -> dict[str, BaseAtRest]:
    """The base at rest of every tier drawn from one (no stated mean tenure, no customer table)."""
    if scenario.population is not None:
        return {}
    return {name: base_at_rest(hazards[name].base + drivers[name], hazards[name].tenure_term,
                               tier.risk_spread, tier.risk_renewal, decision_cycle(tier))
            for name, tier in scenario.tiers.items() if tier.tenure.mean_months is None}


def sample_population(scenario: Scenario, generators: TierGenerators, scale: float, minimum: int,
                      rest: Mapping[str, BaseAtRest], satisfaction: Mapping[str, SatisfactionAtRest] | None = None
                      ) -> list[TierState]:
    """A draw of every tier's units at ``scale``, a tier with fewer than ``minimum`` units drawn again at
    least ``minimum`` times over (a customer table's tier is all its rows already)."""
    states = build_population(scenario, generators, scale, rest=rest, satisfaction=satisfaction)
    for i, (state, (name, tier)) in enumerate(zip(states, scenario.tiers.items())):
        # Accounts deciding at their tender only: one in a term decides in a month, so the tier is drawn
        # that many times over (up to ten): the mean hazard of a few hundred deciders would be noisy.
        wanted = minimum * min(decision_cycle(tier), 10)
        if state.size < wanted and scenario.population is None:
            boosted = scenario.model_copy(update={"tiers": {name: tier}})
            factor = wanted / max(tier.unit_count, 1)
            states[i] = build_population(boosted, generators, factor, rest=rest, satisfaction=satisfaction)[0]
    return states


def _solve_base(offsets: np.ndarray, target: float) -> float:
    """The constant b with mean(sigmoid(b + offsets)) = target (monotone in b: bisection)."""
    low, high = -30.0, 30.0
    buffer = np.empty_like(offsets, dtype=np.float64)
    for _ in range(80):
        mid = 0.5 * (low + high)
        # mean(1 / (1 + exp(-(mid + offsets)))), the same operations in one buffer.
        np.add(offsets, mid, out=buffer)
        np.negative(buffer, out=buffer)
        np.exp(buffer, out=buffer)
        buffer += 1.0
        np.reciprocal(buffer, out=buffer)
        adjacent = mid in (low, high)
        if float(np.mean(buffer)) < target:
            low = mid
        else:
            high = mid
        if adjacent:
            # low and high were neighbouring numbers: whichever way this step went, no later one moves them.
            break
    return 0.5 * (low + high)


def log_odds_factor(relative_change: float) -> float:
    """log(1 + x): the logit shift that multiplies the odds by (1 + x)."""
    return math.log1p(relative_change)
