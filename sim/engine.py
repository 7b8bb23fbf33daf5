"""The discrete-event simulation of one replication: simpy schedules, numpy arrays hold the base.

Time runs in months. Month *m* covers the simulated interval ``[m-1, m)``:

* at its start our moves take effect (tariffs, network investments, staffing),
  competitors' campaigns and reactions update, and proactive retention offers go out;
* outages arrive during the month in each region (a Poisson process each);
* near its end the contact center serves the month's calls (base and outage-driven);
* at its end billing runs: revenue, the churn decision of every unit (with
  save-desk offers to units asking to leave), destinations, gross adds, records.

There is one simpy process per event source, never one per subscriber: the
processes act on whole arrays of units at a time.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import simpy

from . import kernels
from .accounts import IN_CONTRACT_LOCK, move_lines
from .allocation import Allocation
from .base_at_rest import BaseAtRest, SatisfactionAtRest, contract_renewal_rate
from .competition import Competition, line_margin
from .hazard import (
    F32,
    MarketView,
    TierHazard,
    calibrate,
    dense_logit,
    log_odds_factor,
    logit_coefficients,
    probability,
)
from .hotline import Hotline
from .offers import Budget, LeverBook, LeverTable, apply_acceptance, replace_running
from .outages import Outage, draw_outages
from .population import fill_new_units, region_shares, renewal_table, starting_base
from .queue_cache import QueueCache
from .scenario import Scenario
from .scenario.levers import Lever
from .streams import RandomStreams, name_key, seeded_per_tier
from .subscribers import ACTIVE, PROPENSITY_STEP, TierState
from .targeting import ModelScores, best_ranked, noise_for_auc, top_scored
from .uplift import (
    LineFigures,
    acceptance_shift,
    keyed_errors,
    model_scores,
    shifted_acceptance,
    true_uplift,
)
from .valuation import monthly_discount, value_of_a_line_kept

COMPLAINT_MONTHS = 3
"""Complaints count in the hazard for this many months."""
SATISFACTION_RECOVERY = 0.10
"""Share of the gap to the tier's usual satisfaction that closes each month without new incidents."""
AUC_SAMPLE = 100_000
AUC_MINIMUM = 20_000
"""Units of a tier the churn model's noise is solved on, at least (small tiers are drawn several times over)."""
OUTAGE_FULL_EFFECT_HOURS = 24.0
"""An outage of a day or more lowers the month's perceived quality by the region's full drop."""
MONTH_EPSILON = 0.001
"""Within month m, the hotline serves calls at m - 2e and billing runs at m - e (in months)."""
CALENDAR, OUTAGES = "calendar", "outages"
"""The run's simpy processes: the month's steps, and each region's outages."""
COMPACT_SHARE = 0.15
"""A tier drops its churned units' rows once they are this share of its rows: every monthly pass
costs per row, and compacting costs about as much as a dozen months of passes over the dropped rows."""


@dataclass
class MonthOutages:
    """What the month's outages did: affected units with their quality drop, and the calls they caused."""

    affected: dict[int, list[np.ndarray]] = field(default_factory=dict)
    drops: dict[int, list[float]] = field(default_factory=dict)
    calls: list[tuple[Outage, dict[int, np.ndarray]]] = field(default_factory=list)
    """Per outage: the calling units per tier."""


class Contact(NamedTuple):
    """One batch of proactive offers of a lever to a tier's units in a month, as a CRM would log it."""

    month: int
    tier: str
    lever: str
    uids: np.ndarray
    """The offered units' uids, best-ranked first (the order the churn model ranked them in)."""
    accepted: np.ndarray
    """Whether each accepted."""
    hazard: np.ndarray
    """Each offered unit's monthly churn hazard at the month's start without any offer (its drivers,
    complaints and own propensity; not the month's outages, which the offer does not foresee)."""
    price: float
    """Our price for the tier that month, relative to the list price (what a line kept is billed at)."""


@dataclass(frozen=True)
class TargetingFigures:
    """Unit by unit, for the units of a tier that may be offered a lever at the start of month 1: what
    each targeting rule ranks on and what an offer brings (money in today's value, per simulated unit)."""

    tier: str
    lever: str
    acceptance: float
    risk_score: np.ndarray
    """The churn model's score (the ``risk`` rule's ranking)."""
    uplift_score: np.ndarray
    """The uplift model's score (the ``uplift`` rule's ranking)."""
    avoided: np.ndarray
    """Churn the offer avoids if accepted, over its months (:func:`sim.uplift.true_uplift` at acceptance 1)."""
    harmed: np.ndarray
    """Churn a declined contact adds (the backfire)."""
    kept_value: np.ndarray
    """What the unit is worth kept (:func:`sim.valuation.value_of_a_line_kept` times its lines)."""
    contact_cost: float
    """Paid for every offer made."""
    acceptance_cost: float
    """Committed by an acceptance: its one-off cost and every month it runs."""
    weight: float
    """Real units per simulated unit (the run's scale)."""
    acceptance_shift: np.ndarray | None = None
    """Where acceptance varies with risk: each unit's shift of the log-odds of accepting (None: alike)."""


@dataclass
class Records:
    """Rows collected during a run; :mod:`sim.results` turns them into tables."""

    tier_months: list[dict[str, float]] = field(default_factory=list)
    market: list[dict[str, float]] = field(default_factory=list)
    contact_center: list[dict[str, float]] = field(default_factory=list)
    outages: list[dict[str, float]] = field(default_factory=list)
    levers: LeverBook = field(default_factory=LeverBook)
    launches: list[dict[str, object]] = field(default_factory=list)
    """Launch costs paid: month, lever, period, spend (real money, whatever the run's scale)."""
    cells: list[dict[str, object]] = field(default_factory=list)
    """Per funded cell: its amount, and the offers made, accepted and money committed (real figures)."""
    leavers_by_region: list[tuple[int, str, np.ndarray, np.ndarray]] = field(default_factory=list)
    """With ``Simulation(regions=True)``: per month and tier, the leaving and the active units (simulated,
    not weighted) by region."""
    contacts: list[Contact] = field(default_factory=list)
    """With ``Simulation(contacts=True)``: every proactive offer batch (:class:`Contact`). A campaign's
    table of who was offered and who accepted, and a period's target list, are read from it: the arrays
    alone cannot say, as a leaver's running offer is cleared and its row compacted."""


@dataclass(frozen=True)
class Calibration:
    """What a run derives from the scenario before simulating: base hazards and the churn model's noise."""

    hazards: dict[str, TierHazard]
    ranking_noise: dict[str, float]
    rest: dict[str, BaseAtRest] = field(default_factory=dict)
    """Per tier drawn at rest (:mod:`sim.base_at_rest`), the joint law of its starting tenures and propensities."""
    joining: dict[str, np.ndarray] = field(default_factory=dict)
    """Per tier, the regions of the lines joining it (:attr:`sim.hazard.Solved.joining`); by default
    the tier's region shares."""
    satisfaction: dict[str, SatisfactionAtRest] = field(default_factory=dict)
    """Per tier, its lines' satisfaction under normal service (outages keep lines below the usual
    level). The starting base is drawn from it, so that month 1 is already normal service."""

    @classmethod
    def quiet(cls, scenario: Scenario, seed: int) -> Calibration:
        """The base hazards solved for a quiet month (no outage, no call: no pilot runs) and a perfect
        churn model: for studies of one mechanism, where normal outages and calls are switched off."""
        from .hazard import calibrate, rests

        solved = calibrate(scenario, seed)
        return cls(solved.hazards, {name: 0.0 for name in scenario.tiers},
                   rests(scenario, solved.hazards, solved.drivers), solved.joining)


PILOT_UNITS = 30_000
"""Deciding units simulated in each calibration pilot run (small tiers keep their floor of units)."""
PILOT_MINIMUM_UNITS = 5_000
"""Units of every tier in a pilot at least: a tier of a hundred accounts is drawn fifty times over."""
PILOT_MONTHS = 18
# A customer table's base is the one observed at the start of its window, not a base at rest: its pilots
# measure the window's months (``population.observation_months``), with no warm-up, so that the tier's
# churn over the window is the table's, its late months included (see
# :func:`sim.customers.calibrate.stated_churn`).
PILOT_WARM_UP = 9
"""Months the first pilot round runs before it measures. A run starts with no complaint and every line
at its tier's usual satisfaction; outages then build complaints (over three months) and a satisfaction
deficit (recovering a tenth a month). Nine months take it most of the way to normal service; the later
rounds start from the satisfaction the first one settled at, and finish the way."""
PILOT_REPLICATIONS = 3
PILOT_MAX_REPLICATIONS = 8
PILOT_PRECISION = 0.03
"""Relative standard error of the pilots' churn the first round aims at: where outages make churn swing
from month to month, it runs more replications (up to :data:`PILOT_MAX_REPLICATIONS`) for every round."""
"""Outages are few and large: their average effect needs many pilot months (replications times
months), not more units."""
PILOT_ROUNDS = 5
"""Pilot rounds at most; they stop once every tier churns within :data:`PILOT_TOLERANCE` of its stated rate."""
PILOT_TOLERANCE = 0.015
"""Relative: a round's own noise (its base moves its population, and the draws with it) is about 1%."""
PILOT_QUEUE_CALLS = 1_000


def reference_conditions(scenario: Scenario, scale: float | None = None) -> Scenario:
    """The conditions the stated churn describes (:mod:`sim.scenario.reference`): every region in its
    normal service, the hotline at its normal staffing all along, list prices, no campaign, no reaction,
    no tariff move, no investment and no retention offer."""
    from .scenario.competition import Competitors
    from .scenario.contact_center import Staffing

    reference = scenario.reference
    regions = {name: region.model_copy(update={key: value for key, value in
                                               reference.regions[name].model_dump().items() if value is not None})
               if name in reference.regions else region for name, region in scenario.network.regions.items()}
    agents = reference.agents if reference.agents is not None else scenario.contact_center.staffing[0].agents
    run = scenario.run if scale is None else scenario.run.model_copy(update={"scale": scale})
    return scenario.model_copy(update={
        "competitors": Competitors(), "pricing": (),
        "network": scenario.network.model_copy(update={"investments": (), "regions": regions}),
        "contact_center": scenario.contact_center.model_copy(update={"staffing": (Staffing(from_month=1, agents=agents),)}),
        "run": run})


FanOut = Callable[[Callable[[Scenario, Calibration, int, int], Any], Scenario, Calibration, int, list[int]], list]
"""Runs ``work(scenario, calibration, seed, r)`` for each replication ``r`` and returns the results in order
(e.g. on worker processes: :func:`optimize.run.parallel.map_replications`)."""


def prepare(scenario: Scenario, seed: int, fan_out: FanOut | None = None) -> Calibration:
    """Calibrate the base hazards and the churn model's ranking noise (the same for every replication).

    A first guess solves each tier's base hazard for a quiet month (no outage, no call), with the tiers
    drawn at rest (:mod:`sim.base_at_rest`). Pilot runs of :func:`reference_conditions` then correct it:
    each round shifts the base by the logit gap between the stated churn and the pilot's mean hazard
    once normal service has settled (after :data:`PILOT_WARM_UP` months), so that normal outages, calls
    and complaints are part of the stated churn rather than added to it, and records the satisfaction
    normal service leaves the lines with (the starting base's). ``fan_out`` runs a round's pilots (on
    worker processes, say); the calibration is the same bytes.
    """
    from .hazard import baseline_view, region_quality, rests, sample_population

    reference = reference_conditions(scenario)
    solved = calibrate(reference, seed)
    hazards, drivers, joining = solved.hazards, solved.drivers, solved.joining
    rest = rests(scenario, hazards, drivers)
    total_units = sum(t.unit_count for t in scenario.tiers.values())
    pilot = reference.model_copy(update={"run": reference.run.model_copy(update={"scale": min(1.0, PILOT_UNITS / total_units)})})
    pilot = pilot.model_copy(update={"run": pilot.run.model_copy(update={"queue_sample_calls": PILOT_QUEUE_CALLS})})
    # The pilot may run past a short horizon: normal service is the same every month.
    table = scenario.population is not None
    measured_months = scenario.population.observation_months if scenario.population else PILOT_MONTHS
    months = (0 if table else PILOT_WARM_UP) + measured_months
    last = scenario.meta.periods[-1]
    periods = (*scenario.meta.periods, last.model_copy(update={"name": f"{last.name}_pilot",
                                                              "months": months - scenario.meta.horizon_months}))
    pilot = pilot.model_copy(update={"meta": pilot.meta.model_copy(update={
        "horizon_months": months,
        "periods": periods if months > scenario.meta.horizon_months else scenario.meta.periods})})
    no_noise = {name: 0.0 for name in scenario.tiers}
    satisfaction: dict[str, SatisfactionAtRest] = {}
    tried: dict[str, list[tuple[float, float]]] = {name: [] for name in scenario.tiers}
    replications = PILOT_REPLICATIONS
    for round_number in range(PILOT_ROUNDS):
        # The first round starts every line at its usual satisfaction and lets normal service settle; the
        # later ones start from the satisfaction it settled at, and wait for complaints only.
        warm_up = 0 if table else PILOT_WARM_UP if round_number == 0 else COMPLAINT_MONTHS

        # The same pilot replications every round (common random numbers), so the rounds converge.
        calibration = Calibration(hazards, no_noise, rest, joining, satisfaction)

        def pilots_of(numbers: list[int], calibration: Calibration = calibration,
                      months: int = warm_up + measured_months) -> list[PilotOutcome]:
            if fan_out is not None and len(numbers) > 1:
                return fan_out(partial(pilot_run, months=months), pilot, calibration, seed, numbers)
            return [pilot_run(pilot, calibration, seed, r, months) for r in numbers]

        pilots = pilots_of(list(range(replications)))
        if round_number == 0:
            wanted = _pilot_replications(pd.concat([p.rows for p in pilots]), warm_up, replications)
            pilots += pilots_of(list(range(replications, wanted)))
            replications = wanted
        rows = pd.concat([p.rows for p in pilots])
        measured = rows[rows["month"] > warm_up].groupby("tier")["expected_churn"].mean()
        # A region's leavers are replaced in that region: at the tier's regional mix, the regions' shares
        # of its leavers under normal service, outages included (each region's churn rate times its share).
        for name, tier in scenario.tiers.items():
            regions = len(scenario.network.regions)
            left, active = np.zeros(regions), np.zeros(regions)
            for outcome in pilots:
                for month, tier_name, leavers, units in outcome.leavers_by_region:
                    if tier_name == name and month > warm_up:
                        left += leavers
                        active += units
            weights = region_shares(scenario, tier) * np.divide(left, active, out=np.zeros(regions), where=active > 0)
            if weights.sum() > 0:
                joining[name] = weights / weights.sum()
        # The pilots' lines at their last month's end: how normal service leaves them, region by region.
        satisfaction = {name: SatisfactionAtRest.of(
            *(np.concatenate([p.at_rest[index][k] for p in pilots]) for k in range(3)),
            len(scenario.network.regions), scenario.tiers[name].satisfaction)
            for index, name in enumerate(scenario.tiers)}
        if all(abs(measured[name] / tier.baseline_churn - 1.0) < PILOT_TOLERANCE for name, tier in scenario.tiers.items()):
            break
        for name, tier in scenario.tiers.items():
            got = _logit(float(np.clip(measured[name], 1e-9, 1 - 1e-9)))
            base = hazards[name].base
            tried[name].append((base, got))
            hazards[name] = hazards[name].with_base(base + (_logit(tier.baseline_churn) - got) / _slope(tried[name]))
            if round_number == 0:
                tried[name].clear()  # the later rounds measure from another start: no secant across
        rest = rests(scenario, hazards, drivers)

    generators = seeded_per_tier(seed, 2**31 - 2)
    scale = min(1.0, AUC_SAMPLE / max(t.unit_count for t in scenario.tiers.values()))
    states = sample_population(scenario, generators, scale, AUC_MINIMUM, rest, satisfaction)
    view, quality = baseline_view(reference), region_quality(reference)
    noise = {}
    for state, name in zip(states, scenario.tiers):
        logits = dense_logit(state, hazards[name], view, 1, quality).astype(np.float64)
        # Accounts deciding at their tender: the model knows the contracts' dates; its accuracy is how it
        # ranks the accounts that decide this month (those locked in a contract rank last whatever it says).
        deciding = logits > IN_CONTRACT_LOCK / 2
        if deciding.any() and not deciding.all():
            logits = logits[deciding]
        # A small customer table's tier is read several times over: the AUC is a property of the ranking,
        # and a handful of units would measure it with too much noise.
        logits = np.resize(logits, max(logits.size, AUC_MINIMUM))
        noise[name] = noise_for_auc(logits, scenario.targeting.model_auc, generators(name))
    return Calibration(hazards, noise, rest, joining, satisfaction)


@dataclass(frozen=True)
class PilotOutcome:
    """What the calibration reads of one pilot run."""

    rows: pd.DataFrame
    """Its tier-months, with a ``replication`` column."""
    leavers_by_region: list[tuple[int, str, np.ndarray, np.ndarray]]
    """Per month and tier: the units leaving and active in each region."""
    at_rest: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    """Per tier (in the scenario's order): its active units' region, propensity and satisfaction at the end."""


PILOT_QUEUES = QueueCache(64 * 2**20)
"""The pilots' queue windows in this process: a round's hotline loads hardly move from the last round's,
so their windows are simulated once and shared (a window's key holds all its outcome depends on)."""


def pilot_run(scenario: Scenario, calibration: Calibration, seed: int, replication: int,
              months: int) -> PilotOutcome:
    """One pilot run of :func:`prepare` (a module function, so that it can run on worker processes)."""
    simulation = Simulation(scenario, Allocation.empty(), calibration, seed, 2**20 + replication,
                            queue_cache=PILOT_QUEUES, minimum_units=PILOT_MINIMUM_UNITS, regions=True)
    rows = pd.DataFrame(simulation.run(months=months).tier_months).assign(replication=replication)
    at_rest = []
    for state in simulation.tiers:
        active = state.active_mask()
        at_rest.append((state.region[: state.size][active], state.propensity[: state.size][active],
                        state.satisfaction[: state.size][active].astype(np.float64)))
    return PilotOutcome(rows, list(simulation.records.leavers_by_region), at_rest)


def _standardizing(state: TierState) -> tuple[float, float]:
    """The mean and inverse standard deviation of a tier's starting propensities (in propensity steps),
    which turn a line's propensity into a standard score (an inverse of 0 where every line is alike)."""
    steps = state.propensity[: state.size].astype(np.float64)
    if steps.size == 0:
        return 0.0, 0.0
    sd = float(steps.std())
    return float(steps.mean()), (1.0 / sd if sd > 1e-9 else 0.0)


def _pilot_replications(rows: pd.DataFrame, warm_up: int, replications: int) -> int:
    """Pilot replications for a relative standard error of every tier's churn of :data:`PILOT_PRECISION`,
    judged on the first round's: the standard error from the means of three-month blocks (months a
    block apart are about independent; consecutive months share their complaints and satisfaction)."""
    measured = rows[rows["month"] > warm_up].assign(block=lambda f: (f["month"] - warm_up - 1) // 3)
    blocks = measured.groupby(["tier", "replication", "block"])["expected_churn"].mean().groupby("tier")
    errors = blocks.std() / np.sqrt(blocks.count()) / blocks.mean()
    error = errors.max()
    if not np.isfinite(error) or error <= PILOT_PRECISION:
        return replications
    return int(min(PILOT_MAX_REPLICATIONS, math.ceil(replications * (error / PILOT_PRECISION) ** 2)))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _slope(tried: list[tuple[float, float]]) -> float:
    """How much a tier's measured churn logit moves per unit of its base hazard, from its last two pilot
    rounds (a secant); 1 before there are two. Where normal service is harsh the lines' hazards spread
    widely and the mean moves by less than the base (the riskiest lines are near certain to leave)."""
    if len(tried) < 2 or abs(tried[-1][0] - tried[-2][0]) < 1e-9:
        return 1.0
    slope = (tried[-1][1] - tried[-2][1]) / (tried[-1][0] - tried[-2][0])
    return float(np.clip(slope, 0.2, 1.5))


class Simulation:
    """One replication of a scenario under one allocation."""

    def __init__(self, scenario: Scenario, allocation: Allocation, calibration: Calibration, seed: int,
                 replication: int = 0, *, outages: bool = True, contact_center: bool = True,
                 competition: bool = True, queue_cache: QueueCache | None = None,
                 minimum_units: int | None = None, regions: bool = False, contacts: bool = False) -> None:
        """``queue_cache`` shares simulated queue windows with other runs of this process (strategies,
        replications): results are the same bytes with or without it (see :mod:`sim.queue_cache`).
        ``minimum_units``: simulate at least this many units of every tier, a small one several times
        over (the calibration's pilots, whose few large accounts would otherwise make them noisy).
        ``regions``: record the leaving and active units by region each month (the pilots).
        ``contacts``: record every proactive offer's units and whether they accepted (a campaign's table)."""
        self.scenario = scenario
        self.count_regions = regions
        self.record_contacts = contacts
        self.calibration = calibration
        self.streams = RandomStreams(seed, replication)
        self.scale = scenario.run.scale
        self.enable_outages = outages
        self.enable_contact_center = contact_center
        self.tiers = starting_base(scenario, self.streams.per_tier("population"), self.scale,
                                   (seed, replication), rest=calibration.rest,
                                   satisfaction=calibration.satisfaction, minimum=minimum_units)
        self.tier_params = list(scenario.tiers.values())
        self.renewal_tables = [renewal_table(tier) for tier in self.tier_params]
        self.joining_regions = [calibration.joining.get(name, region_shares(scenario, tier))
                                for name, tier in scenario.tiers.items()]
        self.table = LeverTable.of(scenario)
        self.durations = np.array([lv.duration_months for lv in self.table.levers], dtype=np.int64)
        # A line's responsiveness is correlated with its propensity standardized over the tier's starting
        # base (in propensity steps): a mean and an inverse sd per tier, fixed for the run.
        self.propensity_law = [_standardizing(state) for state in self.tiers]
        last = scenario.meta.horizon_months + int(self.durations.max()) + 2
        for state in self.tiers:
            state.running = np.zeros((len(self.table.levers), last), dtype=np.int64)
        # Per tier: each lever's monthly cost per deciding unit (0 where it does not reach the tier).
        self.month_costs = {name: np.array([lv.costs(tier).month if lv.reaches(name) else 0.0
                                            for lv in self.table.levers])
                            for name, tier in scenario.tiers.items()}
        self.region_quality = np.array([r.quality for r in scenario.network.regions.values()])
        self.competition = Competition.start(scenario)
        self.first_month_open = False
        """Whether month 1's start has been applied to read :meth:`targeting_figures`."""
        if not competition:
            self.competition.offers.clear()
        self.competition.set_initial_shares(self._our_lines())
        self.budget = Budget(scenario, allocation, {s.name: s.weight for s in self.tiers}, self.streams)
        self.records = Records()
        self.month_outages = MonthOutages()
        self.backfire: dict[int, list[tuple[np.ndarray, float | np.ndarray]]] = {}
        self.initial_units = [state.size for state in self.tiers]
        self.hotline = Hotline(scenario, self.streams, self.tiers, queue_cache)
        # Each region's outages are drawn from one stream month after month: held here, not in the process,
        # so that a run copied at a month's end (:meth:`fork`) goes on drawing where it stood.
        self.outage_draws = [self.streams.child("outages", region) for region in range(len(scenario.network.regions))]
        self.env = simpy.Environment()
        self._processes: dict[simpy.Process, tuple[str, int]] = {}

    # --- helpers -------------------------------------------------------------------------------
    def _our_lines(self) -> float:
        """Our active lines (real, not simulated, numbers)."""
        return float(sum(s.active_lines() * s.weight for s in self.tiers))

    def _unit_uniforms(self, state: TierState, source: str, *key: int | np.ndarray) -> np.ndarray:
        """Keyed uniforms of the units in rows ``key[-1]`` (by uid: the same whatever row a unit is in)."""
        *parts, rows = key
        return self.streams.unit_uniforms(source, state.uid[rows], *parts)

    # --- month start: our moves, competitors, proactive offers -----------------------------------
    def _month_start(self, month: int) -> None:
        for move in self.scenario.pricing:
            if move.month == month:
                self.competition.our_price_move(tuple(move.tiers), month, move.change)
        self.region_quality = np.array([r.quality for r in self.scenario.network.regions.values()])
        for investment in self.scenario.network.investments:
            if investment.month <= month:
                r = list(self.scenario.network.regions).index(investment.region)
                self.region_quality[r] = min(1.0, max(0.0, self.region_quality[r] + investment.quality_gain))
        self.budget.start_month(month)
        for lever, period, cost in self.budget.launches_due(month):
            self.records.launches.append({"month": month, "lever": lever, "period": period, "spend": cost})
        self.month_outages = MonthOutages()
        self._proactive_offers(month)

    def _proactive_offers(self, month: int) -> None:
        policy = self.scenario.budget.contact_policy
        spacing = math.ceil(policy.per_months / policy.max_offers_per_line) if policy.max_offers_per_line else 10**4
        wants: dict[tuple[str, str], int] = {}
        for name in self.scenario.tiers:
            for lever_name, lever in zip(self.table.names, self.table.levers):
                if lever.proactive and lever.reaches(name):
                    due = self.budget.due(name, lever_name)
                    if due > 0:
                        wants[(name, lever_name)] = due
        if not wants:
            return
        granted = self.budget.grant(wants)
        for state, name in zip(self.tiers, self.scenario.tiers):
            # The tier's levers take its best-ranked lines in the order of their effect per offer.
            mine = sorted(((lever_name, lever, granted[(name, lever_name)])
                           for lever_name, lever in zip(self.table.names, self.table.levers)
                           if granted.get((name, lever_name), 0) > 0),
                          key=lambda item: (-item[1].effect_per_offer, item[0]))
            if not mine:
                continue
            view = self.competition.view(name, month)
            coef, by_region = logit_coefficients(self.calibration.hazards[name], view, month, self.region_quality,
                                                 state.lines_per_unit)
            # The month-start logit with the offer each unit is on, blurred by the model's error, row by row
            # as needed. The contact policy: no offer to a unit offered one within the last ``spacing`` months.
            most = max(lever.hazard_reduction for _, lever, _ in mine)
            scores = ModelScores(state, coef, by_region, self.table.log_odds, self.table.cuts, month,
                                 self.calibration.ranking_noise[name], PROPENSITY_STEP, offered_by=month - spacing,
                                 most=most, tie_salt=self.streams.salt("offer_ties", month, state.key))
            policies = [self.scenario.targeting.policy_of(lever) for _, lever, _ in mine]
            if all(policy == "risk" for policy in policies):
                picks = self._assign(scores, mine)
            else:
                picks = self._assign_by_policy(state, name, scores, mine, policies, view, month)
            for (lever_name, lever, _), units in zip(mine, picks):
                self._offer(state, name, lever_name, lever, units, month)

    def _assign_by_policy(self, state: TierState, tier: str, scores: ModelScores,
                          levers: list[tuple[str, Lever, int]], policies: list[str], view: MarketView,
                          month: int) -> list[np.ndarray]:
        """Each lever's units when some lever ranks by uplift or value (:mod:`sim.uplift`): in turn (the
        order of their effect per offer), each lever takes the units it ranks best among those that may
        get it (its offer stronger than the one they are on) and no lever took before it this month."""
        candidates = scores.eligible()
        strength = scores.strength(candidates)
        free = np.ones(candidates.size, dtype=bool)
        logits: np.ndarray | None = None
        picks = []
        for (lever_name, lever, count), policy in zip(levers, policies):
            mine = np.flatnonzero(free & (strength < lever.hazard_reduction))
            rows = candidates[mine]
            if policy == "risk":
                ranking = scores.at(rows)
            else:
                if logits is None:
                    logits = scores.logits(candidates).astype(np.float64)
                ranking = self._uplift_ranking(state, tier, lever_name, lever, rows, logits[mine], policy, view,
                                               month)
                if policy == "value":
                    keep = ranking > 0  # a line worth less than the offer costs is not contacted
                    mine, rows, ranking = mine[keep], rows[keep], ranking[keep]
            if rows.size == 0 or count <= 0:
                picks.append(rows[:0])
                continue
            best = best_ranked(rows, ranking.astype(np.float32), scores.ties(rows), min(count, rows.size), state.size)
            free[np.searchsorted(candidates, best)] = False
            picks.append(best)
        return picks

    def _uplift_ranking(self, state: TierState, tier: str, lever_name: str, lever: Lever, rows: np.ndarray,
                        logits: np.ndarray, policy: str, view: MarketView, month: int) -> np.ndarray:
        """The uplift model's scores of ``rows`` for ``lever`` (``uplift``), or the incremental value they
        imply less the offer's expected cost (``value``)."""
        figures = self._line_figures(state, tier, lever_name, lever, rows, logits, view, month)
        estimate = self._uplift_estimate(state, lever_name, rows, true_uplift(lever, figures))
        if policy == "uplift":
            return estimate
        return estimate * self._kept_value(state, tier, rows, month) - self._offer_cost_today(
            tier, lever_name, month, self._acceptance(state, lever, rows))

    def _line_figures(self, state: TierState, tier: str, lever_name: str, lever: Lever, rows: np.ndarray,
                      logits: np.ndarray, view: MarketView, month: int) -> LineFigures:
        """What an offer of ``lever`` does to each of ``rows``: their log-odds, their own response, and the
        drivers it acts on."""
        weight = (self._line_weights(state, lever, rows) if lever.response is not None and lever.response.spread > 0
                  else np.ones(rows.size))
        push = None
        if lever.acts_on:
            drivers, network = self._driver_inputs(state, self.calibration.hazards[tier], view)
            mask = int(self.table.driver_masks[self.table.number(lever_name)])
            push = kernels.driver_push_rows(rows.astype(np.int64, copy=False), mask, month, drivers, network,
                                            state.satisfaction, state.region, state.contract_end, state.complaints,
                                            state.propensity)
        accepts = self._acceptance(state, lever, rows)
        return LineFigures(logits, weight, push, None if np.isscalar(accepts) else np.asarray(accepts))

    def _uplift_estimate(self, state: TierState, lever_name: str, rows: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """The uplift model's scores: the true uplift blurred by each unit's persistent error."""
        errors = keyed_errors(rows, state.uid, self.streams.salt("uplift_model", state.key, name_key(lever_name)))
        return model_scores(truth, self.scenario.targeting.uplift_correlation, errors)

    def _kept_value(self, state: TierState, tier: str, rows: np.ndarray, month: int) -> np.ndarray:
        """Today's value of each of ``rows`` kept at ``month``'s decision, as every table values it."""
        tier_params = self.scenario.tiers[tier]
        lines = np.ones(rows.size) if state.lines is None else state.lines[rows].astype(np.float64)
        per_line = line_margin(tier_params.arpu, self.competition.our_price[tier], 1.0, tier_params.margin)
        return lines * value_of_a_line_kept(self.scenario, tier, month, per_line)

    def _offer_cost_today(self, tier: str, lever_name: str, month: int,
                          acceptance: float | np.ndarray | None = None) -> float | np.ndarray:
        """An offer's expected cost, paid at ``month``, in today's money (at each line's own acceptance
        rate where it varies)."""
        costs = self.budget.costs[(tier, lever_name)]
        per_offer = costs.per_offer if acceptance is None or np.isscalar(acceptance) else \
            costs.contact + acceptance * costs.accepted
        return per_offer * monthly_discount(self.scenario) ** month

    def targeting_figures(self, tier: str, lever_name: str) -> TargetingFigures:
        """Unit by unit, for every unit of ``tier`` that may be offered ``lever_name`` at the start of month 1
        of a simulation not yet run: what each targeting rule ranks on and what an offer would bring. The
        figures the profit of each rule by depth of contact is drawn from (:mod:`optimize.run.targeting_rules`)."""
        if self.env.now != 0:
            raise RuntimeError("targeting figures are read before the first month is simulated")
        if not self.first_month_open:
            self._month_start(1)
            self.first_month_open = True
        month = 1
        state, lever = self.tiers[list(self.scenario.tiers).index(tier)], self.table.levers[self.table.number(lever_name)]
        view = self.competition.view(tier, month)
        coef, by_region = logit_coefficients(self.calibration.hazards[tier], view, month, self.region_quality,
                                             state.lines_per_unit)
        scores = ModelScores(state, coef, by_region, self.table.log_odds, self.table.cuts, month,
                             self.calibration.ranking_noise[tier], PROPENSITY_STEP, offered_by=month,
                             most=lever.hazard_reduction, tie_salt=self.streams.salt("offer_ties", month, state.key))
        rows = scores.eligible()
        logits = scores.logits(rows).astype(np.float64)
        figures = self._line_figures(state, tier, lever_name, lever, rows, logits, view, month)
        truth = true_uplift(lever, figures)
        # Uplift is linear in the acceptance rate: what an acceptance avoids, and what a decline harms.
        alike = dataclasses.replace(figures, acceptance=None)
        avoided = true_uplift(lever.model_copy(update={"acceptance": 1.0}), alike)
        harmed = -true_uplift(lever.model_copy(update={"acceptance": 0.0}), alike)
        costs = self.budget.costs[(tier, lever_name)]
        today = monthly_discount(self.scenario) ** month
        return TargetingFigures(
            tier=tier, lever=lever_name, acceptance=lever.acceptance,
            acceptance_shift=None if figures.acceptance is None else acceptance_shift(lever, self._risk_z(state, rows)),
            risk_score=scores.at(rows).astype(np.float64), uplift_score=self._uplift_estimate(state, lever_name, rows, truth),
            avoided=avoided, harmed=harmed, kept_value=self._kept_value(state, tier, rows, month),
            contact_cost=costs.contact * today, acceptance_cost=costs.accepted * today, weight=float(state.weight))

    @staticmethod
    def _assign(scores: ModelScores, levers: list[tuple[str, Lever, int]]) -> list[np.ndarray]:
        """Each lever's units, best-ranked first: in turn, each lever takes the best-ranked units whose
        running offer (if any) is weaker than it, up to its count."""
        wanted = sum(count for _, _, count in levers)
        request = wanted
        while True:
            ranked = top_scored(scores, request)
            strength = scores.strength(ranked)
            taken = np.zeros(ranked.size, dtype=bool)
            picks, short = [], False
            for _, lever, count in levers:
                free = np.flatnonzero(~taken & (strength < lever.hazard_reduction))[:count]
                taken[free] = True
                picks.append(ranked[free])
                short |= free.size < count
            # Units skipped by a lever (they are on an offer as strong) may leave it short: rank more.
            if not short or ranked.size < request or request >= scores.size:
                return picks
            request = min(scores.size, 2 * request)

    def _offer(self, state: TierState, tier: str, lever_name: str, lever: Lever, units: np.ndarray,
               month: int) -> None:
        """Offer ``lever`` to ``units``: who accepts, what it costs now and commits, and backfire of declines."""
        if units.size == 0:
            return
        costs = self.budget.costs[(tier, lever_name)]
        # One keyed draw per unit and month: a unit offered some lever in a month decides alike in every run.
        accepted = self._unit_uniforms(state, "offers", month, state.key, units) < self._acceptance(state, lever, units)
        kept = units[accepted]
        replace_running(state, kept, month, False, self.table, self.month_costs[tier], self.durations, self.budget)
        apply_acceptance(state, kept, self.table.number(lever_name), lever, month, save=False)
        state.last_offer[units] = month
        if self.record_contacts:
            self.records.contacts.append(Contact(month, tier, lever_name, state.uid[units].copy(), accepted.copy(),
                                                 self._hazard_without_offers(state, tier, month, units),
                                                 float(self.competition.our_price[tier])))
        paid = units.size * costs.contact + kept.size * costs.acceptance
        self.budget.made(tier, lever_name, units.size, kept.size,
                         paid + kept.size * costs.month * lever.duration_months)
        self.budget.use(tier, lever_name, units.size)
        w = state.weight
        self.records.levers.add(tier, lever_name, month, paid * w, units.size * w, kept.size * w)
        declined = units[~accepted]
        if lever.backfire and declined.size:
            if lever.response is not None and lever.response.spread > 0:
                # A declined contact multiplies a line's odds by 1 + backfire * w: sleeping dogs (low
                # responsiveness, large w) are pushed out most; a decline never helps.
                shift = np.log1p(lever.backfire * self._line_weights(state, lever, declined)).astype(F32)
                self.backfire.setdefault(state.index, []).append((declined, shift))
            else:
                self.backfire.setdefault(state.index, []).append((declined, log_odds_factor(lever.backfire)))

    def _acceptance(self, state: TierState, lever: Lever, rows: np.ndarray) -> float | np.ndarray:
        """The lever's acceptance rate, or each of ``rows``' own where it varies with risk."""
        if lever.response is None or lever.response.acceptance_by_risk == 0.0:
            return lever.acceptance
        return shifted_acceptance(lever.acceptance, acceptance_shift(lever, self._risk_z(state, rows)))

    def _risk_z(self, state: TierState, rows: np.ndarray) -> np.ndarray:
        """How many standard deviations each of ``rows``' own propensity lies above the tier's mean."""
        mean, inv_sd = self.propensity_law[state.index]
        return (state.propensity[rows].astype(np.float64) - mean) * inv_sd

    def _line_weights(self, state: TierState, lever: Lever, rows: np.ndarray) -> np.ndarray:
        """Each of ``rows``' own w for ``lever`` (see :class:`sim.scenario.levers.Response`)."""
        assert lever.response is not None
        mean, inv_sd = self.propensity_law[state.index]
        return kernels.line_weights(rows.astype(np.int64, copy=False), state.uid, state.propensity,
                                    self.streams.salt("responsiveness", state.key), mean, inv_sd,
                                    lever.response.risk_correlation, lever.response.spread)

    def _driver_inputs(self, state: TierState, hazard: TierHazard, view: MarketView) -> tuple[np.ndarray, np.ndarray]:
        """The drivers' terms an offer acting on named drivers reads (:data:`sim.kernels.DRIVER_TERMS`),
        and the network gap's term per region."""
        drivers = np.array([hazard.price_gap * view.price_gap, hazard.satisfaction,
                            hazard.complaints / state.lines_per_unit, hazard.out_of_contract,
                            hazard.competitor_pressure * view.pressure, PROPENSITY_STEP])
        return drivers, hazard.network_gap * (view.best_quality - self.region_quality)

    def _line_responses(self, state: TierState, hazard: TierHazard, view: MarketView, logit: np.ndarray,
                        month: int) -> None:
        """The running offers' terms that differ from line to line: each line's own responsiveness, and
        what an offer acting on named drivers removes of the odds they add to that line."""
        t = self.table
        mean, inv_sd = self.propensity_law[state.index]
        drivers, network = self._driver_inputs(state, hazard, view)
        kernels.response_terms(logit, state.size, month, state.effect_until, state.effect_lever, t.spreads,
                               t.risk_correlations, t.cuts.astype(np.float64), t.driver_masks, state.uid,
                               state.propensity, self.streams.salt("responsiveness", state.key), mean, inv_sd,
                               drivers, network, state.satisfaction, state.region, state.contract_end,
                               state.complaints)

    def _hazard_without_offers(self, state: TierState, tier: str, month: int, units: np.ndarray) -> np.ndarray:
        """The monthly hazard of ``units`` at the month's start as if no offer ran on them: what an offer
        is measured against (a target list's expected uplift)."""
        no_offer = np.zeros(len(self.table.levers), dtype=F32)
        logit = dense_logit(state, self.calibration.hazards[tier], self.competition.view(tier, month), month,
                            self.region_quality, lever_log_odds=no_offer)
        return probability(logit[units].copy()).astype(np.float64)

    # --- outages ---------------------------------------------------------------------------------
    def _outage_process(self, region: int, first: int = 1) -> simpy.events.ProcessGenerator:
        rng = self.outage_draws[region]
        for month in range(first, self.scenario.meta.horizon_months + 1):
            for outage in draw_outages(self.scenario, region, month, rng):
                # The month's calls are served just before its end; an outage cannot start after that.
                start = min(outage.start, month - 3 * MONTH_EPSILON)
                if start > self.env.now:
                    yield self.env.timeout(start - self.env.now)
                self._outage_hits(outage)
            if month > self.env.now:
                yield self.env.timeout(month - self.env.now)

    def _outage_hits(self, outage: Outage) -> None:
        regions = list(self.scenario.network.regions.values())
        region = regions[outage.region]
        callers: dict[int, np.ndarray] = {}
        affected_total = 0
        outage_key = round(outage.start * 1e9)
        for state, tier in zip(self.tiers, self.tier_params):
            # A keyed draw per unit of the region, so every strategy's run sees the same lines hit.
            hit = kernels.outage_hits(state.region_runs(outage.region), state.status, state.uid,
                                      self.streams.salt("outage_hits", outage_key, state.key), F32(outage.severity))
            kernels.lower_satisfaction(hit, state.satisfaction, F32(region.outage_satisfaction_drop))
            if hit.size == 0:
                continue
            affected_total += state.lines_of(hit) * state.weight
            self.month_outages.affected.setdefault(state.index, []).append(hit)
            # A short outage weighs in the month's perceived quality by its share of a day.
            weight = min(1.0, outage.hours / OUTAGE_FULL_EFFECT_HOURS)
            self.month_outages.drops.setdefault(state.index, []).append(region.outage_quality_drop * weight)
            # Each affected line may call; an account's lines call separately. Keyed by unit (and line):
            # drawn from the outages' own stream, the calls would move every later outage of a
            # strategy whose hits differ, and strategies would no longer share their outages.
            salt = self.streams.salt("outage_call", outage.region, outage_key, state.key)
            if state.lines_per_unit == 1:
                callers[state.index] = kernels.keyed_below(hit, state.uid, salt, region.outage_call_share)
            else:
                calls_per_unit = kernels.keyed_binomial(hit, state.uid, salt, state.lines_per_unit,
                                                        region.outage_call_share)
                callers[state.index] = np.repeat(hit, calls_per_unit)
        self.month_outages.calls.append((outage, callers))
        self.records.outages.append({"month": outage.month, "region": list(self.scenario.network.regions)[outage.region],
                                     "start": outage.start, "hours": outage.hours,
                                     "affected_lines": affected_total})

    # --- contact center ----------------------------------------------------------------------------
    def _serve_calls(self, month: int) -> None:
        self.records.contact_center.append(self.hotline.serve(month, self.month_outages.calls))

    # --- billing and churn ---------------------------------------------------------------------------
    def _billing(self, month: int) -> None:
        """The month's bills and churn decisions, in three steps over the tiers: every tier's hazards and
        draws (and the monthly costs of the offers running); the save desk, whose capacity the tiers
        share; then the leavers' destinations, the records and the month's new lines."""
        competitors = self.scenario.market.competitors
        drawn = []
        for state, tier, name in zip(self.tiers, self.tier_params, self.scenario.tiers):
            hazard = self.calibration.hazards[name]
            view = self.competition.view(name, month)
            # Dense drivers, complaints and running offers in one pass; outages and backfire on their rows.
            logit = dense_logit(state, hazard, view, month, self.region_quality,
                                lever_log_odds=self.table.hazard_log_odds)
            if self.table.varies_by_line:
                self._line_responses(state, hazard, view, logit, month)
            self._sparse_effects(state, hazard, logit, month)
            # One pass over the rows: probabilities, one keyed churn draw per unit, the active units' sums.
            hazards = probability(logit)
            del logit
            leaving, expected, active_units, satisfaction = kernels.churn_draws(
                hazards, state.status, state.satisfaction, state.uid, self.streams.salt("churn", month, state.key))
            # The lines the hazards expect to leave: each account's hazard times its own lines (accounts of
            # different sizes do not leave at the mean hazard in proportion to the lines).
            expected_lines = expected if state.lines is None else float(np.dot(
                hazards.astype(np.float64), state.lines[: hazards.size] * (state.status[: hazards.size] == ACTIVE)))
            del hazards
            self._pay_running_offers(state, name, month)
            drawn.append((leaving, expected, active_units, satisfaction, view, expected_lines))
        saves = self._save_desk(month, [d[0] for d in drawn])
        churners: dict[str, dict[str, float]] = {}
        for state, tier, name, (leaving, expected, active_units, satisfaction, view, expected_lines), saved in zip(
                self.tiers, self.tier_params, self.scenario.tiers, drawn, saves):
            price = self.competition.our_price[name]
            # Each account bills its own lines (the active units before this month's leavers are marked).
            active_lines = active_units if state.lines is None else state.active_lines()
            revenue = active_lines * tier.arpu * price
            margin = active_lines * line_margin(tier.arpu, price, 1.0, tier.margin)
            # The month's satisfaction is read after the save desk, whose offers may raise it.
            satisfaction += float(saved[1])
            if saved[0].size:
                leaving = np.setdiff1d(leaving, saved[0], assume_unique=True)
            # The leavers' running offers stop: the months they will not pay go back to their cells.
            replace_running(state, leaving, month, True, self.table, self.month_costs[name], self.durations,
                            self.budget)
            # The segment's lines leaving the market leave whatever we do: of this month's expected leavers,
            # that many leave the market, the others switch to a rival (retention keeps switchers).
            out = min(1.0, tier.market.leaving * active_units / expected) if expected > 0 else 0.0
            shares = np.append(self.competition.destination_shares(name, month) * (1.0 - out), out)
            # Where each leaver goes is its own keyed draw, so it does not depend on who else leaves.
            draws = self._unit_uniforms(state, "destination", month, state.key, leaving)
            dest = np.minimum(np.searchsorted(np.cumsum(shares), draws, side="right"), len(shares) - 1)
            state.status[leaving] = (dest + 1).astype(np.uint8)
            state.churn_month[leaving] = month
            if self.count_regions:
                regions = len(self.scenario.network.regions)
                self.records.leavers_by_region.append(
                    (month, name, np.bincount(state.region[leaving], minlength=regions),
                     np.bincount(state.region[: state.size], weights=state.status[: state.size] == ACTIVE,
                                 minlength=regions)))
            churned_by = np.bincount(dest, minlength=len(shares))
            # Lines leaving with their accounts, by destination: each account takes its own lines.
            lines_by = churned_by if state.lines is None else np.bincount(dest, weights=state.lines[leaving],
                                                                          minlength=len(shares))
            churners[name] = {k: float(count * state.weight) for k, count in zip(competitors, lines_by)}
            cancelled, added = self._move_account_lines(state, tier, month)
            w = state.weight
            row = {"month": month, "tier": name, "units_start": active_units * w,
                   "lines_start": active_lines * w,
                   "churned_units": leaving.size * w,
                   "churned_lines": (float(lines_by.sum()) + cancelled) * w,
                   "saves": saved[0].size * w, "saved_lines": state.lines_of(saved[0]) * w,
                   "expected_churned_lines": expected_lines * w,
                   "revenue": revenue * w, "margin": margin * w,
                   "expected_churn": expected / active_units if active_units else 0.0,
                   "mean_satisfaction": satisfaction / active_units if active_units else float("nan"),
                   "price_gap": view.price_gap, "competitor_pressure": view.pressure}
            for k, count in zip(competitors, lines_by):
                row[f"churned_to_{k}"] = float(count) * w
            # Lines an account cancels leave the market (the staff leave); the lines it adds join from it.
            row["churned_out_of_market"] = (float(lines_by[-1]) + cancelled) * w
            # Every tier's row has the columns (0 for a consumer tier), so tables have no holes.
            staying = active_lines - float(lines_by.sum()) if tier.kind == "enterprise" else 0.0
            row.update({"lines_cancelled": cancelled * w, "lines_added": added * w,
                        "lines_cancelled_expected": staying * tier.partial_churn * w,
                        "lines_added_expected": staying * tier.line_growth_rate * w})
            self.records.tier_months.append(row)
        self._competitor_flows(month, churners)
        self._age(month)
        if month == self.scenario.meta.horizon_months:
            self._book_beyond_horizon(month)
        for state in self.tiers:
            churned_rows = state.size - state.active_units()
            if churned_rows > COMPACT_SHARE * state.size:
                state.compact()

    def _move_account_lines(self, state: TierState, tier, month: int) -> tuple[float, float]:
        """Lines the staying accounts cancel and add this month (simulated, not weighted): between its
        renewals an account keeps its contract but not all its lines (:func:`sim.accounts.move_lines`)."""
        loss, gain = tier.partial_churn, tier.line_growth_rate
        if state.lines is None or (loss <= 0 and gain <= 0):
            return 0.0, 0.0
        lost, added = move_lines(state.size, state.status, state.uid, state.lines,
                                 self.streams.salt("partial_churn", month, state.key), loss,
                                 self.streams.salt("line_growth", month, state.key), gain)
        return float(lost.sum()), float(added.sum())

    def _pay_running_offers(self, state: TierState, tier: str, month: int) -> None:
        """This month's monthly costs of the offers running on active lines (a save's from the month after)."""
        costs = self.month_costs[tier]
        if not costs.any() or state.running is None:
            return
        units = state.running[:, month:].sum(axis=1)
        for number in np.flatnonzero((units > 0) & (costs > 0)):
            self.records.levers.add(tier, self.table.names[number], month,
                                    float(units[number] * costs[number]) * state.weight)

    def _book_beyond_horizon(self, month: int) -> None:
        """Monthly costs that offers running at the horizon have committed for the months after it."""
        for state, tier in zip(self.tiers, self.scenario.tiers):
            costs = self.month_costs[tier]
            if not costs.any() or state.running is None:
                continue
            months_after = np.maximum(np.arange(state.running.shape[1]) - month, 0)
            owed = (state.running * months_after).sum(axis=1) * costs
            for number in np.flatnonzero(owed > 0):
                self.records.levers.add(tier, self.table.names[number], month, float(owed[number]) * state.weight)

    def _sparse_effects(self, state: TierState, hazard: TierHazard, logit: np.ndarray, month: int) -> None:
        """The month's outages and offers' backfire, on the rows they concern."""
        for units, drop in zip(self.month_outages.affected.get(state.index, []),
                               self.month_outages.drops.get(state.index, [])):
            kernels.add_to_rows(logit, units, F32(hazard.network_gap * drop))
        for units, shift in self.backfire.pop(state.index, []):
            logit[units] += shift if isinstance(shift, np.ndarray) else F32(shift)

    def _save_desk(self, month: int, leaving: list[np.ndarray]) -> list[tuple[np.ndarray, float]]:
        """Per tier: the units asking to leave that accept a save-desk offer (they stay), and the
        satisfaction they gained. The tiers share the desk's capacity (:meth:`Budget.grant`); within a
        tier, its save-desk levers take the callers in the order of :attr:`Lever.save_priority`."""
        reach = self.scenario.targeting.save_desk_reach
        nothing = [(rows[:0], 0.0) for rows in leaving]
        if reach <= 0:
            return nothing
        callers: dict[str, np.ndarray] = {}
        desks: dict[str, list[tuple[str, Lever]]] = {}
        wants: dict[tuple[str, str], int] = {}
        for state, name, rows in zip(self.tiers, self.scenario.tiers, leaving):
            desk = sorted(((lever_name, lever) for lever_name, lever in zip(self.table.names, self.table.levers)
                           if lever.save_desk and lever.reaches(name) and self.budget.funded(name, lever_name)),
                          key=lambda item: (tuple(-x for x in item[1].save_priority), item[0]))
            if not desk or rows.size == 0:
                continue
            draws = self._unit_uniforms(state, "save_desk", month, state.key, rows)
            reached = draws < reach
            # The desk takes callers in the order they call, at random: not by row, which groups by region.
            callers[name] = rows[reached][np.argsort(draws[reached], kind="stable")]
            desks[name] = desk
            for lever_name, _ in desk:
                wants[(name, lever_name)] = min(self.budget.due(name, lever_name), callers[name].size)
        if not callers:
            return nothing
        granted = self.budget.grant(wants)
        out = []
        for state, name, rows in zip(self.tiers, self.scenario.tiers, leaving):
            queue = callers.get(name)
            if queue is None:
                out.append((rows[:0], 0.0))
                continue
            saved, gained = [], 0.0
            for lever_name, lever in desks[name]:
                taken = queue[: granted.get((name, lever_name), 0)]
                if taken.size == 0:
                    continue
                costs = self.budget.costs[(name, lever_name)]
                accepted = (self._unit_uniforms(state, "save_desk", month, state.key, 1, taken)
                            < self._acceptance(state, lever, taken))
                kept = taken[accepted]
                # A save replaces whatever offer ran: the customer asked to leave despite it.
                replace_running(state, kept, month, True, self.table, self.month_costs[name], self.durations,
                                self.budget)
                before = state.satisfaction[kept].astype(np.float64).sum()
                apply_acceptance(state, kept, self.table.number(lever_name), lever, month, save=True)
                gained += float(state.satisfaction[kept].astype(np.float64).sum() - before)
                state.last_offer[taken] = month
                paid = taken.size * costs.contact + kept.size * costs.acceptance
                self.budget.made(name, lever_name, taken.size, kept.size,
                                 paid + kept.size * costs.month * lever.duration_months)
                self.budget.use(name, lever_name, taken.size)
                w = state.weight
                self.records.levers.add(name, lever_name, month, paid * w, taken.size * w, kept.size * w)
                saved.append(kept)
                queue = queue[taken.size:]
            out.append((np.concatenate(saved) if saved else rows[:0], gained))
        return out

    def _add_units(self, state: TierState, tier, count: int, month: int, rng: np.random.Generator) -> int:
        """Add ``count`` units joining in ``month``; returns their lines (simulated)."""
        if count <= 0:
            return 0
        state.ensure_room(count)
        rows = slice(state.size, state.size + count)
        fill_new_units(state, tier, rows, month, self.joining_regions[state.index], rng, at_start=False)
        state.size += count
        return count if state.lines is None else int(state.lines[rows].sum())

    def _competitor_flows(self, month: int, our_churners: dict[str, dict[str, float]]) -> None:
        """Each tier's segment of the market: its new lines (ours among them, the plan's gross adds),
        rivals losing their leavers and switchers (some to us) and gaining ours. The lines we gain join
        that tier (whole accounts in enterprise tiers). Market shares are recorded."""
        us = self.scenario.market.us
        money = {k: [0.0, 0.0] for k in self.scenario.market.operators}
        for state, tier, name, row in zip(self.tiers, self.tier_params, self.scenario.tiers,
                                          self.records.tier_months[-len(self.tiers):]):
            self.competition.observe(name, row["lines_start"], row["expected_churn"])
            money[us][0] += row["revenue"]
            money[us][1] += row["margin"]
            for k, (revenue, margin) in self.competition.margins(name, month).items():
                money[k][0] += revenue
                money[k][1] += margin
            new, ours = self.competition.new_lines(name, month, row["lines_start"])
            won_lines = self.competition.flows(name, month, our_churners[name], ours, new)
            for lines, column, key in ((ours, "gross_adds_market", ()), (won_lines, "gross_adds_won", (1,))):
                joined = 0
                if lines > 0:
                    rng = self.streams.child("acquisition", month, state.key, *key)
                    # Accounts of the tier's mean size on average; each joins with its own size.
                    units = int(rng.poisson(lines / tier.lines_per_unit / state.weight))
                    joined = self._add_units(state, tier, units, month + 1, rng)
                row[f"{column}_lines"] = joined * state.weight
                row[f"{column}_expected"] = lines
            # Lines added to our accounts join from the market: gross adds of lines, not of accounts.
            row["gross_adds_market_lines"] += row.get("lines_added", 0.0)
            row["gross_adds_market_expected"] += row.get("lines_added_expected", 0.0)
        ours = self._our_lines()
        lines = self.competition.lines
        total = ours + sum(lines.values())
        self.records.market.append({"month": month, "operator": us, "lines": ours,
                                    "share": ours / total if total else 0.0,
                                    "revenue": money[us][0], "margin": money[us][1]})
        for k, count in lines.items():
            self.records.market.append({"month": month, "operator": k, "lines": count,
                                        "share": count / total if total else 0.0,
                                        "revenue": money[k][0], "margin": money[k][1]})
        self.competition.watch_shares(ours, month)

    def _age(self, month: int) -> None:
        """Complaints older than three months stop counting; satisfaction recovers part of the way;
        out-of-contract lines re-sign; life events renew some lines' own propensity (``risk_renewal``).

        Lines re-sign at the rate that keeps the tier's contract share steady
        (:func:`sim.base_at_rest.contract_renewal_rate`). Each unit's renewal is its own keyed draw, so
        it does not depend on who else is out of contract.
        """
        for state, tier in zip(self.tiers, self.tier_params):
            expired = [u for m, u in state.complaint_log if m <= month - COMPLAINT_MONTHS + 1]
            state.complaint_log = [(m, u) for m, u in state.complaint_log if m > month - COMPLAINT_MONTHS + 1]
            for units in expired:
                np.subtract.at(state.complaints, units, 1)
            term = tier.contract.term_months
            rate = contract_renewal_rate(tier)
            renew = rate > 0
            kernels.age_rows(state.size, state.satisfaction, F32(tier.satisfaction), F32(SATISFACTION_RECOVERY),
                             state.status, state.contract_end, state.uid,
                             self.streams.salt("renewal", month, state.key), month, F32(rate), term, renew,
                             state.propensity, self.streams.salt("life_events", month, state.key),
                             F32(tier.risk_renewal), self.renewal_tables[state.index])

    # --- the simpy processes ---------------------------------------------------------------------
    def _calendar(self, first: int = 1) -> simpy.events.ProcessGenerator:
        for month in range(first, self.scenario.meta.horizon_months + 1):
            self._month_start(month)
            yield self.env.timeout(month - 2 * MONTH_EPSILON - self.env.now)
            if self.enable_contact_center:
                self._serve_calls(month)
            yield self.env.timeout(MONTH_EPSILON)
            self._billing(month)
            yield self.env.timeout(month - self.env.now)

    def _start(self, processes: list[tuple[str, int]], first: int) -> None:
        """The run's simpy processes (the calendar, each region's outages) from month ``first``, started in
        the order listed."""
        for kind, region in processes:
            made = self._calendar(first) if kind == CALENDAR else self._outage_process(region, first)
            self._processes[self.env.process(made)] = (kind, region)

    def run(self, months: int | None = None) -> Records:
        """Simulate the horizon (or up to the end of month ``months``) and return the records; a run stopped
        early goes on from where it stopped when run again."""
        if not self._processes:
            regions = range(len(self.scenario.network.regions)) if self.enable_outages else range(0)
            self._start([(CALENDAR, 0), *((OUTAGES, region) for region in regions)], 1)
        until = months or self.scenario.meta.horizon_months
        if until > self.env.now:
            self.env.run(until=until)
        weights = self.budget.weights
        self.records.cells = [
            {"tier": t, "lever": lv, "period": p, "amount": pace_amount,
             "offers": offers * weights[t], "accepted": accepted * weights[t], "committed": committed * weights[t]}
            for ((t, lv, p), (offers, accepted, committed)), pace_amount in
            zip(self.budget.ledger.items(), self.budget.amounts)]
        return self.records

    def fork(self, allocation: Allocation) -> Simulation:
        """This run as it stands at the end of a month (stopped by :meth:`run` with ``months``), going on
        under ``allocation``: the same bytes as a run of ``allocation`` from the start, when the two
        allocations fund the same cells with the same amounts in every period begun so far (nothing of a
        period's cells acts before the period begins; :meth:`Budget.going_on` checks the cells).

        Runs of one replication that differ only from a later period on (the curve measurement's and the
        closed loop's designs) then simulate their shared months once. The copy holds its own arrays and
        streams, at the state they had; the scenario, calibration and queue-outcome cache are shared, as
        the runs of a process share them anyway. Raises ``ValueError`` if the run is not at a month's end.
        """
        order = self._pending()
        shared = (self.scenario, self.calibration, self.hotline.cache)
        # The processes and their environment cannot be copied (generators): the copy starts its own.
        memo: dict[int, object] = {id(item): item for item in shared}
        memo[id(self.env)] = None
        memo[id(self._processes)] = {}
        memo[id(self.budget)] = None  # replaced below
        twin = copy.deepcopy(self, memo)
        twin.budget = self.budget.going_on(allocation, twin.streams)
        twin.env = simpy.Environment(initial_time=self.env.now)
        twin._start(order, int(self.env.now) + 1)
        return twin

    def _pending(self) -> list[tuple[str, int]]:
        """The live processes in the order they resume at the end of the month the run stopped at: each
        waits for that instant, so a copy that starts them in this order goes on exactly as this run would."""
        now = self.env.now
        # simpy's queue holds (time, priority, event id, event): the order events at one time are processed.
        pending = sorted(self.env._queue)  # simpy has no public view of the order of simultaneous events
        order = [self._processes[callback.__self__] for _, _, _, event in pending
                 for callback in (event.callbacks or []) if getattr(callback, "__self__", None) in self._processes]
        live = [process for process in self._processes if process.is_alive]
        if now != int(now) or now < 1 or any(entry[0] != now for entry in pending) or len(order) != len(live):
            raise ValueError(f"a run can be copied only at a month's end, with every process waiting for it "
                             f"(it stands at {now})")
        return order
