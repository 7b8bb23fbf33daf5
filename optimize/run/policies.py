"""Choosing each lever's targeting policy from measured response curves.

A lever's offers may choose their lines by risk, by uplift or by value (``targeting.policy``, a lever's
own ``policy``; :mod:`sim.uplift`). Which pays depends on the market: where the riskiest lines respond
least, uplift; where response grows with risk, risk. :func:`choose_policies` measures every cell's curve
under each candidate policy and gives each lever the policy whose cells promise the most: the sum over
its cells of the best its curve earns above its cost (the largest value less discounted spend along the
curve, what the cell could bring funded alone); where no candidate earns above its cost, the one whose
measured value at the cells' largest amounts is highest (the one that harms least, or helps most). Curves are measured one lever and period at a time
(:func:`optimize.run.measure.estimate_curves`), so a lever's curves under a policy do not depend on the
other levers' policies: the chosen curves are exactly those of the chosen scenario, and the allocation
is then solved on them as usual (:func:`optimize.run.plan.plan_allocation`).

The choice is per lever, for all its tiers and periods, as the simulator applies it; the runs without
retention the curves are paired with do not depend on any policy, so every policy's curves are read
against the same reference. Levers whose ``policy`` the scenario states keep it.

    from optimize.run.policies import choose_policies
    from optimize.run.plan import plan_allocation

    choice = choose_policies(scenario, ("risk", "uplift"))
    plan = plan_allocation(choice.scenario, estimate=choice.estimate)   # plan.allocation has the policy per cell
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from sim.scenario import Scenario

from ..allocation.curves import ResponseCurve
from .measure import CurveEstimate, Progress, estimate_curves

POLICIES = ("risk", "uplift", "value")


@dataclass(frozen=True)
class PolicyChoice:
    """The scenario with each lever's chosen policy, its curves, and what each candidate promised."""

    scenario: Scenario
    estimate: CurveEstimate
    table: pd.DataFrame
    """Per lever and candidate policy: the cells' summed best net value and measured value at their largest
    amounts, and whether it was chosen."""


def best_net_value(curve: ResponseCurve) -> float:
    """The most a curve earns above its cost: the largest value less the cost of the amount (0 at zero)."""
    return max(value - curve.cost * spend for spend, value in zip(curve.spends, curve.values))


def value_at_ceiling(points: pd.DataFrame, lever: str) -> float:
    """The measured value retained (not fitted: it may be below zero) of ``lever``'s cells at the largest
    amount each was measured at, summed: which policy harms least when none earns above its cost (a
    curve whose offers only backfire is fitted flat at zero, which would hide by how much)."""
    mine = points[points["lever"] == lever]
    if mine.empty:
        return 0.0
    largest = mine.loc[mine.groupby(["tier", "period"])["allocated"].idxmax()]
    return float(largest["value"].sum())


def choose_policies(scenario: Scenario, candidates: Sequence[str] = ("risk", "uplift"), *, seed: int | None = None,
                    progress: Progress | None = None, workers: int = 1) -> PolicyChoice:
    """Each proactive lever's policy among ``candidates`` (ties go to the first listed), from curves measured
    under each; levers with a stated ``policy`` and save-desk levers keep theirs."""
    unknown = [c for c in candidates if c not in POLICIES]
    if unknown or not candidates:
        raise ValueError(f"candidate policies must be some of {', '.join(POLICIES)}; got {', '.join(candidates)}")
    open_levers = [name for name, lever in scenario.levers.items() if lever.proactive and lever.policy is None]
    estimates: dict[str, CurveEstimate] = {}
    calibration = None
    for policy in candidates:
        variant = scenario.model_copy(update={"targeting": scenario.targeting.model_copy(update={"policy": policy})})
        estimates[policy] = estimate_curves(variant, calibration, seed=seed, progress=progress, workers=workers)
        calibration = calibration or estimates[policy].calibration  # calibration does not depend on the policy
    rows = []
    chosen: dict[str, str] = {}
    for lever in open_levers:
        promised = {policy: sum(best_net_value(curve) for cell, curve in estimates[policy].curves.items()
                                if cell[1] == lever) for policy in candidates}
        at_ceiling = {policy: value_at_ceiling(estimates[policy].points, lever) for policy in candidates}
        best = max(candidates, key=lambda p: (promised[p], at_ceiling[p], -candidates.index(p)))
        chosen[lever] = best
        rows += [{"lever": lever, "policy": p, "best_net_value": promised[p], "value_at_ceiling": at_ceiling[p],
                  "chosen": p == best} for p in candidates]
    levers = {name: lever.model_copy(update={"policy": chosen[name]}) if name in chosen else lever
              for name, lever in scenario.levers.items()}
    final = scenario.model_copy(update={"levers": type(scenario.levers)(levers)})
    first = estimates[candidates[0]]
    # Each cell's curve and measured points from the estimate of its lever's policy.
    curves = {cell: estimates[chosen.get(cell[1], candidates[0])].curves[cell] for cell in first.curves}
    points = [estimates[policy].points[estimates[policy].points["lever"].isin(
        [lv for lv in scenario.levers if chosen.get(lv, candidates[0]) == policy])] for policy in candidates]
    merged = CurveEstimate(curves, pd.concat(points, ignore_index=True) if points else first.points, first.churn,
                           sum(e.runs for e in estimates.values()), first.reference, first.calibration)
    return PolicyChoice(final, merged, pd.DataFrame(rows, columns=["lever", "policy", "best_net_value",
                                                                  "value_at_ceiling", "chosen"]))
