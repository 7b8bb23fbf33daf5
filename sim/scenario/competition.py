"""The ``competitors`` and ``pricing`` sections: moves in the market over time.

Competitors run scheduled campaigns (a price cut, a handset subsidy, marketing
intensity aimed at some of our tiers for some months) and follow reactive rules:
when we cut a price, a rival answers after a lag. Our own tariff moves are listed
under ``pricing``; together they make a price war when both sides keep answering.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .types import (
    CompetitorRef,
    Money,
    Month,
    Months,
    Name,
    Probability,
    Section,
    Seq,
    TierRef,
    fail,
)


class Offer(Section):
    """What a competitor puts in front of our tiers' lines."""

    price_cut: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """Relative cut of its price for the targeted tiers (0.15 = 15% cheaper than its list price)."""
    handset_subsidy: Money = 0.0
    """Handset subsidy per switching line (money, once); valued as its monthly equivalent over 24 months."""
    intensity: Probability = 0.0
    """Marketing pressure on the targeted lines, 0 (none) to 1 (every line hears of it every month)."""


class Campaign(Offer):
    """A scheduled competitor campaign."""

    name: Name
    operator: CompetitorRef
    tiers: Seq[TierRef] = ()
    """Our tiers it targets; empty means all."""
    start_month: Month
    duration_months: Months = 3


Trigger = Literal["our_price_cut", "share_loss"]


class BestResponse(Section):
    """A strategic answer: the rival chooses the price cut that maximizes its own margin.

    It projects the segments it answers in month by month (expected flows between the operators, at the
    prices each candidate cut would bring) and takes the candidate whose discounted margin is highest.
    Rivals answering in the same month respond to each other's choices in turn until none changes (an
    equilibrium) or ``rounds`` are played."""

    cuts: Annotated[Seq[Annotated[float, Field(ge=0.0, lt=1.0)]], Field(min_length=1)] = (
        0.0, 0.05, 0.10, 0.15, 0.20)
    """The price cuts it considers, on top of its running price (0 = not to answer on price)."""
    horizon_months: Annotated[int, Field(ge=1, le=120)] = 24
    """Months it looks ahead when it weighs a cut: the cut's months and the lines it keeps after."""
    rounds: Annotated[int, Field(ge=1, le=50)] = 10
    """Most rounds of answering each other's choices before the last choices stand."""


class Reaction(Section):
    """A competitor's rule: when something happens, answer after a lag."""

    name: Name
    operator: CompetitorRef
    trigger: Trigger = "our_price_cut"
    """``our_price_cut``: we cut a tier's price by at least ``threshold``;
    ``share_loss``: its market share falls by at least ``threshold`` (absolute) from the start."""
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    tiers: Seq[TierRef] = ()
    """Tiers the rule watches and answers in; empty means all."""
    response: Offer = Offer()
    """What it does when triggered: its price cut (unless it matches our cut or chooses its best response),
    handset subsidy and marketing intensity."""
    match_our_cut: bool = False
    """When true, the answer's price cut equals the size of our cut (a tit-for-tat price war), not ``response.price_cut``."""
    lag_months: Annotated[int, Field(ge=0, le=60)] = 1
    duration_months: Months = 6
    max_times: Annotated[int, Field(ge=1, le=100)] = 3
    """How often the rule may fire over the horizon."""
    best_response: BestResponse | None = None
    """When given, the rival chooses its price cut as a best response for its own margin (given our
    moves and the other strategic rivals' answers) instead of ``response.price_cut`` or our cut's size;
    the response's intensity and subsidy still apply."""

    @model_validator(mode="after")
    def _one_answer(self) -> Reaction:
        if self.best_response is not None and self.match_our_cut:
            raise fail("a reaction either matches our cut or chooses its best response, not both",
                       "remove 'match_our_cut' or 'best_response'", at=("best_response",))
        return self


def _unique(campaigns: tuple[Campaign, ...], reactions: tuple[Reaction, ...]) -> None:
    names = [c.name for c in campaigns] + [r.name for r in reactions]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise fail(f"campaign/reaction names repeat: {', '.join(repeated)}", "give each one its own name")


class Variant(Section):
    """One way the competitors may behave, with its probability (for the robust allocation)."""

    name: Name
    probability: Probability
    campaigns: Seq[Campaign] = ()
    reactions: Seq[Reaction] = ()
    """This variant's campaigns and reactions replace the scenario's own."""

    @model_validator(mode="after")
    def _unique_names(self) -> Variant:
        _unique(self.campaigns, self.reactions)
        return self


class Competitors(Section):
    campaigns: Seq[Campaign] = ()
    reactions: Seq[Reaction] = ()
    variants: Seq[Variant] = ()
    """Alternative competitor behaviours with probabilities summing to 1 (e.g. no campaign /
    aggressive campaign / price war). The ``robust_lp`` strategy maximizes the expected value over
    them and reports each one's outcome and the worst case; other strategies use ``campaigns`` and
    ``reactions`` above."""

    @model_validator(mode="after")
    def _unique_names(self) -> Competitors:
        _unique(self.campaigns, self.reactions)
        names = [v.name for v in self.variants]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise fail(f"variant names repeat: {', '.join(repeated)}", "give each variant its own name")
        if self.variants:
            total = sum(v.probability for v in self.variants)
            if abs(total - 1.0) > 1e-6:
                raise fail(f"the variants' probabilities add up to {total:g}, not 1", "make them sum to 1",
                           at=("variants",))
        return self

    def variant(self, name: str) -> Competitors:
        """The competitors as in variant ``name`` (its campaigns and reactions, no variants)."""
        chosen = next(v for v in self.variants if v.name == name)
        return Competitors(campaigns=chosen.campaigns, reactions=chosen.reactions)


class PriceMove(Section):
    """One of our tariff changes."""

    tiers: Seq[TierRef] = ()
    """Tiers whose price changes; empty means all."""
    month: Month
    change: Annotated[float, Field(gt=-1.0, le=5.0)]
    """Relative change of the price (and ARPU): -0.10 is a 10% cut."""

    @model_validator(mode="after")
    def _not_zero(self) -> PriceMove:
        if self.change == 0:
            raise fail("a price move of 0 changes nothing", "give the relative change, e.g. -0.10 for a 10% cut")
        return self
