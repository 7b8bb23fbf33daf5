"""Why customers leave: each tier's monthly churn, without retention, split among its drivers.

A retention lever addresses a cause: a price match answers a price gap, a network fix answers outages,
a service call answers complaints. Before choosing levers a planner asks which causes carry a tier's
churn (the first step of the retention studies the engine follows). The hazard says it in log-odds: a
line's monthly churn is the logistic of a sum of terms (:mod:`sim.hazard`). The terms add up, the
probabilities do not: a price gap weighs more on a line that outages already push towards the door.
So each driver's part of the probability is its **Shapley value**: its added churn, switched on after
every possible set of the other drivers, averaged with the Shapley weights. The six parts and the base
rate add up exactly to the tier's churn, and no driver's part depends on the order the drivers are
listed in.

The drivers, their terms in the hazard, and the neutral value each takes when it is "absent":

======================================  ===============================================  ==========================
driver                                  terms                                            absent
======================================  ===============================================  ==========================
price gap                               price_gap x (our price - best rival's offer)     no price gap
network quality and outages             network_gap x (best rival's quality - ours in    our quality equal to the
                                        the line's region), + the month's outages        best rival's, no outage
service and complaints                  satisfaction x (1 - satisfaction),               full satisfaction, no
                                        + complaints per line x recent complaints        complaint
competitor pressure                     competitor_pressure x campaign intensity         no campaign
contract and tenure                     out_of_contract x [contract over], + tenure      in contract, at zero tenure
                                        (capped at the loyalty months)
own propensity                          the line's own propensity                        propensity 0
======================================  ===============================================  ==========================

With every driver absent what remains is the **base rate**: the churn of the tier's base hazard alone.
A driver's part is negative where it holds lines back (tenure; our network better than the rivals'
in a region; a price below the rivals').

**Which lines and months.** The lines active in each month of runs without retention (the first
:data:`REPLICATIONS` replications of the run's seed, at about the response curves' number of simulated
units, every tier at least :data:`MINIMUM_UNITS` units so that a tier of a few accounts is read with
little noise), each month at its billing, as the engine decides churn then: the month's market (campaigns moving the price
gap and the pressure, our investments), the outages that hit the line that month, the complaints and
satisfaction the contact center and the outages left it with. A tier's figures are means over its
unit-months (a month weighs by its active units), so its ``churn`` is those runs' mean expected monthly
churn, which the engine's own records give independently (:attr:`ChurnDrivers.simulated`).

**Enterprise tiers** are decomposed per account, the unit whose decision the engine draws: an account
of a tier deciding at renewal only does not decide while its contract runs (its churn is 0 and no
driver gets any of it); in the month of its tender its drivers are decomposed like a line's. The churn
is the accounts' (the share of accounts deciding to leave in a month); the lines an account cancels
between its renewals are not a driver of this decision and are not in it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from .allocation import Allocation
from .engine import Calibration, FanOut, Simulation
from .hazard import MarketView, TierHazard
from .scenario import Scenario
from .subscribers import ACTIVE, PROPENSITY_STEP, TierState

DRIVERS = ("price gap", "network quality and outages", "service and complaints", "competitor pressure",
           "contract and tenure", "own propensity")
"""The driver groups, in the order of the table (and of the columns of :func:`driver_terms`)."""
BASE_RATE = "base rate"
"""The table's last row per tier: the churn left with every driver absent."""
COLUMNS = ["tier", "driver", "churn", "contribution", "share"]
MINIMUM_UNITS = 5_000
"""Units of every tier simulated at least (a small tier drawn several times over)."""
REPLICATIONS = 4
"""Replications pooled: outages strike a whole region at once, so one replication's churn strays from
the mean by several percent (about 6% in the small market, 2 to 5% in the baseline's tiers); four
halve that."""
CHUNK_ROWS = 1 << 15
"""Units evaluated at once over all coalitions (a block of rows x 64 float64 numbers, 16 MB)."""

COALITIONS = np.array([[(c >> g) & 1 for g in range(len(DRIVERS))] for c in range(1 << len(DRIVERS))],
                      dtype=np.float64)
"""Row ``c``: which drivers coalition ``c`` switches on (bit ``g`` of ``c`` for driver ``g``)."""


def shapley(values: np.ndarray) -> np.ndarray:
    """The Shapley value of each of ``k`` players from a game's value of every coalition.

    ``values[c]`` is the value of the coalition whose members are the set bits of ``c`` (``values[0]``
    the empty one), ``2**k`` values in all. Player ``g`` gets
    ``sum over coalitions S without g of |S|! (k - |S| - 1)! / k! * (values[S + g] - values[S])``:
    its added value averaged over the orders in which the players can join. The players' values add up
    to ``values[-1] - values[0]``.
    """
    size = values.shape[0]
    k = size.bit_length() - 1
    if size != 1 << k:
        raise ValueError(f"a game of k players has 2**k coalition values, not {size}")
    members = np.array([c.bit_count() for c in range(size)])
    weight = np.array([math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k) if s < k else 0.0
                       for s in range(k + 1)])
    out = np.zeros(k)
    for g in range(k):
        bit = 1 << g
        without = np.array([c for c in range(size) if not c & bit])
        out[g] = float(np.sum(weight[members[without]] * (values[without | bit] - values[without])))
    return out


def driver_terms(state: TierState, hazard: TierHazard, view: MarketView, month: int, region_quality: np.ndarray,
                 outages: list[tuple[np.ndarray, float]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each active unit's log-odds per driver (columns in the order of :data:`DRIVERS`), and whether it
    decides this month (an account of a tier deciding at renewal only does not while its contract runs).

    The terms are those of the engine's hazard (:func:`sim.hazard.dense_logit` plus the month's
    ``outages``: per outage, the rows it hit and its quality drop); with the base they add up to it.
    """
    n = state.size
    active = state.status[:n] == ACTIVE
    rows = np.flatnonzero(active)
    terms = np.zeros((rows.size, len(DRIVERS)))
    terms[:, 0] = hazard.price_gap * view.price_gap
    by_region = hazard.network_gap * (view.best_quality - np.asarray(region_quality, dtype=np.float64))
    network = by_region[state.region[:n]]
    for hit, drop in outages or []:
        # An outage adds to the network gap of the lines it hits; a line hit twice counts twice.
        np.add.at(network, hit, hazard.network_gap * drop)
    terms[:, 1] = network[rows]
    satisfaction = state.satisfaction[rows].astype(np.float64)
    complaints = state.complaints[rows].astype(np.float64)
    terms[:, 2] = hazard.satisfaction * (1.0 - satisfaction) + hazard.complaints / state.lines_per_unit * complaints
    terms[:, 3] = hazard.competitor_pressure * view.pressure
    contract_end = state.contract_end[rows]
    tenure = month - state.join_month[rows].astype(np.float64)
    terms[:, 4] = hazard.out_of_contract * (contract_end <= month) + hazard.tenure_term(tenure)
    terms[:, 5] = PROPENSITY_STEP * state.propensity[rows].astype(np.float64)
    deciding = np.ones(rows.size, dtype=bool) if hazard.in_contract == 0.0 else contract_end <= month
    return terms, deciding


def coalition_churn(base: float, terms: np.ndarray) -> np.ndarray:
    """Per coalition of drivers (:data:`COALITIONS`): the units' summed churn probability with the
    coalition's drivers at their terms and the others absent (at 0)."""
    size = COALITIONS.shape[0]
    sums = np.zeros(size)
    for start in range(0, terms.shape[0], CHUNK_ROWS):
        # exp(-logit) of a coalition is exp(-base) times its drivers' exp(-term): each coalition's is the
        # one without its highest driver's, times that driver's. One exp per unit and driver, not per
        # coalition (an eighth of the time of one exp per coalition).
        odds_against = np.exp(-terms[start:start + CHUNK_ROWS].T)
        against = np.empty((size, odds_against.shape[1]))
        against[0] = math.exp(-base)
        for c in range(1, size):
            top = c.bit_length() - 1
            np.multiply(against[c ^ (1 << top)], odds_against[top], out=against[c])
        against += 1.0
        np.reciprocal(against, out=against)
        sums += against.sum(axis=1)
    return sums


@dataclass
class DriverTally:
    """A tier's coalition churn summed over unit-months, and the unit-months it is summed over."""

    churn: np.ndarray = field(default_factory=lambda: np.zeros(COALITIONS.shape[0]))
    unit_months: int = 0

    def contributions(self) -> tuple[float, float, np.ndarray]:
        """The mean churn, the base rate and each driver's Shapley part of the churn above it."""
        mean = self.churn / max(self.unit_months, 1)
        return float(mean[-1]), float(mean[0]), shapley(mean)


@dataclass
class TallyRecord:
    """A tier's months (each month's units all counted, the deciding ones' churn summed), kept in order:
    one replication's part, added to the run's tally later (:meth:`replay`) in the order a single process would have added it,
    so the sums are the same bytes wherever the replications ran."""

    months: list[tuple[np.ndarray, int]] = field(default_factory=list)

    def add(self, base: float, terms: np.ndarray, deciding: np.ndarray) -> None:
        self.months.append((coalition_churn(base, terms[deciding]), int(deciding.size)))

    def replay(self, into: DriverTally) -> None:
        for churn, units in self.months:
            into.churn += churn
            into.unit_months += units


class DecomposingSimulation(Simulation):
    """A no-retention :class:`Simulation` that, at each month's billing, reads every active unit's
    driver terms just before the engine draws its churn: the same units, market, outages, complaints and
    satisfaction the engine decides on."""

    def __init__(self, scenario: Scenario, calibration: Calibration, seed: int, replication: int,
                 tallies: Mapping[str, TallyRecord], minimum_units: int | None = MINIMUM_UNITS) -> None:
        super().__init__(scenario, Allocation.empty(), calibration, seed, replication, minimum_units=minimum_units)
        self.tallies = tallies
        """Per tier, where the months' coalition churn is added (shared by the replications)."""

    def _billing(self, month: int) -> None:
        for state, name in zip(self.tiers, self.scenario.tiers):
            hazard = self.calibration.hazards[name]
            outages = list(zip(self.month_outages.affected.get(state.index, []),
                               self.month_outages.drops.get(state.index, [])))
            terms, deciding = driver_terms(state, hazard, self.competition.view(name, month), month,
                                           self.region_quality, outages)
            self.tallies[name].add(hazard.base, terms, deciding)
        super()._billing(month)


@dataclass(frozen=True)
class ChurnDrivers:
    """The decomposition and what the same run's engine recorded."""

    table: pd.DataFrame
    """Columns :data:`COLUMNS`: per tier (scenario order) and driver (:data:`DRIVERS`, then
    :data:`BASE_RATE`), the tier's mean monthly churn, the driver's part of it and that part's share."""
    simulated: dict[str, float]
    """Per tier, the run's mean expected monthly churn per unit-month as the engine recorded it."""


def decomposition_table(scenario: Scenario, tallies: Mapping[str, DriverTally]) -> pd.DataFrame:
    """The tallies as the table of :attr:`ChurnDrivers.table`."""
    rows = []
    for name in scenario.tiers:
        churn, base, parts = tallies[name].contributions()
        for driver, part in (*zip(DRIVERS, parts), (BASE_RATE, base)):
            rows.append({"tier": name, "driver": driver, "churn": churn, "contribution": float(part),
                         "share": float(part) / churn if churn > 0 else float("nan")})
    return pd.DataFrame(rows, columns=COLUMNS)


def decompose_replication(scenario: Scenario, calibration: Calibration, seed: int, replication: int,
                          minimum_units: int = MINIMUM_UNITS) -> tuple[dict[str, TallyRecord], pd.DataFrame]:
    """One replication of :func:`decompose`'s runs (``scenario`` at its simulated scale already): each
    tier's months of coalition churn in order, and the engine's monthly table."""
    records = {name: TallyRecord() for name in scenario.tiers}
    simulation = DecomposingSimulation(scenario, calibration, seed, replication, records, minimum_units)
    return records, pd.DataFrame(simulation.run().tier_months)


def decompose(scenario: Scenario, calibration: Calibration, seed: int, simulated_units: int | None = None,
              replications: range = range(REPLICATIONS), minimum_units: int = MINIMUM_UNITS,
              fan_out: FanOut | None = None) -> ChurnDrivers:
    """Each tier's monthly churn without retention split among its drivers (see the module's text),
    pooled over the unit-months of ``replications`` of the run's seed.

    Simulated at about ``simulated_units`` units (by default the response curves'; never more than the
    run's own scale), every tier at least ``minimum_units``. ``fan_out`` runs the replications (by
    default one after another here); the table is the same bytes however they ran."""
    units = sum(t.unit_count for t in scenario.tiers.values())
    wanted = simulated_units or scenario.run.estimation.simulated_lines
    scale = min(scenario.run.scale, wanted / max(units, 1))
    scaled = scenario.model_copy(update={"run": scenario.run.model_copy(update={"scale": scale})})
    work = partial(decompose_replication, minimum_units=minimum_units)
    parts = (fan_out(work, scaled, calibration, seed, list(replications)) if fan_out is not None
             else [work(scaled, calibration, seed, r) for r in replications])
    tallies = {name: DriverTally() for name in scenario.tiers}
    for recorded, _ in parts:
        for name, record in recorded.items():
            record.replay(tallies[name])
    months = pd.concat([frame for _, frame in parts], ignore_index=True)
    simulated = {}
    for name in scenario.tiers:
        mine = months[months["tier"] == name]
        units_start = mine["units_start"].to_numpy(dtype=float)
        simulated[name] = float(np.dot(mine["expected_churn"].to_numpy(dtype=float), units_start)
                                / max(units_start.sum(), 1e-300))
    return ChurnDrivers(decomposition_table(scenario, tallies), simulated)


def churn_drivers(scenario: Scenario, calibration: Calibration, seed: int,
                  simulated_units: int | None = None, fan_out: FanOut | None = None) -> pd.DataFrame:
    """Why each tier's customers leave: the table of :func:`decompose`."""
    return decompose(scenario, calibration, seed, simulated_units, fan_out=fan_out).table


__all__ = ["BASE_RATE", "COALITIONS", "COLUMNS", "DRIVERS", "ChurnDrivers", "DecomposingSimulation", "DriverTally",
           "FanOut", "TallyRecord", "churn_drivers", "coalition_churn", "decompose", "decompose_replication",
           "decomposition_table", "driver_terms", "shapley"]
