"""Retention offers: who gets one, who accepts, and what it costs.

Money comes from the allocation's tier x lever x period cells. Within a period a
cell is spent evenly over the months left (what a month leaves unspent rolls
over), and never beyond what the cell holds: offers are paid in rank order until
the next one would overdraw the cell.

An offer's full cost is committed when it is made: the contact, and for an
acceptance the one-off cost plus the per-line-month cost over the offer's
duration (for an enterprise account, per line of the account).

The contact policy (at most k offers per line in W months) is applied as a
minimum spacing of W/k months between two offers to the same unit, which never
allows more than k in any W-month window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .allocation import Allocation
from .population import TierState
from .scenario import Scenario
from .scenario.levers import Lever


@dataclass
class LeverBook:
    """Spend and counts of offers for one run, keyed by (tier, lever, month)."""

    spend: dict[tuple[str, str, int], float] = field(default_factory=dict)
    offers: dict[tuple[str, str, int], int] = field(default_factory=dict)
    accepted: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def add(self, tier: str, lever: str, month: int, spend: float, offers: int, accepted: int) -> None:
        key = (tier, lever, month)
        self.spend[key] = self.spend.get(key, 0.0) + spend
        self.offers[key] = self.offers.get(key, 0) + offers
        self.accepted[key] = self.accepted.get(key, 0) + accepted


@dataclass
class Budget:
    """What is left in each cell, and the channels' and levers' capacity left."""

    scenario: Scenario
    remaining: dict[tuple[str, str, str], float]
    """Money left per cell, in simulated terms (the cell's amount times its tier's simulated share)."""
    weights: dict[str, float]
    """Real units per simulated unit, per tier."""
    channel_left: dict[str, float] = field(default_factory=dict)
    """Offers left this month per channel, in real offers (shared by tiers simulated at different shares)."""
    lever_left: dict[tuple[str, str], float] = field(default_factory=dict)

    @classmethod
    def from_allocation(cls, scenario: Scenario, allocation: Allocation, weights: dict[str, float]) -> "Budget":
        remaining = {cell: amount / weights[cell[0]] for cell, amount in allocation.amounts.items() if amount > 0}
        budget = cls(scenario, remaining, weights)
        for lever, capacity in scenario.budget.lever_capacity.items():
            for period in scenario.meta.periods:
                budget.lever_left[(lever, period.name)] = capacity
        return budget

    def start_month(self) -> None:
        self.channel_left = {name: ch.capacity_per_month for name, ch in self.scenario.channels.items()}

    def allowance(self, tier: str, lever: str, month: int) -> float:
        """This month's share of the cell: what is left over the months left in the period."""
        period = self.scenario.meta.period_of_month(month)
        left = self.remaining.get((tier, lever, period), 0.0)
        if left <= 0:
            return 0.0
        end = 0
        for p in self.scenario.meta.periods:
            end += p.months
            if p.name == period:
                break
        return left / (end - month + 1)

    def offer_limit(self, tier: str, lever_name: str, month: int) -> int:
        """Simulated offers the channel and the lever's capacity still allow this month for ``tier``."""
        lever = self.scenario.levers[lever_name]
        period = self.scenario.meta.period_of_month(month)
        limit = self.channel_left.get(lever.channel, 0.0)
        if (lever_name, period) in self.lever_left:
            limit = min(limit, self.lever_left[(lever_name, period)])
        return max(0, int(limit / self.weights[tier] + 1e-9))

    def charge(self, tier: str, lever_name: str, month: int, amount: float, offers: int) -> None:
        """Take ``amount`` (simulated money) from the cell and ``offers`` (simulated) from the capacities."""
        period = self.scenario.meta.period_of_month(month)
        self.remaining[(tier, lever_name, period)] = self.remaining.get((tier, lever_name, period), 0.0) - amount
        lever = self.scenario.levers[lever_name]
        real_offers = offers * self.weights[tier]
        self.channel_left[lever.channel] = self.channel_left.get(lever.channel, 0.0) - real_offers
        if (lever_name, period) in self.lever_left:
            self.lever_left[(lever_name, period)] -= real_offers

    def cell_left(self, tier: str, lever: str, month: int) -> float:
        return self.remaining.get((tier, lever, self.scenario.meta.period_of_month(month)), 0.0)


def offer_costs(lever: Lever, accepted: np.ndarray, lines_per_unit: int) -> np.ndarray:
    """Cost of each offer made (in rank order), given who accepted."""
    per_acceptance = lever.cost_per_acceptance + lever.cost_per_line_month * lever.duration_months * lines_per_unit
    return lever.cost_per_contact + accepted * per_acceptance


def affordable(costs: np.ndarray, cell_left: float) -> int:
    """How many offers, paid in rank order, the cell pays for: the first that would overdraw it is not made."""
    return int(np.searchsorted(np.cumsum(costs), cell_left * (1 + 1e-12), side="right"))


@dataclass(frozen=True)
class OfferResult:
    offered: np.ndarray
    """Units offered (indices into the tier's arrays)."""
    accepted: np.ndarray
    """Boolean per offered unit."""
    spend: float


def make_offers(state: TierState, lever_index: int, lever: Lever, lever_name: str, candidates: np.ndarray,
                money: float, cell_left: float, limit: int, month: int,
                acceptance_draws: Callable[[np.ndarray], np.ndarray]) -> OfferResult:
    """Offer ``lever`` to ``candidates`` (best first) within ``money`` this month, never beyond ``cell_left``."""
    expected = lever.cost_per_contact + lever.acceptance * (
        lever.cost_per_acceptance + lever.cost_per_line_month * lever.duration_months * state.lines_per_unit)
    if expected <= 0:
        count = min(candidates.size, limit)
    else:
        count = min(candidates.size, limit, int(money / expected))
    if count <= 0:
        return OfferResult(candidates[:0], np.zeros(0, dtype=bool), 0.0)
    offered = candidates[:count]
    accepted = acceptance_draws(offered) < lever.acceptance
    costs = offer_costs(lever, accepted, state.lines_per_unit)
    paid = affordable(costs, cell_left)
    offered, accepted, costs = offered[:paid], accepted[:paid], costs[:paid]
    apply_acceptance(state, offered[accepted], lever_index, lever, month)
    state.last_offer[offered] = month
    return OfferResult(offered, accepted, float(costs.sum()))


def apply_acceptance(state: TierState, units: np.ndarray, lever_index: int, lever: Lever, month: int) -> None:
    """An accepted offer: lower hazard for its duration, satisfaction up, contract extended."""
    if units.size == 0:
        return
    state.effect_until[units] = month + lever.duration_months - 1
    state.effect_lever[units] = lever_index
    if lever.satisfaction_gain:
        state.satisfaction[units] = np.clip(state.satisfaction[units] + np.float32(lever.satisfaction_gain), 0.0, 1.0)
    if lever.contract_extension_months:
        state.contract_end[units] = np.maximum(state.contract_end[units],
                                               month + lever.contract_extension_months - 1).astype(np.int16)
