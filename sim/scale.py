"""How much of each tier a run simulates (``run.scale``).

Its own module: the scenario's capacity check (:mod:`sim.scenario.capacity`) counts units with the
engine's own rounding, and reading a scenario should not load the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .scenario.tiers import Tier

MIN_SIMULATED_UNITS = 2_000
"""A tier thinned by ``run.scale`` keeps at least this many units (or all it has), so small tiers
such as key accounts are never reduced to a handful."""


def tier_scale(tier: Tier, scale: float, minimum: int | None = None) -> float:
    """The share of a tier's units that is simulated. A run simulates at most every unit (scale 1); a
    calibration sample may ask for more (a scale above 1, or ``minimum`` units of every tier), drawing
    a small tier several times over (each simulated unit then stands for less than one)."""
    share = scale if scale >= 1.0 else min(1.0, max(scale, MIN_SIMULATED_UNITS / max(tier.unit_count, 1)))
    return share if minimum is None else max(share, minimum / max(tier.unit_count, 1))


def initial_units(tier: Tier, scale: float, minimum: int | None = None) -> int:
    """Deciding units simulated for a tier at the run's scale (at least one)."""
    return max(1, int(round(tier.unit_count * tier_scale(tier, scale, minimum))))
