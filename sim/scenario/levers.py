"""The ``channels``, ``levers`` and ``targeting`` sections: what retention can do and at what cost.

A lever is an offer (a bill credit, a handset upgrade with a new contract, a data
bonus, an account manager, loyalty points) made through a channel with a capacity.
Proactive offers go to the lines a churn model ranks most at risk; save-desk
offers go to lines that ask to leave. Contacting a line is not free of risk:
published field experiments saw contacted customers churn more than uncontacted
ones (10% against 6%), which ``backfire`` models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    WithJsonSchema,
    model_serializer,
    model_validator,
)

from .capacity import MAX_MONEY
from .tiers import Tier
from .types import (
    ChannelRef,
    Money,
    Months,
    NonNegativeFloat,
    Probability,
    Section,
    Seq,
    TierRef,
    did_you_mean,
    fail,
)


class Channel(Section):
    """A way to reach lines with an offer (outbound calls, SMS, account managers, the save desk)."""

    capacity_per_month: NonNegativeFloat
    """Offers the channel can make in a month, over all levers that use it."""
    description: str = ""


class Cost(Section):
    """A lever's cost as a planner states it: a plain amount, an amount per line or per account, or a
    share of the monthly bill.

    ``50`` is 50 per line (consumer tiers have one line per unit); ``{amount: 500, per: account}`` is
    500 per enterprise account whatever its size and ``{amount: 50, per: line}`` 50 for each of its
    lines; ``{share_of_arpu: 0.3}`` is 30% of the monthly bill of the lines it concerns (one line, or
    every line of an account): a 30% discount for a month. A lever that reaches an enterprise tier
    must say ``per: line`` or ``per: account`` for its one-off costs.
    """

    amount: Money | None = None
    """Money per line (or per account with ``per: account``)."""
    share_of_arpu: Annotated[float, Field(ge=0.0, le=10.0)] | None = None
    """A share of the monthly bill (ARPU) of each line concerned, e.g. 0.3 for 30%."""
    per: Literal["line", "account"] | None = None
    """What ``amount`` is counted per; unstated is per line, which a lever reaching enterprise tiers must
    state for its one-off costs."""

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, data: Any) -> Any:
        # A plain number is the common case: an amount per line.
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return {"amount": float(data)}
        return data

    @model_validator(mode="after")
    def _one_way(self) -> Cost:
        if (self.amount is None) == (self.share_of_arpu is None):
            raise fail("state the cost as 'amount' or as 'share_of_arpu', not both and not neither",
                       "write e.g. 'cost_per_acceptance: {amount: 50, per: line}' or "
                       "'cost_per_line_month: {share_of_arpu: 0.3}'")
        if self.share_of_arpu is not None and self.per == "account":
            raise fail("a share of the bill is counted per line (an account's bill is its lines' bills)",
                       "remove 'per: account'", at=("per",))
        return self

    @model_serializer
    def _as_written(self) -> float | dict[str, Any]:
        # Written back as a planner would write it: a plain amount as a number, the rest as a mapping.
        if self.share_of_arpu is None and self.per is None:
            return self.amount
        return {k: v for k, v in (("amount", self.amount), ("share_of_arpu", self.share_of_arpu), ("per", self.per))
                if v is not None}

    @property
    def stated(self) -> bool:
        """Whether it says how it counts for an enterprise account (per line, per account, or a share)."""
        return self.per is not None or self.share_of_arpu is not None

    @property
    def is_zero(self) -> bool:
        return not (self.amount or self.share_of_arpu)

    def per_unit(self, tier: Tier) -> float:
        """Money per deciding unit of ``tier`` (a line, or an enterprise account with all its lines).

        An amount ``per: account`` is the same for every account, whatever its size (an account manager's
        time); one per line, or a share of the bill, counts the account's lines at the tier's mean size
        (offers go to accounts by risk, which does not depend on their size)."""
        lines = tier.lines_per_unit
        if self.share_of_arpu is not None:
            return self.share_of_arpu * tier.arpu * lines
        assert self.amount is not None
        return self.amount if self.per == "account" else self.amount * lines


DRIVERS = ("price_gap", "network_gap", "satisfaction", "complaints", "out_of_contract", "competitor_pressure",
           "propensity")
"""The churn drivers an offer may act on (``acts_on``): the terms of the hazard's logit that push a line
to leave (:mod:`sim.hazard`); tenure only holds lines, so no offer acts on it."""


def _known_drivers(value: tuple[str, ...]) -> tuple[str, ...]:
    for i, name in enumerate(value):
        if name not in DRIVERS:
            raise fail(f"unknown churn driver '{name}'{did_you_mean(name, DRIVERS)}",
                       f"name drivers of the hazard: {', '.join(DRIVERS)}", at=(i,))
    if len(set(value)) != len(value):
        raise fail("a driver is named twice", "name each driver once")
    if not value:
        raise fail("an empty list would make the offer act on nothing",
                   "name at least one driver, or remove 'acts_on' for an offer acting on the whole hazard")
    return tuple(sorted(value))


class Response(Section):
    """How lines differ in their response to an offer (persuadables, sure things, sleeping dogs).

    Each line has its own responsiveness u, a standard normal drawn once per line, correlated with its
    own churn propensity: u = risk_correlation * z + sqrt(1 - risk_correlation^2) * e, with z the line's
    standardized propensity and e its own draw. An accepted offer multiplies the line's odds of churn by
    (1 - hazard_reduction) * w and a declined contact by 1 + backfire * w, where
    w = exp(-spread * u - spread^2 / 2): the mean of w over lines is 1, so the stated figures are the
    means over all lines; a line of low u gains less, nothing (w = 1 / (1 - hazard_reduction)) or is
    pushed out by the contact (a sleeping dog), a line of high u gains more (a persuadable). With
    ``acceptance_by_risk``, who accepts depends on the line's risk too.
    """

    spread: Annotated[float, Field(ge=0.0, le=3.0)] = 0.0
    """Standard deviation of a line's own effect on the log-odds scale (of log w); 0: every line alike."""
    risk_correlation: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.0
    """Correlation of responsiveness with the line's own churn propensity; negative: the riskiest lines
    respond least (the retention futility of the field studies)."""
    acceptance_by_risk: Annotated[float, Field(ge=-3.0, le=3.0)] = 0.0
    """Change of the log-odds of accepting the offer per standard deviation of the line's own churn
    propensity: the stated ``acceptance`` is that of a line of average propensity, and a line z standard
    deviations riskier accepts with log-odds logit(acceptance) + acceptance_by_risk * z. Positive: the
    riskiest lines are the keenest to take an offer (whether or not it keeps them); 0: every line alike."""


CostField = Annotated[Cost, WithJsonSchema({"anyOf": [
    {"type": "number", "minimum": 0, "maximum": MAX_MONEY, "description": "an amount per line"},
    {"type": "object", "additionalProperties": False, "properties": {
        "amount": {"type": "number", "minimum": 0, "maximum": MAX_MONEY},
        "share_of_arpu": {"type": "number", "minimum": 0, "maximum": 10},
        "per": {"enum": ["line", "account"]}}},
]})]
"""A cost: a number (per line) or ``{amount, per}`` or ``{share_of_arpu}`` (see :class:`Cost`)."""
NO_COST = Cost(amount=0.0)


@dataclass(frozen=True)
class UnitCosts:
    """A lever's costs for one deciding unit of a tier (a line, or an account with all its lines)."""

    contact: float
    """Per offer made, accepted or not."""
    acceptance: float
    """Once per accepted offer."""
    month: float
    """Per month the accepted offer runs."""
    acceptance_rate: float
    duration_months: int

    @property
    def accepted(self) -> float:
        """What an acceptance commits: its one-off cost and every month it runs."""
        return self.acceptance + self.month * self.duration_months

    @property
    def per_offer(self) -> float:
        """Expected cost of one offer made, over its life (acceptance-weighted)."""
        return self.contact + self.acceptance_rate * self.accepted


class Lever(Section):
    """A retention offer."""

    description: str = ""
    channel: ChannelRef
    mode: Literal["proactive", "save_desk", "both"] = "proactive"
    """``proactive``: offered to lines ranked at risk; ``save_desk``: to lines asking to leave; or both."""
    tiers: Seq[TierRef] = ()
    """Tiers it may be offered to; empty means all."""
    cost_per_contact: CostField = NO_COST
    """Paid for every offer made, accepted or not (the call, the mailing); a number, or
    ``{amount, per: line|account}``, or ``{share_of_arpu}``."""
    cost_per_acceptance: CostField = NO_COST
    """Paid once per accepted offer (the credit, the handset subsidy); as ``cost_per_contact``."""
    cost_per_line_month: CostField = NO_COST
    """Paid per accepting line for each month the offer runs on it (a data bonus, a discount as
    ``{share_of_arpu: 0.3}``, an account manager's time); it stops when the line leaves. For an
    enterprise account, per line of the account (or per account with ``per: account``)."""
    acceptance: Probability
    """Share of offered lines (accounts) that accept."""
    hazard_reduction: Probability
    """Relative reduction of the odds of churn while the offer lasts (0.4 = odds times 0.6)."""
    satisfaction_gain: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.0
    """Added to an accepting line's satisfaction (0..1 scale)."""
    duration_months: Months = 6
    """How long the effect on hazard lasts."""
    contract_extension_months: Annotated[int, Field(ge=0, le=60)] = 0
    """Months of new contract an acceptance brings (a handset upgrade with a 24-month term)."""
    backfire: Annotated[float, Field(ge=0.0, le=10.0)] = 0.0
    """Relative increase of the odds of churn for lines that decline a proactive offer, at the churn
    decision that follows the contact (the same month's billing); 0.67 reproduces the field
    experiment's 10% against 6%."""
    response: Response | None = None
    """How lines differ in their response (:class:`Response`); absent: every line responds alike."""
    acts_on: Annotated[Seq[str], AfterValidator(_known_drivers)] | None = None
    """The churn drivers the offer acts on (:data:`DRIVERS`): it removes ``hazard_reduction`` of the
    churn odds those drivers add to a line, so a data bonus does nothing for a line that leaves over
    network quality; absent: the whole hazard."""
    policy: Literal["risk", "uplift", "value"] | None = None
    """How its proactive offers choose lines; unstated: ``targeting.policy`` (see :class:`Targeting`)."""
    launch_cost: Money = 0.0
    """Fixed cost of using the lever at all in a period (makes the allocation a MILP)."""
    min_spend: Money = 0.0
    """Least spend per period if the lever is used at all (makes the allocation a MILP)."""

    def costs(self, tier: Tier) -> UnitCosts:
        """Its costs for one deciding unit of ``tier``."""
        return UnitCosts(self.cost_per_contact.per_unit(tier), self.cost_per_acceptance.per_unit(tier),
                         self.cost_per_line_month.per_unit(tier), self.acceptance, self.duration_months)

    def cost_per_offer(self, tier: Tier) -> float:
        """Expected cost of one offer made to a unit of ``tier``, over its life (acceptance-weighted)."""
        return self.costs(tier).per_offer

    def reaches(self, tier: str) -> bool:
        """Whether it may be offered to ``tier``."""
        return not self.tiers or tier in self.tiers

    @property
    def proactive(self) -> bool:
        return self.mode != "save_desk"

    @property
    def save_desk(self) -> bool:
        return self.mode != "proactive"

    @property
    def varies_by_line(self) -> bool:
        """Whether its effect differs from line to line (a spread of responsiveness, or named drivers)."""
        return self.acts_on is not None or (self.response is not None and self.response.spread > 0)

    @property
    def effect_per_offer(self) -> float:
        """Expected churn odds-months an offer removes, per unit of the line's churn risk: acceptance
        times the odds reduction times the months it lasts, less the backfire of a decline. With the
        offers each lever's money buys fixed, giving the riskiest lines to the lever with the most
        effect per offer gives the most churn avoided (the rearrangement inequality): that is the order
        in which a tier's proactive levers take its ranked lines.

        A ``response`` leaves it as it is: its figures are means over lines, and the churn model that
        ranks lines does not see a line's own responsiveness. With ``acts_on`` it is the effect on a line
        whose churn odds come from the named drivers alone, an upper bound."""
        return self.acceptance * self.hazard_reduction * self.duration_months - (1.0 - self.acceptance) * self.backfire

    @property
    def save_priority(self) -> tuple[float, float]:
        """The order in which save-desk levers take the callers who ask to leave: the likeliest to save
        them first, then the strongest effect once they stay."""
        return (self.acceptance, self.hazard_reduction * self.duration_months)


class Targeting(Section):
    """How well we find the lines at risk."""

    model_auc: Annotated[float, Field(ge=0.5, le=1.0)] = 0.75
    """AUC of the churn model that ranks lines for proactive offers (0.5 ranks at random)."""
    save_desk_reach: Probability = 0.3
    """Share of lines about to leave that contact us first and can be offered a save-desk lever."""
    policy: Literal["risk", "uplift", "value"] = "risk"
    """How proactive offers choose their lines, unless a lever states its own: ``risk``, the lines the
    churn model ranks most at risk; ``uplift``, the lines an uplift model expects the offer to change
    most (the churn it removes, less the backfire of a decline); ``value``, the lines whose expected
    incremental value exceeds the offer's expected cost, most first (:mod:`sim.uplift`)."""
    uplift_correlation: Annotated[float, Field(ge=0.0, le=1.0)] = 0.4
    """Correlation of the uplift model's scores with each line's true uplift over the lines it ranks:
    1 is the oracle, 0 ranks at random. Uplift models are weaker than churn models (their target, the
    difference between two outcomes of which a line shows one, is never observed line by line)."""

    def policy_of(self, lever: Lever) -> str:
        """The policy by which ``lever``'s proactive offers choose lines."""
        return lever.policy or self.policy

    def cell_policy(self, lever: Lever) -> str:
        """What the allocation tables show as a cell's policy: its proactive offers' (or ``save_desk``
        for a lever offered only to lines asking to leave, which choose themselves)."""
        return "save_desk" if not lever.proactive else self.policy_of(lever)
