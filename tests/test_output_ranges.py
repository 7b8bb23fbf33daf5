"""No blank, NaN or infinite figure in an output, and every 95% interval within its figure's range.

The t-interval over replications is cut to the figure's range (rates in [0, 1], counts and money spent
at least 0): the mean cannot lie outside, so the cut interval covers it whenever the t-interval does.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimize.cli.main import main
from optimize.run.compare import METRICS, paired_differences
from sim.engine import Records
from sim.results import COUNTS, RATES, SimulationResult, summarize, t_quantile

from .conftest import SCENARIOS


def _t_interval(values: list[float]) -> tuple[float, float]:
    x = np.asarray(values)
    half = t_quantile(len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return x.mean() - half, x.mean() + half


def test_an_interval_reaching_past_a_rate_or_count_is_cut_at_the_bound_and_only_there() -> None:
    frame = pd.DataFrame({"replication": [0, 1], "monthly_churn": [0.001, 0.02], "service_level": [0.999, 0.94],
                          "churned_lines": [1.0, 30.0], "npv": [-5.0, 5.0]})
    table = summarize(frame).set_index("metric")
    low, high = _t_interval([0.001, 0.02])
    assert low < 0 and table.loc["monthly_churn", "ci_low"] == 0.0
    assert table.loc["monthly_churn", "ci_high"] == pytest.approx(high)  # 0.0105 + 12.706 * 0.01344 / sqrt 2
    assert table.loc["monthly_churn", "ci_high"] == pytest.approx(0.0105 + 12.706 * 0.019 / 2)
    low, high = _t_interval([0.999, 0.94])
    assert high > 1 and table.loc["service_level", "ci_high"] == 1.0
    assert table.loc["service_level", "ci_low"] == pytest.approx(low)
    assert table.loc["churned_lines", "ci_low"] == 0.0
    # NPV may be negative: its interval is the t-interval as it is.
    assert (table.loc["npv", "ci_low"], table.loc["npv", "ci_high"]) == pytest.approx(_t_interval([-5.0, 5.0]))


def test_cutting_keeps_every_interval_that_covered_the_mean() -> None:
    """Rates near 0 in three replications (the case of an abandonment rate): the cut intervals cover the
    true mean exactly as often as the t-intervals, and never reach below 0."""
    rng = np.random.default_rng(11)
    a, b = 0.5, 40.0
    truth = a / (a + b)
    covered_t = covered_cut = 0
    for _ in range(2000):
        values = rng.beta(a, b, size=3)
        low, high = _t_interval(list(values))
        row = summarize(pd.DataFrame({"replication": [0, 1, 2], "abandonment_rate": values})).iloc[0]
        assert 0.0 <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= 1.0
        covered_t += low <= truth <= high
        covered_cut += row["ci_low"] <= truth <= row["ci_high"]
    assert covered_cut == covered_t


def test_a_paired_difference_of_a_rate_stays_within_what_two_rates_can_differ_by() -> None:
    def figures(churn: list[float]) -> pd.DataFrame:
        frame = pd.DataFrame({m: [1.0, 2.0] for m in METRICS})
        frame["monthly_churn"] = churn
        return frame.assign(replication=[0, 1])

    table = paired_differences({"base": figures([0.0, 0.9]), "other": figures([0.9, 0.0])}, "base")
    row = table.set_index("metric").loc["monthly_churn"]
    assert row["ci_low"] == -1.0 and row["ci_high"] == 1.0 and row["difference"] == 0.0


def _records(replication: int) -> Records:
    records = Records()
    # Tier a loses every line by month 3; tier b stays. No call reaches the contact center.
    for month, (lines, churned, satisfaction) in enumerate([(100, 60, 0.8), (40, 40, 0.5), (0, 0, math.nan)], 1):
        for tier, row in (("a", (lines, churned, satisfaction)), ("b", (50, 1, 0.7))):
            records.tier_months.append({
                "month": month, "tier": tier, "units_start": row[0], "lines_start": row[0], "churned_lines": row[1],
                "saves": 0.0, "revenue": 10.0 * row[0], "margin": 4.0 * row[0], "mean_satisfaction": row[2],
                "expected_churn": row[1] / row[0] if row[0] else 0.0,
                "gross_adds_market_lines": 0.0, "gross_adds_won_lines": 0.0})
        records.contact_center.append({"month": month, "calls": 0.0, "answered_in_target": 0.0, "abandoned": 0.0,
                                       "complaints": 0.0, "service_level": 1.0, "abandonment_rate": 0.0})
    return records


def test_an_emptied_tier_and_a_month_without_calls_leave_no_blank() -> None:
    result = SimulationResult.concat([SimulationResult.from_records(_records(r), r) for r in (0, 1)])
    monthly = result.monthly.set_index(["replication", "month", "tier"])
    assert monthly.loc[(0, 3, "a"), "mean_satisfaction"] == 0.5  # the last lines' figure, carried
    by_tier = result.by_tier().set_index(["replication", "tier"])
    # Weighted by lines: (0.8 * 100 + 0.5 * 40) / 140; the empty month weighs nothing.
    assert by_tier.loc[(0, "a"), "mean_satisfaction"] == pytest.approx(100 / 140)
    totals = result.totals()
    # As contact_center.csv counts a month without calls: nobody waited past the target, nobody hung up.
    assert (totals["service_level"] == 1.0).all() and (totals["abandonment_rate"] == 0.0).all()
    for table in (summarize(totals), summarize(result.by_tier(), by=["tier"])):
        numbers = table.select_dtypes("number").drop(columns=["sd"])
        assert np.isfinite(numbers.to_numpy()).all()


def test_a_simulation_writes_no_blank_and_no_interval_outside_its_range(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["-q", "simulate", str(SCENARIOS / "small.yaml"), "--reps", "3", "--scale", "0.05",
                 "--out", str(out)]) == 0
    for path in out.glob("*.csv"):
        text = path.read_text(encoding="utf-8")
        frame = pd.read_csv(path, keep_default_na=False, dtype=str)
        assert not (frame == "").to_numpy().any(), f"{path.name} has a blank cell"
        assert not any(word in text.lower() for word in ("nan", "inf")), path.name
    summary = pd.read_csv(out / "summary.csv")
    by_tier = pd.read_csv(out / "by_tier.csv")
    for table in (summary, by_tier):
        rates, counts = table[table["metric"].isin(RATES)], table[table["metric"].isin(COUNTS)]
        assert len(rates) and len(counts)
        assert ((rates["ci_low"] >= 0) & (rates["ci_high"] <= 1)).all()
        assert (counts["ci_low"] >= 0).all()
        assert ((table["ci_low"] <= table["mean"]) & (table["mean"] <= table["ci_high"])).all()


def test_a_figure_no_replication_defines_has_no_row_rather_than_blanks() -> None:
    """The ROI of a strategy that spends nothing is 0/0 in every replication: no row, not an empty one."""
    frame = pd.DataFrame({"replication": [0, 1], "roi": [np.nan, np.nan], "npv": [1.0, 3.0]})
    table = summarize(frame)
    assert list(table["metric"]) == ["npv"] and table["mean"].iloc[0] == 2.0


def test_the_workbooks_monthly_intervals_stay_at_or_above_zero_lines_and_have_no_blank() -> None:
    from optimize.outputs.workbook import monthly_summary

    monthly = pd.DataFrame({"strategy": "s", "replication": [0, 1], "month": 1, "tier": "a",
                            "churned_lines": [0.0, 10.0], "margin": [-4.0, 4.0]})
    row = monthly_summary(monthly).iloc[0]
    low, high = _t_interval([0.0, 10.0])
    assert low < 0 and row["churned_lines_ci_low"] == 0.0 and row["churned_lines_ci_high"] == pytest.approx(high)
    assert (row["margin_ci_low"], row["margin_ci_high"]) == pytest.approx(_t_interval([-4.0, 4.0]))
    single = monthly_summary(monthly.iloc[:1]).iloc[0]
    assert single["churned_lines_ci_low"] == single["churned_lines_ci_high"] == 0.0
