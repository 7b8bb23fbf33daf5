"""The whole scenario: every section, and the checks that span sections."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, PrivateAttr, model_validator

from .budget import Budget
from .competition import Competitors, PriceMove
from .contact_center import ContactCenter
from .customer_base import CustomerBase
from .levers import Channel, Lever, Targeting
from .market import Market
from .meta import Meta
from .network import Network
from .reference import Reference
from .run import Run, Solver, Strategy
from .tiers import Tier
from .types import NamedMap, Section, Seq, fail


def _at_least_one(kind: str):
    def check(items: dict) -> dict:
        if not items:
            raise fail(f"no {kind} defined", f"add at least one entry under {kind}")
        return items

    return AfterValidator(check)


MAX_LEVERS = 127
"""A unit's running offer is held in one byte, with its top bit telling a save from a proactive offer."""


def _default_strategies() -> tuple[Strategy, ...]:
    return tuple(Strategy.model_validate(k) for k in ("no_retention", "uniform", "proportional_revenue",
                                                      "key_accounts_first", "lp_optimal"))


class Scenario(Section):
    """A retention-planning scenario: market, customers, service, competition, levers and budget.

    Load one with :func:`sim.scenario.load_scenario`; it is immutable, so derive variants
    with ``scenario.model_copy(update=...)`` or by editing the YAML.
    """

    meta: Meta
    market: Market
    tiers: Annotated[NamedMap[Tier], _at_least_one("tiers")]
    network: Network
    contact_center: ContactCenter
    competitors: Competitors = Competitors()
    pricing: Seq[PriceMove] = ()
    reference: Reference = Reference()
    """The conditions the tiers' stated churn describes (normal service at list prices)."""
    """Our own tariff moves over the horizon."""
    channels: Annotated[NamedMap[Channel], _at_least_one("channels")]
    levers: Annotated[NamedMap[Lever], _at_least_one("levers"), Field(max_length=MAX_LEVERS)]
    targeting: Targeting = Targeting()
    budget: Budget
    strategies: Annotated[Seq[Strategy], Field(default_factory=_default_strategies)]
    """Strategies to compare; by default the five built-in ones."""
    run: Run = Run()
    solver: Solver = Solver()
    population: CustomerBase | None = None
    """Start from a customer table (written by ``retention calibrate``) instead of the tiers' figures."""

    _source_dir: str | None = PrivateAttr(default=None)
    """The folder of the scenario file: relative paths (allocation files, tables) start there."""

    def __eq__(self, other: object) -> bool:
        # Where a scenario was read from is not part of it: the same content is the same scenario.
        if not isinstance(other, Scenario):
            return NotImplemented
        return self.__dict__ == other.__dict__

    @model_validator(mode="after")
    def _across_sections(self) -> Scenario:
        names = [s.name for s in self.strategies]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise fail(f"strategy names repeat: {', '.join(repeated)}", "give each strategy its own name")
        for name, lever in self.levers.items():
            enterprise = [t for t, tier in self.tiers.items() if tier.kind == "enterprise" and lever.reaches(t)]
            for field in ("cost_per_contact", "cost_per_acceptance"):
                cost = getattr(lever, field)
                if enterprise and not cost.stated and not cost.is_zero:
                    raise fail(f"lever '{name}' reaches the enterprise tier '{enterprise[0]}': say whether its "
                               f"{field} of {cost.amount:,.6g} is per line or per account",
                               f"write '{field}: {{amount: {cost.amount:g}, per: line}}' (or 'per: account')",
                               at=("levers", name, field))
        horizon = self.meta.horizon_months
        for name, tier in self.tiers.items():
            plan = tier.market.gross_adds
            if plan is not None and isinstance(plan.lines, tuple) and len(plan.lines) != horizon:
                raise fail(f"tier '{name}' lists gross adds for {len(plan.lines)} months; the horizon has {horizon}",
                           f"give one figure per month ({horizon}), or one figure for every month",
                           at=("tiers", name, "market", "gross_adds", "lines"))
        if any(s.kind == "robust_lp" for s in self.strategies) and not self.competitors.variants:
            raise fail("the robust_lp strategy needs competitor variants",
                       "add 'competitors: variants:' with a name, probability, campaigns and reactions each, "
                       "or remove robust_lp", at=("strategies",))
        return self

    @property
    def baseline_strategy(self) -> str:
        return self.run.baseline_strategy or self.strategies[0].name

    @property
    def total_lines(self) -> int:
        return sum(t.line_count for t in self.tiers.values())
