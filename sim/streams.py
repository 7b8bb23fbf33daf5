"""Independent random streams, one per event source, from one seed.

Each source (churn decisions, outages, calls, offers, ...) draws from its own
generator, keyed by its name and the replication number through numpy's
``SeedSequence``. Adding a new source therefore leaves every other source's
numbers untouched, and two strategies simulated with the same seed and
replication see the same outages, calls and churn draws (common random numbers),
so their difference is the strategy's effect, not noise.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable

import numpy as np

from . import kernels

TierGenerators = Callable[[str], np.random.Generator]
"""A tier's own generator by its name: what draws the tiers' populations, one independent stream each."""


def seeded_per_tier(seed: int, *key: int) -> TierGenerators:
    """Generators per tier from ``seed`` and ``key`` (a stage of the run that draws its own population)."""
    return lambda tier: np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(*key, name_key(tier))))

SOURCES = ("population", "churn", "destination", "outages", "calls", "queue", "offers", "targeting",
           "acquisition", "competition")
"""The event sources of the simulator; the order is irrelevant (keys come from the names)."""


def _source_key(name: str) -> int:
    # A stable number per name (not Python's salted hash), so streams survive restarts.
    return zlib.crc32(name.encode("utf-8"))


def name_key(name: str) -> int:
    """A stable number for a planner's name (a tier, a lever, a period): draws about a tier are keyed by
    its name, not by where the scenario lists it, so listing tiers in another order changes nothing."""
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

    def unit_uniforms(self, source: str, units: np.ndarray, *key: int, **named: int) -> np.ndarray:
        """One uniform in [0, 1) per unit, fixed by (seed, replication, source, key, unit).

        A unit's draw does not depend on which other units draw, so two strategies that offer
        the same line in the same month see it accept or decline alike (common random numbers
        at the level of the line), however their other offers differ.
        """
        return kernels.keyed_uniforms(np.ascontiguousarray(units), self.salt(source, *key, *named.values()))

    def salt(self, source: str, *key: int) -> np.uint64:
        """The key of a stream of per-unit draws: :mod:`sim.kernels` hashes it with each unit's uid."""
        return _salt(self.seed, self.replication, source, key)

    def per_tier(self, source: str) -> TierGenerators:
        """A generator per tier for ``source`` (keyed by the tier's name)."""
        return lambda tier: self.child(source, name_key(tier))

    def child(self, source: str, *key: int) -> np.random.Generator:
        """A generator for one sub-part of a source (one tier's churn draws), independent of the others."""
        sequence = _sequence(self.seed, self.replication, source, tuple(int(k) for k in key))
        return np.random.Generator(np.random.PCG64DXSM(sequence))


@functools.lru_cache(maxsize=1 << 13)
def _sequence(seed: int, replication: int, source: str, key: tuple[int, ...]) -> np.random.SeedSequence:
    """:meth:`RandomStreams.child`'s seed sequence, kept: the runs of a replication (the strategies
    compared, the designs measured) ask for the same ones month by month, and making one costs more
    than seeding a generator from it. A generator only reads its sequence's state (nothing is spawned
    from it), so generators seeded from one kept sequence draw what fresh ones would, each on its own."""
    return np.random.SeedSequence(entropy=seed, spawn_key=(replication, _source_key(source), *key))


_MASK = (1 << 64) - 1


def _splitmix64_int(x: int) -> int:
    """The splitmix64 finalizer of one 64-bit number (as :func:`sim.kernels.unit_bits` mixes a unit's), in
    Python integers: a run mixes thousands of salts from a handful of parts each, and one-element arrays
    would cost ten times more than the arithmetic."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


@functools.lru_cache(maxsize=1 << 15)
def _salt(seed: int, replication: int, source: str, key: tuple[int, ...]) -> np.uint64:
    """:meth:`RandomStreams.salt`, kept: the runs of a replication (the strategies compared, the designs
    measured) ask for the same few thousand salts each, month by month, and mixing them in Python
    integers costs more than looking them up."""
    return _mix(np.uint64(seed & _MASK), replication, _source_key(source), *key)


def _mix(value: np.uint64, *parts: int) -> np.uint64:
    state = int(value)
    for part in parts:
        state = _splitmix64_int(state ^ (int(part) & _MASK))
    return np.uint64(state)
