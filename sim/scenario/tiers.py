"""The ``tiers`` section: who our customers are and how they react.

Consumer tiers are counted in lines (VIP diamond, mass-market households, prepaid).
Enterprise tiers are counted in accounts with many lines each; an account stays or
leaves as a unit (binding the group binds its members), so its churn decision is
taken once per account.

An enterprise tier's accounts may differ in size (``account_size``: a floor plus a lognormal excess),
decide at their contract's end only (``decides_at: renewal``: the renewal or tender), and lose and
add single lines between decisions (``partial_churn``, ``line_growth``); see :class:`AccountSize`.

Each tier states its baseline monthly churn; the simulator calibrates the tier's
base hazard so that baseline conditions reproduce it. The sensitivities say how
much each driver moves the log-odds of monthly churn away from that baseline.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from .capacity import MAX_CALL_RATE, MAX_CALLS_PER_UNIT, MAX_TIER_UNITS
from .market import SegmentMarket
from .types import (
    Coefficient,
    Money,
    Probability,
    RefMap,
    RegionRef,
    Section,
    check_shares,
    fail,
)

Segment = Literal["key_account", "commercial", "vip", "mass", "prepaid"]
"""How the operator's own rules of thumb see a tier (key accounts first, VIP recognition, ...)."""


class Sensitivity(Section):
    """Change in the log-odds of monthly churn per unit of each driver."""

    price_gap: Coefficient = 2.0
    """Per unit of relative price gap to the best competitor offer the line sees (0.1 = they are 10% cheaper)."""
    network_gap: Coefficient = 3.0
    """Per unit of network-quality gap to the best competitor (quality is 0..1)."""
    satisfaction: Coefficient = 2.5
    """Per unit of satisfaction deficit (1 - satisfaction, satisfaction 0..1), relative to the tier's start."""
    complaints: Coefficient = 0.5
    """Per escalated complaint in the last three months."""
    out_of_contract: Coefficient = 0.7
    """Added when the line is out of contract (or its contract ends this month)."""
    tenure: Coefficient = -0.15
    """Per year of tenure (loyalty grows with time: negative), up to ``tenure.loyalty_months``."""
    competitor_pressure: Coefficient = 1.0
    """Per unit of competitor campaign intensity aimed at the tier (0..1)."""


class Contract(Section):
    """Contract status of the tier's lines at the start."""

    share: Probability = 0.6
    """Share of lines under contract (0 for prepaid)."""
    term_months: Annotated[int, Field(ge=1, le=60)] = 24
    """Length of a contract; lines under contract have a remaining term spread evenly over it."""


class Tenure(Section):
    """How long the tier's lines have been with us at the start."""

    mean_months: Annotated[float, Field(gt=0.0, le=600.0)] | None = None
    """Mean tenure; tenures are then drawn from an exponential distribution with this mean. By default
    the tenures (and own propensities) are those of a base at rest: lines joining as others leave,
    at the tier's churn (:mod:`sim.steady_state`). A stated mean that does not match the churn makes the
    base age or rejuvenate over the horizon, and its churn drift with it."""
    loyalty_months: Annotated[int, Field(ge=1, le=600)] = 36
    """Months over which loyalty grows (the ``tenure`` sensitivity); a line with us longer weighs as one
    with us this long. Churn falls over the first contract or two, then holds."""


class AccountSize(Section):
    """How many lines an enterprise tier's accounts hold: at least ``min`` lines plus a lognormal
    excess, so that the mean is ``mean`` and a few large groups hold many lines (a ministry next to a
    county office). ``spread`` is the standard deviation of the excess's logarithm; 0 makes every
    account ``mean`` lines."""

    mean: Annotated[float, Field(gt=0.0, le=1_000_000.0)]
    """Mean lines per account."""
    min: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    """Fewest lines an account holds (the class's lower bound: 500 handsets for class A groups)."""
    spread: Annotated[float, Field(ge=0.0, le=3.0)] = 0.8
    """Standard deviation of the log of the lines above ``min``."""

    @model_validator(mode="after")
    def _mean_above_min(self) -> AccountSize:
        if self.spread > 0 and self.mean <= self.min:
            raise fail(f"account_size.mean ({self.mean:g}) must be more than account_size.min ({self.min}): "
                       "accounts hold at least min lines, so the mean is above it unless every account is the same size",
                       "raise mean above min, lower min, or set 'spread: 0' with mean = min", at=("mean",))
        if self.spread == 0 and self.mean < self.min:
            raise fail(f"account_size.mean ({self.mean:g}) is below account_size.min ({self.min})",
                       "raise mean to at least min", at=("mean",))
        return self


class Tier(Section):
    """A customer tier."""

    kind: Literal["consumer", "enterprise"] = "consumer"
    """``consumer``: counted in lines; ``enterprise``: counted in accounts that leave as a unit."""
    segment: Segment = "mass"
    """The operator's own label for the tier, used by rule-of-thumb strategies."""
    description: str = ""
    lines: Annotated[int, Field(ge=1, le=MAX_TIER_UNITS)] | None = None
    """Number of lines (consumer tiers); at most 2 billion (a line's number in the simulation is a 32-bit
    integer). A run simulates ``run.scale`` of them, at most 100 million units over all tiers and the
    horizon (about 65 bytes each at a run's peak): lower ``run.scale`` for a larger base."""
    accounts: Annotated[int, Field(ge=1, le=MAX_TIER_UNITS)] | None = None
    """Number of accounts (enterprise tiers); at most 2 billion."""
    lines_per_account: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    """Lines in each account, every account the same size (enterprise tiers); or ``account_size``."""
    account_size: AccountSize | None = None
    """Accounts of varying sizes (enterprise tiers), e.g. ``{mean: 1200, min: 500, spread: 0.7}``: an
    account's revenue, value and lines lost when it leaves follow its own size."""
    decides_at: Literal["month", "renewal"] = "month"
    """When an enterprise account may leave as a whole: ``month``, any month (a monthly hazard, as a
    line); ``renewal``, only in the last month of its contract (the renewal or tender) and every month
    once out of contract (rolling). ``baseline_churn`` stays the monthly share of accounts leaving,
    averaged over the contract cycle: the tender month carries the months before it."""
    partial_churn: Annotated[float, Field(ge=0.0, le=0.2)] = 0.0
    """Enterprise tiers: share of an account's lines cancelled each month while the account stays (staff
    leaving, a branch closing). They are churned lines, on top of ``baseline_churn`` (whole accounts)."""
    line_growth: Annotated[float, Field(ge=0.0, le=0.2)] | None = None
    """Enterprise tiers: share of an account's lines added each month (new staff). By default equal to
    ``partial_churn``, so that an account's size holds still on average and the base stays at rest."""
    arpu: Money
    """Average revenue per line per month."""
    margin: Probability = 0.45
    """Contribution margin as a share of revenue."""
    baseline_churn: Annotated[float, Field(gt=0.0, le=0.5)]
    """Monthly churn under baseline conditions (lines, or accounts for enterprise tiers), e.g. 0.012 for 1.2%."""
    sensitivity: Sensitivity = Sensitivity()
    contract: Contract = Contract()
    tenure: Tenure = Tenure()
    regions: Annotated[RefMap[RegionRef, Probability], AfterValidator(lambda v: check_shares(v, "region"))] | None = None
    """Where the tier's lines live, as shares; by default the network's region shares."""
    risk_spread: Annotated[float, Field(ge=0.0, le=4.0)] = 1.0
    """Spread of lines' own churn propensity: the standard deviation, on the log-odds scale, of what
    makes one line likelier to leave than another with the same attributes. It is what a churn model
    ranks on; 0 makes lines alike but for their attributes."""
    risk_renewal: Probability = 0.03
    """Share of lines whose own propensity is drawn afresh each month: life events (a move, a new job,
    a child, a company's new management) change who is likely to leave. Without it the likeliest
    leavers go first and the tier's churn fades; 0.03 renews a line's propensity every 33 months
    on average."""
    satisfaction: Probability = 0.788
    """Mean satisfaction at the start, 0..1 (operator studies report 78.8%)."""
    call_rate: Annotated[float, Field(ge=0.0, le=MAX_CALL_RATE)] = 0.08
    """Calls per line per month to the contact center in normal times; at most 10, and at most 1,000 a
    month for an enterprise account's lines together (each call is simulated)."""
    market: SegmentMarket = SegmentMarket()
    """The tier's segment of the market: its size, lines entering and leaving it, our gross adds."""

    @model_validator(mode="after")
    def _size_matches_kind(self) -> Tier:
        if self.kind == "consumer":
            if self.lines is None:
                raise fail("a consumer tier needs 'lines'", "add e.g. 'lines: 250000', or set 'kind: enterprise'")
            if self.accounts is not None or self.lines_per_account is not None:
                raise fail("a consumer tier is counted in lines, not accounts",
                           "remove 'accounts'/'lines_per_account', or set 'kind: enterprise'",
                           at=("accounts",) if self.accounts is not None else ("lines_per_account",))
            for key, stated in (("account_size", self.account_size is not None),
                                ("decides_at", self.decides_at != "month"),
                                ("partial_churn", self.partial_churn > 0), ("line_growth", self.line_growth is not None)):
                if stated:
                    raise fail(f"'{key}' describes enterprise accounts; a consumer tier's lines decide alone",
                               f"remove '{key}', or set 'kind: enterprise'", at=(key,))
        else:
            if self.accounts is None or (self.lines_per_account is None) == (self.account_size is None):
                if self.lines_per_account is not None and self.account_size is not None:
                    raise fail("an enterprise tier states its accounts' size twice: 'lines_per_account' (all "
                               "the same size) and 'account_size' (sizes that vary)",
                               "keep one: 'account_size: {mean: 600, min: 500, spread: 0.8}', or "
                               "'lines_per_account: 600'", at=("account_size",))
                raise fail("an enterprise tier needs 'accounts' and 'lines_per_account' (or 'account_size')",
                           "add e.g. 'accounts: 100' and 'lines_per_account: 600'")
            if self.lines is not None:
                raise fail("an enterprise tier is counted in accounts; 'lines' follows from them",
                           "remove 'lines' and give 'accounts' and 'lines_per_account'", at=("lines",))
            if self.decides_at == "renewal" and self.contract.share <= 0:
                raise fail("'decides_at: renewal' needs accounts under contract, but contract.share is 0",
                           "raise contract.share (1 for every account on a contract), or set 'decides_at: month'",
                           at=("decides_at",))
        if self.call_rate * self.lines_per_unit > MAX_CALLS_PER_UNIT:
            raise fail(f"call_rate {self.call_rate:g} for accounts of {self.lines_per_unit:,.6g} lines on average is "
                       f"{self.call_rate * self.lines_per_unit:,.0f} calls an account a month; each call is simulated, "
                       f"and an account may make at most {MAX_CALLS_PER_UNIT:,.0f}",
                       f"lower call_rate to at most {MAX_CALLS_PER_UNIT / self.lines_per_unit:.3g}", at=("call_rate",))
        if self.market.leaving > self.baseline_churn:
            raise fail(f"market.leaving ({self.market.leaving:g}) is more than the tier's baseline_churn "
                       f"({self.baseline_churn:g}): our lines leaving the market are part of our churn",
                       "lower market.leaving to at most baseline_churn", at=("market", "leaving"))
        return self

    @property
    def lines_per_unit(self) -> float:
        """Mean lines of a deciding unit: 1 for a consumer tier, the mean account size otherwise."""
        if self.kind == "consumer":
            return 1.0
        if self.account_size is not None:
            return float(self.account_size.mean)
        return float(self.lines_per_account or 1)

    @property
    def line_growth_rate(self) -> float:
        """Share of an account's lines added a month (``line_growth``, by default ``partial_churn``)."""
        return self.partial_churn if self.line_growth is None else self.line_growth

    @property
    def line_count(self) -> int:
        """Lines in the tier at the start (accounts times their mean size for an enterprise tier)."""
        if self.kind == "consumer":
            assert self.lines is not None
            return self.lines
        assert self.accounts is not None
        return round(self.accounts * self.lines_per_unit)

    @property
    def unit_count(self) -> int:
        """Deciding units at the start: lines, or accounts for enterprise tiers."""
        return self.line_count if self.kind == "consumer" else int(self.accounts or 0)

    @property
    def monthly_revenue(self) -> float:
        return self.line_count * self.arpu


