"""One valuation of a simulated run, for every stage that puts a money figure on it.

The response curves, the allocation's objective and ROI floor, the comparison tables and the report
all read money through these functions, so value, spend, NPV and ROI mean the same everywhere.

For a tier in a replication, with the monthly discount factor ``d = (1 + r)^(-1/12)``
(``r`` = ``meta.discount_rate_annual``), the horizon ``H``, ``T`` = ``meta.terminal_value_months``
and ``c`` the tier's stated monthly churn:

* **discounted margin** ``sum_m d^m * margin_m``: the margin the tier's lines bring each month
  (lines billed x ARPU x (price paid - (1 - margin rate))), whoever they are: lines won back from
  competitors count, so keeping a line that would have gone to a rival also shows the rival's
  churner we no longer win back;
* **terminal value** ``d^H * lines_end * (margin_H / lines_H) * sum_{k=1..T} (d * (1 - c))^k``: the
  lines still with us after the horizon keep their last margin for ``T`` more months while they
  keep churning at the tier's stated rate;
* **value** = discounted margin + terminal value, before any retention spend;
* **spend** is what retention paid in the month it paid it (contacts, acceptances, every month an
  offer runs; costs committed beyond the horizon in its last month), **discounted spend** the same
  discounted by ``d^m``; launch costs belong to no tier and are counted for the whole run.

**Luck removed.** Lines are counted as the months' hazards expect them, not as the draws fell: each
month's churners are replaced by the expected leavers (each line's hazard summed over the lines billed,
an account's times its own lines, less the lines the save desk kept), and the lines joining by their
expected number. The difference, the month's *luck*, is carried into later months as the lines it
would have left with us: they are billed (at the month's margin per line) and keep leaving at the rate
their own month expected, so a line lost by luck in month *k* counts for ``(1 - h_k)^(m - k - 1)`` of
a line in month *m* (``h_k`` the month's mean hazard) and its leavers count as churn. Given
everything before it, a month's draw differs from its expectation by zero on average, and the weight
it is carried with is known before the draw, so the correction is a control variate: every figure
keeps its mean exactly. But two strategies on the same random numbers no longer differ by which lines
happened to draw a churn, and intervals narrow several times (a key-account tier of a few accounts
loses one now and then: the hazards say how likely that was). ``as_drawn`` gives the figures as the
draws fell (what ``monthly.csv`` records), for checking that the two have the same mean.

A run's **NPV** is the sum over tiers of value less discounted spend, less discounted launch costs.
The **value retained** by a strategy is its value less that of the run without retention on the same
random numbers, so value retained less discounted spend (launch costs included) is exactly its NPV
gain over no retention. Its **ROI** is value retained per unit of discounted spend: above 1, the
spend pays for itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .scenario import Scenario

if TYPE_CHECKING:  # annotations only: the engine values lines kept, and results import the engine
    from .results import SimulationResult

TIER_VALUES = ["churned_lines", "line_months", "lines_end", "revenue", "margin", "retention_spend",
               "discounted_margin", "terminal_value", "value", "discounted_spend"]
"""The columns of :func:`tier_values` (after replication and tier): lines, churn, revenue and margin as
the hazards expect them (see the module), money over the horizon."""


def monthly_discount(scenario: Scenario) -> float:
    """``d``: what a unit of money a month from now is worth today."""
    return 1.0 / (1.0 + scenario.meta.monthly_discount_rate)


def terminal_annuity(scenario: Scenario, tier: str) -> float:
    """Margin months, discounted, that a line still with us at the horizon is worth: ``sum_{k=1..T} (d(1-c))^k``."""
    q = monthly_discount(scenario) * (1.0 - scenario.tiers[tier].baseline_churn)
    return float(sum(q ** k for k in range(1, scenario.meta.terminal_value_months + 1)))


def value_of_a_line_kept(scenario: Scenario, tier: str, month: int, margin_per_month: float) -> float:
    """Today's value of one line of ``tier`` that would have left at ``month``'s decision and stays,
    as :func:`tier_values` counts it: the margin it brings each later month of the horizon, discounted,
    while it keeps churning at the tier's stated rate, and the terminal value of what is left of it at
    the horizon. ``margin_per_month``: what the line brings a month (:func:`sim.competition.line_margin`)."""
    d = monthly_discount(scenario)
    q = 1.0 - scenario.tiers[tier].baseline_churn
    horizon = scenario.meta.horizon_months
    within = sum(d ** k * q ** (k - month - 1) for k in range(month + 1, horizon + 1))
    after = d ** horizon * q ** max(0, horizon - month) * terminal_annuity(scenario, tier)
    return float(margin_per_month * (within + after))


def period_discount(scenario: Scenario, period: str) -> float:
    """The mean discount factor of a period's months: what spending a unit evenly over it costs today."""
    d = monthly_discount(scenario)
    start = 0
    for p in scenario.meta.periods:
        if p.name == period:
            return float(np.mean([d ** m for m in range(start + 1, start + p.months + 1)]))
        start += p.months
    raise KeyError(period)


CARRY_ELEMENTS = 2**22
"""Elements of the luck-carrying matrices held at once (32 MB), whatever the replications and tiers."""


def _luck_carried(luck: np.ndarray, stay: np.ndarray) -> np.ndarray:
    """``after[g, m] = sum_{k<=m} luck[g, k] * stay[g, k]^(m-k)``: per group (a row), the lines each month's
    luck (lines lost beyond the hazards' expectation) would still be with us at the end of month ``m``,
    had they stayed and kept leaving at the rate their month expected (``1 - stay``)."""
    months = luck.shape[1]
    gap = np.arange(months)[:, None] - np.arange(months)[None, :]
    later = gap >= 0
    power = np.where(later, gap, 0)[None]
    after = np.empty_like(luck, dtype=np.float64)
    # A few groups at a time: the carry is months x months per group (a ten-year horizon, 115 kB each).
    step = max(1, CARRY_ELEMENTS // (months * months))
    for start in range(0, luck.shape[0], step):
        rows = slice(start, start + step)
        # stay[g, k] ** gap[m, k] where k <= m; zero above the diagonal (luck is carried forward only).
        carry = np.where(later[None], stay[rows, None, :] ** power, 0.0)
        after[rows] = np.einsum("gmk,gk->gm", carry, luck[rows])
    return after


def expected_paths(monthly: pd.DataFrame, *, as_drawn: bool = False) -> pd.DataFrame:
    """Per replication, tier and month (sorted): the lines billed, revenue, margin and churned lines with
    the luck of the draws removed (see the module), and the expected lines at the end of the month.
    ``as_drawn``: the same columns as the draws fell (what happened), for the figures the run records and
    for checking that removing the luck keeps the mean."""
    m = monthly.sort_values(["replication", "tier", "month"], kind="stable")
    joined = m["gross_adds_market_lines"] + m["gross_adds_won_lines"]
    lines = m["lines_start"]
    keys = [m["replication"], m["tier"]]
    if as_drawn:
        return pd.DataFrame({
            "replication": m["replication"], "tier": m["tier"], "month": m["month"], "lines": lines,
            "revenue": m["revenue"], "margin": m["margin"], "churned_lines": m["churned_lines"],
            "lines_end": lines - m["churned_lines"] + joined, "retention_spend": m["retention_spend"]})
    if "expected_churned_lines" in m:
        expected_leavers = m["expected_churned_lines"] - m["saved_lines"]
    else:  # a table without the lines-weighted expectation: every account at the tier's mean size
        per_unit = (m["lines_start"] / m["units_start"].where(m["units_start"] > 0)).fillna(0.0)
        expected_leavers = m["expected_churn"] * m["lines_start"] - m["saves"] * per_unit
    if "lines_cancelled_expected" in m:
        # Enterprise accounts' lines cancelled between renewals (their additions are in the gross adds).
        expected_leavers = expected_leavers + m["lines_cancelled_expected"].fillna(0.0)
    expected_joiners = m.get("gross_adds_market_expected", m["gross_adds_market_lines"]) + \
        m.get("gross_adds_won_expected", m["gross_adds_won_lines"])
    luck = (m["churned_lines"] - expected_leavers) + (expected_joiners - joined)
    # Each month's luck is carried forward at the survival its own month expected: a coefficient known
    # before the month's draws, so the correction keeps every mean exactly (see the module).
    stay = (1.0 - m["expected_churn"]).clip(0.0, 1.0)
    sizes = m.groupby(keys, sort=False).size()
    after = np.empty(len(m))
    if sizes.nunique() == 1:
        shape = (len(sizes), int(sizes.iloc[0]))
        after[:] = _luck_carried(luck.to_numpy(dtype=float).reshape(shape),
                                 stay.to_numpy(dtype=float).reshape(shape)).ravel()
    else:  # groups of unequal length (not from the engine, which records every tier every month)
        start = 0
        for size in sizes:
            part = slice(start, start + size)
            after[part] = _luck_carried(luck.to_numpy(dtype=float)[None, part],
                                        stay.to_numpy(dtype=float)[None, part])[0]
            start += size
    after = pd.Series(after, index=m.index)
    before = (after.groupby(keys).shift(1)).fillna(0.0)
    # The lines carried forward keep leaving: those leavers are counted where they would have left.
    carried_leavers = before + luck - after
    billed = lines.where(lines > 0)
    # Margin and revenue per line: what a line billed brings this month (the last month's where none is billed).
    margin_per_line = (m["margin"] / billed).groupby(keys).ffill().fillna(0.0)
    revenue_per_line = (m["revenue"] / billed).groupby(keys).ffill().fillna(0.0)
    return pd.DataFrame({
        "replication": m["replication"], "tier": m["tier"], "month": m["month"],
        "lines": lines + before,
        "revenue": m["revenue"] + before * revenue_per_line,
        "margin": m["margin"] + before * margin_per_line,
        "churned_lines": expected_leavers + carried_leavers,
        "lines_end": lines - m["churned_lines"] + joined + after,
        "retention_spend": m["retention_spend"],
    })


def period_start_discount(scenario: Scenario, period: str) -> float:
    """The discount factor of a period's first month, when its launch costs are paid."""
    start = 1
    for p in scenario.meta.periods:
        if p.name == period:
            return monthly_discount(scenario) ** start
        start += p.months
    raise KeyError(period)


def tier_values(result: SimulationResult, scenario: Scenario, *, as_drawn: bool = False) -> pd.DataFrame:
    """Per replication and tier: churn, lines, money over the horizon, and value (see the module);
    ``as_drawn``: counted as the draws fell instead (:func:`expected_paths`)."""
    d = monthly_discount(scenario)
    m = expected_paths(result.monthly, as_drawn=as_drawn)
    factor = d ** m["month"].astype(float)
    keys = [m["replication"], m["tier"]]
    grouped = m.groupby(keys)
    frame = pd.DataFrame({
        "churned_lines": grouped["churned_lines"].sum(),
        "line_months": grouped["lines"].sum(),
        "revenue": grouped["revenue"].sum(),
        "margin": grouped["margin"].sum(),
        "retention_spend": grouped["retention_spend"].sum(),
        "discounted_margin": (m["margin"] * factor).groupby(keys).sum(),
        "discounted_spend": (m["retention_spend"] * factor).groupby(keys).sum(),
    })
    horizon = int(m["month"].max())
    last = m[m["month"] == horizon].set_index(["replication", "tier"])
    frame["lines_end"] = last["lines_end"]
    per_line = (last["margin"] / last["lines"].where(last["lines"] > 0)).fillna(0.0)
    annuity = pd.Series({tier: terminal_annuity(scenario, tier) for tier in scenario.tiers})
    tiers = frame.index.get_level_values("tier")
    frame["terminal_value"] = d ** horizon * frame["lines_end"] * per_line * annuity.reindex(tiers).to_numpy()
    frame["value"] = frame["discounted_margin"] + frame["terminal_value"]
    frame.index.names = ["replication", "tier"]
    return frame[TIER_VALUES].reset_index()


def launch_values(result: SimulationResult, scenario: Scenario) -> pd.DataFrame:
    """Per replication: launch costs paid and the same discounted (0 where none was paid)."""
    d = monthly_discount(scenario)
    replications = pd.Index(sorted(result.monthly["replication"].unique()), name="replication")
    launches = result.launches.astype({"spend": "float64", "month": "float64"})
    frame = pd.DataFrame({
        "launch_spend": launches.groupby("replication")["spend"].sum(),
        "discounted_launch_spend": (launches["spend"] * d ** launches["month"])
        .groupby(launches["replication"]).sum(),
    }).reindex(replications, fill_value=0.0)
    return frame.astype(float)


def run_values(result: SimulationResult, scenario: Scenario, *, as_drawn: bool = False) -> pd.DataFrame:
    """Per replication: value, spend (launch costs included), discounted spend and NPV of the whole run
    (``as_drawn``: from the lines as the draws fell, :func:`expected_paths`)."""
    tiers = tier_values(result, scenario, as_drawn=as_drawn).groupby("replication")[["value", "retention_spend",
                                                                  "discounted_spend"]].sum()
    launches = launch_values(result, scenario)
    frame = pd.DataFrame({
        "value": tiers["value"],
        "retention_spend": tiers["retention_spend"] + launches["launch_spend"],
        "discounted_spend": tiers["discounted_spend"] + launches["discounted_launch_spend"],
    })
    frame["npv"] = frame["value"] - frame["discounted_spend"]
    return frame


def value_retained(result: SimulationResult, reference: SimulationResult, scenario: Scenario) -> pd.DataFrame:
    """Per replication and tier: the value and the lines a run keeps over ``reference`` (the run without
    retention on the same random numbers), with the run's spend and discounted spend in that tier."""
    mine = tier_values(result, scenario).set_index(["replication", "tier"])
    base = tier_values(reference, scenario).set_index(["replication", "tier"])
    return pd.DataFrame({
        "value": mine["value"] - base["value"],
        "retained_lines": base["churned_lines"] - mine["churned_lines"],
        "spend": mine["retention_spend"],
        "discounted_spend": mine["discounted_spend"],
    })
