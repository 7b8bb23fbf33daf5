"""``retention run``: validate, calibrate, measure curves, optimize, simulate every strategy, compare.

One calibration serves every stage. Every strategy is simulated for the same replications
of the same seed (common random numbers), and the run without retention is always
simulated too: it is the reference of the value each strategy retains. Replications can
run in parallel processes; results are gathered in a fixed order, so the tables do not
depend on the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from sim.allocation import FEED_COLUMNS, STRATEGY, Allocation, Cell
from sim.calibration_cache import calibrated
from sim.churn_drivers import churn_drivers
from sim.customers.target_list import target_list
from sim.engine import Calibration
from sim.queue_cache import QueueCache
from sim.results import SimulationResult, mean_interval
from sim.runner import Progress, Stopwatch
from sim.scenario import Scenario
from sim.valuation import run_values

from ..allocation.curves import ResponseCurve, predicted_figures
from ..allocation.frontier import frontier
from ..allocation.problem import build_problem
from ..allocation.solve import solve
from .compare import (
    by_tier_table,
    operator_figures,
    operators_table,
    paired_differences,
    strategy_figures,
    summary_table,
)
from .curve_cache import CurveStore
from .measure import CurveEstimate, estimate_curves, estimate_variants
from .parallel import Task, backend, map_replications, simulate_tasks
from .plan import Plan, plan_allocation
from .stopping import Stopping, replicate_until
from .strategies import csv_allocation, rule_allocation
from .targeting_rules import targeting_rules

REFERENCE = "no_retention"
WITHOUT_PRICE_MOVES = "without our price moves"
"""The run's market had we not moved our prices: what starting (or answering) a price war costs us."""
FRONTIER_POINTS = 50
FRONTIER_REACH = 2.0
"""The frontier spans budgets from 0 to this multiple of the scenario's budget."""


@dataclass
class RunOutcome:
    """Everything a run computed, as tables."""

    scenario: Scenario
    scenario_file: str | None
    seed: int
    replications: int
    workers: int
    estimate: CurveEstimate
    plan: Plan
    frontier: pd.DataFrame
    allocations: dict[str, Allocation]
    results: dict[str, SimulationResult]
    summary: pd.DataFrame
    by_tier: pd.DataFrame
    paired: pd.DataFrame
    predicted: pd.DataFrame
    """For optimized strategies: the LP's predicted value and retained lines beside the simulated ones."""
    variants: pd.DataFrame
    """For the robust plan: each competitor variant's outcome, the expectation and the worst case."""
    operators: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per strategy and operator: lines, share, revenue and margin over the horizon."""
    price_moves: pd.DataFrame = field(default_factory=pd.DataFrame)
    """When we move our prices: what the moves did, against the same run without them (no retention)."""
    targets: pd.DataFrame = field(default_factory=pd.DataFrame)
    """For a scenario made from a customer table: the LP plan's target list for the first period
    (:func:`sim.customers.target_list.target_list`)."""
    targeting: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per tier, proactive lever and targeting rule: the profit at the best depth of contact and its
    expectation over the acceptance rate (:func:`optimize.run.targeting_rules.targeting_rules`)."""
    targeting_curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The same rules' profit by depth of contact."""
    churn_drivers: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Why customers leave, without retention: per tier and driver (price gap, network quality and
    outages, service and complaints, competitor pressure, contract and tenure, the line's own
    propensity, the base rate), the points of monthly churn the driver accounts for. Columns
    ``tier, driver, churn, contribution, share``: ``churn`` the tier's mean monthly churn,
    ``contribution`` the driver's part of it (a probability; they add up to ``churn`` over a tier's
    drivers and may be negative where a driver holds lines back), ``share`` = contribution / churn."""
    figures: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Per strategy, its figures replication by replication (:func:`optimize.run.compare.strategy_figures`):
    what pairs any two strategies on common random numbers (``paired_differences(figures, name)``)."""
    timings: dict[str, float] = field(default_factory=dict)
    backend: dict[str, object] = field(default_factory=dict)
    """Where the simulations ran (:func:`optimize.run.parallel.backend`), for the manifest."""
    curve_store: CurveStore = field(default_factory=CurveStore)
    """The curves the run used (the scenario's, each competitor variant's), measured now or reused: what
    the output folder keeps of them and what the manifest says."""
    stopping: Stopping | None = None
    """How many replications the comparison ran and why it stopped (:mod:`optimize.run.stopping`)."""

    @property
    def baseline(self) -> str:
        return self.scenario.baseline_among(self.results)

    def allocation_table(self) -> pd.DataFrame:
        """strategy, tier, lever, period, amount, policy: the budget-planning feed of every strategy
        (:meth:`Allocation.feed`), launch costs as rows of their own."""
        columns = [STRATEGY, *FEED_COLUMNS]
        # As simulated: the engine's plans are in whole units already, a planner's file as it was written.
        frames = [a.feed(self.scenario, unit=None).assign(strategy=name)[columns]
                  for name, a in self.allocations.items()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

    def recommended(self) -> Allocation:
        """The LP's plan in whole currency units, as the run simulated it (``lp_optimal``): the plan the
        run's ``allocation.csv`` feeds to budget planning."""
        return self.plan.result.to_allocation().rounded()


# --- simulating strategies ----------------------------------------------------------------------

def simulate_all(scenarios: dict[str, Scenario], plans: list[tuple[str, str, Allocation]], calibration: Calibration,
                 seed: int, replications: int, workers: int = 1,
                 progress: Progress | None = None, first: int = 0) -> dict[tuple[str, str], SimulationResult]:
    """Simulate each (variant, strategy, allocation) for ``replications`` on common random numbers (the
    replications numbered from ``first``)."""
    # Replication by replication, so one worker simulates all plans of a replication and reuses its
    # queue windows.
    numbers = range(first, first + replications)
    keys = [(variant, name) for _ in numbers for variant, name, _ in plans]
    tasks = [Task(variant, allocation, r) for r in numbers for variant, _, allocation in plans]
    outcomes = simulate_tasks(scenarios, tasks, calibration, seed, workers=workers, chunk=len(plans),
                              progress=progress)
    grouped: dict[tuple[str, str], list[SimulationResult]] = {}
    for key, outcome in zip(keys, outcomes):
        grouped.setdefault(key, []).append(outcome)
    return {key: SimulationResult.concat(parts) for key, parts in grouped.items()}


# --- the robust plan ----------------------------------------------------------------------------

def variant_scenario(scenario: Scenario, name: str) -> Scenario:
    return scenario.model_copy(update={"competitors": scenario.competitors.variant(name)})


def expected_curves(scenario: Scenario, estimates: dict[str, CurveEstimate]) -> dict[Cell, ResponseCurve]:
    """Per cell, the probability-weighted curve over the competitor variants.

    Every variant measures a cell at the same spends (ceilings do not depend on competitors),
    and a weighted sum of concave curves on the same breakpoints is concave.
    """
    probability = {v.name: v.probability for v in scenario.competitors.variants}
    curves: dict[Cell, ResponseCurve] = {}
    first = next(iter(estimates.values()))
    for cell, curve in first.curves.items():
        values = sum(probability[v] * np.asarray(e.curves[cell].values) for v, e in estimates.items())
        retained = None
        if all(e.curves[cell].retained is not None for e in estimates.values()):
            retained = sum(probability[v] * np.asarray(e.curves[cell].retained) for v, e in estimates.items())
        curves[cell] = ResponseCurve(*cell, curve.spends, tuple(map(float, values)), "expected over variants",
                                     fit_error=max(e.curves[cell].fit_error or 0.0 for e in estimates.values()),
                                     retained=tuple(map(float, retained)) if retained is not None else None)
    return curves


# --- the whole run --------------------------------------------------------------------------------

def run(scenario: Scenario, scenario_file: str | None = None, *, seed: int | None = None,
        replications: int | None = None, strategies: list[str] | None = None, workers: int = 1,
        progress: Progress | None = None, curves: CurveStore | None = None) -> RunOutcome:
    """The end-to-end job: every stage, every strategy, every table. ``curves``: where curves measured
    before are found (:mod:`optimize.run.curve_cache`; by default none are)."""
    store = CurveStore() if curves is None else curves
    watch = Stopwatch()
    seed = scenario.run.seed if seed is None else seed
    replications = scenario.run.replications if replications is None else replications
    chosen = [s for s in scenario.strategies if strategies is None or s.name in strategies]
    if progress:
        progress("calibrating", 0, 1)
    calibration = calibrated(scenario, seed, fan_out=partial(map_replications, workers=workers))
    if progress:
        progress("calibrating", 1, 1)
    watch.lap("calibrate")

    queues = QueueCache()
    estimate = store.find(scenario, seed) or store.keep(scenario, seed, estimate_curves(
        scenario, calibration, seed=seed, progress=progress, queue_cache=queues, workers=workers))
    watch.lap("response_curves")
    plan = plan_allocation(scenario, estimate=estimate, seed=seed, progress=progress, calibration=calibration,
                           workers=workers, queue_cache=queues, replications=replications)
    watch.lap("closed_loop")
    budgets = np.linspace(0.0, FRONTIER_REACH * scenario.budget.total, FRONTIER_POINTS).tolist()
    frontier_table = frontier(plan.problem, budgets, scenario.solver.name)
    allocations: dict[str, Allocation] = {}
    robust_estimates: dict[str, CurveEstimate] = {}
    curves_of: dict[str, dict[Cell, ResponseCurve]] = {}
    for strategy in chosen:
        if strategy.kind == "lp_optimal":
            allocations[strategy.name] = plan.result.to_allocation()
            curves_of[strategy.name] = plan.curves
        elif strategy.kind == "robust_lp":
            robust_estimates = _variant_curves(scenario, store, calibration, seed, progress, queues, workers)
            problem = build_problem(scenario, expected_curves(scenario, robust_estimates))
            settings = scenario.solver
            robust = solve(problem, settings.name, settings.time_limit_seconds, settings.mip_gap)
            allocations[strategy.name] = robust.to_allocation()
            curves_of[strategy.name] = problem.curves
        elif strategy.kind == "csv":
            allocations[strategy.name] = csv_allocation(scenario, strategy)
        else:
            allocations[strategy.name] = rule_allocation(scenario, strategy.kind)
    # The engine's plans are simulated as their feed states them, in whole currency units, so a feed read
    # back simulates alike; a planner's file is simulated as written.
    kinds = {strategy.name: strategy.kind for strategy in chosen}
    allocations = {name: allocation if kinds[name] == "csv" else allocation.rounded()
                   for name, allocation in allocations.items()}
    watch.lap("optimize")
    targets = pd.DataFrame()
    lp = next((strategy.name for strategy in chosen if strategy.kind == "lp_optimal"), None)
    if scenario.population is not None and lp is not None:
        # The CRM's list for the plan's first period, as the engine spends it on the table's customers.
        first = scenario.meta.periods[0].name
        targets = target_list(scenario, allocations[lp], first, seed=seed, source=scenario_file or "",
                              calibration=calibration if scenario.run.scale == 1.0 else None).rows
        watch.lap("target_list")

    targeting, targeting_curves = targeting_rules(scenario, calibration, seed)
    watch.lap("targeting_rules")
    drivers = churn_drivers(scenario, calibration, seed, fan_out=partial(map_replications, workers=workers))
    watch.lap("churn_drivers")

    base_plans = [("", name, allocation) for name, allocation in allocations.items()]
    if REFERENCE not in allocations:
        base_plans.insert(0, ("", REFERENCE, Allocation.empty()))
    scenarios = {"": scenario}
    variant_plans: list[tuple[str, str, Allocation]] = []
    optimized = list(curves_of)
    if robust_estimates:
        for variant in scenario.competitors.variants:
            scenarios[variant.name] = variant_scenario(scenario, variant.name)
            variant_plans += [(variant.name, REFERENCE, Allocation.empty())]
            variant_plans += [(variant.name, name, allocations[name]) for name in optimized]
    if scenario.pricing:
        scenarios[WITHOUT_PRICE_MOVES] = scenario.model_copy(update={"pricing": ()})
        variant_plans += [(WITHOUT_PRICE_MOVES, REFERENCE, Allocation.empty())]
    simulated, stopping = _simulate_to_target(scenario, scenarios, base_plans + variant_plans, calibration, seed,
                                              replications, workers, progress, list(allocations),
                                              scenario.recommended_among(allocations))
    replications = stopping.replications
    watch.lap("simulate")

    reference = simulated[("", REFERENCE)]
    results = {name: simulated[("", name)] for name in allocations}
    figures = {name: strategy_figures(result, scenario, reference) for name, result in results.items()}
    baseline = scenario.baseline_among(figures)
    outcome = RunOutcome(
        scenario, scenario_file, seed, replications, workers, estimate, plan, frontier_table, allocations, results,
        summary_table(figures), by_tier_table(results, scenario), paired_differences(figures, baseline),
        _predicted(scenario, curves_of, figures, allocations),
        _variant_table(scenario, simulated, optimized) if robust_estimates else pd.DataFrame(),
        operators=operators_table(results, scenario),
        price_moves=_price_move_table(scenario, scenarios, simulated) if scenario.pricing else pd.DataFrame(),
        targets=targets,
        targeting=targeting,
        targeting_curves=targeting_curves,
        churn_drivers=drivers,
        backend=backend(workers),
        curve_store=store,
        figures=figures,
        stopping=stopping,
    )
    watch.lap("compare")
    outcome.timings = dict(watch.timings)
    return outcome


def _simulate_to_target(scenario: Scenario, scenarios: dict[str, Scenario], plans: list[tuple[str, str, Allocation]],
                        calibration: Calibration, seed: int, most: int, workers: int, progress: Progress | None,
                        names: list[str], plan: str | None) -> tuple[dict[tuple[str, str], SimulationResult], Stopping]:
    """Every plan simulated on common random numbers, for ``most`` replications or, with
    ``run.target_half_width``, until the recommended plan's NPV difference from the baseline strategy is
    that precise (:func:`optimize.run.stopping.replicate_until`). ``names``: the strategies compared (the
    baseline strategy among them); ``plan``: the recommended plan's, watched when it is one of them (else
    the first strategy that is not the baseline)."""
    baseline = scenario.baseline_among(names)
    others = [name for name in names if name != baseline]
    watched = plan if plan in others else (others[0] if others else baseline)
    target = scenario.run.target_half_width if others else None
    batches: list[dict[tuple[str, str], SimulationResult]] = []

    def differences_of(first: int, count: int) -> np.ndarray:
        if count > 0:
            batches.append(simulate_all(scenarios, plans, calibration, seed, count, workers, progress, first))
        npv = {name: np.concatenate([run_values(b[("", name)], scenario)["npv"].to_numpy(dtype=float)
                                     for b in batches]) for name in (watched, baseline)}
        return npv[watched] - npv[baseline]

    stopping = replicate_until(target, most, differences_of, watched, baseline)
    merged = {key: SimulationResult.concat([b[key] for b in batches]).first(stopping.replications)
              for key in batches[0]} if len(batches) > 1 or stopping.replications < most else batches[0]
    return merged, stopping


def _variant_curves(scenario: Scenario, store: CurveStore, calibration: Calibration, seed: int,
                    progress: Progress | None, queues: QueueCache, workers: int) -> dict[str, CurveEstimate]:
    """Each competitor variant's curves: reused where measured before, the others measured together in one
    pool, on the scenario's calibration (made without competitors) and queue windows."""
    variants = {v.name: variant_scenario(scenario, v.name) for v in scenario.competitors.variants}
    found = {name: store.find(s, seed, name) for name, s in variants.items()}
    missing = {name: s for name, s in variants.items() if found[name] is None}
    measured = estimate_variants(missing, calibration, seed=seed, progress=progress, queue_cache=queues,
                                 workers=workers) if missing else {}
    return {name: found[name] or store.keep(s, seed, measured[name], name) for name, s in variants.items()}


def _predicted(scenario: Scenario, curves_of: dict[str, dict[Cell, ResponseCurve]], figures: dict[str, pd.DataFrame],
               allocations: dict[str, Allocation]) -> pd.DataFrame:
    """The LP's separable prediction against the simulated, interacting system."""
    rows = []
    for name, curves in curves_of.items():
        f = figures[name].assign(npv_gain=figures[name]["value_retained"] - figures[name]["discounted_spend"])
        for metric, predicted in predicted_figures(scenario, curves, allocations[name]).items():
            mean, _, half, _ = mean_interval(f[metric].to_numpy(dtype=float))
            rows.append({"strategy": name, "metric": metric, "predicted": predicted, "simulated": mean,
                         "ci_low": mean - half, "ci_high": mean + half,
                         "gap": mean - predicted, "gap_share": (mean - predicted) / predicted if predicted else np.nan})
    return pd.DataFrame(rows, columns=["strategy", "metric", "predicted", "simulated", "ci_low", "ci_high", "gap",
                                       "gap_share"])


def _variant_table(scenario: Scenario, simulated: dict[tuple[str, str], SimulationResult],
                   optimized: list[str]) -> pd.DataFrame:
    rows = []
    for name in optimized:
        npvs = {}
        for variant in scenario.competitors.variants:
            v = variant_scenario(scenario, variant.name)
            f = strategy_figures(simulated[(variant.name, name)], v, simulated[(variant.name, REFERENCE)])
            npvs[variant.name] = float(f["npv"].mean())
            rows.append({"strategy": name, "variant": variant.name, "probability": variant.probability,
                         "npv": npvs[variant.name], "value_retained": float(f["value_retained"].mean()),
                         "monthly_churn": float(f["monthly_churn"].mean())})
        expected = sum(v.probability * npvs[v.name] for v in scenario.competitors.variants)
        worst = min(npvs, key=npvs.get)  # type: ignore[arg-type]
        rows.append({"strategy": name, "variant": "expected", "probability": 1.0, "npv": expected,
                     "value_retained": np.nan, "monthly_churn": np.nan})
        rows.append({"strategy": name, "variant": f"worst case ({worst})", "probability": np.nan,
                     "npv": npvs[worst], "value_retained": np.nan, "monthly_churn": np.nan})
    return pd.DataFrame(rows)


def _price_move_table(scenario: Scenario, scenarios: dict[str, Scenario],
                      simulated: dict[tuple[str, str], SimulationResult]) -> pd.DataFrame:
    """Without retention, each operator's margin (and our NPV) with our price moves and without them, and
    the paired difference: what our moves, and the rivals' answers to them, did to each operator."""
    with_moves = simulated[("", REFERENCE)]
    without = simulated[(WITHOUT_PRICE_MOVES, REFERENCE)]
    figures = {label: operator_figures(result, scenarios[key]).set_index(["replication", "operator"])
               for label, key, result in (("with", "", with_moves), ("without", WITHOUT_PRICE_MOVES, without))}
    npv = {label: strategy_figures(result, scenarios[key]).set_index("replication")["npv"]
           for label, key, result in (("with", "", with_moves), ("without", WITHOUT_PRICE_MOVES, without))}
    rows = []

    def row(operator: str, metric: str, a: pd.Series, b: pd.Series) -> None:
        diff, _, half, k = mean_interval((a - b).to_numpy(dtype=float))
        rows.append({"operator": operator, "metric": metric, "with_our_moves": float(a.mean()),
                     "without_them": float(b.mean()), "difference": diff,
                     "ci_low": diff - half if k > 1 else diff, "ci_high": diff + half if k > 1 else diff})

    row(scenario.market.us, "npv", npv["with"], npv["without"])
    for operator in scenario.market.operators:
        for metric in ("discounted_margin", "lines_end", "share_end"):
            a = figures["with"].xs(operator, level="operator")[metric]
            b = figures["without"].xs(operator, level="operator")[metric]
            row(operator, metric, a, b.reindex(a.index))
    return pd.DataFrame(rows)
