"""The planner's functions: curves, the optimal allocation, the frontier and goal-seek.

Each takes a scenario and returns tables (DataFrames) a planner can read or write out.
Response curves are the one expensive step (designed simulation runs); pass the
:class:`~optimize.run.measure.CurveEstimate` of one call to the next to measure them once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import pandas as pd

from sim.allocation import LAUNCH, Cell
from sim.calibration_cache import calibrated
from sim.engine import Calibration
from sim.queue_cache import QueueCache
from sim.scenario import Scenario

from ..allocation.curves import ResponseCurve
from ..allocation.problem import AllocationProblem, build_problem
from ..allocation.solve import AllocationResult, solve
from .loop import ClosedLoop, close_the_loop
from .measure import CurveEstimate, Progress, estimate_curves
from .parallel import map_replications

ALLOCATION_COLUMNS = ["tier", "lever", "period", "amount", "policy", "offers", "retained_lines", "value",
                      "next_unit_value"]
"""The allocation table: the budget-planning feed (first four columns), how the cell chooses its lines
(the scenario's targeting policy for the lever), and what the optimizer expects of it."""


@dataclass(frozen=True)
class Plan:
    """An optimal allocation with its shadow prices, and the curves it was computed from."""

    problem: AllocationProblem
    """The problem of the final plan (the curves it was solved with)."""
    result: AllocationResult
    estimate: CurveEstimate
    loop: ClosedLoop | None = None
    """The closed loop's rounds, when the plan was checked against the simulation."""

    @property
    def curves(self) -> dict[Cell, ResponseCurve]:
        return self.problem.curves

    @property
    def allocation(self) -> pd.DataFrame:
        """tier, lever, period, amount, offers, retained_lines, value, next_unit_value: one row per funded cell,
        then one per launch cost (tier ``(launch)``, the other columns empty)."""
        table = self.result.allocation.rename(columns={"retained": "retained_lines"})
        table = with_policy(table, self.problem.scenario)
        cells = table.loc[table["amount"] > 0, ALLOCATION_COLUMNS].reset_index(drop=True)
        feed = self.result.to_allocation().feed(self.problem.scenario)
        launches = feed[feed["tier"] == LAUNCH]
        return pd.concat([cells, launches], ignore_index=True) if len(launches) else cells

    @property
    def shadow_prices(self) -> pd.DataFrame:
        """Every constraint: kind, what it concerns, shadow price (objective per unit of right-hand side),
        slack, whether it binds, and the statement in a planner's words."""
        return self.result.constraints

    @property
    def reduced_costs(self) -> pd.DataFrame:
        return self.result.reduced_costs


def with_policy(table: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """``table`` (with a ``lever`` column) with each row's targeting policy, beside its amount; launch-cost
    rows get none."""
    levers = scenario.levers
    policies = [scenario.targeting.cell_policy(levers[lever]) if tier != LAUNCH else ""
                for tier, lever in zip(table["tier"], table["lever"])]
    return table.assign(policy=policies)


def response_curves(scenario: Scenario, *, seed: int | None = None, progress: Progress | None = None,
                    workers: int = 1) -> CurveEstimate:
    """Every cell's response curve: stated by the planner or measured by designed simulation runs
    (in ``workers`` processes; the curves do not depend on it)."""
    return estimate_curves(scenario, seed=seed, progress=progress, workers=workers)


def curve_table(estimate: CurveEstimate, curves: dict[Cell, ResponseCurve] | None = None) -> pd.DataFrame:
    """Every curve's breakpoints (amount, value, retained lines), its source and its cost per unit
    allocated, with, for curves measured one cell at a time, the measured means and their standard
    errors beside the fitted values. ``curves``: the curves a plan was solved with (by default the
    estimate's; the closed loop's are measured in the plan's context)."""
    rows = []
    for (tier, lever, period), curve in sorted((curves if curves is not None else estimate.curves).items()):
        retained = curve.retained or (float("nan"),) * len(curve.spends)
        for point, (amount, value, lines) in enumerate(zip(curve.spends, curve.values, retained)):
            rows.append({"tier": tier, "lever": lever, "period": period, "point": point, "amount": amount,
                         "value": value, "retained_lines": lines, "source": curve.source, "cost": curve.cost,
                         "fit_error": curve.fit_error if curve.fit_error is not None else float("nan")})
    table = pd.DataFrame(rows, columns=["tier", "lever", "period", "point", "amount", "value", "retained_lines",
                                        "source", "cost", "fit_error"])
    measured = estimate.points[["tier", "lever", "period", "allocated", "spend", "value", "value_se",
                                "retained_lines", "retained_lines_se"]].rename(columns={
                                    "allocated": "amount", "spend": "measured_spend",
                                    "value": "measured_value", "value_se": "measured_value_se",
                                    "retained_lines": "measured_retained_lines",
                                    "retained_lines_se": "measured_retained_lines_se"})
    return table.merge(measured, how="left", on=["tier", "lever", "period", "amount"])


def plan_allocation(scenario: Scenario, *, estimate: CurveEstimate | None = None, budget: float | None = None,
                    solver: str | None = None, seed: int | None = None, progress: Progress | None = None,
                    calibration: Calibration | None = None, workers: int = 1,
                    queue_cache: QueueCache | None = None, replications: int | None = None) -> Plan:
    """The allocation that maximizes the scenario's objective within its budget and rules.

    When curves were measured by simulation, the plan goes through the closed loop
    (:mod:`optimize.run.loop`, ``run.closed_loop``): simulated, its cells measured again in its
    context, solved again until prediction and simulation agree, on ``replications`` (by default the
    scenario's). Stated curves are taken as they are.
    """
    seed = scenario.run.seed if seed is None else seed
    if calibration is None and estimate is not None:
        calibration = estimate.calibration
    if calibration is None and (estimate is None or estimate.runs > 0):
        calibration = calibrated(scenario, seed, fan_out=partial(map_replications, workers=workers))
    estimate = estimate or estimate_curves(scenario, calibration, seed=seed, progress=progress, workers=workers,
                                           queue_cache=queue_cache)
    settings = scenario.solver
    if estimate.runs > 0 and scenario.run.closed_loop.rounds > 0:
        assert calibration is not None
        loop = close_the_loop(scenario, estimate.curves, calibration, seed, workers=workers, progress=progress,
                              queue_cache=queue_cache, solver=solver, budget=budget, replications=replications)
        return Plan(build_problem(scenario, loop.curves, budget), loop.result, estimate, loop)
    problem = build_problem(scenario, estimate.curves, budget)
    result = solve(problem, solver or settings.name, settings.time_limit_seconds, settings.mip_gap)
    return Plan(problem, result, estimate)


def efficient_frontier(scenario: Scenario, budgets: list[float], *, estimate: CurveEstimate | None = None,
                       solver: str | None = None, seed: int | None = None,
                       progress: Progress | None = None) -> pd.DataFrame:
    """Objective, spend, value and the budget's shadow price at each budget (one model, warm re-solves)."""
    from ..allocation.frontier import frontier

    estimate = estimate or response_curves(scenario, seed=seed, progress=progress)
    return frontier(build_problem(scenario, estimate.curves), budgets, solver or scenario.solver.name)


def least_budget(scenario: Scenario, *, tier: str | None = None, max_churn: float | None = None,
                 min_retained: float | None = None, estimate: CurveEstimate | None = None,
                 solver: str | None = None, seed: int | None = None, progress: Progress | None = None):  # type: ignore[no-untyped-def]
    """Goal-seek: the least budget that brings ``tier``'s (or every tier's) mean monthly churn to at most
    ``max_churn``, and/or retains at least ``min_retained`` lines over the horizon."""
    from ..allocation.goal import goal_seek

    estimate = estimate or response_curves(scenario, seed=seed, progress=progress)
    return goal_seek(scenario, estimate.curves, estimate.churn, tier=tier, max_churn=max_churn,
                     min_retained=min_retained, solver=solver or scenario.solver.name)
