"""Reference model: one simpy process per subscriber, the same monthly churn logic in plain Python.

It is what the vectorized simulator replaces. Every deciding unit (a consumer line, or an
enterprise account with all its lines) is its own simpy process. Once a month, at billing,
it computes its own logit hazard from the same drivers and the same calibrated coefficients
(:class:`sim.hazard.TierHazard` from :func:`sim.engine.prepare`) and the same market view
(:meth:`sim.competition.Competition.view` for its tier and month)::

    logit = base + price_gap * view.price_gap
                 + network_gap * (view.best_quality - our quality in its region)
                 + satisfaction * (1 - its satisfaction)
                 + out_of_contract * [its contract has ended by this month]
                 + in_contract lock * [its contract runs] (an account deciding at its renewal only)
                 + tenure_per_month * min(month - its join month, loyalty months)
                 + competitor_pressure * view.pressure
                 + its own propensity (log-odds; the engine's ``propensity`` in ``PROPENSITY_STEP`` steps)

then draws a uniform (Python's ``random``) and churns when it falls below the logistic of
the logit, choosing its new operator by the tier's destination shares. A unit that stays
recovers part of the way to its tier's usual satisfaction and, out of contract, re-signs
at the engine's steady-state rate. A market process per month moves our network quality
(investments), refreshes the tiers' market views, runs each tier's slice of the market (the
competitors' churners there, the share that comes to us: :meth:`Competition.flows`), and starts
one new subscriber process per gross add and per won-back unit, as the engine does.

A parity check (:func:`month_one_logits` against :func:`sim.hazard.dense_logit`) confirms, unit by
unit, that this hazard is the engine's: if the engine gains a driver the reference lacks, the check
fails before any churn is compared.

Not modelled (the vectorized engine's other event sources): outages, the hotline and its
complaints, proactive and save-desk retention offers, backfire. Compare it with the engine
run with ``outages=False, contact_center=False`` and an empty allocation: that run's hazard
is exactly the one above.

The starting base is the engine's own draw (:func:`sim.population.build_population` on the
replication's population stream), handed to the processes as Python numbers, so both models
start from the same subscribers and differ only in their churn, re-signing and acquisition
draws.
"""

from __future__ import annotations

import math
import random
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np
import simpy

from sim.base_at_rest import contract_renewal_rate
from sim.competition import Competition
from sim.engine import SATISFACTION_RECOVERY, Calibration
from sim.population import build_population, region_shares
from sim.scenario import Scenario
from sim.streams import RandomStreams
from sim.subscribers import ACTIVE, PROPENSITY_STEP

BILLING = 0.002
"""Subscribers decide this long (in months) before the month ends; the market settles after them."""
SETTLE = 0.001


@dataclass
class ReferenceRun:
    """Monthly rows per tier and the wall-clock seconds of the run."""

    rows: list[dict[str, float]] = field(default_factory=list)
    setup_seconds: float = 0.0
    run_seconds: float = 0.0
    processes_started: int = 0
    simpy_events: int = 0


class ReferenceMarket:
    """The subscriber base as one simpy process per unit."""

    def __init__(self, scenario: Scenario, calibration: Calibration, seed: int, replication: int = 0,
                 probe: bool = False) -> None:
        self.scenario = scenario
        self.env = simpy.Environment()
        self.random = random.Random(seed * 1_000_003 + replication)
        self.market_rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(replication, 77_777)))
        self.horizon = scenario.meta.horizon_months
        self.tier_names = list(scenario.tiers)
        self.tiers = list(scenario.tiers.values())
        self.competitors = list(scenario.market.competitors)
        self.competition = Competition.start(scenario)
        self.base_quality = [r.quality for r in scenario.network.regions.values()]
        self.region_names = list(scenario.network.regions)
        self.quality = list(self.base_quality)
        # Per tier: the calibrated coefficients, as plain floats.
        self.coefficients = []
        for name in self.tier_names:
            h = calibration.hazards[name]
            self.coefficients.append((float(h.base), float(h.price_gap), float(h.network_gap), float(h.satisfaction),
                                      float(h.out_of_contract), float(h.tenure_per_month), int(h.loyalty_months),
                                      float(h.competitor_pressure), float(h.in_contract)))
        self.views = [None] * len(self.tiers)
        self.destinations: list[np.ndarray] = [np.ones(1)] * len(self.tiers)
        self.region_cum = [list(accumulate(calibration.joining.get(name, region_shares(scenario, tier)).tolist()))
                           for name, tier in scenario.tiers.items()]
        self.lines_per_unit = [round(t.lines_per_unit) for t in self.tiers]
        self.renew = []
        for tier in self.tiers:
            self.renew.append(contract_renewal_rate(tier))
        # This month's tallies, reset by the market process.
        self.units_start = [0] * len(self.tiers)
        self.churned = [0] * len(self.tiers)
        self.expected = [0.0] * len(self.tiers)
        self.active_units = [0] * len(self.tiers)
        self.initial_units = [0] * len(self.tiers)
        self.result = ReferenceRun()
        self.probe: list[tuple[int, int, float]] | None = [] if probe else None
        """With ``probe``: (tier, row, logit) of every starting unit in month 1, for the parity check."""
        self._population_streams = RandomStreams(seed, replication).per_tier("population")
        self.rest = calibration.rest
        self.satisfaction = calibration.satisfaction

    # --- one subscriber ------------------------------------------------------------------------
    def subscriber(self, t: int, region: int, join: int, contract_end: int, satisfaction: float, propensity: float,
                   first_month: int, ended_month: int | None = None, row: int = -1):
        """One deciding unit of tier ``t``; ``ended_month``: a new unit ages once in the month it joined."""
        env = self.env
        probe = self.probe
        draw = self.random.random
        base, c_price, c_network, c_satisfaction, c_out, c_tenure, loyalty, c_pressure, c_lock = self.coefficients[t]
        usual = float(np.float32(self.tiers[t].satisfaction))
        renew = self.renew[t]
        term = self.tiers[t].contract.term_months
        life_events = float(self.tiers[t].risk_renewal)
        if ended_month is not None and renew and contract_end <= ended_month and draw() < renew:
            contract_end = ended_month + term
        for month in range(first_month, self.horizon + 1):
            yield env.timeout(month - BILLING - env.now)
            view = self.views[t]
            logit = (base + c_price * view.price_gap
                     + c_network * (view.best_quality - self.quality[region])
                     + c_satisfaction * (1.0 - satisfaction)
                     + (c_out if contract_end <= month else c_lock)
                     + c_tenure * min(month - join, loyalty)
                     + c_pressure * view.pressure
                     + propensity)
            if probe is not None and month == 1:
                probe.append((t, row, logit))
            self.units_start[t] += 1
            hazard = 1.0 / (1.0 + math.exp(-logit))
            self.expected[t] += hazard
            if draw() < hazard:
                self.churned[t] += 1
                self.active_units[t] -= 1
                return
            satisfaction += (usual - satisfaction) * SATISFACTION_RECOVERY
            if renew and contract_end <= month and draw() < renew:
                contract_end = month + term
            # A life event: the unit's own propensity drawn afresh, as the engine does (in whole steps).
            if life_events and draw() < life_events:
                propensity = self._propensity(t)

    def _propensity(self, t: int) -> float:
        """The engine's propensity: normal with the tier's spread, stored in whole steps within +-127."""
        spread = float(self.tiers[t].risk_spread)
        if not spread:
            return 0.0
        return max(-127, min(127, round(self.random.gauss(0.0, spread) / PROPENSITY_STEP))) * PROPENSITY_STEP

    def _join(self, t: int, count: int, month: int) -> None:
        """``count`` new units join tier ``t`` at the end of ``month`` (tenure from month + 1)."""
        tier = self.tiers[t]
        draw = self.random.random
        cum = self.region_cum[t]
        last = len(cum) - 1
        for _ in range(count):
            region = min(bisect_right(cum, draw() * cum[-1]), last)
            under = draw() < tier.contract.share
            end = month + tier.contract.term_months if under else month
            propensity = self._propensity(t)
            self.env.process(self.subscriber(t, region, month + 1, end, float(np.float32(tier.satisfaction)),
                                             propensity, month + 1, ended_month=month))
            self.active_units[t] += 1
            self.result.processes_started += 1

    # --- the market ------------------------------------------------------------------------------
    def _our_lines(self) -> float:
        return float(sum(n * lpu for n, lpu in zip(self.active_units, self.lines_per_unit)))

    def market(self):
        env, scenario, comp = self.env, self.scenario, self.competition
        for month in range(1, self.horizon + 1):
            if month - 1 > env.now:
                yield env.timeout(month - 1 - env.now)
            # Month start: our network investments, then what each tier sees of the market.
            self.quality = list(self.base_quality)
            for inv in scenario.network.investments:
                if inv.month <= month:
                    r = self.region_names.index(inv.region)
                    self.quality[r] = min(1.0, max(0.0, self.quality[r] + inv.quality_gain))
            for t, name in enumerate(self.tier_names):
                self.views[t] = comp.view(name, month)
                self.destinations[t] = comp.destination_shares(name, month)
            yield env.timeout(month - SETTLE - env.now)
            # After billing: where the month's churners go (the segment's leavers out of the market, the
            # others to a rival), then each tier's segment: our new lines and the lines won.
            churners = []
            for t, name in enumerate(self.tier_names):
                lpu = self.lines_per_unit[t]
                units = self.units_start[t]
                out = min(1.0, self.tiers[t].market.leaving * units / self.expected[t]) if self.expected[t] > 0 else 0.0
                shares = np.append(self.destinations[t] * (1.0 - out), out)
                counts = self.market_rng.multinomial(self.churned[t], shares / shares.sum())
                churners.append({k: float(count * lpu) for k, count in zip(self.competitors, counts)})
                self.result.rows.append({"month": month, "tier": name, "units_start": units,
                                         "lines_start": units * lpu,
                                         "churned_units": self.churned[t], "churned_lines": self.churned[t] * lpu})
                self.units_start[t] = 0
                self.churned[t] = 0
                self.expected[t] = 0.0
            for t, name in enumerate(self.tier_names):
                lpu = self.lines_per_unit[t]
                new, ours = comp.new_lines(name, month, self.result.rows[-len(self.tier_names) + t]["lines_start"])
                won = comp.flows(name, month, churners[t], ours, new)
                for lines in (ours, won):
                    if lines > 0:
                        self._join(t, int(self.market_rng.poisson(lines / lpu)), month)
            comp.watch_shares(self._our_lines(), month)

    # --- a run -----------------------------------------------------------------------------------
    def run(self, until: int | None = None) -> ReferenceRun:
        """Run the horizon (or its first ``until`` months)."""
        started = time.perf_counter()
        states = build_population(self.scenario, self._population_streams, 1.0, rest=self.rest,
                                  satisfaction=self.satisfaction)
        for t, state in enumerate(states):
            n = state.size
            alive = state.status[:n] == ACTIVE
            rows = np.flatnonzero(alive)
            stored = getattr(state, "propensity", None)
            propensity = ((stored[:n][alive].astype(np.float64) * PROPENSITY_STEP).tolist()
                          if stored is not None and PROPENSITY_STEP else [0.0] * rows.size)
            for row, region, join, end, sat, prop in zip(rows.tolist(), state.region[:n][alive].tolist(),
                                                         state.join_month[:n][alive].tolist(),
                                                         state.contract_end[:n][alive].tolist(),
                                                         state.satisfaction[:n][alive].tolist(), propensity):
                self.env.process(self.subscriber(t, region, join, end, sat, prop, 1, row=row))
            self.initial_units[t] = int(alive.sum())
            self.active_units[t] = int(alive.sum())
            self.result.processes_started += int(alive.sum())
        self.competition.set_initial_shares(self._our_lines())
        self.env.process(self.market())
        self.result.setup_seconds = time.perf_counter() - started
        started = time.perf_counter()
        self.env.run(until=until or self.horizon)
        self.result.run_seconds = time.perf_counter() - started
        return self.result


def month_one_logits(scenario: Scenario, calibration: Calibration, seed: int, replication: int = 0) -> dict:
    """Parity of the hazard: each starting unit's month-1 logit from the reference against the engine's.

    The engine's logit is :func:`sim.hazard.dense_logit` on the same starting base with the same market
    view (in the churn-only run nothing else enters month 1's hazard). Returns the largest absolute gap
    per tier (the engine computes in float32, the reference in float64: gaps of 1e-5 are rounding).
    """
    from sim.hazard import dense_logit

    market = ReferenceMarket(scenario, calibration, seed, replication, probe=True)
    market.run(until=1)
    by_tier: dict[int, dict[int, float]] = {}
    for t, row, logit in market.probe or []:
        by_tier.setdefault(t, {})[row] = logit
    states = build_population(scenario, RandomStreams(seed, replication).per_tier("population"), 1.0,
                              rest=calibration.rest, satisfaction=calibration.satisfaction)
    competition = Competition.start(scenario)
    quality = np.array([r.quality for r in scenario.network.regions.values()])
    for inv in scenario.network.investments:
        if inv.month <= 1:
            r = list(scenario.network.regions).index(inv.region)
            quality[r] = min(1.0, max(0.0, quality[r] + inv.quality_gain))
    gaps = {}
    for t, (state, name) in enumerate(zip(states, scenario.tiers)):
        engine = dense_logit(state, calibration.hazards[name], competition.view(name, 1), 1, quality).astype(np.float64)
        ref = by_tier.get(t, {})
        rows = np.fromiter(ref.keys(), dtype=np.int64, count=len(ref))
        values = np.fromiter(ref.values(), dtype=np.float64, count=len(ref))
        gaps[name] = {"units": int(rows.size), "engine_units": int(state.size),
                      "max_abs_logit_gap": float(np.max(np.abs(engine[rows] - values))) if rows.size else float("nan")}
    return gaps
