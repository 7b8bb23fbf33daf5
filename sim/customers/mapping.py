"""The mapping file: which column of a customer table is which, and how tiers are formed.

A planner's table has its own column names and codes. The mapping (YAML, validated like a
scenario: every problem with its line and a fix) names the columns the engine needs, how
their values read (what counts as a churner, which contract a code means), how lines are
grouped into tiers (by a column's values, or by bands of a numeric column), and which
drivers the churn model fits, numeric ones linear or in bins.

Columns the table lacks in the form the engine needs can be derived (``derived``): a bill split
over several charge columns summed, a tenure in days converted to months, a ratio of two columns.
A derived column is used by its name wherever a column is named.

YAML reads unquoted ``yes``, ``no``, ``on``, ``off``, ``true`` and ``false`` as booleans; in a list
of codes they are read back as the words the planner wrote (``[yes]`` matches a table's ``Yes``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, model_validator

from ..scenario import KeyPath, Problem, ScenarioError, read_yaml, validate_as
from ..scenario.types import Name, Section, Seq, fail

Cell = str | int | float | bool
"""A value as it appears in the table."""

BOOLEAN_WORDS = {True: ("yes", "true", "on"), False: ("no", "false", "off")}
"""The words YAML 1.1 reads as a boolean when unquoted (in any of their cases)."""


def code_texts(value: Cell) -> tuple[str, ...]:
    """The table texts a code of the mapping matches. An unquoted ``yes`` reached us as ``True``: it
    matches the table's yes, true or on in whatever case the table writes them, which is what the
    planner meant (no table codes churners as the Python word ``True`` unless it stores booleans,
    and then it reads as "True" too)."""
    if isinstance(value, bool):
        return tuple(case(word) for word in BOOLEAN_WORDS[value] for case in (str.lower, str.title, str.upper))
    if isinstance(value, float) and value.is_integer():
        return (str(value), str(int(value)))
    return (str(value),)


def code_label(value: Cell) -> str:
    """A code as a planner reads it in a message."""
    if isinstance(value, bool):
        return "/".join(BOOLEAN_WORDS[value]) + " (unquoted: YAML read it as a boolean)"
    return str(value)


class Columns(Section):
    """Column names in the table for what the engine needs; empty for what the table lacks."""

    tenure_months: str
    """Months the line has been with us."""
    monthly_charge: str
    """What the line pays per month (its ARPU)."""
    contract: str | None = None
    """The line's contract type (codes read through ``contract_values``)."""
    churn: str | None = None
    """Whether the line left during the observation window (codes read through ``churn_values``);
    needed to calibrate, not to simulate."""
    region: str | None = None
    """The region the line lives in (names of the scenario's regions)."""
    complaints: str | None = None
    """Service calls or complaints of the line in the recent past (a count)."""
    lines: str | None = None
    """Lines behind the row, when a row is an account (default: every row is one line)."""
    customer: str | None = None
    """The customer's id, as the operator's CRM knows it (e.g. ``customerID``); a target list names
    lines by it. Default: the row's number in the table, counted from 1 after the header."""

    @model_validator(mode="after")
    def _each_once(self) -> Columns:
        named = [(field, column) for field, column in self.model_dump().items() if column is not None]
        seen: dict[str, str] = {}
        for field, column in named:
            if column in seen:
                raise fail(f"column '{column}' is named twice: for '{seen[column]}' and for '{field}'",
                           "give each field its own column, or leave one empty", at=(field,))
            seen[column] = field
        return self


def _shared_code(groups: dict[str, tuple[Cell, ...]]) -> None:
    """Refuse a code listed in two groups: a row with it would belong to whichever is read first."""
    seen: dict[str, str] = {}
    for group, values in groups.items():
        for value in values:
            for text in code_texts(value):
                if seen.get(text, group) != group:
                    raise fail(f"the code {code_label(value)!r} is listed both under '{seen[text]}' and under "
                               f"'{group}'", "keep it under one of them: a row's code must say one thing",
                               at=(group,))
                seen[text] = group


class ChurnValues(Section):
    left: Seq[Cell]
    """Codes of lines that left (e.g. ["Yes"], [1])."""
    stayed: Seq[Cell]
    """Codes of lines that stayed (e.g. ["No"], [0])."""

    @model_validator(mode="after")
    def _apart(self) -> ChurnValues:
        _shared_code({"left": self.left, "stayed": self.stayed})
        return self


class ContractValues(Section):
    """Contract codes by term: lines without a term contract are month to month."""

    month_to_month: Seq[Cell] = ()
    one_year: Seq[Cell] = ()
    two_year: Seq[Cell] = ()

    @model_validator(mode="after")
    def _apart(self) -> ContractValues:
        _shared_code({"month_to_month": self.month_to_month, "one_year": self.one_year, "two_year": self.two_year})
        return self


class Bands(Section):
    """Tiers by bands of a numeric column: ``edges`` between the bands, one name per band."""

    column: str
    edges: Annotated[Seq[float], Field(min_length=1)]
    names: Annotated[Seq[Name], Field(min_length=2)]

    @model_validator(mode="after")
    def _one_name_per_band(self) -> Bands:
        if any(b <= a for a, b in zip(self.edges, self.edges[1:])):
            raise fail("the edges must increase", "list each edge once, smallest first", at=("edges",))
        if len(self.names) != len(self.edges) + 1:
            raise fail(f"{len(self.edges)} edges make {len(self.edges) + 1} bands, but {len(self.names)} names are given",
                       "give one name per band: below the first edge, between edges, above the last",
                       at=("names",))
        return self


class TierRule(Section):
    """How lines form tiers: by the values of a column (``column``, with optional ``names`` for the
    values) or by bands of a numeric column (``bands``)."""

    column: str | None = None
    names: dict[str, Name] = {}
    """Tier name for each value of ``column`` (values not listed keep their own text as the name)."""
    bands: Bands | None = None

    @model_validator(mode="after")
    def _one_way(self) -> TierRule:
        if (self.column is None) == (self.bands is None):
            raise fail("give either 'column' (a tier per value) or 'bands' (tiers by bands of a number)",
                       "e.g. 'column: internet_service', or 'bands: {column: monthly_charges, edges: [35, 70], "
                       "names: [basic, standard, premium]}'")
        return self


class Derived(Section):
    """A column computed from the table's columns (or from derived columns listed before it), one way:
    ``sum`` of columns, ``ratio`` of two columns, or one ``column`` divided or multiplied by a number."""

    sum: Annotated[Seq[str], Field(min_length=2)] | None = None
    """Columns added up (e.g. a bill split over a voice and a data charge)."""
    ratio: Annotated[Seq[str], Field(min_length=2, max_length=2)] | None = None
    """Numerator and denominator (e.g. [total_charges, tenure] for the mean charge over the tenure)."""
    column: str | None = None
    """A column converted by ``divide_by`` or ``multiply_by`` (e.g. tenure in days to months)."""
    divide_by: Annotated[float, Field(gt=0.0)] | None = None
    multiply_by: Annotated[float, Field(gt=0.0)] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Derived:
        ways = [w for w in ("sum", "ratio", "column") if getattr(self, w) is not None]
        example = ("e.g. '{sum: [voice_charge, data_charge]}', '{ratio: [total_charges, tenure]}' or "
                   "'{column: tenure_days, divide_by: 30.4}'")
        if len(ways) != 1:
            raise fail(f"a derived column needs exactly one of 'sum', 'ratio' and 'column' (found "
                       f"{', '.join(ways) or 'none'})", example)
        scaled = self.divide_by is not None or self.multiply_by is not None
        if self.column is not None and not scaled:
            raise fail("'column' needs 'divide_by' or 'multiply_by'", example)
        if self.column is None and scaled:
            raise fail("'divide_by' and 'multiply_by' convert one 'column'", example)
        if self.divide_by is not None and self.multiply_by is not None:
            raise fail("give 'divide_by' or 'multiply_by', not both", "keep one of them")
        return self

    @property
    def sources(self) -> tuple[str, ...]:
        """The columns it is computed from."""
        if self.sum is not None:
            return self.sum
        if self.ratio is not None:
            return self.ratio
        assert self.column is not None
        return (self.column,)


class NumericDriver(Section):
    """How a numeric driver enters the churn model."""

    kind: Literal["linear", "bins"] = "linear"
    edges: Seq[float] = ()
    """For ``bins``: the edges between bins (each bin gets its own effect, the first is the reference)."""

    @model_validator(mode="after")
    def _edges_for_bins(self) -> NumericDriver:
        if self.kind == "bins" and not self.edges:
            raise fail("bins need 'edges'", "e.g. 'edges: [12, 24, 48]' for 0-12, 13-24, 25-48 and over 48")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:])):
            raise fail("the edges must increase", "list each edge once, smallest first", at=("edges",))
        return self


class Drivers(Section):
    """The drivers the churn model fits, besides each tier's own level."""

    tenure: NumericDriver = NumericDriver()
    """Months with us (linear: per year; bins: per tenure band)."""
    price: NumericDriver | None = NumericDriver()
    """The line's charge relative to its tier's mean (0.1 = pays 10% more than its tier)."""
    contract: bool = True
    """One year and two year contracts against month to month (needs ``columns.contract``)."""
    complaints: bool | NumericDriver = False
    """Recent service calls or complaints (needs ``columns.complaints``): ``true`` per complaint (the
    simulator's complaint sensitivity), or ``{kind: bins, edges: [0, 1, 3]}`` when a first complaint
    is a jump, not a step on a line (the bands then stay with the line, as its own propensity)."""
    numbers: dict[str, NumericDriver] = {}
    """Other numeric columns (or derived columns) of the table: column -> linear (per unit) or bins.
    Their effects stay with each line as its own propensity."""
    indicators: dict[str, Seq[Cell]] = {}
    """Service indicators: column -> the values that count as 1 (e.g. tech_support: ["Yes"])."""

    @property
    def complaints_binned(self) -> bool:
        return isinstance(self.complaints, NumericDriver) and self.complaints.kind == "bins"


class Mapping(Section):
    """How a customer table maps onto the planner's customer base."""

    description: str = ""
    derived: dict[str, Derived] = {}
    """Columns computed from the table's, by name (in order: each may use the ones before it)."""
    columns: Columns
    churn_values: ChurnValues | None = None
    contract_values: ContractValues = ContractValues()
    observation_months: Annotated[int, Field(ge=1, le=60)] = 12
    """The window the churn flag covers: a line flagged left within that many months."""
    tiers: TierRule
    drivers: Drivers = Drivers()
    template: str
    """The scenario (relative to this file) that supplies market, network, contact center, levers,
    budget and strategies; its tiers are replaced by the tiers of the table."""
    scenario_name: Name
    """Name of the scenario ``retention calibrate`` writes."""
    horizon_months: Annotated[int, Field(ge=1, le=240)] | None = None
    """Horizon of that scenario (default: the template's)."""
    margin: Annotated[float, Field(ge=0.0, le=1.0)] = 0.45
    """Contribution margin of the table's lines (the table has revenue, not cost)."""
    gross_add_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    """Our new lines per month as a share of each tier's lines in the table (the table says nothing of
    acquisitions); written as each tier's ``market.gross_adds.lines``. 0 leaves the tiers' gross adds
    at their share of their segment's new lines."""

    _source_dir: str | None = PrivateAttr(default=None)
    _source_file: str = PrivateAttr(default="mapping")
    _positions: dict[KeyPath, tuple[int, int]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _needs(self) -> Mapping:
        if self.drivers.complaints is not False and self.columns.complaints is None:
            raise fail("the complaints driver needs 'columns: complaints'",
                       "name the complaints column, or set 'drivers: complaints: false'", at=("drivers", "complaints"))
        if self.drivers.contract and self.columns.contract is None:
            raise fail("the contract driver needs 'columns: contract'",
                       "name the contract column, or set 'drivers: contract: false'", at=("drivers", "contract"))
        if self.columns.churn is not None and self.churn_values is None:
            raise fail("'churn_values' is missing: which codes mean a line left",
                       "add e.g. 'churn_values: {left: [\"Yes\"], stayed: [\"No\"]}'", at=("columns", "churn"))
        return self

    def problem(self, path: KeyPath, message: str, hint: str) -> Problem:
        """A problem the planner fixes in this mapping file, at ``path`` (its line when known)."""
        line = None
        for length in range(len(path), -1, -1):
            if path[:length] in self._positions:
                line = self._positions[path[:length]][0]
                break
        return Problem(self._source_file, line, None, path, message, hint)


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping file; raise :class:`ScenarioError` naming every problem."""
    document = read_yaml(path)
    mapping = validate_as(document, Mapping)
    mapping._source_dir = str(Path(path).resolve().parent)
    mapping._source_file = str(path)
    mapping._positions = dict(document.value_positions)
    return mapping


def relative_to_mapping(mapping: Mapping, name: str) -> Path:
    """A path written in the mapping, relative to the mapping file."""
    return (Path(mapping._source_dir or ".") / name).resolve()


__all__ = ["Mapping", "ScenarioError", "load_mapping", "relative_to_mapping"]
