"""The contact center's queue: calls served by a simpy ``Resource`` of agents.

Callers arrive, wait for a free agent in order of arrival, and hang up when
their patience runs out first. This is a true discrete-event queue (M/M/c+M when
handling and patience are exponential); without abandonment its long-run waits
match the Erlang C formula, which the tests check.

At operator scale a month brings hundreds of thousands of calls. The queue is
then simulated for a window of the month at the month's true arrival rate and
staffing (the queue behaves the same in any window of the same load), and each
real call takes the outcome of a simulated call of the same load: sampling with
weights, whose error is the window's sampling error (reported as the standard
error of the mean wait, by batch means).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import simpy


@dataclass(frozen=True)
class QueueOutcome:
    """What each simulated call met."""

    waits: np.ndarray
    """Minutes waited (until answered, or until hanging up)."""
    abandoned: np.ndarray
    """True for callers who hung up before an agent answered."""

    @property
    def calls(self) -> int:
        return int(self.waits.size)

    def mean_wait_se(self, batches: int = 20) -> float:
        """Standard error of the mean wait by batch means (calls in arrival order)."""
        if self.waits.size < 2 * batches:
            return float("nan")
        means = np.array([b.mean() for b in np.array_split(self.waits, batches)])
        return float(means.std(ddof=1) / math.sqrt(batches))


def simulate_queue(arrivals_per_minute: float, agents: int, handling_minutes: float,
                   patience_minutes: float | None, minutes: float, rng: np.random.Generator,
                   warmup_minutes: float = 0.0, max_calls: int | None = None,
                   warmup_arrivals_per_minute: float | None = None) -> QueueOutcome:
    """Run the queue with Poisson arrivals for ``warmup + minutes``; return the calls after the warm-up.

    Handling and patience times are exponential. Calls arriving during the warm-up (at
    ``warmup_arrivals_per_minute``, by default the same rate) bring the queue to the state it is in
    when the window opens, and are not reported.
    """
    warmup_rate = arrivals_per_minute if warmup_arrivals_per_minute is None else warmup_arrivals_per_minute
    if agents <= 0 or arrivals_per_minute <= 0 or minutes <= 0:
        n = int(rng.poisson(arrivals_per_minute * minutes)) if arrivals_per_minute > 0 and minutes > 0 else 0
        # No agent: every caller waits until they give up (or for the whole window).
        waits = rng.exponential(patience_minutes, n) if patience_minutes else np.full(n, minutes)
        return QueueOutcome(waits.astype(np.float64), np.ones(n, dtype=bool))
    early = int(rng.poisson(warmup_rate * warmup_minutes)) if warmup_rate > 0 else 0
    late = int(rng.poisson(arrivals_per_minute * minutes))
    if max_calls is not None:
        late = min(late, max_calls)
    # Arrival times: uniform order statistics within each phase (a Poisson process given its count).
    arrival_times = np.concatenate([np.sort(rng.random(early)) * warmup_minutes,
                                    warmup_minutes + np.sort(rng.random(late)) * minutes])
    count = early + late
    service = rng.exponential(handling_minutes, count)
    patience = rng.exponential(patience_minutes, count) if patience_minutes else None
    waits, abandoned = serve_in_order(arrival_times, service, patience, agents)
    return QueueOutcome(waits[early:], abandoned[early:])


def serve_in_order(arrival_times: np.ndarray, service: np.ndarray, patience: np.ndarray | None,
                   agents: int) -> tuple[np.ndarray, np.ndarray]:
    """Serve calls first come, first served by ``agents`` (a simpy ``Resource``); return (waits, abandoned).

    ``arrival_times`` are sorted minutes; a caller whose wait would exceed their patience hangs up.
    """
    count = arrival_times.size
    gaps = np.diff(arrival_times, prepend=0.0)

    env = simpy.Environment()
    desk = simpy.Resource(env, capacity=agents)
    waits = np.zeros(count)
    abandoned = np.zeros(count, dtype=bool)

    def call(i: int) -> simpy.events.ProcessGenerator:
        arrived = env.now
        with desk.request() as request:
            yield request
            waited = env.now - arrived
            if patience is not None and waited > patience[i]:
                # The caller hung up at arrived + patience. In a first-come-first-served queue a caller
                # who gave up delays nobody, so they keep their place and leave the moment an agent
                # would take them, holding the agent for no time: the same waits for everyone else,
                # without a timer per call.
                waits[i] = patience[i]
                abandoned[i] = True
                return
            waits[i] = waited
            yield env.timeout(service[i])

    def source() -> simpy.events.ProcessGenerator:
        for i in range(count):
            yield env.timeout(gaps[i])
            env.process(call(i))

    env.process(source())
    env.run()
    return waits, abandoned


def erlang_c(arrivals_per_minute: float, agents: int, handling_minutes: float) -> tuple[float, float]:
    """Erlang C: (probability a caller waits, mean wait in minutes) for M/M/c without abandonment."""
    load = arrivals_per_minute * handling_minutes
    if load >= agents:
        return 1.0, math.inf
    # Erlang B by its stable recursion, then C from B.
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    rho = load / agents
    c = b / (1.0 - rho + rho * b)
    return c, c * handling_minutes / (agents - load)
