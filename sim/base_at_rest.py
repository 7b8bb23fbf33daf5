"""A tier's base at rest: who is with us in a market where lines join as others leave.

A tier's churn depends on its lines' tenure (loyalty grows with time) and on their own propensity
(the likeliest leavers go first). A base drawn with arbitrary tenures and propensities therefore
drifts though nothing in the market changes: its risky lines leave, its lines age, and its churn
fades. The base at rest is the one that stays as it is: each month's leavers are replaced by as many
new lines (tenure 0, a fresh propensity from the tier's spread), and each line's propensity is drawn
afresh at the tier's ``risk_renewal`` rate (life events).

With a steady inflow, the base at rest is the sum of its cohorts: the lines of tenure *τ* are what
is left of a cohort of new lines after *τ* months. One cohort is followed on a grid of propensities,
month by month as the engine does (its churn at billing, then the renewal of propensities), with the
tier's calibrated hazard at a typical line's other drivers. Its survivors by tenure, and the law of
their propensity, are the base's joint law of tenure and propensity; :mod:`sim.population` draws the
starting base from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .scenario.tiers import Tier

GRID_POINTS = 161
"""Propensity values of the grid, over +-5 spreads."""
MAX_TENURE = 600
"""Months of tenure followed (50 years); the few lines older than that are counted at 600."""
DRAW_BLOCK = 1 << 18


@dataclass(frozen=True)
class BaseAtRest:
    """A tier's joint law of tenure (whole months) and own propensity (log-odds) at rest."""

    tenure_share: np.ndarray
    """Share of the base with each tenure 0..MAX_TENURE months."""
    propensity_cdf: np.ndarray
    """Per tenure (rows), the cumulative law of propensity over :attr:`grid` (columns)."""
    grid: np.ndarray
    """Propensity values of the grid (log-odds)."""

    @property
    def mean_tenure(self) -> float:
        return float(np.dot(self.tenure_share, np.arange(self.tenure_share.size)))

    def draw(self, u_tenure: np.ndarray, u_propensity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tenures (months) and propensities for uniforms ``u_tenure`` and ``u_propensity`` (inverse laws:
        the tenure from its share, the propensity from its law among lines of that tenure). In blocks of
        :data:`DRAW_BLOCK` lines: a starting base has millions, and each needs a few scratch numbers."""
        tenure = np.empty(u_tenure.size, dtype=np.int64)
        value = np.empty(u_tenure.size)
        for start in range(0, u_tenure.size, DRAW_BLOCK):
            block = slice(start, start + DRAW_BLOCK)
            tenure[block], value[block] = self._draw(u_tenure[block], u_propensity[block])
        return tenure, value

    def _draw(self, u_tenure: np.ndarray, u_propensity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cdf = np.cumsum(self.tenure_share)
        tenure = np.minimum(np.searchsorted(cdf / cdf[-1], u_tenure, side="right"), MAX_TENURE)
        # One search over every tenure's law at once: row t's values are shifted by t (each row goes 0..1).
        rows = self.propensity_cdf + np.arange(self.propensity_cdf.shape[0])[:, None]
        flat = rows.ravel()
        target = tenure + np.clip(u_propensity, 1e-12, 1.0 - 1e-12)
        at = np.clip(np.searchsorted(flat, target, side="left"), 1, flat.size - 1)
        # A grid point's share spread evenly over its cell (half a step either side): the propensity is
        # continuous, the grid only follows it.
        low, high = flat[at - 1], flat[at]
        step = self.grid[1] - self.grid[0]
        column = at % self.grid.size
        fraction = np.where(high > low, (target - low) / np.where(high > low, high - low, 1.0), 0.5)
        value = self.grid[column] + step * (np.clip(fraction, 0.0, 1.0) - 0.5)
        return tenure.astype(np.int64), value


def base_at_rest(base_logit: float, tenure_term: Callable[[float], float], spread: float,
                 renewal: float, cycle: int = 1) -> BaseAtRest:
    """The base at rest of a tier whose monthly churn logit is ``base_logit`` (every driver but tenure and
    own propensity, at a typical line) + ``tenure_term(tenure)`` + own propensity (normal, standard
    deviation ``spread``), whose propensities renew at ``renewal`` a month. ``cycle``: enterprise accounts
    that decide at their tender only, every ``cycle`` months of tenure (the last month of each contract,
    :func:`decision_cycle`); 1 for units deciding every month."""
    grid = np.linspace(-5.0, 5.0, GRID_POINTS) * max(spread, 1e-6)
    fresh = np.exp(-0.5 * (grid / max(spread, 1e-6)) ** 2)
    fresh /= fresh.sum()
    cohort = fresh.copy()
    share = np.empty(MAX_TENURE + 1)
    cdf = np.empty((MAX_TENURE + 1, GRID_POINTS))
    for tenure in range(MAX_TENURE + 1):
        alive = cohort.sum()
        share[tenure] = alive
        cdf[tenure] = np.cumsum(cohort) / alive if alive > 0 else np.cumsum(fresh)
        hazard = 1.0 / (1.0 + np.exp(-(base_logit + float(tenure_term(tenure)) + grid)))
        if cycle == 1 or tenure % cycle == cycle - 1:
            cohort = cohort * (1.0 - hazard)
        cohort = (1.0 - renewal) * cohort + renewal * cohort.sum() * fresh
    # Lines older than the grid's last month are counted in it: the rest of the cohort, whose monthly
    # survival stays about that of the last month, sums to share / (1 - survival).
    if share[-1] > 0:
        if cycle == 1:
            leaving = 1.0 - cohort.sum() / share[-1]
        else:
            # A tender every ``cycle`` months: the monthly survival averaged over the last cycle.
            leaving = 1.0 - (cohort.sum() / share[MAX_TENURE + 1 - cycle]) ** (1.0 / cycle)
        share[-1] /= max(leaving, 1e-6)
    cdf[:, -1] = 1.0
    return BaseAtRest(share / share.sum(), cdf, grid)


def decision_cycle(tier: Tier) -> int:
    """Months between an account's decisions in a base at rest: its contract's term for an enterprise tier
    deciding at renewal with every account on a contract (the tender falls at tenures term - 1,
    2 term - 1, ...: an account joins on a new contract and re-signs at each tender it stays); 1 otherwise.
    With rolling accounts too (a contract share below 1) the base at rest follows the monthly hazard
    averaged over the accounts, the rolling ones among them."""
    if tier.decides_at == "renewal" and tier.contract.share == 1 and tier.contract.term_months >= 2:
        return tier.contract.term_months
    return 1


def contract_renewal_rate(tier: Tier) -> float:
    """The monthly rate at which out-of-contract lines re-sign so that the tier's contract share stays
    where it starts.

    At the start a share ``share`` of lines is under contract, with a remaining term spread evenly over
    ``term`` months (so ``q = share * (term - 1) / term`` of them are inside it in month 1: a contract
    ending this month counts as over). A contract signed, by a new line or a renewal, runs ``term - 1``
    months inside; contract lines leave at ``h_in`` a month, lines out of contract at ``h_out`` (their
    odds times ``exp(out_of_contract)``), and the lines replacing the leavers sign at ``share``. The
    flows balance when ``rate = (q / S - share * h) / ((1 - q) * (1 - h_out))``, with ``S`` the months a
    signed contract is expected to run inside (``term - 1``, less its lines leaving) and ``h`` the
    tier's churn. For an enterprise tier deciding at renewal, ``h_in`` is 0 and ``h_out`` carries the
    whole churn.
    """
    share, term = tier.contract.share, tier.contract.term_months
    if tier.decides_at == "renewal" and share == 1 and term >= 2:
        return 1.0  # every account staying at its tender signs the next contract
    if not 0 < share < 1 or term < 2:
        return 0.0
    inside = share * (term - 1) / term
    ratio = math.exp(tier.sensitivity.out_of_contract)
    churn = tier.baseline_churn
    if tier.decides_at == "renewal":
        # Accounts deciding at renewal only do not leave inside a contract: the tier's churn is carried
        # by the renewal month and the rolling accounts (with every account on a contract, the rate is 1).
        h_in, h_out = 0.0, min(1.0, churn / (1.0 - inside))
    else:
        # At most every line: a steeply negative out_of_contract sensitivity would ask lines under
        # contract to carry more churn than they have.
        h_in = min(1.0, churn / (inside + (1.0 - inside) * ratio))
        h_out = min(1.0, h_in * ratio)
    months_inside = sum((1.0 - h_in) ** k for k in range(term - 1))
    survivors = (1.0 - inside) * (1.0 - h_out)
    if survivors <= 0.0:
        # Every line out of contract leaves within the month (a steep out_of_contract sensitivity): none is
        # left to renew, and the rate, at its bound, changes nothing.
        return 1.0
    rate = (inside / months_inside - share * churn) / survivors
    return float(min(1.0, max(0.0, rate)))


SATISFACTION_QUANTILES = 33
"""Evenly spaced quantiles kept of each group's satisfaction at rest."""
PROPENSITY_GROUPS = 5
"""Groups of lines by own propensity (quintiles) whose satisfaction at rest is kept apart."""


@dataclass(frozen=True)
class SatisfactionAtRest:
    """A tier's satisfaction as normal service leaves it, by region and by own propensity.

    Outages and waits lower the satisfaction of the lines they hit, who recover a tenth a month; the
    lines most likely to leave have left when their satisfaction was low, so in a base at rest a line's
    satisfaction and its propensity are related. A starting base drawn without that relation would lose
    its risky, dissatisfied lines in its first months, and churn above normal service while it does.
    """

    edges: np.ndarray
    """Propensity (int8 steps) bounds between the groups."""
    quantiles: np.ndarray
    """Per region and propensity group, evenly spaced quantiles of satisfaction."""

    @classmethod
    def of(cls, region: np.ndarray, propensity: np.ndarray, satisfaction: np.ndarray, regions: int,
           fallback: float) -> SatisfactionAtRest:
        """From the active lines of a run at rest: their regions, propensities and satisfaction."""
        levels = np.linspace(0.0, 1.0, SATISFACTION_QUANTILES)
        if propensity.size:
            edges = np.quantile(propensity.astype(np.float64), np.arange(1, PROPENSITY_GROUPS) / PROPENSITY_GROUPS)
        else:
            edges = np.zeros(PROPENSITY_GROUPS - 1)
        group = np.searchsorted(edges, propensity, side="right")
        overall = np.quantile(satisfaction, levels) if satisfaction.size else np.full(levels.size, fallback)
        table = np.empty((regions, PROPENSITY_GROUPS, levels.size))
        for r in range(regions):
            in_region = region == r
            for g in range(PROPENSITY_GROUPS):
                here = satisfaction[in_region & (group == g)]
                table[r, g] = np.quantile(here, levels) if here.size >= 10 else (
                    np.quantile(satisfaction[in_region], levels) if in_region.any() else overall)
        return cls(edges, table)

    def draw(self, region: np.ndarray, propensity: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Satisfaction for lines of ``region`` with ``propensity`` (int8 steps), from uniforms ``u``."""
        size = self.quantiles.shape[2]
        # Flat indices into the table, not a row of quantiles per line: a starting base has millions.
        x = u * (size - 1)
        low = np.minimum(x.astype(np.int64), size - 2)
        at = (region.astype(np.int64) * self.quantiles.shape[1] + np.searchsorted(self.edges, propensity, side="right"))
        at = at * size + low
        flat = self.quantiles.ravel()
        picked = flat[at]
        x -= low
        x *= flat[at + 1] - picked
        x += picked
        return x
