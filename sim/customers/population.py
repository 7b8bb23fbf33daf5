"""The simulator's population from a customer table's rows.

Each row of a tier becomes a unit with the row's tenure, contract and (when mapped) region
and complaints; its own propensity is the fitted effects that stay with it (tenure band,
contract type, service indicators, its charge relative to its tier), centred on the tier
so that calibration's base carries the tier's level. What the table does not hold
(satisfaction, the churn model's error) is drawn as for a synthetic tier.

A contract line's current term ends at its next anniversary (tenure counted in whole terms);
month-to-month lines are out of contract.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..scenario import Problem, Scenario
from ..subscribers import PROPENSITY_STEP, TierState
from .churn_model import design
from .mapping import load_mapping
from .table import CustomerTable, DataError, read_table


@dataclass(frozen=True)
class TablePopulation:
    """A scenario's customer table, read once, with each row's centred propensity."""

    table: CustomerTable
    offsets: np.ndarray
    """Log-odds offset per row from the fitted effects, centred per tier."""
    complaints_binned: bool = False
    """The table's complaints were fitted in bands (part of ``offsets``), not per complaint."""

    def rows_of(self, tier: str) -> np.ndarray:
        return np.flatnonzero(self.table.tier == tier)


def load_table_population(scenario: Scenario) -> TablePopulation:
    """Read the scenario's ``population`` table through its mapping (once per process and table)."""
    source = scenario.population
    assert source is not None
    return _load(scenario._source_dir or ".", source.table, source.mapping, tuple(sorted(source.effects.items())),
                 tuple(scenario.tiers))


@functools.lru_cache(maxsize=4)
def _load(source_dir: str, table_source: str, mapping_file: str, effects: tuple[tuple[str, float], ...],
          tiers: tuple[str, ...]) -> TablePopulation:
    base = Path(source_dir)
    mapping = load_mapping(base / mapping_file)
    table = read_table(table_source, mapping, base)
    mismatch = sorted(set(table.tiers) ^ set(tiers))
    if mismatch:
        raise DataError([Problem(table_source, None, None, ("tiers",),
                                 f"the table's tiers and the scenario's differ: {', '.join(mismatch)}",
                                 "calibrate the scenario again from this table and mapping")])
    terms = design(table, mapping, list(tiers))
    offsets = np.zeros(table.rows)
    fitted = dict(effects)
    for name, column in zip(terms.names, terms.matrix.T):
        if name in fitted:
            offsets += fitted[name] * column
    for tier in table.tiers:
        mine = table.tier == tier
        offsets[mine] -= np.average(offsets[mine], weights=table.lines[mine])
    return TablePopulation(table, offsets, mapping.drivers.complaints_binned)


def choose_rows(population: TablePopulation, tier: str, units: int, rng: np.random.Generator) -> np.ndarray:
    """The table rows a tier simulates: all of them, or ``units`` of them drawn without replacement."""
    rows = population.rows_of(tier)
    if units >= rows.size:
        return rows
    return np.sort(rng.choice(rows, size=units, replace=False))


def apply_rows(state: TierState, population: TablePopulation, rows: np.ndarray, regions: list[str]) -> None:
    """Overwrite the synthetic start of ``state``'s first units with the table's rows."""
    table = population.table
    n = rows.size
    tenure = np.floor(table.tenure[rows])
    state.join_month[:n] = (1 - tenure).astype(np.int16)
    term = table.term[rows].astype(np.int64)
    remaining = np.where(term > 0, term - np.mod(tenure.astype(np.int64), np.maximum(term, 1)), 0)
    state.contract_end[:n] = np.where(term > 0, remaining, 0).astype(np.int16)
    steps = np.rint(population.offsets[rows] / PROPENSITY_STEP)
    state.propensity[:n] = np.clip(steps, -127, 127).astype(np.int8)
    if table.complaints is not None and not population.complaints_binned:
        # Binned, the table's complaints act through the bands in the line's propensity: not twice.
        state.complaints[:n] = np.clip(table.complaints[rows], 0, 255).astype(np.uint8)
    if table.region is not None:
        known = {name: i for i, name in enumerate(regions)}
        values = table.region[rows]
        unknown = sorted({v for v in values if v not in known})
        if unknown:
            raise DataError([Problem(table.source, None, None, ("region",),
                                     f"regions {', '.join(repr(u) for u in unknown[:5])} are not in the scenario's network",
                                     f"use the scenario's regions: {', '.join(regions)}")])
        state.region[:n] = np.array([known[v] for v in values], dtype=np.uint8)
