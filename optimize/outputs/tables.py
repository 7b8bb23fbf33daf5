"""What ``retention run`` writes: CSV tables, the workbook (:mod:`.workbook`), charts, the report.

Everything goes to a temporary folder beside the destination, moved into place only when
complete (:func:`sim.runner.write_outputs`): an interrupted run leaves no partial folder and
an existing run is never overwritten.

The budget-planning feed has one shape wherever it is written (:meth:`sim.allocation.Allocation.feed`):
``allocation.csv`` is the recommended plan (the LP's, as simulated), ``allocations.csv`` every
strategy's with a ``strategy`` column, ``lp_allocation.csv`` the recommended plan with what the
optimizer expects of each cell.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sim.runner import manifest, write_outputs

from ..run.pipeline import RunOutcome
from ..run.plan import curve_table
from .report import drawing, report_html
from .workbook import about_rows, plan_sheet, workbook_bytes


def run_tables(outcome: RunOutcome) -> dict[str, pd.DataFrame]:
    """The run's tables by file stem; the workbook has one sheet per table."""
    monthly = pd.concat([r.monthly.assign(strategy=name) for name, r in outcome.results.items()], ignore_index=True)
    monthly = monthly[["strategy", *[c for c in monthly.columns if c != "strategy"]]]
    recommended = outcome.recommended()
    frames = {
        "summary": outcome.summary,
        "paired_differences": outcome.paired,
        "by_tier": outcome.by_tier,
        "monthly": monthly,
        "allocation": recommended.feed(outcome.scenario),
        "allocations": outcome.allocation_table(),
        "lp_allocation": recommended.feed(outcome.scenario, detail=outcome.plan.allocation),
        "frontier": outcome.frontier,
        "shadow_prices": outcome.plan.shadow_prices,
        "predicted_vs_simulated": outcome.predicted,
        "curves": curve_table(outcome.estimate, outcome.plan.curves),
    }
    if outcome.plan.loop is not None:
        frames["closed_loop"] = outcome.plan.loop.rounds
    if len(outcome.variants):
        frames["variants"] = outcome.variants
    if len(outcome.operators):
        frames["operators"] = outcome.operators
    if len(outcome.price_moves):
        frames["price_moves"] = outcome.price_moves
    if len(outcome.targets):
        frames["targets"] = outcome.targets
    if len(outcome.churn_drivers):
        frames["churn_drivers"] = outcome.churn_drivers
    if len(outcome.targeting):
        frames["targeting_rules"] = outcome.targeting
        frames["targeting_curves"] = outcome.targeting_curves
    return frames


def write_run(outcome: RunOutcome, destination: str | Path, command: list[str] | None = None) -> Path:
    """Write the whole decision package into ``destination`` (all or nothing)."""
    drawn = drawing(outcome)  # on the workers, while the tables and the workbook are written here
    frames = run_tables(outcome)

    def extra(folder: Path) -> None:
        scenario = outcome.scenario
        plan = plan_sheet(frames["allocation"], [p.name for p in scenario.meta.periods])
        about = about_rows(info, scenario.meta.currency, scenario.meta.description, list(frames), [])
        (folder / "results.xlsx").write_bytes(workbook_bytes(frames, plan=plan, about=about))
        images = drawn()
        for name, data in images.items():
            (folder / name).write_bytes(data)
        (folder / "report.html").write_text(report_html(outcome, images), encoding="utf-8")
        outcome.curve_store.write(folder)

    info = manifest(outcome.scenario, outcome.scenario_file, outcome.seed, outcome.replications,
                    outcome.recommended(), outcome.timings, command)
    info["workers"] = outcome.workers
    info.update(outcome.backend)  # where the simulations ran: local processes or a Dask cluster
    info["strategies"] = list(outcome.allocations)
    info.update(outcome.curve_store.manifest())  # response_curve_runs: every curve run made, variants too
    info["closed_loop_runs"] = outcome.plan.loop.runs if outcome.plan.loop is not None else 0
    if outcome.stopping is not None:
        info["comparison_replications"] = outcome.stopping.manifest()
    return write_outputs(destination, frames, info, extra=extra)
