"""A test-and-control campaign run by the simulator on a customer table's lines.

An operator learns what an offer does by offering it to a random half of its lines and
watching both halves for some months. The engine can run the same campaign on the lines of a
calibrated scenario's table, with a lever whose acceptance and effect are known, and write the
table the operator would have: one row per line, treated or control, accepted or not, left within
the window or not, and the line's groups (tier, tenure band, contract, services). Estimating the
lever back from that table (:mod:`sim.customers.campaign`) must find the values it was given.

The run is the table's observation window (:func:`sim.customers.window.observation_window`:
normal service, nothing flowing in, every row simulated) for the campaign's months, with:

* a first period of one month, ``campaign``, in which the lever's cell of every tier it reaches
  buys offers for the treated share of the tier's lines, and nothing afterwards;
* a churn model that ranks at random (``targeting.model_auc`` 0.5), so that the lines offered are
  a random draw: the treated group;
* the lever costing exactly 1 per contact and nothing else, and its channel without a capacity
  limit, so that the money buys the treated count exactly (costs do not act on churn).

Everything else about the lever acts as the scenario states: a satisfaction gain or a contract
extension moves churn too, and a campaign measures them together with the odds cut (a lever with
only ``hazard_reduction`` is read back as that); a backfire breaks the assumption the estimate rests on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..allocation import Allocation
from ..calibration_cache import calibrated
from ..engine import Simulation
from ..scenario import Problem, Scenario, ScenarioError, parse_yaml, validate_document
from ..subscribers import ACTIVE
from .churn_model import driver_groups
from .mapping import load_mapping
from .population import load_table_population
from .window import observation_window

CAMPAIGN_PERIOD = "campaign"
"""The campaign's month, in which the offers go out."""
AFTER_PERIOD = "after"
"""The rest of the window, in which nothing is offered."""


def campaign_scenario(scenario: Scenario, lever: str, months: int) -> Scenario:
    """``scenario``'s observation window cut to the campaign's ``months``, set up as the module says."""
    if lever not in scenario.levers:
        raise ScenarioError([Problem(scenario.meta.name, None, None, ("levers",), f"no lever '{lever}'",
                                     f"name one of: {', '.join(scenario.levers)}")])
    if not scenario.levers[lever].proactive:
        raise ScenarioError([Problem(scenario.meta.name, None, None, ("levers", lever, "mode"),
                                     "a save-desk lever is offered to lines asking to leave, not to a random group",
                                     "run the campaign with a proactive lever")])
    if months < 2:
        raise ScenarioError([Problem(scenario.meta.name, None, None, (), "a campaign needs a window of 2 months or more",
                                     "give months >= 2")])
    data: dict[str, Any] = observation_window(scenario).model_dump(mode="json")
    data["meta"]["horizon_months"] = months
    data["meta"]["periods"] = [{"name": CAMPAIGN_PERIOD, "months": 1}, {"name": AFTER_PERIOD, "months": months - 1}]
    data["targeting"]["model_auc"] = 0.5
    spec = data["levers"][lever]
    for key in ("cost_per_acceptance", "cost_per_line_month"):
        spec.pop(key, None)
    spec["cost_per_contact"] = 1.0
    spec["launch_cost"] = 0.0
    spec["min_spend"] = 0.0
    data["channels"][spec["channel"]]["capacity_per_month"] = 1e12
    data["budget"].pop("lever_capacity", None)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    campaign = validate_document(parse_yaml(text.encode("utf-8"), f"{scenario.meta.name} (a campaign of {lever})"))
    campaign._source_dir = scenario._source_dir
    return campaign


def simulate_campaign(scenario: Scenario, lever: str, months: int, *, treated_share: float = 0.5,
                      seed: int | None = None, replication: int = 0) -> pd.DataFrame:
    """The campaign's table, one row per line of ``scenario``'s customer table: ``customer`` (its row in
    the table, counted from 0), ``tier``, ``group`` (``treated`` or ``control``), ``accepted`` (1 or 0;
    0 for control lines), ``churned`` (1 if it left within the ``months``), and its group of each driver
    (:func:`sim.customers.churn_model.driver_groups`). The same seed gives the same table."""
    if not 0.0 < treated_share < 1.0:
        raise ValueError(f'"treated_share" must be between 0 and 1 (exclusive), not {treated_share}.')
    campaign = campaign_scenario(scenario, lever, months)
    assert campaign.population is not None
    seed = scenario.run.seed if seed is None else seed
    population = load_table_population(campaign)
    table = population.table
    reached = [name for name in campaign.tiers if campaign.levers[lever].reaches(name)]
    # Cost per offer is 1: a cell of n buys n offers (the pacing's keyed fraction never adds a whole one).
    amounts = {(name, lever, CAMPAIGN_PERIOD): float(round(treated_share * population.rows_of(name).size))
               for name in reached}
    simulation = Simulation(campaign, Allocation(amounts), calibrated(campaign, seed), seed, replication, contacts=True)
    simulation.run()
    treated = np.zeros(table.rows, dtype=np.int8)
    accepted = np.zeros(table.rows, dtype=np.int8)
    churned = np.ones(table.rows, dtype=np.int8)
    for state, name in zip(simulation.tiers, campaign.tiers):
        rows = population.rows_of(name)
        # A unit keeps its uid for life, and the uid names its table row; no unit joins the window.
        assert state.table_rows is not None
        ids = state.uid[: state.size]
        churned[state.table_rows[ids[(state.status[: state.size] == ACTIVE) & (ids < rows.size)]]] = 0
        for contact in (c for c in simulation.records.contacts if c.tier == name and c.lever == lever):
            treated[state.table_rows[contact.uids]] = 1
            accepted[state.table_rows[contact.uids]] = contact.accepted.astype(np.int8)
    mapping = load_mapping(f"{campaign._source_dir or '.'}/{campaign.population.mapping}")
    frame = pd.DataFrame({"customer": np.arange(table.rows), "tier": table.tier,
                          "group": np.where(treated == 1, "treated", "control"), "accepted": accepted,
                          "churned": churned})
    for driver, labels in driver_groups(table, mapping).items():
        if driver != "tier":
            frame[driver.replace(" ", "_")] = labels
    return frame


__all__ = ["campaign_scenario", "simulate_campaign"]
