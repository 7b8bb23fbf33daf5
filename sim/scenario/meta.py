"""The ``meta`` section: what the scenario is, its currency, horizon and planning periods."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .types import (
    Currency,
    Months,
    Name,
    NonNegativeFloat,
    PeriodName,
    Section,
    Seq,
    fail,
)


class Period(Section):
    """A planning period: the budget is allocated per period (a year, a half, a quarter)."""

    name: PeriodName
    """How budget tables name the period, e.g. ``Y1`` or ``2027H1``."""
    months: Months
    """Its length in months; the periods follow one another from month 1."""


class Meta(Section):
    """What the scenario is and how far it looks ahead."""

    name: Name
    """Short name; results are written under ``results/<name>/``."""
    description: str = ""
    """What the scenario is about, for the report."""
    currency: Currency = "CNY"
    """ISO 4217 code of every money amount in the file."""
    horizon_months: Annotated[int, Field(ge=1, le=240)] = 36
    """How many months are simulated."""
    periods: Seq[Period] = ()
    """Planning periods covering the horizon; by default one per 12 months (``Y1``, ``Y2``, ...)."""
    discount_rate_annual: Annotated[NonNegativeFloat, Field(le=1.0)] = 0.08
    """Annual discount rate for the value of retained margin (monthly rate = (1 + r)^(1/12) - 1)."""
    terminal_value_months: Annotated[int, Field(ge=0, le=240)] = 24
    """Margin months after the horizon credited to a line still active at its end (0 = none)."""

    @model_validator(mode="before")
    @classmethod
    def _default_periods(cls, data: Any) -> Any:
        # Filled here, the one place defaults live, because the default depends on the horizon.
        if isinstance(data, dict) and not data.get("periods"):
            horizon = data.get("horizon_months", 36)
            if isinstance(horizon, int) and not isinstance(horizon, bool) and 1 <= horizon <= 240:
                periods, start = [], 0
                while start < horizon:
                    periods.append({"name": f"Y{len(periods) + 1}", "months": min(12, horizon - start)})
                    start += 12
                data = {**data, "periods": periods}
        return data

    @field_validator("periods")
    @classmethod
    def _periods_cover_horizon(cls, periods: tuple[Period, ...], info: ValidationInfo) -> tuple[Period, ...]:
        horizon = info.data.get("horizon_months")
        total = sum(p.months for p in periods)
        if horizon is not None and total != horizon:
            raise fail(f"the periods cover {total} months but the horizon is {horizon}",
                       "make the periods' months add up to meta.horizon_months")
        names = [p.name for p in periods]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise fail(f"period names repeat: {', '.join(duplicates)}", "give each period its own name")
        return periods

    def period_of_month(self, month: int) -> str:
        """The name of the planning period that contains ``month`` (1-based)."""
        end = 0
        for period in self.periods:
            end += period.months
            if month <= end:
                return period.name
        raise ValueError(f"month {month} is after the horizon ({self.horizon_months})")

    @property
    def monthly_discount_rate(self) -> float:
        return (1.0 + self.discount_rate_annual) ** (1.0 / 12.0) - 1.0
