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
  ceiling. Tiers decide separately, so one run measures all of them; periods are measured
  apart because money spent early changes the lines later periods see. Channel and lever
  capacities are lifted in these runs (the allocation enforces them as constraints, so the
  curve describes the cell alone). Each run is paired with a run without retention on the
  same random numbers (same seed and replication), over ``run.estimation.replications``.
  The runs simulate about ``run.estimation.simulated_lines`` units; results are in real lines.
* **Value.** For a tier in a run, with the monthly discount factor
  ``d = (1 + r)^(-1/12)`` (``r`` = ``meta.discount_rate_annual``), horizon ``H`` and
  ``T`` = ``meta.terminal_value_months``:

  ``value = sum_m d^m * margin_m  +  d^H * lines_end * (margin_H / lines_H) * sum_{k=1..T} d^k``

  where ``margin_m`` is the tier's margin in month ``m`` (lines billed x ARPU x (price paid
  - (1 - margin rate))), ``lines_H`` the lines billed in the last month and ``lines_end`` the
  lines active after it. Retention spend is *not* subtracted: the allocation does that for
  the ``net_value`` objective. A cell's value at a level is the mean over replications of
  the paired difference ``value(funded) - value(no retention)``; its *retained lines* are
  the paired difference in lines that left over the horizon.
* **Fit.** :func:`optimize.curves.concave_fit` (least squares over concave, non-decreasing
  curves through the origin) is applied to the value points and, separately, to the retained
  lines; the root-mean-square gap of the value fit is the curve's ``fit_error``. Each point's
  standard error over replications is reported beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.allocation import Allocation, Cell
from sim.engine import Calibration, prepare
from sim.queue_cache import QueueCache
from sim.results import SimulationResult
from sim.runner import Progress
from sim.scenario import Scenario

from .curves import ResponseCurve, TierChurn, concave_fit, stated_curves
from .parallel import Task, simulate_tasks

UNLIMITED = 1e15
"""A channel capacity no run reaches (a finite number: offer limits are counted in whole offers)."""
SAVE_DESK_HEADROOM = 1.5
"""Save-desk ceilings allow for half again the stated churn: under pressure more lines ask to leave."""


@dataclass(frozen=True)
class CurveEstimate:
    """The curves an allocation uses, how they were measured, and churn without retention."""

    curves: dict[Cell, ResponseCurve]
    """Every cell's curve: the planner's where stated, otherwise measured."""
    points: pd.DataFrame
    """Per measured cell and level: spend, measured and fitted value and retained lines, their errors."""
    churn: dict[str, TierChurn]
    """Each tier's churn over the horizon with no retention spend (from the paired base runs)."""
    runs: int
    """Simulation runs made (0 when every curve is stated)."""


def cells(scenario: Scenario) -> list[Cell]:
    """Every (tier, lever, period) where the lever may be offered to the tier."""
    return [(tier, name, period.name) for name, lever in scenario.levers.items()
            for tier in scenario.tiers if not lever.tiers or tier in lever.tiers
            for period in scenario.meta.periods]


def ceiling(scenario: Scenario, cell: Cell) -> float:
    """The most a cell could sensibly spend (see the module's description)."""
    tier_name, lever_name, period_name = cell
    tier, lever = scenario.tiers[tier_name], scenario.levers[lever_name]
    months = next(p.months for p in scenario.meta.periods if p.name == period_name)
    cost = lever.cost_per_offer(int(tier.lines_per_account or 1))
    if cost <= 0:
        return 0.0
    policy = scenario.budget.contact_policy
    offers = 0.0
    if lever.mode != "save_desk":
        offers += tier.unit_count * policy.max_offers_per_line * months / policy.per_months
    if lever.mode != "proactive":
        asking = tier.unit_count * tier.baseline_churn * months * scenario.targeting.save_desk_reach
        offers += asking * SAVE_DESK_HEADROOM
    offers = min(offers, scenario.channels[lever.channel].capacity_per_month * months)
    if lever_name in scenario.budget.lever_capacity:
        offers = min(offers, scenario.budget.lever_capacity[lever_name])
    money = [offers * cost, scenario.budget.total]
    if period_name in scenario.budget.per_period:
        money.append(scenario.budget.per_period[period_name])
    bound = scenario.budget.tiers.get(tier_name)
    if bound is not None and bound.max is not None:
        money.append(bound.max)
    return max(0.0, min(money))


def estimation_scenario(scenario: Scenario) -> Scenario:
    """The scenario the designed runs simulate: scaled down, capacities lifted."""
    settings = scenario.run.estimation
    units = sum(t.unit_count for t in scenario.tiers.values())
    scale = min(1.0, settings.simulated_lines / max(units, 1))
    unlimited = {name: ch.model_copy(update={"capacity_per_month": UNLIMITED}) for name, ch in scenario.channels.items()}
    return scenario.model_copy(update={
        "run": scenario.run.model_copy(update={"scale": scale}),
        "channels": type(scenario.channels)(unlimited),
        "budget": scenario.budget.model_copy(update={"lever_capacity": type(scenario.budget.lever_capacity)()}),
    })


def churn_paths(result: SimulationResult) -> pd.DataFrame:
    """Per replication, tier and month: lines billed, margin, and the lines expected to leave.

    Expected leavers are the month's churn hazards summed over the lines billed, less the
    lines the save desk kept: the same expectation as the lines that leave, without the
    noise of the month's churn draws.
    """
    m = result.monthly
    per_unit = (m["lines_start"] / m["units_start"].where(m["units_start"] > 0)).fillna(0.0)
    leaving = m["expected_churn"] * m["lines_start"] - m["saves"] * per_unit
    return pd.DataFrame({"replication": m["replication"], "tier": m["tier"], "month": m["month"],
                         "lines": m["lines_start"], "margin": m["margin"], "expected_leavers": leaving}
                        ).set_index(["replication", "tier", "month"]).sort_index()


def retained_value(base: pd.DataFrame, funded: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """Per replication and tier: value retained and churners avoided by ``funded`` over ``base``.

    Both are :func:`churn_paths` of runs on the same random numbers. Lines kept in month j
    are billed from month j + 1 at the base run's margin per line; lines still kept at the
    horizon earn ``terminal_value_months`` more months (see the module's description).
    """
    meta = scenario.meta
    d = 1.0 / (1.0 + meta.monthly_discount_rate)
    avoided = (base["expected_leavers"] - funded["expected_leavers"]).rename("avoided")
    frame = pd.DataFrame({"avoided": avoided,
                          "per_line": (base["margin"] / base["lines"].where(base["lines"] > 0)).fillna(0.0)})
    groups = frame.groupby(level=["replication", "tier"], sort=False)
    kept_before = groups["avoided"].cumsum() - frame["avoided"]
    month = frame.index.get_level_values("month").to_numpy(dtype=float)
    in_horizon = (kept_before * frame["per_line"] * d ** month).groupby(level=["replication", "tier"]).sum()
    last = frame.groupby(level=["replication", "tier"]).tail(1)
    horizon = float(last.index.get_level_values("month").max())
    annuity = sum(d ** k for k in range(1, meta.terminal_value_months + 1))
    retained = groups["avoided"].sum()
    terminal = (retained * last["per_line"].droplevel("month")) * d ** horizon * annuity
    return pd.DataFrame({"value": in_horizon + terminal, "retained_lines": retained})


def estimate_curves(scenario: Scenario, calibration: Calibration | None = None, *, seed: int | None = None,
                    progress: Progress | None = None, queue_cache: QueueCache | None = None,
                    workers: int = 1) -> CurveEstimate:
    """Curves for every cell: the planner's where stated, measured by designed runs elsewhere.

    The runs share one queue-outcome cache (``queue_cache``, or a new one): they differ in who is
    retained, hardly in how loaded the hotline is, so most contact-center windows are simulated once.
    """
    seed = scenario.run.seed if seed is None else seed
    settings = scenario.run.estimation
    stated = stated_curves(scenario)
    wanted = [c for c in cells(scenario) if c not in stated]
    tops = {c: ceiling(scenario, c) for c in wanted}
    wanted = [c for c in wanted if tops[c] > 0]
    designs = sorted({(c[1], c[2]) for c in wanted}, key=lambda lp: (list(scenario.levers).index(lp[0]), lp[1]))
    total_runs = settings.replications * (1 + len(designs) * len(settings.levels))
    if calibration is None:
        calibration = prepare(scenario, seed)
    runs_scenario = estimation_scenario(scenario)
    queues = QueueCache() if queue_cache is None else queue_cache

    base_allocation = Allocation.empty()
    plans: list[tuple[tuple[str, str, float] | None, Allocation]] = [(None, base_allocation)]
    for lever, period in designs:
        in_design = [c for c in wanted if c[1] == lever and c[2] == period]
        for level in settings.levels:
            plans.append(((lever, period, level), Allocation({c: level * tops[c] for c in in_design})))
    # Replication by replication: one worker runs every design of a replication on shared queue windows.
    tasks = [Task("", allocation, r) for r in range(settings.replications) for _, allocation in plans]
    outcomes = simulate_tasks({"": runs_scenario}, tasks, calibration, seed, workers=workers, chunk=len(plans),
                              stage="estimating response curves", progress=progress, queue_cache=queues)
    paths: dict[tuple[str, str, float] | None, list[pd.DataFrame]] = {}
    for task_index, outcome in enumerate(outcomes):
        design = plans[task_index % len(plans)][0]
        paths.setdefault(design, []).append(churn_paths(outcome))
    base = pd.concat(paths[None])
    per_tier = base.groupby(level=["replication", "tier"]).agg(leavers=("expected_leavers", "sum"),
                                                               line_months=("lines", "sum"))
    churn = {tier: TierChurn(tier, float(g["leavers"].mean()), float(g["line_months"].mean()))
             for tier, g in per_tier.groupby(level="tier")}
    measured: list[dict[str, object]] = []
    for design, allocation in plans[1:]:
        assert design is not None
        lever, period, level = design
        gain = retained_value(base, pd.concat(paths[design]), scenario)
        for cell in allocation.amounts:
            g = gain.xs(cell[0], level="tier")
            measured.append({"tier": cell[0], "lever": lever, "period": period, "level": level,
                             "spend": level * tops[cell], "value": float(g["value"].mean()),
                             "value_se": _standard_error(g["value"]),
                             "retained_lines": float(g["retained_lines"].mean()),
                             "retained_lines_se": _standard_error(g["retained_lines"])})
    points = pd.DataFrame(measured, columns=["tier", "lever", "period", "level", "spend", "value", "value_se",
                                             "retained_lines", "retained_lines_se"])
    curves = dict(stated)
    points["value_fitted"] = np.nan
    points["retained_lines_fitted"] = np.nan
    points["fit_error"] = np.nan
    for cell, group in points.groupby(["tier", "lever", "period"], sort=False):
        spends = group["spend"].to_numpy()
        value, error = concave_fit(spends, group["value"].to_numpy())
        lines, _ = concave_fit(spends, group["retained_lines"].to_numpy())
        points.loc[group.index, "value_fitted"] = value
        points.loc[group.index, "retained_lines_fitted"] = lines
        points.loc[group.index, "fit_error"] = error
        curves[cell] = ResponseCurve(*cell, (0.0, *map(float, spends)), (0.0, *map(float, value)), "simulated",
                                     fit_error=error, retained=(0.0, *map(float, lines)))
    points = points.sort_values(["tier", "lever", "period", "level"], kind="stable", ignore_index=True)
    return CurveEstimate(curves, points, churn, total_runs)


def _standard_error(x: pd.Series) -> float:
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")
