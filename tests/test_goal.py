"""Goal-seek against a hand-computed case, against bisection on the budget, and its explanations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimize.allocation.curves import ResponseCurve, TierChurn
from optimize.allocation.goal import goal_seek
from optimize.allocation.problem import build_problem
from optimize.allocation.solve import InfeasibleAllocation, solve
from sim.scenario import Scenario, load_scenario

from .conftest import SCENARIOS
from .test_allocation import SOLVERS, eligible_cells, only_budget

VIP = {"vip_gold": TierChurn("vip_gold", churned_lines=108.0, line_months=12_000.0)}  # 0.90% a month


@pytest.fixture(scope="module")
def small() -> Scenario:
    return load_scenario(SCENARIOS / "small.yaml")


def vip_curves() -> dict:
    # H1: 30 lines for the first 10,000 (0.003 a unit), then 20 more for 20,000 (0.001);
    # H2: 20 lines for 10,000 (0.002).
    return {("vip_gold", "bill_credit", "H1"): ResponseCurve("vip_gold", "bill_credit", "H1", (0.0, 10_000.0, 30_000.0),
                                                             (0.0, 20_000.0, 30_000.0), retained=(0.0, 30.0, 50.0)),
            ("vip_gold", "bill_credit", "H2"): ResponseCurve("vip_gold", "bill_credit", "H2", (0.0, 10_000.0),
                                                             (0.0, 15_000.0), retained=(0.0, 20.0))}


@pytest.mark.parametrize("solver", SOLVERS)
def test_the_least_budget_of_a_hand_computed_churn_goal(small: Scenario, solver: str) -> None:
    # 0.50% of 12,000 line-months leaves 60 churners: 48 must be avoided. Cheapest lines first:
    # H1's first 10,000 (30 lines at 0.003), then 18 lines at 0.002 in H2 (9,000): 19,000.
    result = goal_seek(only_budget(small, 1.0), vip_curves(), VIP, tier="vip_gold", max_churn=0.005, solver=solver)
    assert result.status == "Optimal"
    assert result.budget == pytest.approx(19_000.0)
    amounts = result.allocation.set_index("period")["amount"]
    assert amounts["H1"] == pytest.approx(10_000.0) and amounts["H2"] == pytest.approx(9_000.0)
    assert result.retained == pytest.approx(48.0)
    row = result.churn.set_index("tier").loc["vip_gold"]
    assert row["churn_without"] == pytest.approx(0.009)
    assert row["churn_with"] == pytest.approx(0.005)
    assert row["target"] == 0.005
    # One more line avoided costs what the marginal segment charges per line: 1 / 0.002.
    goal = result.constraints.set_index("constraint").loc["churn_goal_vip_gold"]
    assert goal["binding"] and goal["shadow_price"] == pytest.approx(500.0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_goal_already_met_costs_nothing(small: Scenario, solver: str) -> None:
    result = goal_seek(only_budget(small, 1.0), vip_curves(), VIP, max_churn=0.01, solver=solver)
    assert result.budget == pytest.approx(0.0, abs=1e-6)
    assert result.churn.set_index("tier").loc["vip_gold", "churn_with"] == pytest.approx(0.009)


def retained_case(small: Scenario) -> tuple[Scenario, dict]:
    """Value proportional to lines retained in every cell, so the most value is the most lines; with rules."""
    rng = np.random.default_rng(31)
    curves = {}
    for cell in eligible_cells(small):
        k = 8
        widths = rng.uniform(0.2, 1.0, k) * 30_000.0
        per_unit = np.sort(rng.uniform(0.0005, 0.004, k))[::-1]
        spends = np.concatenate([[0.0], np.cumsum(widths)])
        lines = np.concatenate([[0.0], np.cumsum(widths * per_unit)])
        curves[cell] = ResponseCurve(*cell, tuple(spends), tuple(lines * 2_500.0), retained=tuple(lines))
    scenario = only_budget(small, 1.0, "value_within_budget")
    rules = {"lever_capacity": {"bill_credit": 2_500.0}, "per_period": {"H1": 150_000.0, "H2": 400_000.0},
             "tiers": {"prepaid": {"max": 60_000.0}}}
    data = scenario.model_dump(mode="python")
    return Scenario.model_validate({**data, "budget": {**data["budget"], **rules}}), curves


@pytest.mark.parametrize("solver", SOLVERS)
def test_the_goal_budget_is_the_least_budget_bisection_finds(small: Scenario, solver: str) -> None:
    scenario, curves = retained_case(small)
    most = solve(build_problem(scenario, curves, budget=5_000_000.0)).total_retained
    goal = 0.6 * most

    def retained_at(budget: float) -> float:
        return solve(build_problem(scenario, curves, budget=budget)).total_retained

    low, high = 0.0, 5_000_000.0
    for _ in range(60):  # bisection on the frontier's retained lines, to well below a unit of money
        middle = (low + high) / 2
        low, high = (low, middle) if retained_at(middle) >= goal * (1 - 1e-12) else (middle, high)
    result = goal_seek(scenario, curves, {}, min_retained=goal, solver=solver)
    assert result.budget == pytest.approx(high, rel=1e-6)
    assert result.retained == pytest.approx(goal, rel=1e-6)
    # Its allocation keeps every rule of the plan: rerun as an allocation at that budget, it is feasible.
    assert solve(build_problem(scenario, curves, budget=result.budget * (1 + 1e-9))).total_retained == pytest.approx(
        goal, rel=1e-6)


def test_a_churn_goal_for_every_tier_sets_a_target_for_each(small: Scenario) -> None:
    scenario, curves = retained_case(small)
    churn = {"households": TierChurn("households", 1_700.0, 140_000.0), "prepaid": TierChurn("prepaid", 950.0,
                                                                                            70_000.0)}
    result = goal_seek(scenario, curves, churn, max_churn=0.0115)
    table = result.churn.set_index("tier")
    assert (table["target"] == 0.0115).all()
    assert (table["churn_with"] <= 0.0115 + 1e-9).all()
    assert table.loc["households", "churn_with"] == pytest.approx(0.0115, rel=1e-6)  # binding: no line too many


def test_a_goal_beyond_the_curves_is_explained_in_figures(small: Scenario) -> None:
    with pytest.raises(InfeasibleAllocation) as info:
        goal_seek(only_budget(small, 1.0), vip_curves(), VIP, tier="vip_gold", max_churn=0.001)
    # At most 70 lines avoided: (108 - 70) / 12,000 = 0.32% a month.
    assert ("even with every cell of vip_gold funded to its curve's end, churn falls only to 0.32%; "
            "the goal is 0.10%") in str(info.value)


def test_curves_without_lines_are_named(small: Scenario) -> None:
    curves = {c: ResponseCurve(*c, v.spends, v.values) for c, v in vip_curves().items()}
    with pytest.raises(InfeasibleAllocation, match="the response curves of vip_gold give no retained lines"):
        goal_seek(only_budget(small, 1.0), curves, VIP, tier="vip_gold", max_churn=0.005)


def test_a_goal_the_rules_cap_names_the_rules(small: Scenario) -> None:
    scenario = only_budget(small, 1.0)
    capped = scenario.model_copy(update={"budget": scenario.budget.model_copy(
        update={"lever_capacity": {"bill_credit": 250.0}})})
    # 250 offers at 24 per offer is 6,000 a period: 18 lines in H1 and 12 in H2, 30 in all (0.65%).
    with pytest.raises(InfeasibleAllocation) as info:
        goal_seek(capped, vip_curves(), VIP, tier="vip_gold", max_churn=0.005)
    text = str(info.value)
    assert "under the plan's rules" in text and "lever_capacity_bill_credit_H1" in text
    assert "churn of vip_gold falls at most to 0.65%; the goal is 0.50%" in text


def test_goals_that_compete_for_a_shared_rule_are_explained(small: Scenario) -> None:
    scenario, curves = retained_case(small)
    shared = scenario.model_copy(update={"budget": scenario.budget.model_copy(
        update={"per_period": {"H1": 20_000.0, "H2": 20_000.0}})})
    churn = {"households": TierChurn("households", 1_700.0, 140_000.0),
             "vip_gold": TierChurn("vip_gold", 206.0, 12_000.0)}
    goal = 0.0113
    # Each tier's goal is within reach on its own (about 31,000 and 18,000), not both in 40,000.
    alone = [goal_seek(shared, curves, {tier: churn[tier]}, max_churn=goal).budget for tier in churn]
    assert all(b <= 40_000 for b in alone) and sum(alone) > 40_000
    with pytest.raises(InfeasibleAllocation) as info:
        goal_seek(shared, curves, churn, max_churn=goal)
    text = str(info.value)
    assert "each goal can be met alone but not all together" in text and "period_budget" in text


def test_no_goal_is_a_usage_error(small: Scenario) -> None:
    with pytest.raises(ValueError, match="give a goal"):
        goal_seek(only_budget(small, 1.0), vip_curves(), VIP)
    with pytest.raises(InfeasibleAllocation, match="no churn figures for households"):
        goal_seek(only_budget(small, 1.0), vip_curves(), VIP, tier="households", max_churn=0.01)


def _least_spend(scenario: Scenario, max_churn: float, solver: str) -> tuple[float, pd.DataFrame]:
    result = goal_seek(scenario, vip_curves(), VIP, tier="vip_gold", max_churn=max_churn, solver=solver)
    return result.budget, result.constraints.set_index("constraint")


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_period_budget_that_binds_is_worded_as_spend_it_saves(small: Scenario, solver: str) -> None:
    # 30 lines to avoid ((108 - 0.0065 x 12,000). Without a cap H1's first 10,000 buy them at 0.003 a unit.
    # With H1 capped at 5,000: 15 lines there, 15 more in H2 at 0.002 (7,500): 12,500. One unit more in H1
    # buys 0.003 lines, which H2 would sell for 1.5 units: the cap costs 0.5 a unit.
    capped = only_budget(small, 1.0).with_changes({"budget.per_period": {"H1": 5_000.0}})
    spend, rules = _least_spend(capped, 0.0065, solver)
    assert spend == pytest.approx(12_500.0)
    price = rules.loc["period_budget_H1", "shadow_price"]
    assert price == pytest.approx(-0.5)
    # Independently: the goal re-solved with the cap 100 higher spends 50 less.
    looser, _ = _least_spend(capped.with_changes({"budget.per_period.H1": 5_100.0}), 0.0065, solver)
    assert looser - spend == pytest.approx(price * 100.0)
    assert rules.loc["period_budget_H1", "statement"] == (
        f"is binding: 10,000 more budget in H1 would save about 5,000 {small.meta.currency} of spend")


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_tier_minimum_that_binds_is_worded_as_spend_lowering_it_saves(small: Scenario, solver: str) -> None:
    # The goal alone costs 19,000 (the hand-computed case above); a minimum of 25,000 for the tier forces
    # 6,000 more, so each unit of minimum costs one unit of spend.
    floored = only_budget(small, 1.0).with_changes({"budget.tiers": {"vip_gold": {"min": 25_000.0}}})
    spend, rules = _least_spend(floored, 0.005, solver)
    assert spend == pytest.approx(25_000.0)
    price = rules.loc["tier_min_vip_gold", "shadow_price"]
    lower, _ = _least_spend(floored.with_changes({"budget.tiers.vip_gold.min": 24_900.0}), 0.005, solver)
    assert lower - spend == pytest.approx(-100.0) == pytest.approx(price * -100.0)
    assert rules.loc["tier_min_vip_gold", "statement"] == (
        f"is binding: lowering vip_gold's minimum by 10,000 would save about 10,000 {small.meta.currency} of spend")
