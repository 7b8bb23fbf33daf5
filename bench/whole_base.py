"""An operator's whole base on a Dask cluster: the baseline scaled to 100M lines, a replication per worker.

One command measures it and writes ``bench/results-whole-base.json``::

    .venv/bin/python bench/whole_base.py                      # 100M lines, local:2, two replications
    .venv/bin/python bench/whole_base.py --lines 1e6 --quick  # a smoke test (writes nothing)
    .venv/bin/python bench/whole_base.py --cluster tcp://scheduler:8786   # on a running cluster

What it runs: ``scenarios/baseline.yaml`` scaled to the size (``bench/workload.py``: every count, capacity
and the budget scaled together), calibrated here once (``sim.engine.prepare``), the benchmark's
revenue-proportional allocation spent over the full horizon; then the product's own fan-out,
:func:`optimize.run.parallel.simulate_tasks` inside :func:`optimize.run.cluster.using_cluster`, one task
per replication, as many replications as the cluster has workers, so each worker runs one.

What it measures, on each worker (through the cluster's client, outside the task):

* memory: the worker process's peak resident set (kernel ``VmHWM``, reset just before the tasks are
  sent) minus its resident set at that moment, divided by the scenario's lines: the scenario and
  calibration received, the population, every temporary array of the run and the result until it is
  gathered. Each worker first runs one month of the baseline at 500k lines, so the engine's compiled
  passes are loaded (once per worker, whatever it runs later) before the mark; that warm-up's own
  growth of the resident set is reported apart;
* time: the worker process's CPU time over the task (building the population and the 36 months), and
  the wall time of the whole fan-out as the caller sees it (sending inputs, running, gathering).

The replications' figures are checked against each other (common random numbers are not shared across
replications, so they differ; both must have churned and spent) and their total lines at the start
against the scenario's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pickle
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

RESULTS = HERE / "results-whole-base.json"
TARGET_BYTES_PER_LINE = 64.0


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def worker_mark() -> dict:
    """On a worker: reset the peak-RSS mark and read where it starts (RSS and CPU time now)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    times = os.times()
    return {"pid": os.getpid(), "peak_reset": reset, "rss_bytes": _status_kb("VmRSS") * 1024,
            "cpu_seconds": times.user + times.system}


def worker_read() -> dict:
    """On a worker: its peak RSS since the mark and its CPU time now."""
    times = os.times()
    return {"pid": os.getpid(), "peak_rss_bytes": _status_kb("VmHWM") * 1024, "rss_bytes": _status_kb("VmRSS") * 1024,
            "cpu_seconds": times.user + times.system}


def worker_warm_up(calibration, seed: int) -> dict:
    """On a worker: one month of the baseline at 500k lines, so that the engine's compiled passes are
    loaded (once per worker, as for any first task) before the replication is measured. Above 200,000
    units a tier's offers are ranked through a sampled threshold: large enough to take that path too."""
    from workload import revenue_allocation, scaled_baseline

    from sim.engine import Simulation

    before = _status_kb("VmRSS") * 1024
    start = time.perf_counter()
    scenario, _ = scaled_baseline(500_000)
    Simulation(scenario, revenue_allocation(scenario), calibration, seed, 0).run(months=1)
    return {"seconds": time.perf_counter() - start, "rss_before_bytes": before, "rss_after_bytes": _status_kb("VmRSS") * 1024}


def _machine() -> dict:
    import numpy
    import pandas

    import distributed

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "python": platform.python_version(), "numpy": numpy.__version__, "pandas": pandas.__version__,
            "dask_distributed": distributed.__version__, "platform": platform.platform()}


def measure(lines: float, where: str) -> dict:
    from workload import allocation_summary, revenue_allocation, scaled_baseline

    from optimize.run.cluster import SharedInputs, using_cluster
    from optimize.run.parallel import Task, simulate_tasks
    from sim.engine import prepare

    out: dict = {"requested_lines": lines, "cluster": where}
    start = time.perf_counter()
    scenario, factor = scaled_baseline(lines)
    allocation = revenue_allocation(scenario)
    out.update(lines=scenario.total_lines, units=sum(t.unit_count for t in scenario.tiers.values()),
               scale_factor=factor, months=scenario.meta.horizon_months,
               allocation=allocation_summary(scenario, allocation), scenario_seconds=time.perf_counter() - start)
    seed = scenario.run.seed
    start = time.perf_counter()
    calibration = prepare(scenario, seed)
    out["prepare_seconds"] = time.perf_counter() - start
    shared = SharedInputs({"": scenario}, calibration, seed)
    out["inputs_sent_per_worker_bytes"] = len(pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL))

    start = time.perf_counter()
    with using_cluster(where) as cluster:
        assert cluster is not None
        out["cluster_start_seconds"] = time.perf_counter() - start
        client = cluster.client
        workers = cluster.workers
        tasks = [Task("", allocation, r) for r in range(workers)]
        # The bench folder on the workers' path (a local cluster's workers share this machine's files).
        client.run(sys.path.insert, 0, str(HERE))
        out["warm_up"] = client.run(worker_warm_up, calibration, seed)
        marks = client.run(worker_mark)
        start = time.perf_counter()
        results = simulate_tasks({"": scenario}, tasks, calibration, seed, chunk=1)
        out["fan_out_wall_seconds"] = time.perf_counter() - start
        reads = client.run(worker_read)
    per_worker = []
    for address, mark in sorted(marks.items()):
        read = reads.get(address)
        if read is None or read["pid"] != mark["pid"]:
            raise RuntimeError(f"worker {address} was replaced during the measurement; run again")
        increase = read["peak_rss_bytes"] - mark["rss_bytes"]
        per_worker.append({"worker": address, "peak_reset": mark["peak_reset"], "rss_before_bytes": mark["rss_bytes"],
                           "peak_rss_bytes": read["peak_rss_bytes"], "peak_rss_increase_bytes": increase,
                           "peak_rss_increase_per_line": increase / scenario.total_lines,
                           "task_cpu_seconds": read["cpu_seconds"] - mark["cpu_seconds"]})
    out["workers"] = per_worker
    out["replications"] = []
    for result in results:
        months = result.monthly
        first = months[months["month"] == months["month"].min()]
        out["replications"].append({
            "replication": int(months["replication"].iloc[0]),
            "lines_start": float(first["lines_start"].sum()),
            "line_months": float(months["lines_start"].sum()),
            "mean_monthly_churn_lines": float(months["churned_lines"].sum() / months["lines_start"].sum()),
            "retention_spend": float(months["retention_spend"].sum()),
        })
    out["max_peak_rss_increase_per_line"] = max(w["peak_rss_increase_per_line"] for w in per_worker)
    out["max_task_cpu_seconds"] = max(w["task_cpu_seconds"] for w in per_worker)
    out["within_target"] = out["max_peak_rss_increase_per_line"] <= TARGET_BYTES_PER_LINE
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=float, default=100e6, help="lines of the scaled baseline (default 100M)")
    parser.add_argument("--cluster", default="local:2", help="where: local:N or a scheduler's address (default local:2)")
    parser.add_argument("--quick", action="store_true", help="do not write the results file")
    parser.add_argument("--out", type=Path, help=f"results file (default {RESULTS.name} unless --quick)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.perf_counter()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "sim", "optimize"], capture_output=True, text=True,
                                cwd=HERE.parent).stdout.strip())
    figures = measure(args.lines, args.cluster)
    report = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "command": " ".join(["python", "bench/whole_base.py", *sys.argv[1:]]),
              "machine": _machine(), "commit": commit, "uncommitted_edits": dirty,
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "total_seconds": time.perf_counter() - started, "target_bytes_per_line": TARGET_BYTES_PER_LINE,
              "results": figures}
    print(json.dumps(report, indent=1))
    path = args.out or (None if args.quick else RESULTS)
    if path is not None:
        path.write_text(json.dumps(report, indent=1) + "\n")
        print(f"written to {path}")


if __name__ == "__main__":
    main()
