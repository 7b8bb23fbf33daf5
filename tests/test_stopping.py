"""Replications until a target half-width (optimize.run.stopping), and the estimator the comparison uses.

The stopping rule is checked against a brute-force search over the same replications (the first count
from ten whose 95% half-width reaches the target, however the replications are batched), the 95%
half-width against Student's t from scipy, and a whole run with a target against the same run without
one: it keeps exactly the first replications of it. The comparison's luck-removed NPV is checked against
the NPV counted as the draws fell on the small market: their per-replication gap has mean zero (the
correction is a control variate), the paired differences agree within their intervals, and the paired
difference's variance falls.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from optimize.run.compare import paired_differences
from optimize.run.pipeline import run
from optimize.run.stopping import (
    CAP,
    FIRST_CHECK,
    NO_TARGET,
    REACHED,
    half_widths,
    replicate_until,
)
from optimize.run.strategies import rule_allocation
from sim.engine import prepare
from sim.queue_cache import QueueCache
from sim.results import mean_interval
from sim.runner import simulate
from sim.scenario import load_scenario
from sim.valuation import run_values


def _stream(seed: int, count: int = 60, sd: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.5, sd, count)


def _brute_force(differences: np.ndarray, target: float, most: int) -> int:
    """The first count from ten (or ``most``, when fewer are allowed) whose half-width is at most ``target``,
    else ``most``: computed from scipy's t quantile, not the engine's table."""
    for n in range(min(FIRST_CHECK, most), most + 1):
        x = differences[:n]
        if stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n) <= target:
            return n
    return most


class Replications:
    """A comparison whose replication r has the paired difference ``stream[r]``: records the batches asked for."""

    def __init__(self, stream: np.ndarray) -> None:
        self.stream, self.batches = stream, []  # type: ignore[var-annotated]

    def __call__(self, first: int, count: int) -> np.ndarray:
        assert first == sum(c for _, c in self.batches), "batches follow each other from replication 0"
        self.batches.append((first, count))
        return self.stream[:first + count]


@pytest.mark.parametrize("seed", range(6))
def test_the_run_stops_at_the_first_count_reaching_the_target(seed: int) -> None:
    stream = _stream(seed)
    widths = half_widths(stream)
    # Reached somewhere past the first check, and 1% or more from every half-width: the engine's t table
    # and scipy's quantile differ by under half a percent, so both find the same first count.
    target = float(np.median(widths[FIRST_CHECK:40]))
    while any(abs(w / target - 1) < 0.01 for w in widths):
        target *= 1.013
    expected = _brute_force(stream, target, 60)
    replications = Replications(stream)
    stop = replicate_until(target, 60, replications, "plan", "uniform")
    assert stop.replications == expected and stop.reason == REACHED
    assert stop.half_width <= target < widths[stop.replications - 3] or stop.replications == FIRST_CHECK
    assert stop.half_width == pytest.approx(stats.t.ppf(0.975, expected - 1) * stream[:expected].std(ddof=1)
                                            / math.sqrt(expected), rel=5e-3)
    assert replications.batches[0] == (0, FIRST_CHECK) and stop.simulated >= stop.replications


def test_the_stop_does_not_depend_on_how_replications_are_batched(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from optimize.run import stopping

    stream = _stream(11)
    target = float(half_widths(stream)[25])
    found = set()
    for batch in (1, 3, 50):
        monkeypatch.setattr(stopping, "BATCH", batch)
        monkeypatch.setattr(stopping, "next_batch", lambda d, t, done, most, b=batch: min(b, most - done))
        found.add(replicate_until(target, 60, Replications(stream), "plan", "uniform").replications)
    assert len(found) == 1


def test_a_target_out_of_reach_stops_at_the_most_replications() -> None:
    stream = _stream(3)
    stop = replicate_until(1e-9, 25, Replications(stream), "plan", "uniform")
    assert (stop.replications, stop.reason, stop.simulated) == (25, CAP, 25)
    assert stop.half_width == pytest.approx(mean_interval(stream[:25])[2])
    assert "wider than the target" in stop.sentence("CNY")
    # Fewer allowed than the first check: the target is checked on all of them.
    assert replicate_until(1e9, 5, Replications(stream), "plan", "uniform").reason == REACHED
    assert replicate_until(None, 7, Replications(stream), "plan", "uniform").reason == NO_TARGET


@pytest.fixture(scope="module")
def stopped_runs(tmp_path_factory, quick_small: Path):  # type: ignore[no-untyped-def]
    """The small market compared at 12 replications, and again with a target the first 12 reach."""
    text = quick_small.read_text(encoding="utf-8").replace("\nrun:\n", "\nrun:\n  closed_loop: {replications: 2}\n", 1)
    path = tmp_path_factory.mktemp("stopping") / "small_stopping.yaml"
    path.write_text(text, encoding="utf-8")
    scenario = load_scenario(path)
    whole = run(scenario, str(path), replications=12, strategies=["uniform", "lp_optimal"])
    target = float(whole.stopping.widths[FIRST_CHECK + 1 - 2])  # the half-width at 11 replications
    targeted = scenario.model_copy(update={"run": scenario.run.model_copy(update={"target_half_width": target})})
    return whole, run(targeted, str(path), replications=12, strategies=["uniform", "lp_optimal"]), target


def test_a_run_with_a_target_keeps_the_first_replications_of_the_whole_run(stopped_runs) -> None:  # type: ignore[no-untyped-def]
    whole, stopped, target = stopped_runs
    widths = np.asarray(whole.stopping.widths)
    expected = next(n for n in range(FIRST_CHECK, 13) if widths[n - 2] <= target)
    assert stopped.replications == stopped.stopping.replications == expected <= 11
    assert stopped.stopping.reason == REACHED and stopped.stopping.strategy == "lp_optimal"
    # Its tables are the whole run's on its first replications: the same plan, the same random numbers.
    first = {name: f[f["replication"] < expected] for name, f in whole.figures.items()}
    pd.testing.assert_frame_equal(stopped.paired.reset_index(drop=True),
                                  paired_differences(first, "uniform").reset_index(drop=True))
    assert stopped.results["lp_optimal"].replications == expected


def test_removing_the_luck_keeps_the_mean_and_narrows_the_paired_interval(quick_small: Path) -> None:
    """On the small market, the household bill credit against spending evenly: the NPV with the draws'
    luck removed less the NPV as drawn has mean zero replication by replication (within 4 standard
    errors), the paired differences agree within their intervals, and the luck-removed one varies less."""
    scenario = load_scenario(quick_small)
    seed, reps = scenario.run.seed, 24
    calibration = prepare(scenario, seed)
    queues = QueueCache()
    results = {name: simulate(scenario, rule_allocation(scenario, name), seed=seed, replications=reps,
                              calibration=calibration, queue_cache=queues)
               for name in ("uniform", "key_accounts_first")}
    npv = {(name, drawn): run_values(r, scenario, as_drawn=drawn)["npv"].to_numpy(dtype=float)
           for name, r in results.items() for drawn in (False, True)}
    for name in results:
        gap = npv[(name, False)] - npv[(name, True)]
        assert abs(gap.mean()) < 4 * gap.std(ddof=1) / math.sqrt(reps), name
    paired = {drawn: npv[("key_accounts_first", drawn)] - npv[("uniform", drawn)] for drawn in (False, True)}
    (m0, _, h0, _), (m1, _, h1, _) = mean_interval(paired[False]), mean_interval(paired[True])
    assert abs(m0 - m1) < math.hypot(h0, h1)
    assert np.var(paired[False], ddof=1) < 0.5 * np.var(paired[True], ddof=1)


@pytest.mark.parametrize("amount", ["0", "-1M", "lots"])
def test_a_half_width_that_is_no_amount_above_zero_is_a_usage_error(amount: str, capsys, quick_small: Path) -> None:  # type: ignore[no-untyped-def]
    from optimize.cli.main import main

    with pytest.raises(SystemExit) as stop:
        main(["run", str(quick_small), f"--half-width={amount}"])
    assert stop.value.code == 2
    assert "--half-width" in capsys.readouterr().err
