"""Whom each targeting rule contacts, and what it earns: profit by depth of contact.

A planner choosing a targeting rule asks two questions per tier: which rule earns most, and how deep
into the ranked list it is worth going. The profit-based literature on churn models answers both with
a profit curve: rank the customers by the rule, contact the first share *s* of them, and add up what
each contact brings (the value of the churn it avoids, less the backfire of a decline and the offer's
cost). The curve's peak is the **maximum profit** and its abscissa the **best depth**; since the share
who accept is itself uncertain, the **expected maximum profit** (EMP) averages the peak over a law of
the acceptance rate (Verbraken, Verbeke and Baesens 2013, "A novel profit maximizing metric for
measuring classification performance of customer churn prediction models", IEEE TKDE 25(5), who take
a Beta law of the acceptance rate with α + β = 20).

Here each unit's figures come from the simulator at the start of month 1, on the base the response
curves are measured on (:meth:`sim.engine.Simulation.targeting_figures`): its true uplift (what an
accepted offer avoids, what a decline harms; :mod:`sim.uplift`), what it is worth kept
(:func:`sim.valuation.value_of_a_line_kept`, one definition for every table), and what each rule ranks
it by: ``risk`` (the churn model of the scenario's AUC), ``uplift`` (the uplift model of the scenario's
accuracy), ``value`` (that uplift times the value kept, less the offer's cost, as the simulator's
``value`` policy ranks) and ``oracle`` (the true incremental value: the bound no rule passes). A unit's
profit is linear in the acceptance rate *a*: a·(avoided·value − acceptance cost) − (1 − a)·harmed·value
− contact cost, so the curve at any *a* is one cumulative sum over the rule's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.allocation import Allocation
from sim.engine import Calibration, Simulation, TargetingFigures
from sim.scenario import Scenario
from sim.uplift import shifted_acceptance

RULES = ("risk", "uplift", "value", "oracle")
"""Every rule the table compares; ``oracle`` knows each unit's true uplift (an upper bound)."""
ACCEPTANCE_CONCENTRATION = 20.0
"""α + β of the acceptance rate's Beta law around the lever's stated rate (Verbraken et al.: Beta(6, 14))."""
ACCEPTANCE_POINTS = 40
"""Points of the acceptance rate's law the expected maximum profit is averaged over (midpoints of equal
widths, weighted by the density)."""
CURVE_POINTS = 41
"""Depths (0%, 2.5%, ..., 100% of the eligible units) at which each rule's profit curve is written."""


@dataclass(frozen=True)
class RuleProfit:
    """One rule's profit curve for one tier and lever, at the lever's stated acceptance and over its law."""

    cumulative: np.ndarray
    """Profit of contacting the first k units, k = 0..n (per simulated unit; scale by the weight)."""
    max_profit: float
    best_depth: int
    expected_max_profit: float
    expected_best_depth: float


def acceptance_law(mean: float, concentration: float = ACCEPTANCE_CONCENTRATION,
                   points: int = ACCEPTANCE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Acceptance rates and their weights: a Beta law of mean ``mean`` and α + β = ``concentration``,
    on the midpoints of ``points`` equal intervals of (0, 1). A stated rate of 0 or 1 is certain."""
    if mean <= 0.0 or mean >= 1.0:
        return np.array([mean]), np.array([1.0])
    alpha, beta = mean * concentration, (1.0 - mean) * concentration
    rates = (np.arange(points) + 0.5) / points
    log_density = (alpha - 1.0) * np.log(rates) + (beta - 1.0) * np.log1p(-rates)
    weights = np.exp(log_density - log_density.max())
    return rates, weights / weights.sum()


def acceptances(figures: TargetingFigures, rate: float) -> float | np.ndarray:
    """The acceptance rate ``rate`` of a line of average risk, or each unit's own where it varies with risk."""
    return shifted_acceptance(rate, figures.acceptance_shift)


def unit_profit(figures: TargetingFigures, acceptance: float) -> np.ndarray:
    """What contacting each unit brings at acceptance rate ``acceptance`` (today's money); where acceptance
    varies with risk, each unit's rate is moved from it by its own shift on the log-odds scale."""
    a = acceptances(figures, acceptance)
    return (a * (figures.avoided * figures.kept_value - figures.acceptance_cost)
            - (1.0 - a) * figures.harmed * figures.kept_value - figures.contact_cost)


def rule_order(figures: TargetingFigures, rule: str) -> np.ndarray:
    """The units in the order ``rule`` contacts them, best first (equal scores in row order)."""
    a = acceptances(figures, figures.acceptance)
    cost = figures.contact_cost + a * figures.acceptance_cost
    if rule == "risk":
        score = figures.risk_score
    elif rule == "uplift":
        score = figures.uplift_score
    elif rule == "value":
        score = figures.uplift_score * figures.kept_value - cost
    elif rule == "oracle":
        score = unit_profit(figures, a)
    else:
        raise ValueError(f"unknown targeting rule {rule!r}; the rules are {', '.join(RULES)}")
    return np.argsort(-score, kind="stable")


def rule_profit(figures: TargetingFigures, rule: str) -> RuleProfit:
    """``rule``'s profit curve, its maximum and best depth, and their expectation over the acceptance law."""
    order = rule_order(figures, rule)
    cumulative = np.concatenate([[0.0], np.cumsum(unit_profit(figures, figures.acceptance)[order])])
    best = int(np.argmax(cumulative))
    rates, weights = acceptance_law(figures.acceptance)
    peaks, depths = [], []
    for rate in rates:
        curve = np.concatenate([[0.0], np.cumsum(unit_profit(figures, float(rate))[order])])
        depths.append(int(np.argmax(curve)))
        peaks.append(float(curve[depths[-1]]))
    return RuleProfit(cumulative, float(cumulative[best]), best, float(np.dot(weights, peaks)),
                      float(np.dot(weights, depths)))


def targeting_pairs(scenario: Scenario) -> list[tuple[str, str]]:
    """Every tier and proactive lever that may reach it, in the order of their names."""
    return [(tier, lever) for tier in sorted(scenario.tiers) for lever in sorted(scenario.levers)
            if scenario.levers[lever].proactive and scenario.levers[lever].reaches(tier)]


def targeting_rules(scenario: Scenario, calibration: Calibration, seed: int,
                    simulated_units: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per tier, proactive lever and rule: the profit table and the profit curves by depth of contact.

    Read on a base of about ``simulated_units`` units (by default the response curves'), scaled back to
    real units: a unit's figures do not depend on how many are simulated."""
    units = sum(t.unit_count for t in scenario.tiers.values())
    wanted = simulated_units or scenario.run.estimation.simulated_lines
    scale = min(1.0, wanted / max(units, 1))
    scaled = scenario.model_copy(update={"run": scenario.run.model_copy(update={"scale": scale})})
    simulation = Simulation(scaled, Allocation.empty(), calibration, seed, 0)
    rows, curves = [], []
    depths = np.linspace(0.0, 1.0, CURVE_POINTS)
    for tier, lever in targeting_pairs(scenario):
        figures = simulation.targeting_figures(tier, lever)
        n = figures.avoided.size
        if n == 0:
            continue
        w = figures.weight
        for rule in RULES:
            profit = rule_profit(figures, rule)
            contacted = profit.best_depth
            rows.append({
                "tier": tier, "lever": lever, "rule": rule, "eligible": n * w,
                "best_depth": contacted / n, "contacted": contacted * w,
                "profit_per_contact": profit.max_profit / contacted if contacted else 0.0,
                "max_profit": profit.max_profit * w,
                "expected_max_profit": profit.expected_max_profit * w,
                "expected_best_depth": profit.expected_best_depth / n,
            })
            at = np.minimum(np.round(depths * n).astype(int), n)
            curves.extend({"tier": tier, "lever": lever, "rule": rule, "depth": float(d),
                           "profit": float(profit.cumulative[k] * w)} for d, k in zip(depths, at))
    return pd.DataFrame(rows), pd.DataFrame(curves)


def best_rule(table: pd.DataFrame) -> pd.DataFrame:
    """Per tier and lever, the rule (the oracle aside) with the highest expected maximum profit."""
    real = table[table["rule"] != "oracle"]
    if real.empty:
        return real
    index = real.groupby(["tier", "lever"], sort=True)["expected_max_profit"].idxmax()
    return real.loc[index].reset_index(drop=True)


__all__ = ["RULES", "RuleProfit", "acceptance_law", "best_rule", "rule_order", "rule_profit", "targeting_pairs",
           "targeting_rules", "unit_profit"]
