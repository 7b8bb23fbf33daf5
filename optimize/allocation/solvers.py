"""The solvers behind the allocation problem, and their raw answer in the problem's order.

The solver is chosen by name (scenario ``solver.name`` or the command line):

``highs``
    HiGHS, handed the problem's matrices directly (no Python object per variable). Dual
    simplex, or the interior-point method with crossover above :data:`IPM_ABOVE` nonzeros
    (never, at the measured sizes: see ``bench/README.md``).
``highs-simplex`` / ``highs-ipm``
    HiGHS with the method forced. The interior-point method always runs crossover, so a
    basis, duals and reduced costs come out as with simplex.
``cbc``
    CBC through pulp (the fallback), on the pulp rendering of the same problem.

Every shadow price is turned into the same thing whatever the solver's own sign convention:
**how much the objective gains per unit more of the constraint's right-hand side**. So the
budget's shadow price is the value one more unit of money would retain (net of that money
for the ``net_value`` objective), and a capacity's is what one more offer slot is worth.

For a MILP (a lever with a launch cost) the shadow prices are those of the linear problem
with the launch decisions fixed at their optimum.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import highspy
import numpy as np
import pulp

from sim.scenario.run import SOLVERS

from .problem import INF, AllocationProblem

IPM_ABOVE: float = INF
"""Nonzeros above which ``highs`` uses the interior-point method. Dual simplex was faster at every
size measured (up to 500 tiers x 20 levers x 20 segments x 2 periods), so it is never switched."""


def solver_for(name: str, time_limit: float | None = None, mip_gap: float | None = None) -> pulp.LpSolver:
    """A pulp solver by its name in the scenario or on the command line (for solving ``problem.lp``)."""
    options = {"msg": False, "timeLimit": time_limit}
    if name.startswith("highs"):
        new_highs()  # pulp's own instance would print the process's banner
    if name in ("highs", "highs-simplex"):
        return pulp.HiGHS(gapRel=mip_gap, **options)
    if name == "highs-ipm":
        return pulp.HiGHS(gapRel=mip_gap, solver="ipm", run_crossover="on", **options)
    if name == "cbc":
        return pulp.PULP_CBC_CMD(gapRel=mip_gap, **options)
    raise ValueError(f"unknown solver '{name}': use one of {', '.join(SOLVERS)}")


def _check(name: str) -> None:
    if name not in SOLVERS:
        raise ValueError(f"unknown solver '{name}': use one of {', '.join(SOLVERS)}")


@dataclass
class Solution:
    """A solver's answer in the problem's column and row order, signs already the planner's."""

    status: str
    """``Optimal``; ``Feasible`` (stopped at a limit with a plan that is not proven best); or why none."""
    objective: float
    x: np.ndarray
    row_price: np.ndarray
    """Objective gained per unit more of each row's right-hand side."""
    col_price: np.ndarray
    """Objective gained per unit more of each column (its reduced cost)."""
    iterations: int = 0
    """Simplex, interior-point and crossover iterations of the last run."""


_NO_SOLUTION = {highspy.HighsModelStatus.kInfeasible: "Infeasible",
                highspy.HighsModelStatus.kUnboundedOrInfeasible: "Infeasible",
                highspy.HighsModelStatus.kUnbounded: "Unbounded"}
_STOPPED = (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kIterationLimit,
            highspy.HighsModelStatus.kInterrupt, highspy.HighsModelStatus.kSolutionLimit,
            highspy.HighsModelStatus.kObjectiveBound, highspy.HighsModelStatus.kObjectiveTarget)


_banner_silenced = False
"""Whether this process has built its first HiGHS instance yet (HiGHS prints its banner only then)."""


@contextlib.contextmanager
def _stdout_to_null() -> Iterator[None]:
    """Point the process's standard output (descriptor 1, below Python) at the null device."""
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        yield
    finally:
        # What C wrote is still in its own buffer when stdout is a pipe: flush it into the null device.
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def new_highs() -> highspy.Highs:
    """A HiGHS instance that writes nothing to standard output (unless the planner asked for details).

    highspy prints HiGHS's banner while the first instance of a process is built, before any option
    can be set, and straight to descriptor 1: ``output_flag`` cannot stop it, so the descriptor is
    pointed at the null device for that moment. ``retention -v`` (the ``retention`` logger at DEBUG)
    leaves it alone.
    """
    global _banner_silenced
    if _banner_silenced or logging.getLogger("retention").isEnabledFor(logging.DEBUG):
        highs = highspy.Highs()
    else:
        with _stdout_to_null():
            highs = highspy.Highs()
    _banner_silenced = True
    highs.setOptionValue("output_flag", False)
    return highs


class HighsModel:
    """One HiGHS instance holding a problem; re-solving after a bound change starts from its basis."""

    def __init__(self, problem: AllocationProblem, solver: str = "highs", time_limit: float | None = None,
                 mip_gap: float | None = None) -> None:
        _check(solver)
        self.problem = problem
        self.method = "ipm" if solver == "highs-ipm" or (
            solver == "highs" and len(problem.row_index) > IPM_ABOVE) else "simplex"
        self.highs = h = new_highs()
        if time_limit is not None:
            h.setOptionValue("time_limit", float(time_limit))
        if mip_gap is not None:
            h.setOptionValue("mip_rel_gap", float(mip_gap))
        h.setOptionValue("run_crossover", "on")
        # Detecting parallel columns costs more than it saves: a cell's segments are parallel but
        # for their slopes, and that is the whole problem.
        h.setOptionValue("presolve_rule_off", 8192)
        # HiGHS minimizes here: a maximization is handed over with its costs negated.
        self.sign = -1.0 if problem.maximize else 1.0
        self.shift, cost, upper = _price_shift(problem)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = problem.n_cols, len(problem.rows)
        lp.col_cost_ = self.sign * cost
        lp.col_lower_ = problem.col_lower
        lp.col_upper_ = np.where(np.isinf(upper), highspy.kHighsInf, upper)
        lp.row_lower_ = np.maximum(problem.row_lower, -highspy.kHighsInf)
        lp.row_upper_ = np.minimum(problem.row_upper, highspy.kHighsInf)
        matrix = lp.a_matrix_
        matrix.format_ = highspy.MatrixFormat.kRowwise
        matrix.num_col_, matrix.num_row_ = problem.n_cols, len(problem.rows)
        matrix.start_, matrix.index_, matrix.value_ = problem.row_start, problem.row_index, problem.row_value
        lp.a_matrix_ = matrix
        if problem.is_mip:
            lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                               for i in problem.integer]
        h.passModel(lp)
        self._launches = np.array(sorted(problem.launch_cols.values()), dtype=np.int32)
        self._lp_method()

    def _lp_method(self) -> None:
        # The MIP search runs its own LPs; "solver" only steers plain LPs (and the fixed-launch re-solve).
        self.highs.setOptionValue("solver", "choose" if self.problem.is_mip else self.method)

    def set_row_upper(self, name: str, upper: float) -> None:
        i = self.problem.row_number[name]
        self.highs.changeRowBounds(i, float(self.problem.rows[i].lower) if self.problem.rows[i].lower > -INF
                                   else -highspy.kHighsInf, float(upper))

    def run(self) -> Solution:
        h = self.highs
        h.run()
        solution = self._read()
        if self.problem.is_mip and solution.status in ("Optimal", "Feasible"):
            # Duals of the linear problem with the launch decisions held where they are.
            fixed = np.round(solution.x[self._launches])
            n = len(self._launches)
            h.changeColsIntegrality(n, self._launches, np.array([highspy.HighsVarType.kContinuous] * n))
            h.changeColsBounds(n, self._launches, fixed, fixed)
            h.setOptionValue("solver", self.method)
            try:
                h.run()
                duals = self._read()
            finally:
                h.changeColsBounds(n, self._launches, np.zeros(n), np.ones(n))
                h.changeColsIntegrality(n, self._launches, np.array([highspy.HighsVarType.kInteger] * n))
                self._lp_method()
            solution.row_price, solution.col_price = duals.row_price, duals.col_price
            solution.iterations += duals.iterations
        elif self.method == "ipm":
            # The interior point gets a cold start going; warm re-solves are simplex's strength.
            h.setOptionValue("solver", "simplex")
        return solution

    def _read(self) -> Solution:
        h = self.highs
        status = h.getModelStatus()
        info = h.getInfo()
        iterations = int(info.simplex_iteration_count + max(0, info.ipm_iteration_count)
                         + max(0, info.crossover_iteration_count))
        feasible = info.primal_solution_status == 2  # kSolutionStatusFeasible
        if status == highspy.HighsModelStatus.kOptimal:
            name = "Optimal"
        elif status in _STOPPED and feasible:
            name = "Feasible"
        else:
            name = _NO_SOLUTION.get(status, "Not Solved")
        if name not in ("Optimal", "Feasible"):
            empty = np.zeros(0)
            return Solution(name, float("nan"), empty, empty, empty, iterations)
        solution = h.getSolution()
        x = np.asarray(solution.col_value, dtype=float)
        row_dual = np.asarray(solution.row_dual, dtype=float) if solution.dual_valid else np.zeros(len(self.problem.rows))
        col_dual = np.asarray(solution.col_dual, dtype=float) if solution.dual_valid else np.zeros(len(x))
        # HiGHS reports d(minimized objective)/d(rhs); the planner's sign is that of the problem's sense.
        row_price = self.sign * row_dual
        if self.shift:
            row_price[self.problem.row_number[DEFINITION]] += self.shift
        return Solution(name, float(self.problem.cost @ x), x, row_price, self.sign * col_dual, iterations)


DEFINITION = "total_spend_definition"


def _price_shift(problem: AllocationProblem) -> tuple[float, np.ndarray, np.ndarray]:
    """A first guess at the price of money, folded into the costs HiGHS starts from.

    Dual simplex starts with every segment whose reduced cost is positive at its upper bound.
    From the costs alone that is every segment worth anything: far more money than the budget,
    and the ratio test that brings spend back down (the bound-flipping one, with a candidate per
    segment) is quadratic in HiGHS; 200,000 segments took 15 s. Subtracting ``lam`` times the
    equality row ``sum(spend) - total_spend = 0`` changes no feasible objective, so the problem is
    the same; but its starting point is the greedy one that funds the segments whose return beats
    ``lam``, the return at which the best segments fill the budget. Then only segments near that
    price move: 0.6 s. The row's shadow price comes back as ``lam`` plus what HiGHS reports.
    """
    cost, upper = problem.cost, problem.col_upper
    if not problem.maximize or DEFINITION not in problem.row_number or "budget" not in problem.row_number:
        return 0.0, cost, upper
    n = problem.n_segments
    returns, widths = cost[:n], upper[:n]
    money = problem.rows[problem.row_number["budget"]].upper
    capped = [r.upper for r in problem.rows if r.kind == "period_budget"]
    if capped and len(capped) == len({c[2] for c in problem.cells}):
        money = min(money, float(sum(capped)))
    order = np.argsort(-returns, kind="stable")
    reach = np.searchsorted(np.cumsum(widths[order]), money)
    shift = max(0.0, float(returns[order[reach]])) if reach < n else 0.0
    if shift == 0.0:
        return 0.0, cost, upper
    cost = cost.copy()
    cost[:n] -= shift
    cost[problem.total_col] += shift
    # A finite bound (the most the segments can add up to) lets the total start at a bound too.
    upper = upper.copy()
    upper[problem.total_col] = float(widths.sum())
    return shift, cost, upper


def solve_cbc(problem: AllocationProblem, time_limit: float | None = None, mip_gap: float | None = None) -> Solution:
    """CBC through pulp on ``problem.lp``; the answer in the problem's column and row order."""
    lp = problem.lp
    lp.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=mip_gap))
    status = pulp.LpStatus[lp.status]
    if status == "Optimal" and lp.sol_status == pulp.LpSolutionIntegerFeasible:
        status = "Feasible"
    if status not in ("Optimal", "Feasible"):
        empty = np.zeros(0)
        return Solution(status, float("nan"), empty, empty, empty)
    variables = problem.variables
    x = np.array([v.varValue or 0.0 for v in variables])
    objective = float(pulp.value(lp.objective) or 0.0)
    if problem.is_mip:
        launches = [variables[j] for j in problem.launch_cols.values()]
        for variable in launches:
            variable.lowBound = variable.upBound = round(variable.varValue or 0.0)
            variable.cat = pulp.LpContinuous
        try:
            lp.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit))
        finally:
            for variable in launches:
                variable.lowBound, variable.upBound, variable.cat = 0, 1, pulp.LpInteger
    constraints = lp.constraints
    # CBC reports d(objective)/d(rhs) in the problem's own sense already.
    row_price = np.array([constraints[row.name].pi or 0.0 for row in problem.rows])
    col_price = np.array([v.dj or 0.0 for v in variables])
    return Solution(status, objective, x, row_price, col_price)


def solve_solution(problem: AllocationProblem, solver: str = "highs", time_limit: float | None = None,
                   mip_gap: float | None = None) -> Solution:
    """The raw answer (column values, prices) of ``problem`` by the named solver."""
    _check(solver)
    if solver == "cbc":
        return solve_cbc(problem, time_limit, mip_gap)
    return HighsModel(problem, solver, time_limit, mip_gap).run()
