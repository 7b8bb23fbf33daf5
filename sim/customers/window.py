"""The observation window re-run: does the calibrated scenario give back the table it came from?

A table says which of its lines left within its window (a year, say). The scenario calibrated from
it should, started from those very rows and run for exactly that window, lose the same share of
each group: each tier, each tenure band, each contract, the lines with and without each service.
The planner's scenario holds more than the table saw: its template's market brings new lines
every month and its rivals send switchers to us, thousands of them into a table of a few thousand.
The window run takes them out, as a change of the scenario, not of the engine:

* the conditions the churn was stated under (:func:`sim.engine.reference_conditions`: normal
  service, list prices, no campaign, no move, no retention offer);
* the horizon is the window (``population.observation_months``);
* no gross adds (every tier's ``market.gross_adds`` is 0 lines a month) and no rival switching to
  us (every rival's ``monthly_churn`` is 0, which also stops their switchers among themselves:
  nothing that reaches our tiers);
* every row of the table simulated (scale 1), so each simulated line is a row of the table.

Each replication records which rows are still with us at the end; the share of a group's rows that
left, averaged over replications, is set against the table's own flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..allocation import Allocation
from ..calibration_cache import calibrated
from ..engine import Simulation, reference_conditions
from ..scenario import Problem, Scenario, ScenarioError, parse_yaml, validate_document
from ..subscribers import ACTIVE
from .churn_model import driver_groups
from .mapping import load_mapping
from .population import load_table_population

WINDOW_PERIOD = "window"
"""The one planning period of the window run."""


def observation_window(scenario: Scenario) -> Scenario:
    """``scenario`` for exactly its table's observation window, with nothing flowing in (see the module)."""
    if scenario.population is None:
        raise ScenarioError([Problem(scenario.meta.name, None, None, ("population",),
                                     "the scenario does not start from a customer table: it has no window to re-run",
                                     "use a scenario written by 'retention calibrate'")])
    months = scenario.population.observation_months
    data: dict[str, Any] = reference_conditions(scenario).model_dump(mode="json")
    data["meta"]["horizon_months"] = months
    data["meta"]["periods"] = [{"name": WINDOW_PERIOD, "months": months}]
    data["budget"].pop("per_period", None)
    data["budget"].pop("locked", None)
    data["run"]["scale"] = 1.0
    for tier in data["tiers"].values():
        tier.setdefault("market", {})["gross_adds"] = {"lines": 0.0}
    market = data["market"]
    for name, operator in market["operators"].items():
        if name != market["us"]:
            operator["monthly_churn"] = 0.0
    label = f"{scenario.meta.name} (its {months}-month observation window)"
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    window = validate_document(parse_yaml(text.encode("utf-8"), label))
    window._source_dir = scenario._source_dir
    return window


@dataclass(frozen=True)
class WindowCheck:
    """The window re-run against the table."""

    groups: pd.DataFrame
    """Per driver and group: lines, the table's churn over the window, the simulated churn, and the gap."""
    months: int
    replications: int
    seed: int

    @property
    def largest_gap(self) -> float:
        return float(self.groups["gap"].abs().max())


def left_within_window(scenario: Scenario, seed: int, replications: int) -> np.ndarray:
    """Per row of the scenario's table: the share of replications in which it left within the window."""
    window = observation_window(scenario)
    population = load_table_population(window)
    table = population.table
    calibration = calibrated(window, seed)
    left = np.zeros(table.rows)
    for r in range(replications):
        simulation = Simulation(window, Allocation.empty(), calibration, seed, r)
        simulation.run()
        for state, tier in zip(simulation.tiers, window.tiers):
            rows = population.rows_of(tier)
            # A unit keeps its uid for life, and the uid names its table row (whatever the regrouping by
            # region did to the rows); no unit joins.
            assert state.table_rows is not None
            ids = state.uid[: state.size]
            staying = ids[(state.status[: state.size] == ACTIVE) & (ids < rows.size)]
            left[rows] += 1.0
            left[state.table_rows[staying]] -= 1.0
    return left / replications


def check_window(scenario: Scenario, seed: int | None = None, replications: int | None = None) -> WindowCheck:
    """Simulate ``scenario``'s observation window (:func:`observation_window`) and set each group's churn
    against the table's."""
    assert scenario.population is not None
    seed = scenario.run.seed if seed is None else seed
    replications = scenario.run.replications if replications is None else replications
    left = left_within_window(scenario, seed, replications)
    population = load_table_population(scenario)
    table = population.table
    mapping = load_mapping(Path(scenario._source_dir or ".") / scenario.population.mapping)
    if table.churn is None:
        raise ScenarioError([mapping.problem(("columns",), "the window check needs the table's churn column",
                                             "name it under 'columns: churn'")])
    weights = table.lines.astype(float)
    rows = []
    for driver, labels in driver_groups(table, mapping).items():
        for group in pd.unique(labels):
            mine = labels == group
            observed = float(np.average(table.churn[mine], weights=weights[mine]))
            simulated = float(np.average(left[mine], weights=weights[mine]))
            rows.append({"driver": driver, "group": str(group), "lines": float(weights[mine].sum()),
                         "table_churn": observed, "simulated_churn": simulated, "gap": simulated - observed})
    everyone = {"driver": "all", "group": "all", "lines": float(weights.sum()),
                "table_churn": float(np.average(table.churn, weights=weights)),
                "simulated_churn": float(np.average(left, weights=weights))}
    everyone["gap"] = everyone["simulated_churn"] - everyone["table_churn"]
    return WindowCheck(pd.DataFrame([everyone, *rows]), scenario.population.observation_months, replications, seed)


__all__ = ["WindowCheck", "check_window", "left_within_window", "observation_window"]
