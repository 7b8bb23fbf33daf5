"""Allocation benchmark: build and solve time of the budget LP at planner-scale sizes, and the frontier.

One command measures everything and writes ``bench/results-allocation.json``::

    .venv/bin/python bench/allocation.py            # about a minute
    .venv/bin/python bench/allocation.py --quick    # smaller sizes, writes nothing

What it runs (each timing is the median of ``--repeat`` runs, every run from scratch):

1. **build + solve** at 500 tiers x 20 levers x 20 segments x 1 period (200,000 segment
   variables): ``build_problem`` and ``solve(problem, "highs")`` timed apart and together;
   the same with 2 periods; and the pulp rendering (``problem.lp``, what CBC and ``write_lp``
   use) timed apart, since the HiGHS path never builds it;
2. **simplex against interior point** (``highs-simplex`` / ``highs-ipm``, crossover on) at growing
   sizes, to decide whether ``highs`` should switch to the interior point above some size;
3. **frontier**: 50 budgets at 50 tiers x 10 levers x 20 segments x 1 period, warm (one HiGHS
   model, only the budget row's bound changed between budgets) against 50 cold solves, with
   the simplex iterations of each;
4. CBC (the fallback, via pulp) at the frontier's size, for scale.

The scenario is ``scenarios/small.yaml`` grown to N tiers and L levers (``workload``): consumer
tiers of 1,000 to 50,000 lines, levers spread over 5 channels, a binding total budget, a budget
per period, minimums and maximums for a tenth of the tiers, share bounds for 5, a capacity for
every lever, every channel's capacity, the contact policy per tier and period, and an ROI floor.
Curves are random, concave, 20 segments each, seeded.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from optimize.allocation.curves import ResponseCurve
from optimize.allocation.frontier import frontier
from optimize.allocation.problem import build_problem
from optimize.allocation.solve import solve
from optimize.allocation.solvers import HighsModel
from sim.scenario import Scenario, read_yaml, validate_document

RESULTS = HERE / "results-allocation.json"
TARGETS = {"build_and_solve_500x20x20_seconds": 2.0, "frontier_50_points_50x10x20_seconds": 1.0}


def workload(tiers: int, levers: int, periods: int = 1, segments: int = 20,
             seed: int = 20261122) -> tuple[Scenario, dict]:
    """``small.yaml`` grown to ``tiers`` x ``levers`` x ``periods`` cells with ``segments``-piece curves."""
    rng = np.random.default_rng(seed)
    doc = read_yaml(ROOT / "scenarios" / "small.yaml")
    data = copy.deepcopy(doc.data)
    months = 12 // periods
    data["meta"]["periods"] = [{"name": f"P{i + 1}", "months": months} for i in range(periods)]
    data["meta"]["horizon_months"] = months * periods
    data["tiers"] = {f"t{i:03d}": {"segment": "mass", "lines": int(rng.integers(1_000, 50_000)),
                                   "arpu": float(rng.uniform(30, 400)), "margin": 0.4,
                                   "baseline_churn": float(rng.uniform(0.005, 0.03))} for i in range(tiers)}
    data["competitors"] = {"campaigns": []}
    data["channels"] = {f"ch{i}": {"capacity_per_month": float(rng.uniform(2e4, 2e5))} for i in range(5)}
    data["levers"] = {f"l{j:02d}": {"channel": f"ch{j % 5}", "cost_per_contact": float(rng.uniform(1, 10)),
                                    "cost_per_acceptance": float(rng.uniform(10, 100)),
                                    "acceptance": float(rng.uniform(0.2, 0.6)),
                                    "hazard_reduction": 0.3, "duration_months": 3} for j in range(levers)}
    names = list(data["tiers"])
    cell_scale = 20_000.0
    total = 0.35 * tiers * levers * periods * cell_scale   # about a third of what the curves could take
    bounds: dict = {}
    for t in rng.choice(names, size=max(1, tiers // 10), replace=False):
        bounds[str(t)] = {"min": 2_000.0 * levers * periods, "max": 12_000.0 * levers * periods}
    for t in rng.choice([n for n in names if n not in bounds], size=min(5, tiers // 2), replace=False):
        bounds[str(t)] = {"max_share": 0.5 / tiers * 5, "min_share": 0.1 / tiers}
    data["budget"] = {
        "total": total, "objective": "net_value",
        "per_period": {f"P{i + 1}": 1.2 * total / periods for i in range(periods)},
        "tiers": bounds, "roi_floor": 1.2,
        "lever_capacity": {lv: float(rng.uniform(5e3, 5e4)) * months for lv in data["levers"]},
        "contact_policy": {"max_offers_per_line": 1, "per_months": 6},
    }
    scenario = validate_document(dataclasses.replace(doc, data=data, file="small.yaml grown"))
    curves = {}
    for t in names:
        for lv in data["levers"]:
            for p in data["meta"]["periods"]:
                widths = rng.uniform(0.5, 1.5, segments) * cell_scale / segments
                slopes = np.sort(rng.uniform(0.2, 4.0, segments))[::-1]
                spends = np.concatenate([[0.0], np.cumsum(widths)])
                values = np.concatenate([[0.0], np.cumsum(widths * slopes)])
                lines = np.concatenate([[0.0], np.cumsum(widths * slopes / 2_000.0)])
                curves[(t, lv, p["name"])] = ResponseCurve(t, lv, p["name"], tuple(spends), tuple(values),
                                                           retained=tuple(lines))
    return scenario, curves


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, out


def build_and_solve(tiers: int, levers: int, periods: int, repeat: int) -> dict:
    start = time.perf_counter()
    scenario, curves = workload(tiers, levers, periods)
    setup = time.perf_counter() - start
    build, build_runs, problem = timed(lambda: build_problem(scenario, curves), repeat)
    solve_time, solve_runs, result = timed(lambda: solve(problem, "highs"), repeat)
    both, both_runs, _ = timed(lambda: solve(build_problem(scenario, curves), "highs"), repeat)
    fresh = build_problem(scenario, curves)
    render, _, _ = timed(lambda: fresh.__dict__.pop("lp", None) or fresh.lp, 1)
    binding = result.constraints[result.constraints["binding"]]["kind"].value_counts().to_dict()
    return {"tiers": tiers, "levers": levers, "periods": periods, "segments": 20,
            "columns": problem.n_cols, "rows": len(problem.rows), "nonzeros": len(problem.row_index),
            "scenario_and_curves_seconds": setup, "build_seconds": build, "solve_seconds": solve_time,
            "build_and_solve_seconds": both, "build_and_solve_runs": both_runs,
            "pulp_rendering_seconds": render, "iterations": result.iterations, "status": result.status,
            "objective": result.objective, "spend": result.total_spend, "binding_rows_by_kind": binding}


def methods(sizes: list[tuple[int, int, int]], repeat: int) -> list[dict]:
    rows = []
    for tiers, levers, periods in sizes:
        scenario, curves = workload(tiers, levers, periods)
        problem = build_problem(scenario, curves)
        row = {"tiers": tiers, "levers": levers, "periods": periods, "nonzeros": len(problem.row_index)}
        objectives = {}
        for solver in ("highs-simplex", "highs-ipm"):
            seconds, _, result = timed(lambda s=solver: solve(problem, s), repeat)
            row[f"{solver}_seconds"] = seconds
            row[f"{solver}_iterations"] = result.iterations
            objectives[solver] = result.objective
        row["objectives_agree"] = abs(objectives["highs-simplex"] - objectives["highs-ipm"]) <= 1e-6 * max(
            1.0, abs(objectives["highs-simplex"]))
        rows.append(row)
    return rows


def frontier_bench(tiers: int, levers: int, points: int, repeat: int) -> dict:
    scenario, curves = workload(tiers, levers, 1)
    problem = build_problem(scenario, curves)
    lo = sum(b.min for b in scenario.budget.tiers.values())
    budgets = np.linspace(lo, 1.5 * scenario.budget.total, points)
    warm, warm_runs, table = timed(lambda: frontier(problem, budgets, "highs"), repeat)

    def cold() -> list[int]:
        counts = []
        for budget in budgets:
            problem.set_budget(budget)
            counts.append(HighsModel(problem, "highs").run().iterations)
        problem.set_budget(scenario.budget.total)
        return counts

    cold_time, _, cold_iterations = timed(cold, repeat)
    build, _, _ = timed(lambda: build_problem(scenario, curves), repeat)
    warm_iterations = table.attrs["iterations"]
    values = table.loc[table["status"] == "optimal", "objective"].to_numpy()
    return {"tiers": tiers, "levers": levers, "periods": 1, "segments": 20, "points": points,
            "budgets": [float(budgets[0]), float(budgets[-1])], "build_seconds": build,
            "warm_seconds": warm, "warm_runs": warm_runs, "cold_seconds": cold_time,
            "warm_iterations_first": warm_iterations[0],
            "warm_iterations_median_after_first": statistics.median(warm_iterations[1:]),
            "cold_iterations_median": statistics.median(cold_iterations),
            "statuses": table["status"].value_counts().to_dict(),
            "non_decreasing": bool((np.diff(values) >= -1e-6).all())}


def cbc_bench(tiers: int, levers: int) -> dict:
    scenario, curves = workload(tiers, levers, 1)
    start = time.perf_counter()
    problem = build_problem(scenario, curves)
    result = solve(problem, "cbc")
    seconds = time.perf_counter() - start
    highs = solve(build_problem(scenario, curves), "highs")
    return {"tiers": tiers, "levers": levers, "build_render_and_solve_seconds": seconds,
            "objective_matches_highs": abs(result.objective - highs.objective) <= 1e-6 * abs(highs.objective)}


def machine() -> dict:
    import highspy
    import pulp

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "optimize"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip())
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "commit": commit,
            "optimize_has_uncommitted_edits": dirty, "cpus": os.cpu_count(), "cpu": cpu,
            "python": platform.python_version(), "highspy": highspy.__version__ if hasattr(highspy, "__version__")
            else "", "highs": f"{highspy.Highs().versionMajor()}.{highspy.Highs().versionMinor()}."
            f"{highspy.Highs().versionPatch()}", "pulp": pulp.__version__, "numpy": np.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, writes nothing")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, help=f"results file (default {RESULTS.name}, not with --quick)")
    args = parser.parse_args()
    big = (100, 10) if args.quick else (500, 20)
    repeat = 2 if args.quick else args.repeat
    results: dict = {"machine": machine(), "targets": TARGETS}
    results["build_and_solve"] = [build_and_solve(*big, 1, repeat)]
    print(json.dumps(results["build_and_solve"][-1], indent=1))
    if not args.quick:
        results["build_and_solve"].append(build_and_solve(*big, 2, max(1, repeat // 2)))
        print(json.dumps(results["build_and_solve"][-1], indent=1))
    sizes = [(50, 10, 1), (100, 20, 1)] if args.quick else [(50, 10, 1), (200, 20, 1), (500, 20, 1), (500, 20, 2)]
    results["methods"] = methods(sizes, max(1, repeat // 2))
    print(json.dumps(results["methods"], indent=1))
    results["frontier"] = frontier_bench(50, 10, 50, repeat)
    print(json.dumps(results["frontier"], indent=1))
    results["cbc"] = cbc_bench(50, 10)
    print(json.dumps(results["cbc"], indent=1))
    out = args.out or (None if args.quick else RESULTS)
    if out is not None:
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"written to {out}")


if __name__ == "__main__":
    main()
