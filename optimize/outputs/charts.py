"""The run's charts, as PNG bytes.

Drawn with matplotlib's Agg backend and saved without a software stamp, so the same run gives the
same bytes. Money axes are in the scenario's currency, in whole units or millions (never an offset
such as ``1e7`` in the corner), and amounts start at zero where a bar or a curve starts there.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter
from PIL import Image

from sim.allocation import LAUNCH, Allocation
from sim.valuation import expected_paths

from ..run.pipeline import RunOutcome
from .formatting import MoneyUnit, unit_for, words

PNG_METADATA = {"Software": None}
"""No software version in the PNGs: the bytes depend on the figures only."""
DPI = 110


def png(figure: plt.Figure, dpi: int = DPI) -> bytes:
    """The figure as a PNG of at most 256 colours: a third of the bytes of full colour for line and bar
    charts, which keeps the self-contained report small (Pillow comes with matplotlib)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata=PNG_METADATA)
    plt.close(figure)
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB").quantize(colors=256,
                                                                              method=Image.Quantize.MEDIANCUT)
    small = io.BytesIO()
    image.save(small, format="PNG", optimize=True)
    return small.getvalue()


def _tick_unit(largest: float) -> MoneyUnit:
    """Ticks in millions once the axis reaches a million (one decimal is enough between gridlines)."""
    unit = unit_for(largest)
    return MoneyUnit(unit.scale, "", 1) if unit.scale > 1 else unit


def money_axis(axis: Axes, which: str, largest: float, currency: str, label: str) -> None:
    """Ticks of ``which`` ('x' or 'y') in whole currency units or millions, the unit in the label."""
    unit = _tick_unit(largest)
    target = axis.xaxis if which == "x" else axis.yaxis
    target.set_major_formatter(FuncFormatter(lambda v, _: unit.number(v)))
    target.set_label_text(f"{label} ({'M ' if unit.scale > 1 else ''}{currency})")


def _monthly_lines(series: dict[str, pd.Series], ylabel: str, title: str) -> bytes:
    """One line per named series over the months (values already in the unit of ``ylabel``)."""
    figure, axis = plt.subplots(figsize=(8, 4.2))
    for label, values in series.items():
        axis.plot(values.index, values.to_numpy(), label=label, linewidth=1.6)
    axis.set_xlabel("month")
    axis.set_ylim(bottom=0.0)  # levels from zero: the tables hold the differences
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return png(figure)


def churn_curves(outcome: RunOutcome) -> bytes:
    """Mean monthly churn per strategy, month by month, counted as the tables count it (the draws' luck
    removed, :func:`sim.valuation.expected_paths`)."""
    series = {}
    for name, result in outcome.results.items():
        m = expected_paths(result.monthly).groupby(["replication", "month"])[["churned_lines", "lines"]].sum()
        series[name] = (m["churned_lines"] / m["lines"]).groupby(level="month").mean() * 100
    return _monthly_lines(series, "monthly churn (% of lines)", "Churn by strategy (mean over replications)")


def frontier_chart(outcome: RunOutcome, plan_spend: float) -> bytes:
    """Value retained and net value against the total budget, and the budget's shadow price."""
    table = outcome.frontier[outcome.frontier["status"].isin(["optimal", "feasible"])]
    currency = outcome.scenario.meta.currency
    figure, axis = plt.subplots(figsize=(8, 4.4))
    axis.plot(table["budget"], table["value"], color="#1f77b4", linewidth=2, label="value retained")
    axis.plot(table["budget"], table["objective"], color="#2ca02c", linewidth=1.6, linestyle="-.",
              label="objective (the plan's own)")
    axis.axvline(outcome.scenario.budget.total, color="grey", linestyle="--", linewidth=1, label="scenario budget")
    axis.axvline(plan_spend, color="black", linestyle=":", linewidth=1, label="the plan's spend")
    axis.set_xlim(left=0.0)
    axis.set_ylim(bottom=min(0.0, float(table["objective"].min())))
    largest = float(max(table["budget"].max(), table["value"].max()))
    money_axis(axis, "x", largest, currency, "total budget, launch costs included")
    money_axis(axis, "y", largest, currency, "value")
    twin = axis.twinx()
    twin.step(table["budget"], table["budget_shadow_price"], color="#d62728", where="post", linewidth=1.2,
              label="budget shadow price")
    twin.set_ylabel(f"budget shadow price (per {currency} of budget)", color="#d62728")
    twin.set_ylim(bottom=0.0)
    axis.set_title("Efficient frontier: what each budget buys")
    lines = axis.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    axis.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="center right")
    axis.grid(alpha=0.3)
    return png(figure)


def allocation_heatmap(outcome: RunOutcome, strategy: str) -> bytes:
    """Money per tier and lever for ``strategy``, one panel per planning period, on one colour scale."""
    scenario = outcome.scenario
    feed = outcome.allocations[strategy].to_frame()
    periods = [p.name for p in scenario.meta.periods]
    tiers, levers = list(scenario.tiers), list(scenario.levers)
    grids = {p: pd.DataFrame(0.0, index=tiers, columns=levers) for p in periods}
    for row in feed.itertuples():
        grids[row.period].loc[row.tier, row.lever] += row.amount
    top = max((g.to_numpy().max() for g in grids.values()), default=0.0) or 1.0
    unit = unit_for(top)
    label_unit = MoneyUnit(unit.scale, unit.suffix, 2 if unit.scale > 1 else 0)
    columns = min(3, len(periods))
    rows = -(-len(periods) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.3 * columns, 0.38 * len(tiers) * rows + 2.2 * rows),
                                squeeze=False)
    image = None
    for index, (axis, period) in enumerate(zip(axes.flat, periods)):
        grid = grids[period].to_numpy()
        image = axis.imshow(grid, cmap="Blues", aspect="auto", vmin=0.0, vmax=top)
        axis.set_xticks(range(len(levers)), [words(lv) for lv in levers], rotation=35, ha="right", fontsize=8)
        axis.set_yticks(range(len(tiers)), tiers if index % columns == 0 else [""] * len(tiers), fontsize=8)
        for (i, j), value in np.ndenumerate(grid):
            if value > 0:
                axis.text(j, i, label_unit.number(value), ha="center", va="center", fontsize=6.5,
                          color="white" if value > top / 2 else "black")
        axis.set_title(f"period {period}", fontsize=10)
        axis.set_xlabel("lever", fontsize=8)
        if index % columns == 0:
            axis.set_ylabel("tier", fontsize=8)
    for axis in list(axes.flat)[len(periods):]:
        axis.set_visible(False)
    if image is not None:
        bar = figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
        bar.formatter = FuncFormatter(lambda v, _: _tick_unit(top).number(v))
        bar.update_ticks()
        bar.set_label(f"money in the cell ({'M ' if unit.scale > 1 else ''}{scenario.meta.currency})")
    figure.suptitle(f"Allocation of '{strategy}' by tier and lever, per period (launch costs not shown)")
    return png(figure)


def market_shares(outcome: RunOutcome, strategy: str) -> bytes:
    """Market share per operator and month under ``strategy`` (mean over replications)."""
    market = outcome.results[strategy].market
    shares = market.groupby(["month", "operator"])["share"].mean().unstack("operator") * 100
    return _monthly_lines({str(op): shares[op] for op in shares.columns}, "market share (%)",
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
    errors = np.nan_to_num(np.vstack([centre - low, high - centre]))
    axis.barh(rows["strategy"], centre, xerr=errors, color=colours, alpha=0.85, capsize=4)
    axis.axvline(0.0, color="black", linewidth=0.8)
    largest = float(np.nanmax(np.abs(np.concatenate([low, high, centre])))) if len(rows) else 0.0
    money_axis(axis, "x", largest, outcome.scenario.meta.currency,
               f"NPV less the NPV of '{outcome.baseline}', paired by replication")
    axis.set_title(f"NPV against '{outcome.baseline}' (95% interval): green gains, red loses, grey cannot tell")
    axis.grid(alpha=0.3, axis="x")
    return png(figure)


CURVE_COLUMNS = 5
"""Panels per row of the response-curve chart."""


def response_curves_chart(outcome: RunOutcome, recommended: str | None) -> bytes:
    """Per tier × lever, each period's response curve (value retained against the money in the cell),
    the current point (what the baseline strategy gives the cell) and the recommended one (the plan's),
    and the break-even line: the money's cost, above which a unit pays for itself."""
    curves = outcome.plan.curves
    scenario = outcome.scenario
    currency = scenario.meta.currency
    periods = [p.name for p in scenario.meta.periods]
    colours = dict(zip(periods, plt.cm.viridis(np.linspace(0.0, 0.85, len(periods)))))
    current = outcome.allocations.get(outcome.baseline, Allocation.empty())
    chosen = outcome.allocations.get(recommended or "", Allocation.empty())
    pairs = list(dict.fromkeys((t, lv) for t, lv, _ in sorted(curves)))
    funded = {(t, lv) for (t, lv, _), a in chosen.amounts.items() if a > 0 and t != LAUNCH}
    pairs = [p for p in pairs if p in funded] + [p for p in pairs if p not in funded]
    columns = min(CURVE_COLUMNS, max(1, len(pairs)))
    rows = max(1, -(-len(pairs) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(2.9 * columns, 2.45 * rows), squeeze=False)
    for axis, (tier, lever) in zip(axes.flat, pairs):
        largest_x = largest_y = 0.0
        for period in periods:
            curve = curves.get((tier, lever, period))
            if curve is None:
                continue
            spends, values = np.asarray(curve.spends), np.asarray(curve.values)
            colour = colours[period]
            axis.plot(spends, values, color=colour, linewidth=1.3)
            now, then = current.amount(tier, lever, period), chosen.amount(tier, lever, period)
            if max(now, then) > spends[-1]:
                # Money past the curve's last point buys nothing more (no more lines to reach or callers).
                axis.plot([spends[-1], max(now, then)], [values[-1]] * 2, color=colour, linewidth=1.0, linestyle=":")
            axis.plot([now], [np.interp(now, spends, values)], "o", mfc="none", mec=colour, ms=6)
            axis.plot([then], [np.interp(then, spends, values)], "*", color=colour, ms=9)
            largest_x, largest_y = max(largest_x, spends[-1], now, then), max(largest_y, values.max())
            if period == periods[0]:
                axis.plot([0.0, spends[-1]], [0.0, curve.cost * spends[-1]], color="grey", linestyle="--",
                          linewidth=0.8)
        axis.set_xlim(0.0, largest_x * 1.03 or 1.0)
        axis.set_ylim(0.0, max(largest_y, 1.0) * 1.08)
        unit_x, unit_y = _tick_unit(largest_x), _tick_unit(largest_y)
        axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _, u=unit_x: u.number(v)))
        axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _, u=unit_y: u.number(v)))
        axis.xaxis.set_major_locator(plt.MaxNLocator(4))
        axis.tick_params(labelsize=7)
        axis.set_xlabel(f"money in the cell ({'M ' if unit_x.scale > 1 else ''}{currency})", fontsize=7)
        axis.set_ylabel(f"value retained ({'M ' if unit_y.scale > 1 else ''}{currency})", fontsize=7)
        axis.set_title(f"{tier} · {words(lever)}", fontsize=8.5, fontweight="bold" if (tier, lever) in funded
                       else "normal")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(pairs):]:
        axis.set_visible(False)
    handles = [plt.Line2D([], [], color=colours[p], linewidth=1.3, label=f"period {p}") for p in periods]
    handles += [plt.Line2D([], [], marker="o", mfc="none", mec="black", linestyle="none",
                           label=f"current ('{outcome.baseline}')"),
                plt.Line2D([], [], marker="*", color="black", linestyle="none", ms=9,
                           label=f"recommended ('{recommended}')"),
                plt.Line2D([], [], color="grey", linestyle="--", label="break-even: value = the money's cost")]
    # Room above the panels for the title and the legend, a fixed height whatever the rows.
    top = 1.0 - 0.7 / (2.45 * rows + 0.7)
    figure.set_size_inches(2.9 * columns, 2.45 * rows + 0.7)
    figure.legend(handles=handles, loc="upper center", ncol=min(len(handles), 6), fontsize=8,
                  bbox_to_anchor=(0.5, top + (1.0 - top) * 0.45))
    figure.suptitle("Response curves per tier × lever (bold: funded by the plan)", y=0.995)
    figure.tight_layout(rect=(0.0, 0.0, 1.0, top))
    return png(figure, dpi=90)


def churn_drivers_chart(drivers: pd.DataFrame) -> bytes:
    """Per tier, one horizontal bar of its monthly churn split by driver: the parts that push churn up
    stacked right of zero, those that hold lines back left of it."""
    table = drivers.pivot_table(index="tier", columns="driver", values="contribution", aggfunc="sum", sort=False)
    table = table[list(dict.fromkeys(drivers["driver"]))] * 100
    figure, axis = plt.subplots(figsize=(9, 0.42 * len(table) + 1.9))
    colours = plt.cm.tab10(np.arange(len(table.columns)) % 10)
    right = np.zeros(len(table))
    left = np.zeros(len(table))
    positions = np.arange(len(table))
    for colour, driver in zip(colours, table.columns):
        part = table[driver].fillna(0.0).to_numpy()
        start = np.where(part >= 0, right, left)
        axis.barh(positions, part, left=start, color=colour, label=words(str(driver)), height=0.7)
        right += np.where(part >= 0, part, 0.0)
        left += np.where(part < 0, part, 0.0)
    churn = drivers.groupby("tier", sort=False)["churn"].first().reindex(table.index) * 100
    axis.plot(churn.to_numpy(), positions, "k|", ms=14, label="monthly churn (the sum)")
    axis.axvline(0.0, color="black", linewidth=0.8)
    axis.set_yticks(positions, table.index, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("points of monthly churn (percentage points)")
    axis.set_ylabel("tier")
    axis.set_title("Why customers leave: each tier's monthly churn by driver, without retention")
    axis.grid(alpha=0.3, axis="x")
    axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.55 / (0.42 * len(table) + 1.9)),
                ncol=4, frameon=False)
    return png(figure)


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
    currency = outcome.scenario.meta.currency
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for axis, (tier, lever) in zip(axes.flat, pairs):
        mine = curves[(curves["tier"] == tier) & (curves["lever"] == lever)]
        for rule, (colour, line) in RULE_STYLES.items():
            one = mine[mine["rule"] == rule]
            axis.plot(one["depth"] * 100, one["profit"], color=colour, linestyle=line, label=rule)
        axis.axhline(0.0, color="black", linewidth=0.6)
        axis.set_title(f"{tier} · {words(lever)}" + (" (funded)" if (tier, lever) in funded else ""), fontsize=10)
        axis.set_xlabel("share of the tier contacted, best-ranked first (%)", fontsize=8)
        largest = float(mine["profit"].abs().max()) if len(mine) else 0.0
        money_axis(axis, "y", largest, currency, "profit")
        axis.yaxis.label.set_fontsize(8)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(pairs):]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    figure.suptitle("Profit by depth of contact, per targeting rule (at the lever's stated acceptance)")
    figure.tight_layout()
    return png(figure)
