"""The efficient frontier: value retained and the budget's shadow price against the total budget.

One problem is built once and handed to one HiGHS instance; each budget changes only the
bound of the ``budget`` row and re-solves from the basis the previous budget left (a
warm start: a few pivots instead of a solve from scratch). With ``highs-ipm`` the first
budget is solved by the interior point (with crossover) and the others warm by simplex.
CBC (the fallback) has no such hook through pulp: it re-solves each budget from the start.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .problem import AllocationProblem
from .solve import InfeasibleAllocation, cell_figures, solve
from .solvers import HighsModel, Solution

COLUMNS = ["budget", "status", "objective", "spend", "value", "budget_shadow_price", "note"]


def frontier(problem: AllocationProblem, budgets: Sequence[float], solver: str = "highs") -> pd.DataFrame:
    """Per budget: objective, spend, value retained, and the budget's shadow price (net value of
    one more unit of budget).

    ``attrs["iterations"]`` holds the solver iterations each budget took (HiGHS; empty for CBC).
    """
    original = problem.budget_total
    rows: list[dict[str, object]] = []
    iterations: list[int] = []
    budget_row = problem.row_number["budget"]
    try:
        model = HighsModel(problem, solver) if solver != "cbc" else None
        for budget in budgets:
            problem.set_budget(budget)
            if model is None:
                try:
                    result = solve(problem, solver)
                except InfeasibleAllocation as exc:
                    rows.append(_infeasible(budget, exc))
                    continue
                rows.append({"budget": budget, "status": "optimal", "objective": result.objective,
                             "spend": result.total_spend, "value": result.total_value,
                             "budget_shadow_price": result.shadow_price("budget"), "note": ""})
                continue
            model.set_row_upper("budget", budget)
            solution = model.run()
            iterations.append(solution.iterations)
            if solution.status not in ("Optimal", "Feasible"):
                from .diagnosis import diagnose

                rows.append(_infeasible(budget, InfeasibleAllocation(diagnose(problem, solution.status))))
                continue
            rows.append(_point(problem, budget, solution, budget_row))
    finally:
        problem.set_budget(original)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["iterations"] = iterations
    return table


def _point(problem: AllocationProblem, budget: float, solution: Solution, budget_row: int) -> dict[str, object]:
    figures = cell_figures(problem, solution.x)
    return {"budget": budget, "status": "optimal" if solution.status == "Optimal" else "feasible",
            "objective": solution.objective, "spend": float(figures.amount.sum()), "value": float(figures.value.sum()),
            "budget_shadow_price": float(solution.row_price[budget_row]), "note": ""}


def _infeasible(budget: float, exc: InfeasibleAllocation) -> dict[str, object]:
    return {"budget": budget, "status": "infeasible", "objective": float("nan"), "spend": float("nan"),
            "value": float("nan"), "budget_shadow_price": float("nan"),
            "note": str(exc.problems[0].message) if exc.problems else ""}
