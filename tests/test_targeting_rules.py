"""Profit of each targeting rule by depth of contact, against hand-computed curves, an independent
integral of the expected maximum profit, and the bounds and signs the model implies."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from optimize.run.targeting_rules import acceptance_law, rule_profit, targeting_rules
from sim.engine import TargetingFigures, prepare
from sim.scenario import load_scenario

from .conftest import SCENARIOS


def figures(avoided, harmed, kept, risk, uplift, acceptance=0.5, contact=1.0, accepted=4.0) -> TargetingFigures:
    return TargetingFigures(tier="t", lever="offer", acceptance=acceptance, risk_score=np.array(risk, float),
                            uplift_score=np.array(uplift, float), avoided=np.array(avoided, float),
                            harmed=np.array(harmed, float), kept_value=np.array(kept, float), contact_cost=contact,
                            acceptance_cost=accepted, weight=1.0)


def test_the_acceptance_law_has_the_stated_mean_and_the_betas_spread() -> None:
    for mean in (0.1, 0.3, 0.45, 0.8):
        rates, weights = acceptance_law(mean)
        assert weights.sum() == pytest.approx(1.0)
        assert np.dot(weights, rates) == pytest.approx(mean, abs=2e-3)
        variance = np.dot(weights, (rates - mean) ** 2)
        assert variance == pytest.approx(mean * (1 - mean) / 21.0, rel=0.05)  # Beta with α + β = 20


def test_profit_curves_by_hand() -> None:
    # Four lines worth 100 kept; an offer costs 1 a contact and 4 an acceptance, half accept. Line profits:
    # 0.5 * (avoided * 100 - 4) - 0.5 * harmed * 100 - 1.
    f = figures(avoided=[0.2, 0.05, 0.0, 0.1], harmed=[0.0, 0.0, 0.04, 0.0], kept=[100] * 4,
                risk=[0.9, 0.1, 0.8, 0.2], uplift=[0.3, 0.1, -0.2, 0.05])
    per_line = [0.5 * (20 - 4) - 1, 0.5 * (5 - 4) - 1, -0.5 * 4 - 0.5 * 4 - 1, 0.5 * (10 - 4) - 1]  # 7, -0.5, -5, 2
    risk = rule_profit(f, "risk")  # order 0, 2, 3, 1
    assert risk.cumulative == pytest.approx(np.cumsum([0, per_line[0], per_line[2], per_line[3], per_line[1]]))
    assert (risk.best_depth, risk.max_profit) == (1, pytest.approx(7.0))
    uplift = rule_profit(f, "uplift")  # order 0, 1, 3, 2
    assert uplift.cumulative == pytest.approx(np.cumsum([0, 7, -0.5, 2, -5]))
    assert (uplift.best_depth, uplift.max_profit) == (3, pytest.approx(8.5))
    oracle = rule_profit(f, "oracle")  # order 0, 3, 1, 2
    assert (oracle.best_depth, oracle.max_profit) == (2, pytest.approx(9.0))
    # Every rule contacts the same lines at full depth.
    assert risk.cumulative[-1] == pytest.approx(uplift.cumulative[-1]) == pytest.approx(oracle.cumulative[-1])


def test_expected_maximum_profit_against_an_independent_integral() -> None:
    # One line: profit(a) = a * (0.1 * 100 - 4) - (1 - a) * 0.02 * 100 - 1 = 8a - 3, worth contacting when
    # a > 3/8. Its expected maximum profit is E[max(0, 8a - 3)] under Beta(20 m, 20 (1 - m)).
    for mean in (0.25, 0.4):
        f = figures(avoided=[0.1], harmed=[0.02], kept=[100], risk=[1], uplift=[1], acceptance=mean)
        law = stats.beta(20 * mean, 20 * (1 - mean))
        exact, _ = integrate.quad(lambda a: max(0.0, 8 * a - 3) * law.pdf(a), 0, 1, points=[3 / 8], limit=200)
        assert rule_profit(f, "risk").expected_max_profit == pytest.approx(exact, rel=0.02, abs=1e-3)


@pytest.fixture(scope="module")
def small_rules():
    scenario = load_scenario(SCENARIOS / "small.yaml")
    return targeting_rules(scenario, prepare(scenario, 7), 7)


def test_no_rule_beats_the_oracle_and_all_reach_the_same_lines(small_rules) -> None:
    table, curves = small_rules
    for (tier, lever), rows in table.groupby(["tier", "lever"]):
        best = rows.set_index("rule")["max_profit"]
        assert (best <= best["oracle"] + 1e-6).all(), (tier, lever)
        ends = curves[(curves["tier"] == tier) & (curves["lever"] == lever) & (curves["depth"] == 1.0)]["profit"]
        assert np.ptp(ends.to_numpy()) < 1e-6 * max(1.0, abs(ends).max())
        assert rows["eligible"].nunique() == 1


def test_where_response_grows_with_risk_the_churn_model_targets_best(small_rules) -> None:
    # small.yaml: every line responds alike, so the churn a data bonus avoids grows with risk: a churn
    # model of AUC 0.75 ranks by it better than an uplift model of correlation 0.4.
    table, _ = small_rules
    rows = table[(table["tier"] == "households") & (table["lever"] == "data_bonus")].set_index("rule")
    assert rows.loc["risk", "max_profit"] > rows.loc["uplift", "max_profit"] > 0


def test_in_the_futility_market_risk_targeting_loses_most_at_every_depth() -> None:
    scenario = load_scenario(SCENARIOS / "futility.yaml")
    _, curves = targeting_rules(scenario, prepare(scenario, scenario.run.seed), scenario.run.seed)
    mine = curves[(curves["tier"] == "households") & (curves["lever"] == "bill_credit")]
    risk = mine[mine["rule"] == "risk"].set_index("depth")["profit"]
    uplift = mine[mine["rule"] == "uplift"].set_index("depth")["profit"]
    inside = (risk.index > 0) & (risk.index < 1)
    assert (risk[inside] < uplift[inside]).all()


def test_a_line_keener_to_accept_costs_and_keeps_more() -> None:
    # acceptance 0.5 for an average line; one line's log-odds of accepting moved by +ln 3 (it accepts with
    # 0.75), another's by -ln 3 (0.25). Profit 0.75 * (0.2 * 100 - 4) - 1 = 11 and 0.25 * 16 - 1 = 3.
    f = figures(avoided=[0.2, 0.2], harmed=[0.0, 0.0], kept=[100, 100], risk=[1, 0], uplift=[1, 0])
    shifted = TargetingFigures(**{**f.__dict__, "acceptance_shift": np.array([np.log(3.0), -np.log(3.0)])})
    assert rule_profit(shifted, "risk").cumulative == pytest.approx([0.0, 11.0, 14.0])
