"""What ``retention run`` writes: CSV tables, the same tables as a workbook, charts, the report.

Everything goes to a temporary folder beside the destination, moved into place only when
complete (:func:`sim.runner.write_outputs`): an interrupted run leaves no partial folder and
an existing run is never overwritten. The workbook's zip entries carry a fixed date, so the
same run gives the same bytes.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pandas as pd

from sim.runner import manifest, write_outputs

from ..run.pipeline import RunOutcome
from ..run.plan import curve_table
from .report import charts, report_html

FIXED_ZIP_DATE = (2000, 1, 1, 0, 0, 0)
_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")
"""openpyxl stamps the time of saving here whatever the properties say."""
SHEET_NAME_LIMIT = 31
"""Excel's limit on a sheet name's length."""


def run_tables(outcome: RunOutcome) -> dict[str, pd.DataFrame]:
    """The run's tables by file stem; the workbook has one sheet per table."""
    monthly = pd.concat([r.monthly.assign(strategy=name) for name, r in outcome.results.items()], ignore_index=True)
    monthly = monthly[["strategy", *[c for c in monthly.columns if c != "strategy"]]]
    frames = {
        "summary": outcome.summary,
        "paired_differences": outcome.paired,
        "by_tier": outcome.by_tier,
        "monthly": monthly,
        "allocation": outcome.allocation_table(),
        "lp_allocation": outcome.plan.allocation,
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
    if len(outcome.targeting):
        frames["targeting_rules"] = outcome.targeting
        frames["targeting_curves"] = outcome.targeting_curves
    return frames


def workbook_bytes(frames: dict[str, pd.DataFrame]) -> bytes:
    """An .xlsx with one sheet per table, byte-for-byte the same for the same tables."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in frames.items():
            frame.to_excel(writer, sheet_name=name[:SHEET_NAME_LIMIT], index=False)
        book = writer.book
        book.properties.created = book.properties.modified = pd.Timestamp("2000-01-01").to_pydatetime()
    # openpyxl stamps each zip entry with the time of writing; rewrite them with a fixed date.
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    fixed = io.BytesIO()
    with zipfile.ZipFile(fixed, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = _MODIFIED.sub(rb"\g<1>2000-01-01T00:00:00Z\g<2>", data)
            target.writestr(entry, data)
    return fixed.getvalue()


def write_run(outcome: RunOutcome, destination: str | Path, command: list[str] | None = None) -> Path:
    """Write the whole decision package into ``destination`` (all or nothing)."""
    frames = run_tables(outcome)
    images = charts(outcome)
    lp = outcome.allocations.get(next((s.name for s in outcome.scenario.strategies if s.kind == "lp_optimal"), ""))

    def extra(folder: Path) -> None:
        (folder / "results.xlsx").write_bytes(workbook_bytes(frames))
        for name, data in images.items():
            (folder / name).write_bytes(data)
        (folder / "report.html").write_text(report_html(outcome, images), encoding="utf-8")
        outcome.curve_store.write(folder)

    info = manifest(outcome.scenario, outcome.scenario_file, outcome.seed, outcome.replications,
                    lp if lp is not None else outcome.plan.result.to_allocation(), outcome.timings, command)
    info["workers"] = outcome.workers
    info["strategies"] = list(outcome.allocations)
    info.update(outcome.curve_store.manifest())  # response_curve_runs: every curve run made, variants too
    info["closed_loop_runs"] = outcome.plan.loop.runs if outcome.plan.loop is not None else 0
    return write_outputs(destination, frames, info, extra=extra)
