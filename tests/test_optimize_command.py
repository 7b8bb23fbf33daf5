"""``retention optimize``: its files, their agreement with each other and the scenario, and bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimize.cli import main
from sim.allocation import Allocation
from sim.scenario import load_scenario

from .conftest import SCENARIOS


@pytest.fixture(scope="module")
def quick_small(tmp_path_factory) -> Path:
    """The small market with a coarser curve design (two levels, one replication), to keep the suite quick."""
    text = (SCENARIOS / "small.yaml").read_text(encoding="utf-8")
    assert "\nrun:\n" in text
    text = text.replace("\nrun:\n", "\nrun:\n  estimation: {levels: [0.3, 1.0], replications: 1}\n")
    path = tmp_path_factory.mktemp("scenario") / "small_quick.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def plans(tmp_path_factory, quick_small: Path) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("plans")
    outs = (base / "a", base / "b")
    for out in outs:
        assert main(["-q", "optimize", str(quick_small), "--write-lp", "--out", str(out)]) == 0
    return outs


def test_optimize_writes_the_plan(plans, quick_small: Path) -> None:
    out = plans[0]
    for name in ("allocation.csv", "shadow_prices.csv", "reduced_costs.csv", "curves.csv", "manifest.json",
                 "allocation.lp"):
        assert (out / name).is_file(), name
    scenario = load_scenario(quick_small)
    allocation = pd.read_csv(out / "allocation.csv")
    assert list(allocation.columns) == ["tier", "lever", "period", "amount", "offers", "retained_lines", "value",
                                        "marginal_roi"]
    assert allocation["amount"].sum() <= scenario.budget.total * (1 + 1e-9)
    assert (allocation["amount"] > 0).all()
    # Each funded cell's value and retained lines are its curve's at the amount.
    curves = pd.read_csv(out / "curves.csv")
    for row in allocation.itertuples():
        points = curves[(curves.tier == row.tier) & (curves.lever == row.lever) & (curves.period == row.period)]
        assert row.value == pytest.approx(float(np.interp(row.amount, points["spend"], points["value"])), rel=1e-6)
    prices = pd.read_csv(out / "shadow_prices.csv")
    assert {"constraint", "kind", "shadow_price", "slack", "binding", "statement"} <= set(prices)
    assert "budget" in set(prices["constraint"])
    lp = (out / "allocation.lp").read_text()
    assert "spend_households_data_bonus_H1_seg0" in lp and "contact_policy_households_H1" in lp
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == scenario.run.seed and "response_curves" in manifest["timings_seconds"]


def test_the_allocation_file_feeds_the_simulator(plans, quick_small: Path) -> None:
    scenario = load_scenario(quick_small)
    allocation = Allocation.read_csv(plans[0] / "allocation.csv", scenario)
    assert allocation.total == pytest.approx(pd.read_csv(plans[0] / "allocation.csv")["amount"].sum())


def test_same_seed_same_plan(plans) -> None:
    for name in ("allocation.csv", "shadow_prices.csv", "curves.csv", "allocation.lp"):
        assert (plans[0] / name).read_bytes() == (plans[1] / name).read_bytes(), name


@pytest.mark.parametrize("args, message", [
    (["--budget", "lots"], "is not an amount"),
    (["--budget", "-5"], "at least 0"),
    (["--solver", "gurobi"], "invalid choice"),
])
def test_bad_arguments_are_usage_errors(quick_small: Path, args: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["optimize", str(quick_small), *args])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_an_existing_folder_is_never_overwritten(plans, quick_small: Path, capfd) -> None:
    before = (plans[0] / "allocation.csv").read_bytes()
    assert main(["optimize", str(quick_small), "--out", str(plans[0])]) == 1
    assert "exists already" in capfd.readouterr().err
    assert (plans[0] / "allocation.csv").read_bytes() == before
