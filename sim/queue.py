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

A window can open on the state another window ended in (:class:`QueueState`):
an outage burst starts from the hotline as normal load leaves it, without a
warm-up of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import simpy


@dataclass(frozen=True)
class QueueState:
    """The hotline at one moment: what each busy agent still has to do, and who is still waiting."""

    busy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Minutes of handling each busy agent has left."""
    waiting_patience: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Minutes each waiting caller (in order of arrival) still waits before hanging up (``inf``: never)."""
    waiting_service: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Their handling minutes once answered."""

    @property
    def nbytes(self) -> int:
        return self.busy.nbytes + self.waiting_patience.nbytes + self.waiting_service.nbytes


@dataclass(frozen=True)
class QueueOutcome:
    """What each simulated call met, and the state the window ended in."""

    waits: np.ndarray
    """Minutes waited (until answered, or until hanging up)."""
    abandoned: np.ndarray
    """True for callers who hung up before an agent answered."""
    end: QueueState = field(default_factory=QueueState)

    @property
    def calls(self) -> int:
        return int(self.waits.size)

    @property
    def nbytes(self) -> int:
        return self.waits.nbytes + self.abandoned.nbytes + self.end.nbytes

    def mean_wait_se(self, batches: int = 20) -> float:
        """Standard error of the mean wait by batch means (calls in arrival order)."""
        if self.waits.size < 2 * batches:
            return float("nan")
        means = np.array([b.mean() for b in np.array_split(self.waits, batches)])
        return float(means.std(ddof=1) / math.sqrt(batches))


def simulate_queue(arrivals_per_minute: float, agents: int, handling_minutes: float,
                   patience_minutes: float | None, minutes: float, rng: np.random.Generator,
                   warmup_minutes: float = 0.0, max_calls: int | None = None,
                   start: QueueState | None = None) -> QueueOutcome:
    """Run the queue with Poisson arrivals for ``warmup + minutes``; return the calls after the warm-up.

    Handling and patience times are exponential. The queue opens empty, or in the state ``start``
    (its busy agents and waiting callers are served first and not reported); calls arriving during
    the warm-up bring it to the state it is in when the window opens, and are not reported either.
    """
    if agents <= 0 or arrivals_per_minute <= 0 or minutes <= 0:
        n = int(rng.poisson(arrivals_per_minute * minutes)) if arrivals_per_minute > 0 and minutes > 0 else 0
        # No agent: every caller waits until they give up (or for the whole window).
        waits = rng.exponential(patience_minutes, n) if patience_minutes else np.full(n, minutes)
        return QueueOutcome(waits.astype(np.float64), np.ones(n, dtype=bool))
    start = start or QueueState()
    early = int(rng.poisson(arrivals_per_minute * warmup_minutes)) if warmup_minutes > 0 else 0
    late = int(rng.poisson(arrivals_per_minute * minutes))
    if max_calls is not None:
        late = min(late, max_calls)
    # Arrival times: uniform order statistics within each phase (a Poisson process given its count).
    # The starting state's callers come first, at time 0: busy agents as callers who never give up.
    held = start.busy.size + start.waiting_patience.size
    arrival_times = np.concatenate([np.zeros(held), np.sort(rng.random(early)) * warmup_minutes,
                                    warmup_minutes + np.sort(rng.random(late)) * minutes])
    skipped = held + early
    service = np.concatenate([start.busy, start.waiting_service, rng.exponential(handling_minutes, early + late)])
    patience = None
    if patience_minutes or held:
        drawn = rng.exponential(patience_minutes, early + late) if patience_minutes else np.full(early + late, np.inf)
        patience = np.concatenate([np.full(start.busy.size, np.inf), start.waiting_patience, drawn])
    waits, abandoned = serve_in_order(arrival_times, service, patience, agents)
    end = state_at(warmup_minutes + minutes, arrival_times[held:], waits[held:], abandoned[held:],
                   service[held:], patience[held:] if patience is not None else None)
    return QueueOutcome(waits[skipped:], abandoned[skipped:], end)


def state_at(time: float, arrivals: np.ndarray, waits: np.ndarray, abandoned: np.ndarray, service: np.ndarray,
             patience: np.ndarray | None) -> QueueState:
    """The queue's state at ``time`` (after every arrival): agents still busy, callers still waiting."""
    answered_at = arrivals + waits
    busy = ~abandoned & (answered_at <= time) & (answered_at + service > time)
    # A caller who will hang up after ``time`` is still waiting at ``time``, as is one answered later.
    waiting = ~abandoned & (answered_at > time)
    if patience is not None:
        waiting |= abandoned & (arrivals + patience > time)
    left = (arrivals + patience - time)[waiting] if patience is not None else np.full(int(waiting.sum()), np.inf)
    return QueueState(answered_at[busy] + service[busy] - time, left, service[waiting])


class _Agents(dict):
    """The busy agents' requests, in a dict: a release is found in O(1), not by scanning a list of
    hundreds of agents (simpy's ``Resource.users`` only needs append, remove and len)."""

    def append(self, request: simpy.Event) -> None:
        self[request] = None

    def remove(self, request: simpy.Event) -> None:
        del self[request]


class Desk(simpy.Resource):
    """The agents: a simpy ``Resource`` whose busy set releases in constant time."""

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        super().__init__(env, capacity)
        self.users = _Agents()  # type: ignore[assignment]


def serve_in_order(arrival_times: np.ndarray, service: np.ndarray, patience: np.ndarray | None,
                   agents: int) -> tuple[np.ndarray, np.ndarray]:
    """Serve calls first come, first served by ``agents`` (a simpy ``Resource``); return (waits, abandoned).

    ``arrival_times`` are sorted minutes; a caller whose wait would exceed their patience hangs up.
    Each call is a chain of simpy events (arrival, request, handling timeout, release) with
    callbacks, not a process of its own: the same queue without a generator per call.
    """
    count = arrival_times.size
    env = simpy.Environment()
    desk = Desk(env, agents)
    arrivals = arrival_times.tolist()
    handling = service.tolist()
    limits = patience.tolist() if patience is not None else None
    waits = [0.0] * count
    abandoned = [False] * count
    arrived = [0.0] * count

    def done(event: simpy.Event) -> None:
        desk.release(event.value)

    def answer(request: simpy.Event) -> None:
        i = request.call  # type: ignore[attr-defined]
        waited = env.now - arrived[i]
        if limits is not None and waited > limits[i]:
            # The caller hung up at arrived + patience. In a first-come-first-served queue a caller
            # who gave up delays nobody, so they keep their place and leave the moment an agent
            # would take them, holding the agent for no time: the same waits for everyone else,
            # without a timer per call.
            waits[i] = limits[i]
            abandoned[i] = True
            desk.release(request)
            return
        waits[i] = waited
        env.timeout(handling[i], request).callbacks.append(done)

    def arrive(event: simpy.Event) -> None:
        i = event.value
        arrived[i] = env.now
        request = desk.request()
        request.call = i  # type: ignore[attr-defined]
        request.callbacks.append(answer)
        if i + 1 < count:
            env.timeout(arrivals[i + 1] - env.now, i + 1).callbacks.append(arrive)

    if count:
        env.timeout(arrivals[0], 0).callbacks.append(arrive)
    env.run()
    return np.array(waits), np.array(abandoned, dtype=bool)


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
