"""The whole scenario: every section, and the checks that span sections."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PrivateAttr, model_validator
from pydantic_core import PydanticCustomError

from . import capacity, consistency
from .budget import Budget
from .competition import Competitors, PriceMove
from .contact_center import ContactCenter
from .customer_base import CustomerBase
from .errors import Problem
from .levers import Channel, Lever, Targeting
from .market import Market
from .meta import Meta
from .network import Network, check_outage_hours
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


def _fail_all(found: list[consistency.Finding]) -> PydanticCustomError:
    """One validation error that carries every finding: the loader lists each with its own line."""
    first, *rest = found
    return PydanticCustomError("scenario", "{message}", {
        "message": first.message, "hint": first.hint, "at": first.at,
        "more": tuple((f.at, f.message, f.hint) for f in rest)})


def _default_strategies() -> tuple[Strategy, ...]:
    return tuple(Strategy.model_validate(k) for k in ("no_retention", "uniform", "proportional_revenue",
                                                      "key_accounts_first", "lp_optimal"))


class Scenario(Section):
    """A retention-planning scenario: market, customers, service, competition, levers and budget.

    Load one with :func:`sim.scenario.load_scenario`; it is immutable, so derive variants with
    :meth:`with_changes` (validated as a file is) or by editing the YAML. ``model_copy(update=...)``
    validates nothing: it is for the engine's own variants, not for a planner's.
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
    _warnings: tuple[Problem, ...] = PrivateAttr(default=())
    """What the file says that will not happen as written, found when it was loaded."""

    def __eq__(self, other: object) -> bool:
        # Where a scenario was read from is not part of it: the same content is the same scenario.
        if not isinstance(other, Scenario):
            return NotImplemented
        return self.__dict__ == other.__dict__

    @model_validator(mode="after")
    def _across_sections(self) -> Scenario:
        names = [s.name for s in self.strategies]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise fail(f"strategy '{name}' is listed twice (first as strategies[{names.index(name)}])",
                           "give each strategy its own name, or remove the repeated entry", at=("strategies", i))
        for name, normal in self.reference.regions.items():
            region = self.network.regions[name]
            rate = region.outages_per_month if normal.outages_per_month is None else normal.outages_per_month
            hours = region.outage_hours if normal.outage_hours is None else normal.outage_hours
            try:
                check_outage_hours(rate, hours, ("reference", "regions", name))
            except PydanticCustomError as error:
                assert error.context is not None
                raise fail(error.context["message"] + " in the reference's normal service",
                           error.context["hint"], at=error.context["at"]) from None
        projected = capacity.projected_units(self)
        if sum(projected.values()) > capacity.MAX_SIMULATED_UNITS:
            biggest = max(projected, key=lambda t: projected[t])
            raise fail(f"a run may simulate about {sum(projected.values()):,.0f} units (lines, or enterprise "
                       f"accounts): the tiers' segments, whose rival lines a price war can bring to us, and the "
                       f"lines joining over the horizon; {projected[biggest]:,.0f} of them in tier '{biggest}'. At "
                       f"about 65 bytes each at its peak, a run holds at most {capacity.MAX_SIMULATED_UNITS:,} units in memory",
                       f"simulate a share of the lines: set run.scale to at most "
                       f"{capacity.scale_within(sum(projected.values()), self.run.scale):g} "
                       "(results are scaled back up), or lower the tiers' lines or gross adds",
                       at=("tiers", biggest))
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
        waiting = capacity.hotline_waiting(self)
        if waiting > capacity.MAX_WAITING_CALLERS:
            raise fail(f"about {waiting:,.0f} callers could reach the hotline within a caller's patience "
                       f"({self.contact_center.patience_minutes:g} minutes) in normal times, once the tiers hold "
                       f"every line their segments may (a price war can bring them all to us); its queue is "
                       f"simulated caller by caller and holds at most {capacity.MAX_WAITING_CALLERS:,} at once",
                       "open the hotline longer (open_hours_per_month), shorten patience_minutes, or lower the "
                       "tiers' call_rate",
                       at=("contact_center", "open_hours_per_month"))
        found = consistency.errors(self)
        if found:
            raise _fail_all(found)
        return self

    def with_changes(self, changes: Mapping[str, Any]) -> Scenario:
        """A variant with ``changes`` (key paths to new values), validated as a file is; see
        :func:`sim.scenario.derive`. Raises :class:`ScenarioError` naming each problem's key path::

            bigger = scenario.with_changes({"budget.total": 5e6})
            quarterly = scenario.with_changes({"meta": {"periods": [{"name": "Q1", "months": 3}, ...]}})
        """
        from .loader import derive

        return derive(self, changes)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Scenario:
        """pydantic's copy: ``update`` is **not** validated (a negative budget would pass). Build a
        planner's variant with :meth:`with_changes` instead."""
        return super().model_copy(update=update, deep=deep)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """What the scenario says that will not happen as written (it loads all the same): period budgets
        that cannot spend the total, keys ignored where they are written. ``retention validate`` and every
        command print them; :func:`load_scenario` issues each as a :class:`ScenarioWarning`."""
        return self._warnings

    @property
    def baseline_strategy(self) -> str:
        """The strategy the others are paired against when every strategy is run."""
        return self.baseline_among(s.name for s in self.strategies)

    def baseline_among(self, strategies: Iterable[str]) -> str:
        """The strategy the others are paired against when only ``strategies`` are run (in that order):
        ``run.baseline_strategy`` if it is among them, else the first of them. Every table and the
        report name this one, the one the differences are computed against."""
        names = list(strategies)
        if not names:
            raise ValueError("no strategies to pair against")
        stated = self.run.baseline_strategy
        return stated if stated in names else names[0]

    def recommended_among(self, strategies: Iterable[str]) -> str | None:
        """The plan recommended when ``strategies`` are run: the LP's, else the robust LP's (None when
        neither ran). The report leads with it, and a run with a target precision watches it."""
        names = set(strategies)
        for kind in ("lp_optimal", "robust_lp"):
            name = next((s.name for s in self.strategies if s.kind == kind and s.name in names), None)
            if name is not None:
                return name
        return None

    @property
    def total_lines(self) -> int:
        return sum(t.line_count for t in self.tiers.values())
