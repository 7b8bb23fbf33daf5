"""How precise the comparison is: the paired NPV difference of two strategies under three ways of counting.

Reads a finished run's ``monthly.csv`` (every strategy's months, replication by replication, as
simulated), or simulates the run's plan (its ``allocation.csv``) and the baseline strategy again with
``--simulate N`` (N replications, on the engine as it is now, written to ``--keep``), and values each
replication three ways:

* ``drawn``: the lines as the draws fell (what happened; ``monthly.csv`` as it is);
* ``luck removed, carried whole``: each month's luck (lines lost beyond the hazards' expectation)
  added back to every later month at full weight, as the valuation counted before;
* ``luck removed, carried at survival``: the same luck carried forward at the survival its own month
  expected (:func:`sim.valuation.expected_paths`, what every table now uses).

For each: the mean paired difference (strategy - baseline) in NPV, its standard deviation over
replications, the 95% half-width at the run's replications, and how many replications the estimator
needs to reach the half-width the drawn count has at ``--width-of`` replications (20 by default).
Launch costs are left out: they are the same in every replication, so they move no interval.

    .venv/bin/python bench/variance.py RUN_DIR --scenario scenarios/baseline.yaml \\
        --strategy lp_optimal --baseline uniform [--simulate 40 --workers 2 --keep DIR]

It also replays the stopping rule (:func:`optimize.run.stopping.replicate_until`) on the replications
with the luck-removed count: how many a run with ``--half-width`` set to the drawn (and the carried
whole) count's width at ``--width-of`` replications would keep.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optimize.run.pipeline import simulate_all
from optimize.run.stopping import replicate_until
from optimize.run.strategies import rule_allocation
from sim.allocation import Allocation
from sim.engine import prepare
from sim.results import t_quantile
from sim.scenario import load_scenario
from sim.valuation import expected_paths, monthly_discount, terminal_annuity


def carried_whole(monthly: pd.DataFrame) -> pd.DataFrame:
    """The lines with each month's luck added back at full weight to every later month (the valuation
    before luck was carried at survival): ``expected_paths`` with a survival of 1."""
    m = monthly.sort_values(["replication", "tier", "month"], kind="stable")
    per_unit = (m["lines_start"] / m["units_start"].where(m["units_start"] > 0)).fillna(0.0)
    leavers = m["expected_churn"] * m["lines_start"] - m["saves"] * per_unit
    if "lines_cancelled_expected" in m:
        leavers = leavers + m["lines_cancelled_expected"].fillna(0.0)
    joined = m["gross_adds_market_lines"] + m["gross_adds_won_lines"]
    joiners = m["gross_adds_market_expected"] + m["gross_adds_won_expected"]
    luck = (m["churned_lines"] - leavers) + (joiners - joined)
    keys = [m["replication"], m["tier"]]
    after = luck.groupby(keys).cumsum()
    before = after - luck
    billed = m["lines_start"].where(m["lines_start"] > 0)
    margin_per_line = (m["margin"] / billed).groupby(keys).ffill().fillna(0.0)
    return pd.DataFrame({"replication": m["replication"], "tier": m["tier"], "month": m["month"],
                         "lines": m["lines_start"] + before, "margin": m["margin"] + before * margin_per_line,
                         "lines_end": m["lines_start"] - m["churned_lines"] + joined + after,
                         "retention_spend": m["retention_spend"]})


def npv_per_replication(paths: pd.DataFrame, scenario) -> pd.Series:  # type: ignore[no-untyped-def]
    """Value less discounted spend per replication, as :func:`sim.valuation.tier_values` counts it from
    the paths (launch costs left out)."""
    d = monthly_discount(scenario)
    factor = d ** paths["month"].astype(float)
    keys = [paths["replication"], paths["tier"]]
    money = ((paths["margin"] - paths["retention_spend"]) * factor).groupby(keys).sum()
    horizon = int(paths["month"].max())
    last = paths[paths["month"] == horizon].set_index(["replication", "tier"])
    per_line = (last["margin"] / last["lines"].where(last["lines"] > 0)).fillna(0.0)
    annuity = pd.Series({t: terminal_annuity(scenario, t) for t in scenario.tiers})
    tiers = last.index.get_level_values("tier")
    terminal = d ** horizon * last["lines_end"] * per_line * annuity.reindex(tiers).to_numpy()
    money.index.names = ["replication", "tier"]
    return (money + terminal).groupby("replication").sum()


def half_width(sd: float, n: int) -> float:
    return t_quantile(n - 1) * sd / math.sqrt(n)


def replications_for(width: float, sd: float, most: int = 10_000) -> int:
    """The fewest replications whose 95% half-width, at this spread, is at most ``width``."""
    return next((n for n in range(2, most) if half_width(sd, n) <= width), most)


def simulated_months(scenario, plan: Path, strategy: str, baseline: str, replications: int,  # type: ignore[no-untyped-def]
                     workers: int) -> pd.DataFrame:
    """The plan (a run's ``allocation.csv``) and a rule-of-thumb baseline strategy simulated on common
    random numbers: their monthly tables with a ``strategy`` column."""
    plans = [("", strategy, Allocation.read_csv(plan, scenario)), ("", baseline, rule_allocation(scenario, baseline))]
    calibration = prepare(scenario, scenario.run.seed)
    results = simulate_all({"": scenario}, plans, calibration, scenario.run.seed, replications, workers)
    return pd.concat([results[("", name)].monthly.assign(strategy=name) for _, name, _ in plans], ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a folder written by 'retention run'")
    parser.add_argument("--scenario", required=True, help="the run's scenario file")
    parser.add_argument("--strategy", default="lp_optimal")
    parser.add_argument("--baseline", default="uniform")
    parser.add_argument("--width-of", type=int, default=20,
                        help="the drawn count's replications whose half-width the others are to reach")
    parser.add_argument("--simulate", type=int, metavar="N",
                        help="simulate the run's plan and the baseline strategy for N replications (needs --keep)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="where --simulate writes its monthly.csv")
    args = parser.parse_args(argv)
    scenario = load_scenario(args.scenario)
    if args.simulate:
        monthly = simulated_months(scenario, args.run / "allocation.csv", args.strategy, args.baseline,
                                   args.simulate, args.workers)
        args.keep.mkdir(parents=True, exist_ok=True)
        monthly.to_csv(args.keep / "monthly.csv", index=False)
    else:
        monthly = pd.read_csv(args.run / "monthly.csv")
    counts = {
        "drawn": lambda m: expected_paths(m, as_drawn=True),
        "luck removed, carried whole": carried_whole,
        "luck removed, carried at survival": expected_paths,
    }
    rows, streams = [], {}
    for label, paths in counts.items():
        npv = {name: npv_per_replication(paths(monthly[monthly["strategy"] == name].drop(columns="strategy")),
                                         scenario) for name in (args.strategy, args.baseline)}
        diff = (npv[args.strategy] - npv[args.baseline]).to_numpy(dtype=float)
        streams[label] = diff
        rows.append({"count": label, "replications": len(diff), "difference": float(diff.mean()),
                     "sd": float(diff.std(ddof=1)), "half_width": half_width(float(diff.std(ddof=1)), len(diff))})
    table = pd.DataFrame(rows)
    target = half_width(float(table.loc[0, "sd"]), args.width_of)
    table["variance_ratio"] = (table["sd"] / table.loc[0, "sd"]) ** 2
    table[f"replications_for_drawn_width_at_{args.width_of}"] = [replications_for(target, sd) for sd in table["sd"]]
    current = float(table.loc[1, "half_width"])
    table["replications_for_carried_whole_width"] = [replications_for(current, sd) for sd in table["sd"]]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"{args.strategy} - {args.baseline}, NPV, {scenario.meta.name} ({args.run})")
        print(table.to_string(index=False, float_format=lambda x: f"{x:,.3f}" if abs(x) < 10 else f"{x:,.0f}"))
    newest = streams["luck removed, carried at survival"]
    for label, row in (("drawn", table.iloc[0]), ("luck removed, carried whole", table.iloc[1])):
        target = half_width(float(row["sd"]), args.width_of) if label == "drawn" else float(row["half_width"])
        stop = replicate_until(target, len(newest), lambda first, count: newest[:first + count], args.strategy,
                               args.baseline)
        print(f"--half-width {target:,.0f} ({label} at {args.width_of if label == 'drawn' else len(newest)}): "
              f"the run keeps {stop.replications} replications ({stop.reason}, ±{stop.half_width:,.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
