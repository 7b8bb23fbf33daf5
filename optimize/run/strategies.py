"""The strategies a planner compares: rules of thumb, the LP's plan, and the planner's own files.

Every strategy turns the scenario's total budget into an :class:`~sim.allocation.Allocation`:

* ``no_retention``: nothing is spent;
* ``uniform``: the same money per line; a tier's share is then split evenly over the levers
  offered to it, and over the periods in proportion to their budgets (or their months);
* ``proportional_revenue``: tiers share in proportion to their monthly revenue (lines x ARPU),
  then as ``uniform``;
* ``key_accounts_first``: the operators' own rule: key accounts, then commercial accounts, then
  VIP tiers, then mass market and prepaid (higher ARPU first within a segment); each tier is
  funded up to what its levers can spend (their ceilings, see :mod:`optimize.run.measure`) before
  the next gets anything;
* ``lp_optimal`` and ``robust_lp``: the optimizer's plans (built by the caller);
* ``csv``: the planner's allocation file.

Rules of thumb ignore the budget's finer constraints (tier bounds, capacities), as such rules do,
but keep the launch costs of the levers they use within the total; the simulator spends a cell's
amount in expectation and never beyond a channel's capacity.
"""

from __future__ import annotations

from pathlib import Path

from sim.allocation import Allocation, Cell
from sim.scenario import Scenario
from sim.scenario.run import Strategy

from .measure import ceiling, cells

SEGMENT_ORDER = ("key_account", "commercial", "vip", "mass", "prepaid")
"""Who comes first under the key-accounts-first rule."""


def _period_shares(scenario: Scenario) -> dict[str, float]:
    periods = scenario.meta.periods
    if all(p.name in scenario.budget.per_period for p in periods):
        weights = {p.name: scenario.budget.per_period[p.name] for p in periods}
    else:
        weights = {p.name: float(p.months) for p in periods}
    total = sum(weights.values())
    return {name: w / total for name, w in weights.items()} if total > 0 else {name: 0.0 for name in weights}


def _levers_of(scenario: Scenario, tier: str) -> list[str]:
    return [name for name, lever in scenario.levers.items() if lever.reaches(tier)]


def spread(scenario: Scenario, tier_weights: dict[str, float], budget: float | None = None) -> Allocation:
    """The budget over tiers by ``tier_weights``, then evenly over each tier's levers and over periods."""
    budget = scenario.budget.total if budget is None else budget
    funded = {t: w for t, w in tier_weights.items() if w > 0 and _levers_of(scenario, t)}
    total = sum(funded.values())
    amounts: dict[Cell, float] = {}
    if total <= 0 or budget <= 0:
        return Allocation(amounts)
    for tier, weight in funded.items():
        levers = _levers_of(scenario, tier)
        for period, share in _period_shares(scenario).items():
            for lever in levers:
                amounts[(tier, lever, period)] = budget * weight / total * share / len(levers)
    return Allocation(amounts)


def key_accounts_first(scenario: Scenario, budget: float | None = None) -> Allocation:
    """Fill tiers in the operators' order of priority, each up to its levers' ceilings."""
    left = scenario.budget.total if budget is None else budget
    order = sorted(scenario.tiers, key=lambda t: (SEGMENT_ORDER.index(scenario.tiers[t].segment),
                                                  -scenario.tiers[t].arpu * scenario.tiers[t].lines_per_unit))
    amounts: dict[Cell, float] = {}
    every = cells(scenario)
    for tier in order:
        mine = [c for c in every if c[0] == tier]
        room = {c: ceiling(scenario, c) for c in mine}
        need = sum(room.values())
        if need <= 0 or left <= 0:
            continue
        take = min(left, need)
        for cell, top in room.items():
            if top > 0:
                amounts[cell] = take * top / need
        left -= take
    return Allocation(amounts)


def rule_allocation(scenario: Scenario, kind: str, budget: float | None = None) -> Allocation:
    """The allocation of a rule-of-thumb strategy, launch costs of the levers it uses within the budget."""
    tiers = scenario.tiers
    budget = scenario.budget.total if budget is None else budget
    match kind:
        case "no_retention":
            return Allocation.empty()
        case "uniform":
            allocation = spread(scenario, {name: float(t.line_count) for name, t in tiers.items()}, budget)
        case "proportional_revenue":
            allocation = spread(scenario, {name: t.line_count * t.arpu for name, t in tiers.items()}, budget)
        case "key_accounts_first":
            allocation = key_accounts_first(scenario, budget)
        case _:
            raise ValueError(f"'{kind}' is not a rule of thumb")
    return within_budget(scenario, allocation, budget)


def within_budget(scenario: Scenario, allocation: Allocation, budget: float) -> Allocation:
    """``allocation`` scaled down so that its cells and the launch costs they bring fit ``budget``."""
    launches = allocation.spend(scenario) - allocation.total
    if allocation.total <= 0 or allocation.spend(scenario) <= budget:
        return allocation
    factor = max(0.0, budget - launches) / allocation.total
    return Allocation({cell: amount * factor for cell, amount in allocation.amounts.items()})


def csv_allocation(scenario: Scenario, strategy: Strategy) -> Allocation:
    """A ``csv`` strategy's file, relative to the scenario file (or the working folder for a scenario
    built in Python)."""
    assert strategy.allocation is not None
    path = Path(strategy.allocation)
    if not path.is_absolute() and scenario._source_dir is not None:
        path = Path(scenario._source_dir) / path
    return Allocation.read_csv(path, scenario)
