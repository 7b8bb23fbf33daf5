"""The ``channels``, ``levers`` and ``targeting`` sections: what retention can do and at what cost.

A lever is an offer (a bill credit, a handset upgrade with a new contract, a data
bonus, an account manager, loyalty points) made through a channel with a capacity.
Proactive offers go to the lines a churn model ranks most at risk; save-desk
offers go to lines that ask to leave. Contacting a line is not free of risk:
published field experiments saw contacted customers churn more than uncontacted
ones (10% against 6%), which ``backfire`` models.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .types import ChannelRef, Money, Months, NonNegativeFloat, Probability, Section, Seq, TierRef


class Channel(Section):
    """A way to reach lines with an offer (outbound calls, SMS, account managers, the save desk)."""

    capacity_per_month: NonNegativeFloat
    """Offers the channel can make in a month, over all levers that use it."""
    description: str = ""


class Lever(Section):
    """A retention offer."""

    description: str = ""
    channel: ChannelRef
    mode: Literal["proactive", "save_desk", "both"] = "proactive"
    """``proactive``: offered to lines ranked at risk; ``save_desk``: to lines asking to leave; or both."""
    tiers: Seq[TierRef] = ()
    """Tiers it may be offered to; empty means all."""
    cost_per_contact: Money = 0.0
    """Paid for every offer made, accepted or not (the call, the mailing)."""
    cost_per_acceptance: Money = 0.0
    """Paid once per accepted offer (the credit, the handset subsidy)."""
    cost_per_line_month: Money = 0.0
    """Paid per accepting line per month while the offer lasts (a data bonus, an account manager's time).
    Enterprise offers are costed per line of the account."""
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
    """Relative increase of the odds of churn in the month after the contact for lines that decline
    (0.67 reproduces the field experiment's 10% against 6%)."""
    launch_cost: Money = 0.0
    """Fixed cost of using the lever at all in a period (makes the allocation a MILP)."""
    min_spend: Money = 0.0
    """Least spend per period if the lever is used at all (makes the allocation a MILP)."""

    def cost_per_offer(self, lines_per_unit: int = 1) -> float:
        """Expected cost of one offer made, over its life (acceptance-weighted)."""
        per_accept = self.cost_per_acceptance + self.cost_per_line_month * self.duration_months * lines_per_unit
        return self.cost_per_contact + self.acceptance * per_accept


class Targeting(Section):
    """How well we find the lines at risk."""

    model_auc: Annotated[float, Field(ge=0.5, le=1.0)] = 0.75
    """AUC of the churn model that ranks lines for proactive offers (0.5 ranks at random)."""
    save_desk_reach: Probability = 0.3
    """Share of lines about to leave that contact us first and can be offered a save-desk lever."""
