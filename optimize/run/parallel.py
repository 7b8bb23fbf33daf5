"""Many simulation runs of one scenario, in this process, in a pool of worker processes or on a cluster.

Curve measurement and strategy comparison both run one scenario (or a few competitor
variants) under many allocations and replications. Each run is fixed by its scenario,
allocation, seed and replication, so where it runs changes nothing: outcomes come back in
task order, the same bytes with one worker or several. Each process keeps one queue-outcome
cache, and tasks are handed out in chunks of one replication, so the runs of a replication
share their contact-center windows. Inside :func:`optimize.run.cluster.using_cluster` the runs go
to a Dask cluster instead (:mod:`optimize.run.cluster`), on the same terms.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.pool import Pool
from typing import TypeVar

from sim.allocation import Allocation
from sim.engine import Calibration, Simulation
from sim.queue_cache import QueueCache
from sim.results import SimulationResult
from sim.runner import Progress
from sim.scenario import Scenario


@dataclass(frozen=True)
class Task:
    scenario: str
    """Key into the scenarios handed to :func:`simulate_tasks` (a competitor variant, or '')."""
    allocation: Allocation
    replication: int


R = TypeVar("R")

_WORKER: dict[str, object] = {}


def _init(scenarios: dict[str, Scenario], calibration: Calibration, seed: int,
          queue_cache: QueueCache | None = None) -> None:
    _WORKER.update(scenarios=scenarios, calibration=calibration, seed=seed,
                   queues=queue_cache if queue_cache is not None else QueueCache())


def _init_process(scenarios: dict[str, Scenario], calibration: Calibration, seed: int) -> None:
    # Ctrl-C reaches the whole process group; the parent alone stops the run and cleans up.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init(scenarios, calibration, seed)


def run_task(scenarios: dict[str, Scenario], calibration: Calibration, seed: int, task: Task,
             queues: QueueCache) -> SimulationResult:
    """One run: a pure function of its inputs (the queue cache changes how fast, not what)."""
    records = Simulation(scenarios[task.scenario], task.allocation, calibration, seed, task.replication,
                         queue_cache=queues).run()
    return SimulationResult.from_records(records, task.replication)


def _run(task: Task) -> SimulationResult:
    return run_task(_WORKER["scenarios"], _WORKER["calibration"], _WORKER["seed"], task,  # type: ignore[arg-type]
                    _WORKER["queues"])  # type: ignore[arg-type]


def backend(workers: int) -> dict[str, object]:
    """Where the fan-outs run now, as the manifest records it: the cluster of an enclosing
    :func:`~optimize.run.cluster.using_cluster`, else ``workers`` local processes."""
    from .cluster import active

    cluster = active()
    return cluster.describe() if cluster is not None else {"backend": "processes", "workers": workers}


def simulate_tasks(scenarios: dict[str, Scenario], tasks: list[Task], calibration: Calibration, seed: int, *,
                   workers: int = 1, chunk: int = 1, stage: str = "simulating", progress: Progress | None = None,
                   queue_cache: QueueCache | None = None) -> list[SimulationResult]:
    """Every task's result, in task order. ``chunk``: tasks handed to a worker at once (one replication's).

    On the cluster of an enclosing :func:`~optimize.run.cluster.using_cluster` if there is one (``workers``
    is then the cluster's), else in ``workers`` processes."""
    from .cluster import active

    outcomes: list[SimulationResult] = []
    if progress:
        progress(stage, 0, len(tasks))  # the bar's clock starts now, not at the first finished chunk
    cluster = active()
    if cluster is not None and tasks:
        return cluster.simulate(scenarios, tasks, calibration, seed, chunk=chunk, stage=stage, progress=progress)
    if workers <= 1 or len(tasks) <= 1:
        _init(scenarios, calibration, seed, queue_cache)
        for i, task in enumerate(tasks, start=1):
            outcomes.append(_run(task))
            if progress:
                progress(stage, i, len(tasks))
        return outcomes
    # Leaving the block terminates the workers, also on Ctrl-C or an error: queued runs are dropped.
    with _pool(workers, scenarios, calibration, seed) as pool:
        for i, outcome in enumerate(pool.imap(_run, tasks, chunksize=max(1, chunk)), start=1):
            outcomes.append(outcome)
            if progress:
                progress(stage, i, len(tasks))
    return outcomes


def map_replications(work: Callable[[Scenario, Calibration, int, int], R], scenario: Scenario,
                     calibration: Calibration, seed: int, replications: list[int], *, workers: int = 1) -> list[R]:
    """``work(scenario, calibration, seed, r)`` for each replication ``r``, in order: runs other than
    :class:`~sim.engine.Simulation`'s own (the churn drivers' decomposing runs) fanned out as the
    simulations are. ``work`` is a module's function (or a ``functools.partial`` of one), so that it
    reaches the workers by name."""
    from .cluster import active

    cluster = active()
    if cluster is not None and replications:
        return cluster.map_replications(work, scenario, calibration, seed, replications)
    if workers <= 1 or len(replications) <= 1:
        return [work(scenario, calibration, seed, r) for r in replications]
    with _pool(min(workers, len(replications)), {"": scenario}, calibration, seed) as pool:
        return pool.map(_replicate, [(work, r) for r in replications])


def _replicate(item: tuple[Callable[[Scenario, Calibration, int, int], R], int]) -> R:
    work, replication = item
    scenarios: dict[str, Scenario] = _WORKER["scenarios"]  # type: ignore[assignment]
    return work(scenarios[""], _WORKER["calibration"], _WORKER["seed"], replication)  # type: ignore[arg-type]


def _pool(workers: int, scenarios: dict[str, Scenario], calibration: Calibration, seed: int) -> Pool:
    """``workers`` started processes, each holding the scenarios and calibration."""
    # spawn, not fork: the parent may hold threads (the progress bar), which fork does not copy safely.
    context = multiprocessing.get_context("spawn")
    # A stop while the workers start would cut the scenario and calibration they are being sent, and each
    # would report a half-read message: stops wait until they have started (then the block ends the run).
    stopped: list[int] = []
    handlers = {stop: signal.signal(stop, lambda number, _frame: stopped.append(number))
                for stop in (signal.SIGINT, signal.SIGTERM)}
    try:
        pool = context.Pool(workers, initializer=_init_process, initargs=(scenarios, calibration, seed))
    finally:
        for stop, handler in handlers.items():
            signal.signal(stop, handler)
    if stopped:
        pool.terminate()
        pool.join()
        signal.raise_signal(stopped[0])
    return pool
