"""Runs of one replication that share their first months: simulated once, then copied.

The curve measurement funds one period's cells per design, and the closed loop adds a plan's cells one
at a time, earliest period first. Two runs of one replication whose allocations fund the same cells
with the same amounts up to the end of a period are the same run up to then (common random numbers;
nothing of a period's cells acts before the period begins), so the later one can start as a copy of
the earlier one at that month's end (:meth:`sim.engine.Simulation.fork`) instead of from month 1: a
design funding only the third year of three simulates one year, not three. The results are the same
bytes as each run simulated from the start (a test compares them).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from .allocation import Allocation, Cell
from .scenario import Scenario


@dataclass(frozen=True)
class Start:
    """Where a run starts: from month 1, or as a copy of an earlier run at the end of ``month``."""

    parent: int | None = None
    """The earlier run's position in the list (``None``: from the start)."""
    month: int = 0


def months_shared(scenario: Scenario, a: Allocation, b: Allocation) -> int:
    """The months, from the start of the horizon, through which runs of ``a`` and ``b`` are the same: to the
    end of the last period before the first in which they fund some cell differently (the whole horizon
    if they never do)."""
    funded_a, funded_b = _funded(a), _funded(b)
    end = 0
    for period in scenario.meta.periods:
        cells = {c for c in (*funded_a, *funded_b) if c[2] == period.name}
        if any(funded_a.get(c) != funded_b.get(c) for c in cells):
            return end
        end += period.months
    return end


def shared_starts(runs: Sequence[tuple[Hashable, Scenario, Allocation]]) -> list[Start]:
    """For each run (its group: which scenario and replication it simulates; the scenario; its allocation), the earlier
    run of its group it can start as a copy of, and at which month's end: the one sharing the most
    months, the first of equals. A copy is taken from a run that simulated those months itself: where the
    earlier run started as a copy later than that, its own source is used (the same months)."""
    starts: list[Start] = []
    for i, (group, scenario, allocation) in enumerate(runs):
        best = Start()
        for j in range(i):
            if runs[j][0] != group:
                continue
            month = months_shared(scenario, runs[j][2], allocation)
            if month > best.month:
                best = Start(j, month)
        while best.parent is not None and starts[best.parent].month >= best.month:
            best = Start(starts[best.parent].parent, best.month)
        starts.append(best)
    return starts


def _funded(allocation: Allocation) -> dict[Cell, float]:
    return {cell: float(amount) for cell, amount in allocation.amounts.items() if amount > 0}
