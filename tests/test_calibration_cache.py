"""The fit of the stated churn, kept and reused: only where fitting again gives the same bytes."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from optimize.cli.main import main
from sim import calibration_cache
from sim.calibration_cache import (
    CALIBRATION_FOLDER,
    CalibrationCache,
    calibrated,
    calibration_key,
    keeping_calibrations,
)
from sim.engine import prepare
from sim.scenario import load_scenario

from .conftest import SCENARIOS


@pytest.fixture(scope="module")
def small():  # type: ignore[no-untyped-def]
    scenario = load_scenario(SCENARIOS / "small.yaml")
    return scenario, prepare(scenario, scenario.run.seed)


def test_what_the_key_leaves_out_the_fit_does_not_read(small) -> None:
    """Every section the key leaves out changed at once: the same key, and fitting again gives the same
    bytes (the fit itself, not the key, is the judge)."""
    scenario, fit = small
    changed = scenario.model_copy(update={
        "budget": scenario.budget.model_copy(update={"total": scenario.budget.total * 3}),
        "strategies": scenario.strategies[:1],
        "solver": scenario.solver.model_copy(update={"name": "cbc", "mip_gap": 0.01}),
        "run": scenario.run.model_copy(update={"scale": 0.3, "replications": 3, "queue_sample_calls": 1_000,
                                               "target_half_width": 1_000.0}),
        "meta": scenario.meta.model_copy(update={"description": "another description"})})
    assert set(calibration_cache.NOT_READ) == {"strategies", "solver", "budget", "run"}
    seed = scenario.run.seed
    assert calibration_key(changed, seed) == calibration_key(scenario, seed)
    assert pickle.dumps(prepare(changed, seed)) == pickle.dumps(fit)


def test_what_the_fit_reads_is_in_the_key(small) -> None:
    scenario, _ = small
    seed = scenario.run.seed
    key = calibration_key(scenario, seed)
    assert calibration_key(scenario, seed + 1) != key
    tier = next(iter(scenario.tiers))
    churn = scenario.model_copy(update={"tiers": {**scenario.tiers, tier: scenario.tiers[tier].model_copy(
        update={"baseline_churn": scenario.tiers[tier].baseline_churn * 1.1})}})
    assert calibration_key(churn, seed) != key
    # Tiers written in another order are fitted again (the fit is the same, which the order tests check).
    reordered = scenario.model_copy(update={"tiers": dict(reversed(scenario.tiers.items()))})
    assert calibration_key(reordered, seed) != key


def test_a_fit_is_kept_on_disk_read_back_exactly_and_made_again_when_asked_or_damaged(small, tmp_path: Path,
                                                                                     monkeypatch) -> None:
    scenario, fit = small
    seed = scenario.run.seed
    made: list[int] = []

    def fitting(given, given_seed, fan_out=None):  # type: ignore[no-untyped-def]
        made.append(1)
        return fit

    monkeypatch.setattr("sim.engine.prepare", fitting)  # the fit the cache calls (imported on first use)
    monkeypatch.setattr(calibration_cache, "_KEPT", type(calibration_cache._KEPT)())
    said: list[str] = []
    folder = tmp_path / CALIBRATION_FOLDER
    path = folder / f"{calibration_key(scenario, seed)}.pickle"
    with keeping_calibrations(CalibrationCache(folder, say=said.append)) as first:
        assert calibrated(scenario, seed) is fit and calibrated(scenario, seed) is fit
    assert made == [1] and path.is_file() and first.used[0][1] is None and not said

    calibration_cache._KEPT.clear()  # another process: only the disk holds it
    with keeping_calibrations(CalibrationCache(folder, say=said.append)) as second:
        again = calibrated(scenario, seed)
    assert made == [1] and pickle.dumps(again) == pickle.dumps(fit)
    assert second.used == [(calibration_cache.calibration_key(scenario, seed), str(path))]
    assert said and str(path) in said[0] and "--remeasure" in said[0]

    with keeping_calibrations(CalibrationCache(folder, refit=True)):
        calibrated(scenario, seed)
    assert made == [1, 1]

    path.write_bytes(b"not a fit")
    calibration_cache._KEPT.clear()
    with keeping_calibrations(CalibrationCache(folder)):
        calibrated(scenario, seed)
    assert made == [1, 1, 1]
    with open(path, "rb") as stream:
        assert pickle.dumps(pickle.load(stream)["calibration"]) == pickle.dumps(fit)  # replaced whole

    # A folder that cannot be written: the command goes on with its fit, and says it was not kept.
    blocked = tmp_path / "a file"
    blocked.write_text("")
    said.clear()
    with keeping_calibrations(CalibrationCache(blocked / CALIBRATION_FOLDER, refit=True, say=said.append)):
        assert calibrated(scenario, seed) is fit
    assert len(said) == 1 and said[0].startswith("warning: the fit of the stated churn could not be kept")


def test_a_second_command_reuses_the_fit_and_writes_the_same_bytes(tmp_path: Path, monkeypatch, capsys) -> None:
    """Two ``simulate`` commands of one scenario: the second reads the first's fit from the folder beside
    their output folders, says so, and writes the bytes the first wrote."""
    path = SCENARIOS / "small.yaml"
    results = tmp_path / "results"
    monkeypatch.setattr(calibration_cache, "_KEPT", type(calibration_cache._KEPT)())
    args = ["simulate", str(path), "--reps", "1", "--scale", "0.1"]
    assert main([*args, "--out", str(results / "first")]) == 0
    assert len(list((results / CALIBRATION_FOLDER).glob("*.pickle"))) == 1
    calibration_cache._KEPT.clear()  # as a new command would start
    capsys.readouterr()
    assert main([*args, "--out", str(results / "second")]) == 0
    assert "fit of the stated churn: reused from" in capsys.readouterr().out
    manifests = [json.loads((results / name / "manifest.json").read_text()) for name in ("first", "second")]
    assert manifests[0]["calibration"][0]["reused_from"] is None
    assert manifests[1]["calibration"][0]["reused_from"].endswith(".pickle")
    assert manifests[0]["calibration"][0]["key"] == manifests[1]["calibration"][0]["key"]
    for table in ("summary.csv", "by_tier.csv", "monthly.csv"):
        assert (results / "first" / table).read_bytes() == (results / "second" / table).read_bytes(), table
    # --remeasure fits again, in this process too.
    assert main([*args, "--remeasure", "--out", str(results / "third")]) == 0
    assert "reused from" not in capsys.readouterr().out
    assert json.loads((results / "third" / "manifest.json").read_text())["calibration"][0]["reused_from"] is None
