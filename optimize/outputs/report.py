"""The run's self-contained HTML report, and the charts it embeds.

The report leads with the answer (:mod:`optimize.outputs.headline`): what to do with the budget,
what it gains, what it leaves unspent, which rules bind, the risk, how far to trust it. Then the
details, starting with why customers leave. Every figure goes through
:mod:`optimize.outputs.formatting`; the charts are drawn by :mod:`optimize.outputs.charts`.

The report embeds its charts as data URIs and carries no script or style from outside, so it
opens offline and can be mailed as one file; it holds no timestamp, so the same run gives the
same bytes.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Mapping
from dataclasses import replace

import pandas as pd

from sim.allocation import LAUNCH

from ..run.curve_cache import CurveStore
from ..run.parallel import begin_calls
from ..run.pipeline import RunOutcome
from .charts import (
    allocation_heatmap,
    churn_curves,
    churn_drivers_chart,
    frontier_chart,
    market_shares,
    npv_chart,
    response_curves_chart,
    targeting_chart,
)
from .formatting import (
    DASH,
    count,
    count_interval,
    money,
    money_column,
    money_interval,
    percent,
    percent_interval,
    points,
    points_interval,
    ratio,
    table_html,
    text,
    words,
)
from .headline import (
    allocation_matrix,
    answer_html,
    binding_rules,
    feed,
    recommended_strategy,
    robust_strategy,
)

Cell = Callable[[pd.Series], str]
"""Formats one metric's mean and interval (a row of a summary table) as one cell."""


def _plan_spend(outcome: RunOutcome) -> float:
    plan = recommended_strategy(outcome)
    return float(feed(outcome, plan)["amount"].sum()) if plan is not None else 0.0


def charts(outcome: RunOutcome) -> dict[str, bytes]:
    """Every chart of the report, by file name."""
    return drawing(outcome)()


def drawing(outcome: RunOutcome) -> Callable[[], dict[str, bytes]]:
    """Every chart of the report, begun on the command's workers where it has them
    (:func:`optimize.run.parallel.begin_calls`): the returned function waits for them, by file name. The
    same bytes wherever they are drawn."""
    plan = recommended_strategy(outcome)
    shown = plan if plan is not None else (outcome.baseline if outcome.baseline in outcome.results
                                           else next(iter(outcome.results)))
    # What the charts draw from, without the curve store, which holds the terminal it reports to.
    data = replace(outcome, curve_store=CurveStore())
    calls: dict[str, tuple[Callable[..., bytes], tuple[object, ...]]] = {
        "churn_by_strategy.png": (churn_curves, (data,)),
        "npv_by_strategy.png": (npv_chart, (data,)),
        "frontier.png": (frontier_chart, (data, _plan_spend(outcome))),
        "allocation_heatmap.png": (allocation_heatmap, (data, shown)),
        "response_curves.png": (response_curves_chart, (data, plan)),
        "market_shares.png": (market_shares, (data, shown)),
    }
    if len(outcome.churn_drivers):
        calls["churn_drivers.png"] = (churn_drivers_chart, (outcome.churn_drivers,))
    if len(outcome.targeting_curves):
        calls["targeting_rules.png"] = (targeting_chart, (data,))
    # The largest (a panel per tier and lever) first: two workers then finish at about the same time.
    begun = sorted(calls, key=lambda name: name != "response_curves.png")
    wait = begin_calls([calls[name] for name in begun])

    def drawn() -> dict[str, bytes]:
        images = dict(zip(begun, wait()))
        return {name: images[name] for name in calls}

    return drawn


# --- figures per metric -----------------------------------------------------------------------------

def _metric_cells(signed: bool) -> dict[str, Cell]:
    """How each comparison metric's mean and interval read (``signed``: a difference)."""
    def m(r: pd.Series) -> str:
        return money_interval(r["mean"], r["ci_low"], r["ci_high"], "", signed)

    return {
        "npv": m, "value_retained": m, "retention_spend": m, "discounted_spend": m,
        "monthly_churn": (lambda r: points_interval(r["mean"], r["ci_low"], r["ci_high"])) if signed
        else (lambda r: percent_interval(r["mean"], r["ci_low"], r["ci_high"])),
        "lines_retained": lambda r: count_interval(r["mean"], r["ci_low"], r["ci_high"], signed),
        "roi": lambda r: f"{ratio(r['mean'])} [{ratio(r['ci_low'])}, {ratio(r['ci_high'])}]"
        if r["mean"] == r["mean"] else DASH,
        "mean_satisfaction": (lambda r: points_interval(r["mean"], r["ci_low"], r["ci_high"])) if signed
        else (lambda r: percent_interval(r["mean"], r["ci_low"], r["ci_high"])),
    }


METRIC_WORDS = {"npv": "NPV", "value_retained": "value retained", "retention_spend": "retention spend",
                "monthly_churn": "monthly churn", "lines_retained": "lines retained (against no retention)",
                "roi": "ROI (value retained per discounted unit spent)", "mean_satisfaction": "satisfaction"}
MONEY_METRICS = {"npv", "value_retained", "retention_spend", "discounted_spend"}


def _header(metric: str, currency: str) -> str:
    return METRIC_WORDS[metric] + (f" ({currency})" if metric in MONEY_METRICS else "")


SUMMARY_METRICS = ("npv", "value_retained", "retention_spend", "monthly_churn", "lines_retained", "roi")
"""The comparison's columns in the report (every metric is in summary.csv); six fit a 1280 px page."""


def _summary(outcome: RunOutcome) -> str:
    cells = _metric_cells(signed=False)
    summary = outcome.summary
    rows = []
    for strategy in dict.fromkeys(summary["strategy"]):
        mine = summary[summary["strategy"] == strategy].set_index("metric")
        rows.append({"strategy": strategy, **{m: cells[m](mine.loc[m]) for m in SUMMARY_METRICS if m in mine.index}})
    currency = outcome.scenario.meta.currency
    columns = {"strategy": ("strategy", text)} | {m: (_header(m, currency), text) for m in SUMMARY_METRICS}
    return table_html(pd.DataFrame(rows), columns)


def _paired(outcome: RunOutcome) -> str:
    cells = _metric_cells(signed=True)
    paired = outcome.paired.rename(columns={"difference": "mean"})
    rows = []
    for strategy in dict.fromkeys(paired["strategy"]):
        mine = paired[paired["strategy"] == strategy].set_index("metric")
        rows.append({"strategy": strategy, **{m: cells[m](mine.loc[m]) for m in
                                              ("npv", "value_retained", "retention_spend", "monthly_churn",
                                               "lines_retained") if m in mine.index}})
    currency = outcome.scenario.meta.currency
    columns = {"strategy": ("strategy", text)} | {m: (_header(m, currency).replace(" (against no retention)", ""),
                                                      text) for m in ("npv", "value_retained", "retention_spend",
                                                                      "monthly_churn", "lines_retained")}
    return table_html(pd.DataFrame(rows), columns)


def _predicted(outcome: RunOutcome) -> str:
    currency = outcome.scenario.meta.currency
    rows = []
    for r in outcome.predicted.itertuples():
        lines = r.metric == "lines_retained"
        one = count if lines else (lambda x: money(x, ""))
        simulated = count_interval(r.simulated, r.ci_low, r.ci_high, False) if lines else \
            money_interval(r.simulated, r.ci_low, r.ci_high, "", False)
        rows.append({"strategy": r.strategy, "metric": words(r.metric).replace("npv gain", "net gain (NPV)"),
                     "predicted": one(r.predicted), "simulated": simulated,
                     "gap": count(r.gap, True) if lines else money(r.gap, "", True),
                     "share": percent(r.gap_share, 1)})
    return table_html(pd.DataFrame(rows), {"strategy": ("strategy", text),
                                           "metric": (f"figure (lines, or {currency})", text),
                                           "predicted": ("LP's prediction", text),
                                           "simulated": ("simulated (95% interval)", text),
                                           "gap": ("simulated less predicted", text), "share": ("gap", text)},
                      first_left=2)


def _closed_loop(outcome: RunOutcome) -> str:
    loop = outcome.plan.loop
    if loop is None:
        return ""
    currency = outcome.scenario.meta.currency
    rows = [{"round": str(r.round), "spend": money(r.spend, ""),
             "predicted": money(r.predicted_value, ""),
             "simulated": money_interval(r.simulated_value, r.ci_low, r.ci_high, "", False),
             "net_predicted": money(r.predicted_net_value, ""),
             "net_simulated": money(r.simulated_net_value, ""),
             "gain": money(r.net_gain_over_first, "", True),
             "agrees": "yes" if r.agrees else "no", "chosen": "chosen" if r.chosen else ""}
            for r in loop.rounds.itertuples()]
    table = table_html(pd.DataFrame(rows), {
        "round": ("round", text), "spend": (f"spend ({currency})", text), "predicted": ("value predicted", text),
        "simulated": ("value simulated (95% interval)", text), "net_predicted": ("net value predicted", text),
        "net_simulated": ("net value simulated", text), "gain": ("net gain over round 1", text),
        "agrees": ("agree", text), "chosen": ("", text)})
    return _section("closed_loop", "The closed loop: each round's plan, predicted and simulated",
                    "<p class='note'>At the curve measurement's scale; every column is in closed_loop.csv.</p>"
                    + table)


def _cells(outcome: RunOutcome) -> str:
    """The plan cell by cell, as the budget-planning feed carries it, with what the LP expects."""
    currency = outcome.scenario.meta.currency
    table = outcome.plan.allocation
    table = table.assign(lever=table["lever"].map(words), tier=table["tier"].replace({LAUNCH: "launch cost"}))
    launch = table["tier"] == "launch cost"
    columns = {
        "tier": ("tier", text), "lever": ("lever", text), "period": ("period", text),
        "amount": (f"amount ({currency})", money_column(table["amount"], currency)),
        "policy": ("targeting", text), "offers": ("offers", count),
        "retained_lines": ("lines retained", count), "value": (f"value ({currency})", money_column(table["value"],
                                                                                                 currency)),
        "next_unit_value": (f"value of the next {currency}", ratio),
    }
    table = table.assign(**{c: table[c].where(~launch) for c in ("offers", "retained_lines", "value",
                                                                 "next_unit_value")})
    return table_html(table, columns, first_left=3)


def _rules(outcome: RunOutcome) -> str:
    rules = binding_rules(outcome)
    if not len(rules):
        return "<p>No rule binds the plan.</p>"
    table = rules.assign(constraint=rules["constraint"].map(words), kind=rules["kind"].map(words),
                         statement=rules["statement"].str.removeprefix("is binding: "))
    return table_html(table, {"constraint": ("rule", text), "kind": ("kind", text),
                              "shadow_price": ("shadow price (objective per unit of the rule)",
                                               lambda x: ratio(x, 4)),
                              "statement": ("what relaxing it is worth", text)}, first_left=2)


def _drivers(outcome: RunOutcome, chart: str) -> str:
    drivers = outcome.churn_drivers
    order = list(dict.fromkeys(drivers["driver"]))
    wide = drivers.pivot_table(index="tier", columns="driver", values="contribution", aggfunc="sum", sort=False)
    wide = wide[order]
    wide.insert(0, "churn", drivers.groupby("tier", sort=False)["churn"].first().reindex(wide.index))
    wide = wide.reset_index()
    columns = {"tier": ("tier", text), "churn": ("monthly churn", percent)} | {
        d: (words(str(d)), lambda x: points(x).replace(" pp", "")) for d in order}
    intro = ("<p class='note'>Each tier's mean monthly churn without retention, split by what drives it, in "
             "percentage points of monthly churn: the parts add up to the churn, and a negative part holds lines "
             "back. A lever pays best where it answers the cause that weighs most in its tier.</p>")
    return _section("churn_drivers", "Why customers leave: churn by driver", intro + table_html(wide, columns) + chart)


def _variants(outcome: RunOutcome) -> str:
    currency = outcome.scenario.meta.currency
    variants = outcome.variants
    table = variants.assign(probability=variants["probability"])
    return table_html(table, {"strategy": ("strategy", text), "variant": ("competitor variant", text),
                              "probability": ("probability", lambda x: percent(x, 0)),
                              "npv": (f"NPV ({currency})", money_column(variants["npv"], currency)),
                              "value_retained": (f"value retained ({currency})",
                                                 money_column(variants["value_retained"], currency)),
                              "monthly_churn": ("monthly churn", percent)}, first_left=2)


def _operators(outcome: RunOutcome) -> str:
    currency = outcome.scenario.meta.currency
    operators = outcome.operators
    rows = []
    for (strategy, operator), mine in operators.groupby(["strategy", "operator"], sort=False):
        m = mine.set_index("metric")
        share, margin = m.loc["share_end"], m.loc["discounted_margin"]
        rows.append({"strategy": strategy, "operator": operator,
                     "share": percent_interval(share["mean"], share["ci_low"], share["ci_high"]),
                     "margin": money_interval(margin["mean"], margin["ci_low"], margin["ci_high"], "", False)})
    return table_html(pd.DataFrame(rows), {"strategy": ("strategy", text), "operator": ("operator", text),
                                           "share": ("share at the end", text),
                                           "margin": (f"discounted margin ({currency})", text)}, first_left=2)


def _price_moves(outcome: RunOutcome) -> str:
    currency = outcome.scenario.meta.currency
    rows = []
    for r in outcome.price_moves.itertuples():
        if r.metric == "share_end":
            one, diff = percent, (lambda a, b, c: points_interval(a, b, c))
        elif r.metric == "lines_end":
            one, diff = count, (lambda a, b, c: count_interval(a, b, c))
        else:
            one, diff = (lambda x: money(x, currency)), (lambda a, b, c: money_interval(a, b, c, currency))
        rows.append({"operator": r.operator, "metric": METRIC_WORDS.get(r.metric, words(r.metric)),
                     "with": one(r.with_our_moves), "without": one(r.without_them),
                     "difference": diff(r.difference, r.ci_low, r.ci_high)})
    return table_html(pd.DataFrame(rows), {"operator": ("operator", text), "metric": ("figure", text),
                                           "with": ("with our moves", text), "without": ("without them", text),
                                           "difference": ("difference (95% interval)", text)}, first_left=2)


def _targeting_section(outcome: RunOutcome, chart: str) -> str:
    """Risk against uplift targeting side by side: per tier and lever, each rule's best depth of contact,
    profit per contacted customer there, and expected maximum profit over the acceptance rate's law."""
    currency = outcome.scenario.meta.currency
    table = outcome.targeting.assign(lever=outcome.targeting["lever"].map(words))
    columns = {"tier": ("tier", text), "lever": ("lever", text), "rule": ("rule", text),
               "eligible": ("eligible lines", count), "best_depth": ("best depth", lambda x: percent(x, 1)),
               "contacted": ("contacted", count),
               "profit_per_contact": (f"profit per contact ({currency})", ratio),
               "max_profit": ("maximum profit", lambda x: money(x, currency)),
               "expected_max_profit": ("expected maximum profit (EMP)", lambda x: money(x, currency)),
               "expected_best_depth": ("expected best depth", lambda x: percent(x, 1))}
    intro = ("<p>Each rule ranks the lines a lever may reach at the start of the horizon: <b>risk</b> by the churn "
             "model, <b>uplift</b> by the uplift model, <b>value</b> by uplift times what a kept line is worth less "
             "the offer's cost, <b>oracle</b> by the true incremental value (a bound no rule passes). Contacting the "
             "best-ranked share of the tier earns the profit drawn; its peak is the maximum profit and the best "
             "depth, and the expected maximum profit averages the peak over the acceptance rate's uncertainty "
             "(Beta, α + β = 20, Verbraken et al. 2013). A best depth of 0 means no depth pays.</p>")
    return _section("targeting", "Whom to contact: targeting rules side by side",
                    intro + chart + table_html(table, columns, first_left=3))


def _from_data(outcome: RunOutcome) -> str:
    """Which figures of the scenario came from a customer table, and which from its template."""
    scenario = outcome.scenario
    currency = scenario.meta.currency
    source = scenario.population
    tiers = pd.DataFrame([{"tier": name, "lines": t.line_count, "arpu": t.arpu, "churn": t.baseline_churn,
                           "contract": t.contract.share, "tenure": t.tenure.mean_months}
                          for name, t in scenario.tiers.items()])
    effects = pd.DataFrame({"effect": [words(e) for e in source.effects], "value": list(source.effects.values())})
    auc = f"{source.cv_auc:.3f}" if source.cv_auc is not None else "not recorded"
    intro = (f"<p>The population is the customer table <code>{html.escape(source.table)}</code>, read through "
             f"<code>{html.escape(source.mapping)}</code>, one simulated line per row. From the data: the tiers, their "
             f"lines, ARPU, baseline churn (the fitted hazard, churn flag over {source.observation_months} months), "
             f"contract share and term, tenure, the sensitivities to tenure, price and complaints, and each line's "
             f"own propensity from the effects below (cross-validated AUC {auc}). Everything else (competitors, "
             f"network, contact center, levers, costs, budget) comes from the scenario's template, not from the "
             f"data.</p>")
    return _section("from_data", "Figures from data", intro + table_html(tiers, {
        "tier": ("tier", text), "lines": ("lines", count), "arpu": (f"ARPU ({currency} a month)", ratio),
        "churn": ("baseline monthly churn", percent), "contract": ("contract share", lambda x: percent(x, 1)),
        "tenure": ("mean tenure (months)", lambda x: ratio(x, 1))})
        + table_html(effects, {"effect": ("effect", text),
                               "value": ("on the log-odds of monthly churn", lambda x: f"{x:+.3f}")}))


def _by_tier(outcome: RunOutcome) -> str:
    churn = outcome.by_tier[outcome.by_tier["metric"] == "monthly_churn"]
    strategies = list(dict.fromkeys(churn["strategy"]))
    rows = []
    for tier in dict.fromkeys(churn["tier"]):
        mine = churn[churn["tier"] == tier].set_index("strategy")
        rows.append({"tier": tier, **{s: percent_interval(mine.loc[s, "mean"], mine.loc[s, "ci_low"],
                                                          mine.loc[s, "ci_high"]) for s in strategies}})
    return table_html(pd.DataFrame(rows), {"tier": ("tier", text)} | {s: (s, text) for s in strategies})


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{html.escape(title)}</h2>{body}</section>'


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.2em 2em;max-width:1180px;color:#222;line-height:1.35}"
    "h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.4em 0 .4em}"
    ".question{font-size:1.05em;color:#555;margin:.2em 0}.headline{font-size:1.2em;font-weight:600;margin:.3em 0 .5em}"
    ".cards{display:flex;flex-wrap:wrap;gap:10px;margin:.4em 0}"
    ".card{border:1px solid #ddd;border-radius:6px;padding:6px 12px;min-width:150px;flex:1}"
    ".card .label{font-size:11px;color:#666}.card .figure{font-size:1.25em;font-weight:600}"
    ".card .sub{font-size:11px;color:#666}"
    "table.data{border-collapse:collapse;font-size:12px;margin:0.4em 0 1em;max-width:100%}"
    "table.data th,table.data td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right;"
    "vertical-align:top}"
    "table.data th{background:#f3f3f3;font-weight:600}table.data .name{text-align:left;white-space:nowrap}"
    "table.matrix .split{font-size:10px;color:#777;white-space:nowrap}table.data tr.total td{border-top:2px solid #999}"
    ".note{font-size:12px;color:#555;margin:.2em 0}ul.points{font-size:13px;padding-left:1.2em;margin:.6em 0}"
    "ul.points li{margin:.2em 0}img.chart{max-width:100%}figure{margin:.5em 0}"
    ".facts{font-size:12px;color:#555}"
)
# Marks the page once every chart has decoded, so a headless browser can tell it rendered; and whether
# the page fits its window and shows a figure in scientific notation, the two faults a reader meets first.
SCRIPT = ("window.addEventListener('load',function(){var i=document.querySelectorAll('img.chart'),n=0;"
          "i.forEach(function(e){if(e.complete&&e.naturalWidth>0){n++;}});var b=document.body;"
          "b.setAttribute('data-charts-rendered',n+'/'+i.length);"
          "b.setAttribute('data-overflow',document.documentElement.scrollWidth>window.innerWidth?'yes':'no');"
          "var s=b.innerText.match(/\\d\\.?\\d*[eE][+-]?\\d+/g);"
          "b.setAttribute('data-scientific',s?s.slice(0,5).join(' '):'none');});")


def report_html(outcome: RunOutcome, images: Mapping[str, bytes]) -> str:
    """The self-contained report: the answer first, then the details."""
    scenario = outcome.scenario
    meta = scenario.meta
    plan = recommended_strategy(outcome)
    robust = robust_strategy(outcome)

    def img(name: str, alt: str) -> str:
        if name not in images:
            return ""
        data = base64.b64encode(images[name]).decode("ascii")
        return f'<figure><img class="chart" alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'

    sections = [
        f"<h1>Retention plan: {html.escape(meta.name)}</h1>",
        answer_html(outcome),
        (f"<p class='facts'>{html.escape(meta.description)} {count(scenario.total_lines)} lines, "
        f"{len(scenario.tiers)} tiers, {len(scenario.levers)} levers; budget "
        f"{html.escape(money(scenario.budget.total, meta.currency))} over {meta.horizon_months} months; "
        f"{outcome.replications} replications per strategy on common random numbers (seed {outcome.seed}). "
         f"Intervals are 95% over replications.</p>"),
    ]
    if scenario.population is not None:
        sections.append(_from_data(outcome))
    if len(outcome.churn_drivers):
        sections.append(_drivers(outcome, img("churn_drivers.png", "Monthly churn by driver per tier")))
    if plan is not None:
        sections.append(_section("allocation", f"The recommended allocation cell by cell ('{plan}')",
                                 "<p class='note'>The budget-planning feed (lp_allocation.csv), with what the LP "
                                 "expects of each cell: offers, lines retained over the horizon, value, and the "
                                 "value the next unit of money would bring.</p>" + _cells(outcome)
                                 + img("allocation_heatmap.png", "Allocation per period by tier and lever")))
        sections.append(_section("response_curves", "Response curves: where each cell stands",
                                 "<p class='note'>Value retained against the money in the cell, per period; the "
                                 f"circle is what '{html.escape(outcome.baseline)}' gives the cell, the star what the "
                                 "plan gives it. Where a curve runs under the dashed break-even line, money there "
                                 "returns less than it costs.</p>"
                                 + img("response_curves.png", "Response curves per tier and lever")))
        sections.append(_section("shadow_prices", "Binding rules and their shadow prices", _rules(outcome)
                                 + img("frontier.png", "Efficient frontier")))
    sections += [
        _section("summary", "Strategies compared (mean [95% interval])", _summary(outcome)),
        img("npv_by_strategy.png", "NPV against the baseline strategy"),
        _section("paired", f"Paired differences against '{outcome.baseline}' (mean [95% interval])",
                 _paired(outcome)),
        img("churn_by_strategy.png", "Churn curves by strategy"),
    ]
    if robust is not None:
        sections.append(_section("robust", f"The robust plan ('{robust}'), weighing the competitor variants",
                                 allocation_matrix(outcome, robust)))
    if len(outcome.variants):
        sections.append(_section("variants", "Each optimized plan under each competitor variant", _variants(outcome)))
    if len(outcome.predicted):
        sections.append(_section("predicted", "The LP's prediction against the simulation", _predicted(outcome)))
    sections.append(_closed_loop(outcome))
    sections.append(img("market_shares.png", "Market shares"))
    if len(outcome.operators):
        sections.append(_section("operators", "Every operator's share at the end and discounted margin (before "
                                 "retention spend), mean [95% interval]", _operators(outcome)))
    if len(outcome.price_moves):
        sections.append(_section("price_moves", "What our price moves did, without retention: with them against the "
                                 "same market without them (the rivals' answers included)", _price_moves(outcome)))
    if len(outcome.targeting):
        sections.append(_targeting_section(outcome, img("targeting_rules.png", "Profit by depth of contact per rule")))
    sections.append(_section("by_tier", "Monthly churn by tier (mean [95% interval])", _by_tier(outcome)))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Retention plan: {html.escape(meta.name)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(s for s in sections if s) + f"<script>{SCRIPT}</script></body></html>\n")
