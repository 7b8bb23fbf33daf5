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

import contextvars
import multiprocessing
import os
import pickle
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.pool import Pool
from typing import Any, TypeVar

from sim.allocation import Allocation
from sim.engine import Calibration, Simulation
from sim.population import REUSED_BASE_BYTES
from sim.queue_cache import QueueCache
from sim.results import SimulationResult
from sim.runner import Progress
from sim.scenario import Scenario
from sim.shared_months import shared_starts

from .main_guard import require_main_guard


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
    return run_tasks(scenarios, calibration, seed, [task], queues)[0]


def run_tasks(scenarios: dict[str, Scenario], calibration: Calibration, seed: int, tasks: list[Task],
              queues: QueueCache, finished: Callable[[], None] | None = None) -> list[SimulationResult]:
    """The runs of ``tasks`` in order, each the same bytes as :func:`run_task`'s: a run whose first months
    are an earlier run's (the same replication and scenario, the same cells up to a period's end) starts
    as a copy of that run at that month's end (:mod:`sim.shared_months`), unless the copies would hold
    more than :data:`~sim.population.REUSED_BASE_BYTES`. ``finished`` is called as each run ends."""
    starts = shared_starts([((task.scenario, task.replication), scenarios[task.scenario], task.allocation)
                            for task in tasks])
    stops: dict[int, dict[int, list[int]]] = {}
    for child, start in enumerate(starts):
        if start.parent is not None:
            stops.setdefault(start.parent, {}).setdefault(start.month, []).append(child)
    copies: dict[int, Simulation] = {}
    results = []
    for index, task in enumerate(tasks):
        simulation = copies.pop(index, None) or Simulation(scenarios[task.scenario], task.allocation, calibration,
                                                           seed, task.replication, queue_cache=queues)
        for month, children in sorted(stops.get(index, {}).items()):
            simulation.run(month)
            held = sum(state.nbytes() for state in simulation.tiers) * (len(copies) + len(children) + 1)
            for child in children if held <= REUSED_BASE_BYTES else ():
                try:
                    copies[child] = simulation.fork(tasks[child].allocation)
                except ValueError:  # a copy refused (see Simulation.fork): the child runs from the start, alike
                    pass
        results.append(SimulationResult.from_records(simulation.run(), task.replication))
        if finished is not None:
            finished()
    return results


def _run_chunk(tasks: list[Task]) -> list[SimulationResult]:
    return run_tasks(_WORKER["scenarios"], _WORKER["calibration"], _WORKER["seed"], tasks,  # type: ignore[arg-type]
                     _WORKER["queues"])  # type: ignore[arg-type]


class _KeptPool:
    """One pool of worker processes for a whole command: started at its first fan-out, its workers
    keep their compiled kernels and queue-outcome caches from stage to stage (a window's key holds
    everything its outcome depends on, so a stage reuses another's windows only where they are the
    same). A stage's scenarios and calibration reach the workers through a file each reads once."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: Pool | None = None
        self.folder = tempfile.TemporaryDirectory(prefix="retention-stage-")
        self.stages = 0

    def stage(self, scenarios: dict[str, Scenario], calibration: Calibration, seed: int) -> tuple[Pool, str]:
        """The pool (started if not yet) and the file holding this stage's inputs."""
        if self.pool is None:
            self.pool = _pool(self.workers, {}, calibration, seed)
        self.stages += 1
        path = os.path.join(self.folder.name, f"stage-{self.stages}.pickle")
        with open(path, "wb") as file:
            pickle.dump((scenarios, calibration, seed), file, protocol=pickle.HIGHEST_PROTOCOL)
        return self.pool, path

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
        self.folder.cleanup()


_kept: contextvars.ContextVar[_KeptPool | None] = contextvars.ContextVar("retention_kept_pool", default=None)


@contextmanager
def keeping_workers(workers: int) -> Iterator[None]:
    """Within the block, every fan-out over ``workers`` processes shares one pool, started at the first
    and ended with the block (also on Ctrl-C or an error): a command's stages then pay for starting
    processes and simulating their hotline windows once. Results are the same bytes as without it."""
    if workers <= 1:
        yield
        return
    kept = _KeptPool(workers)
    token = _kept.set(kept)
    try:
        yield
    finally:
        _kept.reset(token)
        kept.close()


def _load_stage(path: str) -> None:
    """This worker's inputs for the stage whose file is ``path`` (read once per stage); its queue cache
    stays."""
    if _WORKER.get("stage") != path:
        with open(path, "rb") as file:
            scenarios, calibration, seed = pickle.load(file)
        _WORKER.update(stage=path, scenarios=scenarios, calibration=calibration, seed=seed)


def _run_chunk_in_stage(item: tuple[str, list[Task]]) -> list[SimulationResult]:
    _load_stage(item[0])
    return _run_chunk(item[1])


def _replicate_in_stage(item: tuple[str, tuple[Callable[..., Any], int]]) -> Any:
    _load_stage(item[0])
    return _replicate(item[1])


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
    step = max(1, chunk)
    chunks = [tasks[start:start + step] for start in range(0, len(tasks), step)]

    def gather(found: Iterator[list[SimulationResult]]) -> list[SimulationResult]:
        for part in found:
            outcomes.extend(part)
            if progress:
                progress(stage, len(outcomes), len(tasks))
        return outcomes

    if workers <= 1 or len(tasks) <= 1:
        _init(scenarios, calibration, seed, queue_cache)
        ended = iter(range(1, len(tasks) + 1))

        def finished() -> None:  # in this process, the bar moves run by run
            done = next(ended)
            if progress:
                progress(stage, done, len(tasks))
        for part in chunks:
            outcomes.extend(run_tasks(scenarios, calibration, seed, part, _WORKER["queues"], finished))  # type: ignore[arg-type]
        return outcomes
    kept = _kept.get()
    if kept is not None and kept.workers == workers:
        pool, path = kept.stage(scenarios, calibration, seed)
        return gather(pool.imap(_run_chunk_in_stage, [(path, part) for part in chunks]))
    # Leaving the block terminates the workers, also on Ctrl-C or an error: queued runs are dropped.
    with _pool(workers, scenarios, calibration, seed) as pool:
        return gather(pool.imap(_run_chunk, chunks))


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
    kept = _kept.get()
    if kept is not None and kept.workers == workers:
        pool, path = kept.stage({"": scenario}, calibration, seed)
        return pool.map(_replicate_in_stage, [(path, (work, r)) for r in replications], chunksize=1)
    with _pool(min(workers, len(replications)), {"": scenario}, calibration, seed) as pool:
        return pool.map(_replicate, [(work, r) for r in replications])


def _replicate(item: tuple[Callable[[Scenario, Calibration, int, int], R], int]) -> R:
    work, replication = item
    scenarios: dict[str, Scenario] = _WORKER["scenarios"]  # type: ignore[assignment]
    return work(scenarios[""], _WORKER["calibration"], _WORKER["seed"], replication)  # type: ignore[arg-type]


def begin_calls(calls: list[tuple[Callable[..., R], tuple[Any, ...]]]) -> Callable[[], list[R]]:
    """``function(*arguments)`` for each call, begun now on the command's kept workers while this process
    goes on (the report's charts are drawn while the tables are written); the returned function waits
    for the results, in the calls' order. Without workers already started (one worker, a cluster, or a
    command that simulated nothing), the calls run in this process when their results are asked for.
    Each function and its arguments reach a worker by pickling: a module's function, plain data."""
    kept = _kept.get()
    if kept is None or kept.pool is None:
        return lambda: [function(*arguments) for function, arguments in calls]
    pending = kept.pool.map_async(_call, calls, chunksize=1)
    return pending.get


def _call(item: tuple[Callable[..., R], tuple[Any, ...]]) -> R:
    function, arguments = item
    return function(*arguments)


def _pool(workers: int, scenarios: dict[str, Scenario], calibration: Calibration, seed: int) -> Pool:
    """``workers`` started processes, each holding the scenarios and calibration."""
    require_main_guard()
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
