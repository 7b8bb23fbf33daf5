"""Field types shared by the scenario sections: units, names and cross-references.

Units, stated once for the whole format:

* money is in the scenario's currency (``meta.currency``); amounts charged or paid
  every month (ARPU, a line-month of a lever) are **per month**;
* rates are **per month** (churn, calls per line, outages per region);
* time inside the month (handling time, patience, waits) is in **minutes**, outage
  durations in **hours**;
* months are counted from 1 (the first simulated month) to ``meta.horizon_months``;
* shares and probabilities are fractions in [0, 1] (0.25, not 25%).

A reference (a campaign's tier, a budget bound's lever) is checked against the names
the scenario defines; the known names reach the validators through pydantic's
validation context, so a wrong name is reported with every other mistake at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo
from pydantic_core import PydanticCustomError

from .capacity import MAX_MONEY, MAX_QUANTITY

K = TypeVar("K")
V = TypeVar("V")


class Section(BaseModel):
    """Base of every scenario section: immutable, no unknown keys, no silent type coercion, and no
    NaN or infinity in any number (``.nan`` and ``.inf`` are YAML numbers the engine cannot use)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, use_attribute_docstrings=True,
                              allow_inf_nan=False)


class FrozenDict(dict[K, V]):
    """A mapping of named items (tiers, levers, regions) that cannot be changed after loading, in the
    order of their names."""

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("scenario mappings are read-only; derive a variant with scenario.with_changes({...})")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self.items()))

    def __reduce__(self) -> tuple[type, tuple[dict[K, V]]]:
        # Rebuilt from a plain dict: unpickling item by item would call the blocked __setitem__.
        return (type(self), (dict(self),))


def _freeze(value: dict[K, V]) -> FrozenDict[K, V]:
    # Kept in the order of their names, not of the file: the order a planner happens to list tiers or
    # levers in must not change any result (draws, sums, tables), and one order everywhere ensures it.
    return FrozenDict(sorted(value.items(), key=lambda item: str(item[0])))


def fail(message: str, hint: str = "", at: tuple[str | int, ...] = ()) -> PydanticCustomError:
    """A validation error whose message and fix reach the planner unchanged.

    ``at`` is the key path below the validated object that the problem is about, so a check
    that spans a section can still point at the line of the value it concerns.
    """
    return PydanticCustomError("scenario", "{message}", {"message": message, "hint": hint, "at": at})


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'gold'?)`` when a close name exists, else the empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _reference(kind: str, section: str, singular: str) -> AfterValidator:
    def check(value: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get(kind)
        if known is None or value in known:
            return value
        listing = ", ".join(sorted(known)) if known else "none defined"
        raise fail(f"unknown {singular} '{value}'{did_you_mean(value, known)}",
                   f"use a name defined under {section} ({listing})")

    return AfterValidator(check)


def _not_us(value: str, info: ValidationInfo) -> str:
    us = (info.context or {}).get("us")
    if us is not None and value == us:
        raise fail(f"'{value}' is our own operator (market.us), not a competitor",
                   "name a competitor here; our own price moves go under 'pricing'")
    return value


def _within_horizon(value: int, info: ValidationInfo) -> int:
    horizon = (info.context or {}).get("horizon")
    if horizon is not None and value > horizon:
        raise fail(f"month {value} is after the horizon ({horizon} months)",
                   f"use a month from 1 to {horizon}, or lengthen meta.horizon_months")
    return value


NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]*$"
PERIOD_NAME_PATTERN = r"^(?:[A-Za-z]|[0-9][0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]*$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
MAX_NAME_LENGTH = 64

PATTERN_RULES: dict[str, tuple[str, str]] = {
    NAME_PATTERN: ("a valid name", "use letters, digits, '_' and '-', starting with a letter, e.g. households or key_a"),
    PERIOD_NAME_PATTERN: ("a valid period name", ("use letters, digits, '_' and '-', starting with a letter or a "
                                                   "digit and holding at least one letter, e.g. Y1, 2027H1 or 2027-Q3")),
    CURRENCY_PATTERN: ("a currency code", "write three capital letters, an ISO 4217 code such as CNY, EUR or USD"),
}
"""For each pattern a text must match: what the text is, and the rule in the planner's words."""

Name = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=MAX_NAME_LENGTH,
                            examples=["households", "key_a", "bill-credit"])]
"""A name a planner gives (a tier, a lever): letters, digits, '_' and '-', starting with a letter."""
PeriodName = Annotated[str, Field(pattern=PERIOD_NAME_PATTERN, min_length=1, max_length=MAX_NAME_LENGTH,
                                  examples=["Y1", "2027H1", "2027-Q3"])]
"""A planning period's name: as a :data:`Name`, but it may start with a digit (a year) if a letter follows."""
Currency = Annotated[str, Field(pattern=CURRENCY_PATTERN, examples=["CNY", "EUR", "USD"])]
"""An ISO 4217 currency code: three capital letters."""
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
"""A fraction in [0, 1]."""
Share = Probability
"""A part of a whole in [0, 1]; shares of one whole must add up to 1."""
Money = Annotated[float, Field(ge=0.0, le=MAX_MONEY, allow_inf_nan=False)]
"""An amount in the scenario currency; never negative, at most 10^12 (:data:`MAX_MONEY`)."""
PositiveFloat = Annotated[float, Field(gt=0.0, le=MAX_QUANTITY, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0.0, le=MAX_QUANTITY, allow_inf_nan=False)]
"""A count or capacity; at most 10^12 (:data:`MAX_QUANTITY`), far more than any market holds."""
Coefficient = Annotated[float, Field(ge=-50.0, le=50.0, allow_inf_nan=False)]
"""A logit coefficient: change in the log-odds of monthly churn per unit of its driver."""
Month = Annotated[int, Field(ge=1), AfterValidator(_within_horizon)]
"""A month of the horizon, 1-based."""
Months = Annotated[int, Field(ge=1, le=600)]
"""A duration in months."""
Count = Annotated[int, Field(ge=0)]

TierRef = Annotated[str, _reference("tiers", "tiers", "tier")]
LeverRef = Annotated[str, _reference("levers", "levers", "lever")]
OperatorRef = Annotated[str, _reference("operators", "market.operators", "operator")]
CompetitorRef = Annotated[str, _reference("operators", "market.operators", "operator"), AfterValidator(_not_us)]
StrategyRef = Annotated[str, _reference("strategies", "strategies", "strategy")]
RegionRef = Annotated[str, _reference("regions", "network.regions", "region")]
PeriodRef = Annotated[str, _reference("periods", "meta.periods", "period")]
ChannelRef = Annotated[str, _reference("channels", "channels", "channel")]

NamedMap = Annotated[dict[Name, V], AfterValidator(_freeze)]
"""Named items keyed by their name, read-only once loaded."""
RefMap = Annotated[dict[K, V], AfterValidator(_freeze)]
"""Values keyed by a reference to named items elsewhere, read-only once loaded."""
Seq = Annotated[tuple[V, ...], Field(strict=False)]
"""A list in the file, a tuple once loaded."""


def check_shares(shares: dict[str, float], what: str) -> dict[str, float]:
    """Shares of one whole must add up to 1 (to within rounding)."""
    total = sum(shares.values())
    if shares and abs(total - 1.0) > 1e-6:
        raise fail(f"the {what} shares add up to {total:.6g}, not 1",
                   "adjust them so they add up to 1 (e.g. 0.25, 0.75)")
    return shares
