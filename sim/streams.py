"""Independent random streams, one per event source, from one seed.

Each source (churn decisions, outages, calls, offers, ...) draws from its own
generator, keyed by its name and the replication number through numpy's
``SeedSequence``. Adding a new source therefore leaves every other source's
numbers untouched, and two strategies simulated with the same seed and
replication see the same outages, calls and churn draws (common random numbers),
so their difference is the strategy's effect, not noise.
"""

from __future__ import annotations

import zlib

import numpy as np

SOURCES = ("population", "churn", "destination", "outages", "calls", "queue", "offers", "targeting",
           "acquisition", "competition")
"""The event sources of the simulator; the order is irrelevant (keys come from the names)."""


def _source_key(name: str) -> int:
    # A stable number per name (not Python's salted hash), so streams survive restarts.
    return zlib.crc32(name.encode("utf-8"))


class RandomStreams:
    """The generators of one replication: ``streams["churn"]`` is the churn stream."""

    def __init__(self, seed: int, replication: int = 0) -> None:
        self.seed = int(seed)
        self.replication = int(replication)
        self._generators: dict[str, np.random.Generator] = {}

    def __getitem__(self, source: str) -> np.random.Generator:
        generator = self._generators.get(source)
        if generator is None:
            sequence = np.random.SeedSequence(entropy=self.seed, spawn_key=(self.replication, _source_key(source)))
            generator = np.random.Generator(np.random.PCG64DXSM(sequence))
            self._generators[source] = generator
        return generator

    def child(self, source: str, *key: int) -> np.random.Generator:
        """A generator for one sub-part of a source (one tier's churn draws), independent of the others."""
        sequence = np.random.SeedSequence(
            entropy=self.seed, spawn_key=(self.replication, _source_key(source), *(int(k) for k in key)))
        return np.random.Generator(np.random.PCG64DXSM(sequence))
