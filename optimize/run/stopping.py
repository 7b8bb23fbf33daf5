"""Replications until the comparison is as precise as the planner asked: stopping at a target half-width.

A planner who needs the plan's gain over the baseline strategy to within, say, 1M either way states it
(``run.target_half_width``, or ``retention run --half-width 1M``). The comparison then simulates
replications in batches and stops at the first replication count at which the 95% interval of the
paired NPV difference (the recommended plan against the baseline strategy) is no wider than that on
either side, or at ``run.replications``, the most it may run.

**The same seed, the same answer.** Replication *r* is fixed by the scenario, the seed and *r* alone,
and the stop is the *first* count *n* (from :data:`FIRST_CHECK` on) whose interval reaches the target:
replications simulated past it in the same batch are dropped. So how many replications a run keeps
depends neither on the batch size nor on the number of workers, only on the scenario and the seed.

**Why not fewer than ten.** The interval's width is itself estimated from the replications: from five,
its spread is known to about a third either way, and a run that stops the first time a lucky few
replications look alike would stop too early and claim more certainty than it has. From ten it is known
to about a quarter, and the stop's own luck is small beside the interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sim.results import mean_interval, t_quantile

FIRST_CHECK = 10
"""The fewest replications at which the target is checked (see the module)."""
BATCH = 4
"""Replications simulated at least per batch after the first: batches only save time, they change no result."""
REACHED = "target reached"
CAP = "most replications reached"
NO_TARGET = "no target stated"


@dataclass(frozen=True)
class Stopping:
    """How many replications the comparison ran, and why it stopped there."""

    replications: int
    reason: str
    """:data:`REACHED`, :data:`CAP` (the target was not reached within ``run.replications``) or :data:`NO_TARGET`."""
    target: float | None
    """The half-width asked for (currency units), ``None`` without a target."""
    half_width: float
    """The 95% half-width of the paired NPV difference at :attr:`replications`."""
    strategy: str
    """The strategy whose NPV difference from the baseline strategy was watched."""
    baseline: str
    most: int
    """The most replications the run could have made (``run.replications``)."""
    simulated: int = 0
    """Replications simulated (those past :attr:`replications` in the last batch were dropped)."""
    widths: tuple[float, ...] = field(default=())
    """The half-width after each replication count from 2 on (NaN where undefined)."""

    def sentence(self, currency: str = "") -> str:
        """In words, for the headline and the terminal."""
        unit = f" {currency}" if currency else ""
        if self.reason == NO_TARGET:
            return f"{self.replications} replications (run.replications)"
        if self.reason == REACHED:
            return (f"{self.replications} replications: the NPV difference of {self.strategy} against "
                    f"{self.baseline} reached ±{self.half_width:,.0f}{unit}, within the target "
                    f"±{self.target:,.0f}{unit}")
        return (f"{self.replications} replications, the most allowed (run.replications): the NPV difference "
                f"of {self.strategy} against {self.baseline} is ±{self.half_width:,.0f}{unit}, wider than the "
                f"target ±{self.target:,.0f}{unit}; raise --reps to go on")

    def manifest(self) -> dict[str, object]:
        return {"replications": self.replications, "stopped_because": self.reason, "target_half_width": self.target,
                "half_width": self.half_width, "watched": f"npv: {self.strategy} - {self.baseline}",
                "most_replications": self.most, "replications_simulated": self.simulated or self.replications}


def half_widths(differences: np.ndarray) -> list[float]:
    """The 95% half-width of the mean of ``differences[:n]`` for n = 2, 3, ... (one per count)."""
    return [mean_interval(differences[:n])[2] for n in range(2, len(differences) + 1)]


def first_reaching(differences: np.ndarray, target: float, first_check: int = FIRST_CHECK) -> int | None:
    """The first replication count, from ``first_check`` on, whose half-width is at most ``target``."""
    for n in range(max(2, first_check), len(differences) + 1):
        half = mean_interval(differences[:n])[2]
        if half <= target:
            return n
    return None


def next_batch(differences: np.ndarray, target: float, done: int, most: int) -> int:
    """How many replications to simulate next: as many as the spread so far says the target needs (at
    least :data:`BATCH`), never past ``most``. Only a guess of how long to go on: it moves no result."""
    sd = float(np.std(differences, ddof=1)) if len(differences) > 1 else float("nan")
    wanted = done + BATCH
    if math.isfinite(sd) and sd > 0 and target > 0:
        wanted = max(wanted, math.ceil((t_quantile(done - 1) * sd / target) ** 2))
    return max(0, min(most, wanted) - done)


def replicate_until(target: float | None, most: int, differences_of: Callable[[int, int], np.ndarray],
                    strategy: str, baseline: str) -> Stopping:
    """Simulate replications in batches until the paired difference's half-width reaches ``target``.

    ``differences_of(first, count)`` simulates replications ``first .. first + count - 1`` (keeping their
    results) and returns the paired NPV differences of all replications simulated so far, in replication
    order. Without a target, every one of ``most`` is simulated in one batch.
    """
    if target is None:
        differences = differences_of(0, most)
        return Stopping(most, NO_TARGET, None, _width(differences), strategy, baseline, most, most,
                        tuple(half_widths(differences)))
    done = min(most, FIRST_CHECK)
    differences = differences_of(0, done)
    while True:
        # Fewer than FIRST_CHECK allowed in all: the target is checked on all of them.
        reached = first_reaching(differences, target, min(FIRST_CHECK, most))
        if reached is not None or done >= most:
            kept = reached if reached is not None else done
            return Stopping(kept, REACHED if reached is not None else CAP, target, _width(differences[:kept]),
                            strategy, baseline, most, done, tuple(half_widths(differences)))
        more = next_batch(differences, target, done, most)
        differences = differences_of(done, more)
        done += more


def _width(differences: np.ndarray) -> float:
    return float(mean_interval(differences)[2])
