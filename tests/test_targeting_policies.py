"""Targeting by uplift and by value against targeting by risk (:mod:`sim.uplift`), at equal spend.

When the lines most at risk respond least (a lever's ``response`` with a negative correlation), an
uplift model contacting the lines an offer changes most avoids more churn than a churn model contacting
the riskiest, for the same offers; no uplift model beats the oracle, which knows each line's true
uplift; and an uplift model of no accuracy ranks at random. Figures are the churners the months'
hazards expect (no draw noise), from one market on the same random numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.allocation import Allocation, AllocationError
from sim.engine import Calibration, Simulation, prepare
from sim.results import SimulationResult
from sim.runner import simulate
from sim.scenario import load_scenario
from sim.uplift import model_scores

from .conftest import SCENARIOS
from .simulation_cases import from_text
from .test_line_response import scenario_text

LEVER = ("{channel: calls, cost_per_contact: 1, acceptance: 0.5, hazard_reduction: 0.4, backfire: 0.3,"
         " duration_months: 3, response: {spread: 1.0, risk_correlation: -0.7}}")
OFFERS = 8_000
"""Offers a month: a fifth of the tier's lines each month, three fifths over the three months."""


def expected_churners(targeting: str, offers: int = OFFERS) -> tuple[float, float]:
    """Churners the hazards expect over three months, and the offers made."""
    text = scenario_text(LEVER, lines=40_000, churn=0.03, horizon=3, targeting=targeting)
    scenario = from_text(text)
    calibration = Calibration.quiet(scenario, 1)
    # Offers cost 1 each: the cell releases `offers` a month for three months, each line contacted once at
    # most (one offer per line in 6 months).
    allocation = Allocation({("t", "offer", "P1"): float(offers) * 3})
    simulation = Simulation(scenario, allocation, calibration, 7, 0, contact_center=False)
    records = simulation.run()
    result = SimulationResult.from_records(records, 0)
    months = result.monthly
    churners = float((months["expected_churn"] * months["units_start"]).sum())
    return churners, float(result.levers["offers"].sum())


@pytest.fixture(scope="module")
def outcomes() -> dict[str, tuple[float, float]]:
    cases = {
        "none": ("model_auc: 0.8", 0),
        "risk": ("model_auc: 0.8", OFFERS),
        "random": ("model_auc: 0.8, policy: uplift, uplift_correlation: 0.0", OFFERS),
        "uplift": ("model_auc: 0.8, policy: uplift, uplift_correlation: 0.5", OFFERS),
        "oracle": ("model_auc: 0.8, policy: uplift, uplift_correlation: 1.0", OFFERS),
        "value": ("model_auc: 0.8, policy: value, uplift_correlation: 1.0", OFFERS),
    }
    return {name: expected_churners(targeting, offers) for name, (targeting, offers) in cases.items()}


def test_uplift_beats_risk_at_equal_spend_and_the_oracle_bounds_it(outcomes) -> None:  # type: ignore[no-untyped-def]
    none = outcomes["none"][0]
    avoided = {name: none - churners for name, (churners, _) in outcomes.items() if name != "none"}
    made = {name: offers for name, (_, offers) in outcomes.items() if name not in ("none", "value")}
    assert len(set(made.values())) == 1 and next(iter(made.values())) > 0  # the same offers for every policy
    assert avoided["uplift"] > avoided["risk"]
    assert avoided["oracle"] >= avoided["uplift"]
    assert avoided["oracle"] >= avoided["random"]
    # Contacting the riskiest, whose responsiveness is lowest, does worse than contacting at random.
    assert avoided["random"] > avoided["risk"]


def test_value_contacts_only_lines_worth_the_offer(outcomes) -> None:  # type: ignore[no-untyped-def]
    # An offer costs 1 and a kept line is worth its discounted margin (50 a month) and terminal value
    # (sim.valuation.value_of_a_line_kept), hundreds of times as much: a line is contacted only if its uplift
    # exceeds a few ten-thousandths, which every positive-uplift line the oracle finds does here: it avoids what the oracle avoids (about 350 churners where risk targeting adds 250),
    # with no more offers.
    none = outcomes["none"][0]
    assert outcomes["value"][1] <= outcomes["oracle"][1]
    assert none - outcomes["value"][0] >= (none - outcomes["oracle"][0]) * 0.98


def test_an_uplift_model_has_the_stated_correlation() -> None:
    rng = np.random.default_rng(5)
    truth = rng.gamma(2.0, 0.01, 200_000) - 0.01
    for r in (0.2, 0.5, 0.9):
        scores = model_scores(truth, r, rng.standard_normal(truth.size))
        assert np.corrcoef(scores, truth)[0, 1] == pytest.approx(r, abs=0.01)
    assert np.array_equal(model_scores(truth, 1.0, rng.standard_normal(truth.size)), truth)


def test_an_allocation_row_must_carry_the_scenarios_policy() -> None:
    scenario = from_text(scenario_text(LEVER, targeting="model_auc: 0.8, policy: uplift"))
    row = {"tier": "t", "lever": "offer", "period": "P1", "amount": 100.0}
    assert Allocation.from_rows([{**row, "policy": "uplift"}], scenario).amount("t", "offer", "P1") == 100.0
    with pytest.raises(AllocationError) as error:
        Allocation.from_rows([{**row, "policy": "risk"}], scenario, source="plan.csv")
    assert "the scenario targets lever 'offer' by 'uplift', not 'risk'" in str(error.value)
    assert "levers.offer.policy" in str(error.value)


def test_the_futility_scenario_reproduces_the_field_studies() -> None:
    # The shipped futility market, its bill credit funded evenly in both tiers and halves: contacting the
    # lines the churn model ranks riskiest raises churn (they respond least, and sleeping dogs among them
    # are pushed out); the same money aimed by an uplift model of correlation 0.4 does better, and an
    # oracle better still. Three replications on common random numbers.
    scenario = load_scenario(SCENARIOS / "futility.yaml")
    calibration = prepare(scenario, scenario.run.seed)
    plan = Allocation({(tier, "bill_credit", period): 30_000.0
                       for tier in ("households", "prepaid") for period in ("H1", "H2")})

    def churn(policy: str, allocation: Allocation, correlation: float = 0.4) -> tuple[float, float]:
        targeting = scenario.targeting.model_copy(update={"policy": policy, "uplift_correlation": correlation})
        result = simulate(scenario.model_copy(update={"targeting": targeting}), allocation, seed=scenario.run.seed,
                          replications=3, calibration=calibration)
        return float(result.monthly["churned_lines"].sum()), float(result.levers["offers"].sum())

    none, _ = churn("risk", Allocation.empty())
    by_risk, offers = churn("risk", plan)
    by_uplift, same_offers = churn("uplift", plan)
    oracle, _ = churn("uplift", plan, 1.0)
    assert offers == same_offers > 0
    assert by_risk > none * 1.02       # about 5% more churners a year than without retention
    assert by_uplift < by_risk
    assert oracle < min(by_uplift, none)
