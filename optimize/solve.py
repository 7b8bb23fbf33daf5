"""Solving the allocation problem and reading the answer as a planner would.

The solver is chosen by name: ``highs`` (the default) or ``cbc`` (the fallback). Solvers
report duals with different signs for a maximization (CBC gives d objective / d right-hand
side, HiGHS its negative); here every shadow price is turned into the same thing:
**how much the objective gains per unit more of the constraint's right-hand side**. So the
budget's shadow price is the value one more unit of money would retain (net of that money
for the ``net_value`` objective), and a capacity's is what one more offer slot is worth.

For a MILP (a lever with a launch cost) the shadow prices are those of the linear problem
with the launch decisions fixed at their optimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pulp

from sim.allocation import Allocation
from sim.scenario import ScenarioError

from .problem import AllocationProblem, cost_per_offer

SOLVERS = ("highs", "cbc")
TOLERANCE = 1e-6


class AllocationError(ScenarioError):
    """The allocation problem has no solution (infeasible or unbounded); ``problems`` say why."""


def solver_for(name: str, time_limit: float | None = None, mip_gap: float | None = None) -> pulp.LpSolver:
    """A pulp solver by its name in the scenario or on the command line."""
    options = {"msg": False, "timeLimit": time_limit}
    if name == "highs":
        return pulp.HiGHS(gapRel=mip_gap, **options)
    if name == "cbc":
        return pulp.PULP_CBC_CMD(gapRel=mip_gap, **options)
    raise ValueError(f"unknown solver '{name}': use one of {', '.join(SOLVERS)}")


def _dual_sign(solver: str, sense: int) -> float:
    # Both report d(objective)/d(rhs) for a minimization; for a maximization HiGHS flips it.
    return -1.0 if solver == "highs" and sense == pulp.LpMaximize else 1.0


@dataclass(frozen=True)
class AllocationResult:
    """The optimal allocation and what its constraints cost."""

    status: str
    objective: float
    allocation: pd.DataFrame
    """tier, lever, period, amount, offers, value, marginal_roi (value of the next unit of money)."""
    constraints: pd.DataFrame
    """constraint, kind, about, shadow_price, slack, binding, statement."""
    reduced_costs: pd.DataFrame
    """For cells left unfunded: what a first unit of money there would change in the objective."""
    solver: str
    budget: float

    def to_allocation(self) -> Allocation:
        rows = self.allocation[self.allocation["amount"] > 0]
        return Allocation({(r.tier, r.lever, r.period): float(r.amount) for r in rows.itertuples()})

    @property
    def total_spend(self) -> float:
        return float(self.allocation["amount"].sum())

    @property
    def total_value(self) -> float:
        return float(self.allocation["value"].sum())

    def shadow_price(self, constraint: str) -> float:
        row = self.constraints[self.constraints["constraint"] == constraint]
        return float(row["shadow_price"].iloc[0]) if len(row) else 0.0


def solve(problem: AllocationProblem, solver: str = "highs", time_limit: float | None = None,
          mip_gap: float | None = None) -> AllocationResult:
    """Solve ``problem``; raise :class:`AllocationError` with a diagnosis if it has no solution."""
    lp = problem.lp
    engine = solver_for(solver, time_limit, mip_gap)
    lp.solve(engine)
    status = pulp.LpStatus[lp.status]
    if status != "Optimal":
        from .diagnosis import diagnose

        raise AllocationError(diagnose(problem, status))
    if problem.is_mip:
        # Duals of the linear problem with the launch decisions held where they are.
        fixed = {v: v.varValue for v in problem.launches.values()}
        for variable, value in fixed.items():
            variable.lowBound = variable.upBound = round(value or 0.0)
            variable.cat = pulp.LpContinuous
        try:
            lp.solve(solver_for(solver, time_limit))
        finally:
            for variable in fixed:
                variable.lowBound, variable.upBound, variable.cat = 0, 1, pulp.LpBinary
    return _read(problem, solver, status)


def _read(problem: AllocationProblem, solver: str, status: str) -> AllocationResult:
    scenario = problem.scenario
    sign = _dual_sign(solver, problem.lp.sense)
    rows = []
    for cell, segments in problem.segments.items():
        curve = problem.curves[cell]
        amount = sum(v.varValue or 0.0 for v in segments)
        amount = 0.0 if abs(amount) < TOLERANCE else amount
        cpo = cost_per_offer(scenario, cell[0], cell[1])
        rows.append({"tier": cell[0], "lever": cell[1], "period": cell[2], "amount": amount,
                     "offers": amount / cpo if cpo > 0 else 0.0, "value": curve.value_at(amount),
                     "marginal_roi": curve.marginal(amount), "curve": curve.source})
    allocation = pd.DataFrame(rows, columns=["tier", "lever", "period", "amount", "offers", "value", "marginal_roi",
                                             "curve"])
    constraints = []
    for name, constraint in problem.lp.constraints.items():
        kind, about = problem.kinds.get(name, ("other", ()))
        price = sign * (constraint.pi or 0.0)
        slack = constraint.slack or 0.0
        binding = abs(slack) <= 1e-6 * max(1.0, abs(constraint.constant))
        constraints.append({"constraint": name, "kind": kind, "about": ",".join(about), "shadow_price": price,
                            "slack": abs(slack), "binding": binding,
                            "statement": statement(kind, about, price, binding, scenario.meta.currency)})
    frame = pd.DataFrame(constraints, columns=["constraint", "kind", "about", "shadow_price", "slack", "binding",
                                               "statement"])
    reduced = []
    for cell, segments in problem.segments.items():
        amount = sum(v.varValue or 0.0 for v in segments)
        if amount <= TOLERANCE and segments:
            reduced.append({"tier": cell[0], "lever": cell[1], "period": cell[2],
                            "reduced_cost": sign * (segments[0].dj or 0.0),
                            "first_unit_value": problem.curves[cell].slopes[0]})
    return AllocationResult(status, float(pulp.value(problem.lp.objective) or 0.0), allocation, frame,
                            pd.DataFrame(reduced, columns=["tier", "lever", "period", "reduced_cost", "first_unit_value"]),
                            solver, problem.budget_total)


def statement(kind: str, about: tuple[str, ...], price: float, binding: bool, currency: str) -> str:
    """A constraint's shadow price in a planner's words."""
    if not binding and abs(price) < 1e-9:
        return "not binding: loosening it would change nothing"
    first = about[0] if about else ""
    period = f" in {about[1]}" if len(about) > 1 else ""
    match kind:
        case "budget":
            words, step = "10,000 more budget", 10_000.0
        case "period_budget":
            words, step = f"10,000 more budget in {first}", 10_000.0
        case "tier_min":
            words, step = f"lowering {first}'s minimum by 10,000", -10_000.0
        case "tier_max":
            words, step = f"raising {first}'s maximum by 10,000", 10_000.0
        case "lever_capacity" | "channel_capacity":
            words, step = f"one more {first} offer slot{period}", 1.0
        case "contact_policy":
            words, step = f"allowing one more offer to {first}{period}", 1.0
        case "roi_floor":
            words, step = "a floor lower by 10,000 of value", -10_000.0
        case "locked":
            words, step = f"10,000 more in the locked cell {'/'.join(about)}", 10_000.0
        case "tier_min_share" | "tier_max_share":
            side = "above its minimum" if kind == "tier_min_share" else "beyond its maximum"
            return (f"{'is binding: ' if binding else ''}each unit of money {first} could take {side} share would "
                    f"change the objective by about {price:,.3g} {currency}")
        case _:
            return f"shadow price {price:,.4g}"
    gain = price * step
    verb = "is binding: " if binding else ""
    return f"{verb}{words} would {'add' if gain >= 0 else 'cost'} about {abs(gain):,.0f} {currency} of objective"
