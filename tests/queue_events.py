"""The contact center's queue as a discrete-event simulation of simpy events: what
:func:`sim.queue.serve_in_order` computed before its recursion was compiled, kept as the reference the
compiled queue must match to the byte (``tests/test_kernel_equivalence.py``).

Callers wait for an agent of a simpy ``Resource`` in order of arrival; each call is a chain of events
(arrival, request, handling timeout, release) with callbacks. The calendar adds times as it schedules
them (an event due ``d`` after ``now`` falls at ``now + d``): the compiled queue adds them alike.
"""

from __future__ import annotations

import numpy as np
import simpy


class _Agents(dict):
    """The busy agents' requests, in a dict: a release is found in O(1), not by scanning a list of
    hundreds of agents (simpy's ``Resource.users`` only needs append, remove and len)."""

    def append(self, request: simpy.Event) -> None:
        self[request] = None

    def remove(self, request: simpy.Event) -> None:
        del self[request]


class Desk(simpy.Resource):
    """The agents: a simpy ``Resource`` whose busy set releases in constant time, at once."""

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        super().__init__(env, capacity)
        self.users = _Agents()  # type: ignore[assignment]

    def release(self, request: simpy.resources.resource.Request) -> None:  # type: ignore[override]
        """Free the agent ``request`` holds and give it to the first caller waiting, now.

        simpy's own release schedules an event that does the same at the same moment; done at once,
        it saves one event per call and changes no wait (the test against an independent
        first-come-first-served recursion checks this).
        """
        self.users.remove(request)
        self._trigger_put(None)

    def hold(self, minutes: np.ndarray) -> None:
        """Agents already busy when the queue opens, for ``minutes`` each, in the ``Resource``'s busy set.

        They take no caller until they are free. One timer runs at a time, to the next agent due, so an
        agent that frees after the last caller is through costs no event (see :func:`serve_with_events`).
        """
        ends = np.sort(minutes).tolist()
        if not ends:
            return
        tokens = [object() for _ in ends]
        for token in tokens:
            self.users.append(token)  # type: ignore[arg-type]
        due = [0]

        def free(event: simpy.Event) -> None:
            # The agent this timer was for, and any other due by now, each then taking the next caller
            # waiting (a ``Resource`` grants one request per release).
            k = due[0]
            while True:
                self.users.remove(tokens[k])  # type: ignore[arg-type]
                self._trigger_put(None)
                k += 1
                if k == len(ends) or ends[k] > self._env.now:
                    break
            due[0] = k
            if k < len(ends):
                self._env.timeout(ends[k] - self._env.now).callbacks.append(free)

        self._env.timeout(ends[0]).callbacks.append(free)


def serve_with_events(arrival_times: np.ndarray, service: np.ndarray, patience: np.ndarray | None,
                   agents: int, busy: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Serve calls first come, first served by ``agents`` (a simpy ``Resource``); return (waits, abandoned).

    ``arrival_times`` are sorted minutes; a caller whose wait would exceed their patience hangs up.
    ``busy``: minutes each agent busy at the start still has to go (at most ``agents`` of them).
    Each call is a chain of simpy events (arrival, request, handling timeout, release) with
    callbacks, not a process of its own: the same queue without a generator per call.
    """
    count = arrival_times.size
    env = simpy.Environment()
    desk = Desk(env, agents)
    if busy is not None:
        desk.hold(busy)
    arrivals = arrival_times.tolist()
    handling = service.tolist()
    limits = patience.tolist() if patience is not None else None
    waits = [0.0] * count
    abandoned = [False] * count
    arrived = [0.0] * count
    # Once every caller has been answered or has hung up, the waits are known: the calls still being
    # handled then change nothing, and the queue stops without playing out their ends.
    unresolved = [count]
    finished = env.event()

    def resolved() -> None:
        unresolved[0] -= 1
        if unresolved[0] == 0:
            finished.succeed()

    def done(event: simpy.Event) -> None:
        desk.release(event.value)

    def answer(request: simpy.Event) -> None:
        i = request.call  # type: ignore[attr-defined]
        waited = env.now - arrived[i]
        resolved()
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

    def call(i: int) -> None:
        arrived[i] = env.now
        request = desk.request()
        request.call = i  # type: ignore[attr-defined]
        request.callbacks.append(answer)

    def arrive(event: simpy.Event) -> None:
        i = event.value
        call(i)
        if i + 1 < count:
            env.timeout(arrivals[i + 1] - env.now, i + 1).callbacks.append(arrive)

    # Callers there from the start (a window opening on a state) queue up at once, in order, with no
    # arrival event each.
    first = int(np.searchsorted(arrival_times, 0.0, side="right"))
    for i in range(first):
        call(i)
    if first < count:
        env.timeout(arrivals[first], first).callbacks.append(arrive)
    if count:
        env.run(until=finished)
    return np.array(waits), np.array(abandoned, dtype=bool)


