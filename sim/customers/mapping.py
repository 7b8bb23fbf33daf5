"""The mapping file: which column of a customer table is which, and how tiers are formed.

A planner's table has its own column names and codes. The mapping (YAML, validated like a
scenario: every problem with its line and a fix) names the columns the engine needs, how
their values read (what counts as a churner, which contract a code means), how lines are
grouped into tiers (by a column's values, or by bands of a numeric column), and which
drivers the churn model fits, numeric ones linear or in bins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, model_validator

from ..scenario import ScenarioError, read_yaml, validate_as
from ..scenario.types import Name, Section, Seq, fail

Cell = str | int | float | bool
"""A value as it appears in the table."""


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


class ChurnValues(Section):
    left: Seq[Cell]
    """Codes of lines that left (e.g. ["Yes"], [1])."""
    stayed: Seq[Cell]
    """Codes of lines that stayed (e.g. ["No"], [0])."""


class ContractValues(Section):
    """Contract codes by term: lines without a term contract are month to month."""

    month_to_month: Seq[Cell] = ()
    one_year: Seq[Cell] = ()
    two_year: Seq[Cell] = ()


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
    complaints: bool = False
    """Per recent service call or complaint (needs ``columns.complaints``)."""
    indicators: dict[str, Seq[Cell]] = {}
    """Service indicators: column -> the values that count as 1 (e.g. tech_support: ["Yes"])."""


class Mapping(Section):
    """How a customer table maps onto the planner's customer base."""

    description: str = ""
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
    @model_validator(mode="after")
    def _needs(self) -> Mapping:
        if self.drivers.contract and self.columns.contract is None:
            raise fail("the contract driver needs 'columns: contract'",
                       "name the contract column, or set 'drivers: contract: false'", at=("drivers", "contract"))
        if self.drivers.complaints and self.columns.complaints is None:
            raise fail("the complaints driver needs 'columns: complaints'",
                       "name the complaints column, or set 'drivers: complaints: false'", at=("drivers", "complaints"))
        if self.columns.churn is not None and self.churn_values is None:
            raise fail("'churn_values' is missing: which codes mean a line left",
                       "add e.g. 'churn_values: {left: [\"Yes\"], stayed: [\"No\"]}'", at=("columns", "churn"))
        return self


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping file; raise :class:`ScenarioError` naming every problem."""
    mapping = validate_as(read_yaml(path), Mapping)
    mapping._source_dir = str(Path(path).resolve().parent)
    return mapping


def relative_to_mapping(mapping: Mapping, name: str) -> Path:
    """A path written in the mapping, relative to the mapping file."""
    return (Path(mapping._source_dir or ".") / name).resolve()


__all__ = ["Mapping", "ScenarioError", "load_mapping", "relative_to_mapping"]
