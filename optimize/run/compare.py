"""Comparing strategies simulated on common random numbers: means, intervals, paired differences.

Every strategy's replication *r* sees the same outages, calls and churn draws, so the
difference between two strategies in replication *r* is their effect, and the interval of
the paired differences is far narrower than the two intervals side by side.

Money figures are over the horizon and valued by :mod:`sim.valuation`, the one valuation every
stage uses: ``npv`` (value less discounted spend, launch costs included), ``value_retained`` (value
kept over the run without retention, paired by replication), ``discounted_spend`` (so that
``value_retained - discounted_spend`` is the NPV gain over no retention), and ``roi``, value retained
per unit of discounted spend.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.results import (
    SimulationResult,
    call_rates,
    difference_range,
    line_weighted,
    mean_interval,
    summarize,
)
from sim.scenario import Scenario
from sim.valuation import monthly_discount, run_values, tier_values

METRICS = ("monthly_churn", "churned_lines", "lines_end", "lines_retained", "revenue", "margin", "retention_spend",
           "discounted_spend", "value_retained", "npv", "roi", "mean_satisfaction", "service_level")
"""Per replication, what the comparison tables report (in this order)."""


def tier_figures(result: SimulationResult, scenario: Scenario) -> pd.DataFrame:
    """Per replication and tier: churn, lines, money (plain and discounted), value, NPV and satisfaction."""
    frame = tier_values(result, scenario)
    m = result.monthly
    satisfaction = line_weighted(m, ["replication", "tier"], "mean_satisfaction")
    frame["mean_satisfaction"] = satisfaction.reindex(pd.MultiIndex.from_frame(frame[["replication", "tier"]])
                                                      ).to_numpy()
    frame["monthly_churn"] = frame["churned_lines"] / frame["line_months"]
    frame["npv"] = frame["value"] - frame["discounted_spend"]
    return frame


def strategy_figures(result: SimulationResult, scenario: Scenario,
                     reference: SimulationResult | None = None) -> pd.DataFrame:
    """Per replication: the :data:`METRICS` of one strategy (``reference``: the run without retention)."""
    tiers = tier_figures(result, scenario)
    frame = tiers.groupby("replication")[["churned_lines", "line_months", "lines_end", "revenue", "margin"]].sum()
    whole = run_values(result, scenario)
    frame[["retention_spend", "discounted_spend", "value", "npv"]] = whole[
        ["retention_spend", "discounted_spend", "value", "npv"]]
    frame["monthly_churn"] = frame["churned_lines"] / frame["line_months"]
    frame["mean_satisfaction"] = line_weighted(result.monthly, ["replication"], "mean_satisfaction")
    # Without a contact center (or without calls) no caller waited: service level 1, as contact_center.csv.
    frame["service_level"] = call_rates(result.contact_center)[0] if len(result.contact_center) else 1.0
    if reference is not None:
        base = strategy_figures(reference, scenario).set_index("replication")
        base_value = run_values(reference, scenario)["value"]
        frame["lines_retained"] = base["churned_lines"] - frame["churned_lines"]
        frame["value_retained"] = frame["value"] - base_value
        frame["roi"] = frame["value_retained"] / frame["discounted_spend"].where(frame["discounted_spend"] > 0)
    else:
        frame["lines_retained"] = frame["value_retained"] = frame["roi"] = np.nan
    return frame[list(METRICS)].astype(float).reset_index()


def summary_table(figures: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per strategy and metric: mean, sd and 95% interval over replications."""
    stacked = pd.concat([f.assign(strategy=name) for name, f in figures.items()], ignore_index=True)
    return summarize(stacked[["strategy", "replication", *METRICS]], by=["strategy"])


def by_tier_table(results: dict[str, SimulationResult], scenario: Scenario) -> pd.DataFrame:
    """Per strategy, tier and metric (churn, lines, money, satisfaction): mean and 95% interval."""
    stacked = pd.concat([tier_figures(r, scenario).assign(strategy=name) for name, r in results.items()],
                        ignore_index=True)
    columns = ["monthly_churn", "churned_lines", "lines_end", "revenue", "margin", "retention_spend",
               "discounted_spend", "value", "npv", "mean_satisfaction"]
    return summarize(stacked[["strategy", "tier", "replication", *columns]], by=["strategy", "tier"])


def operator_figures(result: SimulationResult, scenario: Scenario) -> pd.DataFrame:
    """Per replication and operator: lines at the start and the end, share at the end, revenue and margin
    over the horizon (plain and discounted, before any retention spend). Ours are the tiers' figures as
    every other table counts them (:func:`sim.valuation.tier_values`); the rivals' come from their lines
    in our tiers' segments, billed at the prices they ran (:func:`sim.competition.line_margin`)."""
    market = result.market
    d = monthly_discount(scenario)
    first, last = market["month"].min(), market["month"].max()
    frame = market.assign(discounted_margin=market["margin"] * d ** market["month"].astype(float))
    grouped = frame.groupby(["replication", "operator"], sort=False)
    figures = pd.DataFrame({
        "lines_start": frame[frame["month"] == first].set_index(["replication", "operator"])["lines"],
        "lines_end": frame[frame["month"] == last].set_index(["replication", "operator"])["lines"],
        "share_end": frame[frame["month"] == last].set_index(["replication", "operator"])["share"],
        "revenue": grouped["revenue"].sum(), "margin": grouped["margin"].sum(),
        "discounted_margin": grouped["discounted_margin"].sum()})
    ours = tier_values(result, scenario).groupby("replication")[["revenue", "margin", "discounted_margin"]].sum()
    figures = figures.reset_index()
    mine = figures["operator"] == scenario.market.us
    for column in ours.columns:
        figures.loc[mine, column] = ours[column].reindex(figures.loc[mine, "replication"]).to_numpy()
    return figures


def operators_table(results: dict[str, SimulationResult], scenario: Scenario) -> pd.DataFrame:
    """Per strategy, operator and metric (lines, share, revenue, margin): mean and 95% interval."""
    stacked = pd.concat([operator_figures(r, scenario).assign(strategy=name) for name, r in results.items()],
                        ignore_index=True)
    return summarize(stacked[["strategy", "operator", "replication", "lines_start", "lines_end", "share_end",
                              "revenue", "margin", "discounted_margin"]], by=["strategy", "operator"])


def paired_differences(figures: dict[str, pd.DataFrame], baseline: str) -> pd.DataFrame:
    """Per strategy and metric: the mean of (strategy - baseline) over replications and its 95% interval, cut
    to what two values of the metric can differ by; a metric without a difference in any replication (the
    ROI against a baseline that spends nothing) has no row."""
    base = figures[baseline].set_index("replication")
    rows = []
    for name, frame in figures.items():
        if name == baseline:
            continue
        diff = frame.set_index("replication")[list(METRICS)] - base[list(METRICS)]
        n = len(diff)
        for metric in METRICS:
            mean, _, half, k = mean_interval(diff[metric].to_numpy(dtype=float))
            if k == 0:  # the metric is undefined for one of the two in every replication (ROI without spend)
                continue
            low, high = difference_range(metric, mean - half, mean + half) if k > 1 else (mean, mean)
            rows.append({"strategy": name, "baseline": baseline, "metric": metric, "difference": mean,
                         "ci_low": low, "ci_high": high, "replications": n,
                         "significant": bool(k > 1 and (low > 0 or high < 0))})
    return pd.DataFrame(rows, columns=["strategy", "baseline", "metric", "difference", "ci_low", "ci_high",
                                       "replications", "significant"])
