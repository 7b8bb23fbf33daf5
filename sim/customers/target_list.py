"""A period's target list: which customers of the table a CRM contacts, with which lever, when.

The plan says how much each tier x lever cell spends in a period; a CRM needs names. The list is
what the engine itself does with the plan: the scenario is simulated from its customer table up to
the end of the period, and every proactive offer it makes in the period's months is written down
with the table's customer id. So the list keeps to everything a run keeps to: each cell buys offers
with its money at the offer's expected cost, channels and levers stay within their capacities, a
line is not offered again sooner than the contact policy allows, and within a tier the churn model
picks the lines it ranks most at risk (with the model's stated accuracy).

How to read it: the list is the expected contact order. Offers in the period's later months go to
lines that, in the simulated month, had not left; a line that has left by its month is skipped by
the CRM, and a line a later month would reach in its place is not on the list (the engine's draw
of who leaves is one of many). Offers the plan makes to lines that join after the table was taken
cannot be named: they are counted (:attr:`TargetList.offers_to_new_lines`), not listed.

Per line, the expected uplift is :func:`sim.uplift.expected_uplift` at the line's hazard in the
month of contact, and the expected value is that uplift times the value of a line kept
(:func:`sim.valuation.value_of_a_line_kept`), for every line the row bills.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..allocation import Allocation
from ..calibration_cache import calibrated
from ..competition import line_margin
from ..engine import Calibration, Simulation
from ..scenario import Problem, Scenario, ScenarioError
from ..scenario.types import did_you_mean
from ..uplift import expected_uplift
from ..valuation import value_of_a_line_kept
from .population import load_table_population

COLUMNS = ["rank", "customer", "tier", "lever", "month", "expected_uplift", "expected_value", "expected_cost"]
"""The list's columns, in order (README, "The campaign's target list")."""


class TargetListError(ScenarioError):
    """A target list cannot be made: the scenario has no customer table, or the period is unknown."""


@dataclass(frozen=True)
class TargetList:
    """The period's list and how it adds up against the plan."""

    period: str
    rows: pd.DataFrame
    """One row per offer to a customer of the table (:data:`COLUMNS`), in rank order."""
    offers_to_new_lines: dict[tuple[str, str], int]
    """Per (tier, lever): offers the plan made in the period to lines that joined after the table."""
    cells: pd.DataFrame
    """Per cell of the period: its amount and the offers the run made (as ``Records.cells`` has them)."""


def period_months(scenario: Scenario, period: str, source: str = "") -> range:
    """The horizon's months (1-based) of ``period``."""
    start = 1
    for p in scenario.meta.periods:
        if p.name == period:
            return range(start, start + p.months)
        start += p.months
    names = [p.name for p in scenario.meta.periods]
    raise TargetListError([Problem(source or scenario.meta.name, None, None, ("meta", "periods"),
                                   f"no period '{period}' in the scenario{did_you_mean(period, names)}",
                                   f"name one of: {', '.join(names)}")])


def require_customer_table(scenario: Scenario, source: str = "") -> None:
    """A target list names a table's customers: refuse a scenario whose lines are made up."""
    if scenario.population is None:
        raise TargetListError([Problem(source or scenario.meta.name, None, None, ("population",),
                                       "the scenario's lines are not a customer table's, so there is no one to name",
                                       "make the scenario from the table with 'retention calibrate', then list targets "
                                       "with that scenario")])


def target_list(scenario: Scenario, allocation: Allocation, period: str, *, seed: int | None = None,
                replication: int = 0, source: str = "", calibration: Calibration | None = None) -> TargetList:
    """The customers the plan ``allocation`` contacts in ``period`` (see the module). ``source``: the
    scenario file as the planner named it, for messages. ``calibration``: the scenario's, when a run has
    it already (:func:`sim.engine.prepare` with the same seed). The same seed gives the same list."""
    where = source or scenario.meta.name
    require_customer_table(scenario, where)
    months = period_months(scenario, period, where)
    # Every row of the table is a line of the run: a CRM needs all its customers, not a sample.
    scenario = scenario.model_copy(update={"run": scenario.run.model_copy(update={"scale": 1.0})})
    seed = scenario.run.seed if seed is None else seed
    population = load_table_population(scenario)
    ids = population.table.customer_ids()
    calibration = calibrated(scenario, seed) if calibration is None else calibration
    simulation = Simulation(scenario, allocation, calibration, seed, replication, contacts=True)
    for state in simulation.tiers:
        if state.table_rows is None or state.table_rows.size != population.rows_of(state.name).size \
                or abs(state.weight - 1.0) > 1e-9:
            raise TargetListError([Problem(where, None, None, ("tiers", state.name),
                                           f"the tier's {scenario.tiers[state.name].unit_count:,} units are not the "
                                           f"table's {population.rows_of(state.name).size:,} rows of it",
                                           "calibrate the scenario again from its table (the tier's lines or accounts "
                                           "must be the table's)")])
    simulation.run(months.stop - 1)
    states = {state.name: state for state in simulation.tiers}
    parts = []
    new_lines: dict[tuple[str, str], int] = {}
    for contact in simulation.records.contacts:
        if contact.month not in months:
            continue
        state = states[contact.tier]
        assert state.table_rows is not None
        known = contact.uids < state.table_rows.size
        if not known.all():
            key = (contact.tier, contact.lever)
            new_lines[key] = new_lines.get(key, 0) + int((~known).sum())
        rows = state.table_rows[contact.uids[known]]
        tier = scenario.tiers[contact.tier]
        lever = scenario.levers[contact.lever]
        kept = value_of_a_line_kept(scenario, contact.tier, contact.month,
                                    line_margin(tier.arpu, contact.price, 1.0, tier.margin))
        uplift = expected_uplift(contact.hazard[known], lever)
        parts.append(pd.DataFrame({
            "row": rows, "customer": ids[rows], "tier": contact.tier, "lever": contact.lever,
            "month": contact.month - months.start + 1, "expected_uplift": uplift,
            "expected_value": uplift * kept * population.table.lines[rows],
            "expected_cost": lever.cost_per_offer(tier)}))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["row", *COLUMNS[1:]])
    # The contact order: month by month, the most valuable offer first; the table's order breaks ties.
    frame = frame.sort_values(["month", "expected_value", "row"], ascending=[True, False, True], kind="stable")
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    cells = pd.DataFrame(simulation.records.cells)
    if len(cells):
        cells = cells[cells["period"] == period].reset_index(drop=True)
    return TargetList(period, frame[COLUMNS].reset_index(drop=True), new_lines, cells)


__all__ = ["COLUMNS", "TargetList", "TargetListError", "period_months", "require_customer_table", "target_list"]
