"""Simulations on a Dask cluster: a few local worker processes, or the cluster an operator already runs.

Every stage that fans simulations out (curve measurement, the closed loop's rounds, the strategies x
replications, the competitor variants) goes through :func:`optimize.run.parallel.simulate_tasks`.
Inside ``with using_cluster("local:4"):`` or ``with using_cluster("tcp://scheduler:8786"):`` those
runs go to the workers of a Dask cluster instead of a local process pool::

    from optimize.run.cluster import using_cluster
    from optimize.run.pipeline import run

    with using_cluster("tcp://10.0.0.5:8786"):      # a `dask scheduler` with its `dask worker`s
        outcome = run(scenario)

The cluster is a property of where a plan is computed, not of the market, so it is not in the scenario:
the command line's ``--cluster`` or the environment's ``RETENTION_CLUSTER`` name it.

Each run is fixed by its scenario, allocation, seed and replication, so where it runs changes nothing:
the scenario and calibration go to every worker once per stage (scattered with broadcast), each
replication's runs are one task, and the outcomes come back in task order, the same bytes as one
process gives. A task is a pure function of its inputs, so a task whose worker is lost mid-run is
simply run again elsewhere and gives the same bytes. Each worker process keeps its compiled kernels
and a queue-outcome cache for as long as it lives.
"""

from __future__ import annotations

import contextvars
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the command line reads addresses and errors from here without loading the engine
    from sim.engine import Calibration
    from sim.queue_cache import QueueCache
    from sim.results import SimulationResult
    from sim.runner import Progress
    from sim.scenario import Scenario

    from .parallel import Task

ENVIRONMENT = "RETENTION_CLUSTER"
"""The environment variable naming the cluster when the command line names none."""
SCHEMES = ("tcp://", "tls://", "ws://", "wss://")
"""How a running scheduler's address starts (Dask's protocols between machines)."""
RETRIES = 3
"""Times a task that raised on a worker is tried again (a worker lost mid-task is rescheduled by the
scheduler itself, up to ``distributed.scheduler.allowed-failures`` times)."""
CONNECT_SECONDS = 10
"""How long to try reaching a running scheduler."""
WORKERS_SECONDS = 30
"""How long to wait for a reached scheduler to have a worker."""
LOCAL_WORKER_START = """\
import signal
# Ctrl-C reaches the whole process group: the command alone stops the run, cancels the tasks and closes
# its workers; a worker stopping on its own leaves its nanny waiting for it.
signal.signal(signal.SIGINT, signal.SIG_IGN)
import sim.engine  # loaded once per worker, before its first task
"""
"""Run in each worker process of a ``local:N`` cluster as it starts (a Dask preload, given as text)."""
POLL_SECONDS = 0.1
"""How often the wait for results looks for a Ctrl-C."""
FORMATS = "local:N (N local worker processes) or a scheduler's address such as tcp://host:8786"


class ClusterError(RuntimeError):
    """The cluster named cannot be used: unreachable, without workers, or running other code."""


@dataclass(frozen=True)
class ClusterAddress:
    """Where the simulations run: ``local`` worker processes, or a running scheduler's ``address``."""

    local: int | None
    """Worker processes of a cluster started for the command (one thread each), or None."""
    address: str | None
    """A running scheduler's address (``tcp://host:port``), or None."""

    def __str__(self) -> str:
        return f"local:{self.local}" if self.local is not None else str(self.address)


def parse_address(text: str) -> ClusterAddress:
    """``local:N`` or a scheduler address; a ValueError with the accepted forms otherwise."""
    value = text.strip()
    if value.startswith("local:"):
        count = value[len("local:"):]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"'{text}': local:N needs a whole number of workers N >= 1, e.g. local:2")
        return ClusterAddress(int(count), None)
    if value.startswith(SCHEMES):
        host_port = value.split("://", 1)[1]
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"'{text}': a scheduler's address needs a host and a port, e.g. tcp://10.0.0.5:8786")
        return ClusterAddress(None, value)
    raise ValueError(f"'{text}' is not a cluster: use {FORMATS}")


@dataclass(frozen=True)
class SharedInputs:
    """What every task of a stage reads: sent to each worker once, not with every task."""

    scenarios: dict[str, Scenario]
    calibration: Calibration
    seed: int


_held = threading.local()


def _queue_cache(inputs: str) -> QueueCache:
    """The worker thread's queue-outcome cache for one stage's inputs (a new stage, a new cache: the
    cache's keys hold what a window depends on under one calibration, not the calibration itself)."""
    from sim.queue_cache import QueueCache

    held = getattr(_held, "cache", None)
    if held is None or held[0] != inputs:
        held = _held.cache = (inputs, QueueCache())
    return held[1]


def simulate_chunk(shared: SharedInputs, inputs: str, tasks: list[Task]) -> list[SimulationResult]:
    """On a worker: one replication's runs, in order, on the worker's queue windows."""
    from .parallel import run_tasks

    return run_tasks(shared.scenarios, shared.calibration, shared.seed, tasks, _queue_cache(inputs))


def replicate(shared: SharedInputs, inputs: str, item: tuple[Callable[..., Any], int]) -> Any:
    """On a worker: one replication of a function of (scenario, calibration, seed, replication)."""
    work, replication = item
    return work(shared.scenarios[""], shared.calibration, shared.seed, replication)


def engine_version() -> str:
    """On a worker: the engine's version it imports (loading the engine's modules once, at start)."""
    import sim.engine  # noqa: F401  (the import is the point: numba's dispatchers are set up once)
    from sim import __version__

    return __version__


class Cluster:
    """A client of a Dask cluster, open for one command: started (``local:N``) or reached (an address)."""

    def __init__(self, where: ClusterAddress) -> None:
        self.where = where
        self._cluster: Any = None
        self._client: Any = None
        self._quieted: tuple[logging.Logger, int] | None = None
        self.workers = 0
        """Workers when the cluster was opened (a running cluster may gain or lose some later)."""

    def open(self) -> Cluster:
        from distributed import Client, LocalCluster

        from sim import __version__

        # The scheduler's and client's news (workers joining, keys released) is not the planner's: warnings
        # and errors still show.
        chatter = logging.getLogger("distributed")
        if chatter.level < logging.WARNING and logging.getLogger().level != logging.DEBUG:
            self._quieted = (chatter, chatter.level)
            chatter.setLevel(logging.WARNING)
        if self.where.local is not None:
            from .main_guard import require_main_guard

            require_main_guard()
            # One thread per worker: the engine is numpy and simpy under the GIL, a process is its unit. The
            # scheduler's web server on a free port, not 8787, which another cluster may hold.
            self._cluster = LocalCluster(n_workers=self.where.local, threads_per_worker=1, processes=True,
                                         dashboard_address=":0", scheduler_kwargs={"dashboard": False},
                                         silence_logs=logging.ERROR, preload=[LOCAL_WORKER_START])
            self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(self.where.address, timeout=CONNECT_SECONDS)
            except (OSError, TimeoutError) as exc:
                raise ClusterError(f"cannot reach the Dask scheduler at {self.where.address} ({exc})\n"
                                   f"    fix: start one there (`dask scheduler`, then `dask worker "
                                   f"{self.where.address}` on each machine) or correct the address") from None
            try:
                self._client.wait_for_workers(1, timeout=WORKERS_SECONDS)
            except TimeoutError:
                self.close()
                raise ClusterError(f"the Dask scheduler at {self.where.address} has no worker after "
                                   f"{WORKERS_SECONDS} s\n    fix: start workers with `dask worker "
                                   f"{self.where.address}`") from None
        try:
            versions = self._client.run(engine_version)
        except (ImportError, AttributeError) as exc:  # the function reaches the workers by name
            self.close()
            raise ClusterError(f"the workers of {self.where} cannot load the engine ({type(exc).__name__}: {exc})\n"
                               "    fix: install retention-planner, the same version, where the workers run") from None
        others = {worker: version for worker, version in versions.items() if version != __version__}
        if others:
            self.close()
            listed = ", ".join(f"{w} has {v}" for w, v in sorted(others.items()))
            raise ClusterError(f"the cluster's workers run another retention-planner ({listed}; this command "
                               f"runs {__version__})\n    fix: install the same version on every worker")
        self.workers = len(versions)
        return self

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
        if self._quieted is not None:
            self._quieted[0].setLevel(self._quieted[1])
            self._quieted = None

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` while open (for measuring the workers, as ``bench/whole_base.py`` does)."""
        return self._client

    def describe(self) -> dict[str, object]:
        """What the manifest records of where the simulations ran."""
        from distributed import __version__ as dask_version

        return {"backend": "dask", "cluster": str(self.where), "cluster_workers": self.workers,
                "dask_distributed": dask_version}

    def simulate(self, scenarios: dict[str, Scenario], tasks: list[Task], calibration: Calibration, seed: int, *,
                 chunk: int, stage: str, progress: Progress | None) -> list[SimulationResult]:
        """Every task's result in task order, ``chunk`` tasks (one replication's) to a worker task."""
        step = max(1, chunk)
        chunks = [tasks[start:start + step] for start in range(0, len(tasks), step)]
        found = self._fan_out(SharedInputs(scenarios, calibration, seed), simulate_chunk, chunks,
                              [len(part) for part in chunks], stage, progress)
        return [result for part in found for result in part]

    def map_replications(self, work: Callable[..., Any], scenario: Scenario, calibration: Calibration, seed: int,
                         replications: list[int]) -> list[Any]:
        """``work(scenario, calibration, seed, r)`` per replication ``r``, in order, one task each."""
        return self._fan_out(SharedInputs({"": scenario}, calibration, seed), replicate, [(work, r) for r in replications],
                             [1] * len(replications), "", None)

    def _fan_out(self, shared_inputs: SharedInputs, function: Callable[..., Any], items: list[Any], sizes: list[int],
                 stage: str, progress: Progress | None) -> list[Any]:
        """``function(shared, key, item)`` on the workers per item, the results in item order; progress counts
        ``sizes`` (an item's runs) as items finish."""
        from distributed import as_completed

        client = self._client
        found: list[Any] = [None] * len(items)
        done = 0
        with _stops_recorded() as stopped:
            shared = client.scatter(shared_inputs, broadcast=True, hash=False)
            futures = [client.submit(function, shared, shared.key, item, pure=False, retries=RETRIES) for item in items]
            index = {future.key: i for i, future in enumerate(futures)}
            try:
                finished = as_completed(futures, with_results=True)
                while not finished.is_empty():
                    if stopped:
                        raise KeyboardInterrupt
                    batch = finished.next_batch(block=False)
                    if not batch:
                        time.sleep(POLL_SECONDS)
                        continue
                    for future, outcome in batch:
                        if future.status == "error":
                            _raise_task_error(future)
                        i = index[future.key]
                        found[i] = outcome
                        done += sizes[i]
                        if progress:
                            progress(stage, done, sum(sizes))
            except BaseException:
                # Ctrl-C, a kill or an error: nothing of this stage keeps running on the cluster.
                client.cancel([*futures, shared], force=True)
                raise
            client.cancel([shared])
        return found


def _raise_task_error(future: Any) -> None:
    """A task's own error as it raised it, or, for a task that took its workers down one after another
    (most often: out of memory), what to do about it."""
    from distributed import KilledWorker

    try:
        future.result()
    except KilledWorker as exc:
        raise ClusterError(f"a task of the simulations took down each of the {exc.allowed_failures + 1} workers that ran "
                           "it (out of memory, most often)\n    fix: give the workers more memory (a replication takes "
                           "about 60 bytes per simulated line) or simulate fewer lines (run.scale)") from None


@contextmanager
def _stops_recorded() -> Iterator[list[int]]:
    """Ctrl-C and kills while waiting on the cluster are recorded, not raised where they land: raised
    inside the client's own locks they would leave it unable to cancel the tasks and close."""
    stopped: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield stopped
        return
    previous = {stop: signal.signal(stop, lambda number, _frame: stopped.append(number))
                for stop in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopped
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


_active: contextvars.ContextVar[Cluster | None] = contextvars.ContextVar("retention_cluster", default=None)


def active() -> Cluster | None:
    """The cluster the simulations go to now (inside :func:`using_cluster`), or None."""
    return _active.get()


@contextmanager
def using_cluster(where: str | ClusterAddress | None) -> Iterator[Cluster | None]:
    """Within the block, every fan-out of simulations runs on the cluster ``where`` names (None: as
    without the block). A cluster started here (``local:N``) is shut down when the block ends, also on
    Ctrl-C or an error; a running one is left running, with nothing of this command's left on it."""
    if where is None:
        yield None
        return
    cluster = Cluster(parse_address(where) if isinstance(where, str) else where)
    try:
        cluster.open()
        token = _active.set(cluster)
        try:
            yield cluster
        finally:
            _active.reset(token)
    finally:
        cluster.close()


__all__ = ["ENVIRONMENT", "Cluster", "ClusterAddress", "ClusterError", "SharedInputs", "active", "parse_address",
           "replicate", "simulate_chunk", "using_cluster"]
