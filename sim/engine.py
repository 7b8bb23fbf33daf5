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

import math
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
import simpy

from . import kernels
from .allocation import Allocation
from .competition import Competition
from .hazard import F32, TierHazard, calibrate, dense_logit, log_odds_factor, logit_coefficients, probability
from .offers import Budget, LeverBook, affordable, apply_acceptance, make_offers, offer_costs
from .outages import Outage, draw_outages
from .population import PROPENSITY_STEP, TierState, build_population, fill_new_units, region_shares
from .hotline import Hotline
from .queue_cache import QueueCache
from .scenario import Scenario
from .streams import RandomStreams
from .targeting import ModelScores, noise_for_auc, top_scored

COMPLAINT_MONTHS = 3
"""Complaints count in the hazard for this many months."""
SATISFACTION_RECOVERY = 0.10
"""Share of the gap to the tier's usual satisfaction that closes each month without new incidents."""
AUC_SAMPLE = 100_000
OUTAGE_FULL_EFFECT_HOURS = 24.0
"""An outage of a day or more lowers the month's perceived quality by the region's full drop."""
MONTH_EPSILON = 0.001
"""Within month m, the hotline serves calls at m - 2e and billing runs at m - e (in months)."""
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


@dataclass
class Records:
    """Rows collected during a run; :mod:`sim.results` turns them into tables."""

    tier_months: list[dict[str, float]] = field(default_factory=list)
    market: list[dict[str, float]] = field(default_factory=list)
    contact_center: list[dict[str, float]] = field(default_factory=list)
    outages: list[dict[str, float]] = field(default_factory=list)
    levers: LeverBook = field(default_factory=LeverBook)


@dataclass(frozen=True)
class Calibration:
    """What a run derives from the scenario before simulating: base hazards and the churn model's noise."""

    hazards: dict[str, TierHazard]
    ranking_noise: dict[str, float]


PILOT_UNITS = 50_000
"""Deciding units simulated in each calibration pilot run (small tiers keep their floor of units)."""
PILOT_MONTHS = 6
PILOT_REPLICATIONS = 8
"""Outages are few and large: their average effect needs several pilot replications, not more units."""
PILOT_ROUNDS = 3
PILOT_QUEUE_CALLS = 1_000


def baseline_conditions(scenario: Scenario, scale: float | None = None) -> Scenario:
    """The scenario's normal service (outages, calls, staffing) at list prices, with no campaign,
    no reaction, no tariff move, no investment and no retention offer: what the stated churn describes."""
    from .scenario.competition import Competitors

    run = scenario.run if scale is None else scenario.run.model_copy(update={"scale": scale})
    return scenario.model_copy(update={
        "competitors": Competitors(), "pricing": (),
        "network": scenario.network.model_copy(update={"investments": ()}), "run": run})


def prepare(scenario: Scenario, seed: int) -> Calibration:
    """Calibrate the base hazards and the churn model's ranking noise (the same for every replication).

    A first guess solves each tier's base hazard for a quiet month (no outage, no call). Pilot runs
    of :func:`baseline_conditions` then correct it: each round shifts the base by the logit gap between
    the stated churn and the pilot's mean hazard over its first months, so that normal outages, calls
    and complaints are part of the stated churn rather than added to it.
    """
    from .hazard import baseline_view, region_quality

    hazards = calibrate(scenario, seed)
    total_units = sum(t.unit_count for t in scenario.tiers.values())
    pilot = baseline_conditions(scenario, min(1.0, PILOT_UNITS / total_units))
    pilot = pilot.model_copy(update={"run": pilot.run.model_copy(update={"queue_sample_calls": PILOT_QUEUE_CALLS})})
    months = min(PILOT_MONTHS, scenario.meta.horizon_months)
    no_noise = {name: 0.0 for name in scenario.tiers}
    # The rounds' hotline loads hardly move: their queue windows are simulated once and shared.
    queues = QueueCache()
    for _ in range(PILOT_ROUNDS):
        # The same pilot replications every round (common random numbers), so the rounds converge.
        rows = pd.concat([pd.DataFrame(Simulation(pilot, Allocation.empty(), Calibration(hazards, no_noise), seed,
                                                  2**20 + r, queue_cache=queues).run(months=months).tier_months)
                          for r in range(PILOT_REPLICATIONS)])
        measured = rows.groupby("tier")["expected_churn"].mean()
        for name, tier in scenario.tiers.items():
            got = float(np.clip(measured[name], 1e-9, 1 - 1e-9))
            shift = math.log(tier.baseline_churn / (1 - tier.baseline_churn)) - math.log(got / (1 - got))
            hazards[name] = hazards[name].with_base(hazards[name].base + shift)

    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(2**31 - 2,)))
    states = build_population(scenario, rng, min(1.0, AUC_SAMPLE / max(t.unit_count for t in scenario.tiers.values())))
    view, quality = baseline_view(scenario), region_quality(scenario)
    noise = {}
    for state, name in zip(states, scenario.tiers):
        logits = dense_logit(state, hazards[name], view, 1, quality).astype(np.float64)
        noise[name] = noise_for_auc(logits, scenario.targeting.model_auc, rng) if logits.size > 50 else 0.0
    return Calibration(hazards, noise)


class Simulation:
    """One replication of a scenario under one allocation."""

    def __init__(self, scenario: Scenario, allocation: Allocation, calibration: Calibration, seed: int,
                 replication: int = 0, *, outages: bool = True, contact_center: bool = True,
                 competition: bool = True, queue_cache: QueueCache | None = None) -> None:
        """``queue_cache`` shares simulated queue windows with other runs of this process (strategies,
        replications): results are the same bytes with or without it (see :mod:`sim.queue_cache`)."""
        self.scenario = scenario
        self.calibration = calibration
        self.streams = RandomStreams(seed, replication)
        self.scale = scenario.run.scale
        self.enable_outages = outages
        self.enable_contact_center = contact_center
        self.tiers = build_population(scenario, self.streams["population"], self.scale)
        self.tier_params = list(scenario.tiers.values())
        self.lever_names = list(scenario.levers)
        self.levers = list(scenario.levers.values())
        self.lever_log_odds = np.array([math.log(max(1e-9, 1.0 - lv.hazard_reduction)) for lv in self.levers], F32)
        self.region_quality = np.array([r.quality for r in scenario.network.regions.values()])
        self.competition = Competition.start(scenario)
        if not competition:
            self.competition.offers.clear()
        self.competition.set_initial_shares(self._our_lines())
        self.budget = Budget.from_allocation(scenario, allocation, {s.name: s.weight for s in self.tiers})
        self.records = Records()
        self.month_outages = MonthOutages()
        self.backfire: dict[int, list[tuple[np.ndarray, float]]] = {}
        self.initial_units = [state.size for state in self.tiers]
        self.hotline = Hotline(scenario, self.streams, self.tiers, queue_cache)
        self.env = simpy.Environment()

    # --- helpers -------------------------------------------------------------------------------
    def _our_lines(self) -> float:
        """Our active lines (real, not simulated, numbers)."""
        return float(sum(s.active_units() * s.lines_per_unit * s.weight for s in self.tiers))

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
        self.budget.start_month()
        self.month_outages = MonthOutages()
        self._proactive_offers(month)

    def _proactive_offers(self, month: int) -> None:
        policy = self.scenario.budget.contact_policy
        spacing = math.ceil(policy.per_months / policy.max_offers_per_line) if policy.max_offers_per_line else 10**4
        for state, tier, name in zip(self.tiers, self.tier_params, self.scenario.tiers):
            funded = [(i, lv) for i, lv in enumerate(self.levers)
                      if lv.mode != "save_desk" and self.budget.allowance(name, self.lever_names[i], month) > 0]
            if not funded:
                continue
            view = self.competition.view(name, month)
            # Rank once for all the tier's levers: each lever takes the next best units in turn.
            wanted = sum(self._offers_wanted(state, name, i, lever, month) for i, lever in funded)
            if wanted <= 0:  # each lever recounts below, after the levers before it used shared capacity
                continue
            coef, by_region = logit_coefficients(self.calibration.hazards[name], view, month, self.region_quality,
                                                 state.lines_per_unit)
            # The month-start logit (dense drivers only) blurred by the model's error, row by row as needed.
            # The contact policy: no offer to a unit offered one within the last ``spacing`` months.
            scores = ModelScores(state, coef, by_region, month, self.calibration.ranking_noise[name], PROPENSITY_STEP,
                                 offered_by=month - spacing,
                                 tie_salt=self.streams.salt("offer_ties", month, state.index))
            ranked = top_scored(scores, wanted)
            taken = 0
            for i, lever in funded:
                count = min(self._offers_wanted(state, name, i, lever, month), ranked.size - taken)
                if count <= 0:
                    continue
                lever_name = self.lever_names[i]
                draws = partial(self._unit_uniforms, state, "offers", month, state.index, i)
                result = make_offers(state, i, lever, lever_name, ranked[taken: taken + count],
                                     self.budget.allowance(name, lever_name, month),
                                     self.budget.cell_left(name, lever_name, month),
                                     self.budget.offer_limit(name, lever_name, month), month, draws)
                taken += result.offered.size
                self.budget.charge(name, lever_name, month, result.spend, result.offered.size)
                self.records.levers.add(name, lever_name, month, result.spend * state.weight,
                                        result.offered.size * state.weight, int(result.accepted.sum()) * state.weight)
                declined = result.offered[~result.accepted]
                if lever.backfire and declined.size:
                    self.backfire.setdefault(state.index, []).append((declined, log_odds_factor(lever.backfire)))

    def _unit_uniforms(self, state: TierState, source: str, *key: int | np.ndarray) -> np.ndarray:
        """Keyed uniforms of the units in rows ``key[-1]`` (by uid: the same whatever row a unit is in)."""
        *parts, rows = key
        return self.streams.unit_uniforms(source, state.uid[rows], *parts)

    def _offers_wanted(self, state: TierState, tier: str, lever_index: int, lever, month: int) -> int:
        """Offers of a lever this month: what its cell's monthly allowance buys, within the capacities left."""
        lever_name = self.lever_names[lever_index]
        money = self.budget.allowance(tier, lever_name, month)
        limit = self.budget.offer_limit(tier, lever_name, month)
        cost = lever.cost_per_contact + lever.acceptance * (
            lever.cost_per_acceptance + lever.cost_per_line_month * lever.duration_months * state.lines_per_unit)
        return max(0, min(limit, int(money / cost) if cost > 0 else limit))

    # --- outages ---------------------------------------------------------------------------------
    def _outage_process(self, region: int) -> simpy.events.ProcessGenerator:
        rng = self.streams.child("outages", region)
        for month in range(1, self.scenario.meta.horizon_months + 1):
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
                                      self.streams.salt("outage_hits", outage_key, state.index), F32(outage.severity))
            kernels.lower_satisfaction(hit, state.satisfaction, F32(region.outage_satisfaction_drop))
            if hit.size == 0:
                continue
            affected_total += hit.size * state.lines_per_unit * state.weight
            self.month_outages.affected.setdefault(state.index, []).append(hit)
            # A short outage weighs in the month's perceived quality by its share of a day.
            weight = min(1.0, outage.hours / OUTAGE_FULL_EFFECT_HOURS)
            self.month_outages.drops.setdefault(state.index, []).append(region.outage_quality_drop * weight)
            # Each affected line may call; an account's lines call separately. Keyed by unit (and line):
            # drawn from the outages' own stream, the calls would move every later outage of a
            # strategy whose hits differ, and strategies would no longer share their outages.
            salt = self.streams.salt("outage_call", outage.region, outage_key, state.index)
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
        dest_rng = self.streams["destination"]
        competitors = self.scenario.market.competitors
        lines_to: dict[str, float] = {k: 0.0 for k in competitors}
        for state, tier, name in zip(self.tiers, self.tier_params, self.scenario.tiers):
            hazard = self.calibration.hazards[name]
            view = self.competition.view(name, month)
            # Dense drivers, complaints and running offers in one pass; outages and backfire on their rows.
            logit = dense_logit(state, hazard, view, month, self.region_quality,
                                lever_log_odds=self.lever_log_odds)
            self._sparse_effects(state, hazard, logit, month)
            # One pass over the rows: probabilities, one keyed churn draw per unit, the active units' sums.
            leaving, expected, active_units, satisfaction = kernels.churn_draws(
                probability(logit), state.status, state.satisfaction, state.uid,
                self.streams.salt("churn", month, state.index))
            del logit
            price = self.competition.our_price[name]
            revenue = active_units * state.lines_per_unit * tier.arpu * price
            margin = active_units * state.lines_per_unit * tier.arpu * (price - (1.0 - tier.margin))
            asking = state.satisfaction[leaving].astype(np.float64).sum()
            saves = self._save_desk(state, name, leaving, month)
            # The month's satisfaction is read after the save desk, whose offers may raise it.
            satisfaction += state.satisfaction[leaving].astype(np.float64).sum() - asking
            if saves.size:
                leaving = np.setdiff1d(leaving, saves, assume_unique=True)
            shares = self.competition.destination_shares(name, month)
            dest = dest_rng.choice(len(competitors), size=leaving.size, p=shares) if leaving.size else leaving
            state.status[leaving] = (dest + 1).astype(np.uint8)
            state.churn_month[leaving] = month
            churned_by = np.bincount(dest, minlength=len(competitors)) if leaving.size else np.zeros(len(competitors), int)
            for k, count in zip(competitors, churned_by):
                lines_to[k] += count * state.lines_per_unit * state.weight
            adds = self._gross_adds_from_market(state, tier, month)
            w = state.weight
            row = {"month": month, "tier": name, "units_start": active_units * w,
                   "lines_start": active_units * state.lines_per_unit * w,
                   "churned_units": leaving.size * w,
                   "churned_lines": leaving.size * state.lines_per_unit * w,
                   "saves": saves.size * w, "gross_adds_market_lines": adds * state.lines_per_unit * w,
                   "revenue": revenue * w, "margin": margin * w,
                   "expected_churn": expected / active_units if active_units else 0.0,
                   "mean_satisfaction": satisfaction / active_units if active_units else float("nan"),
                   "price_gap": view.price_gap, "competitor_pressure": view.pressure}
            for k, count in zip(competitors, churned_by):
                row[f"churned_to_{k}"] = count * state.lines_per_unit * w
            self.records.tier_months.append(row)
        self._competitor_flows(month, lines_to)
        self._age(month)
        for state in self.tiers:
            churned_rows = state.size - state.active_units()
            if churned_rows > COMPACT_SHARE * state.size:
                state.compact()

    def _sparse_effects(self, state: TierState, hazard: TierHazard, logit: np.ndarray, month: int) -> None:
        """The month's outages and offers' backfire, on the rows they concern."""
        for units, drop in zip(self.month_outages.affected.get(state.index, []),
                               self.month_outages.drops.get(state.index, [])):
            kernels.add_to_rows(logit, units, F32(hazard.network_gap * drop))
        for units, shift in self.backfire.pop(state.index, []):
            logit[units] += F32(shift)

    def _save_desk(self, state: TierState, name: str, leaving: np.ndarray, month: int) -> np.ndarray:
        """Units asking to leave that accept a save-desk offer (they stay)."""
        reach = self.scenario.targeting.save_desk_reach
        desk = [(i, lv) for i, lv in enumerate(self.levers) if lv.mode != "proactive"
                and (not lv.tiers or name in lv.tiers) and self.budget.cell_left(name, self.lever_names[i], month) > 0]
        if not desk or leaving.size == 0 or reach <= 0:
            return leaving[:0]
        draws = self._unit_uniforms(state, "save_desk", month, state.index, leaving)
        reached = draws < reach
        # The desk takes callers in the order they call, at random: not by row, which groups by region.
        callers = leaving[reached][np.argsort(draws[reached], kind="stable")]
        saved = []
        for i, lever in desk:
            if callers.size == 0:
                break
            lever_name = self.lever_names[i]
            # This lever takes as many callers as its capacity allows; the ones it does not serve move on
            # to the next lever.
            taken = callers[: self.budget.offer_limit(name, lever_name, month)]
            if taken.size == 0:
                continue
            accepted = self._unit_uniforms(state, "save_desk", month, state.index, i + 1, taken) < lever.acceptance
            costs = offer_costs(lever, accepted, state.lines_per_unit)
            paid = affordable(costs, self.budget.cell_left(name, lever_name, month))
            offered, accepted, costs = taken[:paid], accepted[:paid], costs[:paid]
            kept = offered[accepted]
            apply_acceptance(state, kept, i, lever, month)
            state.last_offer[offered] = month
            self.budget.charge(name, lever_name, month, float(costs.sum()), offered.size)
            self.records.levers.add(name, lever_name, month, float(costs.sum()) * state.weight,
                                    offered.size * state.weight, kept.size * state.weight)
            saved.append(kept)
            callers = callers[paid:]
        return np.concatenate(saved) if saved else leaving[:0]

    def _gross_adds_from_market(self, state: TierState, tier, month: int) -> int:
        if tier.gross_add_rate <= 0:
            return 0
        rng = self.streams.child("acquisition", month, state.index)
        adds = int(rng.poisson(tier.gross_add_rate * self.initial_units[state.index]))
        self._add_units(state, tier, adds, month + 1, rng)
        return adds

    def _add_units(self, state: TierState, tier, count: int, month: int, rng: np.random.Generator) -> None:
        if count <= 0:
            return
        state.ensure_room(count)
        rows = slice(state.size, state.size + count)
        fill_new_units(state, tier, rows, month, region_shares(self.scenario, tier), rng, at_start=False)
        state.size += count
        if state.account_of_line is not None:
            state.account_of_line = np.concatenate(
                [state.account_of_line, np.repeat(np.arange(rows.start, rows.stop, dtype=np.int32), state.lines_per_unit)])

    def _competitor_flows(self, month: int, our_churn_lines: dict[str, float]) -> None:
        """Competitors lose their own churners (some to us) and gain ours; record market shares."""
        rng = self.streams.child("acquisition", month, 10_000)
        us = self.scenario.market.us
        our_price = float(np.mean(list(self.competition.our_price.values())))
        won_lines = 0.0
        moves: dict[str, float] = {k: 0.0 for k in self.competition.lines}
        for k, lines in self.competition.lines.items():
            churners = rng.binomial(int(lines), self.scenario.market.operators[k].monthly_churn) if lines >= 1 else 0
            shares = self.competition.switching_shares(k, our_price, month)
            moves[k] -= churners
            for dest, share in shares.items():
                flow = churners * share
                if dest == us:
                    won_lines += flow
                else:
                    moves[dest] += flow
        for k in moves:
            self.competition.lines[k] = max(0.0, self.competition.lines[k] + moves[k] + our_churn_lines.get(k, 0.0))
        # Lines won from competitors join our tiers by their win-back weight (accounts: whole accounts).
        weights = np.array([t.win_back_share * t.line_count for t in self.tier_params], dtype=float)
        if weights.sum() > 0 and won_lines > 0:
            for state, tier, w in zip(self.tiers, self.tier_params, weights / weights.sum()):
                tier_rng = self.streams.child("acquisition", month, state.index, 1)
                units = int(tier_rng.poisson(won_lines * w / state.lines_per_unit / state.weight))
                self._add_units(state, tier, units, month + 1, tier_rng)
                self.records.tier_months[-len(self.tiers) + state.index]["gross_adds_won_lines"] = (
                    units * state.lines_per_unit * state.weight)
        ours = self._our_lines()
        total = ours + sum(self.competition.lines.values())
        self.records.market.append({"month": month, "operator": us, "lines": ours,
                                    "share": ours / total if total else 0.0})
        for k, lines in self.competition.lines.items():
            self.records.market.append({"month": month, "operator": k, "lines": lines,
                                        "share": lines / total if total else 0.0})
        self.competition.watch_shares(ours, month)

    def _age(self, month: int) -> None:
        """Complaints older than three months stop counting; satisfaction recovers part of the way;
        out-of-contract lines re-sign.

        Lines re-sign at the rate that keeps the tier's contract share steady: in steady state the flow
        into contract, rate * (1 - share), equals the flow out, share / term. Each unit's renewal is its
        own keyed draw, so it does not depend on who else is out of contract.
        """
        for state, tier in zip(self.tiers, self.tier_params):
            expired = [u for m, u in state.complaint_log if m <= month - COMPLAINT_MONTHS + 1]
            state.complaint_log = [(m, u) for m, u in state.complaint_log if m > month - COMPLAINT_MONTHS + 1]
            for units in expired:
                np.subtract.at(state.complaints, units, 1)
            share, term = tier.contract.share, tier.contract.term_months
            renew = 0 < share < 1
            rate = min(1.0, share / (term * (1.0 - share))) if renew else 0.0
            kernels.age_rows(state.size, state.satisfaction, F32(tier.satisfaction), F32(SATISFACTION_RECOVERY),
                             state.status, state.contract_end, state.uid,
                             self.streams.salt("renewal", month, state.index), month, F32(rate), term, renew)

    # --- the simpy processes ---------------------------------------------------------------------
    def _calendar(self) -> simpy.events.ProcessGenerator:
        for month in range(1, self.scenario.meta.horizon_months + 1):
            self._month_start(month)
            yield self.env.timeout(month - 2 * MONTH_EPSILON - self.env.now)
            if self.enable_contact_center:
                self._serve_calls(month)
            yield self.env.timeout(MONTH_EPSILON)
            self._billing(month)
            yield self.env.timeout(month - self.env.now)

    def run(self, months: int | None = None) -> Records:
        """Simulate the horizon (or its first ``months``) and return the records."""
        self.env.process(self._calendar())
        if self.enable_outages:
            for region in range(len(self.scenario.network.regions)):
                self.env.process(self._outage_process(region))
        self.env.run(until=months or self.scenario.meta.horizon_months)
        return self.records
