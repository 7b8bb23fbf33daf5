"""Building the allocation problem: variables and constraints named after tiers, levers and periods.

Each cell (tier, lever, period) with a response curve gets one variable per curve segment,
``spend[tier,lever,period,k]``, bounded by the segment's width; the cell's spend is their
sum and its value the sum weighted by the segments' slopes. Constraints, each named so
the written ``.lp`` reads like the plan:

====================================  ==========================================================
``budget``                            total spend (launch costs included) within the budget
``period_budget[P]``                  spend in period P within its budget
``tier_min[T]`` / ``tier_max[T]``     tier T's spend between its bounds
``tier_min_share[T]`` / ``..max..``   tier T's share of all spend between its bounds
``lever_capacity[L,P]``               offers of lever L in period P within its capacity
``channel_capacity[C,P]``             offers through channel C in period P within its capacity
``contact_policy[T,P]``               offers to tier T in period P within lines x allowed rate
``roi_floor``                         value at least the floor times spend
``locked[T,L,P]``                     a cell the planner fixed
``launch[L,P]`` / ``min_spend[L,P]``  a lever with a launch cost or minimum size: on or off (MILP)
====================================  ==========================================================

Offers are linear in spend: a cell's expected cost per offer turns money into offers.
Building is separate from solving (:mod:`optimize.solve`), so one problem is re-solved
at many budgets for the efficient frontier.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulp

from sim.allocation import Cell
from sim.scenario import Scenario

from .curves import ResponseCurve

BIG_M_SLACK = 1.0
"""Launch indicators use the cell curves' largest spends as their big-M bound (plus this)."""


def cost_per_offer(scenario: Scenario, tier: str, lever: str) -> float:
    """Expected money per offer made: contact, plus for an acceptance the one-off and line-month costs."""
    t, lv = scenario.tiers[tier], scenario.levers[lever]
    return lv.cost_per_offer(int(t.lines_per_account or 1))


def _name(*parts: str) -> str:
    # pulp keeps letters, digits and '_'; '-' in a planner's name would become '_' anyway.
    return "_".join(p.replace("-", "_") for p in parts)


@dataclass
class AllocationProblem:
    """A built allocation problem, ready to solve and re-solve."""

    scenario: Scenario
    curves: dict[Cell, ResponseCurve]
    lp: pulp.LpProblem
    segments: dict[Cell, list[pulp.LpVariable]] = field(default_factory=dict)
    launches: dict[tuple[str, str], pulp.LpVariable] = field(default_factory=dict)
    kinds: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    """Per constraint name: its kind (``budget``, ``tier_min``, ...) and what it concerns."""
    budget_total: float = 0.0

    def spend(self, cell: Cell) -> pulp.LpAffineExpression:
        return pulp.lpSum(self.segments[cell])

    def value(self, cell: Cell) -> pulp.LpAffineExpression:
        return pulp.lpSum(s * v for s, v in zip(self.curves[cell].slopes, self.segments[cell]))

    @property
    def is_mip(self) -> bool:
        return bool(self.launches)

    def set_budget(self, total: float) -> None:
        """Change the total budget in place (for the frontier: one build, many solves)."""
        self.lp.constraints["budget"].constant = -float(total)
        self.budget_total = float(total)

    def write_lp(self, path: str) -> None:
        self.lp.writeLP(path)


def build_problem(scenario: Scenario, curves: dict[Cell, ResponseCurve], budget: float | None = None) -> AllocationProblem:
    """The LP (or MILP, when a funded lever has a launch cost or a minimum size) of ``scenario``."""
    plan = scenario.budget
    total = plan.total if budget is None else budget
    lp = pulp.LpProblem(_name("retention_allocation", scenario.meta.name), pulp.LpMaximize)
    problem = AllocationProblem(scenario, dict(curves), lp, budget_total=total)
    months = {p.name: p.months for p in scenario.meta.periods}

    for cell, curve in sorted(curves.items()):
        tier, lever, period = cell
        problem.segments[cell] = [
            pulp.LpVariable(_name("spend", tier, lever, period, f"seg{k}"), lowBound=0, upBound=width)
            for k, width in enumerate(curve.widths)]

    # Levers with a fixed launch cost or a minimum size are switched on per period (binary).
    for lever_name, lever in scenario.levers.items():
        if lever.launch_cost <= 0 and lever.min_spend <= 0:
            continue
        for period in months:
            cells = [c for c in curves if c[1] == lever_name and c[2] == period]
            if cells:
                problem.launches[(lever_name, period)] = pulp.LpVariable(
                    _name("launch", lever_name, period), cat=pulp.LpBinary)

    def add(constraint: pulp.LpConstraint, name: str, kind: str, *about: str) -> None:
        lp.addConstraint(constraint, name)
        problem.kinds[name] = (kind, about)

    all_spend = pulp.lpSum(problem.spend(c) for c in curves)
    launch_costs = pulp.lpSum(scenario.levers[lv].launch_cost * y for (lv, _), y in problem.launches.items())
    all_value = pulp.lpSum(problem.value(c) for c in curves)
    if plan.objective == "net_value":
        lp += all_value - all_spend - launch_costs, "net_value_retained"
    else:
        lp += all_value, "value_retained"

    add(all_spend + launch_costs <= total, "budget", "budget")
    for period, cap in plan.per_period.items():
        spend = pulp.lpSum(problem.spend(c) for c in curves if c[2] == period)
        launch = pulp.lpSum(scenario.levers[lv].launch_cost * y for (lv, p), y in problem.launches.items() if p == period)
        add(spend + launch <= cap, _name("period_budget", period), "period_budget", period)
    for tier, bound in plan.tiers.items():
        spend = pulp.lpSum(problem.spend(c) for c in curves if c[0] == tier)
        if bound.min > 0:
            add(spend >= bound.min, _name("tier_min", tier), "tier_min", tier)
        if bound.max is not None:
            add(spend <= bound.max, _name("tier_max", tier), "tier_max", tier)
        if bound.min_share > 0:
            add(spend - bound.min_share * all_spend >= 0, _name("tier_min_share", tier), "tier_min_share", tier)
        if bound.max_share < 1:
            add(spend - bound.max_share * all_spend <= 0, _name("tier_max_share", tier), "tier_max_share", tier)

    def offers(cells: list[Cell]) -> pulp.LpAffineExpression:
        return pulp.lpSum(problem.spend(c) * (1.0 / cost_per_offer(scenario, c[0], c[1])) for c in cells
                          if cost_per_offer(scenario, c[0], c[1]) > 0)

    for period, length in months.items():
        in_period = [c for c in curves if c[2] == period]
        for lever, capacity in plan.lever_capacity.items():
            cells = [c for c in in_period if c[1] == lever]
            if cells:
                add(offers(cells) <= capacity, _name("lever_capacity", lever, period), "lever_capacity", lever, period)
        for channel_name, channel in scenario.channels.items():
            cells = [c for c in in_period if scenario.levers[c[1]].channel == channel_name]
            if cells:
                add(offers(cells) <= channel.capacity_per_month * length, _name("channel_capacity", channel_name, period),
                    "channel_capacity", channel_name, period)
        policy = plan.contact_policy
        for tier_name, tier in scenario.tiers.items():
            cells = [c for c in in_period if c[0] == tier_name]
            if cells:
                allowed = tier.unit_count * policy.max_offers_per_line * length / policy.per_months
                add(offers(cells) <= allowed, _name("contact_policy", tier_name, period), "contact_policy",
                    tier_name, period)
    if plan.roi_floor is not None:
        add(all_value - plan.roi_floor * all_spend >= 0, "roi_floor", "roi_floor")
    for locked in plan.locked:
        cell = (locked.tier, locked.lever, locked.period)
        spend = problem.spend(cell) if cell in curves else pulp.LpAffineExpression()
        add(spend == locked.amount, _name("locked", *cell), "locked", *cell)
    for (lever, period), on in problem.launches.items():
        cells = [c for c in curves if c[1] == lever and c[2] == period]
        spend = pulp.lpSum(problem.spend(c) for c in cells)
        ceiling = sum(curves[c].max_spend for c in cells) + BIG_M_SLACK
        add(spend - ceiling * on <= 0, _name("launch", lever, period), "launch", lever, period)
        minimum = scenario.levers[lever].min_spend
        if minimum > 0:
            add(spend - minimum * on >= 0, _name("min_spend", lever, period), "min_spend", lever, period)
    return problem
