"""The closed loop: the plan the allocation picks is simulated, and corrected until the two agree.

Curves measured one cell at a time promise more than a plan of many cells delivers: the cells of a
tier reach for the same risky lines, and what one period keeps another no longer needs to. So each
round of the loop

1. simulates the plan (``run.closed_loop.replications`` paired runs against no retention, at the
   scale of the curve measurement, with the channels' real capacities) and compares its value
   retained with what the allocation predicted from its curves;
2. stops if the prediction lies within the simulation's 95% interval and within
   ``run.closed_loop.tolerance`` of it, for the value retained and for the value less discounted
   spend (what the LP maximizes); after the first round the curves were measured on the same random
   numbers, so the gap is the plan's own change, not noise;
3. otherwise measures each funded cell *in the context of the plan*: per tier, the funded cells are
   added one at a time in a fixed order (earliest period first; within a period the proactive levers
   in the order they take lines, then the save desk), each at ``run.closed_loop.levels`` times its
   amount over the cells before it. A cell's curve is the value it adds to the cells before it,
   against its amount (its cost: the tier's discounted spend it adds per unit, at the plan's amount);
   added up along a tier's order they come to the whole plan's value (the sum telescopes), so a plan
   that stays put is predicted by exactly what it was simulated to do;
4. solves the allocation again with those curves (cells not funded keep the curves they had).

Tiers are measured in the same runs, one cell each per run: each tier has its own slice of the market,
so what one tier's cells do does not move another's. The loop ends with the last round's plan if its
prediction held, else with the round whose simulated value less discounted spend was highest; each
round is a row of :attr:`ClosedLoop.rounds`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.allocation import Allocation, Cell
from sim.engine import Calibration
from sim.queue_cache import QueueCache
from sim.results import SimulationResult, mean_interval
from sim.runner import Progress
from sim.scenario import Scenario
from sim.valuation import launch_values, tier_values

from ..allocation.curves import ResponseCurve, concave_fit, predicted_figures
from ..allocation.problem import build_problem
from ..allocation.solve import AllocationResult, solve
from .measure import measurement_scale
from .parallel import Task, simulate_tasks

ROUND_COLUMNS = ["round", "predicted_value", "simulated_value", "ci_low", "ci_high", "gap_share", "spend",
                 "predicted_net_value", "simulated_net_value", "net_ci_low", "net_ci_high", "net_gain_over_first", "gain_ci_low",
                 "gain_ci_high", "cells_funded", "cells_measured", "runs", "agrees", "chosen"]


@dataclass(frozen=True)
class ClosedLoop:
    """The loop's outcome: the plan it ends with, the curves that plan was solved with, and its rounds."""

    result: AllocationResult
    curves: dict[Cell, ResponseCurve]
    rounds: pd.DataFrame
    """Per round: the prediction, the simulated value retained with its 95% interval, spend, the simulated
    value less discounted spend with its interval and its gain over the first round's plan (paired by
    replication, with its interval), cells funded and measured, runs, and which round won."""
    first: AllocationResult
    """The plan of the first round (the one-cell-at-a-time curves)."""
    runs: int


def loop_scenario(scenario: Scenario) -> Scenario:
    """The scenario the loop simulates: the curve measurement's scale, every capacity as it is."""
    scale = measurement_scale(scenario)
    return scenario.model_copy(update={"run": scenario.run.model_copy(update={"scale": scale})})


def chain(scenario: Scenario, allocation: Allocation) -> dict[str, list[Cell]]:
    """Per tier, its funded cells in the order the loop adds them: earliest period first; within a period
    the proactive levers in the order they take lines, then the save-desk levers in theirs."""
    periods = [p.name for p in scenario.meta.periods]

    def order(cell: Cell) -> tuple:
        lever = scenario.levers[cell[1]]
        kind = (0, -lever.effect_per_offer, 0.0) if lever.proactive else (1, -lever.save_priority[0],
                                                                           -lever.save_priority[1])
        return (periods.index(cell[2]), *kind, cell[1])

    tiers: dict[str, list[Cell]] = {}
    for cell in sorted(allocation.amounts, key=order):
        if allocation.amounts[cell] > 0:
            tiers.setdefault(cell[0], []).append(cell)
    return tiers


class _Runs:
    """The loop's simulations, each allocation once on every replication: the run without retention and
    the plan recur between a round's check and its measurement, and between rounds."""

    def __init__(self, scenario: Scenario, calibration: Calibration, seed: int, replications: int, workers: int,
                 progress: Progress | None, queues: QueueCache) -> None:
        self.scenario, self.calibration, self.seed = scenario, calibration, seed
        self.replications, self.workers, self.progress, self.queues = replications, workers, progress, queues
        self.done: dict[tuple, SimulationResult] = {}
        self.count = 0

    def get(self, allocations: list[Allocation], stage: str) -> list[SimulationResult]:
        keys = [tuple(sorted(a.amounts.items())) for a in allocations]
        missing = list(dict.fromkeys(k for k in keys if k not in self.done))
        if missing:
            # Replication by replication: one worker runs every allocation of a replication on shared windows.
            tasks = [Task("", Allocation(dict(k)), r) for r in range(self.replications) for k in missing]
            outcomes = simulate_tasks({"": self.scenario}, tasks, self.calibration, self.seed, workers=self.workers,
                                      chunk=len(missing), stage=stage, progress=self.progress,
                                      queue_cache=self.queues)
            parts: dict[tuple, list[SimulationResult]] = {}
            for index, outcome in enumerate(outcomes):
                parts.setdefault(missing[index % len(missing)], []).append(outcome)
            self.done.update({k: SimulationResult.concat(v) for k, v in parts.items()})
            self.count += len(tasks)
        return [self.done[k] for k in keys]


def close_the_loop(scenario: Scenario, curves: dict[Cell, ResponseCurve], calibration: Calibration, seed: int, *,
                   workers: int = 1, progress: Progress | None = None, queue_cache: QueueCache | None = None,
                   solver: str | None = None, budget: float | None = None,
                   replications: int | None = None) -> ClosedLoop:
    """Solve, simulate, re-measure in context and solve again, as the module describes. ``replications``:
    the comparison's, which the loop measures on unless ``run.closed_loop.replications`` says otherwise."""
    settings = scenario.run.closed_loop
    solver_settings = scenario.solver
    runs = _Runs(loop_scenario(scenario), calibration, seed,
                 settings.replications or replications or scenario.run.replications, workers, progress,
                 QueueCache() if queue_cache is None else queue_cache)

    def solve_with(current: dict[Cell, ResponseCurve]) -> AllocationResult:
        return solve(build_problem(scenario, current, budget), solver or solver_settings.name,
                     solver_settings.time_limit_seconds, solver_settings.mip_gap)

    result = first = solve_with(curves)
    rows: list[dict[str, object]] = []
    plans: list[tuple[AllocationResult, dict[Cell, ResponseCurve]]] = []
    nets: list[np.ndarray] = []
    for number in range(1, settings.rounds + 1):
        before = runs.count
        allocation = result.to_allocation()
        predicted_all = predicted_figures(scenario, curves, allocation)
        predicted, predicted_net = predicted_all["value_retained"], predicted_all["npv_gain"]
        base, whole = runs.get([Allocation.empty(), allocation], f"closed loop, round {number}: the plan")
        value, net = _plan_figures(whole, base, scenario)
        mean, _, half, _ = mean_interval(value)
        net_mean, _, net_half, _ = mean_interval(net)
        nets.append(net)
        gain, _, gain_half, _ = mean_interval(net - nets[0])
        # The value retained and what the LP maximizes, the value less discounted spend, must both agree.
        agrees = bool(abs(predicted - mean) <= min(half, settings.tolerance * abs(mean))
                      and abs(predicted_net - net_mean) <= min(net_half, settings.tolerance * abs(net_mean)))
        measured: dict[Cell, ResponseCurve] = {}
        last = agrees or number == settings.rounds
        if not last:
            measured = _measure(runs, scenario, chain(scenario, allocation), allocation, number)
        rows.append({"round": number, "predicted_value": predicted, "simulated_value": mean,
                     "ci_low": mean - half, "ci_high": mean + half,
                     "gap_share": (mean - predicted) / predicted if predicted else np.nan,
                     "spend": allocation.spend(scenario), "predicted_net_value": predicted_net,
                     "simulated_net_value": net_mean,
                     "net_ci_low": net_mean - net_half, "net_ci_high": net_mean + net_half,
                     "net_gain_over_first": gain, "gain_ci_low": gain - (gain_half if number > 1 else 0.0),
                     "gain_ci_high": gain + (gain_half if number > 1 else 0.0),
                     "cells_funded": len(allocation.amounts), "cells_measured": len(measured),
                     "runs": runs.count - before, "agrees": agrees, "chosen": False})
        plans.append((result, curves))
        if last:
            break
        curves = {**curves, **measured}
        result = solve_with(curves)
    if not plans:  # no round asked for: the first plan, unchecked
        return ClosedLoop(first, curves, pd.DataFrame(columns=ROUND_COLUMNS), first, 0)
    chosen = len(rows) - 1 if rows[-1]["agrees"] else int(np.argmax([r["simulated_net_value"] for r in rows]))
    rows[chosen]["chosen"] = True
    result, curves = plans[chosen]
    return ClosedLoop(result, curves, pd.DataFrame(rows, columns=ROUND_COLUMNS), first, runs.count)


def _plan_figures(whole: SimulationResult, base: SimulationResult, scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Per replication: the plan's value retained over no retention, and that less its discounted spend
    (launch costs included)."""
    value = (tier_values(whole, scenario).groupby("replication")["value"].sum()
             - tier_values(base, scenario).groupby("replication")["value"].sum())
    spend = tier_values(whole, scenario).groupby("replication")["discounted_spend"].sum()
    spend = spend + launch_values(whole, scenario)["discounted_launch_spend"]
    return value.to_numpy(dtype=float), (value - spend).to_numpy(dtype=float)


def _measure(runs: _Runs, scenario: Scenario, order: dict[str, list[Cell]], allocation: Allocation,
             number: int) -> dict[Cell, ResponseCurve]:
    """Simulate the plan cell by cell along each tier's order (see the module) and fit each funded cell's
    curve in context."""
    levels = list(scenario.run.closed_loop.levels)
    steps = max((len(cells) for cells in order.values()), default=0)

    def step_allocation(k: int, level: float) -> Allocation:
        """Each tier's first ``k`` cells, the ``k``-th at ``level`` times its amount (a tier with fewer
        cells: all of them)."""
        amounts: dict[Cell, float] = {}
        for cells in order.values():
            for i, cell in enumerate(cells[:k]):
                amounts[cell] = allocation.amounts[cell] * (level if i == k - 1 else 1.0)
        return Allocation(amounts)

    # Design (k, level); (0, 1.0) is no retention, (steps, 1.0) the whole plan.
    designs: list[tuple[int, float]] = [(0, 1.0)] + [(k, level) for k in range(1, steps + 1) for level in levels]
    merged = dict(zip(designs, runs.get([step_allocation(k, level) for k, level in designs],
                                        f"closed loop, round {number}: each cell in context")))
    tables = {design: tier_values(result, scenario).set_index(["replication", "tier"])
              for design, result in merged.items()}

    curves: dict[Cell, ResponseCurve] = {}
    for tier, cells in order.items():
        mine = {design: table.xs(tier, level="tier") for design, table in tables.items()}
        for k, cell in enumerate(cells, start=1):
            before = mine[(k - 1, 1.0)]
            gains, kept, paid = [], [], []
            for level in levels:
                after = mine[(k, level)]
                gains.append(float((after["value"] - before["value"]).mean()))
                kept.append(float((before["churned_lines"] - after["churned_lines"]).mean()))
                paid.append(float((after["discounted_spend"] - before["discounted_spend"]).mean()))
            amounts = [allocation.amounts[cell] * level for level in levels]
            # What a unit allocated costs, read at the plan's own amount: the plan's spend is then predicted
            # exactly, as its value is.
            at_plan = levels.index(1.0)
            curves[cell] = _fit(cell, amounts, gains, kept, max(0.0, paid[at_plan]) / amounts[at_plan])
    return curves


def _fit(cell: Cell, amounts: list[float], gains: list[float], kept: list[float], cost: float) -> ResponseCurve:
    """A cell's in-context curve through (0, 0) and its measured points (concave, non-decreasing), in value
    and in lines retained, against the amount allocated; ``cost``: what it pays, discounted, per unit."""
    value, error = concave_fit(amounts, gains)
    retained, _ = concave_fit(amounts, kept)
    return ResponseCurve(*cell, (0.0, *amounts), (0.0, *map(float, value)), "in plan context", fit_error=error,
                         retained=(0.0, *map(float, retained)), cost=cost)
