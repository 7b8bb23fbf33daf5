"""The contact center's queue: calls served first come, first served by a pool of agents.

Callers arrive, wait for a free agent in order of arrival, and hang up when
their patience runs out first. Every call is simulated (M/M/c+M when handling
and patience are exponential); without abandonment its long-run waits match the
Erlang C formula, which the tests check. In arrival order each caller takes the
agent that frees first (:func:`serve_in_order`): the waits of a discrete-event
queue, the same bytes as simpy's (the tests keep one to check against), without
an event per call.

At operator scale a month brings hundreds of thousands of calls. The queue is
then simulated for a window of the month at the month's true arrival rate and
staffing (the queue behaves the same in any window of the same load), and each
real call takes the outcome of a simulated call of the same load: sampling with
weights, whose error is the window's sampling error (reported as the standard
error of the mean wait, by batch means).

A window opens in a state (:class:`QueueState`): a draw from the queue's
long-run law (exact for exponential handling and patience, so no warm-up), or
the state another window ended in: an outage burst starts from the hotline as
normal load leaves it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .kernels import first_come_first_served
from .scenario.capacity import MAX_WAITING_CALLERS


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
        """Standard error of the mean wait by batch means (calls in arrival order).

        A short window (a hotline of a few calls a month) has fewer batches, of at least two calls each;
        with three calls or fewer, the calls' own spread (waits next to each other in a queue are
        correlated, so this understates the error the less the fewer calls). One call: its wait, as
        uncertain as the figure itself; none: 0, there is no wait to estimate."""
        n = self.waits.size
        if n < 2:
            return float(self.waits[0]) if n else 0.0
        batches = min(batches, n // 2)
        if batches < 2:
            return float(self.waits.std(ddof=1) / math.sqrt(n))
        means = np.array([b.mean() for b in np.array_split(self.waits, batches)])
        return float(means.std(ddof=1) / math.sqrt(batches))


LONG_RUN_WAITING_STATES = 40 * MAX_WAITING_CALLERS
"""Waiting callers the long-run law is computed for (its tail is cut where it weighs e^-40 of the mode: a
geometric tail of mean w needs about 40 w states). Patient callers at a load a hair below the agents have
a long-run state of hundreds of thousands waiting, which a queue takes longer than any month to reach:
such a queue (and one whose long-run state holds more than :data:`MAX_WAITING_CALLERS` waiting on
average) warms up from empty instead, as an overloaded one does, so a window's work stays bounded."""


def stationary_state(arrivals_per_minute: float, agents: int, handling_minutes: float,
                     patience_minutes: float | None, rng: np.random.Generator) -> QueueState | None:
    """A draw from the queue's long-run state (M/M/c+M, or M/M/c without patience); None if it has none.

    The number of callers in the system is a birth-death chain: callers arrive at rate lambda, and with
    n of them in, min(n, c) are served at rate 1/handling and the other n - c give up at rate
    1/patience. Its long-run law is pi(n) proportional to the product over k <= n of
    lambda / (min(k, c) / handling + max(k - c, 0) / patience). Handling and patience are exponential,
    so what each busy agent has left and how long each waiting caller still waits are fresh
    exponential draws (memorylessness): the window then opens exactly as a queue that has run forever,
    with no warm-up bias and no warm-up calls. Patient callers and a load of at least c Erlangs have
    no long-run state (the queue grows without bound); one of more than
    :data:`~sim.scenario.capacity.MAX_WAITING_CALLERS` waiting on average is out of a month's reach
    (see :data:`LONG_RUN_WAITING_STATES`): None for both.
    """
    load = arrivals_per_minute * handling_minutes
    if agents <= 0 or arrivals_per_minute <= 0 or (not patience_minutes and load >= agents):
        return None
    abandon = 1.0 / patience_minutes if patience_minutes else 0.0
    # Enough states that the tail left out weighs less than e^-40 of the mode; doubled until it does.
    size = 2 * agents + 64
    most = agents + LONG_RUN_WAITING_STATES
    while True:
        n = np.arange(1, size + 1, dtype=np.float64)
        leaving = np.minimum(n, agents) / handling_minutes + np.maximum(n - agents, 0.0) * abandon
        log_weight = np.concatenate([[0.0], np.cumsum(math.log(arrivals_per_minute) - np.log(leaving))])
        if log_weight[-1] < log_weight.max() - 40.0 and log_weight[-1] < log_weight[-2]:
            break
        if size >= most:
            return None
        size = min(2 * size, most)
    weight = np.exp(log_weight - log_weight.max())
    if float(np.dot(np.maximum(np.arange(size + 1) - agents, 0), weight) / weight.sum()) > MAX_WAITING_CALLERS:
        return None
    in_system = int(rng.choice(weight.size, p=weight / weight.sum()))
    busy, waiting = min(in_system, agents), max(in_system - agents, 0)
    return QueueState(rng.exponential(handling_minutes, busy),
                      rng.exponential(patience_minutes, waiting) if patience_minutes else np.full(waiting, np.inf),
                      rng.exponential(handling_minutes, waiting))


def simulate_queue(arrivals_per_minute: float, agents: int, handling_minutes: float,
                   patience_minutes: float | None, minutes: float, rng: np.random.Generator,
                   warmup_minutes: float = 0.0,
                   start: QueueState | None = None, stationary: bool = False) -> QueueOutcome:
    """Run the queue with Poisson arrivals for ``warmup + minutes``; return the calls after the warm-up.

    Handling and patience times are exponential. The queue opens empty, in the state ``start``, or
    (``stationary``) in a draw from its long-run state (:func:`stationary_state`; the warm-up is then
    only used when there is no such state). The busy agents and waiting callers of the opening state
    are served first and not reported; calls arriving during the warm-up bring the queue to the state
    it is in when the window opens, and are not reported either.
    """
    if agents <= 0 or arrivals_per_minute <= 0 or minutes <= 0:
        n = int(rng.poisson(arrivals_per_minute * minutes)) if arrivals_per_minute > 0 and minutes > 0 else 0
        # No agent: every caller waits until they give up (or for the whole window).
        waits = rng.exponential(patience_minutes, n) if patience_minutes else np.full(n, minutes)
        return QueueOutcome(waits.astype(np.float64), np.ones(n, dtype=bool))
    if stationary and start is None:
        start = stationary_state(arrivals_per_minute, agents, handling_minutes, patience_minutes, rng)
        warmup_minutes = 0.0 if start is not None else warmup_minutes
    start = start or QueueState()
    early = int(rng.poisson(arrivals_per_minute * warmup_minutes)) if warmup_minutes > 0 else 0
    late = int(rng.poisson(arrivals_per_minute * minutes))
    # Arrival times: uniform order statistics within each phase (a Poisson process given its count).
    # The starting state's waiting callers come first, at time 0; its busy agents take nobody until free.
    held = start.waiting_patience.size
    arrival_times = np.concatenate([np.zeros(held), np.sort(rng.random(early)) * warmup_minutes,
                                    warmup_minutes + np.sort(rng.random(late)) * minutes])
    skipped = held + early
    service = np.concatenate([start.waiting_service, rng.exponential(handling_minutes, early + late)])
    patience = None
    if patience_minutes or held:
        drawn = rng.exponential(patience_minutes, early + late) if patience_minutes else np.full(early + late, np.inf)
        patience = np.concatenate([start.waiting_patience, drawn])
    waits, abandoned = serve_in_order(arrival_times, service, patience, agents, busy=start.busy)
    # The end state holds everyone still there: callers (the opening state's waiting ones too) and the
    # opening state's agents still busy.
    closing = warmup_minutes + minutes
    end = state_at(closing, arrival_times, waits, abandoned, service, patience)
    still_busy = start.busy[start.busy > closing] - closing
    end = QueueState(np.concatenate([still_busy, end.busy]), end.waiting_patience, end.waiting_service)
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


def serve_in_order(arrival_times: np.ndarray, service: np.ndarray, patience: np.ndarray | None,
                   agents: int, busy: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Serve calls first come, first served by ``agents``; return (waits, abandoned).

    ``arrival_times`` are sorted minutes; a caller whose wait would exceed their patience hangs up.
    ``busy``: minutes each agent busy at the start still has to go (at most ``agents`` of them).

    In a first-come-first-served queue each caller, in order of arrival, takes the agent that frees
    first; a caller who gives up delays nobody, so they keep their place and leave the moment an agent
    would take them, holding it for no time. That recursion (:func:`sim.kernels.first_come_first_served`)
    gives every wait without a calendar of events: the tests check it against a discrete-event queue
    of simpy events, to the byte.
    """
    ends = np.sort(busy) if busy is not None else np.zeros(0)
    if ends.size > agents:
        raise ValueError(f"{ends.size} agents busy at the start, of {agents}")
    limits = np.ascontiguousarray(patience, dtype=np.float64) if patience is not None else np.zeros(0)
    return first_come_first_served(np.ascontiguousarray(arrival_times, dtype=np.float64),
                                   np.ascontiguousarray(service, dtype=np.float64), limits, patience is not None,
                                   agents, ends.astype(np.float64))


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
