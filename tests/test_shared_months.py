"""Runs that share their first months: a run copied at a period's end and run on under another allocation
is the same bytes as that allocation's run from month 1, so the designs simulate their shared months once."""

from __future__ import annotations

import pandas as pd
import pytest

from optimize.run.measure import _design, estimation_scenario
from optimize.run.parallel import Task, run_task, run_tasks
from optimize.run.strategies import rule_allocation
from sim.allocation import Allocation
from sim.calibration_cache import calibrated
from sim.engine import Simulation
from sim.queue_cache import QueueCache
from sim.results import SimulationResult
from sim.scenario import load_scenario
from sim.shared_months import Start, months_shared, shared_starts

from .conftest import SCENARIOS


def _same(a: SimulationResult, b: SimulationResult) -> None:
    for name in SimulationResult._FRAMES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True, obj=name)


@pytest.fixture(scope="module")
def quarterly(shared_fits):  # type: ignore[no-untyped-def]
    # Four quarters, outages in both regions, a save desk sharing its capacity: every month's state matters.
    scenario = load_scenario(SCENARIOS / "small_quarterly.yaml")
    with shared_fits():
        calibration = calibrated(scenario, scenario.run.seed)
    return scenario, calibration


def _by_period(allocation: Allocation, shares: dict[str, float]) -> Allocation:
    return Allocation({cell: amount * shares.get(cell[2], 1.0) for cell, amount in allocation.amounts.items()})


def test_a_run_copied_at_a_periods_end_goes_on_as_the_other_allocations_run_from_the_start(quarterly) -> None:
    scenario, calibration = quarterly
    seed = scenario.run.seed
    periods = [p.name for p in scenario.meta.periods]
    uniform = rule_allocation(scenario, "uniform")
    nothing_before = {name: 0.0 for name in periods[:2]}
    cases = [
        (Allocation.empty(), _by_period(uniform, nothing_before), 6),   # a design funding the last two quarters
        (uniform, _by_period(uniform, {periods[2]: 0.5, periods[3]: 2.0}), 6),  # the same first half, then not
        (uniform, uniform, scenario.meta.horizon_months),             # the same run to its end
    ]
    for replication in (0, 1):
        for parent, child, month in cases:
            assert months_shared(scenario, parent, child) == month
            original = Simulation(scenario, parent, calibration, seed, replication)
            original.run(month)
            copied = original.fork(child)
            got = SimulationResult.from_records(copied.run(), replication)
            _same(got, SimulationResult.from_records(Simulation(scenario, child, calibration, seed, replication).run(),
                                                     replication))
            # The run copied from goes on untouched.
            _same(SimulationResult.from_records(original.run(), replication),
                  SimulationResult.from_records(Simulation(scenario, parent, calibration, seed, replication).run(),
                                                replication))


def test_a_run_goes_on_only_under_the_same_cells_in_the_periods_begun(quarterly) -> None:
    scenario, calibration = quarterly
    uniform = rule_allocation(scenario, "uniform")
    first = scenario.meta.periods[0].name
    simulation = Simulation(scenario, uniform, calibration, scenario.run.seed)
    simulation.run(3)
    with pytest.raises(ValueError, match="same cells in the periods begun"):
        simulation.fork(_by_period(uniform, {first: 0.5}))
    # Mid-month (the hotline served, billing not yet), a process is not waiting for the month's end.
    simulation.env.run(until=3.9995)
    with pytest.raises(ValueError, match="only at a month's end"):
        simulation.fork(uniform)


def test_months_shared_and_the_runs_copied_from() -> None:
    scenario = load_scenario(SCENARIOS / "small_quarterly.yaml")
    q1, q2, q3, q4 = (p.name for p in scenario.meta.periods)
    cell = ("households", "bill_credit", q1)
    a = Allocation({(*cell[:2], q1): 10.0, (*cell[:2], q3): 5.0})
    assert months_shared(scenario, a, a) == 12
    assert months_shared(scenario, a, Allocation({(*cell[:2], q1): 10.0})) == 6     # differ from Q3
    assert months_shared(scenario, a, Allocation({(*cell[:2], q3): 5.0})) == 0      # differ from Q1
    assert months_shared(scenario, Allocation.empty(), Allocation({(cell[0], cell[1], q4): 1.0})) == 9
    assert months_shared(scenario, Allocation.empty(), Allocation({(cell[0], cell[1], q2): 0.0})) == 12  # unfunded
    empty, late, later = Allocation.empty(), Allocation({(*cell[:2], q3): 1.0}), Allocation({(*cell[:2], q4): 1.0})
    both = Allocation({(*cell[:2], q3): 1.0, (*cell[:2], q4): 1.0})
    runs = [("r0", scenario, empty), ("r0", scenario, late), ("r0", scenario, both), ("r1", scenario, later),
            ("r0", scenario, later)]
    # ``both`` shares Q1-Q3 with ``late``, which started at Q2's end itself: it copies ``late`` at Q3's end.
    # The last shares Q1-Q3 with ``empty`` and ``late`` (the first of equals): ``late`` ran them from Q2's end
    # only, so the copy is taken from ``empty``. Another replication's run is never a source.
    assert shared_starts(runs) == [Start(), Start(0, 6), Start(1, 9), Start(), Start(0, 9)]


def test_a_replications_designs_run_as_copies_give_the_runs_from_the_start(quarterly) -> None:
    # The curve measurement's designs of one replication, as a worker runs them: the same bytes as each alone.
    scenario, calibration = quarterly
    design = _design(estimation_scenario(scenario))
    scenarios = {"": design.scenario}
    tasks = [Task("", allocation, 1) for key, variant, allocation in design.plans if variant == ""]
    starts = shared_starts([(("", 1), design.scenario, t.allocation) for t in tasks])
    assert sum(start.parent is not None for start in starts) >= len(tasks) // 2  # the later quarters' designs
    together = run_tasks(scenarios, calibration, scenario.run.seed, tasks, QueueCache())
    for task, got in zip(tasks, together):
        _same(got, run_task(scenarios, calibration, scenario.run.seed, task, QueueCache()))


def test_a_copy_refused_leaves_the_design_to_run_from_the_start(quarterly, monkeypatch) -> None:
    # Were a copy ever refused, the design would run from month 1 instead: slower, the same bytes.
    scenario, calibration = quarterly
    design = _design(estimation_scenario(scenario))
    tasks = [Task("", allocation, 0) for key, variant, allocation in design.plans if variant == ""][:6]
    scenarios = {"": design.scenario}
    alone = [run_task(scenarios, calibration, scenario.run.seed, task, QueueCache()) for task in tasks]
    refused: list[int] = []

    def refuse(simulation, allocation):  # type: ignore[no-untyped-def]
        refused.append(1)
        raise ValueError("refused")
    monkeypatch.setattr(Simulation, "fork", refuse)
    for got, expected in zip(run_tasks(scenarios, calibration, scenario.run.seed, tasks, QueueCache()), alone):
        _same(got, expected)
    assert refused
