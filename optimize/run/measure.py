"""Response curves measured by designed simulation runs.

Where the planner states no curve for a cell, the simulator measures one. The design:

* **Cells and ceilings.** A cell (tier, lever, period) exists when the lever may be offered
  to the tier. Its *ceiling* is the most it could sensibly spend: the offers the contact
  policy allows the tier in the period (proactive levers) or the lines expected to ask to
  leave that the save desk reaches (save-desk levers), within the lever's and channel's
  capacity, times the expected cost of an offer; and never more than the total budget, the
  period's budget or the tier's maximum.
* **Runs.** For each lever, period and level (a share of the ceiling, ``run.estimation.levels``),
  one run funds that lever in that period for *every* tier at the level times the tier's
  ceiling. Tiers decide separately (each has its own slice of the market), so one run measures
  all of them; periods are measured apart because money spent early changes the lines later
  periods see. Channel and lever capacities are lifted in these runs (the allocation enforces
  them as constraints, so the curve describes the cell alone). Where the contact policy sets a
  proactive cell's ceiling, one more run measures it beyond, under a policy that allows one more
  offer per line in the same window: the value of the contacts the policy forbids, which prices
  the policy in the allocation. Each run is paired with a run without retention on the same
  random numbers (same seed and replication), over ``run.estimation.replications``. The runs
  simulate about ``run.estimation.simulated_lines`` units times ``run.scale`` (:func:`measurement_scale`:
  a scenario thinned for a quick look is measured thinned too); results are in real lines, scaled
  back up as every simulation scales them.
* **Value.** A cell's point is, per tier and averaged over replications, the amount allocated and
  the value it retained over the run without retention, as :mod:`sim.valuation` defines it for
  every stage (discounted margin with the win-back feedback, the terminal value of the lines kept,
  which keep churning); its *retained lines* are the paired difference in lines that left over the
  horizon. The cell's *cost* is the spend it paid, discounted, per unit allocated: a cell that
  cannot spend all it holds (too few callers for the save desk, lines leaving before their offer
  ends) costs less than its amount, and its value stops growing where its spending does.
* **Fit.** :func:`optimize.allocation.curves.concave_fit` (least squares over concave, non-decreasing
  curves through the origin) is applied to the value points and, separately, to the retained
  lines; the root-mean-square gap of the value fit is the curve's ``fit_error``. Each point's
  standard error over replications is reported beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from sim.allocation import Allocation, Cell
from sim.calibration_cache import calibrated
from sim.engine import Calibration
from sim.queue_cache import QueueCache
from sim.results import SimulationResult
from sim.runner import Progress
from sim.scenario import Scenario
from sim.valuation import tier_values, value_retained

from ..allocation.curves import ResponseCurve, TierChurn, concave_fit, stated_curves
from .parallel import Task, map_replications, simulate_tasks

UNLIMITED = 1e15
"""A channel capacity no run reaches (a finite number: offer limits are counted in whole offers)."""
SAVE_DESK_HEADROOM = 1.5
"""Save-desk ceilings allow for half again the stated churn: under pressure more lines ask to leave.
A cell whose callers cannot use it all stops spending, and its curve ends where its spending does."""
RELAXED = "contact policy relaxed"
"""The scenario variant whose contact policy allows one more offer per line: it measures the point
beyond a cell's policy ceiling."""
POINT_COLUMNS = ["tier", "lever", "period", "level", "allocated", "spend", "discounted_spend", "value", "value_se",
                 "retained_lines", "retained_lines_se"]


@dataclass(frozen=True)
class CurveEstimate:
    """The curves an allocation uses, how they were measured, and churn without retention."""

    curves: dict[Cell, ResponseCurve]
    """Every cell's curve: the planner's where stated, otherwise measured."""
    points: pd.DataFrame
    """Per measured cell and level: allocated amount, spend paid, value and retained lines, their errors."""
    churn: dict[str, TierChurn]
    """Each tier's churn over the horizon with no retention spend (from the paired base runs)."""
    runs: int
    """Simulation runs made (0 when every curve is stated)."""
    reference: SimulationResult | None = None
    """The runs without retention the measurements are paired with (``None`` when nothing was simulated)."""
    calibration: Calibration | None = None
    """The calibration the runs used (``None`` when nothing was simulated): later stages reuse it."""
    reused_from: str | None = None
    """Where the curves were read from when they were measured before (a file), else ``None``."""

    @property
    def runs_done(self) -> int:
        """Simulation runs made for these curves now: none when they were reused."""
        return 0 if self.reused_from is not None else self.runs


def cells(scenario: Scenario) -> list[Cell]:
    """Every (tier, lever, period) where the lever may be offered to the tier."""
    return [(tier, name, period.name) for name, lever in scenario.levers.items()
            for tier in scenario.tiers if lever.reaches(tier)
            for period in scenario.meta.periods]


def _offer_ceiling(scenario: Scenario, cell: Cell) -> tuple[float, float]:
    """The most offers a cell could make in its period, and how many of them the contact policy allows
    (0 for a save-desk lever)."""
    tier_name, lever_name, period_name = cell
    tier, lever = scenario.tiers[tier_name], scenario.levers[lever_name]
    months = next(p.months for p in scenario.meta.periods if p.name == period_name)
    policy = scenario.budget.contact_policy
    proactive = 0.0
    if lever.proactive:
        proactive = tier.unit_count * policy.max_offers_per_line * months / policy.per_months
    offers = proactive
    if lever.save_desk:
        offers += tier.unit_count * tier.baseline_churn * months * scenario.targeting.save_desk_reach * \
            SAVE_DESK_HEADROOM
    offers = min(offers, scenario.channels[lever.channel].capacity_per_month * months)
    if lever_name in scenario.budget.lever_capacity:
        offers = min(offers, scenario.budget.lever_capacity[lever_name])
    return offers, proactive


def _money_cap(scenario: Scenario, cell: Cell) -> float:
    """The most money the budget lets a cell have: the total, its period's budget, its tier's maximum."""
    caps = [scenario.budget.total]
    if cell[2] in scenario.budget.per_period:
        caps.append(scenario.budget.per_period[cell[2]])
    bound = scenario.budget.tiers.get(cell[0])
    if bound is not None and bound.max is not None:
        caps.append(bound.max)
    return min(caps)


def ceiling(scenario: Scenario, cell: Cell) -> float:
    """The most a cell could sensibly spend (see the module's description)."""
    cost = scenario.levers[cell[1]].cost_per_offer(scenario.tiers[cell[0]])
    if cost <= 0:
        return 0.0
    offers, _ = _offer_ceiling(scenario, cell)
    return max(0.0, min(offers * cost, _money_cap(scenario, cell)))


def beyond_policy(scenario: Scenario, cell: Cell) -> float:
    """Where the contact policy sets a proactive cell's ceiling, the spend one more offer per line in the
    policy's window would allow (measured under :data:`RELAXED`); 0 where the policy does not bind."""
    lever = scenario.levers[cell[1]]
    policy = scenario.budget.contact_policy
    if lever.save_desk or policy.max_offers_per_line == 0:
        return 0.0
    offers, proactive = _offer_ceiling(scenario, cell)
    cost = lever.cost_per_offer(scenario.tiers[cell[0]])
    if cost <= 0 or offers < proactive or proactive * cost > _money_cap(scenario, cell):
        return 0.0
    more = proactive * (policy.max_offers_per_line + 1) / policy.max_offers_per_line * cost
    return min(more, _money_cap(scenario, cell))


def measurement_scale(scenario: Scenario) -> float:
    """The share of the lines the curve-measuring runs (and the closed loop's) simulate: about
    ``run.estimation.simulated_lines`` units, times ``run.scale``. The engine scales every result back to
    the whole base by the same share (:func:`sim.scale.tier_scale`, which keeps small tiers whole
    enough to measure)."""
    units = sum(t.unit_count for t in scenario.tiers.values())
    return scenario.run.scale * min(1.0, scenario.run.estimation.simulated_lines / max(units, 1))


def estimation_scenario(scenario: Scenario) -> Scenario:
    """The scenario the designed runs simulate: scaled down, capacities lifted."""
    scale = measurement_scale(scenario)
    unlimited = {name: ch.model_copy(update={"capacity_per_month": UNLIMITED}) for name, ch in scenario.channels.items()}
    return scenario.model_copy(update={
        "run": scenario.run.model_copy(update={"scale": scale}),
        "channels": type(scenario.channels)(unlimited),
        "budget": scenario.budget.model_copy(update={"lever_capacity": type(scenario.budget.lever_capacity)()}),
    })


def relaxed_policy(scenario: Scenario) -> Scenario:
    """``scenario`` with one more offer per line allowed in the contact policy's window."""
    policy = scenario.budget.contact_policy
    looser = policy.model_copy(update={"max_offers_per_line": policy.max_offers_per_line + 1})
    return scenario.model_copy(update={"budget": scenario.budget.model_copy(update={"contact_policy": looser})})


def cell_points(gains: dict[Cell, list[pd.DataFrame]]) -> list[dict[str, object]]:
    """Per cell and level: the mean spend, discounted spend, value and retained lines over replications
    (``gains``: per cell, one :func:`sim.valuation.value_retained` row set per level, tagged ``level`` and
    ``allocated``)."""
    rows: list[dict[str, object]] = []
    for cell, per_level in gains.items():
        for g in per_level:
            rows.append({"tier": cell[0], "lever": cell[1], "period": cell[2], "level": float(g.attrs["level"]),
                         "allocated": float(g.attrs["allocated"]), "spend": float(g["spend"].mean()),
                         "discounted_spend": float(g["discounted_spend"].mean()),
                         "value": float(g["value"].mean()), "value_se": _standard_error(g["value"]),
                         "retained_lines": float(g["retained_lines"].mean()),
                         "retained_lines_se": _standard_error(g["retained_lines"])})
    return rows


def fit_curves(points: pd.DataFrame, scenario: Scenario, source: str) -> tuple[dict[Cell, ResponseCurve], pd.DataFrame]:
    """Concave curves through each cell's points (value against the amount allocated), and the points with
    their fitted values and each cell's fit error."""
    curves: dict[Cell, ResponseCurve] = {}
    points = points.sort_values(["tier", "lever", "period", "allocated"], kind="stable", ignore_index=True)
    points["value_fitted"] = np.nan
    points["retained_lines_fitted"] = np.nan
    points["fit_error"] = np.nan
    for cell, group in points.groupby(["tier", "lever", "period"], sort=False):
        spends = group["allocated"].to_numpy()
        value, error = concave_fit(spends, group["value"].to_numpy())
        lines, _ = concave_fit(spends, group["retained_lines"].to_numpy())
        points.loc[group.index, "value_fitted"] = value
        points.loc[group.index, "retained_lines_fitted"] = lines
        points.loc[group.index, "fit_error"] = error
        cost = float(group["discounted_spend"].sum() / group["allocated"].sum())
        curves[cell] = ResponseCurve(*cell, (0.0, *map(float, spends)), (0.0, *map(float, value)), source,
                                     fit_error=error, retained=(0.0, *map(float, lines)), cost=cost)
    return curves, points


STAGE = "response curves"
"""The progress stage of the measurement (a competitor variant's names the variant)."""


def stage_name(variant: str = "") -> str:
    """The progress stage measuring a variant's curves (the scenario's own when ``variant`` is '')."""
    return f"{STAGE} (variant '{variant}')" if variant else STAGE


@dataclass(frozen=True)
class _Design:
    """One scenario's measurement: its stated curves, the cells measured, their ceilings, and the runs."""

    scenario: Scenario
    stated: dict[Cell, ResponseCurve]
    tops: dict[Cell, float]
    plans: list[tuple[tuple[str, str, float] | None, str, Allocation]]
    """(design, variant, allocation): design ``None`` is the run without retention."""


def measured_cells(scenario: Scenario) -> dict[Cell, tuple[float, float]]:
    """The cells the designed runs measure (no stated curve, a ceiling above 0), with their ceiling and
    the spend beyond the contact policy (:func:`beyond_policy`): the design, in money, which is all the
    budget's figures change in a measurement."""
    stated = stated_curves(scenario)
    wanted = [c for c in cells(scenario) if c not in stated]
    tops = {c: ceiling(scenario, c) for c in wanted}
    return {c: (tops[c], beyond_policy(scenario, c)) for c in wanted if tops[c] > 0}


def _design(scenario: Scenario) -> _Design:
    settings = scenario.run.estimation
    measured = measured_cells(scenario)
    tops = {c: top for c, (top, _) in measured.items()}
    wanted = list(measured)
    plans: list[tuple[tuple[str, str, float] | None, str, Allocation]] = [(None, "", Allocation.empty())]
    for lever, period in sorted({(c[1], c[2]) for c in wanted}):
        in_design = [c for c in wanted if c[1] == lever and c[2] == period]
        for level in settings.levels:
            plans.append(((lever, period, level), "", Allocation({c: level * tops[c] for c in in_design})))
        past = {c: measured[c][1] for c in in_design if measured[c][1] > tops[c]}
        if past:
            plans.append(((lever, period, 0.0), RELAXED, Allocation(past)))
    return _Design(scenario, stated_curves(scenario), tops, plans)


def estimate_curves(scenario: Scenario, calibration: Calibration | None = None, *, seed: int | None = None,
                    progress: Progress | None = None, queue_cache: QueueCache | None = None,
                    workers: int = 1) -> CurveEstimate:
    """Curves for every cell: the planner's where stated, measured by designed runs elsewhere.

    The runs share one queue-outcome cache (``queue_cache``, or a new one): they differ in who is
    retained, hardly in how loaded the hotline is, so most contact-center windows are simulated once.
    """
    return estimate_variants({"": scenario}, calibration, seed=seed, progress=progress, queue_cache=queue_cache,
                             workers=workers)[""]


def estimate_variants(scenarios: dict[str, Scenario], calibration: Calibration | None = None, *,
                      seed: int | None = None, progress: Progress | None = None,
                      queue_cache: QueueCache | None = None, workers: int = 1) -> dict[str, CurveEstimate]:
    """:func:`estimate_curves` of several scenarios (competitor variants of one market, by name; '' the
    scenario itself) in one pool of workers, on one calibration (``calibration``, or the first scenario's:
    it is made under reference conditions, without competitors) and one queue-outcome cache. Each
    variant's runs are its own progress stage (:func:`stage_name`)."""
    first = next(iter(scenarios.values()))
    seed = first.run.seed if seed is None else seed
    designs = {name: _design(s) for name, s in scenarios.items()}
    estimates = {name: CurveEstimate(dict(d.stated), pd.DataFrame(columns=POINT_COLUMNS), {}, 0)
                 for name, d in designs.items() if len(d.plans) == 1}
    designs = {name: d for name, d in designs.items() if name not in estimates}
    if not designs:
        return estimates
    if calibration is None:
        calibration = calibrated(first, seed, fan_out=partial(map_replications, workers=workers))
    queues = QueueCache() if queue_cache is None else queue_cache
    keyed: dict[str, Scenario] = {}
    tasks: list[Task] = []
    spans: list[tuple[str, int, int]] = []
    for index, (name, d) in enumerate(designs.items()):
        runs_scenario = estimation_scenario(d.scenario)
        keyed[f"{index}:"], keyed[f"{index}:{RELAXED}"] = runs_scenario, relaxed_policy(runs_scenario)
        # Replication by replication: one worker runs every design of a replication on shared queue windows.
        mine = [Task(f"{index}:{variant}", allocation, r) for r in range(d.scenario.run.estimation.replications)
                for _, variant, allocation in d.plans]
        spans.append((name, len(tasks), len(mine)))
        tasks += mine
    chunk = len(next(iter(designs.values())).plans)
    same_chunks = all(len(d.plans) == chunk for d in designs.values())
    outcomes = simulate_tasks(keyed, tasks, calibration, seed, workers=workers, chunk=chunk if same_chunks else 1,
                              stage=STAGE, progress=_by_variant(progress, spans), queue_cache=queues)
    for name, begin, count in spans:
        estimates[name] = _assemble(designs[name], outcomes[begin:begin + count], calibration)
    return {name: estimates[name] for name in scenarios}


def _by_variant(progress: Progress | None, spans: list[tuple[str, int, int]]) -> Progress | None:
    """The pool's progress (tasks done, in task order) told per variant, each its own stage."""
    if progress is None:
        return None

    def told(_stage: str, done: int, _total: int) -> None:
        for number, (name, begin, count) in enumerate(spans):
            if done == 0 and number == 0 or begin < done <= begin + count:
                progress(stage_name(name), done - begin, count)
                if done == begin + count and number + 1 < len(spans):
                    progress(stage_name(spans[number + 1][0]), 0, spans[number + 1][2])
                return
    return told


def _assemble(design: _Design, outcomes: list[SimulationResult], calibration: Calibration) -> CurveEstimate:
    """The curves of one design from its runs (replication-major, as :func:`estimate_variants` lays them)."""
    scenario, plans, tops = design.scenario, design.plans, design.tops
    results: dict[int, list[SimulationResult]] = {}
    for task_index, outcome in enumerate(outcomes):
        results.setdefault(task_index % len(plans), []).append(outcome)
    reference = SimulationResult.concat(results[0])
    churn = tier_churn(reference, scenario)
    gains: dict[Cell, list[pd.DataFrame]] = {}
    for index, (point, _, allocation) in enumerate(plans):
        if point is None:
            continue
        gain = value_retained(SimulationResult.concat(results[index]), reference, scenario)
        for cell, amount in allocation.amounts.items():
            g = gain.xs(cell[0], level="tier")
            g.attrs.update(level=point[2] if point[2] > 0 else amount / tops[cell], allocated=amount)
            gains.setdefault(cell, []).append(g)
    points = pd.DataFrame(cell_points(gains), columns=POINT_COLUMNS)
    measured, points = fit_curves(points, scenario, "simulated")
    curves = {**design.stated, **measured}
    return CurveEstimate(curves, points, churn, len(outcomes), reference, calibration)


def tier_churn(reference: SimulationResult, scenario: Scenario) -> dict[str, TierChurn]:
    """Each tier's churned lines and line-months over the horizon without retention (means over replications,
    counted as :mod:`sim.valuation` counts them)."""
    per_tier = tier_values(reference, scenario).groupby("tier")[["churned_lines", "line_months"]].mean()
    return {tier: TierChurn(tier, float(row.churned_lines), float(row.line_months)) for tier, row in per_tier.iterrows()}


def _standard_error(x: pd.Series) -> float:
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")
