"""The contact center month by month: who calls, how the queue treats them, what it does to them.

Each month lines call at their tier's base rate (Poisson calls per line), and lines an
outage affected call about it during the outage and the hour after. The calls are served
by the simpy queue of :mod:`sim.queue`: for the month's normal load, and for each outage
burst at its own load, starting from the state normal load leaves the hotline in. When a
month brings more calls than ``run.queue_sample_calls``, the queue is simulated for a
window of that load and every real call takes the outcome of a simulated call of the
same load (sampling with weights; the window's sampling error of the mean wait is
reported). A caller's wait, hanging up and escalated complaint lower their satisfaction;
complaints count in the churn hazard for three months.
"""

from __future__ import annotations

import math

import numpy as np

from . import kernels
from .outages import Outage
from .queue import QueueOutcome, simulate_queue
from .queue_cache import QueueCache
from .scenario import Scenario
from .streams import RandomStreams
from .subscribers import TierState

QUEUE_WARMUP_HANDLING_TIMES = 10.0
QUEUE_WARMUP_PATIENCE_TIMES = 4.0
"""A normal-load window opens in a draw from the queue's long-run state; only a queue with none (patient
callers and a load of at least the agents) warms up before its calls are recorded, from empty."""
WARMUP_SAMPLES = 4
"""A warm-up simulates at most this many times the month's sample of calls: its length is set in minutes
(patience or handling times), and an overloaded hotline open a few minutes a month would otherwise
simulate millions of calls to warm up for a sample of thousands."""
LOAD_STEP = 0.01
"""Normal loads are simulated on a grid of 1% steps (log scale) and shared by months on the same step."""
PRIVATE_CACHE_BYTES = 2 * 2**20
"""A replication without a shared cache reuses only recent normal-load windows (months on the same
load step are neighbours): a few dozen windows are enough, and memory per line stays low."""
MIN_BURST_CALLS = 250
"""An outage burst simulates at least this many calls (its mean wait's sampling error stays below
about a tenth of the wait's spread), more when its share of the month's calls asks for more."""
OUTAGE_CALL_TAIL_HOURS = 1.0
"""Callers about an outage keep calling for this long after it ends."""
MAX_BURST_WINDOWS = 24
"""Outage bursts a month simulated in windows of their own; a month with more shares this many windows
among bursts of neighbouring loads. Each window replays the callers normal load leaves waiting (up to
:data:`sim.scenario.capacity.MAX_WAITING_CALLERS`), so the month's queue work stays bounded whatever the
outage rate (the schema allows 60 outages a month in each of 256 regions). The shipped scenarios' months
bring about 4 bursts, the network crisis's about 8: more than 24 is a chance of about one in a million."""
GROUPED_STREAMS = 1_000_000
"""Streams of grouped burst windows start here, apart from those of single bursts (their outage's place)."""
NO_CALLS = np.zeros(0, dtype=np.uint8)
"""Calls per row when there are none (and, to :func:`sim.kernels.settle_calls`, one call per listed unit)."""
EMPTY_OUTCOME = QueueOutcome(np.zeros(0), np.zeros(0, dtype=bool))
"""Stands for a regime with no simulated call (its calls are not settled)."""


def burst_groups(calls: list[float], minutes: list[float], base_rate: float) -> list[tuple[int, list[int]]]:
    """The month's outage bursts grouped into simulated windows: (the window's stream, its bursts).

    Each burst with calls has a window of its own (stream ``b + 1``) up to :data:`MAX_BURST_WINDOWS`; a
    month with more shares that many windows among bursts of neighbouring loads (streams from
    :data:`GROUPED_STREAMS`), each window at its bursts' time-averaged load.
    """
    live = [b for b, m in enumerate(minutes) if base_rate + calls[b] / m > 0]
    if len(live) <= MAX_BURST_WINDOWS:
        return [(b + 1, [b]) for b in live]
    # By load, then by place in the month: the groups do not depend on how ties fall.
    ordered = sorted(live, key=lambda b: (calls[b] / minutes[b], b))
    return [(GROUPED_STREAMS + g, [ordered[i] for i in part]) for g, part in
            enumerate(np.array_split(np.arange(len(ordered)), MAX_BURST_WINDOWS))]


class Hotline:
    """The contact center of one replication."""

    def __init__(self, scenario: Scenario, streams: RandomStreams, tiers: list[TierState],
                 cache: QueueCache | None = None) -> None:
        self.scenario = scenario
        self.streams = streams
        self.tiers = tiers
        self.tier_params = list(scenario.tiers.values())
        # Without a shared cache, a private one still lets months on the same load step share a window.
        self.cache = cache if cache is not None else QueueCache(PRIVATE_CACHE_BYTES)

    def _window(self, stream: tuple[int, ...], rate: float, agents: int, minutes: float, warmup: float,
                start: tuple[tuple, QueueOutcome] | None = None,
                stationary: bool = False) -> tuple[tuple, QueueOutcome]:
        """One simulated window of the queue, keyed by everything its outcome depends on.

        ``stream`` keys the window's random numbers within the replication; ``start`` is the key and
        outcome of the window whose end state this one opens on.
        """
        cc = self.scenario.contact_center
        key = ("queue", self.streams.seed, self.streams.replication, stream, rate, agents, cc.handling_minutes,
               cc.patience_minutes, minutes, warmup, start[0] if start else None, stationary)
        outcome = self.cache.get(key, lambda: simulate_queue(
            rate, agents, cc.handling_minutes, cc.patience_minutes, minutes, self.streams.child("queue", *stream),
            warmup_minutes=warmup, start=start[1].end if start else None, stationary=stationary))
        return key, outcome

    def _normal_load(self, rate: float, agents: int, open_minutes: float, sample: int,
                     warmup: float) -> tuple[tuple, QueueOutcome]:
        """The queue under the month's normal load, shared by the months with the same load step.

        Loads within 1% of each other share one simulated window, drawn from a stream keyed by the
        load step itself, so the outcome depends on the load and not on which month asked for it first.
        """
        bucket = round(math.log(rate) / LOAD_STEP)
        rate = math.exp(bucket * LOAD_STEP)
        return self._window((bucket + 10_000_000, agents), rate, agents, min(open_minutes, sample / rate),
                            min(warmup, WARMUP_SAMPLES * sample / rate), stationary=True)

    @staticmethod
    def _burst_calls(sample: int, burst_calls: float, month_calls: float) -> int:
        """Simulated calls for an outage burst: its share of the month's sample, at least MIN_BURST_CALLS.

        Stratified sampling with proportional allocation: the month's mean wait is the calls-weighted
        mean of its regimes, so a regime with a share w of the calls and w * sample simulated calls
        adds w * variance / sample to it, and the month's error stays that of ``sample`` calls. The
        share is rounded up to MIN_BURST_CALLS times a power of two, so that strategies whose outages
        bring a few more or fewer calls still share the burst's window.
        """
        wanted = sample * burst_calls / month_calls if month_calls > 0 else 0.0
        return MIN_BURST_CALLS * 2 ** max(0, math.ceil(math.log2(max(wanted, 1.0) / MIN_BURST_CALLS)))

    def call_counts(self, state: TierState, call_rate: float, month: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Each row's calls this month in normal times (0 for churned rows), the calling rows, and the sum.

        Calls per unit are Poisson (an account's lines call separately, so its mean is per line times
        lines), each unit's count from its own keyed draws, so a line's calls do not depend on which
        other lines are still with us nor on the row it sits in.
        """
        mean = call_rate * state.lines_per_unit
        if state.size == 0 or mean <= 0:
            return NO_CALLS, np.zeros(0, dtype=np.int64), 0
        # Up to a mean of 60, even the count's cut-off (four parts of at most 41 calls) fits in a byte.
        counts = np.empty(state.size, dtype=np.uint8 if mean <= 60.0 else np.int32)
        calling = np.empty(state.size, dtype=bool)
        total = kernels.call_counts(counts, calling, state.size, state.status, state.uid,
                                    self.streams.salt("calls", month, state.key), mean)
        return counts, np.flatnonzero(calling), int(total)

    def serve(self, month: int, outage_calls: list[tuple[Outage, dict[int, np.ndarray]]]) -> dict[str, float]:
        """Serve the month's calls (normal ones and those ``outage_calls`` brought); return the month's record."""
        cc = self.scenario.contact_center
        open_minutes = cc.open_hours_per_month * 60.0
        # The queue runs at full scale (queueing has economies of scale); simulated callers sample its outcomes.
        agents = cc.agents_in(month)
        base_calls: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        base_count = 0.0
        for state, tier in zip(self.tiers, self.tier_params):
            counts, callers, total = self.call_counts(state, tier.call_rate, month)
            if total:
                base_calls[state.index] = counts, callers
                base_count += total * state.weight
        outage_calls = [(o, c, sum(a.size * self.tiers[t].weight for t, a in c.items())) for o, c in outage_calls]
        # Outage calls come in during the outage and the hour after it.
        burst_minutes = [min(open_minutes, 60.0 * (o.hours + OUTAGE_CALL_TAIL_HOURS)) for o, _, _ in outage_calls]
        base_rate = base_count / open_minutes
        outage_count = sum(n for _, _, n in outage_calls)
        sample = max(1, self.scenario.run.queue_sample_calls)
        warmup = (QUEUE_WARMUP_PATIENCE_TIMES * cc.patience_minutes if cc.patience_minutes
                  else QUEUE_WARMUP_HANDLING_TIMES * cc.handling_minutes)
        normal = self._normal_load(base_rate, agents, open_minutes, sample, warmup) if base_rate > 0 else None
        base = normal[1] if normal else None
        month_calls = base_count + outage_count
        bursts: list[QueueOutcome | None] = [None] * len(outage_calls)
        windows: list[QueueOutcome] = []
        groups = burst_groups([n for _, _, n in outage_calls], burst_minutes, base_rate)
        for stream, members in groups:
            minutes = sum(burst_minutes[b] for b in members)
            calls = sum(outage_calls[b][2] for b in members)
            # On the load grid too, so that strategies whose outages hit a few more or fewer lines share it.
            bucket = round(math.log(base_rate + calls / minutes) / LOAD_STEP)
            rate = math.exp(bucket * LOAD_STEP)
            window = min(minutes / len(members),
                         self._burst_calls(sample, calls + base_count * minutes / open_minutes, month_calls) / rate)
            # The burst opens on the hotline as the month's normal load leaves it: no warm-up of its own.
            outcome = self._window((month, stream), rate, agents, window, 0.0, normal)[1]
            windows.append(outcome)
            for b in members:
                bursts[b] = outcome
        burst_share = min(1.0, sum(burst_minutes) / open_minutes) if burst_minutes else 0.0

        totals = {"calls": 0.0, "answered_in_target": 0.0, "abandoned": 0.0, "complaints": 0.0, "wait_sum": 0.0}
        target = cc.service_level.answer_within_seconds / 60.0

        impact = cc.satisfaction_impact
        complaint_cut = np.uint64(cc.complaint_share * 2**32)
        abandoned_cut = np.uint64(cc.abandoned_complaint_share * 2**32)

        pooled: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

        def settle(state: TierState, units: np.ndarray, outcomes: list[QueueOutcome | None], regimes: list[int],
                   burst_share: float = 0.0, counts: np.ndarray = NO_CALLS) -> None:
            """Settle ``units``' calls (``counts`` per row, else one each) on the ``outcomes`` of ``regimes``
            (see :func:`sim.kernels.settle_calls`)."""
            if units.size == 0:
                return
            key = tuple(map(id, outcomes))
            if key not in pooled:
                # Every tier settles on the same regimes: their outcomes are laid end to end once a month.
                kept = [o if o is not None else EMPTY_OUTCOME for o in outcomes]
                pooled[key] = (np.cumsum([0] + [o.calls for o in kept]), np.concatenate([o.waits for o in kept]),
                               np.concatenate([o.abandoned for o in kept]))
            offsets, waits, abandoned = pooled[key]
            if offsets[-1] == 0:
                return
            # Keyed by the calling unit: the same caller meets the same fate in every strategy's run.
            salts = np.array([self.streams.salt("call_outcome", month, state.key, r) for r in regimes], np.uint64)
            # An account's satisfaction is its lines' average: one line's bad call moves it by 1/lines.
            complainers, settled, in_target, gone, complaints, wait_sum = kernels.settle_calls(
                units, counts, state.uid, salts, waits, abandoned, offsets,
                self.streams.salt("call_time", month, state.key), burst_share, state.satisfaction,
                state.complaints, complaint_cut, abandoned_cut, impact.per_minute_waited, impact.abandoned,
                impact.complaint, float(state.lines_per_unit), target)
            if complainers.size:
                state.complaint_log.append((month, complainers))
            w = state.weight
            totals["calls"] += settled * w
            totals["answered_in_target"] += in_target * w
            totals["abandoned"] += gone * w
            totals["complaints"] += complaints * w
            totals["wait_sum"] += wait_sum * w

        # Normal calls fall in the outage bursts by the share of the month the bursts last.
        split = burst_share if bursts and burst_share > 0 else 0.0
        # Grouped windows are regimes once each, however many bursts share them.
        grouped = bool(groups) and groups[0][0] >= GROUPED_STREAMS
        regimes = [base] + (windows if grouped else bursts) if split else [base]
        for state in self.tiers:
            counts, callers = base_calls.get(state.index, (NO_CALLS, np.zeros(0, dtype=np.int64)))
            settle(state, callers, regimes, list(range(len(regimes))), split, counts)
            for b, ((outage, callers, _), outcome) in enumerate(zip(outage_calls, bursts)):
                settle(state, callers.get(state.index, np.zeros(0, dtype=np.int64)), [outcome], [b + 1])
        calls = totals["calls"]
        return {
            "month": month, "agents": cc.agents_in(month), "calls": calls,
            "answered_in_target": totals["answered_in_target"],
            "abandoned": totals["abandoned"], "complaints": totals["complaints"],
            "mean_wait_minutes": totals["wait_sum"] / calls if calls else 0.0,
            "service_level": totals["answered_in_target"] / calls if calls else 1.0,
            "abandonment_rate": totals["abandoned"] / calls if calls else 0.0,
            "simulated_calls": (base.calls if base else 0) + sum(w.calls for w in windows),
            "mean_wait_se": base.mean_wait_se() if base else 0.0,
        }
