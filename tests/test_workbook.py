"""The run's workbook, read back with openpyxl: the Plan sheet's rows and totals, About, number formats,
frozen and filtered headers, the replication detail summarized, and Excel's row limit."""

from __future__ import annotations

import io
import math

import numpy as np
import openpyxl
import pandas as pd
import pytest

from optimize.outputs.workbook import (
    EXCEL_ROWS,
    MONEY,
    RATE,
    fit_to_sheets,
    monthly_summary,
    plan_sheet,
    workbook_bytes,
)
from sim.allocation import LAUNCH

PERIODS = ["H1", "H2"]


@pytest.fixture
def feed() -> pd.DataFrame:
    return pd.DataFrame([
        ("households", "bill_credit", "H1", 30_000, "risk"),
        ("households", "bill_credit", "H2", 12_500, "risk"),
        ("households", "data_bonus", "H2", 8_000, "risk"),
        ("key_a", "account_manager", "H1", 19_400, "risk"),
        (LAUNCH, "bill_credit", "H1", 5_000, ""),
        (LAUNCH, "bill_credit", "H2", 5_000, ""),
    ], columns=["tier", "lever", "period", "amount", "policy"])


def _open(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


def test_the_plan_has_tier_lever_rows_periods_as_columns_and_totals(feed: pd.DataFrame) -> None:
    plan = plan_sheet(feed, PERIODS)
    assert list(plan.columns) == ["tier", "lever", "policy", "H1", "H2", "total"]
    assert plan.values.tolist() == [
        ["households", "bill_credit", "risk", 30_000, 12_500, 42_500],
        ["households", "data_bonus", "risk", 0, 8_000, 8_000],
        ["key_a", "account_manager", "risk", 19_400, 0, 19_400],
        [LAUNCH, "bill_credit", "", 5_000, 5_000, 10_000],
        ["total", "", "", 54_400, 25_500, 79_900],
    ]
    assert plan["total"].iloc[-1] == feed["amount"].sum()


def test_the_workbook_reads_back_formatted(feed: pd.DataFrame) -> None:
    summary = pd.DataFrame({"strategy": ["lp", "lp"], "metric": ["monthly_churn", "npv"], "mean": [0.0123, 1.5e6],
                            "ci_low": [0.011, 1.4e6], "ci_high": [0.013, 1.6e6]})
    curves = pd.DataFrame({"tier": ["households"], "lever": ["bill_credit"], "amount": [30_000.0],
                           "value": [41_512.4], "retained_lines": [12.5], "fit_error": [0.02]})
    about = [("scenario", "small"), ("seed", "7")]
    data = workbook_bytes({"summary": summary, "curves": curves}, plan=plan_sheet(feed, PERIODS), about=about)
    book = _open(data)
    assert book.sheetnames == ["Plan", "About", "summary", "curves"]

    plan = book["Plan"]
    assert plan.freeze_panes == "D2" and plan.auto_filter.ref == "A1:F6"
    rows = list(plan.iter_rows(min_row=2, values_only=True))
    for row in rows:                                    # each row's total is the sum of its periods
        assert row[5] == row[3] + row[4]
    for column in (3, 4, 5):                            # the total row is the sum of the rows above
        assert rows[-1][column] == sum(r[column] for r in rows[:-1])
    assert rows[-1][5] == feed["amount"].sum()          # and the plan's spend, launch costs included
    assert plan["D2"].number_format == MONEY and plan["F6"].number_format == MONEY
    assert all(cell.font.bold for cell in plan[1]) and all(cell.font.bold for cell in plan[6])
    assert not plan["A2"].font.bold
    assert plan.column_dimensions["B"].width >= len("account_manager")

    table = book["summary"]
    assert table.freeze_panes == "A2" and table.auto_filter.ref == "A1:E3"
    assert all(cell.font.bold for cell in table[1])
    # Formats follow the row's metric: churn as a percentage, NPV as money.
    assert [table.cell(2, c).number_format for c in (3, 4, 5)] == [RATE] * 3
    assert [table.cell(3, c).number_format for c in (3, 4, 5)] == [MONEY] * 3
    assert table["C2"].value == pytest.approx(0.0123)
    curves_sheet = book["curves"]
    formats = {curves_sheet.cell(1, c).value: curves_sheet.cell(2, c).number_format for c in range(1, 7)}
    assert formats["amount"] == MONEY and formats["value"] == MONEY and formats["fit_error"] == RATE
    assert formats["retained_lines"] == "#,##0" and formats["tier"] == "General"

    items = dict(book["About"].iter_rows(min_row=2, values_only=True))
    assert items["scenario"] == "small" and items["seed"] == "7"
    assert workbook_bytes({"summary": summary, "curves": curves}, plan=plan_sheet(feed, PERIODS), about=about) == data


def test_the_monthly_sheet_is_the_mean_over_replications_with_its_interval() -> None:
    monthly = pd.DataFrame({"strategy": ["lp"] * 6, "replication": [0, 1, 2, 0, 1, 2], "month": [1, 1, 1, 2, 2, 2],
                            "tier": ["t"] * 6, "churned_lines": [10.0, 12.0, 14.0, 5.0, 5.0, 5.0],
                            "margin": [100.0, 200.0, 300.0, 1.0, 2.0, 3.0]})
    table = monthly_summary(monthly)
    assert table[["strategy", "month", "tier"]].values.tolist() == [["lp", 1, "t"], ["lp", 2, "t"]]
    assert table["churned_lines"].tolist() == [12.0, 5.0]
    # Three replications: sd 2, t(2) = 4.303, half-width 4.303 * 2 / sqrt(3) = 4.969.
    half = 4.302652729911275 * 2.0 / math.sqrt(3)
    assert table["churned_lines_ci_low"].iloc[0] == pytest.approx(12.0 - half, rel=1e-3)
    assert table["churned_lines_ci_high"].iloc[0] == pytest.approx(12.0 + half, rel=1e-3)
    assert table["churned_lines_ci_low"].iloc[1] == table["churned_lines_ci_high"].iloc[1] == 5.0
    assert table["margin_ci_high"].iloc[0] == pytest.approx(200.0 + 100.0 * 4.302652729911275 / math.sqrt(3), rel=1e-3)
    assert table["replications"].tolist() == [3, 3]
    fitted = fit_to_sheets({"monthly": monthly})
    assert len(fitted.sheets["monthly"]) == 2
    assert fitted.notes == [("monthly: the mean over 3 replications per strategy, month, tier, with 95% intervals of "
                             "churned lines and margin; every replication is in monthly.csv")]


def test_a_table_longer_than_a_sheet_is_left_out_and_about_says_where_it_is() -> None:
    tables = {"short": pd.DataFrame({"x": range(4)}), "long": pd.DataFrame({"x": range(5)})}
    fitted = fit_to_sheets(tables, limit=5)             # a sheet of five rows: the header and four
    assert list(fitted.sheets) == ["short"]
    assert fitted.notes == [("long: left out, 5 rows is more than a sheet holds (5 with the header); the whole "
                             "table is long.csv")]
    book = _open(workbook_bytes(tables, about=[("scenario", "small")], limit=5))
    assert book.sheetnames == ["About", "short"]
    notes = [v for item, v in book["About"].iter_rows(min_row=2, values_only=True) if item == "note"]
    assert notes == fitted.notes


def test_a_table_over_excels_limit_does_not_crash_the_writer() -> None:
    huge = pd.DataFrame({"x": np.zeros(EXCEL_ROWS, dtype=np.int8)})   # with its header, one row too many
    book = _open(workbook_bytes({"monthly_detail": huge}))
    assert book.sheetnames == ["About"]
    assert "monthly_detail: left out, 1,048,576 rows" in book["About"]["B2"].value
    fits = pd.DataFrame({"x": np.zeros(EXCEL_ROWS - 1, dtype=np.int8)})
    assert list(fit_to_sheets({"fits": fits}).sheets) == ["fits"]
