"""The ``budget`` section: how much retention money there is and the rules for spending it.

The allocator divides ``total`` over tier x lever x period cells subject to these
constraints; ``response_curves`` lets the planner state a cell's value curve
instead of having it estimated by simulation.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .capacity import MAX_VALUE
from .types import (
    LeverRef,
    Money,
    Months,
    NonNegativeFloat,
    PeriodRef,
    Probability,
    RefMap,
    Section,
    Seq,
    TierRef,
    fail,
)


class TierBound(Section):
    """Least and most a tier may receive over the horizon, as amounts and/or shares of the total."""

    min: Money = 0.0
    max: Money | None = None
    min_share: Probability = 0.0
    max_share: Probability = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> TierBound:
        if self.max is not None and self.max < self.min:
            raise fail(f"max ({self.max:,.0f}) is below min ({self.min:,.0f})", "make max at least min")
        if self.max_share < self.min_share:
            raise fail(f"max_share ({self.max_share}) is below min_share ({self.min_share})",
                       "make max_share at least min_share")
        return self


class ContactPolicy(Section):
    """How often one line may receive an offer."""

    max_offers_per_line: Annotated[int, Field(ge=0, le=100)] = 1
    per_months: Months = 6
    """The window the limit applies to: at most ``max_offers_per_line`` offers per line in any such window."""


class LockedCell(Section):
    """An amount the planner fixes; the optimizer allocates the rest."""

    tier: TierRef
    lever: LeverRef
    period: PeriodRef
    amount: Money


class CurvePoint(Section):
    spend: Money
    value: Annotated[float, Field(ge=-MAX_VALUE, le=MAX_VALUE, allow_inf_nan=False)]
    """Value retained at that spend: margin over the horizon plus terminal value, net of nothing."""
    lines: NonNegativeFloat | None = None
    """Churners avoided over the horizon at that spend (optional; goal-seek on churn needs it)."""


class ResponseCurve(Section):
    """A planner-stated value curve for a tier x lever (x period) cell; must be concave."""

    tier: TierRef
    lever: LeverRef
    period: PeriodRef | None = None
    """The period it applies to; empty means every period."""
    points: Seq[CurvePoint]

    @model_validator(mode="after")
    def _concave_from_zero(self) -> ResponseCurve:
        spends = [p.spend for p in self.points]
        if len(spends) < 2:
            raise fail("a response curve needs at least two points", "give points from spend 0 upwards")
        if spends[0] != 0:
            raise fail("a response curve starts at spend 0", "add '- {spend: 0, value: 0}' first")
        if any(b <= a for a, b in zip(spends, spends[1:])):
            raise fail("the points' spends must increase", "list the points in order of spend, each spend once")
        slopes = [(b.value - a.value) / (b.spend - a.spend) for a, b in zip(self.points, self.points[1:])]
        for i, (s0, s1) in enumerate(zip(slopes, slopes[1:]), start=1):
            if s1 > s0 * (1 + 1e-9) + 1e-12:
                raise fail(f"the curve is not concave at point {i} (value per unit of spend rises from "
                           f"{s0:.4g} to {s1:.4g})",
                           "each extra unit of spend must retain no more than the one before: lower that point's value")
        lines = [p.lines for p in self.points]
        if any(x is not None for x in lines):
            if any(x is None for x in lines):
                raise fail("'lines' is given for some points but not all",
                           "give every point a 'lines' figure, or none")
            steps = [(b - a) / (q.spend - p.spend) for p, q, a, b in
                     zip(self.points, self.points[1:], lines, lines[1:])]
            for i, (s0, s1) in enumerate(zip(steps, steps[1:]), start=1):
                if s1 > s0 * (1 + 1e-9) + 1e-12:
                    raise fail(f"the lines retained are not concave at point {i} (lines per unit of spend rise "
                               f"from {s0:.4g} to {s1:.4g})", "lower that point's 'lines'")
        return self


class Budget(Section):
    """Retention money and the rules for spending it."""

    total: Money
    """Retention budget over the whole horizon."""
    per_period: RefMap[PeriodRef, Money] = {}
    """Most that may be spent in each named period."""
    tiers: RefMap[TierRef, TierBound] = {}
    """Bounds on what each tier receives."""
    lever_capacity: RefMap[LeverRef, NonNegativeFloat] = {}
    """Most offers a lever may make per period (besides its channel's monthly capacity)."""
    contact_policy: ContactPolicy = ContactPolicy()
    roi_floor: NonNegativeFloat | None = None
    """Least value retained per unit of spend, over the whole plan (e.g. 1.5)."""
    objective: Literal["net_value", "value_within_budget"] = "net_value"
    """``net_value``: maximize value retained minus spend (money left unspent when it does not pay);
    ``value_within_budget``: maximize value retained, spending up to the budget."""
    locked: Seq[LockedCell] = ()
    response_curves: Seq[ResponseCurve] = ()
    """Planner-stated curves; cells without one are estimated by simulation."""
