"""The ``market`` section: the operators competing for the same customers.

One of them is us (``market.us``); the others are competitors. Their price level,
network and service quality are what our subscribers compare us against; a
churner's destination is chosen among them by a multinomial logit of the same
attributes plus a brand constant.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from .capacity import MAX_OPERATOR_LINES
from .types import (
    NamedMap,
    NonNegativeFloat,
    Probability,
    Section,
    Seq,
    did_you_mean,
    fail,
)


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
    lines: Annotated[float, Field(ge=0.0, le=MAX_OPERATOR_LINES)] = 0.0
    """Its subscriber lines in our market (competitors only; ours are the tiers' lines); at most 10^10."""
    monthly_churn: Probability | None = None
    """Monthly churn of its own base (competitors only), the same in every segment. By default it is
    solved per segment so that the market is at rest without campaigns, moves or retention: its
    switchers to us replace ours to it (see ``tiers.*.market``)."""
    margin: Probability = 0.45
    """Its contribution margin as a share of its revenue at its list price (competitors only; ours is
    each tier's ``margin``). A rival's line in one of our tiers' segments bills that tier's ARPU times
    its ``price_index``; a price cut takes revenue, not cost, so its margin per line falls by the cut."""


class GrossAdds(Section):
    """Our new lines from the market's new lines: the business plan, one of two ways."""

    share_of_new_lines: Probability | None = None
    """Our share of the segment's new lines (SIMs bought by people new to the market, new companies)."""
    lines: NonNegativeFloat | Seq[NonNegativeFloat] | None = None
    """Our new lines per month: one figure for every month, or one per month of the horizon."""

    @model_validator(mode="after")
    def _one_way(self) -> GrossAdds:
        if (self.share_of_new_lines is None) == (self.lines is None):
            raise fail("gross adds need exactly one of 'share_of_new_lines' and 'lines'",
                       "write e.g. 'gross_adds: {share_of_new_lines: 0.4}' or 'gross_adds: {lines: 1500}'")
        return self

    def monthly(self, month: int) -> float | None:
        """The plan's lines in ``month`` (``None``: a share of the month's new lines)."""
        if self.lines is None:
            return None
        if isinstance(self.lines, tuple):
            return float(self.lines[min(month, len(self.lines)) - 1])
        return float(self.lines)


class SegmentMarket(Section):
    """The market of one of our tiers' customers (its segment): its size, the lines that enter and
    leave it, and our share of its new lines. Lines a rival wins or loses in a segment stay in it
    (enterprise lines move between enterprise accounts, not to prepaid)."""

    share: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    """Our share of the segment's lines at the start; by default our share of the whole market
    (our lines against the rivals' ``lines``). The rivals hold the rest, in proportion to their lines."""
    leaving: Probability = 0.0
    """Lines of the segment, every operator's, that leave the market each month, to no rival (a SIM
    dropped, a student who graduates, a company that closes); part of each operator's churn. The
    market replaces them with as many new lines (plus ``growth``)."""
    growth: Annotated[float, Field(ge=-0.5, le=1.0)] = 0.0
    """Annual growth of the segment's lines (0: a saturated market, the default)."""
    gross_adds: GrossAdds | None = None
    """Our share of the new lines, or our new lines per month; by default our share of the segment,
    which keeps our share where it is."""


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
    def _us_is_an_operator(self) -> Market:
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
