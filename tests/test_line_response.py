"""Lines that respond differently to an offer (a lever's ``response`` and ``acts_on``), each figure checked
against an expectation computed by hand from the model's formulas, not from the engine's code: the law of
a line's own responsiveness, the hazard reduction realised among high- and low-risk lines when the
riskiest respond least, an offer acting on price leaving a line that leaves over the network as it was,
and contacted sleeping dogs churning more.

The market is one consumer tier whose hazard moves with nothing but the drivers a test switches on; a
perfect churn model; offers to every line in month 1 and the churn decision of that month read per line,
beside a run without offers on the same random numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim import kernels
from sim.allocation import Allocation
from sim.engine import Calibration, Simulation
from sim.subscribers import PROPENSITY_STEP

from .simulation_cases import from_text

HERMITE_NODES, HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(40)
"""Gauss-Hermite (probabilists') nodes and weights: expectations over a standard normal draw."""


def scenario_text(lever: str, *, lines: int = 40_000, churn: float = 0.05, spread: float = 1.0,
                  network_gap: float = 0.0, price_gap: float = 0.0, rival_price: float = 0.9,
                  regions: str = "all: {share: 1.0, quality: 0.85, outages_per_month: 0}", horizon: int = 1,
                  targeting: str = "model_auc: 1.0") -> str:
    return f"""
meta: {{name: response, horizon_months: {horizon}, periods: [{{name: P1, months: {horizon}}}], discount_rate_annual: 0}}
market:
  us: M
  operators:
    M: {{network_quality: 0.85}}
    T: {{price_index: {rival_price}, network_quality: 0.85, lines: 0, monthly_churn: 0.0}}
tiers:
  t:
    lines: {lines}
    arpu: 100
    margin: 0.5
    baseline_churn: {churn}
    risk_spread: {spread}
    risk_renewal: 0
    call_rate: 0
    sensitivity: {{price_gap: {price_gap}, network_gap: {network_gap}, satisfaction: 0, complaints: 0,
                   out_of_contract: 0, tenure: 0, competitor_pressure: 0}}
network:
  regions:
    {regions}
contact_center:
  staffing: [{{from_month: 1, agents: 1}}]
channels:
  calls: {{capacity_per_month: 10000000}}
levers:
  offer: {lever}
targeting: {{{targeting}, save_desk_reach: 0.0}}
budget: {{total: 1.0e9, contact_policy: {{max_offers_per_line: 1, per_months: 6}}}}
"""


def month_one(text: str, offered: bool) -> Simulation:
    """A run of month 1, every line offered the lever (or none)."""
    scenario = from_text(text)
    calibration = Calibration.quiet(scenario, 1)
    amount = 1.0e7 if offered else 0.0
    simulation = Simulation(scenario, Allocation({("t", "offer", "P1"): amount}), calibration, 5, 0,
                            contact_center=False)
    simulation.run(1)
    return simulation


def with_and_without(text: str):  # type: ignore[no-untyped-def]
    """Month 1 without offers and with every line offered, on the same random numbers: both simulations,
    their tiers and the starting units' count."""
    without, with_offer = month_one(text, False), month_one(text, True)
    return without, with_offer, without.tiers[0], with_offer.tiers[0], without.tiers[0].size


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def test_a_lines_responsiveness_has_the_stated_law() -> None:
    # w = exp(-s u - s^2/2), u = rho z + sqrt(1 - rho^2) e: E[w | z] = exp(-s rho z - s^2 rho^2 / 2), and 1 overall.
    rng = np.random.default_rng(3)
    n = 400_000
    propensity = np.clip(np.round(rng.standard_normal(n) * 32), -127, 127).astype(np.int8)
    rows = np.arange(n, dtype=np.int64)
    uid = np.arange(n, dtype=np.int32)
    steps = propensity.astype(float)
    mean, inv_sd = steps.mean(), 1.0 / steps.std()
    s, rho = 0.8, -0.6
    w = kernels.line_weights(rows, uid, propensity, np.uint64(12345), mean, inv_sd, rho, s)
    assert w.mean() == pytest.approx(1.0, abs=0.01)
    z = (steps - mean) * inv_sd
    for low, high in ((1.0, 2.0), (-2.0, -1.0)):
        band = (z >= low) & (z < high)
        expected = np.exp(-s * rho * z[band] - s * s * rho * rho / 2).mean()
        assert w[band].mean() == pytest.approx(expected, rel=0.02)
    # The own part is independent of propensity: with rho = 0, w does not move with risk.
    w0 = kernels.line_weights(rows, uid, propensity, np.uint64(12345), mean, inv_sd, 0.0, s)
    assert np.corrcoef(np.log(w0), z)[0, 1] == pytest.approx(0.0, abs=0.01)
    assert np.log(w0).std() == pytest.approx(s, rel=0.01)


def test_the_riskiest_respond_least_as_the_correlation_says() -> None:
    # Every line accepts an offer cutting the odds by 35% on average; responsiveness spreads by 0.8 and
    # correlates -0.6 with the line's propensity. A line of standardized propensity z has odds times
    # 0.65 w, with E[w | z] = exp(0.48 z - 0.115): the riskiest quarter (z about +1.27) gains nothing on
    # average (0.65 x 1.64 = 1.07: a 7% rise), the safest quarter (z about -1.27) far more (0.65 x 0.48
    # = 0.31: a 69% cut). The expected churn of each line with the offer is integrated over its own draw.
    s, rho, h = 0.8, -0.6, 0.35
    lever = (f"{{channel: calls, cost_per_contact: 1, acceptance: 1, hazard_reduction: {h}, duration_months: 3,"
             f" response: {{spread: {s}, risk_correlation: {rho}}}}}")
    without, _, before, after, n = with_and_without(scenario_text(lever, lines=120_000))
    assert np.array_equal(before.uid[:n], after.uid[:n])
    assert (after.last_offer[:n] == 1).all()
    steps = before.propensity[:n].astype(float)
    z = (steps - steps.mean()) / steps.std()
    base = without.calibration.hazards["t"].base
    logit = base + PROPENSITY_STEP * steps
    # Without the offer, each line churns at sigmoid(logit); with it, E_e[sigmoid(logit + log 0.65 - s u - s^2/2)].
    u = rho * z[:, None] + math.sqrt(1 - rho * rho) * HERMITE_NODES[None, :]
    p_offer = (sigmoid(logit[:, None] + math.log(1 - h) - s * u - s * s / 2) * HERMITE_WEIGHTS).sum(1) / math.sqrt(
        2 * math.pi)
    p_none = sigmoid(logit)
    left_without = before.churn_month[:n] == 1
    left_with = after.churn_month[:n] == 1
    q1, q3 = np.quantile(z, [0.25, 0.75])
    realised = {}
    for name, group in (("risky", z >= q3), ("safe", z <= q1)):
        expected = 1 - p_offer[group].sum() / p_none[group].sum()
        realised[name] = 1 - left_with[group].sum() / left_without[group].sum()
        # Binomial noise of about 3,600 and 300 leavers: a few points.
        assert realised[name] == pytest.approx(expected, abs=0.06), name
    assert realised["risky"] < 0.0
    assert realised["safe"] > 0.5
    # Over all lines the mean odds cut is the stated 35% (to the curvature of the logistic at 5% churn).
    overall = 1 - left_with.sum() / left_without.sum()
    assert overall == pytest.approx(1 - p_offer.sum() / p_none.sum(), abs=0.04)


def test_an_offer_on_price_leaves_a_line_leaving_over_the_network_as_it_was() -> None:
    # Our price equals the rival's (no price gap), the north's network is 0.3 below the rival's: its lines'
    # odds carry network_gap x 0.3 = 1.5 of log-odds. An offer acting on price does nothing to anyone;
    # one acting on the network removes 90% of the odds the network adds: odds x (1 - 0.9 (1 - e^-1.5)).
    regions = ("north: {share: 0.5, quality: 0.55, outages_per_month: 0}\n"
               "    south: {share: 0.5, quality: 0.85, outages_per_month: 0}")

    def run(acts_on: str, offered: bool) -> Simulation:
        lever = (f"{{channel: calls, cost_per_contact: 1, acceptance: 1, hazard_reduction: 0.9, duration_months: 3,"
                 f" acts_on: [{acts_on}]}}")
        text = scenario_text(lever, spread=0.0, network_gap=5.0, price_gap=3.0, rival_price=1.0, regions=regions)
        return month_one(text, offered)

    none = run("price_gap", False).tiers[0]
    n = none.size
    on_price = run("price_gap", True).tiers[0]
    assert (on_price.last_offer[:n] == 1).all()
    assert np.array_equal(on_price.churn_month[:n], none.churn_month[:n])   # the same lines leave, to a line

    on_network = run("network_gap", True)
    state = on_network.tiers[0]
    north = state.region[:n] == list(on_network.scenario.network.regions).index("north")
    base = on_network.calibration.hazards["t"].base
    p_north = sigmoid(base + 5.0 * 0.3)
    odds = p_north / (1 - p_north) * (1 - 0.9 * (1 - math.exp(-1.5)))
    expected = odds / (1 + odds)
    assert (none.churn_month[:n][north] == 1).mean() == pytest.approx(p_north, abs=0.01)
    assert (state.churn_month[:n][north] == 1).mean() == pytest.approx(expected, abs=0.008)
    # The south's lines have no network gap: the offer leaves them as they were.
    assert np.array_equal(state.churn_month[:n][~north], none.churn_month[:n][~north])


def test_contacting_sleeping_dogs_raises_their_churn() -> None:
    # Half accept an offer cutting the odds by 30% on average, a decline raises them by 30% on average; a
    # line's own w spreads by 1.5 (no link to risk). For the lines of w above 3 (about 8% of them) the
    # contact multiplies the odds by 0.7 w (at least 2.1) if they accept and 1 + 0.3 w (at least 1.9) if
    # they decline: contacting them pushes them out.
    s = 1.5
    lever = (f"{{channel: calls, cost_per_contact: 1, acceptance: 0.5, hazard_reduction: 0.3, backfire: 0.3,"
             f" duration_months: 3, response: {{spread: {s}, risk_correlation: 0}}}}")
    without, with_offer, before, after, n = with_and_without(scenario_text(lever, churn=0.03))
    rows = np.arange(n, dtype=np.int64)
    w = with_offer._line_weights(after, with_offer.scenario.levers["offer"], rows)
    dogs = w > 3.0
    assert 0.04 < dogs.mean() < 0.12
    logit = without.calibration.hazards["t"].base + PROPENSITY_STEP * before.propensity[:n].astype(float)
    accepted = after.effect_until[:n] >= 1
    p_contact = np.where(accepted, sigmoid(logit + np.log(0.7 * w)), sigmoid(logit + np.log1p(0.3 * w)))
    left_with = (after.churn_month[:n] == 1)[dogs].mean()
    left_without = (before.churn_month[:n] == 1)[dogs].mean()
    assert left_without == pytest.approx(sigmoid(logit)[dogs].mean(), abs=0.01)
    assert left_with == pytest.approx(p_contact[dogs].mean(), abs=0.02)
    assert left_with > 2 * left_without
    # The persuadables (w below 1/3) churn less when contacted, declines included (a decline never helps,
    # but its backfire on them is small).
    keen = w < 1 / 3
    assert (after.churn_month[:n] == 1)[keen].mean() < (before.churn_month[:n] == 1)[keen].mean()


def test_acceptance_moves_with_risk_as_stated() -> None:
    # acceptance 0.4 for a line of average propensity, acceptance_by_risk 1.0: a line z standard deviations
    # riskier accepts with probability sigmoid(logit 0.4 + z). Every line is offered in month 1; each
    # quarter of risk accepts at the mean of that over its lines (binomial noise of 30,000 lines: 0.003).
    lever = ("{channel: calls, cost_per_contact: 1, acceptance: 0.4, hazard_reduction: 0.3, duration_months: 3,"
             " response: {acceptance_by_risk: 1.0}}")
    scenario = from_text(scenario_text(lever, lines=120_000))
    simulation = Simulation(scenario, Allocation({("t", "offer", "P1"): 1.0e7}), Calibration.quiet(scenario, 1), 5, 0,
                            contact_center=False, contacts=True)
    state = simulation.tiers[0]
    n = state.size
    steps = state.propensity[:n].astype(float)
    z_of_uid = dict(zip(state.uid[:n].tolist(), ((steps - steps.mean()) / steps.std()).tolist()))
    simulation.run(1)
    (contact,) = simulation.records.contacts
    assert contact.uids.size == n
    z = np.array([z_of_uid[u] for u in contact.uids.tolist()])
    expected = sigmoid(math.log(0.4 / 0.6) + z)
    q1, q3 = np.quantile(z, [0.25, 0.75])
    for group in (z >= q3, z <= q1, np.abs(z) < 0.1):
        assert contact.accepted[group].mean() == pytest.approx(expected[group].mean(), abs=0.015)
    assert contact.accepted[z >= q3].mean() > contact.accepted[z <= q1].mean() + 0.2
