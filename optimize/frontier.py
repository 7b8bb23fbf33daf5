"""The efficient frontier: value retained and its marginal return against the total budget.

One problem is built and re-solved at each budget by changing the budget constraint's
right-hand side only (the solver starts from the same model, not a fresh build), which
is what makes a 50-point frontier cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .problem import AllocationProblem
from .solve import AllocationError, solve


def frontier(problem: AllocationProblem, budgets: Sequence[float], solver: str = "highs") -> pd.DataFrame:
    """Per budget: objective, spend, value retained, and the budget's shadow price (marginal return)."""
    original = problem.budget_total
    rows = []
    try:
        for budget in budgets:
            problem.set_budget(budget)
            try:
                result = solve(problem, solver)
            except AllocationError as exc:
                rows.append({"budget": budget, "status": "infeasible", "objective": float("nan"),
                             "spend": float("nan"), "value": float("nan"), "marginal_return": float("nan"),
                             "note": str(exc.problems[0].message) if exc.problems else ""})
                continue
            rows.append({"budget": budget, "status": "optimal", "objective": result.objective,
                         "spend": result.total_spend, "value": result.total_value,
                         "marginal_return": result.shadow_price("budget"), "note": ""})
    finally:
        problem.set_budget(original)
    return pd.DataFrame(rows)
