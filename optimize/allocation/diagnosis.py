"""Why a plan has no solution: the constraints that conflict, in a planner's words.

Every constraint gets an elastic slack (weighted by the size of its right-hand side, so money
and offer counts weigh alike) and the total slack is minimized. The constraints that keep a
positive slack at the optimum are a set that cannot hold together; each is described with
the figures behind it, e.g. "the tier minimums add up to 12.0M but the total budget is 10.0M".
"""

from __future__ import annotations

from dataclasses import replace

import highspy
import numpy as np

from sim.scenario import Problem

from .problem import AllocationProblem
from .solvers import HighsModel


def _problem(message: str, hint: str) -> Problem:
    return Problem("allocation", None, None, (), message, hint)


def _money(x: float) -> str:
    return f"{x / 1e6:,.1f}M" if abs(x) >= 1e6 else f"{x:,.0f}"


def conflicting(problem: AllocationProblem) -> list[str]:
    """Names of constraints that must be relaxed for the problem to have a solution."""
    # Launch decisions are relaxed for the diagnosis, so that the duals exist.
    relaxed = replace(problem.variant(cost=np.zeros(problem.n_cols), maximize=False,
                                      objective_name="which_constraints_conflict"),
                      integer=np.zeros(problem.n_cols, dtype=bool), launch_cols={})
    model = HighsModel(relaxed, "highs-simplex")
    elastic = [i for i, row in enumerate(relaxed.rows) if row.kind != "definition"]
    weights = np.array([1.0 / max(1.0, abs(relaxed.rows[i].rhs)) for i in elastic])
    n = len(elastic)
    # Per elastic row two columns: one that adds to its left-hand side, one that takes away.
    rows = np.repeat(np.array(elastic, dtype=np.int32), 2)
    signs = np.tile([1.0, -1.0], n)
    model.highs.addCols(2 * n, np.repeat(weights, 2), np.zeros(2 * n), np.full(2 * n, highspy.kHighsInf),
                        2 * n, np.arange(2 * n, dtype=np.int32), rows, signs)
    model.highs.run()
    solution = model.highs.getSolution()
    relaxation = np.asarray(solution.col_value)[relaxed.n_cols:].reshape(n, 2).sum(axis=1)
    duals = np.asarray(solution.row_dual)[elastic]
    # The constraints relaxed, and those whose duals certify the conflict (the cheapest relaxation
    # touches only one side of a conflict; the duals name every side).
    return [relaxed.rows[i].name for i, amount, dual in zip(elastic, relaxation, duals)
            if amount > 1e-6 or abs(dual) > 1e-9]


def diagnose(problem: AllocationProblem, status: str) -> list[Problem]:
    """Problems explaining why ``problem`` has no solution (status as the solver said it)."""
    scenario = problem.scenario
    plan = scenario.budget
    if status == "Unbounded":
        return [_problem("the allocation problem is unbounded: some value grows without limit",
                         "check the response curves: each must end at a finite spend")]
    if status not in ("Infeasible", "Not Solved", "Undefined"):
        return [_problem(f"the solver stopped without a solution ({status})",
                         "raise solver.time_limit_seconds or try the other solver (--solver cbc)")]
    names = conflicting(problem)
    kinds = {problem.kinds.get(n, ("other", ()))[0] for n in names}
    found: list[Problem] = []
    budget = problem.budget_total
    minimums = {t: b.min for t, b in plan.tiers.items() if b.min > 0}
    locked = sum(c.amount for c in plan.locked)
    if "tier_min" in kinds and ("budget" in kinds or sum(minimums.values()) > budget):
        found.append(_problem(
            f"the tier minimums add up to {_money(sum(minimums.values()))} but the total budget is {_money(budget)}",
            "lower the minimums under budget.tiers or raise budget.total"))
    if "locked" in kinds:
        missing = [c for c in plan.locked if (c.tier, c.lever, c.period) not in problem.curves and c.amount > 0]
        for cell in missing:
            found.append(_problem(
                f"the locked cell {cell.tier} / {cell.lever} / {cell.period} ({_money(cell.amount)}) has no response "
                "curve, so no spend can go there",
                "give the cell a response curve, or remove it from budget.locked"))
        if locked > budget:
            found.append(_problem(f"the locked cells add up to {_money(locked)} but the total budget is {_money(budget)}",
                                  "lower the locked amounts or raise budget.total"))
    for name in names:
        kind, about = problem.kinds.get(name, ("other", ()))
        others = ", ".join(n for n in names if n != name)
        if kind == "period_budget":
            found.append(_problem(
                f"period {about[0]}'s budget ({_money(plan.per_period[about[0]])}) cannot hold what other constraints "
                f"put in that period ({others})",
                "raise budget.per_period or lower the minimums and locked cells of that period"))
        elif kind in ("lever_capacity", "channel_capacity", "contact_policy"):
            found.append(_problem(
                f"{name.replace('_', ' ')} allows fewer offers than the minimums and locked cells need "
                f"(conflicting with: {others or 'the spending rules'})",
                "raise the capacity, relax the contact policy, or lower the minimums"))
        elif kind == "roi_floor":
            found.append(_problem(
                f"no allocation meets the ROI floor of {plan.roi_floor} together with "
                f"{others or 'the other constraints'}",
                "lower budget.roi_floor, or the minimums and locked cells that force low-return spend"))
        elif kind in ("tier_max", "tier_max_share", "tier_min_share"):
            found.append(_problem(f"{name.replace('_', ' ')} conflicts with {others}",
                                  "loosen one of them under budget.tiers"))
        elif kind == "min_spend":
            found.append(_problem(f"lever {about[0]} must spend at least its minimum in {about[1]} if used, which "
                                  f"the other constraints do not allow", "lower the lever's min_spend"))
    if not found:
        listing = ", ".join(names) if names else "(the solver gave no detail)"
        found.append(_problem(f"these constraints cannot all hold: {listing}",
                              "relax one of them; `retention optimize --write-lp FILE` writes the problem for a look"))
    return found
