"""One pool of worker processes for a whole command: its stages share the processes (and their hotline
windows), and every stage gives the bytes one process gives."""

from __future__ import annotations

import pickle
from functools import partial
from pathlib import Path

import psutil

from optimize.run import parallel
from optimize.run.parallel import (
    Task,
    keeping_workers,
    map_replications,
    simulate_tasks,
)
from optimize.run.strategies import rule_allocation
from sim.allocation import Allocation
from sim.churn_drivers import decompose_replication
from sim.engine import prepare
from sim.scenario import load_scenario


def _bytes(results: list) -> list[bytes]:  # type: ignore[type-arg]
    return [pickle.dumps(r) for r in results]


def test_the_stages_of_a_command_share_one_pool_and_give_the_bytes_of_one_process(quick_small: Path) -> None:
    scenario = load_scenario(quick_small)
    seed = scenario.run.seed
    calibration = prepare(scenario, seed)
    spread = rule_allocation(scenario, "uniform")
    tasks = [Task("", allocation, r) for r in range(3) for allocation in (Allocation.empty(), spread)]
    # A second stage on another scenario (a competitor variant, a coarser scale) under the same calibration.
    coarse = scenario.model_copy(update={"run": scenario.run.model_copy(update={"scale": scenario.run.scale / 2})})
    alone = simulate_tasks({"": scenario}, tasks, calibration, seed, chunk=2)
    alone_coarse = simulate_tasks({"v": coarse}, [Task("v", t.allocation, t.replication) for t in tasks],
                                  calibration, seed, chunk=2)
    alone_drivers = map_replications(decompose_replication, scenario, calibration, seed, [0, 1])
    with keeping_workers(2):
        kept = parallel._kept.get()
        assert kept is not None and kept.pool is None  # started at the first fan-out, not before
        first = simulate_tasks({"": scenario}, tasks, calibration, seed, workers=2, chunk=2)
        processes = sorted(p.pid for p in kept.pool._pool)  # type: ignore[union-attr]
        second = simulate_tasks({"v": coarse}, [Task("v", t.allocation, t.replication) for t in tasks],
                                calibration, seed, workers=2, chunk=2)
        drivers = map_replications(decompose_replication, scenario, calibration, seed, [0, 1], workers=2)
        assert sorted(p.pid for p in kept.pool._pool) == processes  # type: ignore[union-attr]
        assert kept.stages == 3
    assert _bytes(first) == _bytes(alone)
    assert _bytes(second) == _bytes(alone_coarse)
    assert _bytes(drivers) == _bytes(alone_drivers)
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in processes)
    assert not Path(kept.folder.name).exists()


def test_the_pilots_of_fitting_the_stated_churn_fan_out_to_the_same_calibration(quick_small: Path) -> None:
    scenario = load_scenario(quick_small)
    seed = scenario.run.seed
    serial = pickle.dumps(prepare(scenario, seed))
    ran: list[int] = []

    def backwards(work, pilot, calibration, seed, numbers):  # type: ignore[no-untyped-def]
        # Later pilots first: no pilot may depend on another having run before it (a shared queue cache).
        ran.extend(numbers)
        return [work(pilot, calibration, seed, r) for r in reversed(numbers)][::-1]

    assert pickle.dumps(prepare(scenario, seed, fan_out=backwards)) == serial and len(ran) >= 3
    with keeping_workers(2):
        spread = prepare(scenario, seed, fan_out=partial(map_replications, workers=2))
        kept = parallel._kept.get()
        assert kept is not None and kept.pool is not None and kept.stages >= 2  # a round of pilots per stage
    assert pickle.dumps(spread) == serial
