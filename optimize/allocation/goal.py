"""Goal-seek: the least budget that brings churn down to a target, or retains a number of lines.

The allocation LP turned around: instead of the most value within a budget, the least spend
(launch costs included) that meets a goal, under every other rule of the plan (budgets per
period, tier bounds and shares, capacities, contact policy, ROI floor, locked cells, launches).
Two kinds of goal, which may be combined:

* **churn** -- tier T's mean monthly churn at most X (for one tier, or every tier with churn
  figures): the churners the plan avoids in T must be at least ``churned_T - X * line_months_T``;
* **retained lines** -- at least N churners avoided over the horizon (over every cell, or over
  one tier's cells when ``tier`` is given).

A cell's churners avoided come from its curve's ``retained`` points (concave in spend, so the LP
keeps them exact, segment by segment, as it does the value).

Approximation: a tier's churn with the plan is ``(churned - avoided) / line_months`` with the
line-months held at the no-retention figure. Retained lines stay active and add line-months, so
the true rate is slightly lower than this: the goal is met with a little to spare, never missed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from sim.allocation import Cell
from sim.scenario import Problem, Scenario

from .curves import ResponseCurve, TierChurn
from .problem import INF, AllocationProblem, Row, build_problem
from .solve import InfeasibleAllocation, read, relaxation
from .solvers import solve_solution

__all__ = ["GoalResult", "goal_seek", "spend_statement"]


@dataclass(frozen=True)
class GoalResult:
    """The least budget that meets the goal, and the allocation that spends it."""

    status: str
    """``Optimal``, or ``Feasible`` when a time limit stopped a MILP before proving the least."""
    budget: float
    """Least total spend, launch costs included."""
    allocation: pd.DataFrame
    """As :attr:`AllocationResult.allocation`: tier, lever, period, amount, offers, value, retained,
    next_unit_value, curve."""
    churn: pd.DataFrame
    """Per tier with churn figures: tier, churn_without, churn_with (mean monthly), target (NaN if none)."""
    constraints: pd.DataFrame
    """The constraints and their shadow prices; a goal row's price is the spend one more line costs."""
    solver: str

    @property
    def retained(self) -> float:
        return float(self.allocation["retained"].sum())


@dataclass(frozen=True)
class _Goal:
    row: Row
    tier: str | None
    required: float
    """Churners that must be avoided."""


def _problem(message: str, hint: str) -> Problem:
    return Problem("goal", None, None, (), message, hint)


def _pct(x: float) -> str:
    return f"{x:.2%}"


def goal_seek(scenario: Scenario, curves: dict[Cell, ResponseCurve], churn: dict[str, TierChurn], *,
              tier: str | None = None, max_churn: float | None = None, min_retained: float | None = None,
              solver: str = "highs") -> GoalResult:
    """The least spend that brings churn to at most ``max_churn`` (mean monthly, for ``tier`` or for
    every tier in ``churn``) and/or avoids at least ``min_retained`` churners (over ``tier``'s cells,
    or all). Raises :class:`InfeasibleAllocation` with the reason in words when the goal is out of reach.
    """
    if max_churn is None and min_retained is None:
        raise ValueError("give a goal: max_churn (mean monthly churn) and/or min_retained (lines)")
    if tier is not None and tier not in scenario.tiers:
        raise InfeasibleAllocation([_problem(f"there is no tier '{tier}' in the scenario",
                                        f"use one of: {', '.join(scenario.tiers)}")])
    if max_churn is not None and not 0.0 <= max_churn <= 1.0:
        raise ValueError(f"max_churn is a monthly rate between 0 and 1, not {max_churn}")
    problem = build_problem(scenario, curves)
    goals = _goals(problem, churn, tier, max_churn, min_retained)
    _check_reach(problem, goals, churn)
    extra = [(g.row, *_retained_row(problem, g.tier)) for g in goals if g.required > 0]
    cost = np.zeros(problem.n_cols)
    cost[problem.total_col] = 1.0
    for (lever, _), j in problem.launch_cols.items():
        cost[j] = scenario.levers[lever].launch_cost
    seek = replace(problem.variant(cost=cost, maximize=False, objective_name="least_spend", drop=["budget"],
                                   extra=extra), budget_total=INF)
    solution = solve_solution(seek, solver)
    if solution.status not in ("Optimal", "Feasible"):
        raise InfeasibleAllocation(_why_not(problem, seek, goals, churn, solution.status, solver))
    result = read(seek, solution, solver)
    constraints = result.constraints.assign(statement=[
        spend_statement(*seek.kinds[row.constraint], row.shadow_price, row.binding, scenario.meta.currency)
        for row in result.constraints.itertuples()])
    return GoalResult(solution.status, solution.objective, result.allocation,
                      _churn_table(result.allocation, churn, goals, max_churn), constraints, solver)


def spend_statement(kind: str, about: tuple[str, ...], price: float, binding: bool, currency: str) -> str:
    """A rule's shadow price in the words of a least-spend problem.

    ``price`` is the least spend gained per unit more of the rule's right-hand side. Goal-seek
    minimizes spend, so a rule that binds is one whose loosening *saves* money: lowering a tier's
    minimum, raising a period's budget or a capacity lowers the least budget; a goal raised costs more.
    """
    if not binding and abs(price) < 1e-9:
        return "not binding: loosening it would change nothing"
    first = about[0] if about else ""
    verb = "is binding: " if binding else ""
    step_of = relaxation(kind, about)
    if step_of is None:
        match kind:
            case "tier_min_share" | "tier_max_share":
                side = "above its minimum" if kind == "tier_min_share" else "beyond its maximum"
                change = "save" if price <= 0 else "add"
                return (f"{verb}each unit of money {first} could take {side} share would {change} about "
                        f"{abs(price):,.3g} {currency} of spend")
            case "churn_goal" | "retained_goal":
                whose = f" in {first}" if first else ""
                return (f"{verb}each more line retained{whose} costs about {price:,.2f} {currency} of spend at "
                        f"the margin; each line less saves as much")
            case _:
                return f"{verb}shadow price {price:,.4g} {currency} of spend per unit"
    words, step = step_of
    change = price * step
    if abs(change) < 0.5:
        return f"{verb}{words} would change the spend by less than 1 {currency}"
    return (f"{verb}{words} would {'save' if change < 0 else 'add'} about {abs(change):,.0f} {currency} "
            f"of spend")


def _goals(problem: AllocationProblem, churn: dict[str, TierChurn], tier: str | None, max_churn: float | None,
           min_retained: float | None) -> list[_Goal]:
    goals = []
    if max_churn is not None:
        tiers = [tier] if tier is not None else [t for t in problem.scenario.tiers if t in churn]
        missing = [t for t in tiers if t not in churn]
        if missing or not tiers:
            raise InfeasibleAllocation([_problem(f"there are no churn figures for {', '.join(missing) or 'any tier'}",
                                            "simulate the scenario without retention first (churned lines and "
                                            "line-months per tier)")])
        for t in tiers:
            figures = churn[t]
            goals.append(_Goal(Row(f"churn_goal_{t.replace('-', '_')}", "churn_goal", (t,),
                                   figures.churned_lines - max_churn * figures.line_months, INF), t,
                               figures.churned_lines - max_churn * figures.line_months))
    if min_retained is not None:
        name = "retained_goal" if tier is None else f"retained_goal_{tier.replace('-', '_')}"
        about = () if tier is None else (tier,)
        goals.append(_Goal(Row(name, "retained_goal", about, float(min_retained), INF), tier, float(min_retained)))
    return goals


def _retained_row(problem: AllocationProblem, tier: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Columns and coefficients of the churners avoided in ``tier``'s cells (all cells if None)."""
    cells = [i for i, c in enumerate(problem.cells) if tier is None or c[0] == tier]
    cols = (np.concatenate([np.arange(problem.seg_start[i], problem.seg_start[i + 1]) for i in cells])
            if cells else np.zeros(0, dtype=np.int64))
    return cols, problem.seg_retained[cols]


def _most(problem: AllocationProblem, tier: str | None) -> float:
    """Churners avoided with every cell (of ``tier``) funded to its curve's end, rules aside."""
    return float(sum(c.retained[-1] for cell, c in problem.curves.items()
                     if c.retained is not None and (tier is None or cell[0] == tier)))


def _whose(tier: str | None) -> str:
    return tier if tier is not None else "any tier"


def _check_reach(problem: AllocationProblem, goals: list[_Goal], churn: dict[str, TierChurn]) -> None:
    """Goals the curves themselves cannot reach, whatever the rules: said in words before any LP."""
    found = []
    for goal in goals:
        if goal.required <= 0:
            continue
        cells = [c for cell, c in problem.curves.items() if goal.tier is None or cell[0] == goal.tier]
        if not cells:
            found.append(_problem(f"{_whose(goal.tier)} has no response curves, so no spend can lower its churn",
                                  "give the tier response curves (budget.response_curves) or simulate them"))
        elif all(c.retained is None or c.retained[-1] <= 0 for c in cells):
            found.append(_problem(
                f"the response curves of {_whose(goal.tier)} give no retained lines (their points have no "
                "'lines'), so the goal cannot be measured against them",
                "give every point of those curves a 'lines' figure (churners avoided at that spend)"))
        elif _most(problem, goal.tier) < goal.required * (1 - 1e-9):
            most = _most(problem, goal.tier)
            if goal.row.kind == "churn_goal":
                figures = churn[goal.tier]  # type: ignore[index]
                best = (figures.churned_lines - most) / figures.line_months
                target = goal.row.lower
                found.append(_problem(
                    f"even with every cell of {goal.tier} funded to its curve's end, churn falls only to "
                    f"{_pct(best)}; the goal is {_pct((figures.churned_lines - target) / figures.line_months)}",
                    "aim for a churn the levers can reach, or add levers (curves) for the tier"))
            else:
                found.append(_problem(
                    f"even with every cell{'' if goal.tier is None else ' of ' + goal.tier} funded to its curve's "
                    f"end, the curves retain only {most:,.0f} lines; the goal is {goal.required:,.0f}",
                    "aim for fewer lines, or add levers (curves)"))
    if found:
        raise InfeasibleAllocation(found)


def _why_not(problem: AllocationProblem, seek: AllocationProblem, goals: list[_Goal], churn: dict[str, TierChurn],
             status: str, solver: str) -> list[Problem]:
    """Why the goal LP has no solution: the plan's own rules, a goal they cap, or goals that compete."""
    from .diagnosis import conflicting, diagnose

    rules = replace(problem.variant(cost=np.zeros(problem.n_cols), maximize=False, objective_name="any_plan",
                                    drop=["budget"]), budget_total=INF)
    if solve_solution(rules, solver).status not in ("Optimal", "Feasible"):
        return diagnose(rules, "Infeasible")
    found = []
    for goal in goals:
        if goal.required <= 0:
            continue
        cols, coef = _retained_row(problem, goal.tier)
        cost = np.zeros(problem.n_cols)
        cost[cols] = coef
        most = replace(problem.variant(cost=cost, maximize=True, objective_name="most_retained", drop=["budget"]),
                       budget_total=INF)
        best = solve_solution(most, solver)
        if best.status != "Optimal" or best.objective >= goal.required * (1 - 1e-9):
            continue
        limits = [most.rows[i].name for i in np.flatnonzero(np.abs(best.row_price) > 1e-9)
                  if most.rows[i].kind != "definition"]
        by = f" (held back by {', '.join(limits)})" if limits else ""
        if goal.row.kind == "churn_goal":
            figures = churn[goal.tier]  # type: ignore[index]
            message = (f"under the plan's rules{by}, churn of {goal.tier} falls at most to "
                       f"{_pct((figures.churned_lines - best.objective) / figures.line_months)}; the goal is "
                       f"{_pct((figures.churned_lines - goal.required) / figures.line_months)}")
        else:
            message = (f"under the plan's rules{by}, at most {best.objective:,.0f} lines are retained"
                       f"{'' if goal.tier is None else ' in ' + goal.tier}; the goal is {goal.required:,.0f}")
        found.append(_problem(message, "loosen those rules (capacities, contact policy, tier maximums, budgets per "
                                       "period), or aim lower"))
    if not found:
        names = [n for n in conflicting(seek) if seek.kinds.get(n, ("", ()))[0] != "definition"]
        found.append(_problem(f"each goal can be met alone but not all together: {', '.join(names)}",
                              "aim lower for some tiers, or loosen the rules they share"))
    return found


def _churn_table(allocation: pd.DataFrame, churn: dict[str, TierChurn], goals: list[_Goal],
                 max_churn: float | None) -> pd.DataFrame:
    retained = allocation.groupby("tier")["retained"].sum()
    targeted = {g.tier for g in goals if g.row.kind == "churn_goal"}
    rows = []
    for tier, figures in churn.items():
        avoided = float(retained.get(tier, 0.0))
        with_plan = max(0.0, figures.churned_lines - avoided) / figures.line_months if figures.line_months > 0 else 0.0
        rows.append({"tier": tier, "churn_without": figures.monthly_churn, "churn_with": with_plan,
                     "target": max_churn if tier in targeted and max_churn is not None else float("nan")})
    return pd.DataFrame(rows, columns=["tier", "churn_without", "churn_with", "target"])
