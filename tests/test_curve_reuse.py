"""Response curves measured once and reused (optimize.run.curve_cache): the same numbers as measuring, a key
that follows what the measurement depends on, scale applied to the curve runs, every run counted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim.engine
from optimize.allocation.frontier import frontier
from optimize.allocation.problem import build_problem
from optimize.allocation.solve import solve
from optimize.cli.main import main
from optimize.run.curve_cache import (
    CURVES_FILE,
    CurveReuseError,
    CurveStore,
    measurement_key,
)
from optimize.run.measure import (
    estimate_curves,
    estimation_scenario,
    measured_cells,
    stage_name,
)
from optimize.run.pipeline import _variant_curves
from optimize.run.plan import least_budget
from sim.queue_cache import QueueCache
from sim.scenario import load_scenario

CEILINGS = "cells measured and their ceilings (budget, capacities)"


@pytest.fixture(scope="module")
def small(quick_small: Path):  # type: ignore[no-untyped-def]
    return load_scenario(quick_small)


@pytest.fixture(scope="module")
def calibration(small):  # type: ignore[no-untyped-def]
    return sim.engine.prepare(small, small.run.seed)


@pytest.fixture(scope="module")
def measured(small, calibration):  # type: ignore[no-untyped-def]
    return estimate_curves(small, calibration)


def expected_runs(scenario) -> int:  # type: ignore[no-untyped-def]
    """The design's runs counted from the scenario: per replication one run without retention, one per lever,
    period and level, and one beyond the contact policy per lever and period where it binds."""
    cells = measured_cells(scenario)
    designs = {(c[1], c[2]) for c in cells}
    relaxed = {(c[1], c[2]) for c, (top, beyond) in cells.items() if beyond > top}
    settings = scenario.run.estimation
    return settings.replications * (1 + len(designs) * len(settings.levels) + len(relaxed))


def with_budget_total(scenario, total: float):  # type: ignore[no-untyped-def]
    return scenario.model_copy(update={"budget": scenario.budget.model_copy(update={"total": total})})


def dearer_bill_credit(quick_small: Path, folder: Path) -> Path:
    """The quick small market with the bill credit's contact costing 6 instead of 4."""
    text = quick_small.read_text(encoding="utf-8")
    assert "  bill_credit:\n    channel: outbound_call\n    tiers: [vip_gold, households]\n    cost_per_contact: 4\n" in text
    path = folder / "dearer.yaml"
    path.write_text(text.replace("cost_per_contact: 4\n", "cost_per_contact: 6\n", 1), encoding="utf-8")
    return path


class Counting:
    """Counts the simulations made (and the units each starts with) while installed: a run made from the
    start, or one copied from another's first months (``Simulation.fork``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.units: list[int] = []
        original, fork = sim.engine.Simulation.__init__, sim.engine.Simulation.fork

        def counted(simulation, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            original(simulation, *args, **kwargs)
            self.units.append(sum(simulation.initial_units))

        def forked(simulation, *args, **kwargs):  # type: ignore[no-untyped-def]
            twin = fork(simulation, *args, **kwargs)
            self.units.append(sum(twin.initial_units))
            return twin
        monkeypatch.setattr(sim.engine.Simulation, "__init__", counted)
        monkeypatch.setattr(sim.engine.Simulation, "fork", forked)


def forbid_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        raise AssertionError("simulated although the curves were known")
    monkeypatch.setattr(sim.engine.Simulation, "__init__", refuse)


def test_reused_curves_give_the_same_allocation_bytes(small, measured, tmp_path: Path, monkeypatch) -> None:
    assert measured.runs == expected_runs(small)
    first = CurveStore(cache=tmp_path)
    first.keep(small, small.run.seed, measured)
    forbid_simulation(monkeypatch)
    second = CurveStore(cache=tmp_path)
    reused = second.find(small, small.run.seed)
    assert reused is not None and reused.reused_from == str(tmp_path / f"{measurement_key(small, small.run.seed).digest}.json")
    assert list(reused.curves) == list(measured.curves)   # the same cells in the same order
    assert reused.curves == measured.curves                # the very floats measured
    assert reused.churn == measured.churn
    assert reused.points.equals(measured.points)
    for budget in (60_000.0, 200_000.0):
        plans = [solve(build_problem(small, e.curves, budget), "highs", 60, 1e-4).allocation for e in (measured, reused)]
        assert plans[0].to_csv(index=False) == plans[1].to_csv(index=False)
    budgets = list(np.linspace(0, 400_000, 9))
    tables = [frontier(build_problem(small, e.curves), budgets, "highs") for e in (measured, reused)]
    assert tables[0].to_csv(index=False) == tables[1].to_csv(index=False)
    # Reused curves made no runs now; the manifest says so and where they came from.
    assert second.runs_done == 0 and first.runs_done == measured.runs
    assert second.manifest()["response_curves"]["scenario"]["reused_from"] == reused.reused_from


def test_a_changed_budget_reuses_a_changed_lever_cost_does_not(small, measured, quick_small: Path,
                                                              tmp_path: Path) -> None:
    seed = small.run.seed
    dearer = load_scenario(dearer_bill_credit(quick_small, tmp_path))
    key = measurement_key(small, seed)
    # small.yaml caps each period at 120,000: a total of 150,000 moves no cell's ceiling (the households cells
    # stay at 120,000), a total of 100,000 does.
    assert measurement_key(with_budget_total(small, 150_000), seed) == key
    lower = measurement_key(with_budget_total(small, 100_000), seed)
    assert [p for p in key.parts if key.parts[p] != lower.parts[p]] == [CEILINGS]
    changed = measurement_key(dearer, seed)
    assert {p for p in key.parts if key.parts[p] != changed.parts[p]} == {"levers.bill_credit", CEILINGS}
    assert measurement_key(small, seed + 1).parts.keys() == key.parts.keys()
    assert [p for p in key.parts if key.parts[p] != measurement_key(small, seed + 1).parts[p]] == ["seed"]

    store = CurveStore(cache=tmp_path / "cache")
    store.keep(small, seed, measured)
    assert CurveStore(cache=tmp_path / "cache").find(with_budget_total(small, 150_000), seed) is not None
    assert CurveStore(cache=tmp_path / "cache").find(dearer, seed) is None
    assert CurveStore(cache=tmp_path / "cache", remeasure=True).find(small, seed) is None

    folder = tmp_path / "run"
    folder.mkdir()
    store.write(folder)
    assert CurveStore(given=folder).find(with_budget_total(small, 150_000), seed) is not None
    with pytest.raises(CurveReuseError) as refused:
        CurveStore(given=folder).find(dearer, seed)
    assert "levers.bill_credit" in str(refused.value) and "fix:" in str(refused.value)
    with pytest.raises(CurveReuseError) as refused:
        CurveStore(given=folder).check(small, seed + 1)
    assert f"seed {seed} there, {seed + 1} here" in str(refused.value)


def test_goal_from_a_finished_folder_simulates_nothing(small, measured, quick_small: Path, tmp_path: Path,
                                                       monkeypatch, capfd) -> None:
    folder = tmp_path / "earlier"
    folder.mkdir()
    store = CurveStore()
    store.keep(small, small.run.seed, measured)
    store.write(folder)
    forbid_simulation(monkeypatch)
    out = tmp_path / "goal"
    assert main(["goal", str(quick_small), "--tier", "households", "--min-retained", "20", "--curves", str(folder),
                 "--out", str(out)]) == 0
    assert "reused from" in capfd.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["response_curve_runs"] == 0
    assert manifest["response_curves"]["scenario"]["reused_from"] == str(folder / CURVES_FILE)
    expected = least_budget(small, tier="households", min_retained=20, estimate=measured)
    # The feed is in whole currency units, each period rounded down: less than one unit short per period.
    spent = pd.read_csv(out / "allocation.csv")["amount"].sum()
    assert expected.budget - len(small.meta.periods) < spent <= expected.budget
    # The folder written keeps the curves too, for the next question.
    assert (out / CURVES_FILE).is_file()

    # Another lever cost: the command stops before measuring, naming what differs and how to fix it.
    dearer = dearer_bill_credit(quick_small, tmp_path)
    assert main(["goal", str(dearer), "--tier", "households", "--min-retained", "20", "--curves", str(folder),
                 "--out", str(tmp_path / "refused")]) == 1
    err = capfd.readouterr().err
    assert "levers.bill_credit" in err and "fix:" in err and "Traceback" not in err
    assert not (tmp_path / "refused").exists()


def test_scale_shrinks_the_curve_runs(small, measured, calibration, monkeypatch) -> None:
    half = small.model_copy(update={"run": small.run.model_copy(update={"scale": 0.5})})
    counting = Counting(monkeypatch)
    estimate = estimate_curves(half, calibration)
    # small.yaml: 12,000 households, 6,000 prepaid, 1,000 VIP gold, 10 key accounts. At scale 1 every unit
    # is simulated; at 0.5 the households and prepaid halve, and the VIP and key accounts, below the
    # 2,000 units a tier keeps, stay whole.
    assert estimation_scenario(small).run.scale == 1.0
    assert counting.units == [6_000 + 3_000 + 1_000 + 10] * expected_runs(half)
    assert estimate.runs == len(counting.units)
    # Results are scaled back to the whole base: the churn without retention agrees with the full-scale runs.
    full = sum(c.churned_lines for c in measured.churn.values())
    thinned = sum(c.churned_lines for c in estimate.churn.values())
    assert thinned == pytest.approx(full, rel=0.1)


def test_variants_are_measured_together_counted_and_named(quick_small: Path, calibration, measured,
                                                          tmp_path: Path, monkeypatch) -> None:
    text = quick_small.read_text(encoding="utf-8").replace(
        "    - {name: u_cut, operator: U, tiers: [households, prepaid], price_cut: 0.10, intensity: 0.3, "
        "start_month: 4, duration_months: 3}\n",
        "    - {name: u_cut, operator: U, tiers: [households, prepaid], price_cut: 0.10, intensity: 0.3, "
        "start_month: 4, duration_months: 3}\n"
        "  variants:\n"
        "    - {name: calm, probability: 0.5}\n"
        "    - name: as_stated\n      probability: 0.5\n      campaigns:\n"
        "        - {name: u_cut, operator: U, tiers: [households, prepaid], price_cut: 0.10, intensity: 0.3, "
        "start_month: 4, duration_months: 3}\n", 1)
    path = tmp_path / "variants.yaml"
    path.write_text(text, encoding="utf-8")
    scenario = load_scenario(path)
    seed = scenario.run.seed
    told: list[tuple[str, int, int]] = []

    def progress(stage: str, done: int, total: int) -> None:
        told.append((stage, done, total))

    # The scenario's own curves are in the cache; the variant whose campaigns are the scenario's has its key.
    store = CurveStore(cache=tmp_path / "cache")
    store.keep(scenario, seed, measured)
    store = CurveStore(cache=tmp_path / "cache")
    counting = Counting(monkeypatch)
    estimates = _variant_curves(scenario, store, calibration, seed, progress, QueueCache(), 1)
    per_variant = expected_runs(scenario)
    assert estimates["as_stated"].reused_from is not None and estimates["as_stated"].curves == measured.curves
    assert estimates["calm"].reused_from is None
    assert len(counting.units) == per_variant == store.runs_done == store.manifest()["response_curve_runs"]
    # Progress names the variant measured, and counts up to its own runs.
    assert {stage for stage, _, _ in told} == {stage_name("calm")}
    assert [done for _, done, _ in told] == list(range(per_variant + 1))
    assert all(total == per_variant for _, _, total in told)

    # Asked again, both are reused and nothing is simulated.
    again = CurveStore(cache=tmp_path / "cache")
    forbid_simulation(monkeypatch)
    repeated = _variant_curves(scenario, again, calibration, seed, None, QueueCache(), 1)
    assert repeated["calm"].curves == estimates["calm"].curves
    assert again.runs_done == 0


def test_optimize_simulates_nothing_when_every_curve_is_stated(quick_small: Path, small, tmp_path: Path,
                                                               monkeypatch) -> None:
    pairs = sorted({(c[0], c[1]) for c in measured_cells(small)})
    stated = "".join(f"    - {{tier: {tier}, lever: {lever}, points: [{{spend: 0, value: 0}}, "
                     f"{{spend: 10000, value: 30000}}, {{spend: 40000, value: 45000}}]}}\n" for tier, lever in pairs)
    text = quick_small.read_text(encoding="utf-8").replace(
        "  contact_policy: {max_offers_per_line: 1, per_months: 6}\n",
        "  contact_policy: {max_offers_per_line: 1, per_months: 6}\n  response_curves:\n" + stated, 1)
    path = tmp_path / "stated.yaml"
    path.write_text(text, encoding="utf-8")
    assert measured_cells(load_scenario(path)) == {}
    forbid_simulation(monkeypatch)
    out = tmp_path / "plan"
    assert main(["-q", "optimize", str(path), "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["response_curve_runs"] == 0
    assert not (out / CURVES_FILE).exists() and not (tmp_path / ".curves").exists()
