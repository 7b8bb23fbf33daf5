"""Why customers leave: the Shapley split of each tier's churn among its drivers, checked against a
hand-computed logistic case, the permutation definition of the Shapley value, the engine's own hazard
and churn, and the difference a network crisis makes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from sim.allocation import Allocation
from sim.churn_drivers import (
    BASE_RATE,
    COLUMNS,
    DRIVERS,
    MINIMUM_UNITS,
    REPLICATIONS,
    ChurnDrivers,
    coalition_churn,
    decompose,
    driver_terms,
    shapley,
)
from sim.engine import Calibration, Simulation, reference_conditions
from sim.hazard import dense_logit
from sim.results import SimulationResult
from sim.scenario import Scenario, load_scenario

from .conftest import SCENARIOS

SEED = 7


@pytest.fixture(scope="module")
def small() -> tuple[Scenario, Calibration]:
    scenario = load_scenario(SCENARIOS / "small.yaml")
    # The base hazards solved without pilot runs: what is checked here holds for any calibration.
    return scenario, Calibration.quiet(scenario, SEED)


@pytest.fixture(scope="module")
def split(small) -> ChurnDrivers:
    scenario, calibration = small
    return decompose(scenario, calibration, SEED)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_shapley_of_two_logistic_drivers_by_hand() -> None:
    # Two lines, base log-odds 0 (churn 1/2). Line A: both drivers add log 3; line B: the first adds
    # log 3, the second takes it off. By hand, line A: each driver adds 1/4 alone (3/4 - 1/2) and 3/20
    # after the other (9/10 - 3/4), so each gets 1/5. Line B: the first adds 1/4 either way (3/4 - 1/2,
    # 1/2 - 1/4), the second takes 1/4: +1/4 and -1/4. The tier's mean: 9/40 and -1/40, on a base of
    # 1/2, adding up to its churn (9/10 + 1/2) / 2 = 7/10. The four other drivers are absent: 0.
    terms = np.zeros((2, len(DRIVERS)))
    terms[:, 0] = math.log(3.0)
    terms[:, 1] = [math.log(3.0), -math.log(3.0)]
    values = coalition_churn(0.0, terms) / 2
    assert values[0] == pytest.approx(0.5) and values[-1] == pytest.approx(0.7)
    parts = shapley(values)
    assert parts[:2] == pytest.approx([9 / 40, -1 / 40], abs=1e-12)
    assert parts[2:] == pytest.approx([0.0] * 4, abs=1e-15)


def test_shapley_is_the_mean_added_value_over_every_order_of_the_drivers() -> None:
    # The permutation definition, computed directly over the 720 orders of six drivers, on random lines.
    rng = np.random.default_rng(3)
    terms = rng.normal(0.0, 0.8, size=(50, len(DRIVERS)))
    base = -3.0
    values = coalition_churn(base, terms)
    direct = np.zeros(len(DRIVERS))
    orders = list(itertools.permutations(range(len(DRIVERS))))
    for order in orders:
        on = np.zeros(len(DRIVERS))
        before = np.sum([_sigmoid(base) for _ in terms])
        for g in order:
            on[g] = 1.0
            after = float(np.sum(1.0 / (1.0 + np.exp(-(base + terms @ on)))))
            direct[g] += after - before
            before = after
    direct /= len(orders)
    parts = shapley(values)
    assert parts == pytest.approx(direct, rel=1e-9, abs=1e-12)
    # Order independent: listing the drivers in another order moves each one's part with it.
    shuffled = [4, 0, 5, 2, 1, 3]
    assert shapley(coalition_churn(base, terms[:, shuffled])) == pytest.approx(parts[shuffled], rel=1e-9)


def test_a_tiers_parts_and_base_rate_add_up_to_its_churn(split: ChurnDrivers, small) -> None:
    scenario, _ = small
    table = split.table
    assert list(table.columns) == COLUMNS
    assert list(dict.fromkeys(table["tier"])) == list(scenario.tiers)
    for tier, rows in table.groupby("tier", sort=False):
        assert list(rows["driver"]) == [*DRIVERS, BASE_RATE]
        churn = rows["churn"].iloc[0]
        assert rows["contribution"].sum() == pytest.approx(churn, rel=1e-12), tier
        assert rows["share"].sum() == pytest.approx(1.0, rel=1e-12), tier


def test_the_drivers_terms_add_up_to_the_engines_hazard(small) -> None:
    # Every unit's terms plus the base against the engine's compiled logit, complaints and an outage in.
    scenario, calibration = small
    simulation = Simulation(scenario, Allocation.empty(), calibration, SEED, 0)
    month = 5
    for state, name in zip(simulation.tiers, scenario.tiers):
        hazard = calibration.hazards[name]
        n = state.size
        state.complaints[:n] = np.arange(n) % 3
        state.status[: n : 7] = 1  # some have left: they are not decomposed
        hit, drop = np.arange(0, n, 5), 0.3
        view = simulation.competition.view(name, month)
        engine = dense_logit(state, hazard, view, month, simulation.region_quality,
                             lever_log_odds=np.zeros(len(simulation.table.levers), np.float32)).astype(np.float64)
        engine[hit] += hazard.network_gap * drop
        terms, deciding = driver_terms(state, hazard, view, month, simulation.region_quality, [(hit, drop)])
        active = state.status[:n] == 0
        ours = hazard.base + terms.sum(axis=1)
        decided = engine[active][deciding]
        assert ours[deciding] == pytest.approx(decided, abs=2e-5), name
        # An account locked in its contract (key_a decides at its tender) does not decide: the engine's
        # hazard is the lock's.
        assert (engine[active][~deciding] < -100).all(), name


def test_the_decomposed_churn_is_the_engines_in_the_same_run(split: ChurnDrivers) -> None:
    churn = split.table.groupby("tier", sort=False)["churn"].first()
    for tier, simulated in split.simulated.items():
        # float64 here, float32 in the engine.
        assert churn[tier] == pytest.approx(simulated, rel=1e-5), tier


def test_the_decomposed_churn_matches_other_no_retention_replications(split: ChurnDrivers, small) -> None:
    # Other replications of the same no-retention market: each tier's mean expected churn per unit-month,
    # and its spread from one replication to the next (outages strike whole regions, calls, who leaves).
    # The decomposition pools REPLICATIONS of them: within three standard errors of the difference.
    scenario, calibration = small
    others = range(REPLICATIONS, REPLICATIONS + 6)
    figures = []
    for r in others:
        monthly = SimulationResult.from_records(
            Simulation(scenario, Allocation.empty(), calibration, SEED, r, minimum_units=MINIMUM_UNITS).run(),
            r).monthly
        figures.append(monthly.groupby("tier").apply(
            lambda f: np.dot(f["expected_churn"], f["units_start"]) / f["units_start"].sum(), include_groups=False))
    table = pd.concat(figures, axis=1)
    mean, sd = table.mean(axis=1), table.std(axis=1, ddof=1)
    churn = split.table.groupby("tier", sort=False)["churn"].first()
    for tier in churn.index:
        tolerance = 3.0 * sd[tier] * math.sqrt(1.0 / REPLICATIONS + 1.0 / len(others))
        assert abs(churn[tier] - mean[tier]) <= tolerance, (tier, churn[tier], mean[tier], sd[tier])


def test_a_tier_deaf_to_price_owes_no_churn_to_the_price_gap(small) -> None:
    scenario, _ = small
    tiers = dict(scenario.tiers)
    deaf = tiers["households"]
    tiers["households"] = deaf.model_copy(update={"sensitivity": deaf.sensitivity.model_copy(update={"price_gap": 0.0})})
    variant = scenario.model_copy(update={"tiers": tiers})
    table = decompose(variant, Calibration.quiet(variant, SEED), SEED, replications=range(1)).table
    table = table.set_index(["tier", "driver"])
    assert table.loc[("households", "price gap"), "contribution"] == 0.0
    # The others still see the rivals' lower prices (U at 0.85, T at 0.92 of ours): a part above 0.
    assert table.loc[("prepaid", "price gap"), "contribution"] > 0.0


def test_listing_the_tiers_in_another_order_changes_no_figure(split: ChurnDrivers, small) -> None:
    scenario, calibration = small
    relisted = scenario.model_copy(update={"tiers": dict(reversed(list(scenario.tiers.items())))})
    again = decompose(relisted, calibration, SEED).table
    assert list(dict.fromkeys(again["tier"])) == list(reversed(list(scenario.tiers)))
    key = ["tier", "driver"]
    pd.testing.assert_frame_equal(split.table.set_index(key).sort_index(), again.set_index(key).sort_index(),
                                  check_exact=True)


def test_a_network_crisis_owes_more_churn_to_the_network_than_the_baseline() -> None:
    # The same tiers; the crisis's north fails three times as often, longer and wider. Each calibrated
    # (without pilots) to the reference conditions its stated churn describes, at a reduced scale, one
    # replication: the gap is several times the noise.
    parts = {}
    for name in ("baseline", "network_crisis"):
        scenario = load_scenario(SCENARIOS / f"{name}.yaml")
        calibration = Calibration.quiet(reference_conditions(scenario), SEED)
        table = decompose(scenario, calibration, SEED, simulated_units=20_000, replications=range(1),
                          minimum_units=1_000).table
        parts[name] = table[table["driver"] == "network quality and outages"].set_index("tier")["contribution"]
    assert list(parts["baseline"].index) == list(parts["network_crisis"].index)
    gained = parts["network_crisis"] - parts["baseline"]
    assert (gained > 0.002).all(), gained  # at least 0.2 points of monthly churn in every tier
