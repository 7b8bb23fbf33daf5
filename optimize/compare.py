"""Comparing strategies simulated on common random numbers: means, intervals, paired differences.

Every strategy's replication *r* sees the same outages, calls and churn draws, so the
difference between two strategies in replication *r* is their effect, and the interval of
the paired differences is far narrower than the two intervals side by side.

Money figures are over the horizon. ``npv`` discounts each month's margin less retention
spend at the scenario's rate and adds the terminal value of the lines active at the end
(``meta.terminal_value_months`` of their last month's margin, discounted);
``value_retained`` is the value (margin and terminal value, before spend) that a strategy
keeps over the run without retention, computed exactly as the response curves value it
(:func:`optimize.estimate.retained_value`); ``roi`` is the NPV gained over no retention per
unit of discounted spend.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.results import SimulationResult, mean_interval, summarize
from sim.scenario import Scenario

from .estimate import churn_paths, retained_value

METRICS = ("monthly_churn", "churned_lines", "lines_end", "lines_retained", "revenue", "margin", "retention_spend",
           "value_retained", "npv", "roi", "mean_satisfaction", "service_level")
"""Per replication, what the comparison tables report (in this order)."""


def _discount(scenario: Scenario) -> tuple[float, float]:
    d = 1.0 / (1.0 + scenario.meta.monthly_discount_rate)
    return d, sum(d ** k for k in range(1, scenario.meta.terminal_value_months + 1))


def tier_figures(result: SimulationResult, scenario: Scenario) -> pd.DataFrame:
    """Per replication and tier: churn, lines, money (plain and discounted) and satisfaction."""
    d, annuity = _discount(scenario)
    m = result.monthly
    factor = d ** m["month"].astype(float)
    keys = [m["replication"], m["tier"]]
    frame = pd.DataFrame({
        "churned_lines": m.groupby(keys)["churned_lines"].sum(),
        "line_months": m.groupby(keys)["lines_start"].sum(),
        "revenue": m.groupby(keys)["revenue"].sum(),
        "margin": m.groupby(keys)["margin"].sum(),
        "retention_spend": m.groupby(keys)["retention_spend"].sum(),
        "discounted_margin": (m["margin"] * factor).groupby(keys).sum(),
        "discounted_spend": (m["retention_spend"] * factor).groupby(keys).sum(),
        "mean_satisfaction": m.groupby(keys)["mean_satisfaction"].mean(),
    })
    horizon = int(m["month"].max())
    last = m[m["month"] == horizon].set_index(["replication", "tier"])
    frame["lines_end"] = last["lines_start"] - last["churned_lines"] + last["gross_adds_lines"]
    per_line = (last["margin"] / last["lines_start"].where(last["lines_start"] > 0)).fillna(0.0)
    frame["terminal_value"] = d ** horizon * frame["lines_end"] * per_line * annuity
    frame["monthly_churn"] = frame["churned_lines"] / frame["line_months"]
    frame["npv"] = frame["discounted_margin"] - frame["discounted_spend"] + frame["terminal_value"]
    return frame.reset_index()


def strategy_figures(result: SimulationResult, scenario: Scenario,
                     reference: SimulationResult | None = None) -> pd.DataFrame:
    """Per replication: the :data:`METRICS` of one strategy (``reference``: the run without retention)."""
    tiers = tier_figures(result, scenario)
    frame = tiers.groupby("replication")[["churned_lines", "line_months", "lines_end", "revenue", "margin",
                                          "retention_spend", "discounted_spend", "npv"]].sum()
    frame["monthly_churn"] = frame["churned_lines"] / frame["line_months"]
    m = result.monthly
    weights = m["lines_start"]
    frame["mean_satisfaction"] = (m["mean_satisfaction"] * weights).groupby(m["replication"]).sum() / \
        weights.groupby(m["replication"]).sum()
    cc = result.contact_center
    if len(cc):
        calls = cc.groupby("replication")["calls"].sum()
        frame["service_level"] = cc.groupby("replication")["answered_in_target"].sum() / calls.replace(0, np.nan)
    else:
        frame["service_level"] = np.nan
    if reference is not None:
        base = strategy_figures(reference, scenario).set_index("replication")
        frame["lines_retained"] = base["churned_lines"] - frame["churned_lines"]
        gained = retained_value(churn_paths(reference), churn_paths(result), scenario)
        frame["value_retained"] = gained["value"].groupby(level="replication").sum()
        frame["roi"] = (frame["npv"] - base["npv"]) / frame["discounted_spend"].where(frame["discounted_spend"] > 0)
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
    columns = ["monthly_churn", "churned_lines", "lines_end", "revenue", "margin", "retention_spend", "npv",
               "mean_satisfaction"]
    return summarize(stacked[["strategy", "tier", "replication", *columns]], by=["strategy", "tier"])


def paired_differences(figures: dict[str, pd.DataFrame], baseline: str) -> pd.DataFrame:
    """Per strategy and metric: the mean of (strategy - baseline) over replications and its 95% interval."""
    base = figures[baseline].set_index("replication")
    rows = []
    for name, frame in figures.items():
        if name == baseline:
            continue
        diff = frame.set_index("replication")[list(METRICS)] - base[list(METRICS)]
        n = len(diff)
        for metric in METRICS:
            mean, _, half, k = mean_interval(diff[metric].to_numpy(dtype=float))
            rows.append({"strategy": name, "baseline": baseline, "metric": metric, "difference": mean,
                         "ci_low": mean - half, "ci_high": mean + half, "replications": n,
                         "significant": bool(k > 1 and (mean - half > 0 or mean + half < 0))})
    return pd.DataFrame(rows, columns=["strategy", "baseline", "metric", "difference", "ci_low", "ci_high",
                                       "replications", "significant"])
