"""Response curves: the value a tier x lever x period cell retains as a function of its spend.

A curve is concave and piecewise linear: points ``(spend, value)`` from spend 0, each extra
unit of money retaining no more than the one before (the best lines are reached first).
That shape is what lets the allocation be a linear program: each segment is a variable
whose objective weight is the segment's slope, and concavity makes the optimizer fill
segments in order without any integer variable.

Curves come from the scenario (``budget.response_curves``, stated by the planner) or from
:func:`concave_fit` of measured points (the simulation's designed runs). Value is
:mod:`sim.valuation`'s, the same in every stage: discounted margin kept over the horizon plus the
terminal value of the lines kept, before spend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.allocation import Allocation, Cell
from sim.scenario import Scenario
from sim.valuation import period_discount, period_start_discount


@dataclass(frozen=True)
class TierChurn:
    """A tier's churn over the horizon with no retention spend: what goal-seek starts from."""

    tier: str
    churned_lines: float
    """Lines that leave over the horizon."""
    line_months: float
    """Active line-months over the horizon (the denominator of the mean monthly churn)."""

    @property
    def monthly_churn(self) -> float:
        return self.churned_lines / self.line_months if self.line_months > 0 else 0.0


@dataclass(frozen=True)
class ResponseCurve:
    """Value retained against spend for one cell: concave, piecewise linear, through (0, 0)."""

    tier: str
    lever: str
    period: str
    spends: tuple[float, ...]
    """Breakpoints, increasing from 0."""
    values: tuple[float, ...]
    """Value at each breakpoint (0 at spend 0)."""
    source: str = "stated"
    """``stated`` (the planner's points) or ``simulated`` (fitted to designed simulation runs)."""
    fit_error: float | None = None
    """Root-mean-square gap between the fitted curve and the measured points (simulated curves)."""
    retained: tuple[float, ...] | None = None
    """Churners avoided over the horizon (lines) at each breakpoint, concave like the value;
    ``None`` when unknown (a stated curve without ``lines``). Goal-seek needs it."""
    cost: float = 1.0
    """What a unit of money allocated to the cell costs today: the spend it pays, discounted to when it
    is paid, per unit allocated. Measured curves measure it (money is paid when offers are made and
    while they run, and a cell may not pay all it holds: too few callers, lines leaving before their
    offer ends); a stated curve's amounts are taken as paid evenly over its period. The allocation
    nets each cell's value against its amount times this."""

    def __post_init__(self) -> None:
        if len(self.spends) != len(self.values) or len(self.spends) < 2:
            raise ValueError("a response curve needs at least two points with a value each")
        if self.spends[0] != 0 or any(b <= a for a, b in zip(self.spends, self.spends[1:])):
            raise ValueError("a response curve's spends start at 0 and increase")
        slopes = self.slopes
        if any(s1 > s0 * (1 + 1e-9) + 1e-12 for s0, s1 in zip(slopes, slopes[1:])):
            raise ValueError(f"the response curve of {self.cell} is not concave")
        if self.retained is not None:
            if len(self.retained) != len(self.spends):
                raise ValueError("a response curve's retained lines need one figure per point")
            steps = np.diff(self.retained) / np.diff(self.spends)
            if np.any(steps[1:] > steps[:-1] * (1 + 1e-9) + 1e-12):
                raise ValueError(f"the retained lines of {self.cell} are not concave in spend")

    @property
    def retained_slopes(self) -> tuple[float, ...]:
        """Churners avoided per unit of spend on each segment (zeros when unknown)."""
        if self.retained is None:
            return (0.0,) * (len(self.spends) - 1)
        return tuple((r1 - r0) / (s1 - s0) for s0, s1, r0, r1 in
                     zip(self.spends, self.spends[1:], self.retained, self.retained[1:]))

    def retained_at(self, spend: float) -> float:
        """Churners avoided at ``spend`` (0 when unknown)."""
        return float(np.interp(spend, self.spends, self.retained)) if self.retained is not None else 0.0

    @property
    def cell(self) -> Cell:
        return (self.tier, self.lever, self.period)

    @property
    def widths(self) -> tuple[float, ...]:
        return tuple(b - a for a, b in zip(self.spends, self.spends[1:]))

    @property
    def slopes(self) -> tuple[float, ...]:
        """Value per unit of spend on each segment, decreasing."""
        return tuple((v1 - v0) / (s1 - s0) for s0, s1, v0, v1 in
                     zip(self.spends, self.spends[1:], self.values, self.values[1:]))

    @property
    def max_spend(self) -> float:
        return self.spends[-1]

    def value_at(self, spend: float) -> float:
        """Value at ``spend`` (flat beyond the last point: money past it retains nothing more)."""
        return float(np.interp(spend, self.spends, self.values))

    def marginal(self, spend: float) -> float:
        """Value of the next unit of money at ``spend`` (0 past the last point).

        A spend within a millionth of a breakpoint counts as at it: solvers report values to
        about seven significant digits, and a cell filled to a breakpoint must show the next
        segment's return, not the one it has just used up.
        """
        for start, width, slope in zip(self.spends, self.widths, self.slopes):
            end = start + width
            if spend < end - 1e-6 * max(1.0, end):
                return slope
        return 0.0


def stated_curves(scenario: Scenario) -> dict[Cell, ResponseCurve]:
    """The planner's curves from ``budget.response_curves``; one without a period applies to every period."""
    curves: dict[Cell, ResponseCurve] = {}
    for stated in scenario.budget.response_curves:
        periods = [stated.period] if stated.period else [p.name for p in scenario.meta.periods]
        for period in periods:
            lines = [p.lines for p in stated.points]
            retained = tuple(float(x) for x in lines) if all(x is not None for x in lines) else None
            curve = ResponseCurve(stated.tier, stated.lever, period, tuple(p.spend for p in stated.points),
                                  tuple(p.value for p in stated.points), "stated", retained=retained,
                                  cost=period_discount(scenario, period))
            curves[curve.cell] = curve
    return curves


def concave_fit(spends: Sequence[float], values: Sequence[float]) -> tuple[np.ndarray, float]:
    """The concave, non-decreasing piecewise-linear curve through (0, 0) closest to measured points.

    Least squares on the values, solved by pooling adjacent segments whose slopes rise
    (isotonic regression of the slopes, weighted by segment width), then clipping negative
    slopes to 0: more money never loses value in expectation. Returns the fitted values at
    ``spends`` and the root-mean-square gap to the measured values.
    """
    x = np.asarray(spends, dtype=float)
    y = np.asarray(values, dtype=float)
    if x[0] != 0:
        x, y = np.concatenate([[0.0], x]), np.concatenate([[0.0], y])
    widths = np.diff(x)
    slopes = np.diff(y) / widths
    # Pool adjacent violators so that slopes do not increase.
    blocks: list[list[float]] = []  # [weighted slope sum, weight, count]
    for slope, width in zip(slopes, widths):
        blocks.append([slope * width, width, 1])
        while len(blocks) > 1 and blocks[-1][0] / blocks[-1][1] > blocks[-2][0] / blocks[-2][1]:
            total, weight, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += weight
            blocks[-1][2] += count
    fitted_slopes = np.concatenate([[max(0.0, b[0] / b[1])] * b[2] for b in blocks])
    fitted = np.concatenate([[0.0], np.cumsum(fitted_slopes * widths)])
    error = float(np.sqrt(np.mean((fitted - y) ** 2)))
    return fitted[-len(spends):], error


def predicted_figures(scenario: Scenario, curves: dict[Cell, ResponseCurve], allocation: Allocation) -> dict[str, float]:
    """What the allocation's curves predict of a plan: value retained, lines retained, and NPV gain over no
    retention (value less each cell's amount at its curve's ``cost``, launch costs at their periods' start)."""
    amounts = {c: a for c, a in allocation.amounts.items() if c in curves}
    value = sum(curves[c].value_at(a) for c, a in amounts.items())
    lines = sum(curves[c].retained_at(a) for c, a in amounts.items())
    spend = sum(curves[c].cost * a for c, a in amounts.items())
    spend += sum(cost * period_start_discount(scenario, period) for _, period, cost in allocation.launches(scenario))
    return {"value_retained": value, "lines_retained": lines, "npv_gain": value - spend}
