"""The ``market`` section: the operators competing for the same customers.

One of them is us (``market.us``); the others are competitors. Their price level,
network and service quality are what our subscribers compare us against; a
churner's destination is chosen among them by a multinomial logit of the same
attributes plus a brand constant.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from .types import NamedMap, NonNegativeFloat, Probability, Section, did_you_mean, fail


class Operator(Section):
    """An operator in the market."""

    price_index: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0
    """Its price level relative to ours for the same plan (0.8 = 20% cheaper). Ours is 1 by definition."""
    network_quality: Probability = 0.8
    """Perceived network quality, 0 (unusable) to 1 (flawless): coverage, speed, stability."""
    service_quality: Probability = 0.8
    """Perceived quality of its customer service, 0 to 1."""
    brand: Annotated[float, Field(ge=-10.0, le=10.0)] = 0.0
    """Brand attraction for churners choosing a new operator (a logit constant; 0 = neutral)."""
    lines: NonNegativeFloat = 0.0
    """Its subscriber lines in our market (competitors only; ours are the tiers' lines)."""
    monthly_churn: Probability = 0.015
    """Monthly churn of its own base (competitors only); its churners are gross adds up for grabs."""


class Market(Section):
    """The operators and which of them we are."""

    us: str
    """The name of our operator among ``operators``."""
    operators: NamedMap[Operator]
    """Every operator in the market, ours included, by name."""
    price_sensitivity_destination: Annotated[float, Field(ge=0.0, le=50.0)] = 3.0
    """Weight of price in a churner's choice of destination (per unit of relative price)."""
    quality_sensitivity_destination: Annotated[float, Field(ge=0.0, le=50.0)] = 2.0
    """Weight of network quality in a churner's choice of destination."""

    @model_validator(mode="after")
    def _us_is_an_operator(self) -> "Market":
        if self.us not in self.operators:
            raise fail(f"market.us names '{self.us}', which is not among the operators{did_you_mean(self.us, self.operators)}",
                       f"set market.us to one of: {', '.join(self.operators)}", at=("us",))
        if len(self.operators) < 2:
            raise fail("the market needs at least one competitor besides us",
                       "add a competitor under market.operators")
        if self.operators[self.us].price_index != 1.0:
            raise fail("our own price_index must be 1 (competitors' prices are stated relative to ours)",
                       f"remove price_index under market.operators.{self.us}", at=("operators", self.us, "price_index"))
        return self

    @property
    def competitors(self) -> tuple[str, ...]:
        return tuple(name for name in self.operators if name != self.us)
