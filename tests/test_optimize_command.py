"""``retention optimize``: its files, their agreement with each other and the scenario, and bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimize.cli.main import main
from sim.allocation import Allocation
from sim.scenario import load_scenario


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
    feed = pd.read_csv(out / "allocation.csv")
    assert list(feed.columns) == ["tier", "lever", "period", "amount", "policy"]
    allocation = pd.read_csv(out / "lp_allocation.csv")
    assert list(allocation.columns) == ["tier", "lever", "period", "amount", "policy", "offers", "retained_lines",
                                        "value", "next_unit_value"]
    pd.testing.assert_frame_equal(allocation[list(feed.columns)], feed)
    # The scenario fixes each lever's targeting policy; the plan shows it per cell.
    for row in allocation.itertuples():
        assert row.policy == scenario.targeting.cell_policy(scenario.levers[row.lever])
    assert allocation["amount"].sum() <= scenario.budget.total * (1 + 1e-9)
    assert (allocation["amount"] > 0).all()
    # Each funded cell's value is its curve's at the LP's amount, which the feed states to the yuan.
    curves = pd.read_csv(out / "curves.csv")
    for row in allocation.itertuples():
        points = curves[(curves.tier == row.tier) & (curves.lever == row.lever) & (curves.period == row.period)]
        low, high = np.interp([row.amount - 1, row.amount + 1], points["amount"], points["value"])
        assert low - 1e-6 <= row.value <= high + 1e-6
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


def test_a_plan_written_before_the_next_unit_value_rename_still_reads(plans, quick_small: Path,
                                                                     tmp_path: Path) -> None:
    scenario = load_scenario(quick_small)
    table = pd.read_csv(plans[0] / "allocation.csv").rename(columns={"next_unit_value": "marginal_roi"})
    table.to_csv(tmp_path / "allocation.csv", index=False)
    before = Allocation.read_csv(tmp_path / "allocation.csv", scenario)
    assert before.amounts == Allocation.read_csv(plans[0] / "allocation.csv", scenario).amounts


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


def test_frontier_command(quick_small: Path, tmp_path: Path) -> None:
    out = tmp_path / "frontier"
    assert main(["-q", "frontier", str(quick_small), "--budgets", "0:400k:50", "--out", str(out)]) == 0
    table = pd.read_csv(out / "frontier.csv")
    assert len(table) == 50 and table["budget"].iloc[-1] == pytest.approx(400_000)
    value = table["value"].to_numpy()
    assert (np.diff(value) >= -1e-6 * value.max()).all()


def test_goal_command_finds_the_least_budget(quick_small: Path, tmp_path: Path, capfd) -> None:
    out = tmp_path / "goal"
    assert main(["goal", str(quick_small), "--tier", "households", "--min-retained", "20", "--out", str(out)]) == 0
    printed = capfd.readouterr().out
    allocation = pd.read_csv(out / "lp_allocation.csv")
    assert set(allocation["tier"]) == {"households"}
    assert allocation["retained_lines"].sum() == pytest.approx(20, rel=1e-6)
    # The feed states the least budget in whole yuan: each period's total rounded down.
    least = float(printed.split("least budget: ")[1].split(" ")[0].replace(",", ""))
    assert least - 2 <= pd.read_csv(out / "allocation.csv")["amount"].sum() <= least + 0.5
    churn = pd.read_csv(out / "churn.csv").set_index("tier")
    assert churn.loc["households", "churn_with"] < churn.loc["households", "churn_without"]


def test_an_unreachable_goal_is_explained(quick_small: Path, tmp_path: Path, capfd) -> None:
    assert main(["goal", str(quick_small), "--tier", "households", "--max-churn", "0.1%",
                 "--out", str(tmp_path / "goal")]) == 1
    err = capfd.readouterr().err
    assert "households" in err and "0.10%" in err and "Traceback" not in err
    assert not (tmp_path / "goal").exists()


@pytest.mark.parametrize("args, message", [
    (["frontier", "--budgets", "0:100"], "FROM:TO:N"),
    (["frontier", "--budgets", "5M:1M:10"], "TO must be more than FROM"),
    (["goal", "--tier", "households", "--max-churn", "150%"], "monthly rate"),
    (["goal", "--max-churn", "1%"], "one of the arguments --tier --all-tiers is required"),
])
def test_bad_frontier_and_goal_arguments(quick_small: Path, args: list[str], message: str, capfd) -> None:
    with pytest.raises(SystemExit) as stop:
        main([args[0], str(quick_small), *args[1:]])
    assert stop.value.code == 2
    assert message in capfd.readouterr().err


def test_a_goal_needs_a_target(quick_small: Path, capfd) -> None:
    assert main(["goal", str(quick_small), "--tier", "households"]) == 2
    assert "give a goal" in capfd.readouterr().err
