"""A market that holds still until something moves it.

Without campaigns, moves or retention, the shipped scenarios' bases, shares and churn stay where they
start: the rivals' switchers replace ours (solved per segment), the lines leaving the market are
replaced by new ones, the starting base is drawn at rest (tenure and own propensity as lines joining
and leaving leave them), propensities renew with life events, contracts re-sign at the rate that keeps
their share. Each mechanism is checked against theory or a conservation law, then the whole against
the stated figures.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import pytest

from sim.allocation import Allocation
from sim.base_at_rest import base_at_rest, contract_renewal_rate
from sim.calibration_cache import calibrated
from sim.competition import (
    Competition,
    list_switching_shares,
    reference_destinations,
    segment_pools,
)
from sim.engine import Calibration, Simulation, prepare, reference_conditions
from sim.population import renewal_table
from sim.scenario import load_scenario
from sim.streams import RandomStreams

from .conftest import SCENARIOS
from .simulation_cases import from_text

TEMPLATES = ["baseline", "small", "small_quarterly", "price_war", "network_crisis", "futility"]
"""The shipped scenarios written from figures (``telco_ibm`` starts from a customer table's base)."""


def one_tier(*, share: float = 0.55, spread: float = 1.0, tenure: float = -0.15, renewal: float = 0.03,
             leaving: float = 0.0, extra: str = "", rivals: str = "T: {price_index: 0.9, network_quality: 0.8, lines: 150000}",
             horizon: int = 48) -> object:
    """One consumer tier of 100,000 lines in a market with one rival, no outage and no call."""
    return from_text(f"""
meta: {{name: at_rest, horizon_months: {horizon}, periods: [{{name: P1, months: {horizon}}}]}}
market:
  us: M
  operators:
    M: {{network_quality: 0.85}}
    {rivals}
tiers:
  mass:
    lines: 100000
    arpu: 80
    baseline_churn: 0.012
    risk_spread: {spread}
    risk_renewal: {renewal}
    contract: {{share: {share}, term_months: 24}}
    sensitivity: {{price_gap: 0, network_gap: 0, satisfaction: 0, complaints: 0, tenure: {tenure}, competitor_pressure: 0}}
    call_rate: 0
    market: {{leaving: {leaving}{extra}}}
network:
  regions:
    all: {{share: 1.0, quality: 0.85, outages_per_month: 0}}
contact_center:
  staffing: [{{from_month: 1, agents: 1}}]
channels:
  calls: {{capacity_per_month: 100000}}
levers:
  credit: {{channel: calls, cost_per_contact: 1, acceptance: 0.5, hazard_reduction: 0.5}}
budget: {{total: 0}}
""")


def quiet_months(scenario, replications: int = 3, minimum_units: int | None = None) -> pd.DataFrame:
    calibration = Calibration.quiet(scenario, 1)
    return pd.concat([pd.DataFrame(Simulation(scenario, Allocation.empty(), calibration, 1, r, outages=False,
                                              contact_center=False, minimum_units=minimum_units).run().tier_months)
                      for r in range(replications)])


# --- the mechanisms, against theory -----------------------------------------------------------------

def test_a_cohort_without_drivers_leaves_a_geometric_tenure() -> None:
    # Constant churn h, no propensity: the base at rest's tenure is geometric, P(t) = h (1-h)^t, mean (1-h)/h.
    h = 0.02
    rest = base_at_rest(math.log(h / (1 - h)), lambda t: 0.0, 0.0, 0.0)
    tenure = np.arange(rest.tenure_share.size)
    expected = h * (1 - h) ** tenure
    assert rest.tenure_share[:200] == pytest.approx(expected[:200], rel=1e-6)
    assert rest.mean_tenure == pytest.approx((1 - h) / h, rel=1e-3)


def test_full_renewal_erases_the_selection_of_risky_lines() -> None:
    # With every propensity drawn afresh each month, survivors of any tenure have the fresh law.
    rest = base_at_rest(math.log(0.05 / 0.95), lambda t: 0.0, 1.0, 1.0)
    fresh = rest.propensity_cdf[0]
    for tenure in (1, 12, 100):
        assert rest.propensity_cdf[tenure] == pytest.approx(fresh, abs=1e-12)
    # Without renewal, old lines are the ones least likely to leave: their law is shifted down.
    kept = base_at_rest(math.log(0.05 / 0.95), lambda t: 0.0, 1.0, 0.0)
    mean = lambda cdf: float(np.dot(np.diff(np.concatenate([[0.0], cdf])), kept.grid))
    assert mean(kept.propensity_cdf[0]) == pytest.approx(0.0, abs=1e-9)
    assert mean(kept.propensity_cdf[24]) < mean(kept.propensity_cdf[12]) < -0.1


def test_drawing_from_the_base_at_rest_reproduces_its_law() -> None:
    # Inverse-law draws: the drawn mean hazard equals the law's own (no half-step bias of the grid).
    base = math.log(0.012 / 0.988)
    rest = base_at_rest(base, lambda t: -0.15 / 12 * min(t, 36), 1.0, 0.03)
    cells = np.diff(np.concatenate([np.zeros((rest.propensity_cdf.shape[0], 1)), rest.propensity_cdf], axis=1), axis=1)
    tenure = np.arange(rest.tenure_share.size)
    logit = base - 0.15 / 12 * np.minimum(tenure, 36)[:, None] + rest.grid[None, :]
    law = float((rest.tenure_share[:, None] * cells / (1 + np.exp(-logit))).sum())
    rng = np.random.default_rng(3)
    t, p = rest.draw(rng.random(400_000), rng.random(400_000))
    drawn = float(np.mean(1 / (1 + np.exp(-(base - 0.15 / 12 * np.minimum(t, 36) + p)))))
    assert drawn == pytest.approx(law, rel=0.01)
    assert t.mean() == pytest.approx(rest.mean_tenure, rel=0.02)


def test_life_events_renew_propensities_at_the_stated_rate() -> None:
    from sim import kernels

    scenario = one_tier(spread=1.0, renewal=0.05)
    tier = scenario.tiers["mass"]
    n = 200_000
    table = renewal_table(tier)
    propensity = np.full(n, 100, dtype=np.int8)  # a value the table's quantiles never take
    streams = RandomStreams(5)
    kernels.age_rows(n, np.zeros(n, np.float32), np.float32(0.8), np.float32(0.1), np.zeros(n, np.uint8),
                     np.zeros(n, np.int16), np.arange(n, dtype=np.int32), streams.salt("renewal", 1), 1,
                     np.float32(0.0), 24, False, propensity, streams.salt("life_events", 1), np.float32(0.05), table)
    renewed = propensity != 100
    # Binomial: 5% of 200,000 with a standard error of 0.05%.
    assert renewed.mean() == pytest.approx(0.05, abs=0.002)
    values = propensity[renewed] / 32.0
    assert values.mean() == pytest.approx(0.0, abs=0.02)
    assert values.std() == pytest.approx(1.0, abs=0.03)


def test_contract_share_stays_where_it_starts() -> None:
    # Hand-computed: with no churn the rate is share / ((term - 1) * (1 - inside)) less nothing; with churn
    # the rate also replaces contract lines that leave. The simulation keeps the share within 1 point.
    scenario = one_tier(share=0.55, spread=0.0, tenure=0.0)
    rate = contract_renewal_rate(scenario.tiers["mass"])
    assert 0.0 < rate < 0.55 / (24 * 0.45)
    months = quiet_months(scenario, 2).groupby("month")["expected_churn"].mean() / 0.012
    assert months.min() > 0.985 and months.max() < 1.015, months.round(4).tolist()


def test_rival_switchers_replace_ours_in_every_segment() -> None:
    # Conservation: at reference conditions each rival's pool keeps its size month after month and the
    # lines we win equal the lines we lose to rivals, in every tier's segment of every shipped template.
    for name in TEMPLATES:
        scenario = load_scenario(SCENARIOS / f"{name}.yaml")
        competition = Competition.start(reference_conditions(scenario))
        for tier, params in scenario.tiers.items():
            ours = params.line_count
            switchers = ours * (params.baseline_churn - params.market.leaving)
            before = dict(competition.pools[tier])
            to_rivals = {k: switchers * d for k, d in reference_destinations(scenario, tier).items()}
            for month in range(1, 13):
                new, mine = competition.new_lines(tier, month, ours)
                won = competition.flows(tier, month, to_rivals, mine, new)
                assert won + mine == pytest.approx(ours * params.baseline_churn, rel=1e-9), (name, tier)
            for k, lines in competition.pools[tier].items():
                assert lines == pytest.approx(before[k], rel=1e-9), (name, tier, k)


def test_a_stated_rival_churn_is_used_as_stated() -> None:
    scenario = one_tier(rivals="T: {price_index: 0.9, network_quality: 0.8, lines: 150000, monthly_churn: 0.03}",
                        leaving=0.004)
    competition = Competition.start(scenario)
    assert competition.switching["mass"]["T"] == pytest.approx(0.03 - 0.004)
    # Our share of the segment defaults to our share of the whole market.
    assert sum(segment_pools(scenario)["mass"].values()) == pytest.approx(150_000)
    assert list_switching_shares(scenario, "T")["M"] == pytest.approx(1.0)


def test_the_business_plan_sets_our_gross_adds() -> None:
    scenario = one_tier(leaving=0.005, extra=", gross_adds: {lines: 900}", spread=0.0, tenure=0.0, share=0.0)
    rows = quiet_months(scenario, 2)
    assert rows["gross_adds_market_expected"].to_numpy() == pytest.approx(900.0)
    # Poisson counts of 900 a month over 96 tier-months: the mean within 4 standard errors.
    assert rows["gross_adds_market_lines"].mean() == pytest.approx(900.0, abs=4 * math.sqrt(900 / len(rows)))
    shared = one_tier(leaving=0.005, extra=", gross_adds: {share_of_new_lines: 0.5}", spread=0.0, tenure=0.0,
                      share=0.0)
    first = quiet_months(shared, 1).iloc[0]
    # The segment: our 100,000 lines and the rival's 150,000; 0.5% of them are new each month, half ours.
    assert first["gross_adds_market_expected"] == pytest.approx(0.5 * 0.005 * 250_000)


# --- the whole, against the stated figures ------------------------------------------------------------

@pytest.mark.parametrize("spread,tenure,share", [(1.0, -0.15, 0.0), (0.0, 0.0, 0.55), (1.0, -0.15, 0.55)])
def test_a_tier_at_rest_churns_at_its_stated_rate_for_four_years(spread: float, tenure: float, share: float) -> None:
    months = quiet_months(one_tier(spread=spread, tenure=tenure, share=share)).groupby("month")
    churn = months["expected_churn"].mean() / 0.012
    assert churn.min() > 0.98 and churn.max() < 1.02, churn.round(4).tolist()
    lines = months["lines_start"].mean()
    assert abs(lines.iloc[-1] / lines.iloc[0] - 1) < 0.01


def _expected_drift(rows: pd.DataFrame) -> pd.Series:
    """Per tier, the expected change of our lines over the run, relative to the start: the expected
    joiners less the expected leavers, month by month (the luck of the draws taken out)."""
    # Enterprise accounts' lines cancelled between renewals leave too (the lines they add are gross adds).
    cancelled = rows["lines_cancelled_expected"].fillna(0.0) if "lines_cancelled_expected" in rows else 0.0
    rows = rows.assign(leavers=rows["expected_churn"] * rows["lines_start"] + cancelled,
                       joiners=rows["gross_adds_market_expected"] + rows["gross_adds_won_expected"])
    by_tier = rows.groupby("tier")
    start = rows[rows["month"] == 1].groupby("tier")["lines_start"].mean()
    replications = rows["replication"].nunique()
    return (by_tier["joiners"].sum() - by_tier["leavers"].sum()) / replications / start


def _churn_by_tier(rows: pd.DataFrame) -> pd.Series:
    """Each tier's churn over the run: its expected leavers over its line-months."""
    by_tier = rows.assign(leavers=rows["expected_churn"] * rows["lines_start"]).groupby("tier")
    return by_tier["leavers"].sum() / by_tier["lines_start"].sum()


def _luck(rows: pd.DataFrame) -> pd.Series:
    """Each tier's relative standard error of that churn: outages come few and large, and how hard they hit
    a tier over a run is luck. From the means of three-month blocks (a block or more apart, about
    independent), over every replication."""
    blocks = rows.assign(block=(rows["month"] - 1) // 3).groupby(["tier", "replication", "block"])
    means = blocks["expected_churn"].mean().groupby("tier")
    return means.std() / np.sqrt(means.count()) / means.mean()


@pytest.fixture(scope="module")
def fitted(shared_fits):  # type: ignore[no-untyped-def]
    """A shipped scenario and its calibration by name, each fitted once for the suite's processes."""
    @functools.cache
    def of(name: str) -> tuple[object, Calibration]:
        scenario = load_scenario(SCENARIOS / f"{name}.yaml")
        with shared_fits():
            return scenario, calibrated(scenario, scenario.run.seed)
    return of


def _reference_runs(scenario, replications: int = 3, months: int | None = None,
                    calibration: Calibration | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """No retention under the scenario's reference conditions, about 30,000 lines, tiers and market by month."""
    calibration = calibration or prepare(scenario, scenario.run.seed)
    quiet = reference_conditions(scenario, min(1.0, 30_000 / scenario.total_lines))
    frames, markets = [], []
    for replication in range(replications):
        records = Simulation(quiet, Allocation.empty(), calibration, scenario.run.seed, replication).run(months)
        frames.append(pd.DataFrame(records.tier_months).assign(replication=replication))
        markets.append(pd.DataFrame(records.market).assign(replication=replication))
    return pd.concat(frames), pd.concat(markets)


@pytest.mark.parametrize("name", TEMPLATES)
def test_shipped_scenarios_hold_still_without_moves_or_retention(name: str, fitted) -> None:
    scenario, calibration = fitted(name)
    rows, market = _reference_runs(scenario, calibration=calibration)
    drift = _expected_drift(rows)
    weights = rows[rows["month"] == 1].groupby("tier")["lines_start"].mean()
    total = float((drift * weights).sum() / weights.sum())
    assert abs(total) < 0.01, f"our lines drift {total:+.2%}: {drift.round(4).to_dict()}"
    share = market[market["operator"] == scenario.market.us].groupby("month")["share"].mean()
    assert abs(share.iloc[-1] / share.iloc[0] - 1) < 0.015
    size = market.groupby("month")["lines"].sum()
    assert abs(size.iloc[-1] / size.iloc[0] - 1) < 0.005
    # Under its reference conditions each tier churns at its stated rate, within 0.1 point, and within 5%
    # of it: where three replications' outage luck is larger than that (three standard errors of it, the
    # calibration's pilots having as much), within the luck.
    luck = _luck(rows)
    for tier, value in _churn_by_tier(rows).items():
        stated = scenario.tiers[tier].baseline_churn
        assert abs(value - stated) < max(0.001, 3 * luck[tier] * stated), (tier, value, luck[tier])
        assert value == pytest.approx(stated, rel=max(0.05, 3 * luck[tier])), (tier, value, luck[tier])


def test_each_tier_of_the_baseline_churns_at_its_stated_rate_every_year() -> None:
    # Normal outages and calls off: what is left is the base's own dynamics (ageing, the likeliest
    # leavers going first, contracts, regions), which the base at rest must hold still year after year.
    # Every tier is simulated with 20,000 units at least (a tier of 100 accounts drawn 200 times over):
    # which of a hundred accounts happen to remain would otherwise move its churn by a tenth.
    scenario = load_scenario(SCENARIOS / "baseline.yaml")
    rows = quiet_months(reference_conditions(scenario, 0.02), 2, minimum_units=20_000)
    rows = rows.assign(year=(rows["month"] - 1) // 12 + 1, leavers=rows["expected_churn"] * rows["lines_start"])
    by_year = rows.groupby(["tier", "year"])
    churn = (by_year["leavers"].sum() / by_year["lines_start"].sum()).unstack()
    stated = pd.Series({name: tier.baseline_churn for name, tier in scenario.tiers.items()})
    ratio = churn.div(stated, axis=0)
    assert ratio.to_numpy().min() > 0.95 and ratio.to_numpy().max() < 1.05, ratio.round(3).to_string()


def test_ten_times_the_outages_still_reproduce_the_stated_churn() -> None:
    # Outages ten times as frequent are the scenario's normal service here: the calibration makes them
    # part of the stated churn, which the tiers reproduce within 0.1 point over the three years.
    scenario = load_scenario(SCENARIOS / "small.yaml")
    regions = {name: region.model_copy(update={"outages_per_month": region.outages_per_month * 10})
               for name, region in scenario.network.regions.items()}
    scenario = scenario.model_copy(update={"network": scenario.network.model_copy(update={"regions": regions})})
    rows, _ = _reference_runs(scenario, replications=6)
    luck = _luck(rows)
    for tier, value in _churn_by_tier(rows).items():
        stated = scenario.tiers[tier].baseline_churn
        assert abs(value - stated) < max(0.001, 3 * luck[tier] * stated), (tier, value, luck[tier])


def test_the_crisis_churns_more_than_normal_service_where_it_hits(fitted) -> None:
    # The same market, once in normal service (baseline) and once in the north's crisis with an
    # understaffed hotline (network_crisis, whose stated churn describes normal service): no retention,
    # the first year. Every tier churns more in the crisis, and its lines in the north far more.
    churn, north_churn = {}, {}
    for name in ("baseline", "network_crisis"):
        scenario, calibration = fitted(name)
        north = list(scenario.network.regions).index("north")
        run = scenario.model_copy(update={"run": scenario.run.model_copy(update={"scale": 0.03})})
        rows, leavers, units = [], {}, {}
        for replication in range(2):
            simulation = Simulation(run, Allocation.empty(), calibration, scenario.run.seed, replication, regions=True)
            for state in simulation.tiers:
                units[state.name] = units.get(state.name, 0) + int(np.sum(state.region[: state.size] == north))
            records = simulation.run(12)
            rows.append(pd.DataFrame(records.tier_months))
            for _, tier, counts, _ in records.leavers_by_region:
                leavers[tier] = leavers.get(tier, 0) + int(counts[north])
        by_tier = pd.concat(rows).groupby("tier")
        churn[name] = by_tier["churned_lines"].sum() / by_tier["lines_start"].sum()
        north_churn[name] = pd.Series({tier: leavers[tier] / units[tier] for tier in units})
    normal, crisis = churn["baseline"], churn["network_crisis"]
    assert (crisis > normal).all(), pd.DataFrame({"normal": normal, "crisis": crisis}).to_string()
    ratio = north_churn["network_crisis"] / north_churn["baseline"]
    assert (ratio > 1.3).all(), ratio.round(2).to_dict()


def test_the_price_war_escalates_and_costs_us_what_it_keeps(fitted) -> None:
    # price_war.yaml without retention, the first two years, with our two cuts and without them (the same
    # draws). U answers each cut on top of its running price: in households its price falls to
    # 0.85 x 0.8 (its campaign) x 0.9 x 0.95 when both answers run (hand-computed). The cuts keep lines but
    # cost us margin on every line that stays, more than the lines kept bring; the rivals earn less too.
    from optimize.run.compare import operator_figures, strategy_figures
    from sim.results import SimulationResult

    scenario, calibration = fitted("price_war")
    run = scenario.model_copy(update={"run": scenario.run.model_copy(update={"scale": 0.03})})
    figures, npv, margin = {}, {}, {}
    for label, variant in (("with", run), ("without", run.model_copy(update={"pricing": ()}))):
        results = []
        for replication in range(2):
            simulation = Simulation(variant, Allocation.empty(), calibration, scenario.run.seed, replication)
            results.append(SimulationResult.from_records(simulation.run(), replication))
            if label == "with":
                assert simulation.competition.offer_terms("households", 12)["U"][0] == pytest.approx(
                    0.85 * 0.8 * 0.9 * 0.95)
        result = SimulationResult.concat(results)
        figures[label] = operator_figures(result, variant).groupby("operator").mean()
        npv[label] = float(strategy_figures(result, variant)["npv"].mean())
        margin[label] = float(strategy_figures(result, variant)["margin"].mean())
    with_moves, without = figures["with"], figures["without"]
    assert with_moves.loc["M", "lines_end"] > without.loc["M", "lines_end"]
    assert npv["with"] < npv["without"]
    assert (with_moves.loc[["T", "U"], "discounted_margin"] < without.loc[["T", "U"], "discounted_margin"]).all()
    # Our operator row counts margin as every other table does.
    assert with_moves.loc["M", "margin"] == pytest.approx(margin["with"], rel=1e-12)
