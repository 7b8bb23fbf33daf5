"""Queue outcomes kept for reuse, within a run and across the runs of one process.

Response-curve estimation and strategy comparison simulate one scenario many times
with the same seed and replications; strategies differ in who they retain, hardly
in how loaded the hotline is. Every queue window is simulated from a random stream
keyed by what its outcome depends on (seed, replication, the window's place in the
month, load step, agents, handling and patience, window length, starting state), so
a stored outcome is exactly the one a run would simulate: a run with a shared cache
gives the same bytes as a run without one. A cache passed to several
:class:`~sim.engine.Simulation` objects (or kept by :func:`sim.runner.simulate`)
lets them share windows; least recently used outcomes are dropped beyond a memory bound.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

from .queue import QueueOutcome

DEFAULT_MAX_BYTES = 256 * 2**20
"""About 3,000 windows of 5,000 calls (an outcome keeps 9 bytes per call)."""


class QueueCache:
    """Queue outcomes by key, least recently used dropped first beyond ``max_bytes``."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._outcomes: OrderedDict[Hashable, QueueOutcome] = OrderedDict()

    def __len__(self) -> int:
        return len(self._outcomes)

    def get(self, key: Hashable, simulate: Callable[[], QueueOutcome]) -> QueueOutcome:
        """The outcome stored under ``key``, or the one ``simulate`` returns (then stored).

        ``key`` must hold everything the outcome depends on, the random stream's key included.
        """
        outcome = self._outcomes.get(key)
        if outcome is not None:
            self.hits += 1
            self._outcomes.move_to_end(key)
            return outcome
        self.misses += 1
        outcome = simulate()
        self._outcomes[key] = outcome
        self.nbytes += outcome.nbytes
        while self.nbytes > self.max_bytes and len(self._outcomes) > 1:
            _, dropped = self._outcomes.popitem(last=False)
            self.nbytes -= dropped.nbytes
        return outcome
