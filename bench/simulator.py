"""Simulator benchmark: subscriber-months per second, memory per line, and the agent-per-subscriber reference.

One command measures everything and writes ``bench/results-simulator.json``::

    .venv/bin/python bench/simulator.py

What it runs, each measurement in a fresh process (so peak memory is that measurement's own):

1. the baseline market scaled to 1M and 10M lines (``bench/workload.py``), full event mix: outages,
   hotline, competitors, and retention offers spending a revenue-proportional allocation over every
   valid tier x lever x period cell; one replication of the 36-month horizon timed
   (``Simulation.run``), calibration (``prepare``) timed apart, and the time inside each event
   source (hotline, outages, proactive offers, billing and churn) measured by wrapping the
   simulation's own methods on the instance;
2. memory: peak resident-set increase over the run per line, the population arrays' bytes per line,
   and the traced heap peak (tracemalloc) over the first months at 10M lines;
3. at 100k lines: the agent-per-subscriber simpy reference (``bench/reference_agents.py``) against the
   vectorized engine with every event source on, and with outages, hotline and offers off (the same
   churn logic as the reference), plus a check that the reference and the engine churn alike;
4. a cProfile of the 10M-line run: the hot spots by cumulative and by own time.

``--quick`` runs small sizes as a smoke test (does not overwrite the results file unless --out is given).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import math
import os
import pickle
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

RESULTS = HERE / "results-simulator.json"
CHURN_ONLY_REPEATS = 3
"""Runs of the engine's churn-only 100k run (the same run each time); the fastest is the figure."""

TARGETS = {
    "ratio_to_reference": 100.0,
    "line_months_per_second_per_core_10M": 50e6,
    "bytes_per_line": 64.0,
    "seconds_per_replication_10M_36_months": 10.0,
}

# Phases timed by wrapping the simulation's methods (on the instance; the engine is not edited).
PHASES = {
    "_serve_calls": "hotline (contact center)",
    "_outage_hits": "outages (hits, satisfaction, calls)",
    "_proactive_offers": "proactive retention offers",
    "_billing": "billing: churn, save desk, adds, market flows, ageing",
}
SUB_PHASES = {"_save_desk": "save desk", "_competitor_flows": "competitor flows and win-backs",
              "_age": "ageing and contract renewals", "_sparse_effects": "sparse hazard effects"}


# ------------------------------------------------------------------------------------------------
# memory probes
# ------------------------------------------------------------------------------------------------
def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    kb = _status_kb("VmRSS")
    if kb is None:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return kb * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process; False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    kb = _status_kb("VmHWM")
    if kb is None:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return kb * 1024


# ------------------------------------------------------------------------------------------------
# workers (each runs in its own process)
# ------------------------------------------------------------------------------------------------
def _timed_methods(sim, names: dict[str, str]) -> Counter:
    """Replace ``sim.<name>`` by a timing wrapper on this instance; returns the seconds per name."""
    seconds: Counter = Counter()
    for name in names:
        original = getattr(sim, name)

        def timed(*args, __original=original, __name=name, **kwargs):
            start = time.perf_counter()
            try:
                return __original(*args, **kwargs)
            finally:
                seconds[__name] += time.perf_counter() - start

        setattr(sim, name, timed)
    return seconds


def _warm_up() -> float:
    """Compile the engine's passes before anything is timed: the snapshot of ``sim/`` starts with no
    machine code cached, and compiling inside the first timed run would count it as simulation."""
    from workload import revenue_allocation, scaled_baseline

    from sim.engine import Simulation, prepare

    start = time.perf_counter()
    # Above 200,000 units a tier's offers are ranked through a sampled threshold: large enough to take
    # that path too.
    scenario, _ = scaled_baseline(500_000)
    Simulation(scenario, revenue_allocation(scenario), prepare(scenario, 1), 1, 0).run(months=1)
    return time.perf_counter() - start


def _calibration(scenario, cache: str | None):
    from sim.engine import prepare

    if cache and os.path.exists(cache):
        with open(cache, "rb") as f:
            return pickle.load(f), None
    start = time.perf_counter()
    calibration = prepare(scenario, scenario.run.seed)
    seconds = time.perf_counter() - start
    if cache:
        with open(cache, "wb") as f:
            pickle.dump(calibration, f)
    return calibration, seconds


def _run_summary(records, seconds: float, months: int) -> dict:
    import pandas as pd

    tm = pd.DataFrame(records.tier_months)
    line_months = float(tm["lines_start"].sum())
    unit_months = float(tm["units_start"].sum())
    churned_lines = float(tm["churned_lines"].sum())
    churned_units = float(tm["churned_units"].sum())
    spend = float(sum(records.levers.spend.values()))
    return {
        "months": months,
        "run_seconds": seconds,
        "seconds_per_month": seconds / months,
        "line_months": line_months,
        "unit_months": unit_months,
        "line_months_per_second": line_months / seconds,
        "unit_months_per_second": unit_months / seconds,
        "mean_monthly_churn_lines": churned_lines / line_months if line_months else float("nan"),
        "mean_monthly_churn_units": churned_units / unit_months if unit_months else float("nan"),
        "offer_spend": spend,
        "offers_made": float(sum(records.levers.offers.values())),
        "offers_accepted": float(sum(records.levers.accepted.values())),
        "outages": len(records.outages),
        "hotline_calls": float(sum(r["calls"] for r in records.contact_center)),
    }


def _bytes_in_use(state) -> float:
    """The population arrays' bytes in rows ``[0, size)`` (enterprise accounts' sizes among them)."""
    return state.nbytes() * state.size / state.capacity


def worker_engine(lines: float, months: int | None, mode: str, cache: str | None) -> dict:
    """One replication of the scaled baseline with the full event mix.

    ``mode``: ``timed`` (phase timers, peak RSS), ``tracemalloc`` (traced heap peak) or ``profile`` (cProfile).
    """
    from workload import allocation_summary, revenue_allocation, scaled_baseline

    from sim.engine import Simulation

    out: dict = {"mode": mode, "requested_lines": lines}
    start = time.perf_counter()
    scenario, factor = scaled_baseline(lines)
    allocation = revenue_allocation(scenario)
    out["scenario_seconds"] = time.perf_counter() - start
    out["lines"] = scenario.total_lines
    out["units"] = sum(t.unit_count for t in scenario.tiers.values())
    out["scale_factor"] = factor
    out["agents"] = scenario.contact_center.staffing[0].agents
    out["allocation"] = allocation_summary(scenario, allocation)
    months = months or scenario.meta.horizon_months
    out["warm_up_seconds"] = _warm_up()
    calibration, prepare_seconds = _calibration(scenario, cache)
    out["prepare_seconds"] = prepare_seconds

    import gc
    gc.collect()
    if mode == "tracemalloc":
        import tracemalloc
        tracemalloc.start()
    rss_before = rss_bytes()
    out["peak_reset"] = reset_peak_rss()
    start = time.perf_counter()
    sim = Simulation(scenario, allocation, calibration, scenario.run.seed, 0)
    out["construct_seconds"] = time.perf_counter() - start
    out["population_bytes_start"] = int(sum(s.nbytes() for s in sim.tiers))
    out["population_capacity_units_start"] = int(sum(s.capacity for s in sim.tiers))
    seconds = _timed_methods(sim, {**PHASES, **SUB_PHASES}) if mode == "timed" else Counter()
    peak_by_month: list[int] = []
    if mode == "timed":
        # After each month's billing: the peak resident set so far (one read of /proc per month).
        billing = sim._billing

        def billing_then_probe(month: int, __billing=billing) -> None:
            __billing(month)
            peak_by_month.append(peak_rss_bytes() - rss_before)

        sim._billing = billing_then_probe

    profiler = cProfile.Profile() if mode == "profile" else None
    cpu_start = time.process_time()
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    records = sim.run(months=months)
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start

    out["cpu_seconds"] = cpu
    out.update(_run_summary(records, elapsed, months))
    out["population_bytes_end"] = int(sum(s.nbytes() for s in sim.tiers))
    out["population_capacity_units_end"] = int(sum(s.capacity for s in sim.tiers))
    out["units_in_use_end"] = int(sum(s.size for s in sim.tiers))
    # Rows in use (the doubled arrays' spare room is address space until gross adds touch it).
    out["population_bytes_in_use_end"] = int(sum(_bytes_in_use(s) for s in sim.tiers))
    out["rss_before_bytes"] = rss_before
    out["peak_rss_bytes"] = peak_rss_bytes()
    out["peak_rss_increase_bytes"] = out["peak_rss_bytes"] - rss_before
    out["peak_rss_increase_per_line"] = out["peak_rss_increase_bytes"] / out["lines"]
    out["population_bytes_per_line_start"] = out["population_bytes_start"] / out["lines"]
    out["population_bytes_per_line_end"] = out["population_bytes_end"] / out["lines"]
    out["population_bytes_in_use_per_line_end"] = out["population_bytes_in_use_end"] / out["lines"]
    if mode == "tracemalloc":
        import tracemalloc
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["traced_peak_bytes"] = peak
        out["traced_peak_per_line"] = peak / out["lines"]
    if mode == "timed":
        out["phase_seconds"] = {name: seconds.get(name, 0.0) for name in {**PHASES, **SUB_PHASES}}
        out["phase_seconds"]["other"] = elapsed - sum(seconds.get(name, 0.0) for name in PHASES)
        out["hotline_share"] = seconds.get("_serve_calls", 0.0) / elapsed
        out["peak_rss_increase_per_line_by_month"] = [round(b / out["lines"], 2) for b in peak_by_month]
    if profiler:
        out["profile"] = _profile_tables(profiler, elapsed)
    return out


_DISPATCH = {("core.py", "run"), ("core.py", "step"), ("events.py", "_resume"), ("engine.py", "run"),
             ("engine.py", "_calendar"), ("~", "<method 'send' of 'generator' objects>")}


def _profile_tables(profiler: cProfile.Profile, wall: float) -> dict:
    """Top 10 by cumulative time (event-loop dispatch frames left out) and by own time.

    Library entries (numpy, simpy) are attributed to the engine function that calls them: the
    chain of heaviest callers is followed up to the first function in ``sim/``.
    """
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    source = os.environ.get("BENCH_ENGINE_SOURCE")
    root = (str(Path(source).resolve()) if source else str(HERE.parent)) + os.sep

    def where(key) -> str:
        filename, line, func = key
        short = filename.replace(root, "")
        if "site-packages" in short:
            short = short.split("site-packages" + os.sep, 1)[1]
        return f"{short}:{line}({func})" if line else func

    def in_engine(key) -> bool:
        return key[0].startswith(root + "sim" + os.sep)

    def engine_caller(key) -> str | None:
        seen = set()
        while not in_engine(key) and key not in seen:
            seen.add(key)
            callers = stats.stats.get(key, (0, 0, 0, 0, {}))[4]
            if not callers:
                return None
            key = max(callers.items(), key=lambda item: item[1][3])[0]
        return where(key) if in_engine(key) else None

    rows = []
    for key, (cc, nc, tt, ct, _callers) in stats.stats.items():
        rows.append({"key": key, "where": where(key), "file": os.path.basename(key[0]), "function": key[2],
                     "calls": nc, "own_seconds": tt, "cumulative_seconds": ct,
                     "cumulative_share": ct / total if total else float("nan"),
                     "own_share": tt / total if total else float("nan")})
    informative = [r for r in rows if (r["file"], r["function"]) not in _DISPATCH]
    by_cumulative = sorted(informative, key=lambda r: -r["cumulative_seconds"])[:10]
    by_own = sorted(rows, key=lambda r: -r["own_seconds"])[:10]
    for r in by_cumulative + by_own:
        if not in_engine(r["key"]):
            r["called_from"] = engine_caller(r["key"])
    for r in rows:
        r.pop("key", None)
    return {"profiled_seconds": total, "wall_seconds_under_profiler": wall,
            "top_cumulative": by_cumulative, "top_own": by_own}


def worker_agents(lines: float) -> dict:
    """At ``lines`` lines: the reference against the engine with every event source on and off."""
    from reference_agents import ReferenceMarket, month_one_logits
    from workload import revenue_allocation, scaled_baseline

    from sim.allocation import Allocation
    from sim.engine import Simulation, prepare

    scenario, factor = scaled_baseline(lines)
    months = scenario.meta.horizon_months
    allocation = revenue_allocation(scenario)
    out: dict = {"lines": scenario.total_lines, "units": sum(t.unit_count for t in scenario.tiers.values()),
                 "scale_factor": factor, "months": months}
    start = time.perf_counter()
    calibration = prepare(scenario, scenario.run.seed)
    out["prepare_seconds"] = time.perf_counter() - start
    seed = scenario.run.seed

    import pandas as pd

    sim = Simulation(scenario, allocation, calibration, seed, 0)
    seconds = _timed_methods(sim, PHASES)
    start = time.perf_counter()
    records = sim.run()
    elapsed = time.perf_counter() - start
    out["engine_full"] = _run_summary(records, elapsed, months)
    out["engine_full"]["hotline_share"] = seconds.get("_serve_calls", 0.0) / elapsed
    out["engine_full"]["phase_seconds"] = dict(seconds)

    # Like for like: the reference does not cancel or add single lines between an account's decisions.
    scenario = whole_accounts(scenario)
    calibration = prepare(scenario, seed)
    # A third of a second a run: the fastest of three (the same run each time), so that the ratio to the
    # reference is not one run's jitter.
    elapsed = math.inf
    for _ in range(CHURN_ONLY_REPEATS):
        sim = Simulation(scenario, Allocation.empty(), calibration, seed, 0, outages=False, contact_center=False)
        start = time.perf_counter()
        records = sim.run()
        elapsed = min(elapsed, time.perf_counter() - start)
    out["engine_churn_only"] = _run_summary(records, elapsed, months)
    engine_rows = pd.DataFrame(records.tier_months)

    market = ReferenceMarket(scenario, calibration, seed, 0)
    ref = market.run()
    ref_rows = pd.DataFrame(ref.rows)
    line_months = float(ref_rows["lines_start"].sum())
    out["reference"] = {
        "months": months, "run_seconds": ref.run_seconds, "setup_seconds": ref.setup_seconds,
        "processes_started": ref.processes_started,
        "line_months": line_months, "unit_months": float(ref_rows["units_start"].sum()),
        "line_months_per_second": line_months / ref.run_seconds,
        "unit_months_per_second": float(ref_rows["units_start"].sum()) / ref.run_seconds,
        "mean_monthly_churn_lines": float(ref_rows["churned_lines"].sum()) / line_months,
        "mean_monthly_churn_units": float(ref_rows["churned_units"].sum()) / float(ref_rows["units_start"].sum()),
    }
    out["churn_check"] = churn_check(engine_rows, ref_rows, scenario)
    parity = month_one_logits(scenario, calibration, seed, 0)
    worst = max(v["max_abs_logit_gap"] for v in parity.values())
    out["hazard_parity"] = {"per_tier": parity, "max_abs_logit_gap": worst,
                            "units_compared": sum(v["units"] for v in parity.values()),
                            "same_hazard": bool(worst < 1e-3 and all(v["units"] == v["engine_units"]
                                                                     for v in parity.values()))}
    return out


def whole_accounts(scenario):  # type: ignore[no-untyped-def]
    """``scenario`` with no line cancelled or added between an account's decisions (``partial_churn`` and
    ``line_growth`` 0): what the reference models, so the two churn alike line for line."""
    tiers = {name: tier.model_copy(update={"partial_churn": 0.0, "line_growth": 0.0}) if tier.kind == "enterprise"
             else tier for name, tier in scenario.tiers.items()}
    return scenario.model_copy(update={"tiers": type(scenario.tiers)(tiers)})


def churn_check(engine, reference, scenario) -> dict:
    """Mean monthly churn of both models, with binomial standard errors and the z-score of the gap.

    Given the units at the start of each tier-month, churners are binomial with the tier's churn
    probability (estimated by the tier's churn pooled over both models and all months, so that
    tier-months without a churner do not count as certain). The standard error of the pooled rate
    sum(churned) / sum(at start) follows; an enterprise account's lines leave together, so
    line-weighted variances scale by lines per account squared.
    """
    lpu = {name: round(t.lines_per_unit) for name, t in scenario.tiers.items()}
    both = engine.groupby("tier")[["units_start", "churned_units"]].sum() + \
        reference.groupby("tier")[["units_start", "churned_units"]].sum()
    tier_p = (both["churned_units"] / both["units_start"].clip(lower=1)).to_dict()

    def pooled(rows, weight_lines: bool) -> tuple[float, float]:
        n = rows["units_start"].to_numpy(float)
        c = rows["churned_units"].to_numpy(float)
        w = rows["tier"].map(lpu).to_numpy(float) if weight_lines else np.ones_like(n)
        p = rows["tier"].map(tier_p).to_numpy(float)
        total = (n * w).sum()
        rate = (c * w).sum() / total
        se = math.sqrt(((w ** 2) * n * p * (1 - p)).sum()) / total
        return float(rate), float(se)

    out = {}
    for label, lines in (("lines", True), ("units", False)):
        e, se_e = pooled(engine, lines)
        r, se_r = pooled(reference, lines)
        se = math.hypot(se_e, se_r)
        out[label] = {"engine": e, "engine_se": se_e, "reference": r, "reference_se": se_r,
                      "difference": r - e, "z": (r - e) / se if se else float("nan")}
    per_tier = {}
    for name in scenario.tiers:
        e, se_e = pooled(engine[engine["tier"] == name], False)
        r, se_r = pooled(reference[reference["tier"] == name], False)
        se = math.hypot(se_e, se_r)
        per_tier[name] = {"engine": e, "reference": r, "z": (r - e) / se if se else float("nan"),
                          "engine_unit_months": float(engine[engine["tier"] == name]["units_start"].sum()),
                          "reference_unit_months": float(reference[reference["tier"] == name]["units_start"].sum())}
    out["per_tier_units"] = per_tier
    zs = [abs(v["z"]) for v in per_tier.values() if not math.isnan(v["z"])]
    out["max_abs_tier_z"] = max(zs) if zs else float("nan")
    # |z| < 3 on the pooled rates (lines and units); per tier, nine z-scores: |z| < 3.3 (Bonferroni, 1%).
    out["within_sampling_error"] = bool(abs(out["lines"]["z"]) < 3 and abs(out["units"]["z"]) < 3
                                        and (not zs or max(zs) < 3.3))
    return out


# ------------------------------------------------------------------------------------------------
# orchestration
# ------------------------------------------------------------------------------------------------
def machine() -> dict:
    import numba
    import numpy
    import pandas
    import simpy

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    return {"nproc": nproc, "cpu_model": cpu, "memory_bytes": mem, "python": platform.python_version(),
            "numpy": numpy.__version__, "pandas": pandas.__version__, "simpy": simpy.__version__,
            "numba": numba.__version__, "platform": platform.platform()}


def source_state() -> dict:
    """The engine's source as measured: the commit, and whether sim/ had uncommitted edits (with their digest)."""
    import hashlib

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, cwd=HERE.parent,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    diff = git("diff", "HEAD", "--", "sim")
    return {"commit": git("rev-parse", "HEAD"), "sim_has_uncommitted_edits": bool(diff),
            "sim_diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None}


def snapshot_engine(destination: Path) -> dict:
    """Copy ``sim/`` as it is now into ``destination``, so every measurement of the run uses the same source."""
    import hashlib

    target = destination / "sim"
    shutil.copytree(HERE.parent / "sim", target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    digest = hashlib.sha256()
    files = sorted(p for p in target.rglob("*") if p.is_file())
    for path in files:
        digest.update(str(path.relative_to(target)).encode() + b"\0" + path.read_bytes())
    return {"path": str(destination), "files": len(files), "sha256": digest.hexdigest()}


def run_worker(kind: str, args: dict, timeout: float, source: str | None = None) -> tuple[dict | None, dict | None]:
    """Run one measurement in a fresh interpreter; returns (result, error)."""
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as tmp:
        result_path = tmp.name
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--worker-args", json.dumps(args),
               "--worker-result", result_path] + (["--source", source] if source else [])
    started = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=HERE.parent)
    except subprocess.TimeoutExpired as exc:
        return None, {"measurement": kind, "args": args, "error": f"timed out after {timeout:.0f} s",
                      "stderr_tail": (exc.stderr or "")[-4000:] if isinstance(exc.stderr, str) else ""}
    wall = time.perf_counter() - started
    try:
        data = json.loads(Path(result_path).read_text()) if proc.returncode == 0 else None
    except (OSError, ValueError):
        data = None
    finally:
        try:
            os.unlink(result_path)
        except OSError:
            pass
    if data is None or "error" in (data or {}):
        return None, {"measurement": kind, "args": args, "returncode": proc.returncode,
                      "error": (data or {}).get("error", "worker failed"),
                      "traceback": (data or {}).get("traceback", ""), "stderr_tail": proc.stderr[-4000:]}
    data["process_wall_seconds"] = wall
    return data, None


def worker_main(kind: str, args: dict, result_path: str, source: str | None = None) -> int:
    if source:
        # The engine snapshot taken when the benchmark started comes first on the path.
        sys.path.insert(0, source)
        os.environ["BENCH_ENGINE_SOURCE"] = source
    try:
        import sim
        if source and not Path(sim.__file__).resolve().is_relative_to(Path(source).resolve()):
            raise RuntimeError(f"sim imported from {sim.__file__}, not from the snapshot {source}")
        if kind == "engine":
            result = worker_engine(**args)
        elif kind == "agents":
            result = worker_agents(**args)
        else:
            raise ValueError(f"unknown measurement {kind}")
    except BaseException as exc:  # report the engine's failure precisely, then fail the worker
        Path(result_path).write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}",
                                                 "traceback": traceback.format_exc()}))
        return 1
    Path(result_path).write_text(json.dumps(result, default=float))
    return 0


def _fmt_rate(x: float) -> str:
    return f"{x / 1e6:,.2f}M" if x >= 1e5 else f"{x / 1e3:,.1f}k"


def status(met: bool) -> str:
    return "met" if met else "NOT met"


def assess(results: dict) -> list[dict]:
    targets = []
    agents = results.get("agents")
    if agents:
        ref = agents["reference"]["line_months_per_second"]
        full = agents["engine_full"]["line_months_per_second"] / ref
        churn = agents["engine_churn_only"]["line_months_per_second"] / ref
        targets.append({"target": f"vectorized >= {TARGETS['ratio_to_reference']:.0f}x the agent-per-subscriber "
                                  f"reference (100k lines, same scenario)",
                        "figure": f"{churn:,.1f}x with outages, hotline and offers off (the reference's churn "
                                  f"logic, like for like); {full:,.1f}x with them on",
                        "met": churn >= TARGETS["ratio_to_reference"],
                        "note": "judged like for like: the reference models the churn logic only; with the "
                                "engine's full event mix the ratio is "
                                f"{status(full >= TARGETS['ratio_to_reference'])}"})
    big = results.get("engine_10M")
    if big:
        rate = big["line_months_per_second"]
        targets.append({"target": ">= 50M active subscriber-months per second per core at 10M lines",
                        "figure": f"{rate / 1e6:,.2f}M line-months/s on one core "
                                  f"({big['unit_months_per_second'] / 1e6:,.2f}M unit-months/s)",
                        "met": rate >= TARGETS["line_months_per_second_per_core_10M"]})
        per_line = big["peak_rss_increase_per_line"]
        arrays = big["population_bytes_per_line_end"]
        targets.append({"target": "<= 64 bytes per line",
                        "figure": f"{per_line:,.1f} B/line peak RSS increase over the run; population arrays "
                                  f"{big['population_bytes_per_line_start']:,.1f} B/line at start, "
                                  f"{arrays:,.1f} at end",
                        "met": per_line <= TARGETS["bytes_per_line"],
                        "note": f"judged on the peak RSS increase; the population arrays alone are "
                                f"{status(arrays <= TARGETS['bytes_per_line'])}"})
        per_rep = big["run_seconds"] * 36 / big["months"]
        extrapolated = " (extrapolated from the months run)" if big["months"] != 36 else ""
        targets.append({"target": "10M lines x 36 months in < 10 s per replication",
                        "figure": f"{per_rep:,.1f} s{extrapolated}, of which hotline "
                                  f"{big.get('hotline_share', float('nan')):.0%}; "
                                  f"{per_rep * (1 - big.get('hotline_share', 0.0)):,.1f} s without the hotline's "
                                  "share; "
                                  f"calibration (prepare) {big.get('prepare_seconds') or float('nan'):,.1f} s apart",
                        "met": per_rep < TARGETS["seconds_per_replication_10M_36_months"]})
    return targets


def print_report(report: dict) -> None:
    res = report["results"]
    print()
    if report.get("quick"):
        print("QUICK SMOKE TEST: sizes reduced (the rows named 1M/10M/100k hold 100k/300k/20k lines)")
    if report.get("source_changed_during_run"):
        print("note: sim/ changed while the benchmark ran; every measurement used the snapshot taken at its start")
    print(f"Simulator benchmark  {report['date']}  {report['machine']['cpu_model']}  "
          f"nproc={report['machine']['nproc']}  Python {report['machine']['python']}  "
          f"numpy {report['machine']['numpy']}")
    print()
    header = (f"{'run':<34}{'lines':>12}{'months':>7}{'run s':>9}{'line-mo/s':>12}{'unit-mo/s':>12}"
              f"{'hotline':>9}{'prepare s':>10}")
    print(header)
    print("-" * len(header))

    def row(label, r, prepare=None, hotline=None):
        print(f"{label:<34}{r.get('lines', 0):>12,}{r['months']:>7}{r['run_seconds']:>9.2f}"
              f"{_fmt_rate(r['line_months_per_second']):>12}{_fmt_rate(r['unit_months_per_second']):>12}"
              f"{'' if hotline is None else f'{hotline:.0%}':>9}{'' if prepare is None else f'{prepare:.1f}':>10}")

    for key, label in (("engine_1M", "engine 1M, full mix"), ("engine_10M", "engine 10M, full mix")):
        if key in res:
            row(label, res[key], res[key].get("prepare_seconds"), res[key].get("hotline_share"))
    if "agents" in res:
        a = res["agents"]
        row("engine 100k, full mix", {**a["engine_full"], "lines": a["lines"]}, a["prepare_seconds"],
            a["engine_full"]["hotline_share"])
        row("engine 100k, churn only", {**a["engine_churn_only"], "lines": a["lines"]})
        row("reference agents 100k, churn only", {**a["reference"], "lines": a["lines"]})
    print()
    for key in ("engine_1M", "engine_10M"):
        if key not in res:
            continue
        r = res[key]
        ph = r.get("phase_seconds", {})
        print(f"{key}: " + ", ".join(f"{PHASES.get(n, SUB_PHASES.get(n, n))} {s:.2f} s"
                                     for n, s in ph.items()))
        print(f"{key}: peak RSS increase {r['peak_rss_increase_bytes'] / 2**20:,.0f} MiB = "
              f"{r['peak_rss_increase_per_line']:.1f} B/line; population arrays "
              f"{r['population_bytes_per_line_start']:.1f} "
              f"B/line at start, {r['population_bytes_per_line_end']:.1f} allocated / "
              f"{r['population_bytes_in_use_per_line_end']:.1f} in use at end; offers spent "
              f"{r['offer_spend']:,.0f} of {r['allocation']['total']:,.0f} allocated "
              f"({r['offer_spend'] / r['allocation']['total']:.0%} over {r['months']} months)")
    if "tracemalloc_10M" in res:
        r = res["tracemalloc_10M"]
        print(f"tracemalloc 10M ({r['months']} months): traced heap peak {r['traced_peak_bytes'] / 2**20:,.0f} MiB = "
              f"{r['traced_peak_per_line']:.1f} B/line")
    if "agents" in res:
        c = res["agents"]["churn_check"]
        print(f"churn check (100k, reference vs engine churn-only): lines {c['lines']['reference']:.5f} vs "
              f"{c['lines']['engine']:.5f} (z={c['lines']['z']:+.2f}); units {c['units']['reference']:.5f} vs "
              f"{c['units']['engine']:.5f} (z={c['units']['z']:+.2f}); max |z| over tiers "
              f"{c['max_abs_tier_z']:.2f}; within sampling error: {c['within_sampling_error']}")
        h = res["agents"]["hazard_parity"]
        print(f"hazard parity (month 1, {h['units_compared']:,} units): largest |logit gap| reference vs engine "
              f"{h['max_abs_logit_gap']:.2e}; same hazard: {h['same_hazard']}")
    if "profile_10M" in res:
        p = res["profile_10M"]["profile"]
        print()
        print(f"cProfile of the 10M run ({res['profile_10M']['months']} months, "
              f"{p['profiled_seconds']:.1f} s profiled): "
              "top 10 by cumulative time (event-loop dispatch left out)")
        for r in p["top_cumulative"]:
            via = f"  <- {r['called_from']}" if r.get("called_from") else ""
            print(f"  {r['cumulative_share']:6.1%}  {r['cumulative_seconds']:8.2f} s  {r['calls']:>10,}  "
                  f"{r['where']}{via}")
        print("top 10 by own time")
        for r in p["top_own"]:
            via = f"  <- {r['called_from']}" if r.get("called_from") else ""
            print(f"  {r['own_share']:6.1%}  {r['own_seconds']:8.2f} s  {r['calls']:>10,}  {r['where']}{via}")
    print()
    for t in report["targets"]:
        print(f"[{status(t['met']):>7}] {t['target']}: {t['figure']}" + (f"  ({t['note']})" if t.get("note") else ""))
    for e in report["errors"]:
        print(f"ERROR in {e['measurement']} {e['args']}: {e['error']}")
        if e.get("traceback"):
            print(e["traceback"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--out", type=Path, default=None, help=f"results file (default {RESULTS.name})")
    parser.add_argument("--profile-months", type=int, default=36, help="months of the profiled 10M run")
    parser.add_argument("--tracemalloc-months", type=int, default=3, help="months of the traced 10M run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-args", help=argparse.SUPPRESS)
    parser.add_argument("--worker-result", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.worker, json.loads(args.worker_args), args.worker_result, args.source)

    small, large, agents_lines = (1e6, 1e7, 1e5) if not args.quick else (1e5, 3e5, 2e4)
    out_path = args.out or (RESULTS if not args.quick else None)
    started = time.perf_counter()
    load_before = os.getloadavg()
    source_before = source_state()
    results: dict = {}
    errors: list = []
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        cache = os.path.join(tmp, "calibration-large.pkl")
        snapshot = snapshot_engine(Path(tmp) / "engine")
        plan = [
            ("engine_1M", "engine", {"lines": small, "months": None, "mode": "timed", "cache": None}),
            ("engine_10M", "engine", {"lines": large, "months": None, "mode": "timed", "cache": cache}),
            ("tracemalloc_10M", "engine", {"lines": large, "months": args.tracemalloc_months, "mode": "tracemalloc",
                                           "cache": cache}),
            ("agents", "agents", {"lines": agents_lines}),
            ("profile_10M", "engine", {"lines": large, "months": args.profile_months, "mode": "profile",
                                       "cache": cache}),
        ]
        for key, kind, worker_args in plan:
            print(f"... {key}", flush=True)
            data, error = run_worker(kind, worker_args, timeout=1800, source=snapshot["path"])
            if error:
                errors.append(error)
                print(f"    failed: {error['error']}", flush=True)
                continue
            results[key] = data
            if "run_seconds" in data:
                print(f"    {data['lines']:,} lines x {data['months']} months: run {data['run_seconds']:.1f} s, "
                      f"process {data['process_wall_seconds']:.1f} s", flush=True)
            else:
                print(f"    process {data['process_wall_seconds']:.1f} s", flush=True)
    report = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/simulator.py", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick,
        "machine": machine(),
        "source": {**source_before, "snapshot_sha256": snapshot["sha256"], "snapshot_files": snapshot["files"]},
        "source_changed_during_run": source_state() != source_before,
        "scenario": "scenarios/baseline.yaml scaled (bench/workload.py)",
        "total_seconds": time.perf_counter() - started,
        "load_average_1_5_15": {"before": load_before, "after": os.getloadavg()},
        "targets_definition": TARGETS,
        "results": results,
        "errors": errors,
    }
    report["targets"] = assess(results)
    print_report(report)
    print(f"\ntotal {report['total_seconds']:.0f} s")
    if out_path:
        out_path.write_text(json.dumps(report, indent=2, default=float) + "\n")
        print(f"wrote {out_path}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
