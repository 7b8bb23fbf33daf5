"""The decision the product exists for, on the shipped baseline at full scale.

A file of its own: it is the suite's longest test (calibration, curves, the closed loop and the
comparison of the baseline's 1.36M lines), and a file of its own lets it run beside the others from
the start of `make test` (a file's tests stay on one process).
"""

from __future__ import annotations

import pytest

from .conftest import SCENARIOS


@pytest.mark.slow
def test_on_the_baseline_the_lp_plan_beats_uniform_spending(shared_fits) -> None:
    """The decision the product exists for: the LP's plan retains more value net of spend than spreading
    the same budget evenly per line, by a paired interval that excludes zero (10 replications), and
    delivers what the LP predicted of it."""
    from optimize.run.pipeline import run
    from sim.scenario import load_scenario

    scenario = load_scenario(SCENARIOS / "baseline.yaml")
    with shared_fits():
        outcome = run(scenario, strategies=["uniform", "lp_optimal"], replications=10, workers=2)
    assert outcome.baseline == "uniform"
    paired = outcome.paired.set_index(["strategy", "metric"])
    npv = paired.loc[("lp_optimal", "npv")]
    assert npv["ci_low"] > 0, npv.to_dict()
    assert paired.loc[("lp_optimal", "value_retained"), "ci_low"] > 0
    # Both spend (nearly) the whole budget: the advantage is where the money goes, not how much.
    spend = outcome.summary.set_index(["strategy", "metric"])["mean"]
    assert spend[("lp_optimal", "retention_spend")] <= scenario.budget.total * 1.0001
    assert spend[("uniform", "retention_spend")] > 0.85 * scenario.budget.total
    # The plan the LP picks is the plan the simulation delivers: the closed loop's prediction of the value
    # retained, and of the value less discounted spend, within 3% of what the comparison simulated.
    predicted = outcome.predicted.set_index("metric")
    for metric in ("value_retained", "npv_gain"):
        row = predicted.loc[metric]
        assert abs(row["gap_share"]) < 0.03, row.to_dict()
    rounds = outcome.plan.loop.rounds
    assert rounds["chosen"].sum() == 1 and rounds["agrees"].iloc[-1]
