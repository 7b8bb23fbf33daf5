"""The closed loop (optimize.run.loop): the plan is simulated, its cells measured in its context, the
allocation solved again until prediction and simulation agree.

Checked: the order a tier's cells are added in; that the in-context curves, added up at the plan's
amounts, give the value the plan was simulated to retain (the sum telescopes, up to the fit's
residuals); that the loop ends with a plan whose prediction agrees with its simulation, or else with
the round that did best; and that the contact policy, where it binds, has a price.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimize.allocation.curves import ResponseCurve
from optimize.allocation.problem import build_problem
from optimize.allocation.solve import solve
from optimize.run.loop import (
    _measure,
    _plan_figures,
    _Runs,
    chain,
    close_the_loop,
    loop_scenario,
)
from optimize.run.measure import estimate_curves
from sim.allocation import Allocation
from sim.engine import prepare
from sim.queue_cache import QueueCache
from sim.scenario import load_scenario

from .conftest import SCENARIOS


@pytest.fixture(scope="module")
def small():  # type: ignore[no-untyped-def]
    scenario = load_scenario(SCENARIOS / "small.yaml")
    quick = scenario.run.estimation.model_copy(update={"levels": (0.25, 1.0), "replications": 2})
    loop = scenario.run.closed_loop.model_copy(update={"replications": 3})
    scenario = scenario.model_copy(update={"run": scenario.run.model_copy(update={"estimation": quick,
                                                                                 "closed_loop": loop})})
    calibration = prepare(scenario, scenario.run.seed)
    return scenario, calibration, estimate_curves(scenario, calibration, workers=2)


def test_a_tiers_cells_are_added_earliest_period_first_then_by_effect_per_offer() -> None:
    scenario = load_scenario(SCENARIOS / "baseline.yaml")
    plan = Allocation({("vip_silver", lever, period): 1.0 for lever in ("bill_credit", "data_bonus", "handset_upgrade",
                                                                        "loyalty_points", "save_desk_discount")
                       for period in ("Y2", "Y1")})
    order = chain(scenario, plan)["vip_silver"]
    assert [c[2] for c in order] == ["Y1"] * 5 + ["Y2"] * 5
    proactive = [c[1] for c in order[:4]]
    effect = [scenario.levers[name].effect_per_offer for name in proactive]
    assert effect == sorted(effect, reverse=True)
    assert order[4][1] == "save_desk_discount"  # the save desk after the proactive levers


def test_curves_in_context_add_up_to_what_the_plan_retains(small) -> None:  # type: ignore[no-untyped-def]
    scenario, calibration, estimate = small
    result = solve(build_problem(scenario, estimate.curves), "highs")
    plan = result.to_allocation()
    assert len(plan.amounts) >= 2
    order = chain(scenario, plan)
    runs = _Runs(loop_scenario(scenario), calibration, scenario.run.seed, 3, 1, None, QueueCache())
    measured = _measure(runs, scenario, order, plan, 1)
    assert set(measured) == set(plan.amounts)
    predicted = sum(measured[c].value_at(a) for c, a in plan.amounts.items())
    residuals = sum(measured[c].fit_error or 0.0 for c in plan.amounts)
    base, whole = runs.get([Allocation.empty(), plan], "check")  # simulated already: no new run
    assert runs.count == 3 * (1 + 2 * max(len(cells) for cells in order.values()))
    value, _ = _plan_figures(whole, base, scenario)
    simulated = float(np.mean(value))
    # The k-th cell's curve at its amount is the plan's first k cells less its first k - 1, so the sum
    # along a tier is the whole plan's value: up to how far the concave fit moved the measured points, and
    # to what the other tiers' later cells change in a tier through the contact center they share (a tier
    # with fewer cells is complete before the last step).
    assert predicted == pytest.approx(simulated, abs=2 * residuals + 1e-3 * abs(simulated))
    for cell, curve in measured.items():
        assert curve.source == "in plan context"
        assert curve.spends[-1] == pytest.approx(max(scenario.run.closed_loop.levels) * plan.amounts[cell])


def test_the_loop_ends_with_a_plan_it_can_vouch_for(small) -> None:  # type: ignore[no-untyped-def]
    scenario, calibration, estimate = small
    loop = close_the_loop(scenario, estimate.curves, calibration, scenario.run.seed, workers=2)
    rounds = loop.rounds
    assert 1 <= len(rounds) <= scenario.run.closed_loop.rounds
    assert rounds["chosen"].sum() == 1
    chosen = rounds[rounds["chosen"]].iloc[0]
    if rounds["agrees"].any():
        # It stops at the first round whose prediction agrees, and keeps that plan.
        assert rounds["agrees"].iloc[-1] and not rounds["agrees"].iloc[:-1].any()
        assert chosen["round"] == rounds["round"].iloc[-1]
        assert abs(chosen["predicted_value"] - chosen["simulated_value"]) <= scenario.run.closed_loop.tolerance * abs(
            chosen["simulated_value"])
    else:
        assert chosen["simulated_net_value"] == rounds["simulated_net_value"].max()
    assert rounds["runs"].sum() == loop.runs
    # The first round's plan is the one-cell-at-a-time plan; the gain over it is paired by replication.
    assert rounds["net_gain_over_first"].iloc[0] == 0.0
    first = solve(build_problem(scenario, estimate.curves), "highs")
    np.testing.assert_allclose(loop.first.allocation["amount"], first.allocation["amount"])
    for row in rounds.itertuples():
        assert row.gain_ci_low <= row.net_gain_over_first <= row.gain_ci_high


def test_a_binding_contact_policy_has_a_price(small) -> None:  # type: ignore[no-untyped-def]
    # One cell whose curve runs past what the policy allows (measured one offer per line looser): with a
    # budget to spare the policy binds, and its price is what the next segment would add per offer.
    scenario, _, _ = small
    cell = ("households", "bill_credit", "H1")
    cost = scenario.levers["bill_credit"].cost_per_offer(scenario.tiers["households"])
    allowed = scenario.tiers["households"].unit_count * 6 / 6
    curve = ResponseCurve(*cell, (0.0, allowed * cost, 2 * allowed * cost), (0.0, 3 * allowed * cost,
                                                                             4.5 * allowed * cost), cost=0.9)
    budget = scenario.budget.model_copy(update={"total": 10 * allowed * cost, "per_period": {}})
    result = solve(build_problem(scenario.model_copy(update={"budget": budget}), {cell: curve}), "highs")
    row = result.constraints.set_index("constraint").loc["contact_policy_households_H1"]
    assert row["binding"]
    assert row["shadow_price"] == pytest.approx((1.5 - 0.9) * cost)
    assert "allowing one more offer to households in H1" in row["statement"]


def test_a_rule_at_its_limit_without_a_price_is_not_said_to_hold_the_plan_back() -> None:
    # A degenerate optimum: the contact policy is met exactly, but the curve stops paying at the same
    # point, so its shadow price is 0. Loosening it changes nothing: the report does not list it among
    # the rules worth loosening, and its statement says so instead of "would add about 0".
    from types import SimpleNamespace

    from optimize.allocation.solve import statement
    from optimize.outputs.headline import binding_rules

    said = statement("contact_policy", ("key_a", "Y1"), 0.0, True, "CNY")
    assert said == "at its limit, but worth nothing at the margin: allowing one more offer to key_a in Y1 would change nothing"
    assert statement("contact_policy", ("key_a", "Y1"), 12.5, True, "CNY") == \
        "is binding: allowing one more offer to key_a in Y1 would add about 12 CNY of objective"
    prices = pd.DataFrame({
        "constraint": ["budget", "period_budget_Y1", "contact_policy_key_a_Y1", "contact_policy_key_b_Y1", "definition_1"],
        "kind": ["budget", "period_budget", "contact_policy", "contact_policy", "definition"],
        "shadow_price": [0.0, 0.19, 0.0, 3.0, 5.0], "binding": [False, True, True, False, True]})
    rules = binding_rules(SimpleNamespace(plan=SimpleNamespace(shadow_prices=prices)))
    assert rules["constraint"].tolist() == ["period_budget_Y1"]
