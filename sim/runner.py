"""Replications of a scenario under one allocation, and the files a simulation run writes.

:func:`simulate` calibrates once and runs ``R`` replications with common random
numbers (replication *r* of any allocation sees the same outages, calls and churn
draws). :func:`write_outputs` writes the tables into a temporary folder beside the
destination and moves it into place only when every file is complete, so an
interrupted run leaves no half-written folder and an existing one is never touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__
from .allocation import Allocation
from .calibration_cache import calibrated, fits_used
from .engine import Calibration, Simulation
from .queue_cache import QueueCache
from .results import SimulationResult, summarize
from .scenario import Problem, Scenario, ScenarioError, scenario_to_yaml

Progress = Callable[[str, int, int], None]
"""Called with (stage, done, total) as work advances."""

_VERSIONED = ("numpy", "numba", "pandas", "simpy", "pulp", "pydantic", "pyyaml")


class OutputExistsError(ScenarioError):
    """The output folder exists already; runs are never overwritten."""


def simulate(scenario: Scenario, allocation: Allocation | pd.DataFrame | None = None, *, seed: int | None = None,
             replications: int | None = None, calibration: Calibration | None = None,
             progress: Progress | None = None, queue_cache: QueueCache | None = None) -> SimulationResult:
    """Simulate ``replications`` runs of ``scenario`` spending ``allocation`` (none: no retention).

    ``allocation`` is an :class:`~sim.allocation.Allocation` or a table with ``tier, lever, period,
    amount`` (a plan's ``allocation``, a feed read with pandas), checked against the scenario as a CSV
    would be: the plan's policy and expectations are ignored, launch-cost rows must match the scenario.

    Pass one ``queue_cache`` to the runs of several strategies (or allocations) of a scenario to simulate
    their common hotline windows once; the results are the same bytes as without it.
    """
    seed = scenario.run.seed if seed is None else seed
    replications = scenario.run.replications if replications is None else replications
    allocation = Allocation.of(allocation, scenario)
    if calibration is None:
        if progress:
            progress("calibrating", 0, 1)
        calibration = calibrated(scenario, seed)
        if progress:
            progress("calibrating", 1, 1)
    results = []
    for r in range(replications):
        records = Simulation(scenario, allocation, calibration, seed, r, queue_cache=queue_cache).run()
        results.append(SimulationResult.from_records(records, r))
        if progress:
            progress("simulating", r + 1, replications)
    return SimulationResult.concat(results)


def versions() -> dict[str, str]:
    found = {"retention-planner": __version__, "python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def scenario_digest(scenario: Scenario) -> str:
    """SHA-256 of the scenario with every default filled in: equal digests, equal scenarios."""
    return hashlib.sha256(scenario_to_yaml(scenario).encode("utf-8")).hexdigest()


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tables(result: SimulationResult) -> dict[str, pd.DataFrame]:
    """The tables of a simulation run, by file stem."""
    by_tier = summarize(result.by_tier(), by=["tier"])
    summary = summarize(result.totals())
    return {
        "summary": summary,
        "by_tier": by_tier,
        "monthly": result.monthly,
        "levers": result.levers,
        "market": result.market,
        "contact_center": result.contact_center,
        "outages": result.outages,
        "launches": result.launches,
        "cells": result.cells,
    }


def write_outputs(destination: str | Path, frames: Mapping[str, pd.DataFrame], manifest: Mapping[str, Any],
                  extra: Callable[[Path], None] | None = None) -> Path:
    """Write ``frames`` as CSV plus ``manifest.json`` into ``destination``, all or nothing.

    ``extra`` may write more files into the temporary folder before it is moved into place.
    """
    destination = Path(destination)
    if destination.exists():
        raise OutputExistsError([Problem(str(destination), None, None, (), "the output folder exists already",
                                         "choose another --out folder; runs are never overwritten")])
    destination.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale_staging(destination.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.partial-{os.getpid()}-", dir=destination.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # a results folder like any other, not mkdtemp's private 0700
    try:
        for stem, frame in frames.items():
            frame.to_csv(staging / f"{stem}.csv", index=False, float_format="%.10g", lineterminator="\n")
        if extra:
            extra(staging)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n",
                                               encoding="utf-8")
        os.replace(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination


def _sweep_stale_staging(folder: Path) -> None:
    """Remove staging folders left by a writer that was killed outright (its process is gone).

    Ctrl-C and SIGTERM clean up as they stop; only SIGKILL during the final write can leave one.
    """
    for staging in folder.glob(".*.partial-*-*"):
        pid_text = staging.name.rsplit(".partial-", 1)[1].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(staging, ignore_errors=True)
        except PermissionError:
            continue  # another user's live process


def manifest(scenario: Scenario, scenario_path: str | Path | None, seed: int, replications: int,
             allocation: Allocation, timings: Mapping[str, float], command: list[str] | None = None) -> dict[str, Any]:
    """What makes a run reproducible: inputs, their digests, the seed, the versions, the command."""
    return {
        "scenario": scenario.meta.name,
        "scenario_file": str(scenario_path) if scenario_path else None,
        "scenario_file_sha256": file_digest(scenario_path) if scenario_path else None,
        "scenario_sha256": scenario_digest(scenario),
        "seed": seed,
        "replications": replications,
        "scale": scenario.run.scale,
        "allocation_total": allocation.total,
        "allocation_sha256": hashlib.sha256(allocation.to_frame().to_csv(index=False).encode()).hexdigest(),
        "versions": versions(),
        "command": command if command is not None else sys.argv,
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
        "calibration": fits_used(),
    }


class Stopwatch:
    """Wall-clock seconds per stage, for the manifest."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._start = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self._start
        self._start = now
