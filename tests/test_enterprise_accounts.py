"""Enterprise accounts as they are: sizes that vary, decisions at the contract's end, lines between.

Each mechanism is checked against a figure computed by hand from the scenario (a lognormal's mean and
median, a binomial's mean and variance, the tender-month hazard that carries a cycle's churn, the
account manager's cost counted per account), then the tier as a whole against its stated churn and a
base that holds still.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim.accounts import account_sizes, move_lines
from sim.allocation import Allocation
from sim.base_at_rest import contract_renewal_rate
from sim.engine import Calibration, Simulation
from sim.population import build_population, stratified_uniforms
from sim.scenario import ScenarioError
from sim.streams import RandomStreams, seeded_per_tier

from .simulation_cases import from_text


def enterprise(*, accounts: int = 4000, size: str = "lines_per_account: 50", decides: str = "month",
               churn: float = 0.01, share: float = 1.0, term: int = 12, partial: float = 0.0, extra: str = "",
               sensitivity: str = "price_gap: 0, network_gap: 0, satisfaction: 0, complaints: 0, "
                                  "out_of_contract: 0, tenure: 0, competitor_pressure: 0",
               spread: float = 0.0, renewal: float = 0.0, horizon: int = 12, levers: str = "",
               allocation_budget: int = 0, second_tier: str = "") -> object:
    """One enterprise tier in a quiet market (no outage, no call), with what a test needs switched on."""
    return from_text(f"""
meta: {{name: accounts, horizon_months: {horizon}, periods: [{{name: P1, months: {horizon}}}]}}
market:
  us: M
  operators:
    M: {{network_quality: 0.85}}
    T: {{price_index: 0.9, network_quality: 0.8, lines: 300000}}
tiers:
  groups:
    kind: enterprise
    accounts: {accounts}
    {size}
    decides_at: {decides}
    partial_churn: {partial}
    arpu: 100
    baseline_churn: {churn}
    risk_spread: {spread}
    risk_renewal: {renewal}
    contract: {{share: {share}, term_months: {term}}}
    sensitivity: {{{sensitivity}}}
    call_rate: 0
{extra}{second_tier}
network:
  regions:
    all: {{share: 1.0, quality: 0.85, outages_per_month: 0}}
contact_center:
  staffing: [{{from_month: 1, agents: 1}}]
channels:
  calls: {{capacity_per_month: 100000}}
  managers: {{capacity_per_month: 100000}}
levers:
  credit: {{channel: calls, cost_per_contact: {{amount: 1, per: account}}, acceptance: 0.5, hazard_reduction: 0.5}}
{levers}
budget: {{total: {allocation_budget}}}
""")


def quiet_run(scenario, replication: int = 0, allocation: Allocation | None = None) -> Simulation:
    simulation = Simulation(scenario, allocation or Allocation.empty(), Calibration.quiet(scenario, 1), 1, replication,
                            outages=False, contact_center=False)
    simulation.run()
    return simulation


# --- account sizes --------------------------------------------------------------------------------------

def test_account_sizes_have_the_stated_mean_floor_and_median() -> None:
    scenario = enterprise(accounts=5000, size="account_size: {mean: 600, min: 500, spread: 1.0}")
    tier = scenario.tiers["groups"]
    assert tier.line_count == 3_000_000 and tier.lines_per_unit == 600.0
    state = build_population(scenario, seeded_per_tier(7), rest={})[0]
    lines = state.lines[: state.size].astype(float)
    # A lognormal excess of mean 100 and log-spread 1: standard deviation 100 * sqrt(e - 1) = 131 lines, so
    # the mean of 5,000 draws is within 3 * 131 / sqrt(5000) = 5.6 lines of 600 (stratified draws: closer).
    assert lines.mean() == pytest.approx(600.0, abs=3 * 100 * math.sqrt(math.e - 1) / math.sqrt(lines.size))
    assert lines.min() >= 500
    # The excess's median is exp(mu) = 100 / sqrt(e) = 60.7 lines.
    assert np.median(lines) == pytest.approx(500 + 100 / math.sqrt(math.e), abs=2.0)
    # Each account's revenue follows its size: the tier bills its drawn lines, not accounts times a size.
    assert state.active_lines() == int(lines.sum())


def test_account_sizes_do_not_depend_on_the_other_tiers() -> None:
    other = """
  shops:
    kind: enterprise
    accounts: 700
    account_size: {mean: 30, min: 10, spread: 0.6}
    arpu: 90
    baseline_churn: 0.012
"""
    alone = enterprise(size="account_size: {mean: 200, min: 100, spread: 0.7}")
    together = enterprise(size="account_size: {mean: 200, min: 100, spread: 0.7}", second_tier=other)
    lines = [next(s for s in build_population(sc, seeded_per_tier(3), rest={}) if s.name == "groups").lines[:4000]
             for sc in (alone, together)]
    np.testing.assert_array_equal(lines[0], lines[1])


def test_a_fixed_size_is_every_account_alike() -> None:
    tier = enterprise(size="lines_per_account: 50").tiers["groups"]
    assert (account_sizes(tier, stratified_uniforms(np.random.default_rng(1), 100)) == 50).all()


def test_two_sizes_stated_at_once_are_refused() -> None:
    with pytest.raises(ScenarioError, match="states its accounts' size twice"):
        enterprise(size="lines_per_account: 50\n    account_size: {mean: 60, min: 10}")
    with pytest.raises(ScenarioError, match="must be more than account_size.min"):
        enterprise(size="account_size: {mean: 400, min: 500}")


# --- decisions at the contract's end ----------------------------------------------------------------------

def test_accounts_leave_only_in_their_renewal_month_at_the_hand_computed_share() -> None:
    # Every account on a 12-month contract, no driver: the calibrated hazard is 0 inside a contract and h
    # in its last month, with h / 12 = the stated 1% a month, so h = 12%. In a year each account meets one
    # tender (contracts end evenly over months 1..12); the ones that stay sign a new term.
    scenario = enterprise(accounts=20_000, decides="renewal", churn=0.01, share=1.0, term=12)
    tier = scenario.tiers["groups"]
    assert contract_renewal_rate(tier) == 1.0
    calibration = Calibration.quiet(scenario, 1)
    hazard = 1 / (1 + math.exp(-calibration.hazards["groups"].base))
    assert hazard == pytest.approx(0.12, rel=0.01)
    simulation = Simulation(scenario, Allocation.empty(), calibration, 1, outages=False, contact_center=False)
    start = simulation.tiers[0].contract_end[:20_000].copy()
    records = simulation.run()
    state = simulation.tiers[0]
    first = state.uid[: state.size] < 20_000
    left = first & (state.status[: state.size] != 0)
    # Rows are in uid order and not yet compacted (under 15% left): row i is the starting account i.
    assert state.size >= 20_000 and state.compactions == 0
    np.testing.assert_array_equal(state.churn_month[: state.size][left], start[left[:20_000]])
    share = left.sum() / 20_000
    assert share == pytest.approx(0.12, abs=4 * math.sqrt(0.12 * 0.88 / 20_000))
    # The stayers signed the next contract in their tender month.
    stayed = first & ~left
    np.testing.assert_array_equal(state.contract_end[: state.size][stayed], start[stayed[:20_000]] + 12)
    monthly = pd.DataFrame(records.tier_months)
    assert monthly["expected_churn"].mean() == pytest.approx(0.01, rel=0.03)


def test_rolling_accounts_decide_every_month() -> None:
    # Half the accounts out of contract: they leave any month, the contract ones only at their tender.
    scenario = enterprise(accounts=20_000, decides="renewal", churn=0.01, share=0.5, term=12, horizon=6)
    simulation = Simulation(scenario, Allocation.empty(), Calibration.quiet(scenario, 1), 1, outages=False,
                            contact_center=False)
    start = simulation.tiers[0].contract_end[:20_000].copy()
    simulation.run()
    state = simulation.tiers[0]
    n = 20_000
    left = state.status[:n] != 0
    month = state.churn_month[:n]
    rolling = start < 1
    # A contract account leaves at its tender or later (staying on a rolling basis if it does not re-sign),
    # never before; the rolling ones leave in every month.
    assert (month[left & ~rolling] >= start[left & ~rolling]).all()
    assert len(np.unique(month[left & rolling])) == 6


# --- lines between renewals -------------------------------------------------------------------------------

def test_line_moves_are_binomial_with_the_stated_rates() -> None:
    streams = RandomStreams(4)
    n = 50_000
    lines = np.full(n, 600, dtype=np.int32)
    lost, added = move_lines(n, np.zeros(n, np.uint8), np.arange(n, dtype=np.int32), lines,
                             streams.salt("partial_churn", 1), 0.004, streams.salt("line_growth", 1), 0.01)
    # Binomial(600, p): mean 600 p, variance 600 p (1 - p).
    for counts, p in ((lost, 0.004), (added, 0.01)):
        mean, var = 600 * p, 600 * p * (1 - p)
        assert counts.mean() == pytest.approx(mean, abs=4 * math.sqrt(var / n))
        assert counts.var() == pytest.approx(var, rel=0.05)
    np.testing.assert_array_equal(lines, 600 - lost + added)


def test_partial_churn_cancels_the_stated_share_of_lines_and_the_base_holds() -> None:
    scenario = enterprise(accounts=4000, size="account_size: {mean: 200, min: 100, spread: 0.7}", churn=0.006,
                          partial=0.008, decides="renewal", share=0.9, term=24, horizon=24)
    simulation = quiet_run(scenario)
    m = pd.DataFrame(simulation.records.tier_months)
    staying = m["lines_start"] - (m["churned_lines"] - m["lines_cancelled"])
    rate = m["lines_cancelled"].sum() / staying.sum()
    # 4,000 accounts of 200 lines for 24 months: 19M line-months, a standard error of 0.0002% on 0.8%.
    assert rate == pytest.approx(0.008, rel=0.01)
    assert m["lines_added"].sum() / staying.sum() == pytest.approx(0.008, rel=0.01)
    # Cancelled lines are churned lines, gone out of the market; the lines added are gross adds.
    destinations = m[[c for c in m if c.startswith("churned_to_")]].sum(axis=1) + m["churned_out_of_market"]
    np.testing.assert_allclose(destinations, m["churned_lines"])
    adds = m["gross_adds_market_lines"] + m.get("gross_adds_won_lines", 0.0).fillna(0.0)
    lines = m["lines_start"].to_numpy()
    np.testing.assert_allclose(lines[1:], (m["lines_start"] - m["churned_lines"] + adds).to_numpy()[:-1])
    # Accounts leaving whole churn at the stated rate, and the lines hold still (within 1% in two years).
    assert m["expected_churn"].mean() == pytest.approx(0.006, abs=0.001)
    assert lines[-1] / lines[0] == pytest.approx(1.0, abs=0.01)


# --- the account manager, counted per account ---------------------------------------------------------------

MANAGER = """  manager:
    channel: managers
    cost_per_contact: {amount: 500, per: account}
    cost_per_line_month: {amount: 300, per: account}
    acceptance: 1.0
    hazard_reduction: 0.5
    duration_months: 6
    contract_extension_months: 6
"""


def test_the_account_manager_costs_accounts_covered_times_its_cost() -> None:
    scenario = enterprise(accounts=2000, size="account_size: {mean: 600, min: 500, spread: 1.0}", decides="renewal",
                          churn=0.008, share=0.9, term=36, levers=MANAGER, allocation_budget=1_000_000)
    tier, lever = scenario.tiers["groups"], scenario.levers["manager"]
    costs = lever.costs(tier)
    # Per account whatever its size: the curves, the LP and the simulation all read these numbers.
    assert (costs.contact, costs.month) == (500.0, 300.0)
    assert costs.per_offer == 500.0 + 300.0 * 6
    simulation = quiet_run(scenario, allocation=Allocation({("groups", "manager", "P1"): 400_000.0}))
    book = simulation.records.levers
    offers = sum(v for (t, lv, _), v in book.offers.items() if lv == "manager")
    accepted = sum(v for (t, lv, _), v in book.accepted.items() if lv == "manager")
    spend = sum(v for (t, lv, _), v in book.spend.items() if lv == "manager")
    assert offers > 0 and accepted == offers
    # Covered accounts are under contract while the manager works (the extension): none leaves before its
    # months are paid, so the spend is exactly the contacts plus six months per account covered.
    assert spend == pytest.approx(500.0 * offers + 300.0 * 6 * accepted, rel=1e-9)
    # Accounts, not lines: a tier of 2,000 accounts is offered at most 2,000 times.
    assert offers <= 2000


# --- the tier as a whole -------------------------------------------------------------------------------------

@pytest.mark.parametrize("decides", ["renewal", "month"])
def test_a_tier_of_accounts_at_rest_churns_at_its_stated_rate_every_year(decides: str) -> None:
    # Every driver on (tenure, own propensity renewed by life events, out of contract), sizes that vary,
    # lines moving between renewals: the base drawn at rest holds its churn and its lines for three years.
    scenario = enterprise(accounts=20_000, size="account_size: {mean: 200, min: 100, spread: 0.7}", decides=decides,
                          churn=0.008, share=1.0 if decides == "renewal" else 0.9, term=24, partial=0.006, spread=1.0, renewal=0.03, horizon=36,
                          sensitivity="price_gap: 0, network_gap: 0, satisfaction: 0, complaints: 0")
    rows = pd.concat([pd.DataFrame(quiet_run(scenario, r).records.tier_months) for r in range(2)])
    year = rows.assign(year=(rows["month"] - 1) // 12, leavers=rows["expected_churn"] * rows["units_start"])
    by_year = year.groupby("year")["leavers"].sum() / year.groupby("year")["units_start"].sum()
    assert abs(by_year.mean() - 0.008) < 0.001, by_year.round(5).tolist()
    assert by_year.min() > 0.95 * 0.008 and by_year.max() < 1.05 * 0.008, by_year.round(5).tolist()
    lines = rows.groupby("month")["lines_start"].mean()
    assert lines.iloc[-1] / lines.iloc[0] == pytest.approx(1.0, abs=0.01)


def test_proactive_offers_go_to_accounts_at_their_tender() -> None:
    # The churn model knows the contracts' dates: an account locked in its contract cannot leave, so the
    # offers go to the accounts tendering this month (a hundred a month here, of 333 tendering).
    lever = """  review:
    channel: managers
    cost_per_contact: {amount: 500, per: account}
    acceptance: 0.5
    hazard_reduction: 0.5
"""
    scenario = enterprise(accounts=4000, decides="renewal", churn=0.01, share=1.0, term=12, horizon=2, levers=lever,
                          allocation_budget=100_000, spread=1.0)
    simulation = Simulation(scenario, Allocation({("groups", "review", "P1"): 100_000.0}),
                            Calibration.quiet(scenario, 1), 1, outages=False, contact_center=False)
    start = simulation.tiers[0].contract_end[:4000].copy()
    simulation.run()
    offered = simulation.tiers[0].last_offer[:4000] > 0
    assert offered.sum() == pytest.approx(200, abs=30)
    np.testing.assert_array_equal(simulation.tiers[0].last_offer[:4000][offered], start[offered])
