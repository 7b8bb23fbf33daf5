"""The run's workbook, for budget planning: the plan first, then what it rests on.

A planner opens ``results.xlsx`` to carry the plan into a budget: the **Plan** sheet holds the
recommended allocation with tier × lever rows and the planning periods as columns, each row's total,
the launch costs, and the total of each period; **About** says which scenario, seed and replications
it came from, in what currency and units each sheet counts, and which engine and library versions
wrote it. The other sheets are the run's tables, with money as ``#,##0``, rates as ``0.00%``, columns
wide enough to read, and a bold header row that stays in view and filters.

A sheet holds at most 1,048,576 rows (Excel's limit). The replication detail is summarized (the
monthly table becomes its mean over replications, with intervals; every replication stays in
``monthly.csv``); any table still too long is left out of the workbook, and About says where the whole
table is. The bytes depend only on the tables: the zip entries and the document's dates are fixed.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import openpyxl
import pandas as pd
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from sim.allocation import LAUNCH
from sim.results import t_quantile, within_range

EXCEL_ROWS = 1_048_576
"""Rows a worksheet holds, the header included."""
SHEET_NAME_LIMIT = 31
"""Excel's limit on a sheet name's length."""
FIXED_ZIP_DATE = (2000, 1, 1, 0, 0, 0)
_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")
"""openpyxl stamps the time of saving here whatever the properties say."""

MONEY = "#,##0"
RATE = "0.00%"
COUNT = "#,##0"
RATIO = "0.000"
Kind = Literal["money", "rate", "count", "ratio"]
FORMATS: dict[Kind, str] = {"money": MONEY, "rate": RATE, "count": COUNT, "ratio": RATIO}

_KINDS: dict[str, Kind] = {
    **dict.fromkeys(("amount", "value", "spend", "revenue", "margin", "npv", "npv_gain", "budget", "cost",
                     "objective", "discounted_spend", "discounted_margin", "value_retained", "retention_spend",
                     "predicted_value", "simulated_value", "predicted_net_value", "simulated_net_value",
                     "net_ci_low", "net_ci_high", "net_gain_over_first", "gain_ci_low", "gain_ci_high",
                     "measured_spend", "measured_value", "measured_value_se", "profit", "profit_per_contact",
                     "max_profit", "expected_max_profit", "expected_value", "total", "margin_ci_low",
                     "margin_ci_high"), "money"),
    **dict.fromkeys(("monthly_churn", "churn", "churn_with", "churn_without", "target", "share", "share_end",
                     "service_level", "abandonment", "gap_share", "probability", "mean_satisfaction",
                     "expected_churn", "price_gap", "competitor_pressure", "best_depth", "expected_best_depth",
                     "depth", "min_share", "max_share", "fit_error"), "rate"),
    **dict.fromkeys(("roi", "next_unit_value", "budget_shadow_price", "shadow_price"), "ratio"),
    **dict.fromkeys(("offers", "accepted", "saves", "eligible", "contacted", "retained_lines", "lines_retained",
                     "replications", "runs", "cells_funded", "cells_measured"), "count"),
}
"""The kind of figure a column (or, in a table with a ``metric`` column, a metric) holds."""
BY_METRIC = ("mean", "sd", "ci_low", "ci_high", "difference", "predicted", "simulated", "gap", "with_our_moves",
             "without_them")
"""Columns whose kind is their row's ``metric``'s."""
_SHEET_KINDS: dict[str, dict[str, Kind]] = {"closed_loop": {"ci_low": "money", "ci_high": "money"}}
"""Where a column means something else in one table."""


def figure_kind(name: str) -> Kind | None:
    """What a column or metric counts, by its name: money, a rate, a count or a ratio (None: a plain number)."""
    if name in _KINDS:
        return _KINDS[name]
    if name.endswith("_share"):
        return "rate"
    if "lines" in name or "units" in name or name.startswith(("churned_", "gross_adds")):
        return "count"
    if any(word in name for word in ("spend", "revenue", "margin", "value", "profit", "npv")):
        return "money"
    return None


# --- the sheets -----------------------------------------------------------------------------------

def plan_sheet(feed: pd.DataFrame, periods: Sequence[str]) -> pd.DataFrame:
    """The plan for a budget: a row per tier × lever (its policy, its amount in each period and its
    total), then a row per lever's launch costs, then the total of each period; ``feed`` has the columns
    ``tier, lever, period, amount, policy`` (:meth:`sim.allocation.Allocation.feed`)."""
    columns = ["tier", "lever", "policy", *periods, "total"]
    cells = feed[feed["tier"] != LAUNCH]
    launches = feed[feed["tier"] == LAUNCH]
    rows = []
    for part in (cells, launches):
        if not len(part):
            continue
        wide = part.pivot_table(index=["tier", "lever"], columns="period", values="amount", aggfunc="sum",
                                fill_value=0, sort=True)
        wide = wide.reindex(columns=list(periods), fill_value=0)
        policy = part.groupby(["tier", "lever"])["policy"].first().reindex(wide.index).fillna("")
        for (tier, lever), amounts in wide.iterrows():
            rows.append([tier, lever, policy[(tier, lever)], *amounts.tolist(), float(amounts.sum())])
    table = pd.DataFrame(rows, columns=columns)
    totals = [table[p].sum() for p in periods]
    total = pd.DataFrame([["total", "", "", *totals, float(sum(totals))]], columns=columns)
    table = pd.concat([table, total], ignore_index=True) if len(table) else total
    for column in [*periods, "total"]:
        values = table[column].astype(float)
        table[column] = values.astype("int64") if (values == values.round()).all() else values
    return table


def monthly_summary(monthly: pd.DataFrame) -> pd.DataFrame:
    """Per strategy, month and tier: the mean of every figure over replications, with 95% intervals of
    the churned lines and the margin, and the number of replications (the detail is ``monthly.csv``)."""
    keys = [k for k in ("strategy", "month", "tier") if k in monthly.columns]
    values = [c for c in monthly.columns if c not in keys and c != "replication"
              and pd.api.types.is_numeric_dtype(monthly[c])]
    groups = monthly.groupby(keys, sort=False)
    table = groups[values].mean()
    count = groups.size()
    for column in ("churned_lines", "margin"):
        if column not in values:
            continue
        sd = groups[column].std(ddof=1)
        half = pd.Series([t_quantile(int(k) - 1) if k > 1 else math.nan for k in count], index=count.index)
        half = (half * sd / np.sqrt(count)).fillna(0.0)  # one replication: the interval is the value, as summary.csv
        low, high = within_range(column, table[column] - half, table[column] + half)
        table[f"{column}_ci_low"], table[f"{column}_ci_high"] = low, high
    table["replications"] = count
    return table.reset_index()


@dataclass(frozen=True)
class Fitted:
    """The tables as the workbook holds them, and what it says about those it changed."""

    sheets: dict[str, pd.DataFrame]
    notes: list[str]


def fit_to_sheets(tables: Mapping[str, pd.DataFrame], limit: int = EXCEL_ROWS) -> Fitted:
    """Tables that a sheet of ``limit`` rows (header included) can hold: the monthly table summarized
    over replications, any table still too long left out; a note for each, naming the CSV file that has
    the whole table."""
    sheets: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    for name, table in tables.items():
        if name == "monthly" and "replication" in table.columns:
            table = monthly_summary(table)
            replications = int(table["replications"].max()) if len(table) else 0
            notes.append(f"{name}: the mean over {replications} replications per "
                         f"{', '.join(c for c in ('strategy', 'month', 'tier') if c in table.columns)}, with 95% "
                         f"intervals of churned lines and margin; every replication is in {name}.csv")
        if len(table) + 1 > limit:
            notes.append(f"{name}: left out, {len(table):,} rows is more than a sheet holds ({limit:,} with the "
                         f"header); the whole table is {name}.csv")
            continue
        sheets[name] = table
    return Fitted(sheets, notes)


SHEET_UNITS: dict[str, str] = {
    "summary": "per strategy and metric over the horizon: money in {c}, monthly_churn a share of lines per month, "
               "ROI a ratio, lines in lines",
    "paired_differences": "per strategy and metric, the difference to the baseline strategy in the metric's unit",
    "by_tier": "per strategy, tier and metric: as summary",
    "monthly": "per strategy, month and tier: money in {c} in the month, lines in lines, rates a share per month",
    "allocation": "the recommended plan (the LP's): {c} per tier × lever × period, launch costs in {c}",
    "allocations": "every strategy's plan: {c} per tier × lever × period, launch costs in {c}",
    "lp_allocation": "the LP's plan: {c} per cell, offers and retained lines in lines (units for accounts), "
                     "value in {c} (discounted), marginal ROI in {c} of value per {c}",
    "frontier": "budget, spend, value and objective in {c}; marginal return in {c} of value per {c}",
    "shadow_prices": "shadow price in objective {c} per unit of the constraint's right-hand side; slack in that unit",
    "predicted_vs_simulated": "per strategy and metric: money in {c}, lines in lines",
    "curves": "amount, value and cost in {c}; retained lines in lines",
    "closed_loop": "value, spend and intervals in {c}",
    "variants": "NPV and value in {c}; churn a share per month",
    "operators": "per operator: lines, share of lines, money in {c}",
    "price_moves": "per operator: money in {c}, lines, shares",
    "targets": "one row per line to contact: expected value in {c}",
    "targeting_rules": "profit in {c}; depth a share of the eligible lines",
    "targeting_curves": "profit in {c} by depth (a share of the eligible lines)",
}
"""What each sheet's figures count, for About (``{c}``: the currency)."""


def about_rows(manifest: Mapping[str, object], currency: str, description: str, sheets: Sequence[str],
               notes: Sequence[str]) -> list[tuple[str, str]]:
    """About: what the run was, in item / value rows. Only what the scenario and seed decide (no times,
    workers or command: those are in ``manifest.json``), so the same run gives the same bytes."""
    rows: list[tuple[str, str]] = [
        ("scenario", str(manifest.get("scenario", ""))),
        ("description", description.strip()),
        ("scenario file", str(manifest.get("scenario_file") or "")),
        ("scenario sha256", str(manifest.get("scenario_sha256", ""))),
        ("seed", str(manifest.get("seed", ""))),
        ("replications", str(manifest.get("replications", ""))),
        ("scale", str(manifest.get("scale", ""))),
        ("currency", currency),
        ("money", f"in {currency}; the Plan in whole {currency}, as the run simulated it"),
        ("Plan", (f"the recommended plan (the LP's): {currency} per tier × lever × period, launch costs per "
                  "period, totals per row and period; the same amounts as allocation.csv")),
    ]
    rows += [(name, SHEET_UNITS[name].format(c=currency)) for name in sheets if name in SHEET_UNITS]
    rows += [("note", note) for note in notes]
    versions = manifest.get("versions")
    if isinstance(versions, Mapping):
        rows += [(f"version of {name}", str(version)) for name, version in sorted(versions.items())]
    rows.append(("version of openpyxl", openpyxl.__version__))
    rows.append(("also", "the command, the times of each stage and the digests of the inputs are in manifest.json"))
    return rows


# --- writing ----------------------------------------------------------------------------------------

def workbook_bytes(tables: Mapping[str, pd.DataFrame], *, plan: pd.DataFrame | None = None,
                   about: Sequence[tuple[str, str]] = (), limit: int = EXCEL_ROWS) -> bytes:
    """An .xlsx: Plan (``plan``, from :func:`plan_sheet`), About (``about``, item / value rows, with a note
    for each table summarized or left out), then one formatted sheet per table that fits in ``limit`` rows.
    Byte-for-byte the same for the same inputs."""
    fitted = fit_to_sheets(tables, limit)
    book = openpyxl.Workbook()
    book.remove(book.active)
    if plan is not None:
        sheet = book.create_sheet("Plan")
        _write_table(sheet, plan, "plan", freeze="D2", default="money")
        last = sheet.max_row
        for cell in sheet[last]:
            cell.font = Font(bold=True)  # the total row
    if about or fitted.notes:
        rows = list(about) + [("note", n) for n in fitted.notes if ("note", n) not in about]
        _write_table(book.create_sheet("About"), pd.DataFrame(rows, columns=["item", "value"]), "about")
    for name, table in fitted.sheets.items():
        _write_table(book.create_sheet(name[:SHEET_NAME_LIMIT]), table, name)
    if not book.sheetnames:
        _write_table(book.create_sheet("About"), pd.DataFrame(columns=["item", "value"]), "about")
    fixed = datetime(2000, 1, 1)
    book.properties.created = book.properties.modified = fixed
    buffer = io.BytesIO()
    book.save(buffer)
    return _fixed_dates(buffer.getvalue())


def _write_table(sheet: Worksheet, table: pd.DataFrame, name: str, freeze: str = "A2",
                 default: Kind | None = None) -> None:
    """``table`` into ``sheet``: a bold, frozen, filtering header; each numeric column in the format of
    its kind (by its row's metric where it has one; ``default`` where its name says nothing)."""
    columns = [str(c) for c in table.columns]
    sheet.append(columns)
    for row in table.itertuples(index=False, name=None):
        sheet.append([_cell(v) for v in row])
    header = Font(bold=True)
    for cell in sheet[1]:
        cell.font = header
    sheet.freeze_panes = freeze
    if columns:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(1, len(table) + 1)}"
    metric = table["metric"].astype(str).tolist() if "metric" in table.columns else None
    overrides = _SHEET_KINDS.get(name, {})
    for index, column in enumerate(columns, start=1):
        numeric = pd.api.types.is_numeric_dtype(table[column]) and not pd.api.types.is_bool_dtype(table[column])
        kind = overrides.get(column) or figure_kind(column) or default
        cells = [row[0] for row in sheet.iter_rows(min_row=2, min_col=index, max_col=index)]
        if numeric and metric is not None and column in BY_METRIC and column not in overrides:
            for cell, m in zip(cells, metric):
                of_metric = figure_kind(m)
                if of_metric is not None:
                    cell.number_format = FORMATS[of_metric]
        elif numeric and kind is not None:
            for cell in cells:
                cell.number_format = FORMATS[kind]
        sheet.column_dimensions[get_column_letter(index)].width = _width(column, table[column], kind, numeric)


def _cell(value: object) -> object:
    """A value as a worksheet cell holds it: NaN and missing as empty, numpy scalars as Python numbers."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _width(column: str, values: pd.Series, kind: Kind | None, numeric: bool) -> float:
    """Wide enough for the header and the widest of the first thousand values as shown, within 8 to 60."""
    sample = values.iloc[:1000]
    if numeric and kind in ("money", "count"):
        shown = [f"{v:,.0f}" for v in sample.astype(float) if math.isfinite(v)]
    elif numeric and kind == "rate":
        shown = [f"{v:.2%}" for v in sample.astype(float) if math.isfinite(v)]
    elif numeric:
        shown = [f"{v:,.3f}" if isinstance(v, float) else str(v) for v in sample.tolist()]
    else:
        shown = [str(v) for v in sample.tolist() if v is not None]
    widest = max([len(column) + 3, *(len(s) for s in shown)])  # + 3: the filter button
    return float(min(60, max(8, widest + 1)))


def _fixed_dates(data: bytes) -> bytes:
    # openpyxl stamps each zip entry (and the document's modified date) with the time of writing.
    source = zipfile.ZipFile(io.BytesIO(data))
    fixed = io.BytesIO()
    with zipfile.ZipFile(fixed, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = _MODIFIED.sub(rb"\g<1>2000-01-01T00:00:00Z\g<2>", content)
            target.writestr(entry, content)
    return fixed.getvalue()
