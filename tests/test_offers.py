"""Retention offers (sim.offers and the engine's use of them), each checked against a count or a case
worked out by hand: offers in proportion to money from a fraction of an offer up, a line keeping its
strongest offer, the tier's levers taking lines in the order of their effect per offer (not of their
names), a save running exactly the months it pays for, backfire at the decision after the contact,
costs as planners state them, launch costs in the feed, a complaints counter that cannot wrap, and a
churn model of the stated accuracy for a tier of a few dozen units.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim import kernels
from sim.allocation import LAUNCH, Allocation, AllocationError
from sim.engine import Calibration, Simulation, prepare
from sim.results import SimulationResult
from sim.targeting import auc

from .simulation_cases import from_text


def market(tiers: dict[str, int], levers: str, *, churn: float = 0.02, horizon: int = 6, extra: str = "",
           policy: str = "{max_offers_per_line: 1, per_months: 6}", spread: float = 0.0) -> object:
    """Consumer tiers of the given sizes with a constant hazard (no driver moves it), no joiners, no calls, no life events (each line keeps its propensity)."""
    tier_text = "".join(
        f"  {name}:\n    lines: {lines}\n    arpu: 100\n    margin: 0.5\n    baseline_churn: {churn}\n"
        f"    risk_spread: {spread}\n    risk_renewal: 0\n    call_rate: 0\n"
        f"    sensitivity: {{price_gap: 0, network_gap: 0, satisfaction: 0, complaints: 0, out_of_contract: 0,"
        f" tenure: 0, competitor_pressure: 0}}\n" for name, lines in tiers.items())
    text = f"""
meta: {{name: offers, horizon_months: {horizon}, periods: [{{name: P1, months: {horizon}}}], discount_rate_annual: 0}}
market:
  us: M
  operators:
    M: {{network_quality: 0.85}}
    T: {{price_index: 0.9, network_quality: 0.8, lines: 0, monthly_churn: 0.0}}
tiers:
{tier_text}network:
  regions:
    all: {{share: 1.0, quality: 0.85, outages_per_month: 0}}
contact_center:
  staffing: [{{from_month: 1, agents: 1}}]
channels:
  calls: {{capacity_per_month: 10000000}}
  desk: {{capacity_per_month: 10000000}}
levers:
{levers}
targeting: {{model_auc: 1.0, save_desk_reach: 1.0}}
budget: {{total: 1.0e9, contact_policy: {policy}}}
{extra}"""
    return from_text(text)


_QUIET: dict[int, tuple[object, Calibration]] = {}


def quiet(scenario) -> Calibration:  # type: ignore[no-untyped-def]
    """The scenario's quiet calibration, solved once per scenario (it depends on nothing else): a test of
    many replications then spends its time simulating them."""
    kept = _QUIET.get(id(scenario))
    if kept is None or kept[0] is not scenario:
        kept = _QUIET[id(scenario)] = (scenario, Calibration.quiet(scenario, 1))
    return kept[1]


def simulate(scenario, allocation: Allocation, replication: int = 0, months: int | None = None):  # type: ignore[no-untyped-def]
    calibration = quiet(scenario)
    simulation = Simulation(scenario, allocation, calibration, 11, replication, contact_center=False)
    records = simulation.run(months)
    return simulation, SimulationResult.from_records(records, replication)


def test_offers_are_in_proportion_to_money_from_a_fraction_of_an_offer_up() -> None:
    # Five tiers alike but for their cell's amount: 0.3, 1, 3, 10 and 40 offers' worth at the offer's expected
    # cost (a contact of 2 plus, at half the offers, an acceptance of 6: 5). Over replications each cell makes
    # its amount's worth of offers and commits its amount: the systematic rounding makes 0.3 of an offer one
    # offer three times in ten.
    worth = {"a": 0.3, "b": 1.0, "c": 3.0, "d": 10.0, "e": 40.0}
    levers = "  credit: {channel: calls, cost_per_contact: 2, cost_per_acceptance: 6, acceptance: 0.5, hazard_reduction: 0.3}"
    scenario = market({t: 400 for t in worth}, levers)
    cost = scenario.levers["credit"].cost_per_offer(scenario.tiers["a"])
    assert cost == pytest.approx(5.0)
    allocation = Allocation({(t, "credit", "P1"): w * cost for t, w in worth.items()})
    reps = 160
    offers: dict[str, list[float]] = {t: [] for t in worth}
    committed: dict[str, list[float]] = {t: [] for t in worth}
    months: list[float] = []
    for r in range(reps):
        _, outcome = simulate(scenario, allocation, r)
        cells = outcome.cells.set_index("tier")
        for t in worth:
            offers[t].append(float(cells["offers"].get(t, 0.0)))
            committed[t].append(float(cells["committed"].get(t, 0.0)))
        levers_table = outcome.levers[outcome.levers["offers"] > 0]
        months += list(np.repeat(levers_table["month"], levers_table["offers"].astype(int)))
    for t, w in worth.items():
        # The count is the amount's whole part plus one more with the fraction's probability.
        assert set(offers[t]) <= {math.floor(w), math.floor(w) + 1}, t
        for figure, target in ((offers[t], w), (committed[t], w * cost)):
            mean, se = np.mean(figure), np.std(figure, ddof=1) / math.sqrt(reps)
            assert abs(mean - target) < 4 * se + 0.02 * target, (t, mean, target, se)
    # Offers are spread evenly over the period's six months, not kept for its end.
    assert np.mean(months) == pytest.approx(3.5, abs=0.3)


def test_a_line_keeps_its_strongest_offer() -> None:
    # Every line takes every offer (acceptance 1). Month 1: the weak offer (odds x0.8, 6 months) to all;
    # month 2: the strong one (odds x0.4, 2 months) to as many as half of them. A line on the strong offer
    # is never offered the weak one again, and none is offered the same offer while it runs.
    levers = ("  weak: {channel: calls, cost_per_contact: 1, acceptance: 1, hazard_reduction: 0.2, duration_months: 6}\n"
              "  strong: {channel: calls, cost_per_contact: 1, acceptance: 1, hazard_reduction: 0.6, duration_months: 2}")
    scenario = market({"t": 1000}, levers, churn=0.001, policy="{max_offers_per_line: 6, per_months: 6}",
                      horizon=6).model_copy()
    periods = ({"name": "M1", "months": 1}, {"name": "M2", "months": 1}, {"name": "M3", "months": 4})
    meta = scenario.meta.model_copy(update={"periods": tuple(scenario.meta.periods[0].model_copy(update=p)
                                                             for p in periods)})
    scenario = scenario.model_copy(update={"meta": meta})
    allocation = Allocation({("t", "weak", "M1"): 2_000.0, ("t", "strong", "M2"): 500.0,
                             ("t", "weak", "M3"): 5_000.0})
    simulation, outcome = simulate(scenario, allocation)
    state = simulation.tiers[0]
    made = outcome.levers.set_index(["lever", "month"])["offers"]
    assert made[("weak", 1)] == pytest.approx(state.size * 1.0, rel=0.01)   # everyone, once
    assert made[("strong", 2)] == pytest.approx(500, abs=1)                  # half of them
    # Months 3-6: the weak offer only reaches lines whose strong offer has ended (month 3 on: after month 3)
    # and never a line whose weak offer still runs (all others run until month 6).
    later = outcome.levers.query("lever == 'weak' and month >= 3")
    assert later["offers"].sum() == pytest.approx(500, abs=1)
    assert set(later.loc[later["offers"] > 0, "month"]) == {4}


def test_the_tiers_levers_take_lines_by_effect_per_offer_not_by_name() -> None:
    # "aaa" sorts first but removes less churn per offer (0.5 x 0.2 x 3 = 0.3) than "zzz" (0.5 x 0.4 x 6 = 1.2):
    # with a perfect churn model, "zzz" must take the riskiest lines.
    levers = ("  aaa: {channel: calls, cost_per_contact: 1, acceptance: 0.5, hazard_reduction: 0.2, duration_months: 3}\n"
              "  zzz: {channel: calls, cost_per_contact: 1, acceptance: 0.5, hazard_reduction: 0.4, duration_months: 6}")
    scenario = market({"t": 20_000}, levers, spread=1.0, horizon=1)
    assert scenario.levers["zzz"].effect_per_offer > scenario.levers["aaa"].effect_per_offer
    allocation = Allocation({("t", "aaa", "P1"): 2_000.0, ("t", "zzz", "P1"): 2_000.0})
    simulation, _ = simulate(scenario, allocation, months=1)
    state = simulation.tiers[0]
    n = state.size
    offered = state.last_offer[:n] == 1
    on = state.effect_lever[:n] & 127
    accepted = state.effect_until[:n] >= 1
    risk = state.propensity[:n].astype(float)
    numbers = {name: i for i, name in enumerate(scenario.levers)}
    strong = risk[accepted & (on == numbers["zzz"])]
    weak = risk[accepted & (on == numbers["aaa"])]
    assert offered.sum() == 4_000 and len(strong) and len(weak)
    # Every line zzz reached is at least as risky as every line aaa reached (a perfect model ranks by risk).
    assert strong.min() >= weak.max()


def test_a_save_runs_the_months_it_pays_for() -> None:
    # Every line asking to leave reaches the desk and accepts a discount of 30% of its bill (100) for 3 months
    # that stops its churn outright. It stays that month and is billed 3 more months at the discount; in the
    # 4th month after the save it may leave again.
    levers = ("  save: {channel: desk, mode: save_desk, cost_per_line_month: {share_of_arpu: 0.3}, acceptance: 1,"
              " hazard_reduction: 1.0, duration_months: 3}")
    scenario = market({"t": 3000}, levers, churn=0.1, horizon=12)
    assert scenario.levers["save"].costs(scenario.tiers["t"]).month == pytest.approx(30.0)
    simulation, outcome = simulate(scenario, Allocation({("t", "save", "P1"): 1.0e6}))
    state = simulation.tiers[0]
    n = state.size
    saved = (state.effect_lever[:n] & 128) > 0
    save_month = state.last_offer[:n][saved].astype(int)
    left = state.churn_month[:n][saved].astype(int)
    gone = state.status[:n][saved] > 0
    assert saved.sum() > 100
    assert (left[gone] > save_month[gone] + 3).all()        # no saved line leaves within its 3 paid months
    assert (state.effect_until[:n][saved] == save_month + 3).all()
    # Each save pays 3 months of 30 (those past the horizon booked in its last month), and nothing else.
    accepted = outcome.levers["accepted"].sum()
    assert outcome.levers["spend"].sum() == pytest.approx(accepted * 90.0)


def test_backfire_acts_at_the_decision_after_the_contact() -> None:
    # Nobody accepts; a decline multiplies the odds of leaving by 10 at the billing of the month of the contact.
    levers = "  call: {channel: calls, cost_per_contact: 1, acceptance: 0, hazard_reduction: 0.5, backfire: 9}"
    scenario = market({"t": 40_000}, levers, churn=0.01, horizon=2)
    simulation, outcome = simulate(scenario, Allocation({("t", "call", "P1"): 20_000.0}))
    state = simulation.tiers[0]
    n = state.size
    contacted = state.last_offer[:n] == 1
    assert contacted.sum() == 10_000  # half the period's offers in its first month
    odds = 0.01 / 0.99 * 10
    month1 = (state.churn_month[:n] == 1)
    assert month1[contacted].mean() == pytest.approx(odds / (1 + odds), abs=0.01)
    assert month1[~contacted].mean() == pytest.approx(0.01, abs=0.003)
    # The month after, the contacted who stayed churn as everyone else.
    stayed = contacted & ~month1
    assert (state.churn_month[:n][stayed] == 2).mean() == pytest.approx(0.01, abs=0.003)


def test_costs_as_planners_state_them() -> None:
    text = """
  manager: {channel: calls, cost_per_contact: {amount: 500, per: account},
            cost_per_acceptance: {amount: 20, per: line}, cost_per_line_month: {share_of_arpu: 0.1},
            acceptance: 0.5, hazard_reduction: 0.5, duration_months: 4}"""
    scenario = market({"mass": 100}, "  credit: {channel: calls, cost_per_contact: 2, acceptance: 0.5, hazard_reduction: 0.3}"
                      + text, extra="")
    corp = scenario.tiers["mass"].model_copy(update={"kind": "enterprise", "lines": None, "accounts": 10,
                                                     "lines_per_account": 30})
    costs = scenario.levers["manager"].costs(corp)
    assert costs.contact == 500                      # per account
    assert costs.acceptance == 20 * 30               # per line of the account
    assert costs.month == pytest.approx(0.1 * 100 * 30)  # a tenth of the account's monthly bill
    assert costs.per_offer == pytest.approx(500 + 0.5 * (600 + 300 * 4))


def test_launch_costs_are_rows_of_the_feed_and_read_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    levers = "  credit: {channel: calls, cost_per_contact: 2, acceptance: 0.5, hazard_reduction: 0.3, launch_cost: 700}"
    scenario = market({"t": 100}, levers)
    allocation = Allocation({("t", "credit", "P1"): 1_000.0})
    feed = allocation.feed(scenario)
    assert feed.to_dict("records")[-1] == {"tier": LAUNCH, "lever": "credit", "period": "P1", "amount": 700.0,
                                           "policy": ""}
    assert allocation.spend(scenario) == 1_700.0
    path = tmp_path / "allocation.csv"
    allocation.to_csv(path, scenario)
    assert Allocation.read_csv(path, scenario) == allocation
    path.write_text("tier,lever,period,amount\nt,credit,P1,1000\n(launch),credit,P1,500\n", encoding="utf-8")
    with pytest.raises(AllocationError, match="the launch cost of 'credit' is 700.00"):
        Allocation.read_csv(path, scenario)
    _, outcome = simulate(scenario, allocation)
    assert outcome.launches[["month", "lever", "period", "spend"]].to_dict("records") == [
        {"month": 1, "lever": "credit", "period": "P1", "spend": 700.0}]


def test_the_complaints_counter_saturates_and_ages_out_exactly() -> None:
    # One account calls 300 times in a month and complains every time: the one-byte counter stops at 255,
    # and only the complaints it holds are logged to age out, so it returns to 0, not to a wrapped count.
    complaints = np.zeros(1, np.uint8)
    satisfaction = np.ones(1, np.float32)
    waits, gone = np.array([1.0]), np.array([False])
    logged, settled, _, _, count, _ = kernels.settle_calls(
        np.array([0]), np.array([300], np.int32), np.array([7], np.int32), np.array([1], np.uint64), waits, gone,
        np.array([0, 1]), np.uint64(2), 0.0, satisfaction, complaints, np.uint64(2**32 - 1), np.uint64(0),
        0.0, 0.0, 0.0, 600.0, 1.0)
    assert settled == 300 and count == 300
    assert complaints[0] == 255 and logged.size == 255
    np.subtract.at(complaints, logged, 1)
    assert complaints[0] == 0


def test_a_tier_of_a_few_dozen_units_gets_the_stated_model_accuracy() -> None:
    # 30 accounts are too few to solve the model's noise on: they are drawn many times over instead, and
    # the model ranks them with the stated AUC, not perfectly.
    scenario = market({"mass": 20_000}, "  credit: {channel: calls, cost_per_contact: 2, acceptance: 0.5, hazard_reduction: 0.3}",
                      spread=1.0)
    small = scenario.tiers["mass"].model_copy(update={"kind": "enterprise", "lines": None, "accounts": 30,
                                                      "lines_per_account": 10})
    scenario = scenario.model_copy(update={"tiers": {**scenario.tiers, "few": small},
                                           "targeting": scenario.targeting.model_copy(update={"model_auc": 0.75})})
    noise = prepare(scenario, 3).ranking_noise
    assert 0 < noise["few"] < math.inf
    # The model's AUC on a large draw of such units, with that noise, is the stated one.
    rng = np.random.default_rng(4)
    logits = rng.normal(math.log(0.02 / 0.98), 1.0, 200_000)
    churned = rng.random(logits.size) < 1 / (1 + np.exp(-logits))
    assert auc(logits + noise["few"] * rng.standard_normal(logits.size), churned) == pytest.approx(0.75, abs=0.02)
