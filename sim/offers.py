"""Retention offers: how a cell's money becomes offers, who takes which lever, and what it costs.

Money comes from the allocation's tier x lever x period cells.

**Pacing.** Each month a cell releases an even share of what it has left for the rest of its period
(what it has left over its months left, this one included). Released money buys offers at the
offer's expected cost (contact, plus the acceptance rate times what an acceptance commits), and
fractions of an offer carry over from month to month, starting from a keyed random fraction: a
cell's offers are proportional to its amount from one offer up (a cell worth 0.3 of an offer makes
one with probability 0.3), and spread evenly over its period. Whether an offer can be paid is
decided before anyone accepts, at its expected cost: what the cell commits equals its amount in
expectation, more when more accept than expected and less when fewer do.

**Costs.** The contact and the one-off acceptance cost are paid when the offer is made; the monthly
cost is paid each month the offer runs on an active line, so it stops when the line leaves or a
better offer replaces it, and the months not paid go back to the cell while its period lasts.
Costs committed beyond the horizon are booked in its last month. A lever with a launch cost pays
it at the start of each period in which any of its cells is funded.

**Which line gets which lever.** Every line holds at most one running offer, the strongest it took:
a line is offered a lever only if the offer it is on (if any) is weaker (a smaller hazard
reduction), so it is never offered the same again while that runs, and an accepted offer replaces
the weaker running one (whose remaining months and their monthly cost stop). A tier's proactive levers take its
best-ranked lines in the order of their effect per offer (:attr:`Lever.effect_per_offer`), never in
the order the scenario lists them. A save (a save-desk acceptance) replaces whatever was running:
a customer who asks to leave is no longer held by it.

**Capacity.** When tiers together want more offers than a channel (or a lever's capacity) allows,
each gets the same share of what it wanted, so the order of tiers changes nothing.

The contact policy (at most k offers per line in W months) is applied as a minimum spacing of
W/k months between two proactive offers to the same unit, which never allows more than k in any
W-month window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .allocation import Allocation, Cell
from .kernels import SAVE_FLAG
from .scenario import Scenario
from .scenario.levers import DRIVERS, Lever, UnitCosts
from .streams import RandomStreams, name_key
from .subscribers import NO_MONTH, TierState


@dataclass
class LeverBook:
    """Money and offers of one run, keyed by (tier, lever, month): spend is what the month paid."""

    spend: dict[tuple[str, str, int], float] = field(default_factory=dict)
    offers: dict[tuple[str, str, int], float] = field(default_factory=dict)
    accepted: dict[tuple[str, str, int], float] = field(default_factory=dict)

    def add(self, tier: str, lever: str, month: int, spend: float, offers: float = 0.0, accepted: float = 0.0) -> None:
        key = (tier, lever, month)
        self.spend[key] = self.spend.get(key, 0.0) + spend
        self.offers[key] = self.offers.get(key, 0.0) + offers
        self.accepted[key] = self.accepted.get(key, 0.0) + accepted


@dataclass(frozen=True)
class LeverTable:
    """The scenario's levers in the order of their numbers in ``effect_lever``, with the tables the
    compiled passes read."""

    names: tuple[str, ...]
    levers: tuple[Lever, ...]
    log_odds: np.ndarray
    """Per lever number: log(1 - hazard reduction), the running offer's term in the churn logit."""
    cuts: np.ndarray
    """Per lever number: the hazard reduction (a running offer's strength)."""
    hazard_log_odds: np.ndarray
    """Per lever number: the running offer's term in the hazard's dense pass: ``log_odds``, but 0 for a
    lever acting on named drivers, whose term depends on the line (:func:`sim.kernels.response_terms`).
    The churn model ranks with ``log_odds``: it knows what an offer does on average, not to whom."""
    spreads: np.ndarray
    """Per lever number: the spread of lines' responsiveness (0: every line alike)."""
    risk_correlations: np.ndarray
    """Per lever number: the correlation of responsiveness with a line's own propensity."""
    driver_masks: np.ndarray
    """Per lever number: the drivers it acts on, one bit each in the order of
    :data:`sim.scenario.levers.DRIVERS` (0: the whole hazard)."""

    @classmethod
    def of(cls, scenario: Scenario) -> LeverTable:
        names = tuple(scenario.levers)
        levers = tuple(scenario.levers.values())
        log_odds = np.array([math.log(max(1e-9, 1.0 - lv.hazard_reduction)) for lv in levers], np.float32)
        cuts = np.array([lv.hazard_reduction for lv in levers], np.float32)
        spreads = np.array([lv.response.spread if lv.response else 0.0 for lv in levers], np.float64)
        correlations = np.array([lv.response.risk_correlation if lv.response else 0.0 for lv in levers], np.float64)
        masks = np.array([sum(1 << DRIVERS.index(d) for d in lv.acts_on) if lv.acts_on else 0 for lv in levers],
                         np.int64)
        hazard_log_odds = np.where(masks > 0, np.float32(0.0), log_odds).astype(np.float32) if masks.any() else log_odds
        return cls(names, levers, log_odds, cuts, hazard_log_odds, spreads, correlations, masks)

    @property
    def varies_by_line(self) -> bool:
        """Whether any lever's effect differs from line to line."""
        return bool(self.spreads.any() or self.driver_masks.any())

    def number(self, name: str) -> int:
        return self.names.index(name)


@dataclass
class Pace:
    """One funded cell as its money turns into offers (in simulated money and offers)."""

    remaining: float
    """Money not released yet."""
    credit: float
    """Offers paid for and not made yet (fractional)."""
    per_offer: float
    """Expected cost of an offer of this cell."""


class Budget:
    """The allocation's cells as they pay for offers month by month, and the capacities left."""

    def __init__(self, scenario: Scenario, allocation: Allocation, weights: dict[str, float],
                 streams: RandomStreams) -> None:
        self.scenario = scenario
        self.weights = weights
        """Real units per simulated unit, per tier."""
        self.costs: dict[tuple[str, str], UnitCosts] = {
            (t, name): lever.costs(tier) for t, tier in scenario.tiers.items()
            for name, lever in scenario.levers.items() if lever.reaches(t)}
        self.period_end: dict[str, int] = {}
        end = 0
        for period in scenario.meta.periods:
            end += period.months
            self.period_end[period.name] = end
        self.paces: dict[Cell, Pace] = {}
        for cell, amount in sorted(allocation.amounts.items()):
            if amount <= 0 or cell[:2] not in self.costs:
                continue
            tier, lever, period = cell
            per_offer = self.costs[(tier, lever)].per_offer
            # Systematic rounding: one keyed fraction per cell, then whole offers as the credit crosses integers.
            start = float(streams.unit_uniforms("pace", np.array([name_key(period)], np.uint64), name_key(tier),
                                                name_key(lever))[0])
            self.paces[cell] = Pace(amount / weights[tier], start, per_offer)
        self.launches: dict[tuple[str, str], float] = {}
        """(lever, period) -> launch cost: every lever with a launch cost and a funded cell in the period."""
        for (_, lever, period) in self.paces:
            cost = scenario.levers[lever].launch_cost
            if cost > 0:
                self.launches[(lever, period)] = cost
        self.lever_left: dict[tuple[str, str], float] = {
            (lever, p.name): capacity for lever, capacity in scenario.budget.lever_capacity.items()
            for p in scenario.meta.periods}
        self.channel_left: dict[str, float] = {}
        self.month = 0
        self.period = ""
        self.ledger: dict[Cell, list[float]] = {cell: [0.0, 0.0, 0.0] for cell in self.paces}
        self.amounts = [float(allocation.amounts[cell]) for cell in self.paces]
        """Each funded cell's amount (real money), in the order of ``ledger``."""
        """Per funded cell, in simulated units: offers made, offers accepted, and money committed (what
        its offers cost over their life, less the months they will not run)."""

    def going_on(self, allocation: Allocation, streams: RandomStreams) -> Budget:
        """This budget as it stands at the end of its month, going on under ``allocation``: the cells of the
        periods begun keep their money, offers and commitments, the capacities left stay; the later periods'
        cells are ``allocation``'s, untouched as they are until their period begins. Raises ``ValueError``
        where ``allocation`` funds a begun period's cells otherwise than this budget does."""
        other = Budget(self.scenario, allocation, self.weights, streams)
        begun = {p.name for p in self.scenario.meta.periods if self.period_end[p.name] - p.months < self.month}
        mine = dict(zip(self.ledger, self.amounts))
        theirs = dict(zip(other.ledger, other.amounts))
        for cell in sorted(set(mine) | set(theirs)):
            if cell[2] not in begun:
                continue
            if mine.get(cell) != theirs.get(cell):
                raise ValueError(f"cell {cell} is funded {mine.get(cell, 0.0)} so far and "
                                 f"{theirs.get(cell, 0.0)} from now on: a run goes on only under the same "
                                 "cells in the periods begun")
            other.paces[cell] = replace(self.paces[cell])
            other.ledger[cell] = list(self.ledger[cell])
        other.lever_left = dict(self.lever_left)
        other.channel_left = dict(self.channel_left)
        other.month, other.period = self.month, self.period
        return other

    # --- the month ------------------------------------------------------------------------------

    def start_month(self, month: int) -> None:
        """Release this month's share of every cell of the month's period; channels start afresh."""
        self.month = month
        self.period = self.scenario.meta.period_of_month(month)
        self.channel_left = {name: ch.capacity_per_month for name, ch in self.scenario.channels.items()}
        months_left = self.period_end[self.period] - month + 1
        for (_, _, period), pace in self.paces.items():
            if period != self.period:
                continue
            release = pace.remaining / months_left
            pace.remaining -= release
            if pace.per_offer > 0:
                pace.credit += release / pace.per_offer

    def due(self, tier: str, lever: str) -> int:
        """Whole offers the cell of this month's period has paid for and not made (simulated)."""
        pace = self.paces.get((tier, lever, self.period))
        if pace is None:
            return 0
        if pace.per_offer <= 0:
            return 10**12 if pace.remaining + pace.credit > 0 else 0  # offers that cost nothing: as many as allowed
        if pace.credit >= 10**12:
            # Offers of a vanishing cost (a share of a tiny bill, a tiny acceptance): the credit can pass any
            # count, even overflow to infinity; as for free offers, as many as allowed.
            return 10**12
        return max(0, int(math.floor(pace.credit + 1e-9)))

    def funded(self, tier: str, lever: str) -> bool:
        return (tier, lever, self.period) in self.paces

    def launches_due(self, month: int) -> list[tuple[str, str, float]]:
        """(lever, period, cost) of the launches paid at the start of ``month`` (a period's first month)."""
        period = self.scenario.meta.period_of_month(month)
        first = self.period_end[period] - next(p.months for p in self.scenario.meta.periods if p.name == period) + 1
        if month != first:
            return []
        return [(lever, p, cost) for (lever, p), cost in sorted(self.launches.items()) if p == period]

    # --- capacity ---------------------------------------------------------------------------------

    def grant(self, wants: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
        """Simulated offers each (tier, lever) may make of the ``wants`` (simulated), within the channels'
        capacity this month and the levers' this period: when tiers together want more than a capacity
        allows, each gets the same share of what it wanted."""
        levers = self.scenario.levers
        real = {key: n * self.weights[key[0]] for key, n in wants.items() if n > 0}
        by_channel: dict[str, float] = {}
        by_lever: dict[str, float] = {}
        for (tier, lever), n in real.items():
            by_channel[levers[lever].channel] = by_channel.get(levers[lever].channel, 0.0) + n
            by_lever[lever] = by_lever.get(lever, 0.0) + n
        granted = {}
        for (tier, lever), n in real.items():
            share = min(1.0, self.channel_left.get(levers[lever].channel, 0.0) / by_channel[levers[lever].channel])
            if (lever, self.period) in self.lever_left:
                share = min(share, max(0.0, self.lever_left[(lever, self.period)]) / by_lever[lever])
            granted[(tier, lever)] = min(wants[(tier, lever)], int(math.floor(n * share / self.weights[tier] + 1e-9)))
        return granted

    def use(self, tier: str, lever: str, offers: int) -> None:
        """``offers`` (simulated) made: taken from the channel's and the lever's capacity."""
        real = offers * self.weights[tier]
        channel = self.scenario.levers[lever].channel
        self.channel_left[channel] = self.channel_left.get(channel, 0.0) - real
        if (lever, self.period) in self.lever_left:
            self.lever_left[(lever, self.period)] -= real

    # --- money --------------------------------------------------------------------------------------

    def made(self, tier: str, lever: str, offers: int, accepted: int, committed: float) -> None:
        """``offers`` made, ``accepted`` of them, committing ``committed`` (simulated money). The credit paid
        for them at their expected cost, whoever accepts: a cell's offers stay in proportion to its amount,
        and what it commits equals its amount in expectation."""
        cell = (tier, lever, self.period)
        pace = self.paces.get(cell)
        if pace is None or offers <= 0:
            return
        pace.credit -= offers
        entry = self.ledger[cell]
        entry[0] += offers
        entry[1] += accepted
        entry[2] += committed

    def refund(self, tier: str, lever: str, offer_month: int, amount: float) -> None:
        """Monthly costs an offer made in ``offer_month`` will not pay (its line left, or a better offer
        replaced it) go back to its cell, if its period still runs."""
        cell = (tier, lever, self.scenario.meta.period_of_month(offer_month))
        pace = self.paces.get(cell)
        if pace is None or amount <= 0:
            return
        self.ledger[cell][2] -= amount
        if cell[2] == self.period:
            pace.remaining += amount


def offer_month(until: np.ndarray, code: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """The month each running offer was made, from its last month and lever code: a proactive offer runs
    from the month it is made, a save from the month after."""
    lever = code & np.uint8(127)
    save = (code & SAVE_FLAG) > 0
    return until.astype(np.int64) - durations[lever] + np.where(save, 0, 1)


def replace_running(state: TierState, units: np.ndarray, month: int, paid_this_month: bool, table: LeverTable,
                    month_costs: np.ndarray, durations: np.ndarray, budget: Budget) -> None:
    """The running offers of ``units`` stop now (their line leaves, or a new offer replaces them): the
    months they will not pay go back to their cells. ``paid_this_month``: this month's cost is paid."""
    if units.size == 0:
        return
    until = state.effect_until[units].astype(np.int64)
    code = state.effect_lever[units]
    unpaid = until - month + (0 if paid_this_month else 1)
    running = unpaid > 0
    if not running.any():
        return
    units, until, code, unpaid = units[running], until[running], code[running], unpaid[running]
    lever = (code & np.uint8(127)).astype(np.int64)
    if state.running is not None:
        np.add.at(state.running, (lever, until), -1)
    costs = month_costs[lever] * unpaid
    started = offer_month(until, code, durations)
    for number in np.unique(lever[costs > 0]):
        mine = (lever == number) & (costs > 0)
        for start in np.unique(started[mine]):
            budget.refund(state.name, table.names[number], int(start), float(costs[mine & (started == start)].sum()))
    state.effect_until[units] = NO_MONTH


def apply_acceptance(state: TierState, units: np.ndarray, lever_number: int, lever: Lever, month: int, *,
                     save: bool) -> None:
    """An accepted offer: its effect on the hazard for its months, satisfaction up, contract extended.
    A proactive offer runs from this month; a save (made at billing) from the next."""
    if units.size == 0:
        return
    until = month + lever.duration_months - (0 if save else 1)
    state.effect_until[units] = until
    state.effect_lever[units] = lever_number | (int(SAVE_FLAG) if save else 0)
    if state.running is not None:
        state.running[lever_number, until] += units.size
    if lever.satisfaction_gain:
        state.satisfaction[units] = np.clip(state.satisfaction[units] + np.float32(lever.satisfaction_gain), 0.0, 1.0)
    if lever.contract_extension_months:
        last = month + lever.contract_extension_months - (0 if save else 1)
        state.contract_end[units] = np.maximum(state.contract_end[units], last).astype(np.int16)
