"""The run's charts (PNG) and its self-contained HTML report.

The report embeds its charts as data URIs and carries no script or style from outside, so it
opens offline and can be mailed as one file. Charts are drawn with matplotlib's Agg backend
and saved without a timestamp, so the same run gives the same bytes.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..run.pipeline import RunOutcome

PNG_METADATA = {"Software": None}
"""No software version in the PNGs: the bytes depend on the figures only."""


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata=PNG_METADATA)
    plt.close(figure)
    return buffer.getvalue()


def _monthly_lines(series: dict[str, pd.Series], ylabel: str, title: str) -> bytes:
    """One line per named series over the months (values already in the unit of ``ylabel``)."""
    figure, axis = plt.subplots(figsize=(8, 4.2))
    for label, values in series.items():
        axis.plot(values.index, values.to_numpy(), label=label, linewidth=1.6)
    axis.set_xlabel("month")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _png(figure)


def churn_curves(outcome: RunOutcome) -> bytes:
    """Mean monthly churn per strategy, month by month."""
    series = {}
    for name, result in outcome.results.items():
        m = result.monthly.groupby(["replication", "month"])[["churned_lines", "lines_start"]].sum()
        series[name] = (m["churned_lines"] / m["lines_start"]).groupby(level="month").mean() * 100
    return _monthly_lines(series, "monthly churn, % of lines", "Churn by strategy (mean over replications)")


def frontier_chart(outcome: RunOutcome) -> bytes:
    """Value retained and its marginal return against the total budget."""
    table = outcome.frontier[outcome.frontier["status"].isin(["optimal", "feasible"])]
    figure, axis = plt.subplots(figsize=(8, 4.2))
    axis.plot(table["budget"], table["value"], color="#1f77b4", linewidth=2, label="value retained")
    axis.axvline(outcome.scenario.budget.total, color="grey", linestyle="--", linewidth=1, label="scenario budget")
    axis.set_xlabel(f"total budget ({outcome.scenario.meta.currency})")
    axis.set_ylabel("value retained")
    twin = axis.twinx()
    twin.step(table["budget"], table["marginal_return"], color="#d62728", where="post", linewidth=1.2,
              label="marginal return")
    twin.set_ylabel("shadow price of the budget")
    axis.set_title("Efficient frontier")
    lines = axis.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    axis.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="center right")
    axis.grid(alpha=0.3)
    return _png(figure)


def allocation_heatmap(outcome: RunOutcome, strategy: str) -> bytes:
    """Money per tier and lever over the horizon for ``strategy``."""
    table = outcome.allocations[strategy].to_frame()
    scenario = outcome.scenario
    grid = pd.DataFrame(0.0, index=list(scenario.tiers), columns=list(scenario.levers))
    for row in table.itertuples():
        grid.loc[row.tier, row.lever] += row.amount
    figure, axis = plt.subplots(figsize=(8, 0.45 * len(grid) + 1.8))
    image = axis.imshow(grid.to_numpy(), cmap="Blues", aspect="auto")
    axis.set_xticks(range(len(grid.columns)), grid.columns, rotation=30, ha="right", fontsize=8)
    axis.set_yticks(range(len(grid.index)), grid.index, fontsize=8)
    top = grid.to_numpy().max() or 1.0
    for (i, j), value in np.ndenumerate(grid.to_numpy()):
        if value > 0:
            axis.text(j, i, f"{value / 1e3:,.0f}k", ha="center", va="center", fontsize=7,
                      color="white" if value > top / 2 else "black")
    figure.colorbar(image, ax=axis, label=scenario.meta.currency)
    axis.set_title(f"Allocation of '{strategy}' by tier and lever (all periods)")
    return _png(figure)


def market_shares(outcome: RunOutcome, strategy: str) -> bytes:
    """Market share per operator and month under ``strategy`` (mean over replications)."""
    market = outcome.results[strategy].market
    shares = market.groupby(["month", "operator"])["share"].mean().unstack("operator") * 100
    return _monthly_lines({str(op): shares[op] for op in shares.columns}, "market share, %",
                          f"Market shares under '{strategy}'")


def npv_chart(outcome: RunOutcome) -> bytes:
    """Each strategy's NPV less the baseline strategy's, paired by replication, with its 95% interval.

    Strategies on common random numbers differ far less from each other than their NPVs vary between
    replications, so the absolute NPVs' intervals overlap where the paired difference is clear: the
    chart shows the difference, the figure a decision rests on."""
    rows = outcome.paired[outcome.paired["metric"] == "npv"]
    figure, axis = plt.subplots(figsize=(8, 0.6 * len(rows) + 1.6))
    centre = rows["difference"].to_numpy()
    low, high = rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy()
    colours = np.where(low > 0, "#2ca02c", np.where(high < 0, "#d62728", "#999999"))
    axis.barh(rows["strategy"], centre, xerr=np.vstack([centre - low, high - centre]), color=colours, alpha=0.85,
              capsize=4)
    axis.axvline(0.0, color="black", linewidth=0.8)
    axis.set_xlabel(f"NPV less the NPV of '{outcome.baseline}' ({outcome.scenario.meta.currency}, paired by replication)")
    axis.set_title(f"NPV against '{outcome.baseline}' (95% interval): green gains, red loses, grey cannot tell")
    axis.grid(alpha=0.3, axis="x")
    return _png(figure)


TARGETING_PANELS = 6
"""Tier and lever pairs the targeting chart draws at most: those the LP funds first."""
RULE_STYLES = {"risk": ("#d62728", "-"), "uplift": ("#1f77b4", "-"), "value": ("#2ca02c", "--"),
               "oracle": ("#555555", ":")}


def targeting_chart(outcome: RunOutcome) -> bytes:
    """Each rule's profit by depth of contact, side by side, for the tiers and levers the plan funds."""
    curves = outcome.targeting_curves
    pairs = list(dict.fromkeys(zip(curves["tier"], curves["lever"])))
    plan = outcome.plan.allocation
    funded = set(zip(plan.loc[plan["amount"] > 0, "tier"], plan.loc[plan["amount"] > 0, "lever"]))
    pairs = ([p for p in pairs if p in funded] + [p for p in pairs if p not in funded])[:TARGETING_PANELS]
    columns = min(3, len(pairs))
    rows = -(-len(pairs) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for axis, (tier, lever) in zip(axes.flat, pairs):
        mine = curves[(curves["tier"] == tier) & (curves["lever"] == lever)]
        for rule, (colour, line) in RULE_STYLES.items():
            one = mine[mine["rule"] == rule]
            axis.plot(one["depth"] * 100, one["profit"], color=colour, linestyle=line, label=rule)
        axis.axhline(0.0, color="black", linewidth=0.6)
        axis.set_title(f"{tier} · {lever}" + (" (funded)" if (tier, lever) in funded else ""), fontsize=10)
        axis.set_xlabel("share of the tier contacted, best-ranked first (%)", fontsize=8)
        axis.set_ylabel(f"profit ({outcome.scenario.meta.currency})", fontsize=8)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(pairs):]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    figure.suptitle("Profit by depth of contact, per targeting rule (at the lever's stated acceptance)")
    figure.tight_layout()
    return _png(figure)


def charts(outcome: RunOutcome) -> dict[str, bytes]:
    """Every chart of the report, by file name."""
    shown = next((s.name for s in outcome.scenario.strategies if s.kind == "lp_optimal" and s.name in outcome.results),
                 outcome.baseline if outcome.baseline in outcome.results else next(iter(outcome.results)))
    return {
        "churn_by_strategy.png": churn_curves(outcome),
        "npv_by_strategy.png": npv_chart(outcome),
        "frontier.png": frontier_chart(outcome),
        "allocation_heatmap.png": allocation_heatmap(outcome, shown),
        "market_shares.png": market_shares(outcome, shown),
        **({"targeting_rules.png": targeting_chart(outcome)} if len(outcome.targeting_curves) else {}),
    }


def _number(x: float) -> str:
    """A figure as a planner reads it: millions as 2,411.4M, thousands whole, rates and ratios to 4 digits."""
    if math.isnan(x):  # a ratio without a denominator (ROI of spending nothing)
        return "–"
    if abs(x) >= 1e6:
        return f"{x / 1e6:,.1f}M"
    if abs(x) >= 1e3:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def _table(frame: pd.DataFrame, caption: str, table_id: str) -> str:
    body = frame.to_html(index=False, border=0, classes="data", float_format=_number, na_rep="–")
    return f'<section id="{table_id}"><h2>{html.escape(caption)}</h2>{body}</section>'


def _wide_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per strategy: 'mean [low, high]' per metric."""
    def cell(r: pd.Series) -> str:
        return f"{_number(r['mean'])} [{_number(r['ci_low'])}, {_number(r['ci_high'])}]"

    table = summary.assign(text=summary.apply(cell, axis=1)).pivot(index="strategy", columns="metric", values="text")
    order = [m for m in summary["metric"].unique() if m in table.columns]
    strategies = list(dict.fromkeys(summary["strategy"]))
    table = table.loc[strategies, order]
    table.columns.name = None
    return table.reset_index()


def _operators_wide(operators: pd.DataFrame) -> pd.DataFrame:
    """One row per strategy and operator: share at the end in percent, discounted margin in millions."""
    def cell(r: pd.Series, scale: float, unit: str) -> str:
        return f"{r['mean'] * scale:,.1f}{unit} [{r['ci_low'] * scale:,.1f}, {r['ci_high'] * scale:,.1f}]"

    share = operators[operators["metric"] == "share_end"].set_index(["strategy", "operator"])
    margin = operators[operators["metric"] == "discounted_margin"].set_index(["strategy", "operator"])
    table = pd.DataFrame({"share at the end": share.apply(cell, axis=1, scale=100.0, unit="%"),
                          "discounted margin (M)": margin.apply(cell, axis=1, scale=1e-6, unit="")})
    strategies = list(dict.fromkeys(operators["strategy"]))
    return table.reindex(strategies, level="strategy").reset_index()


def _targeting_section(outcome: RunOutcome, chart: str) -> str:
    """Risk against uplift targeting side by side: per tier and lever, each rule's best depth of contact,
    profit per contacted customer there, and expected maximum profit over the acceptance rate's law."""
    table = outcome.targeting.copy()
    table["best depth"] = (table["best_depth"] * 100).map(lambda x: f"{x:.1f}%")
    table["expected best depth"] = (table["expected_best_depth"] * 100).map(lambda x: f"{x:.1f}%")
    shown = table[["tier", "lever", "rule", "eligible", "best depth", "contacted", "profit_per_contact", "max_profit",
                   "expected_max_profit", "expected best depth"]].rename(columns={
                       "profit_per_contact": "profit per contacted customer", "max_profit": "maximum profit",
                       "expected_max_profit": "expected maximum profit (EMP)"})
    intro = ("<p>Each rule ranks the lines a lever may reach at the start of the horizon: <b>risk</b> by the churn "
             "model, <b>uplift</b> by the uplift model, <b>value</b> by uplift times what a kept line is worth less "
             "the offer's cost, <b>oracle</b> by the true incremental value (a bound no rule passes). Contacting the "
             "best-ranked share of the tier earns the profit drawn; its peak is the maximum profit and the best "
             "depth, and the expected maximum profit averages the peak over the acceptance rate's uncertainty "
             "(Beta, α + β = 20, Verbraken et al. 2013). A best depth of 0 means no depth pays.</p>")
    body = shown.to_html(index=False, border=0, classes="data", float_format=_number, na_rep="–")
    return (f'<section id="targeting"><h2>Whom to contact: targeting rules side by side</h2>{intro}{chart}'
            f"{body}</section>")


def _from_data(scenario) -> str:  # type: ignore[no-untyped-def]
    """Which figures of the scenario came from a customer table, and which from its template."""
    source = scenario.population
    tiers = pd.DataFrame([{"tier": name, "lines": t.line_count, "ARPU": t.arpu, "baseline monthly churn": t.baseline_churn,
                           "contract share": t.contract.share, "mean tenure (months)": t.tenure.mean_months}
                          for name, t in scenario.tiers.items()])
    effects = pd.DataFrame({"effect": list(source.effects), "on the log-odds of monthly churn": list(source.effects.values())})
    auc = f"{source.cv_auc:.3f}" if source.cv_auc is not None else "not recorded"
    return (f"<section id='from_data'><h2>Figures from data</h2><p>The population is the customer table "
            f"<code>{html.escape(source.table)}</code>, read through <code>{html.escape(source.mapping)}</code>, one "
            f"simulated line per row. From the data: the tiers, their lines, ARPU, baseline churn (the fitted "
            f"hazard, churn flag over {source.observation_months} months), contract share and term, tenure, the "
            f"sensitivities to tenure, price and complaints, and each line's own propensity from the effects below "
            f"(cross-validated AUC {auc}). Everything else (competitors, network, contact center, levers, costs, "
            f"budget) comes from the scenario's template, not from the data.</p>"
            + tiers.to_html(index=False, border=0, classes="data", float_format=lambda x: f"{x:,.4g}")
            + effects.to_html(index=False, border=0, classes="data", float_format=lambda x: f"{x:+.3f}")
            + "</section>")


def report_html(outcome: RunOutcome, images: Mapping[str, bytes]) -> str:
    """The self-contained report."""
    scenario = outcome.scenario
    meta = scenario.meta

    def img(name: str, alt: str) -> str:
        data = base64.b64encode(images[name]).decode("ascii")
        return f'<figure><img class="chart" alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'

    paired = outcome.paired[outcome.paired["metric"].isin(["npv", "monthly_churn", "value_retained", "lines_retained",
                                                            "retention_spend"])]
    binding = outcome.plan.shadow_prices[outcome.plan.shadow_prices["binding"]][["constraint", "shadow_price",
                                                                                  "statement"]]
    sections = [
        f"<h1>Retention plan: {html.escape(meta.name)}</h1>",
        f"<p>{html.escape(meta.description)}</p>",
        f"<p class='facts'>{scenario.total_lines:,} lines, {len(scenario.tiers)} tiers, {len(scenario.levers)} levers; "
        f"budget {scenario.budget.total:,.0f} {html.escape(meta.currency)} over {meta.horizon_months} months; "
        f"{outcome.replications} replications per strategy on common random numbers (seed {outcome.seed}). "
        f"Intervals are 95% over replications; differences are paired against '{html.escape(outcome.baseline)}'.</p>",
        _table(_wide_summary(outcome.summary), "Strategies compared (mean [95% interval])", "summary"),
        img("npv_by_strategy.png", "NPV against the baseline strategy"),
        _table(paired, f"Paired differences against '{outcome.baseline}'", "paired"),
        img("churn_by_strategy.png", "Churn curves by strategy"),
        _table(outcome.predicted, "The LP's prediction against the simulation", "predicted"),
        *([_table(outcome.plan.loop.rounds[["round", "predicted_value", "simulated_value", "ci_low", "ci_high",
                                            "predicted_net_value", "simulated_net_value", "net_gain_over_first",
                                            "agrees", "chosen"]],
                  "The closed loop: each round's plan, predicted and simulated (at the curve measurement's scale; "
                  "every column in closed_loop.csv)", "closed_loop")] if outcome.plan.loop is not None else []),
        _table(outcome.plan.allocation, "The LP-optimal allocation", "allocation"),
        img("allocation_heatmap.png", "Allocation heat map"),
        _table(binding, "Binding constraints and their shadow prices", "shadow_prices"),
        img("frontier.png", "Efficient frontier"),
        img("market_shares.png", "Market shares"),
    ]
    if len(outcome.targeting):
        sections.append(_targeting_section(outcome, img("targeting_rules.png", "Profit by depth of contact per rule")))
    if len(outcome.operators):
        sections.append(_table(_operators_wide(outcome.operators),
                               "Every operator's share at the end and discounted margin (before retention spend), "
                               "mean [95% interval]", "operators"))
    if len(outcome.price_moves):
        sections.append(_table(outcome.price_moves, "What our price moves did, without retention: with them against "
                               "the same market without them (the rivals' answers included)", "price_moves"))
    if scenario.population is not None:
        sections.insert(3, _from_data(scenario))
    if len(outcome.variants):
        sections.append(_table(outcome.variants, "The robust plan under each competitor variant", "variants"))
    by_tier = outcome.by_tier[outcome.by_tier["metric"] == "monthly_churn"][["strategy", "tier", "mean", "ci_low",
                                                                              "ci_high"]]
    sections.append(_table(by_tier, "Monthly churn by tier", "by_tier"))
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}"
             "table.data{border-collapse:collapse;font-size:12px;margin:0.5em 0 1.5em}"
             "table.data th,table.data td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}"
             "table.data th{background:#f3f3f3}img.chart{max-width:100%}h2{margin-top:1.5em}")
    # Marks the page once every chart has decoded, so a headless browser can tell it rendered.
    script = ("window.addEventListener('load',function(){var i=document.querySelectorAll('img.chart'),n=0;"
              "i.forEach(function(e){if(e.complete&&e.naturalWidth>0){n++;}});"
              "document.body.setAttribute('data-charts-rendered',n+'/'+i.length);});")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Retention plan: {html.escape(meta.name)}</title><style>{style}</style></head><body>"
            + "\n".join(sections) + f"<script>{script}</script></body></html>\n")
