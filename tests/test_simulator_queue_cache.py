"""Queue windows that start from another window's state, and queue outcomes and starting bases shared
between runs."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from sim import population
from sim.allocation import Allocation
from sim.calibration_cache import calibrated
from sim.engine import Simulation
from sim.queue import QueueState, serve_in_order, state_at
from sim.queue_cache import QueueCache
from sim.results import SimulationResult
from sim.scenario import load_scenario

from .conftest import SCENARIOS


@pytest.mark.parametrize("patience_minutes", [None, 2.0], ids=["patient", "impatient"])
def test_a_window_opening_on_a_state_serves_as_the_unbroken_queue(patience_minutes) -> None:
    # One queue over [0, 2T), and the same queue cut at T: the second half, opened on the first half's
    # end state, gives its callers exactly the waits they get in the unbroken queue.
    rng = np.random.default_rng(5)
    split, agents = 500.0, 20
    arrivals = np.sort(rng.random(8_000)) * 2 * split      # 8 calls a minute on 20 agents of 3 minutes: busy
    service = rng.exponential(3.0, arrivals.size)
    patience = rng.exponential(patience_minutes, arrivals.size) if patience_minutes else None
    whole_waits, whole_gone = serve_in_order(arrivals, service, patience, agents)

    first = arrivals < split
    waits, gone = serve_in_order(arrivals[first], service[first], patience[first] if patience is not None else None,
                                 agents)
    state = state_at(split, arrivals[first], waits, gone, service[first],
                     patience[first] if patience is not None else None)
    assert state.busy.size == agents and state.waiting_patience.size > 0  # the cut falls in a busy spell
    held = state.busy.size + state.waiting_patience.size
    later = arrivals[~first] - split
    rest_patience = None
    if patience is not None or held:
        rest_patience = np.concatenate([np.full(state.busy.size, np.inf), state.waiting_patience,
                                        patience[~first] if patience is not None else np.full(later.size, np.inf)])
    rest_waits, rest_gone = serve_in_order(np.concatenate([np.zeros(held), later]),
                                           np.concatenate([state.busy, state.waiting_service, service[~first]]),
                                           rest_patience, agents)
    np.testing.assert_allclose(rest_waits[held:], whole_waits[~first], atol=1e-9)
    np.testing.assert_array_equal(rest_gone[held:], whole_gone[~first])


def test_an_empty_state_holds_nothing() -> None:
    assert QueueState().nbytes == 0


def _frames(records) -> dict[str, bytes]:
    result = SimulationResult.from_records(records, 0)
    return {name: getattr(result, name).to_csv(index=False).encode()
            for name in ("monthly", "levers", "market", "contact_center", "outages")}


def test_a_shared_queue_cache_gives_the_same_bytes_as_none() -> None:
    scenario = load_scenario(SCENARIOS / "small.yaml")
    calibration = calibrated(scenario, seed=7)
    plans = [Allocation({("households", "bill_credit", "H1"): 40_000, ("prepaid", "data_bonus", "H1"): 25_000}),
             Allocation({("households", "bill_credit", "H1"): 90_000, ("key_a", "account_manager", "H1"): 15_000})]
    alone = [[_frames(Simulation(scenario, plan, calibration, seed=7, replication=r).run()) for r in (0, 1)]
             for plan in plans]
    shared = QueueCache()
    # The second strategy reuses the first one's windows (same seed and replications).
    together = [[_frames(Simulation(scenario, plan, calibration, seed=7, replication=r, queue_cache=shared).run())
                 for r in (0, 1)] for plan in plans]
    assert shared.hits > 0
    assert together == alone
    # A cache too small to keep anything still gives the same bytes.
    tiny = QueueCache(max_bytes=1)
    assert _frames(Simulation(scenario, plans[1], calibration, seed=7, replication=1, queue_cache=tiny).run()) \
        == alone[1][1]


def test_runs_of_a_replication_share_its_starting_base_and_give_the_bytes_of_drawing_it(monkeypatch) -> None:
    scenario = load_scenario(SCENARIOS / "small.yaml")
    calibration = calibrated(scenario, seed=7)
    again = copy.deepcopy(calibration)   # the same figures, other objects
    plans = [Allocation.empty(),
             Allocation({("households", "bill_credit", "H1"): 90_000, ("key_a", "account_manager", "H1"): 15_000}),
             Allocation({("households", "bill_credit", "H1"): 40_000, ("prepaid", "data_bonus", "H1"): 25_000})]
    drawn = []
    with monkeypatch.context() as patch:
        patch.setattr(population, "REUSED_BASE_BYTES", -1)   # nothing kept: every run draws its base
        for plan in plans:
            drawn.append(_frames(Simulation(scenario, plan, calibration, seed=7, replication=1).run()))
        assert population._last_base is None

    built = []
    real_build = population.build_population
    monkeypatch.setattr(population, "build_population", lambda *a, **k: built.append(1) or real_build(*a, **k))
    # One replication's strategies one after another, as a worker runs them: the base is drawn once, and
    # each run (which changes its base month by month) leaves the kept one as drawn.
    shared = [_frames(Simulation(scenario, plan, calibration, seed=7, replication=1).run()) for plan in plans]
    assert len(built) == 1
    assert shared == drawn
    # Another replication, another seed or another calibration draws again.
    Simulation(scenario, plans[0], calibration, seed=7, replication=2)
    Simulation(scenario, plans[0], calibration, seed=8, replication=2)
    Simulation(scenario, plans[0], again, seed=8, replication=2)
    assert len(built) == 4


def test_the_cache_key_tells_seeds_and_staffing_apart() -> None:
    scenario = load_scenario(SCENARIOS / "small.yaml")
    calibration = calibrated(scenario, seed=7)
    shared = QueueCache()
    base = _frames(Simulation(scenario, Allocation.empty(), calibration, seed=7, queue_cache=shared).run())
    other_seed = _frames(Simulation(scenario, Allocation.empty(), calibration, seed=8, queue_cache=shared).run())
    assert other_seed["contact_center"] == _frames(
        Simulation(scenario, Allocation.empty(), calibration, seed=8).run())["contact_center"]
    staffed = scenario.model_copy(update={"contact_center": scenario.contact_center.model_copy(
        update={"staffing": (scenario.contact_center.staffing[0].model_copy(update={"agents": 9}),)})})
    more_agents = _frames(Simulation(staffed, Allocation.empty(), calibration, seed=7, queue_cache=shared).run())
    assert more_agents["contact_center"] == _frames(
        Simulation(staffed, Allocation.empty(), calibration, seed=7).run())["contact_center"]
    assert more_agents["contact_center"] != base["contact_center"]
