"""The report's first screen: the answer to "where should the budget go?".

What to do (the recommended allocation by tier × lever × period, launch costs included), what it
gains over each alternative (paired on common random numbers, with 95% intervals), what it leaves
unspent and why, which rules bind and what relaxing each is worth, the risk across competitor
variants, and how far the prediction can be trusted. Each part is computed here from the run's
tables; :mod:`optimize.outputs.report` lays them out.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.allocation import LAUNCH

from ..run.compare import paired_differences
from ..run.pipeline import RunOutcome
from .formatting import (
    count_interval,
    money,
    money_interval,
    percent,
    points_interval,
    ratio,
    table_html,
    text,
    unit_for,
    words,
)

RULE_KINDS_NOT_RULES = {"definition", "launch", "min_spend"}
"""Rows that tie the model together rather than state a planner's rule."""
RULES_SHOWN = 3
"""Binding rules the first screen lists (the largest shadow prices); the details list them all."""
SPENT = 1e-6
"""Share of the budget below which what is left counts as spent (solver rounding)."""


def recommended_strategy(outcome: RunOutcome) -> str | None:
    """The plan the report recommends: the LP's, else the robust LP's; ``None`` when neither ran."""
    return outcome.scenario.recommended_among(outcome.results)


def robust_strategy(outcome: RunOutcome) -> str | None:
    return next((s.name for s in outcome.scenario.strategies if s.kind == "robust_lp" and s.name in outcome.results),
                None)


def feed(outcome: RunOutcome, strategy: str) -> pd.DataFrame:
    """tier, lever, period, amount of ``strategy``, launch costs as rows of tier ``(launch)``."""
    return outcome.allocations[strategy].feed(outcome.scenario)[["tier", "lever", "period", "amount"]]


def period_years(outcome: RunOutcome) -> dict[str, int]:
    """Each planning period's year of the horizon (the year its first month falls in)."""
    years, start = {}, 1
    for period in outcome.scenario.meta.periods:
        years[period.name] = (start - 1) // 12 + 1
        start += period.months
    return years


def allocation_matrix(outcome: RunOutcome, strategy: str) -> str:
    """Tiers as rows, levers as columns; each cell the money over the horizon and, beneath, per period;
    a launch-cost row, and totals by tier, by lever, by period (and by year when periods are shorter)."""
    scenario = outcome.scenario
    table = feed(outcome, strategy)
    table = table[table["amount"] > 0]
    periods = [p.name for p in scenario.meta.periods]
    currency = scenario.meta.currency
    unit = unit_for(table["amount"].sum() if len(table) else 0.0)
    tiers = [t for t in scenario.tiers if t in set(table["tier"])]
    levers = [lv for lv in scenario.levers if lv in set(table["lever"])]

    def cell(tier_rows: pd.Series) -> str:
        total = float(tier_rows.sum())
        if total <= 0:
            return "<td></td>"
        split = " · ".join(unit.number(float(tier_rows.get(p, 0.0))) for p in periods) if len(periods) > 1 else ""
        small = f"<div class='split'>{html.escape(split)}</div>" if split else ""
        return f"<td><b>{html.escape(unit.number(total))}</b>{small}</td>"

    def slice_of(tier: str | None, lever: str | None) -> pd.Series:
        rows = table
        if tier is not None:
            rows = rows[rows["tier"] == tier]
        if lever is not None:
            rows = rows[rows["lever"] == lever]
        return rows.groupby("period")["amount"].sum()

    head = "".join(f"<th>{html.escape(words(lv))}</th>" for lv in levers)
    body = []
    for tier in [*tiers, *([LAUNCH] if (table["tier"] == LAUNCH).any() else [])]:
        name = "launch costs" if tier == LAUNCH else tier
        cells = "".join(cell(slice_of(tier, lever)) for lever in levers)
        body.append(f"<tr><td class='name'>{html.escape(name)}</td>{cells}{cell(slice_of(tier, None))}</tr>")
    totals = "".join(cell(slice_of(None, lever)) for lever in levers)
    body.append(f"<tr class='total'><td class='name'>total</td>{totals}{cell(slice_of(None, None))}</tr>")
    years = period_years(outcome)
    by_year = ""
    if len(set(years.values())) < len(periods) and len(set(years.values())) > 1:
        spend = table.groupby("period")["amount"].sum()
        parts = [f"year {y}: {money(sum(float(spend.get(p, 0.0)) for p in periods if years[p] == y), currency)}"
                 for y in sorted(set(years.values()))]
        by_year = f"<p class='note'>By year: {html.escape('; '.join(parts))}.</p>"
    unit_words = f"millions of {currency}" if unit.scale > 1 else currency
    split_words = f"; beneath it, per period ({' · '.join(periods)})" if len(periods) > 1 else ""
    caption = (f"<p class='note'>Money in {html.escape(unit_words)}: each cell the total over the horizon"
               f"{html.escape(split_words)}. Launch costs are the levers' fixed costs in the periods they run.</p>")
    return (f"{caption}<table class='data matrix'><thead><tr><th class='name'>tier</th>{head}<th>total</th></tr>"
            f"</thead><tbody>{''.join(body)}</tbody></table>{by_year}")


def gains_over_alternatives(outcome: RunOutcome, plan: str) -> pd.DataFrame:
    """Per alternative strategy: the plan's figures less the alternative's, paired by replication,
    with 95% intervals (NPV, monthly churn, lines kept, value retained, retention spend)."""
    if plan not in outcome.figures:
        return pd.DataFrame()
    paired = paired_differences(outcome.figures, plan)
    # paired_differences gives alternative − plan: turn it round, the interval's ends swapping.
    paired = paired.assign(difference=-paired["difference"], ci_low=-paired["ci_high"], ci_high=-paired["ci_low"])
    rows = []
    for name in outcome.figures:
        if name == plan:
            continue
        mine = paired[paired["strategy"] == name].set_index("metric")
        rows.append({"against": name, **{f"{m}_{k}": float(mine.loc[m, k]) for m in
                                         ("npv", "monthly_churn", "lines_retained", "value_retained",
                                          "retention_spend")
                                         for k in ("difference", "ci_low", "ci_high")},
                     "significant": bool(mine.loc["npv", "significant"]), "replications": int(mine.loc["npv",
                                                                                                      "replications"])})
    return pd.DataFrame(rows)


def gain_source(gain: pd.Series, against: str, currency: str) -> str | None:
    """When the plan beats ``against`` on NPV without keeping more lines: it keeps the lines worth more. A
    planner reading "monthly churn +0.00 pp" beside a gain of millions would otherwise take one for an error.
    ``None`` when the plan also keeps more lines (the gain needs no explaining) or does not win."""
    if not gain["npv_ci_low"] > 0 or gain["lines_retained_ci_low"] > 0:
        return None
    lines = count_interval(gain["lines_retained_difference"], gain["lines_retained_ci_low"],
                           gain["lines_retained_ci_high"])
    value = money_interval(gain["value_retained_difference"], gain["value_retained_ci_low"],
                           gain["value_retained_ci_high"], currency)
    fewer = gain["lines_retained_ci_high"] < 0
    return (f"lines worth more, not more lines: against '{against}' the plan keeps {'fewer' if fewer else 'about as many'}"
            f" lines ({lines}) but retains {value} more value; its money goes where a kept line is worth most")


@dataclass(frozen=True)
class Unspent:
    """What the plan leaves of the budget, and why in words."""

    amount: float
    reasons: list[str]


def unspent(outcome: RunOutcome, plan: str) -> Unspent:
    """The budget less the plan's spend (launch costs included), and what holds the rest back: the budget
    row binds (nothing left), or rules bind (period budgets, caps, capacities, an ROI floor), or the next
    unit of money in every open cell returns less than it costs."""
    scenario = outcome.scenario
    currency = scenario.meta.currency
    budget = scenario.budget.total
    spend = float(feed(outcome, plan)["amount"].sum())
    left = budget - spend
    # The plan's reasons are the LP's: only for the strategy that simulated the LP's own plan (in whole units).
    if plan != recommended_strategy(outcome) or outcome.recommended().amounts != outcome.allocations[plan].amounts:
        return Unspent(left, [])
    prices = outcome.plan.shadow_prices
    budget_row = prices[prices["kind"] == "budget"]
    if left <= SPENT * budget:
        price = float(budget_row["shadow_price"].iloc[0]) if len(budget_row) else 0.0
        return Unspent(0.0, [(f"the budget is spent to the last unit: each 10,000 {currency} more would add about "
                             f"{money(price * 10_000, currency)} of objective")])
    reasons = []
    binding = binding_rules(outcome)
    binding = binding[binding["kind"] != "budget"]
    if len(binding):
        kinds = [words(k) for k in dict.fromkeys(binding["kind"])]
        reasons.append(f"{len(binding)} rule{'s bind' if len(binding) > 1 else ' binds'} ({', '.join(kinds)}): "
                       f"money {'they hold' if len(binding) > 1 else 'it holds'} back cannot go elsewhere")
    cells = outcome.plan.allocation
    cells = cells[cells["tier"] != LAUNCH]
    curves = outcome.plan.curves
    cost = {cell: curve.cost for cell, curve in curves.items()}
    cells = cells.assign(cost=[cost.get((t, lv, p), 1.0) for t, lv, p in zip(cells["tier"], cells["lever"],
                                                                                  cells["period"])])
    exhausted = cells[cells["next_unit_value"] <= 0]
    below = cells[(cells["next_unit_value"] > 0) & (cells["next_unit_value"] < cells["cost"])]
    unfunded = outcome.plan.reduced_costs
    unfunded_cost = np.array([cost.get((t, lv, p), 1.0) for t, lv, p in
                              zip(unfunded["tier"], unfunded["lever"], unfunded["period"])], dtype=float)
    unfunded = unfunded.assign(next_unit_value=unfunded["first_unit_value"], cost=unfunded_cost)
    losing = unfunded[unfunded["next_unit_value"] < unfunded["cost"]]
    closed = len(losing)
    best = pd.concat([below[["tier", "lever", "period", "next_unit_value", "cost"]],
                      losing[["tier", "lever", "period", "next_unit_value", "cost"]]], ignore_index=True)
    if len(below) or closed:
        top = best.loc[(best["next_unit_value"] - best["cost"]).idxmax()] if len(best) else None
        words_best = (f" (the best: {top['tier']} · {words(top['lever'])} in {top['period']}, "
                      f"{ratio(top['next_unit_value'])} {currency} of value for {ratio(top['cost'])} {currency} "
                      "of discounted cost)") if top is not None else ""
        reasons.append(f"the next unit of money returns less than it costs in {len(below)} funded and {closed} "
                       f"unfunded cells{words_best}")
    # Cells that would pay per unit but stay unfunded because switching their lever on in that period
    # (its launch cost, or its minimum size) would cost more than they add.
    off = {tuple(about.split(",")) for about, kind, bound in zip(prices["about"], prices["kind"], prices["binding"])
           if kind in ("launch", "min_spend") and bound}
    switched_off = np.array([(lv, p) in off for lv, p in zip(unfunded["lever"], unfunded["period"])], dtype=bool)
    held = unfunded[(unfunded["next_unit_value"] >= unfunded["cost"]).to_numpy() & switched_off]
    if len(held):
        switched = ", ".join(f"{words(lv)} in {p}" for lv, p in dict.fromkeys(zip(held["lever"], held["period"])))
        reasons.append(f"{len(held)} unfunded cell{'s' if len(held) > 1 else ''} would return more than "
                       f"{'they cost' if len(held) > 1 else 'it costs'}, but not enough to pay for switching on "
                       f"{switched} (a launch cost or a minimum size)")
    if len(exhausted):
        reasons.append(f"{len(exhausted)} funded cell{'s' if len(exhausted) > 1 else ''} reach every line "
                       "their curve counts: more money there buys nothing")
    return Unspent(left, reasons)


def binding_rules(outcome: RunOutcome) -> pd.DataFrame:
    """The rules that hold the plan back (not the model's linking rows): binding, with a shadow price,
    the largest first. A rule met exactly but worth nothing at the margin is not among them: loosening
    it would change nothing (``shadow_prices.csv`` says so of each)."""
    prices = outcome.plan.shadow_prices
    rows = prices[prices["binding"] & (prices["shadow_price"].abs() >= 1e-9)
                  & ~prices["kind"].isin(RULE_KINDS_NOT_RULES)]
    order = rows["shadow_price"].abs().sort_values(ascending=False, kind="stable").index
    return rows.loc[order]


def _risk(outcome: RunOutcome, plan: str) -> str:
    currency = outcome.scenario.meta.currency
    variants = outcome.variants
    if not len(variants):
        return ("<b>Risk</b>: no competitor variants in the scenario; the plan is judged in one competitive future; the "
                "intervals cover the simulation's chance only.")
    parts = []
    for name in dict.fromkeys(variants["strategy"]):
        rows = variants[variants["strategy"] == name].set_index("variant")
        each = rows[~rows.index.isin(["expected"]) & ~rows.index.str.startswith("worst case")]
        worst = next(v for v in rows.index if v.startswith("worst case"))
        spread = ", ".join(f"{v} ({percent(p, 0)}): {money(n, currency)}" for v, p, n in
                           zip(each.index, each["probability"], each["npv"]))
        parts.append(f"<b>{html.escape(name)}</b>: expected NPV {html.escape(money(rows.loc['expected', 'npv'], currency))}, "
                     f"{html.escape(worst)} {html.escape(money(rows.loc[worst, 'npv'], currency))} "
                     f"({html.escape(spread)})")
    return "<b>Risk</b> across the competitor variants: " + "; ".join(parts) + "."


def _trust(outcome: RunOutcome, plan: str) -> str:
    currency = outcome.scenario.meta.currency
    predicted = outcome.predicted[(outcome.predicted["strategy"] == plan) & (outcome.predicted["metric"] == "npv_gain")]
    parts = []
    if len(predicted):
        row = predicted.iloc[0]
        inside = row["ci_low"] <= row["predicted"] <= row["ci_high"]
        parts.append(f"the LP predicted a net gain of {money(row['predicted'], currency)} over no retention; the "
                     f"simulation gives {money_interval(row['simulated'], row['ci_low'], row['ci_high'], currency, False)}"
                     f" ({percent(row['gap_share'], 1)} apart, "
                     f"{'inside' if inside else 'outside'} the simulation's interval)")
    loop = outcome.plan.loop
    if loop is not None and plan == recommended_strategy(outcome):
        rounds = loop.rounds
        chosen = rounds[rounds["chosen"]]
        agreed = bool(chosen["agrees"].iloc[0]) if len(chosen) else False
        parts.append(f"the closed loop ran {len(rounds)} round{'s' if len(rounds) > 1 else ''} and "
                     f"{'prediction and simulation agree' if agreed else 'did not reach agreement: read the plan as indicative'}")
    if plan in outcome.figures:
        simulated = float(outcome.figures[plan]["retention_spend"].mean())
        allocated = float(feed(outcome, plan)["amount"].sum())
        if allocated > 0:
            parts.append(f"the simulation spends {money(simulated, currency)} of the {money(allocated, currency)} "
                         f"allocated ({percent(simulated / allocated, 1)}): cells pay only for offers made")
    scale = outcome.scenario.run.scale
    parts.append(f"{outcome.replications} replication{'s' if outcome.replications > 1 else ''} per strategy on common "
                 f"random numbers" + (f", {percent(scale, 0)} of the lines simulated and scaled up" if scale < 1 else ""))
    stopping = outcome.stopping
    if stopping is not None and stopping.target is not None:
        parts.append(f"the run stopped at {stopping.sentence(currency)}")
    return "; ".join(parts) + "."


def answer_html(outcome: RunOutcome) -> str:
    """The first screen, in words and figures."""
    scenario = outcome.scenario
    currency = scenario.meta.currency
    budget = scenario.budget.total
    plan = recommended_strategy(outcome)
    question = (f"Where should {money(budget, currency)} of retention money go over {scenario.meta.horizon_months} "
                "months?")
    if plan is None:
        return (f"<section id='answer'><p class='question'>{html.escape(question)}</p><p>This run has no optimized "
                "strategy: the tables below compare the strategies it ran.</p></section>")
    spend = float(feed(outcome, plan)["amount"].sum())
    left = unspent(outcome, plan)
    gains = gains_over_alternatives(outcome, plan)
    baseline = outcome.baseline if outcome.baseline != plan else None
    headline = f"Spend {money(spend, currency)} as '{plan}' allocates it below"
    if baseline is not None and len(gains) and baseline in set(gains["against"]):
        g = gains.set_index("against").loc[baseline]
        verdict = "beats" if g["npv_ci_low"] > 0 else ("loses to" if g["npv_ci_high"] < 0 else "cannot be told from")
        headline += (f": it {verdict} '{baseline}' by "
                     f"{money_interval(g['npv_difference'], g['npv_ci_low'], g['npv_ci_high'], currency)} of NPV "
                     f"(paired over {int(g['replications'])} replications, 95% interval)")
    headline += "."
    cards = [("recommended spend", f"{money(spend, currency)}", f"of {money(budget, currency)}, launch costs included"),
             ("left unspent", money(max(left.amount, 0.0), currency), percent(max(left.amount, 0.0) / budget, 1)
              + " of the budget" if budget > 0 else "")]
    if baseline is not None and len(gains) and baseline in set(gains["against"]):
        g = gains.set_index("against").loc[baseline]
        cards.append((f"NPV over '{baseline}'", money(g["npv_difference"], currency, signed=True),
                      f"[{money(g['npv_ci_low'], currency, True)}, {money(g['npv_ci_high'], currency, True)}]"))
        cards.append((f"monthly churn against '{baseline}'",
                      points_interval(g["monthly_churn_difference"], np.nan, np.nan),
                      points_interval(g["monthly_churn_difference"], g["monthly_churn_ci_low"],
                                      g["monthly_churn_ci_high"]).split(" ", 2)[-1]))
    churn = outcome.summary[(outcome.summary["strategy"] == plan) & (outcome.summary["metric"] == "monthly_churn")]
    if len(churn):
        cards.append(("monthly churn with the plan", percent(float(churn["mean"].iloc[0])),
                      f"[{percent(float(churn['ci_low'].iloc[0]))}, {percent(float(churn['ci_high'].iloc[0]))}]"))
    card_html = "".join(f"<div class='card'><div class='label'>{html.escape(a)}</div><div class='figure'>"
                        f"{html.escape(b)}</div><div class='sub'>{html.escape(c)}</div></div>" for a, b, c in cards)

    bullets = []
    if len(gains):
        rows = []
        for g in gains.itertuples():
            rows.append({"against": g.against,
                         "npv": money_interval(g.npv_difference, g.npv_ci_low, g.npv_ci_high, ""),
                         "churn": points_interval(g.monthly_churn_difference, g.monthly_churn_ci_low,
                                                  g.monthly_churn_ci_high),
                         "lines": count_interval(g.lines_retained_difference, g.lines_retained_ci_low,
                                                 g.lines_retained_ci_high),
                         "spend": money_interval(g.retention_spend_difference, g.retention_spend_ci_low,
                                                 g.retention_spend_ci_high, "")})
        gains_html = table_html(pd.DataFrame(rows), {
            "against": ("the plan against", text), "npv": (f"NPV gained ({currency})", text),
            "churn": ("monthly churn", text), "lines": ("lines kept", text),
            "spend": (f"retention spend ({currency})", text)})
        said = "; ".join(f"{money_interval(g.npv_difference, g.npv_ci_low, g.npv_ci_high, currency)} over "
                         f"'{g.against}'" for g in gains.itertuples())
        bullets.append(f"<b>What it gains</b> (NPV, paired, 95% interval): {html.escape(said)}.")
        if baseline is not None and baseline in set(gains["against"]):
            source = gain_source(gains.set_index("against").loc[baseline], baseline, currency)
            if source:
                bullets.append(f"<b>Where the gain comes from</b>: {html.escape(source)}.")
    else:
        gains_html = ""
    if left.amount > SPENT * budget:
        bullets.append(f"<b>Left unspent: {html.escape(money(left.amount, currency))}</b>"
                       + (": " + html.escape("; ".join(left.reasons)) if left.reasons else "") + ".")
    elif left.reasons:
        bullets.append(f"<b>Nothing left unspent</b>: {html.escape(left.reasons[0])}.")
    rules = binding_rules(outcome)
    if plan == recommended_strategy(outcome) and len(rules):
        shown = rules.head(RULES_SHOWN)
        items = "; ".join(f"{html.escape(words(r.constraint))}: {html.escape(r.statement.removeprefix('is binding: '))}"
                          for r in shown.itertuples())
        more = f" (and {len(rules) - len(shown)} more, listed below)" if len(rules) > len(shown) else ""
        bullets.append(f"<b>Rules that bind</b>, and what relaxing each is worth: {items}{more}.")
    elif plan == recommended_strategy(outcome):
        bullets.append("<b>No rule binds</b>: the plan stops where money stops paying, not at a rule.")
    bullets.append(_risk(outcome, plan))
    bullets.append("<b>How far to trust it</b>: " + html.escape(_trust(outcome, plan)))
    return (f"<section id='answer'><p class='question'>{html.escape(question)}</p>"
            f"<p class='headline'>{html.escape(headline)}</p><div class='cards'>{card_html}</div>"
            f"<ul class='points'>{''.join(f'<li>{b}</li>' for b in bullets)}</ul>"
            f"<h2>What to do: the recommended allocation</h2>{allocation_matrix(outcome, plan)}"
            f"<h2>What it gains over each alternative</h2><p class='note'>The plan less the alternative, "
            f"replication by replication on common random numbers; mean and 95% interval.</p>{gains_html}"
            "</section>")
