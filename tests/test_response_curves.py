"""Response curves measured by designed simulation runs (optimize.run.measure).

The churners an offer avoids are checked against the survival curves of a constant hazard;
the design against cases whose answer is known exactly under common random numbers (a lever
with no effect retains nothing; a lever that only backfires loses value and is fitted flat).
The value formula itself is tests/test_valuation.py's.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from optimize.allocation.curves import ResponseCurve
from optimize.run.measure import beyond_policy, ceiling, cells, estimate_curves
from sim.allocation import Allocation
from sim.engine import Calibration, Simulation, prepare
from sim.results import SimulationResult
from sim.scenario import load_scenario
from sim.valuation import value_retained

from .conftest import SCENARIOS
from .simulation_cases import QUIET_MARKET, from_text


def quiet(extra: str = "", *, churn: float = 0.05, lines: int = 20_000, horizon: int = 12,
          lever: str = "{channel: calls, cost_per_contact: 1, acceptance: 1, hazard_reduction: 0.5, duration_months: 6}",
          periods: str = "[{name: P1, months: 1}, {name: P2, months: 11}]", discount: float = 0.0,
          terminal: int = 0, budget: float = 1e6) -> object:
    text = QUIET_MARKET % {"churn": churn, "lines": lines, "horizon": horizon}
    text = text.replace(f"periods: [{{name: P1, months: {horizon}}}]",
                        f"periods: {periods}, discount_rate_annual: {discount}, terminal_value_months: {terminal}")
    text = text.replace("budget: {total: 0}", f"budget: {{total: {budget}}}")
    text = text.replace("  credit: {channel: calls, cost_per_contact: 1, acceptance: 0.5, hazard_reduction: 0.5}",
                        f"  credit: {lever}")
    return from_text(text + extra)


def test_churners_avoided_match_the_survival_curves() -> None:
    # k lines accept in month 1 an offer halving their odds of leaving for D months; the rest
    # are untouched. Theory: avoided = k * [(1-h')^D - (1-h)^D] * (1-h)^(H-D).
    h, k, horizon, duration, reps = 0.05, 4_000, 12, 6, 6
    scenario = quiet(churn=h)
    calibration = Calibration.quiet(scenario, 1)
    odds = h / (1 - h) * 0.5
    h_offer = odds / (1 + odds)
    theory = k * ((1 - h_offer) ** duration - (1 - h) ** duration) * (1 - h) ** (horizon - duration)
    funded = Allocation({("mass", "credit", "P1"): float(k)})
    gains = []
    for r in range(reps):
        base = SimulationResult.from_records(Simulation(scenario, Allocation.empty(), calibration, 7, r).run(), r)
        with_offers = SimulationResult.from_records(Simulation(scenario, funded, calibration, 7, r).run(), r)
        assert with_offers.monthly["lines_start"].iloc[0] == base.monthly["lines_start"].iloc[0]
        gains.append(value_retained(with_offers, base, scenario)["retained_lines"].iloc[0])
    mean, se = float(np.mean(gains)), float(np.std(gains, ddof=1) / math.sqrt(reps))
    # Binomial paths of k lines: the spread of the kept lines is about sqrt(k h' D) per run.
    assert abs(mean - theory) < 4 * max(se, 1.0), (mean, se, theory)


def test_a_lever_without_effect_retains_nothing_and_a_backfiring_one_is_fitted_flat() -> None:
    inert = quiet(lever="{channel: calls, cost_per_contact: 1, acceptance: 0.5, hazard_reduction: 0}",
                  )
    estimate = estimate_curves(inert, calibration=Calibration.quiet(inert, 1))
    assert set(estimate.curves) == {("mass", "credit", "P1"), ("mass", "credit", "P2")}
    assert (estimate.points["value"] == 0).all() and (estimate.points["retained_lines"] == 0).all()

    backfiring = quiet(lever="{channel: calls, cost_per_contact: 1, acceptance: 0, hazard_reduction: 0, backfire: 2}")
    estimate = estimate_curves(backfiring, calibration=Calibration.quiet(backfiring, 1))
    assert (estimate.points["value"] < 0).all()
    assert all(v == 0 for curve in estimate.curves.values() for v in curve.values)


def test_ceilings_follow_the_contact_policy_capacity_and_budget() -> None:
    scenario = quiet(budget=0, lever="{channel: calls, cost_per_contact: 2, acceptance: 1, hazard_reduction: 0.5}")
    # Contact policy by default: one offer per line per 6 months; P1 lasts 1 month.
    policy = scenario.budget.contact_policy
    offers_p1 = 20_000 * policy.max_offers_per_line * 1 / policy.per_months
    assert ceiling(scenario, ("mass", "credit", "P1")) == 0.0  # the budget total is 0
    funded = scenario.model_copy(update={"budget": scenario.budget.model_copy(update={"total": 1e9})})
    assert ceiling(funded, ("mass", "credit", "P1")) == pytest.approx(offers_p1 * 2)
    # P2 (11 months) would allow 36,667 offers, but the channel makes 100,000 a month: policy binds.
    assert ceiling(funded, ("mass", "credit", "P2")) == pytest.approx(20_000 * 11 / 6 * 2)
    assert cells(funded) == [("mass", "credit", "P1"), ("mass", "credit", "P2")]
    # Past the policy: one more offer per line in its window, where the policy is what caps the cell.
    assert beyond_policy(funded, ("mass", "credit", "P2")) == pytest.approx(20_000 * 11 / 6 * 2 * 2)
    tight = funded.model_copy(update={"channels": {"calls": funded.channels["calls"].model_copy(
        update={"capacity_per_month": 100.0})}})
    assert beyond_policy(tight, ("mass", "credit", "P2")) == 0.0  # the channel caps it, not the policy


@pytest.fixture(scope="module")
def small_estimate():  # type: ignore[no-untyped-def]
    scenario = load_scenario(SCENARIOS / "small.yaml")
    return scenario, estimate_curves(scenario)


def test_measured_curves_of_the_small_market(small_estimate) -> None:  # type: ignore[no-untyped-def]
    scenario, estimate = small_estimate
    settings = scenario.run.estimation
    assert set(estimate.curves) == set(cells(scenario))
    designs = {(c[1], c[2]) for c in cells(scenario)}
    # A design whose cells the contact policy caps has one more run, under a policy one offer looser.
    relaxed = {(c[1], c[2]) for c in cells(scenario) if beyond_policy(scenario, c) > ceiling(scenario, c)}
    assert relaxed, "the small market's proactive cells are capped by the contact policy"
    assert estimate.runs == settings.replications * (1 + len(designs) * len(settings.levels) + len(relaxed))
    for cell, curve in estimate.curves.items():
        assert isinstance(curve, ResponseCurve) and curve.source == "simulated"
        assert curve.fit_error is not None and curve.fit_error >= 0
        beyond = beyond_policy(scenario, cell)
        past = beyond > ceiling(scenario, cell)
        assert len(curve.spends) == len(settings.levels) + 1 + past
        assert curve.max_spend == pytest.approx(beyond if past else ceiling(scenario, cell))
        assert curve.retained is not None and all(b >= a for a, b in zip(curve.retained, curve.retained[1:]))
        # What a unit allocated costs today: at most a unit (discounting, lines leaving before their
        # offer ends), and not much less for levers paid when the offer is made.
        assert 0.5 < curve.cost <= 1.0
    # The fit is the least-squares concave curve: it never moves the points further than they scatter.
    gap = (estimate.points["value_fitted"] - estimate.points["value"]).abs()
    assert (gap <= estimate.points["value"].abs().max()).all()
    assert (estimate.points.groupby(["tier", "lever", "period"])["fit_error"].nunique() == 1).all()
    # Offers that work retain lines: the fullest level of every proactive lever keeps some.
    top = estimate.points[estimate.points["level"] == 1.0]
    assert (top["retained_lines"] > 0).all()
    assert set(estimate.churn) == set(scenario.tiers)
    for tier, churn in estimate.churn.items():
        assert churn.monthly_churn == pytest.approx(scenario.tiers[tier].baseline_churn, rel=0.5)


def test_estimates_repeat_with_the_seed(small_estimate) -> None:  # type: ignore[no-untyped-def]
    scenario, estimate = small_estimate
    quick = scenario.model_copy(update={"run": scenario.run.model_copy(update={
        "estimation": scenario.run.estimation.model_copy(update={"levels": (0.5, 1.0), "replications": 1})})})
    calibration = prepare(quick, quick.run.seed)   # one fit for both: the fan-out is what is compared
    first, second = estimate_curves(quick, calibration=calibration), estimate_curves(quick, calibration=calibration,
                                                                                      workers=2)
    pd.testing.assert_frame_equal(first.points, second.points)  # the same with one process or two
    other = estimate_curves(quick, seed=scenario.run.seed + 1)
    assert not first.points["value"].equals(other.points["value"])
