"""Reading the solver's answer as a planner would: the allocation, what each constraint costs, and
in words; a problem without a solution explained (:mod:`optimize.allocation.diagnosis`).

Shadow prices follow :mod:`optimize.allocation.solvers`: how much the objective gains per unit more
of the constraint's right-hand side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.allocation import Allocation
from sim.scenario import ScenarioError

from .diagnosis import diagnose
from .problem import AllocationProblem
from .solvers import Solution, solve_solution

TOLERANCE = 1e-6


class InfeasibleAllocation(ScenarioError):
    """The allocation problem has no solution (infeasible or unbounded); ``problems`` say why."""


@dataclass(frozen=True)
class AllocationResult:
    """The optimal allocation and what its constraints cost."""

    status: str
    objective: float
    allocation: pd.DataFrame
    """tier, lever, period, amount, offers, value, retained (churners avoided over the horizon),
    next_unit_value (value of the next unit of money), curve."""
    constraints: pd.DataFrame
    """constraint, kind, about, shadow_price, slack, binding, statement."""
    reduced_costs: pd.DataFrame
    """For cells left unfunded: what a first unit of money there would change in the objective."""
    solver: str
    budget: float
    iterations: int = 0
    """Solver iterations (simplex, interior point, crossover) of the solve; 0 when unknown (CBC)."""

    def to_allocation(self) -> Allocation:
        rows = self.allocation[self.allocation["amount"] > 0]
        return Allocation({(r.tier, r.lever, r.period): float(r.amount) for r in rows.itertuples()})

    @property
    def total_spend(self) -> float:
        return float(self.allocation["amount"].sum())

    @property
    def total_value(self) -> float:
        return float(self.allocation["value"].sum())

    @property
    def total_retained(self) -> float:
        return float(self.allocation["retained"].sum())

    def shadow_price(self, constraint: str) -> float:
        row = self.constraints[self.constraints["constraint"] == constraint]
        return float(row["shadow_price"].iloc[0]) if len(row) else 0.0


def solve(problem: AllocationProblem, solver: str = "highs", time_limit: float | None = None,
          mip_gap: float | None = None) -> AllocationResult:
    """Solve ``problem``; raise :class:`InfeasibleAllocation` with a diagnosis if it has no solution.

    The status is ``Optimal``, or ``Feasible`` when a time limit stopped a MILP with a plan not
    proven best (within ``mip_gap``).
    """
    solution = solve_solution(problem, solver, time_limit, mip_gap)
    if solution.status not in ("Optimal", "Feasible"):
        raise InfeasibleAllocation(diagnose(problem, solution.status))
    return read(problem, solution, solver)


@dataclass(frozen=True)
class CellFigures:
    """Per cell (in ``problem.cells`` order), what a solution's column values mean."""

    amount: np.ndarray
    value: np.ndarray
    retained: np.ndarray
    marginal: np.ndarray


def cell_figures(problem: AllocationProblem, x: np.ndarray) -> CellFigures:
    """Amount, value and lines retained per cell, read off the curves in order of their segments.

    A cell's value is its curve at its amount, as if its segments were filled in order: solvers
    may leave a tie (equal slopes) filled out of order, and the curve is what the money buys.
    """
    n = problem.n_segments
    starts = problem.seg_start[:-1]
    if len(starts) == 0:
        empty = np.zeros(0)
        return CellFigures(empty, empty, empty, empty)
    amount = np.add.reduceat(x[:n], starts)
    amount[np.abs(amount) < TOLERANCE] = 0.0
    per_col = np.repeat(amount, np.diff(problem.seg_start))
    widths = problem.col_upper[:n]
    filled = np.clip(per_col - problem.seg_offset, 0.0, widths)
    value = np.add.reduceat(filled * problem.seg_slope, starts)
    retained = np.add.reduceat(filled * problem.seg_retained, starts)
    # The next unit's return: the first segment not yet filled (within a millionth, as solvers round).
    end = problem.seg_offset + widths
    used = per_col >= end - 1e-6 * np.maximum(1.0, end)
    full = np.add.reduceat(used.astype(np.int64), starts)
    nseg = np.diff(problem.seg_start)
    nxt = np.minimum(starts + full, n - 1)
    marginal = np.where(full < nseg, problem.seg_slope[nxt], 0.0)
    return CellFigures(amount, value, retained, marginal)


def read(problem: AllocationProblem, solution: Solution, solver: str) -> AllocationResult:
    """The planner's tables from a solution."""
    scenario = problem.scenario
    figures = cell_figures(problem, solution.x)
    tiers = [c[0] for c in problem.cells]
    levers = [c[1] for c in problem.cells]
    cpo = {pair: scenario.levers[pair[1]].cost_per_offer(scenario.tiers[pair[0]]) for pair in set(zip(tiers, levers))}
    per_cell_cpo = np.array([cpo[pair] for pair in zip(tiers, levers)], dtype=float)
    offers = np.divide(figures.amount, per_cell_cpo, out=np.zeros_like(figures.amount), where=per_cell_cpo > 0)
    allocation = pd.DataFrame({
        "tier": tiers, "lever": levers, "period": [c[2] for c in problem.cells], "amount": figures.amount,
        "offers": offers, "value": figures.value, "retained": figures.retained,
        "next_unit_value": figures.marginal,
        "curve": [problem.curves[c].source for c in problem.cells]},
        columns=["tier", "lever", "period", "amount", "offers", "value", "retained", "next_unit_value", "curve"])

    activity = _activity(problem, solution.x)
    constraints = []
    for i, row in enumerate(problem.rows):
        if row.kind == "definition":
            continue
        price = float(solution.row_price[i]) + 0.0
        rhs = row.rhs
        slack = abs(rhs - activity[i])
        binding = slack <= 1e-6 * max(1.0, abs(rhs))
        constraints.append({"constraint": row.name, "kind": row.kind, "about": ",".join(row.about),
                            "shadow_price": price, "slack": slack, "binding": binding,
                            "statement": statement(row.kind, row.about, price, binding, scenario.meta.currency)})
    frame = pd.DataFrame(constraints, columns=["constraint", "kind", "about", "shadow_price", "slack", "binding",
                                               "statement"])
    unfunded = np.flatnonzero(figures.amount <= TOLERANCE)
    first = problem.seg_start[unfunded]
    reduced = pd.DataFrame({"tier": [tiers[i] for i in unfunded], "lever": [levers[i] for i in unfunded],
                            "period": [problem.cells[i][2] for i in unfunded],
                            "reduced_cost": solution.col_price[first] + 0.0,
                            "first_unit_value": problem.seg_slope[first]},
                           columns=["tier", "lever", "period", "reduced_cost", "first_unit_value"])
    return AllocationResult(solution.status, solution.objective, allocation, frame, reduced, solver,
                            problem.budget_total, solution.iterations)


def _activity(problem: AllocationProblem, x: np.ndarray) -> np.ndarray:
    """Each row's left-hand side at ``x``."""
    row_of = np.repeat(np.arange(len(problem.rows)), np.diff(problem.row_start))
    return np.bincount(row_of, weights=problem.row_value * x[problem.row_index], minlength=len(problem.rows))


def relaxation(kind: str, about: tuple[str, ...]) -> tuple[str, float] | None:
    """How a planner would loosen a rule of ``kind``, in words, and by how much of its right-hand side
    (negative where loosening lowers it); None for rules without one such step."""
    first = about[0] if about else ""
    period = f" in {about[1]}" if len(about) > 1 else ""
    match kind:
        case "budget":
            return "10,000 more budget", 10_000.0
        case "period_budget":
            return f"10,000 more budget in {first}", 10_000.0
        case "tier_min":
            return f"lowering {first}'s minimum by 10,000", -10_000.0
        case "tier_max":
            return f"raising {first}'s maximum by 10,000", 10_000.0
        case "lever_capacity" | "channel_capacity":
            return f"one more {first} offer slot{period}", 1.0
        case "contact_policy":
            return f"allowing one more offer to {first}{period}", 1.0
        case "roi_floor":
            return "a floor lower by 10,000 of value", -10_000.0
        case "locked":
            return f"10,000 more in the locked cell {'/'.join(about)}", 10_000.0
    return None


def statement(kind: str, about: tuple[str, ...], price: float, binding: bool, currency: str) -> str:
    """A constraint's shadow price in a planner's words."""
    if not binding and abs(price) < 1e-9:
        return "not binding: loosening it would change nothing"
    first = about[0] if about else ""
    step_of = relaxation(kind, about)
    if step_of is None:
        match kind:
            case "tier_min_share" | "tier_max_share":
                side = "above its minimum" if kind == "tier_min_share" else "beyond its maximum"
                return (f"{'is binding: ' if binding else ''}each unit of money {first} could take {side} share "
                        f"would change the objective by about {price:,.4f} {currency}")
            case "churn_goal" | "retained_goal":
                whose = f" in {first}" if first else ""
                return (f"{'is binding: ' if binding else ''}each more line retained{whose} costs about "
                        f"{price:,.2f} {currency} at the margin")
            case _:
                return f"shadow price {price:,.4f}"
    words, step = step_of
    gain = price * step
    if binding and abs(price) < 1e-9:
        # A degenerate vertex: the rule is met exactly, yet other rules or the curves stop the plan there too.
        return f"at its limit, but worth nothing at the margin: {words} would change nothing"
    verb = "is binding: " if binding else ""
    return f"{verb}{words} would {'add' if gain >= 0 else 'cost'} about {abs(gain):,.0f} {currency} of objective"
