"""The simulations on a Dask cluster give the bytes one process gives: ``retention run`` on a local
cluster of two workers and on a scheduler with two workers started as separate processes, a worker
killed mid-run, and a stop (Ctrl-C) that leaves no task and no process behind."""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from optimize.cli.main import main
from optimize.run.cluster import parse_address, using_cluster
from optimize.run.parallel import Task, simulate_tasks
from optimize.run.strategies import rule_allocation
from sim.allocation import Allocation
from sim.calibration_cache import calibrated
from sim.engine import prepare
from sim.scenario import load_scenario

from .conftest import ROOT

RUN = ["--reps", "2", "--strategies", "uniform", "lp_optimal"]


@pytest.fixture(scope="module")
def market(quick_small: Path):  # type: ignore[no-untyped-def]
    """The market, fitted once: this process keeps the fit, and the commands below reuse it (fitting is
    the same bytes wherever its pilots run, which the last test checks)."""
    scenario = load_scenario(quick_small)
    return quick_small, scenario, calibrated(scenario, scenario.run.seed)


@pytest.fixture(scope="module")
def serial(market, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("serial") / "run"
    assert main(["-q", "run", str(market[0]), *RUN, "--workers", "1", "--out", str(out)]) == 0
    return out


def _same_files(one: Path, two: Path) -> None:
    names = sorted(p.name for p in one.iterdir() if p.name != "manifest.json")
    assert len(names) >= 20 and names == sorted(p.name for p in two.iterdir() if p.name != "manifest.json")
    for name in names:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def _manifest(folder: Path) -> dict:
    import json

    return json.loads((folder / "manifest.json").read_text())


def test_a_local_cluster_gives_the_same_bytes(market, serial: Path, tmp_path: Path) -> None:
    out = tmp_path / "local2"
    # A folder of its own, beside no curve cache: the curves are measured again, on the cluster.
    assert main(["-q", "run", str(market[0]), *RUN, "--cluster", "local:2", "--out", str(out)]) == 0
    _same_files(serial, out)
    assert _manifest(serial)["backend"] == "processes"
    recorded = _manifest(out)
    assert recorded["response_curve_runs"] > 0
    assert (recorded["backend"], recorded["cluster"], recorded["cluster_workers"]) == ("dask", "local:2", 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def scheduler():  # type: ignore[no-untyped-def]
    """A ``dask scheduler`` and two single-threaded ``dask worker`` processes on localhost (without nanny,
    so that a killed worker stays lost); yields the address and the workers' processes."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{_free_port()}"
    port = address.rsplit(":", 1)[1]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT, "start_new_session": True}
    processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                   "--port", port, "--no-dashboard"], **quiet)]
    try:
        workers = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                     "--no-nanny", "--no-dashboard"], **quiet) for _ in range(2)]
        processes += workers
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address, workers
    finally:
        for process in reversed(processes):  # nothing of theirs is kept: no need to wait for a clean exit
            process.kill()
            process.wait()


def test_a_scheduler_and_workers_give_the_same_bytes(market, serial: Path, scheduler, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    address, _ = scheduler
    out = tmp_path / "scheduler"
    monkeypatch.setenv("RETENTION_CLUSTER", address)  # named by the environment, as on a cluster's login node
    assert main(["-q", "run", str(market[0]), *RUN, "--out", str(out)]) == 0
    _same_files(serial, out)
    recorded = _manifest(out)
    assert recorded["response_curve_runs"] > 0
    assert (recorded["backend"], recorded["cluster"], recorded["cluster_workers"]) == ("dask", address, 2)


def _tasks(scenario) -> list[Task]:  # type: ignore[no-untyped-def]
    spread = rule_allocation(scenario, "uniform")
    return [Task("", allocation, r) for r in range(6) for allocation in (Allocation.empty(), spread)]


def test_a_worker_lost_mid_run_changes_nothing(market, scheduler) -> None:
    _, scenario, calibration = market
    address, workers = scheduler
    tasks = _tasks(scenario)
    alone = simulate_tasks({"": scenario}, tasks, calibration, scenario.run.seed, chunk=2)
    killed: list[int] = []
    with using_cluster(address) as cluster:
        assert cluster is not None
        pids = cluster.client.run(os.getpid)

        def kill_a_busy_worker(stage: str, done: int, total: int) -> None:
            if done and not killed:
                busy = [w for w, keys in cluster.client.processing().items() if keys]
                assert busy, "no worker is running a task: nothing would be lost"
                killed.append(pids[busy[0]])
                os.kill(pids[busy[0]], signal.SIGKILL)

        spread = simulate_tasks({"": scenario}, tasks, calibration, scenario.run.seed, chunk=2,
                                progress=kill_a_busy_worker)
        assert len(cluster.client.scheduler_info()["workers"]) == 1
    assert killed and any(w.pid == killed[0] and w.wait(timeout=10) == -signal.SIGKILL for w in workers)
    assert [pickle.dumps(r) for r in spread] == [pickle.dumps(r) for r in alone]


def test_a_stopped_fan_out_leaves_no_task_on_a_running_cluster(market, scheduler) -> None:
    _, scenario, calibration = market
    address, _ = scheduler

    def stop(stage: str, done: int, total: int) -> None:
        if done:
            raise KeyboardInterrupt

    with using_cluster(address) as cluster:
        assert cluster is not None
        with pytest.raises(KeyboardInterrupt):
            simulate_tasks({"": scenario}, _tasks(scenario) * 4, calibration, scenario.run.seed, chunk=2,
                           progress=stop)
        deadline = time.monotonic() + 20
        left = -1
        while time.monotonic() < deadline and left != 0:
            left = cluster.client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
            time.sleep(0.2)
        assert left == 0


STOPPABLE = textwrap.dedent("""
    import pickle, signal, sys
    from optimize.run.cluster import using_cluster
    from optimize.run.parallel import Task, simulate_tasks
    from sim.allocation import Allocation

    def started(stage, done, total):
        if done:
            print("started", flush=True)

    if __name__ == "__main__":
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with Ctrl-C ignored
        scenario, calibration = pickle.load(open(sys.argv[1], "rb"))
        tasks = [Task("", Allocation.empty(), r) for r in range(400)]
        try:
            with using_cluster("local:2"):
                simulate_tasks({"": scenario}, tasks, calibration, scenario.run.seed, progress=started)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(130)
""")


def test_ctrl_c_stops_a_local_cluster_and_leaves_no_process(market, tmp_path: Path) -> None:
    _, scenario, calibration = market
    inputs, script = tmp_path / "inputs.pkl", tmp_path / "stoppable.py"
    inputs.write_bytes(pickle.dumps((scenario, calibration)))
    script.write_text(STOPPABLE)
    # Its own process group, as a command typed in a terminal.
    process = subprocess.Popen([sys.executable, str(script), str(inputs)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "started"
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 2  # the two workers (and multiprocessing's helper)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends: the whole group
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130 and "interrupted" in out, err
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], [p.cmdline() for p in alive]


@pytest.mark.parametrize("text, fix", [("local:0", "N >= 1"), ("local:two", "N >= 1"), ("tcp://nohost", "a port"),
                                       ("scheduler:8786", "local:N")])
def test_a_wrong_cluster_says_what_to_type(text: str, fix: str) -> None:
    with pytest.raises(ValueError, match=fix):
        parse_address(text)


def test_an_unreachable_scheduler_is_a_clear_error(market, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from optimize.run import cluster

    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 2)  # nothing listens there: no need to try for long
    address = f"tcp://127.0.0.1:{_free_port()}"
    code = main(["-q", "optimize", str(market[0]), "--cluster", address, "--out", "/nonexistent/never"])
    err = capsys.readouterr().err
    assert code == 2 and f"cannot reach the Dask scheduler at {address}" in err and "fix:" in err
    assert "Traceback" not in err


def test_the_pilots_of_fitting_the_stated_churn_give_the_same_calibration_on_a_cluster(market) -> None:
    from functools import partial

    from optimize.run.parallel import map_replications

    _, scenario, calibration = market
    with using_cluster("local:2") as cluster:
        assert cluster is not None
        spread = prepare(scenario, scenario.run.seed, fan_out=partial(map_replications, workers=2))
    assert pickle.dumps(spread) == pickle.dumps(calibration)
