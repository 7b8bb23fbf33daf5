"""Results of simulation runs as tables: per tier and month, per lever, the market, the contact center.

One replication's :class:`~sim.engine.Records` become a :class:`SimulationResult` of
DataFrames; replications are stacked with a ``replication`` column, and
:func:`summarize` gives the mean and 95% interval of each figure over replications.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np
import pandas as pd

from .engine import Records

T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         15: 2.131, 20: 2.086, 30: 2.042, 60: 2.000, 120: 1.980}


RATES = ("monthly_churn", "service_level", "abandonment_rate", "mean_satisfaction", "share_start", "share_end",
         "expected_churn")
"""Figures that are shares of something, in [0, 1]."""
COUNTS = ("lines_start", "lines_end", "units_start", "churned_lines", "churned_units", "gross_adds_lines",
          "line_months", "offers", "accepted", "saves", "calls", "complaints", "revenue", "retention_spend",
          "launch_spend", "discounted_spend", "discounted_revenue")
"""Figures that cannot be negative (lines, offers, calls, money received or spent)."""
METRIC_RANGES: dict[str, tuple[float, float]] = {**dict.fromkeys(RATES, (0.0, 1.0)),
                                                  **dict.fromkeys(COUNTS, (0.0, float("inf")))}
"""Each bounded figure's range; figures not listed (margin, value, NPV, ROI) may take any sign."""


Bound = TypeVar("Bound", float, pd.Series)
"""An interval's end: one figure's, or a column of them."""


def within_range(metric: str, low: Bound, high: Bound) -> tuple[Bound, Bound]:
    """A 95% interval of ``metric``'s mean cut to the metric's range (:data:`METRIC_RANGES`).

    The t-interval over replications is symmetric, so for a rate near 0 or 1 (a service level near 1
    with few replications, an abandonment rate near 0) it reaches past the range. The mean cannot lie
    there, so cutting the interval to the range drops only impossible values: whenever the t-interval
    covers the true mean, the cut one does too, and its coverage stays at least 95%. (A logit or Wilson
    interval would need every replication strictly inside (0, 1), or a binomial count of trials; a
    replication's rate is neither, its spread comes from outages and queues shared by all its lines.)"""
    lo, hi = METRIC_RANGES.get(metric, (-float("inf"), float("inf")))
    return np.maximum(low, lo), np.minimum(high, hi)


def difference_range(metric: str, low: Bound, high: Bound) -> tuple[Bound, Bound]:
    """A paired difference of ``metric`` cut to what two values in its range can differ by."""
    lo, hi = METRIC_RANGES.get(metric, (-float("inf"), float("inf")))
    return np.maximum(low, lo - hi), np.minimum(high, hi - lo)


def t_quantile(df: int) -> float:
    """Student t 97.5% quantile (for 95% intervals over replications), interpolated from a table."""
    if df <= 0:
        return float("nan")
    keys = sorted(T_975)
    if df >= keys[-1]:
        return 1.96
    for low, high in zip(keys, keys[1:]):
        if low <= df <= high:
            return T_975[low] + (T_975[high] - T_975[low]) * (df - low) / (high - low)
    return T_975[df]


def mean_interval(values: np.ndarray) -> tuple[float, float, float, int]:
    """Mean, standard deviation and half-width of the 95% t-interval over the finite values, and their
    count; a figure undefined in some replications (ROI without spend) is left out. The spread and
    half-width are NaN below two values."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    k = len(x)
    mean = float(x.mean()) if k else float("nan")
    sd = float(x.std(ddof=1)) if k > 1 else float("nan")
    half = t_quantile(k - 1) * sd / np.sqrt(k) if k > 1 else float("nan")
    return mean, sd, half, k


@dataclass(frozen=True)
class SimulationResult:
    """Tables of one or more replications of one allocation."""

    monthly: pd.DataFrame
    """One row per replication, month and tier."""
    levers: pd.DataFrame
    """Spend, offers and acceptances per replication, month, tier and lever."""
    market: pd.DataFrame
    """Lines and share per replication, month and operator."""
    contact_center: pd.DataFrame
    """Calls, service level, waits, abandonment and complaints per replication and month."""
    outages: pd.DataFrame
    launches: pd.DataFrame
    """Launch costs paid per replication: month, lever, period, spend (not part of any tier's spend)."""
    cells: pd.DataFrame
    """Per replication and funded cell: its amount, offers made and accepted, money committed over the
    offers' life (the months a leaving line will not run subtracted)."""

    _FRAMES: ClassVar[tuple[str, ...]] = ("monthly", "levers", "market", "contact_center", "outages", "launches", "cells")

    @classmethod
    def from_records(cls, records: Records, replication: int) -> SimulationResult:
        monthly = pd.DataFrame(records.tier_months).fillna({"gross_adds_won_lines": 0.0})
        if "gross_adds_won_lines" not in monthly:
            monthly["gross_adds_won_lines"] = 0.0
        monthly["gross_adds_lines"] = monthly["gross_adds_market_lines"] + monthly["gross_adds_won_lines"]
        book = records.levers
        levers = pd.DataFrame(
            [(t, lv, m, book.spend[(t, lv, m)], book.offers[(t, lv, m)], book.accepted[(t, lv, m)])
             for (t, lv, m) in sorted(book.spend)],
            columns=["tier", "lever", "month", "spend", "offers", "accepted"])
        spend = levers.groupby(["month", "tier"])[["spend", "offers", "accepted"]].sum()
        monthly = monthly.merge(spend.rename(columns={"spend": "retention_spend"}), how="left",
                                left_on=["month", "tier"], right_index=True)
        monthly[["retention_spend", "offers", "accepted"]] = monthly[["retention_spend", "offers", "accepted"]].fillna(
            0.0).astype("float64")
        frames = {"monthly": monthly, "levers": levers, "market": pd.DataFrame(records.market),
                  "contact_center": pd.DataFrame(records.contact_center), "outages": pd.DataFrame(
                      records.outages, columns=["month", "region", "start", "hours", "affected_lines"]),
                  "launches": pd.DataFrame(records.launches, columns=["month", "lever", "period", "spend"]).astype(
                      {"month": "int64", "spend": "float64"}),
                  "cells": pd.DataFrame(records.cells, columns=["tier", "lever", "period", "amount", "offers",
                                                                "accepted", "committed"]).astype(
                      {"amount": "float64", "offers": "float64", "accepted": "float64", "committed": "float64"})}
        # A tier whose last line has left has no mean satisfaction; its row keeps the last lines' figure, so
        # no table has a hole (every mean over months weights a month by its lines, so the row adds nothing).
        monthly["mean_satisfaction"] = monthly.groupby("tier", sort=False)["mean_satisfaction"].ffill()
        for frame in frames.values():
            frame.insert(0, "replication", replication)
        return cls(**frames)

    @classmethod
    def concat(cls, results: list[SimulationResult]) -> SimulationResult:
        return cls(**{name: pd.concat([getattr(r, name) for r in results], ignore_index=True)
                      for name in cls._FRAMES})

    def first(self, count: int) -> SimulationResult:
        """The first ``count`` replications (by number) of these tables."""
        numbers = sorted(self.monthly["replication"].unique())[:count]

        def kept(frame: pd.DataFrame) -> pd.DataFrame:
            if "replication" not in frame:
                return frame
            return frame[frame["replication"].isin(numbers)].reset_index(drop=True)
        return SimulationResult(**{name: kept(getattr(self, name)) for name in self._FRAMES})

    @property
    def replications(self) -> int:
        return int(self.monthly["replication"].nunique())

    def by_tier(self) -> pd.DataFrame:
        """Per replication and tier over the horizon: lines, churn, line-months, revenue, margin, spend,
        satisfaction.

        Lines, churn, revenue and margin are counted as the comparison counts them, with the luck of the
        draws removed (:func:`sim.valuation.expected_paths`): the same figures ``retention run`` reports
        for a strategy. ``monthly`` keeps the draws as they fell."""
        # Imported when used: valuation reads these tables.
        from .valuation import expected_paths

        m = self.monthly
        g = m.groupby(["replication", "tier"], sort=False)
        paths = expected_paths(m)
        expected = paths.groupby(["replication", "tier"], sort=False)
        first = m[m["month"] == m["month"].min()].set_index(["replication", "tier"])
        last = paths[paths["month"] == paths["month"].max()].set_index(["replication", "tier"])
        out = pd.DataFrame({
            "lines_start": first["lines_start"],
            "lines_end": last["lines_end"],
            "churned_lines": expected["churned_lines"].sum(),
            "gross_adds_lines": g["gross_adds_lines"].sum(),
            "line_months": expected["lines"].sum(),
            "monthly_churn": expected["churned_lines"].sum() / expected["lines"].sum(),
            "revenue": expected["revenue"].sum(),
            "margin": expected["margin"].sum(),
            "retention_spend": g["retention_spend"].sum(),
            "offers": g["offers"].sum(),
            "accepted": g["accepted"].sum(),
            "saves": g["saves"].sum(),
            "mean_satisfaction": line_weighted(m, ["replication", "tier"], "mean_satisfaction"),
        })
        return out.reset_index()

    def launch_spend(self) -> pd.Series:
        """Launch costs per replication (0 where none was paid)."""
        replications = pd.Index(sorted(self.monthly["replication"].unique()), name="replication")
        return self.launches.groupby("replication")["spend"].sum().reindex(replications, fill_value=0.0)

    def totals(self) -> pd.DataFrame:
        """Per replication, over all tiers and the horizon: the figures a planner compares (retention
        spend includes launch costs)."""
        bt = self.by_tier().groupby("replication")
        cc = self.contact_center.groupby("replication")
        out = pd.DataFrame({
            "lines_start": bt["lines_start"].sum(),
            "lines_end": bt["lines_end"].sum(),
            "churned_lines": bt["churned_lines"].sum(),
            "monthly_churn": bt["churned_lines"].sum() / bt["line_months"].sum(),
            "revenue": bt["revenue"].sum(),
            "margin": bt["margin"].sum(),
            "retention_spend": bt["retention_spend"].sum() + self.launch_spend(),
            "launch_spend": self.launch_spend(),
            "offers": bt["offers"].sum(),
            "accepted": bt["accepted"].sum(),
        })
        if len(self.contact_center):
            out["calls"] = cc["calls"].sum()
            out["service_level"], out["abandonment_rate"] = call_rates(self.contact_center)
            out["complaints"] = cc["complaints"].sum()
        return out.reset_index()


def summarize(per_replication: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Mean, standard deviation and 95% interval of every numeric column over replications; a figure no
    replication defines has no row. The interval is cut to the figure's range (:func:`within_range`)."""
    by = by or []
    values = [c for c in per_replication.columns if c not in by + ["replication"]
              and pd.api.types.is_numeric_dtype(per_replication[c])]
    rows = []
    groups = per_replication.groupby(by, sort=False) if by else [((), per_replication)]
    for key, frame in groups:
        key = key if isinstance(key, tuple) else (key,)
        for column in values:
            mean, sd, half, k = mean_interval(frame[column].to_numpy(dtype=float))
            if k == 0:  # defined in no replication (the ROI of spending nothing): no row, rather than blanks
                continue
            low, high = within_range(column, mean - half, mean + half) if k > 1 else (mean, mean)
            rows.append({**dict(zip(by, key)), "metric": column, "mean": mean, "sd": sd,
                         "ci_low": low, "ci_high": high, "replications": k})
    return pd.DataFrame(rows)


def line_weighted(monthly: pd.DataFrame, by: list[str], column: str) -> pd.Series:
    """``column``'s mean over months by ``by``, each month weighted by its lines at the start: a month of
    an emptied tier (no lines) adds nothing, and a tier of more lines counts for more."""
    weights = monthly["lines_start"].clip(lower=0.0)
    weighted = (monthly[column] * weights).groupby([monthly[b] for b in by], sort=False).sum()
    total = weights.groupby([monthly[b] for b in by], sort=False).sum()
    plain = monthly.groupby(by, sort=False)[column].mean()
    # A group with no lines in any month has no weights: its plain mean (the figure its rows carry).
    return (weighted / total.where(total > 0)).fillna(plain)


def call_rates(contact_center: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per replication: the service level and the abandonment rate over all its calls. Without calls no
    caller waited past the target and none hung up: 1 and 0, as ``contact_center.csv`` counts a month
    without calls, so the summary and the monthly table agree."""
    cc = contact_center.groupby("replication")
    calls = cc["calls"].sum()
    some = calls > 0
    served = (cc["answered_in_target"].sum() / calls.where(some)).where(some, 1.0)
    abandoned = (cc["abandoned"].sum() / calls.where(some)).where(some, 0.0)
    return served, abandoned
