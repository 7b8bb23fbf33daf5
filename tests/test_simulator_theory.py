"""The simulator against independent truth: survival curves, queueing theory, conservation laws."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim.allocation import Allocation
from sim.calibration_cache import calibrated
from sim.engine import Simulation, prepare, reference_conditions
from sim.scale import tier_scale
from sim.queue import erlang_c, serve_in_order, simulate_queue, stationary_state
from sim.results import SimulationResult
from sim.runner import simulate
from sim.scenario import load_scenario
from sim.streams import RandomStreams
from sim.targeting import ModelScores, auc, noise_for_auc, rank_scores, top_scored

from .conftest import SCENARIOS
from .simulation_cases import constant_hazard


def test_constant_hazard_survival_follows_the_geometric_curve() -> None:
    # With no driver at all, a line survives t months with probability (1 - h)^t.
    h, lines, horizon = 0.03, 200_000, 24
    scenario = constant_hazard(h, lines, horizon)
    calibration = prepare(scenario, seed=5)
    records = Simulation(scenario, Allocation.empty(), calibration, seed=5).run()
    monthly = pd.DataFrame(records.tier_months)
    survivors = np.append(monthly["lines_start"].to_numpy()[1:], (monthly["lines_start"] - monthly["churned_lines"]).iloc[-1])
    for t, alive in enumerate(survivors, start=1):
        expected = (1 - h) ** t
        sd = math.sqrt(expected * (1 - expected) / lines)
        assert abs(alive / lines - expected) < 4 * sd, (t, alive / lines, expected)


def test_calibration_solves_the_base_exactly_without_drivers() -> None:
    scenario = constant_hazard(0.017, 10_000, 6)
    hazard = prepare(scenario, seed=1).hazards["mass"]
    assert 1 / (1 + math.exp(-hazard.base)) == pytest.approx(0.017, rel=1e-6)


@pytest.mark.parametrize("utilisation, calls", [(0.7, 600_000), (0.8, 1_200_000), (0.9, 2_500_000)],
                         ids=["rho=0.7", "rho=0.8", "rho=0.9"])
def test_hotline_queue_matches_erlang_c(utilisation: float, calls: int) -> None:
    # M/M/c without abandonment: the simulated queue's long-run waits against the Erlang C formula.
    agents, handling = 10, 5.0
    rate = utilisation * agents / handling
    outcome = simulate_queue(rate, agents, handling, None, calls / rate, np.random.default_rng(20261122),
                             warmup_minutes=500.0)
    p_wait, mean_wait = erlang_c(rate, agents, handling)
    assert np.mean(outcome.waits > 0) == pytest.approx(p_wait, rel=0.05)
    assert np.mean(outcome.waits) == pytest.approx(mean_wait, rel=0.05)
    # The reported sampling error is honest: the deviation is within a few standard errors.
    assert abs(np.mean(outcome.waits) - mean_wait) < 4 * outcome.mean_wait_se()


def test_erlang_c_formula_on_a_hand_computed_case() -> None:
    # Two agents, load 1 Erlang: B(2, 1) = 0.2, C = 0.2 / (1 - 0.5 + 0.5 * 0.2) = 1/3, Wq = C * h / (c - a).
    p_wait, mean_wait = erlang_c(arrivals_per_minute=0.2, agents=2, handling_minutes=5.0)
    assert p_wait == pytest.approx(1 / 3)
    assert mean_wait == pytest.approx((1 / 3) * 5.0 / (2 - 1))


@pytest.mark.parametrize("utilisation", [0.7, 0.9])
def test_the_long_run_state_matches_erlang_c(utilisation: float) -> None:
    # Without abandonment, the long-run chance that every agent is busy is Erlang C, and the mean
    # number waiting is Little's law on its mean wait: Lq = lambda * Wq.
    agents, handling = 10, 5.0
    rate = utilisation * agents / handling
    rng = np.random.default_rng(8)
    states = [stationary_state(rate, agents, handling, None, rng) for _ in range(20_000)]
    all_busy = np.array([s.busy.size == agents for s in states])
    waiting = np.array([s.waiting_patience.size for s in states], dtype=float)
    p_wait, mean_wait = erlang_c(rate, agents, handling)
    assert abs(all_busy.mean() - p_wait) < 4 * math.sqrt(p_wait * (1 - p_wait) / all_busy.size)
    assert abs(waiting.mean() - rate * mean_wait) < 4 * waiting.std() / math.sqrt(waiting.size)
    # Every agent's work left is exponential with the handling mean (memoryless).
    busy = np.concatenate([s.busy for s in states])
    assert busy.mean() == pytest.approx(handling, rel=0.02)
    assert stationary_state(2.0, agents, handling, None, rng) is None  # 10 Erlangs on 10 agents: none


def test_a_queue_opened_in_its_long_run_state_has_no_warm_up_bias() -> None:
    # Callers of short windows opened in a long-run draw, pooled, already wait as Erlang C says (a
    # Poisson caller at any moment of the window sees the long-run state), where windows opened on an
    # empty queue make them wait far less.
    agents, handling, rate = 10, 5.0, 1.8
    p_wait, mean_wait = erlang_c(rate, agents, handling)
    rng = np.random.default_rng(9)
    waits = np.concatenate([simulate_queue(rate, agents, handling, None, 3.0, rng, stationary=True).waits
                            for _ in range(6_000)])
    assert np.mean(waits > 0) == pytest.approx(p_wait, abs=0.02)
    assert np.mean(waits) == pytest.approx(mean_wait, rel=0.1)
    cold = np.concatenate([simulate_queue(rate, agents, handling, None, 3.0, rng).waits for _ in range(500)])
    assert np.mean(cold) < 0.2 * mean_wait


def test_a_window_opened_in_its_long_run_state_ends_in_it() -> None:
    # The long-run law is stationary: short windows that open in it end in it too, busy agents and
    # waiting callers included, whoever of them was there from the start. Mean number in the system:
    # L = lambda * (Wq + handling), Little's law with Erlang C's Wq.
    agents, handling, rate = 10, 5.0, 1.8
    _, mean_wait = erlang_c(rate, agents, handling)
    rng = np.random.default_rng(11)
    ends = [simulate_queue(rate, agents, handling, None, 1.0, rng, stationary=True).end for _ in range(6_000)]
    in_system = np.array([e.busy.size + e.waiting_patience.size for e in ends], dtype=float)
    expected = rate * (mean_wait + handling)
    assert abs(in_system.mean() - expected) < 4 * in_system.std() / math.sqrt(in_system.size), expected


def test_impatient_long_run_state_matches_a_long_queue() -> None:
    # With abandonment (no closed form used here): the long-run draw's chance that a caller must wait,
    # against the share of callers who waited in one long simulated queue.
    agents, handling, patience, rate = 10, 5.0, 2.0, 2.4
    rng = np.random.default_rng(10)
    long_run = simulate_queue(rate, agents, handling, patience, 200_000.0, rng, warmup_minutes=100.0)
    states = [stationary_state(rate, agents, handling, patience, rng) for _ in range(20_000)]
    all_busy = np.mean([s.busy.size == agents for s in states])
    # PASTA: Poisson callers see the long-run state, so the share who wait is P(all agents busy).
    assert np.mean(long_run.waits > 0) == pytest.approx(all_busy, abs=0.015)


def _first_come_first_served(arrivals, service, patience, agents, busy=()):
    # An independent recursion: each caller takes the agent that frees first, unless their wait
    # would exceed their patience, in which case they leave and take no agent.
    import heapq

    free = sorted(list(busy) + [0.0] * (agents - len(busy)))
    waits, gone = np.zeros(arrivals.size), np.zeros(arrivals.size, dtype=bool)
    for i, t in enumerate(arrivals):
        wait = max(0.0, free[0] - t)
        if patience is not None and wait > patience[i]:
            waits[i], gone[i] = patience[i], True
            continue
        waits[i] = wait
        heapq.heapreplace(free, t + wait + service[i])
    return waits, gone


@pytest.mark.parametrize("patience_minutes", [None, 0.5, 3.0], ids=["patient", "impatient", "usual"])
def test_the_queue_serves_exactly_as_first_come_first_served(patience_minutes) -> None:
    rng = np.random.default_rng(17)
    arrivals = np.sort(rng.random(20_000)) * 2_000.0       # 10 calls a minute on 50 agents: busy
    service = rng.exponential(5.0, arrivals.size)
    patience = rng.exponential(patience_minutes, arrivals.size) if patience_minutes else None
    waits, gone = serve_in_order(arrivals, service, patience, agents=50)
    expected_waits, expected_gone = _first_come_first_served(arrivals, service, patience, 50)
    np.testing.assert_allclose(waits, expected_waits, atol=1e-9)
    np.testing.assert_array_equal(gone, expected_gone)
    assert (gone.any() or patience is None) and (waits > 0).any()
    # Agents busy at the start (some freeing at the same moment) take nobody until they are free.
    busy = np.concatenate([rng.exponential(5.0, 40), np.full(5, 2.5)])
    waits, gone = serve_in_order(arrivals, service, patience, agents=50, busy=busy)
    expected_waits, expected_gone = _first_come_first_served(arrivals, service, patience, 50, busy)
    np.testing.assert_allclose(waits, expected_waits, atol=1e-9)
    np.testing.assert_array_equal(gone, expected_gone)


def test_impatient_callers_abandon_and_queue_never_overflows() -> None:
    outcome = simulate_queue(3.0, 10, 5.0, 2.0, 20_000.0, np.random.default_rng(3), warmup_minutes=100)
    # Overloaded (load 15 Erlangs on 10 agents): the abandoning share carries the excess,
    # at least 1 - c/a = 1/3 of callers, and no wait of an abandoner exceeds what patience allows.
    assert outcome.abandoned.mean() == pytest.approx(1 - 10 / 15, abs=0.05)
    assert outcome.waits[~outcome.abandoned].max() < 60


@pytest.fixture(scope="module")
def small_run() -> tuple:
    scenario = load_scenario(SCENARIOS / "small.yaml")
    allocation = Allocation({("households", "bill_credit", "H1"): 40_000, ("households", "data_bonus", "H2"): 30_000,
                             ("key_a", "account_manager", "H1"): 15_000, ("prepaid", "data_bonus", "H1"): 25_000})
    calibration = prepare(scenario, seed=11)
    simulation = Simulation(scenario, allocation, calibration, seed=11)
    result = SimulationResult.from_records(simulation.run(), 0)
    return scenario, allocation, simulation, result


def test_lines_are_conserved_per_tier_and_month(small_run) -> None:
    _, _, _, result = small_run
    for tier, rows in result.monthly.groupby("tier"):
        rows = rows.sort_values("month")
        start, churn, adds = (rows[c].to_numpy() for c in ("lines_start", "churned_lines", "gross_adds_lines"))
        np.testing.assert_allclose(start[1:], start[:-1] - churn[:-1] + adds[:-1], err_msg=tier)


def test_churners_are_split_exactly_over_destinations(small_run) -> None:
    _, _, _, result = small_run
    m = result.monthly
    # Every leaver goes to a rival or out of the market, and the segment's lines leaving the market do.
    destinations = m[[c for c in m.columns if c.startswith("churned_to_")]].sum(axis=1) + m["churned_out_of_market"]
    np.testing.assert_allclose(destinations, m["churned_lines"])
    assert m["churned_out_of_market"].sum() > 0


def test_money_paid_is_money_committed(small_run) -> None:
    """Conservation of money: what the months pay (contacts, acceptances, every month an offer runs on an
    active line, and what runs beyond the horizon) is what the cells committed, less the months of
    lines that left or took a better offer."""
    _, allocation, _, result = small_run
    paid = result.levers["spend"].sum()
    committed = result.cells["committed"].sum()
    assert paid > 0
    np.testing.assert_allclose(paid, committed, rtol=1e-9)
    # The monthly costs are paid from a count of the offers running kept as offers start and stop; at the
    # end it must be what the rows say.
    simulation = small_run[2]
    month = simulation.scenario.meta.horizon_months + 1
    for state in simulation.tiers:
        n = state.size
        on = (state.status[:n] == 0) & (state.effect_until[:n] >= month)
        by_lever = np.bincount(state.effect_lever[:n][on] & 127, minlength=state.running.shape[0])
        np.testing.assert_array_equal(state.running[:, month:].sum(axis=1), by_lever, err_msg=state.name)
    # The cells spend their amounts (each in expectation; here within a few offers' cost).
    per_cell = result.cells.set_index(["tier", "lever", "period"])
    for cell, row in per_cell.iterrows():
        assert row["committed"] == pytest.approx(allocation.amount(*cell), rel=0.25), cell


def test_an_accounts_lines_leave_together(small_run) -> None:
    scenario, _, simulation, result = small_run
    state = next(s for s in simulation.tiers if s.name == "key_a")
    assert state.account_of_line is not None
    line_status = state.status[state.account_of_line]
    line_month = state.churn_month[state.account_of_line]
    per_account = pd.DataFrame({"account": state.account_of_line, "status": line_status, "month": line_month})
    assert (per_account.groupby("account")[["status", "month"]].nunique() == 1).all().all()
    churned = result.monthly.query("tier == 'key_a'")["churned_lines"]
    assert (churned % scenario.tiers["key_a"].lines_per_account == 0).all()


def test_save_desk_keeps_lines_asking_to_leave() -> None:
    scenario = load_scenario(SCENARIOS / "baseline.yaml")
    scenario = scenario.model_copy(update={"run": scenario.run.model_copy(update={"scale": 0.02})})
    calibration = prepare(scenario, seed=3)
    desk = Allocation({("households", "save_desk_discount", "Y1"): 200_000})
    result = SimulationResult.from_records(Simulation(scenario, desk, calibration, seed=3).run(months=6), 0)
    households = result.monthly.query("tier == 'households'")
    assert households["saves"].sum() > 0
    spend = result.levers.query("lever == 'save_desk_discount'")["spend"].sum()
    assert 0 < spend <= 200_000 * (1 + 1e-9)


def test_random_streams_do_not_depend_on_each_other() -> None:
    alone = RandomStreams(42, 3)["churn"].random(5)
    crowded = RandomStreams(42, 3)
    crowded["outages"].random(100)
    crowded["a_new_source"].random(100)
    np.testing.assert_array_equal(crowded["churn"].random(5), alone)
    assert not np.array_equal(RandomStreams(42, 4)["churn"].random(5), alone)


def test_auc_against_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 60).astype(float)   # ties on purpose
    labels = rng.random(60) < 0.3
    pos, neg = scores[labels], scores[~labels]
    pairwise = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auc(scores, labels) == pytest.approx(pairwise)


@pytest.mark.parametrize("target", [0.5, 0.65, 0.75])
def test_churn_model_ranks_with_the_stated_auc(target: float) -> None:
    rng = np.random.default_rng(8)
    logits = rng.normal(-4.0, 1.0, 200_000)
    noise = noise_for_auc(logits, target, rng)
    churned = rng.random(logits.size) < 1 / (1 + np.exp(-logits))
    model_error = np.clip(np.rint(rng.standard_normal(logits.size) * 32), -127, 127).astype(np.int8)
    realized = auc(np.asarray(rank_scores(logits.astype(np.float32), noise, model_error, 1 / 32), dtype=float), churned)
    assert realized == pytest.approx(target, abs=0.015)


@pytest.mark.parametrize("noise", [0.0, 1.5, math.inf], ids=["exact", "blurred", "random"])
def test_offers_go_to_the_best_scored_units_the_policy_allows(noise: float) -> None:
    # The short list through a sampled threshold picks exactly what a full sort of every eligible row
    # picks: the k best scores among active units not offered too recently, ties in their keyed order.
    scenario = constant_hazard(0.01, 400_000, 3)
    state = Simulation(scenario, Allocation.empty(), prepare(scenario, seed=3), seed=3).tiers[0]
    rng = np.random.default_rng(12)
    state.status[: state.size] = rng.random(state.size) < 0.1
    state.last_offer[: state.size] = np.where(rng.random(state.size) < 0.2, 4, -100)
    state.satisfaction[: state.size] = rng.choice(np.float32([0.5, 0.6, 0.7]), state.size)  # many ties
    # Running offers: lever 0 (odds x0.6) until month 8, lever 1 (a save, odds x0.3) until month 6.
    on = rng.choice(3, state.size, p=[0.8, 0.1, 0.1])
    state.effect_until[: state.size] = np.where(on == 1, 8, np.where(on == 2, 6, -32000))
    state.effect_lever[: state.size] = np.where(on == 2, 1 | 128, 0)
    log_odds, cuts = np.float32([math.log(0.6), math.log(0.3)]), np.float32([0.4, 0.7])
    coef = np.array([-4.0, -2.0, 0.7, -0.01, 0.125, 0.3])
    # At month 6 both still run; with the strongest offer on the table cutting the hazard by 0.5, units on
    # the first (0.4) may get one, units on the second (0.7) may not.
    scores = ModelScores(state, coef, np.zeros(1), log_odds, cuts, 6, noise, 1 / 32, offered_by=3, most=0.5,
                         tie_salt=np.uint64(99))
    rows = np.arange(state.size)
    n = state.size
    eligible = rows[(state.status[:n] == 0) & (state.last_offer[:n] <= 3) & (on != 2)]
    np.testing.assert_allclose(scores.strength(rows), np.select([on == 1, on == 2], [0.4, 0.7], -1.0), rtol=1e-6)
    # The model sees the offer a unit is on: its score is its logit plus the offer's log-odds.
    if not math.isinf(noise):
        plain = ModelScores(state, coef, np.zeros(1), np.zeros(2, np.float32), cuts, 6, noise, 1 / 32,
                            offered_by=3, most=0.5, tie_salt=np.uint64(99))
        np.testing.assert_allclose(scores.at(rows) - plain.at(rows), np.select([on == 1, on == 2], log_odds, 0.0),
                                   atol=1e-5)
    shift = int(state.size - 1).bit_length()  # the tie bits the ranking keys keep: 32 - shift
    kept_ties = scores.ties(eligible) >> np.uint32(shift)
    by_rank = eligible[np.lexsort((eligible, kept_ties, -scores.at(eligible).astype(np.float64)))]
    for k in (1, 300, 19_000, 40_000):  # the last takes the full sort (more than a twentieth)
        np.testing.assert_array_equal(top_scored(scores, k), by_rank[:k])


def test_a_random_model_offers_to_every_region_alike() -> None:
    # A model of AUC 0.5 scores by its error alone, a few hundred distinct values: many units tie at
    # the cut-off. Rows are grouped by region, so ties must not go by row: of the units tied at the
    # cut-off score, each region sees the same share chosen, within binomial error.
    scenario = constant_hazard(0.01, 400_000, 3)
    state = Simulation(scenario, Allocation.empty(), prepare(scenario, seed=3), seed=3).tiers[0]
    regions = np.arange(state.size) * 4 // state.size  # four regions, grouped as a batch's rows are
    scores = ModelScores(state, np.zeros(6), np.zeros(4), np.zeros(1, np.float32), np.zeros(1, np.float32), 1,
                         math.inf, 1 / 32, offered_by=0, most=1.0, tie_salt=np.uint64(7))
    all_scores = scores.at(np.arange(state.size))
    k = state.size // 2
    chosen = np.zeros(state.size, dtype=bool)
    chosen[top_scored(scores, k)] = True
    cut = all_scores[chosen].min()
    tied = all_scores == cut
    share = chosen[tied].mean()
    assert 0.1 < share < 0.9 and tied.sum() > 1_000  # the cut-off splits a large tie
    for region in np.unique(regions):
        at = tied & (regions == region)
        assert abs(chosen[at].mean() - share) < 5 * math.sqrt(share * (1 - share) / at.sum()), region


@pytest.mark.slow
def test_calibration_reproduces_stated_churn_on_the_baseline(shared_fits) -> None:
    # Baseline conditions (normal outages and calls, list prices, no campaign or offer) over many
    # replications: each tier's mean monthly hazard within 0.1 pp of its stated churn, and the realized
    # churn of the large tiers too (within 0.1 pp and three binomial standard errors of the hazard).
    scenario = load_scenario(SCENARIOS / "baseline.yaml")
    with shared_fits():
        calibration = calibrated(scenario, scenario.run.seed)
    quiet = reference_conditions(scenario, scale=0.25)
    rows = []
    for replication in range(8):
        simulation = Simulation(quiet, Allocation.empty(), calibration, seed=1234, replication=replication)
        rows += simulation.run(months=6).tier_months
    monthly = pd.DataFrame(rows)
    for tier, frame in monthly.groupby("tier"):
        stated = scenario.tiers[tier].baseline_churn
        hazard = float(np.average(frame["expected_churn"], weights=frame["units_start"]))
        assert abs(hazard - stated) < 0.001, (tier, hazard, stated)
        units = frame["units_start"].sum() * tier_scale(scenario.tiers[tier], 0.25)  # simulated unit-months
        realized = frame["churned_units"].sum() / frame["units_start"].sum()
        if units >= 100_000:
            assert abs(realized - stated) < 0.001, (tier, realized, stated)
            assert abs(realized - hazard) < 3 * math.sqrt(hazard / units), (tier, realized, hazard)


def test_replications_differ_and_share_nothing_but_the_seed() -> None:
    scenario = load_scenario(SCENARIOS / "small.yaml")
    result = simulate(scenario, replications=2, seed=4)
    a, b = (result.monthly[result.monthly.replication == r]["churned_lines"].to_numpy() for r in (0, 1))
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("calls_per_line", [0.2, 1.5])
def test_calls_per_line_follow_the_poisson_law(calls_per_line: float) -> None:
    scenario = constant_hazard(0.01, 200_000, 3)
    simulation = Simulation(scenario, Allocation.empty(), prepare(scenario, seed=2), seed=2)
    state = simulation.tiers[0]
    counts, callers, total = simulation.hotline.call_counts(state, calls_per_line, month=1)
    assert total == counts.sum() and np.array_equal(callers, np.flatnonzero(counts))
    observed = np.bincount(counts)
    for k in range(4):
        expected = state.size * math.exp(-calls_per_line) * calls_per_line ** k / math.factorial(k)
        assert abs(observed[k] - expected) < 5 * math.sqrt(expected) + 1, (k, observed[k], expected)


def test_a_regions_runs_are_exactly_its_rows() -> None:
    # Each batch of units that joined together is grouped by region, and stays so as churned rows
    # are dropped: an outage reads a region's rows as runs, against a plain scan of every row.
    scenario = load_scenario(SCENARIOS / "small.yaml")
    simulation = Simulation(scenario, Allocation.empty(), prepare(scenario, seed=5), seed=5)
    simulation.run(months=scenario.meta.horizon_months)
    assert sum(state.compactions for state in simulation.tiers) > 0
    for state in simulation.tiers:
        assert np.all(np.diff(state.uid[: state.size]) > 0)
        for region in range(len(scenario.network.regions)):
            runs = state.region_runs(region)
            rows = np.concatenate([np.arange(a, b) for a, b in runs]) if runs.size else np.zeros(0, int)
            np.testing.assert_array_equal(rows, np.flatnonzero(state.region[: state.size] == region))


def test_the_mean_waits_standard_error_of_a_short_window_is_the_calls_own() -> None:
    from sim.queue import QueueOutcome

    # Fewer calls than twenty batches of two: batches of two calls each, then the calls' own spread.
    waits = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    pairs = waits.reshape(4, 2).mean(axis=1)
    assert QueueOutcome(waits, np.zeros(8, bool)).mean_wait_se() == pytest.approx(pairs.std(ddof=1) / 2.0)
    three = np.array([1.0, 2.0, 6.0])
    assert QueueOutcome(three, np.zeros(3, bool)).mean_wait_se() == pytest.approx(three.std(ddof=1) / np.sqrt(3))
    assert QueueOutcome(np.array([2.5]), np.zeros(1, bool)).mean_wait_se() == 2.5
    assert QueueOutcome(np.zeros(0), np.zeros(0, bool)).mean_wait_se() == 0.0


def test_a_queue_a_hair_below_full_load_warms_up_instead_of_opening_on_a_state_out_of_reach() -> None:
    # Patient callers on 1,000 agents: Erlang C's mean queue, Lq = P(wait) * rho / (1 - rho), is about
    # 9,900 callers at 99.99% of full load (within what the hotline holds: the long-run law is drawn) and
    # about 33,000 at 99.997% (beyond it: the window warms up from empty, its work bounded by its calls).
    from sim.scenario.capacity import MAX_WAITING_CALLERS

    agents = 1_000
    for rate, reachable in ((999.9, True), (999.97, False), (999.999_9, False)):
        _, mean_wait = erlang_c(rate, agents, 1.0)
        assert (rate * mean_wait <= MAX_WAITING_CALLERS) == reachable
        state = stationary_state(rate, agents, 1.0, None, np.random.default_rng(3))
        assert (state is not None) == reachable
        outcome = simulate_queue(rate, agents, 1.0, None, 5.0, np.random.default_rng(3), stationary=True,
                                 warmup_minutes=10.0)
        arrived = outcome.calls + (0 if reachable else 15.0 * rate)
        assert outcome.end.waiting_patience.size <= (state.waiting_patience.size if state else 0) + 2 * arrived
