"""The simulator responds in the direction a planner expects, under common random numbers.

Each comparison runs two variants of one scenario with the same seed and
replications, so both see the same outages, calls and churn draws: the
difference is the variant's effect, not noise.
"""

from __future__ import annotations

import pandas as pd
import pytest

from sim.allocation import Allocation
from sim.engine import Calibration, prepare
from sim.runner import simulate
from sim.scenario import Scenario, load_scenario

from .conftest import SCENARIOS

REPS = 4
SEED = 2026


@pytest.fixture(scope="module")
def small() -> Scenario:
    return load_scenario(SCENARIOS / "small.yaml")


@pytest.fixture(scope="module")
def calibration(small: Scenario) -> Calibration:
    """The small market's calibration, fitted once: the variants compared differ in what it ignores
    (campaigns, budgets, staffing, rivals' prices), so each pair shares it."""
    return prepare(small, SEED)


def churned(scenario: Scenario, allocation: Allocation | None = None, tiers: list[str] | None = None,
            calibration=None) -> float:
    result = simulate(scenario, allocation, seed=SEED, replications=REPS, calibration=calibration)
    monthly = result.monthly if tiers is None else result.monthly[result.monthly["tier"].isin(tiers)]
    return float(monthly["churned_lines"].sum())


def with_campaign_cut(scenario: Scenario, cut: float) -> Scenario:
    campaign = scenario.competitors.campaigns[0].model_copy(update={"price_cut": cut})
    return scenario.model_copy(update={"competitors": scenario.competitors.model_copy(update={"campaigns": (campaign,)})})


@pytest.mark.parametrize("shallow, deep", [(0.0, 0.10), (0.10, 0.25), (0.25, 0.40)])
def test_a_deeper_competitor_cut_does_not_lower_churn_in_targeted_tiers(small: Scenario, shallow, deep, calibration: Calibration) -> None:
    targeted = list(small.competitors.campaigns[0].tiers)
    low = churned(with_campaign_cut(small, shallow), tiers=targeted, calibration=calibration)
    high = churned(with_campaign_cut(small, deep), tiers=targeted, calibration=calibration)
    assert high >= low


@pytest.mark.parametrize("budget", [10_000, 30_000, 90_000])
def test_more_retention_budget_does_not_raise_churn(small: Scenario, budget: float, calibration: Calibration) -> None:

    def plan(amount: float) -> Allocation:
        return Allocation({("households", "bill_credit", "H1"): amount, ("households", "bill_credit", "H2"): amount,
                           ("prepaid", "data_bonus", "H1"): amount, ("key_a", "account_manager", "H1"): amount})

    less = churned(small, plan(budget), calibration=calibration)
    more = churned(small, plan(2 * budget), calibration=calibration)
    none = churned(small, Allocation.empty(), calibration=calibration)
    assert more <= less <= none


@pytest.mark.parametrize("agents", [3, 4, 6])
def test_more_agents_do_not_lengthen_waits(small: Scenario, agents: int, calibration: Calibration) -> None:

    def waits(n: int) -> float:
        staffed = small.model_copy(update={"contact_center": small.contact_center.model_copy(
            update={"staffing": (small.contact_center.staffing[0].model_copy(update={"agents": n}),)})})
        cc = simulate(staffed, seed=SEED, replications=REPS, calibration=calibration).contact_center
        return float((cc["mean_wait_minutes"] * cc["calls"]).sum() / cc["calls"].sum())

    assert waits(agents + 1) <= waits(agents)


def test_backfire_raises_churn_of_contacted_lines(small: Scenario, calibration: Calibration) -> None:
    plan = Allocation({("households", "bill_credit", "H1"): 60_000})
    lever = small.levers["bill_credit"]

    def variant(backfire: float) -> Scenario:
        return small.model_copy(update={"levers": {**small.levers, "bill_credit": lever.model_copy(
            update={"backfire": backfire})}})

    calm = churned(variant(0.0), plan, ["households"], calibration)
    angry = churned(variant(2.0), plan, ["households"], calibration)
    assert angry > calm


def test_churners_follow_the_cheapest_rival(small: Scenario, calibration: Calibration) -> None:
    # During U's cut, the targeted tiers' churners go to U more than before it.
    result = simulate(small, seed=SEED, replications=REPS, calibration=calibration)
    m = result.monthly[result.monthly["tier"].isin(["households", "prepaid"])]
    campaign = small.competitors.campaigns[0]
    during = m["month"].between(campaign.start_month, campaign.start_month + campaign.duration_months - 1)

    def share_to_u(rows: pd.DataFrame) -> float:
        return float(rows["churned_to_U"].sum() / rows["churned_lines"].sum())

    assert share_to_u(m[during]) > share_to_u(m[~during])


def test_strategies_share_their_outages(small: Scenario, calibration: Calibration) -> None:
    # Common random numbers: outages come from their own stream, whatever lines they hit and whoever
    # calls about them, so a strategy that keeps other accounts and lines meets the same outages.
    plan = Allocation({("key_a", "account_manager", "H1"): 60_000, ("households", "bill_credit", "H1"): 60_000})
    runs = [simulate(small, allocation, seed=SEED, replications=REPS, calibration=calibration)
            for allocation in (Allocation.empty(), plan)]
    assert not runs[0].monthly["churned_lines"].equals(runs[1].monthly["churned_lines"])
    when = ["replication", "month", "region", "start", "hours"]
    assert len(runs[0].outages) > 10
    pd.testing.assert_frame_equal(runs[0].outages[when], runs[1].outages[when])
