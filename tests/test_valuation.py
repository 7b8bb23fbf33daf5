"""The one valuation (sim.valuation) every stage reads money through.

Checked on hand-computed cases (value of kept lines with the terminal value that keeps churning;
the luck of a month's draws removed without changing the figure it estimates), against theory (the
luck-free figures have the mean of the drawn ones on a constant hazard, with a smaller spread), and
as an identity over a whole run: for every strategy, value retained less discounted spend is its
NPV gain over no retention, launch costs included.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from optimize.run.pipeline import run
from sim.allocation import LAUNCH, Allocation
from sim.engine import Calibration, Simulation
from sim.results import SimulationResult
from sim.scenario import load_scenario
from sim.valuation import run_values, terminal_annuity, tier_values, value_retained

from .simulation_cases import QUIET_MARKET, from_text


def quiet(horizon: int = 3, terminal: int = 2, discount: float = 0.0, churn: float = 0.05):  # type: ignore[no-untyped-def]
    text = QUIET_MARKET % {"churn": churn, "lines": 100, "horizon": horizon}
    text = text.replace(f"periods: [{{name: P1, months: {horizon}}}]",
                        f"periods: [{{name: P1, months: {horizon}}}], discount_rate_annual: {discount}, "
                        f"terminal_value_months: {terminal}")
    return from_text(text)


def result(lines: list[float], churned: list[float], expected: list[float], margin_per_line: float = 10.0,
           spend: list[float] | None = None, replication: int = 0) -> SimulationResult:
    """One tier's months as the simulator records them (no joiners, no saves)."""
    months = len(lines)
    monthly = pd.DataFrame({
        "replication": replication, "month": range(1, months + 1), "tier": "mass",
        "units_start": lines, "lines_start": lines, "churned_units": churned, "churned_lines": churned,
        "saves": 0.0, "gross_adds_market_lines": 0.0, "gross_adds_market_expected": 0.0,
        "gross_adds_won_lines": 0.0, "gross_adds_won_expected": 0.0, "gross_adds_lines": 0.0,
        "revenue": [x * 20.0 for x in lines], "margin": [x * margin_per_line for x in lines],
        "expected_churn": [e / x for e, x in zip(expected, lines)], "mean_satisfaction": 0.8,
        "retention_spend": spend or [0.0] * months, "offers": 0.0, "accepted": 0.0})
    empty = pd.DataFrame()
    return SimulationResult(monthly, empty, empty, empty, empty,
                            pd.DataFrame(columns=["replication", "month", "lever", "period", "spend"]), empty)


def test_the_value_of_kept_lines_hand_computed() -> None:
    # Without retention 2 lines leave each month; with it, 1 in month 1. Lines billed: 100, 98, 96 (ending
    # at 94) against 100, 99, 97 (ending at 95). One more line is billed in months 2 and 3 at 10 a month, and
    # one more line is with us at the end: it earns 2 terminal months while churning at the tier's 5%.
    scenario = quiet(discount=0.08)
    d = 1 / 1.08 ** (1 / 12)
    base = result([100, 98, 96], [2, 2, 2], [2, 2, 2])
    kept = result([100, 99, 97], [1, 2, 2], [1, 2, 2], spend=[30.0, 0.0, 0.0])
    gain = value_retained(kept, base, scenario).loc[(0, "mass")]
    annuity = d * 0.95 + (d * 0.95) ** 2
    assert terminal_annuity(scenario, "mass") == pytest.approx(annuity)
    assert gain["retained_lines"] == pytest.approx(1.0)
    assert gain["value"] == pytest.approx(10 * d**2 + 10 * d**3 + d**3 * 1 * 10 * annuity)
    assert gain["discounted_spend"] == pytest.approx(30 * d)
    # The run's NPV: value less discounted spend; the gain in NPV is the value kept less that spend.
    npv = run_values(kept, scenario)["npv"] - run_values(base, scenario)["npv"]
    assert float(npv.iloc[0]) == pytest.approx(gain["value"] - 30 * d)


def test_a_months_luck_is_carried_forward_at_its_months_survival() -> None:
    # The hazard expects 2 of 100 lines to leave in month 1 (2%); the draws took 5. The 3 lines lost by luck
    # are counted as still billed, leaving at their month's expected 2% a month: 3 more lines in month 2,
    # 3 x 0.98 in month 3, 3 x 0.98^2 at the end, and their leavers (3 x 0.02, 3 x 0.98 x 0.02) counted
    # in months 2 and 3. Later months' own draws fell as expected.
    scenario = quiet()
    unlucky = tier_values(result([100, 95, 93], [5, 2, 2], [2, 2, 2]), scenario).iloc[0]
    lines = [100, 95 + 3, 93 + 3 * 0.98]
    assert unlucky["line_months"] == pytest.approx(sum(lines))
    assert unlucky["margin"] == pytest.approx(10 * sum(lines))
    assert unlucky["churned_lines"] == pytest.approx(2 + (2 + 3 * 0.02) + (2 + 3 * 0.98 * 0.02))
    assert unlucky["lines_end"] == pytest.approx(91 + 3 * 0.98**2)
    # Lines are conserved: those at the start, less the churn counted, are those at the end.
    assert unlucky["lines_end"] == pytest.approx(100 - unlucky["churned_lines"])
    # Draws that fell as the hazards expected are counted as they fell.
    even = tier_values(result([100, 98, 96], [2, 2, 2], [2, 2, 2]), scenario).iloc[0]
    drawn = tier_values(result([100, 98, 96], [2, 2, 2], [2, 2, 2]), scenario, as_drawn=True).iloc[0]
    for column in ("value", "margin", "revenue", "lines_end", "churned_lines", "line_months"):
        assert even[column] == pytest.approx(drawn[column]), column
    assert even["churned_lines"] == pytest.approx(6.0)


def test_luck_free_figures_keep_the_mean_of_the_drawn_ones() -> None:
    # A constant hazard: whatever the draws, the expected lines after m months are N (1-h)^m, so the
    # luck-free value must have the mean the drawn lines have, with a far smaller spread.
    h, n, horizon, reps = 0.03, 2_000, 12, 30
    scenario = quiet(horizon=horizon, terminal=0, churn=h).model_copy()
    scenario = scenario.model_copy(update={"tiers": {"mass": scenario.tiers["mass"].model_copy(update={"lines": n})}})
    calibration = Calibration.quiet(scenario, 1)
    luck_free, drawn = [], []
    for r in range(reps):
        outcome = SimulationResult.from_records(Simulation(scenario, Allocation.empty(), calibration, 5, r).run(), r)
        luck_free.append(float(tier_values(outcome, scenario)["margin"].iloc[0]))
        drawn.append(float(outcome.monthly["margin"].sum()))
    theory = sum(n * (1 - h) ** (m - 1) for m in range(1, horizon + 1)) * 80 * 0.4
    se_drawn = np.std(drawn, ddof=1) / math.sqrt(reps)
    assert abs(np.mean(drawn) - theory) < 4 * se_drawn
    assert abs(np.mean(luck_free) - theory) < 4 * se_drawn
    assert np.std(luck_free, ddof=1) < 0.2 * np.std(drawn, ddof=1)


@pytest.fixture(scope="module")
def launched_run(tmp_path_factory, quick_small):  # type: ignore[no-untyped-def]
    """The small market with a launch cost on the data bonus, every strategy simulated."""
    text = quick_small.read_text(encoding="utf-8").replace(
        "    duration_months: 6\n", "    duration_months: 6\n    launch_cost: 3000\n", 1)
    path = tmp_path_factory.mktemp("launch") / "small_launch.yaml"
    path.write_text(text, encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.levers["data_bonus"].launch_cost == 3000
    return scenario, run(scenario, str(path), replications=3)


def test_value_retained_less_discounted_spend_is_the_npv_gain(launched_run) -> None:  # type: ignore[no-untyped-def]
    scenario, outcome = launched_run
    reference = outcome.results["no_retention"]
    base = run_values(reference, scenario)["npv"]
    from optimize.run.compare import strategy_figures

    for name, simulated in outcome.results.items():
        figures = strategy_figures(simulated, scenario, reference).set_index("replication")
        gain = figures["npv"] - base
        np.testing.assert_allclose(figures["value_retained"] - figures["discounted_spend"], gain, rtol=1e-9,
                                   atol=1e-6, err_msg=name)
    # Launch costs are paid, and counted in the spend of the strategies that use the lever.
    uniform = outcome.results["uniform"]
    assert (uniform.launches["spend"] == 3000).all() and len(uniform.launches) == 3 * len(scenario.meta.periods)
    # The plan's table lists a launch row for each period the plan uses the lever in, as the feed does.
    plan = outcome.plan.allocation
    used = sorted(plan.loc[(plan["lever"] == "data_bonus") & (plan["tier"] != LAUNCH), "period"].unique())
    assert sorted(plan.loc[plan["tier"] == LAUNCH, "period"]) == used
    spend = strategy_figures(uniform, scenario, reference)["retention_spend"].to_numpy(dtype=float)
    tiers = uniform.monthly.groupby("replication")["retention_spend"].sum().to_numpy(dtype=float)
    np.testing.assert_allclose(spend, tiers + 3000 * len(scenario.meta.periods))


def test_accounts_expected_to_leave_weigh_each_hazard_by_its_own_lines() -> None:
    from .test_enterprise_accounts import enterprise, quiet_run

    # Accounts of one size: the lines expected to leave are the mean hazard times the lines, exactly.
    alike = pd.DataFrame(quiet_run(enterprise(accounts=1000)).records.tier_months)
    np.testing.assert_allclose(alike["expected_churned_lines"], alike["expected_churn"] * alike["lines_start"],
                               rtol=1e-5)
    # Sizes and risks that vary: the lines of the accounts drawn to leave differ from the lines-weighted
    # expectation by zero on average (within 4 standard errors over 24 months x 8 replications), and the
    # difference is uncorrelated with anything known before the draw, such as how far the expectation is
    # from the mean hazard times the lines (which ignores which accounts the hazard falls on).
    scenario = enterprise(accounts=400, size="account_size: {mean: 200, min: 20, spread: 1.5}", spread=1.2,
                          horizon=24, churn=0.02)
    months = pd.concat([pd.DataFrame(quiet_run(scenario, r).records.tier_months) for r in range(8)])
    drawn = months["churned_lines"] - months["lines_cancelled"]
    exact = (drawn - months["expected_churned_lines"]).to_numpy()
    known = (months["expected_churned_lines"] - months["expected_churn"] * months["lines_start"]).to_numpy()
    assert abs(exact.mean()) < 4 * exact.std(ddof=1) / math.sqrt(len(exact))
    assert known.std() > 0.05 * exact.std()
    assert abs(np.corrcoef(exact, known)[0, 1]) < 4 / math.sqrt(len(exact))
    assert (months["saved_lines"] == 0).all()


def test_simulate_counts_churn_lines_and_money_as_the_comparison_does(launched_run) -> None:  # type: ignore[no-untyped-def]
    # One definition: retention simulate's summary and by_tier tables against run's strategy and tier
    # figures, on the same simulated replications.
    from optimize.run.compare import strategy_figures, tier_figures

    scenario, outcome = launched_run
    uniform = outcome.results["uniform"]
    columns = ["churned_lines", "monthly_churn", "lines_end", "revenue", "margin", "retention_spend"]
    totals = uniform.totals().set_index("replication")
    figures = strategy_figures(uniform, scenario).set_index("replication")
    np.testing.assert_allclose(totals[columns].to_numpy(dtype=float), figures[columns].to_numpy(dtype=float),
                               rtol=1e-12)
    by_tier = uniform.by_tier().set_index(["replication", "tier"]).sort_index()
    tiers = tier_figures(uniform, scenario).set_index(["replication", "tier"]).sort_index()
    np.testing.assert_allclose(by_tier[columns[:-1]].to_numpy(dtype=float), tiers[columns[:-1]].to_numpy(dtype=float),
                               rtol=1e-12)
    # Not the draws as they fell: those are monthly.csv's, and differ by the luck removed.
    drawn = uniform.monthly.groupby("replication")["churned_lines"].sum()
    assert not np.allclose(totals["churned_lines"], drawn)
