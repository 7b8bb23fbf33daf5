"""Figures as a planner reads them: money in the scenario's currency, churn in percent, counts with
thousands separators, never in scientific notation.

Every table and sentence of the report formats its figures here, so one column never mixes
``1.5e+04`` with ``7,500``: a column of money is shown in one unit (whole currency units, or
millions once the figures reach them), chosen from the column's largest figure.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

DASH = "–"
"""What a missing figure shows (a ratio without a denominator, an interval of one replication)."""
MINUS = "−"
"""The typographic minus: a signed figure's sign has the width of its plus."""

Formatter = Callable[[object], str]


def _missing(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


@dataclass(frozen=True)
class MoneyUnit:
    """How a group of amounts is written: whole units with separators, or millions with two decimals."""

    scale: float
    suffix: str
    decimals: int

    def number(self, x: float, signed: bool = False) -> str:
        if _missing(x):
            return DASH
        value = x / self.scale
        text = f"{abs(value):,.{self.decimals}f}{self.suffix}"
        if round(abs(value), self.decimals) == 0:
            return text
        if value < 0:
            return MINUS + text
        return ("+" if signed else "") + text


WHOLE = MoneyUnit(1.0, "", 0)
MILLIONS = MoneyUnit(1e6, "M", 2)
MILLIONS_SHORT = MoneyUnit(1e6, "M", 1)
SMALL = MoneyUnit(1.0, "", 2)
"""Money per unit of money (a shadow price, the value of the next unit): two decimals."""


def unit_for(*figures: float) -> MoneyUnit:
    """The unit for amounts as large as the largest of ``figures``: millions from a million on."""
    largest = max((abs(x) for x in figures if not _missing(x)), default=0.0)
    if largest >= 1e8:
        return MILLIONS_SHORT
    if largest >= 1e6:
        return MILLIONS
    return WHOLE


def _with_currency(figure: str, currency: str) -> str:
    """A figure with its currency; none where a table's header names it."""
    return f"{figure} {currency}" if currency else figure


def money(x: float, currency: str, signed: bool = False) -> str:
    """``35.60M CNY``, ``7,500 CNY``, ``+1.32M CNY``."""
    if _missing(x):
        return DASH
    return _with_currency(unit_for(x).number(x, signed), currency)


def money_interval(mean: float, low: float, high: float, currency: str, signed: bool = True) -> str:
    """``+20.60M CNY [+19.10M, +22.00M]``: the three in the unit of the largest."""
    if _missing(mean):
        return DASH
    unit = unit_for(mean, low, high)
    bounds = "" if _missing(low) or _missing(high) else \
        f" [{unit.number(low, signed)}, {unit.number(high, signed)}]"
    return _with_currency(unit.number(mean, signed), currency) + bounds


def percent(x: float, decimals: int = 2) -> str:
    """A rate (0.01438) as ``1.44%``."""
    if _missing(x):
        return DASH
    text = f"{abs(x) * 100:.{decimals}f}%"
    return MINUS + text if x < 0 and round(abs(x) * 100, decimals) else text


def points(x: float, decimals: int = 2) -> str:
    """A difference of rates (-0.0009) as ``−0.09 pp`` (percentage points)."""
    if _missing(x):
        return DASH
    text = f"{abs(x) * 100:.{decimals}f} pp"
    if round(abs(x) * 100, decimals) == 0:
        return text
    return (MINUS if x < 0 else "+") + text


def count(x: float, signed: bool = False) -> str:
    """Lines, offers, accounts: whole, with thousands separators."""
    if _missing(x):
        return DASH
    text = f"{abs(x):,.0f}"
    if round(abs(x)) == 0:
        return text
    return (MINUS if x < 0 else ("+" if signed else "")) + text


def count_interval(mean: float, low: float, high: float, signed: bool = True) -> str:
    if _missing(mean):
        return DASH
    bounds = "" if _missing(low) or _missing(high) else f" [{count(low, signed)}, {count(high, signed)}]"
    return count(mean, signed) + bounds


def points_interval(mean: float, low: float, high: float) -> str:
    if _missing(mean):
        return DASH
    bounds = "" if _missing(low) or _missing(high) else f" [{points(low)}, {points(high)}]"
    return points(mean) + bounds


def percent_interval(mean: float, low: float, high: float) -> str:
    if _missing(mean):
        return DASH
    bounds = "" if _missing(low) or _missing(high) else f" [{percent(low)}, {percent(high)}]"
    return percent(mean) + bounds


def ratio(x: float, decimals: int = 2) -> str:
    """A ratio (ROI, value per unit of money): ``1.23``."""
    if _missing(x):
        return DASH
    text = f"{abs(x):,.{decimals}f}"
    return (MINUS + text) if x < 0 and round(abs(x), decimals) else text


def text(x: object) -> str:
    """A name or a figure already in words; a missing one (a launch cost's targeting) as a dash."""
    return DASH if _missing(x) or x == "" else str(x)


def words(name: str) -> str:
    """A column or metric name in words: ``value_retained`` → ``value retained``."""
    return name.replace("_", " ")


def money_column(values: pd.Series, currency: str) -> Formatter:
    """Formats every amount of ``values`` in the one unit its largest figure needs."""
    unit = unit_for(*values.tolist())

    def format_one(x: object) -> str:
        return unit.number(float(x))  # type: ignore[arg-type]

    return format_one


def table_html(frame: pd.DataFrame, columns: Mapping[str, tuple[str, Formatter]], *,
               classes: str = "data", first_left: int = 1) -> str:
    """``frame`` as an HTML table: only ``columns``, each under its header in words and through its
    formatter; the first ``first_left`` columns (names) are aligned left, figures right."""
    name_class = ' class="name"'
    heads = "".join(f"<th{name_class if i < first_left else ''}>{html.escape(header)}</th>"
                    for i, (header, _) in enumerate(columns.values()))
    rows = []
    for record in frame.to_dict("records"):
        cells = []
        for i, (column, (_, formatter)) in enumerate(columns.items()):
            cells.append(f"<td{name_class if i < first_left else ''}>{html.escape(formatter(record[column]))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="{classes}"><thead><tr>{heads}</tr></thead><tbody>' + "".join(rows)
            + "</tbody></table>")
