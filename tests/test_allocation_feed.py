"""The budget-planning feed: one shape from every command, amounts in whole yuan that never exceed the
budget, and a round trip from each command's ``allocation.csv`` through ``retention simulate
--allocation`` to the simulation of the plan the command holds."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimize.cli.main import main
from sim.allocation import FEED_COLUMNS, LAUNCH, Allocation, AllocationError
from sim.runner import simulate
from sim.scenario import Scenario, load_scenario

from .conftest import ROOT, SCENARIOS


@pytest.fixture(scope="module")
def small() -> Scenario:
    return load_scenario(SCENARIOS / "small.yaml")


@pytest.fixture(scope="module")
def tiny(small: Scenario) -> Scenario:
    """The small market at a tenth of its lines, with a launch cost on the data bonus."""
    levers = dict(small.levers)
    levers["data_bonus"] = levers["data_bonus"].model_copy(update={"launch_cost": 2_500.0})
    return small.model_copy(update={"levers": levers, "run": small.run.model_copy(update={"scale": 0.1})})


# --- rounding --------------------------------------------------------------------------------------

def test_rounding_by_hand() -> None:
    # H1: 100.6 + 200.7 + 50.2 = 351.5, so 351 yuan: the floors give 350 and the one yuan left goes to the
    # largest fraction (0.7). H2's 0.4 of a yuan rounds to nothing.
    plan = Allocation({("a", "x", "H1"): 100.6, ("b", "x", "H1"): 200.7, ("c", "x", "H1"): 50.2,
                       ("a", "x", "H2"): 0.4})
    assert plan.rounded().amounts == {("a", "x", "H1"): 100.0, ("b", "x", "H1"): 201.0, ("c", "x", "H1"): 50.0}
    # Equal fractions: the cells are taken in name order, whatever order they were given in.
    tie = {("b", "x", "H1"): 10.5, ("a", "x", "H1"): 10.5}
    assert Allocation(tie).rounded().amounts == {("a", "x", "H1"): 11.0, ("b", "x", "H1"): 10.0}
    # To the hundred: 1,234.5 + 765.4 = 1,999.9, so 1,900 in all.
    hundreds = Allocation({("a", "x", "H1"): 1_234.5, ("b", "x", "H1"): 765.4}).rounded(100)
    assert hundreds.amounts == {("a", "x", "H1"): 1_200.0, ("b", "x", "H1"): 700.0}


amounts = st.dictionaries(st.tuples(st.sampled_from("abcde"), st.sampled_from(["x", "y"]), st.sampled_from(["H1", "H2"])),
                          st.floats(min_value=0, max_value=5e6, allow_nan=False), max_size=20)


@settings(max_examples=300, deadline=None)
@given(amounts)
def test_rounding_keeps_each_period_within_its_total(cells: dict[tuple[str, str, str], float]) -> None:
    plan = Allocation(cells)
    rounded = plan.rounded()
    for period in ("H1", "H2"):
        before = sum(a for c, a in cells.items() if c[2] == period)
        after = sum(a for c, a in rounded.amounts.items() if c[2] == period)
        assert before - 1 - 1e-6 * before <= after <= before + 1e-6  # never above; less than a yuan below
    for cell, amount in rounded.amounts.items():
        assert amount == math.floor(amount) and amount > 0
        assert abs(amount - cells[cell]) < 1
    assert rounded.rounded() == rounded


# --- the feed --------------------------------------------------------------------------------------

def test_the_feed_states_cells_and_launch_costs_in_whole_yuan(tiny: Scenario, tmp_path: Path) -> None:
    plan = Allocation({("households", "data_bonus", "H1"): 1_503_303.964757709,
                       ("households", "data_bonus", "H2"): 20_000.4, ("vip_gold", "bill_credit", "H1"): 700.5})
    feed = plan.feed(tiny)
    assert list(feed.columns) == list(FEED_COLUMNS)
    # H1: 1,503,303.96 + 700.5 = 1,504,004.46, so 1,504,004: the floors give 1,504,003 and the yuan left goes to
    # the larger fraction (0.96).
    assert feed.to_dict("records") == [
        {"tier": "households", "lever": "data_bonus", "period": "H1", "amount": 1_503_304, "policy": "risk"},
        {"tier": "households", "lever": "data_bonus", "period": "H2", "amount": 20_000, "policy": "risk"},
        {"tier": "vip_gold", "lever": "bill_credit", "period": "H1", "amount": 700, "policy": "risk"},
        {"tier": LAUNCH, "lever": "data_bonus", "period": "H1", "amount": 2_500, "policy": ""},
        {"tier": LAUNCH, "lever": "data_bonus", "period": "H2", "amount": 2_500, "policy": ""},
    ]
    path = tmp_path / "allocation.csv"
    plan.to_csv(path, tiny)
    assert path.read_text().splitlines()[:2] == ["tier,lever,period,amount,policy",
                                                 "households,data_bonus,H1,1503304,risk"]
    assert Allocation.read_csv(path, tiny) == plan.rounded()


def test_simulate_takes_a_plans_table(tiny: Scenario) -> None:
    plan = Allocation({("households", "data_bonus", "H1"): 3_000.0, ("vip_gold", "bill_credit", "H2"): 2_000.0})
    # A plan's table as the optimizer gives it: the feed, what it expects of each cell, launch rows without.
    table = plan.feed(tiny).assign(offers=[600.0, 40.0, math.nan], value=[5_000.0, 3_000.0, math.nan])
    by_table = simulate(tiny, table, seed=5, replications=1)
    by_allocation = simulate(tiny, plan, seed=5, replications=1)
    pd.testing.assert_frame_equal(by_table.monthly, by_allocation.monthly)
    assert by_table.monthly["retention_spend"].sum() > 0
    # The launch row is the scenario's launch cost: the simulation pays it once, for the one period the lever is used.
    assert by_table.launches[["lever", "period", "spend"]].to_dict("records") == [
        {"lever": "data_bonus", "period": "H1", "spend": 2_500.0}]


def test_a_table_that_is_not_one_plan_is_refused_with_the_fix(tiny: Scenario) -> None:
    plan = Allocation({("households", "data_bonus", "H1"): 3_000.0})
    several = plan.feed(tiny).assign(strategy="lp_optimal")
    with pytest.raises(AllocationError, match="allocations of several strategies") as refused:
        simulate(tiny, several, replications=1)
    assert "allocation.csv" in str(refused.value)
    typo = plan.feed(tiny).rename(columns={"amount": "amout"})
    with pytest.raises(AllocationError, match="missing column amount; unexpected column amout; did you mean 'amount'"):
        simulate(tiny, typo, replications=1)
    with pytest.raises(TypeError, match="an Allocation or a DataFrame"):
        simulate(tiny, [("households", "data_bonus", "H1", 3_000.0)], replications=1)  # type: ignore[arg-type]


# --- every command's allocation.csv, read back ------------------------------------------------------

@pytest.fixture(scope="module")
def outputs(tmp_path_factory, quick_small: Path) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("feeds")
    commands = {
        "optimize": ["optimize", str(quick_small)],
        "goal": ["goal", str(quick_small), "--tier", "households", "--min-retained", "20"],
        "run": ["run", str(quick_small), "--strategies", "proportional_revenue", "lp_optimal", "--reps", "2"],
    }
    for name, args in commands.items():
        assert main(["-q", *args, "--out", str(base / name)]) == 0, name
    return {name: base / name for name in commands}


def _simulate_file(scenario: Path, plan: Path, out: Path, reps: int) -> Path:
    assert main(["-q", "simulate", str(scenario), "--allocation", str(plan), "--reps", str(reps), "--seed", "7",
                 "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("command", ["optimize", "goal", "run"])
def test_every_commands_feed_has_one_shape_within_the_budget(outputs: dict[str, Path], quick_small: Path,
                                                            command: str) -> None:
    scenario = load_scenario(quick_small)
    feed = pd.read_csv(outputs[command] / "allocation.csv", keep_default_na=False)
    assert list(feed.columns) == list(FEED_COLUMNS)
    assert pd.api.types.is_integer_dtype(feed["amount"]) and (feed["amount"] > 0).all()
    plan = Allocation.read_csv(outputs[command] / "allocation.csv", scenario)
    assert feed["amount"].sum() == plan.spend(scenario) <= scenario.budget.total
    detail = pd.read_csv(outputs[command] / "lp_allocation.csv", keep_default_na=False)
    pd.testing.assert_frame_equal(detail[list(FEED_COLUMNS)], feed)


@pytest.mark.parametrize("command", ["optimize", "goal"])
def test_a_plans_feed_simulates_as_the_plan(outputs: dict[str, Path], quick_small: Path, tmp_path: Path,
                                            command: str) -> None:
    """``retention simulate --allocation allocation.csv`` against ``simulate(scenario, plan_table)`` from
    Python, the plan's table with what the optimizer expects of each cell: the same months to the yuan."""
    scenario = load_scenario(quick_small)
    out = _simulate_file(quick_small, outputs[command] / "allocation.csv", tmp_path / "sim", reps=1)
    table = pd.read_csv(outputs[command] / "lp_allocation.csv")
    in_python = simulate(scenario, table, seed=7, replications=1).monthly
    as_stored = pd.read_csv(io.StringIO(in_python.to_csv(index=False, float_format="%.10g")))  # as a CSV holds it
    from_file = pd.read_csv(out / "monthly.csv")
    pd.testing.assert_frame_equal(from_file, as_stored, check_exact=True)
    assert from_file["retention_spend"].sum() > 0
    # What the simulation says it spent from is the feed it was given, byte for byte.
    assert (out / "allocation.csv").read_bytes() == (outputs[command] / "allocation.csv").read_bytes()


@pytest.mark.parametrize("strategy", ["lp_optimal", "proportional_revenue"])
def test_a_runs_feed_simulates_as_the_run_simulated_the_plan(outputs: dict[str, Path], quick_small: Path,
                                                             tmp_path: Path, strategy: str) -> None:
    """A run's plan, read back from its feed (the LP's ``allocation.csv``; a rule's rows of ``allocations.csv``)
    and simulated on its own with the run's seed and replications, gives the months the run's comparison
    simulated for the strategy, to the yuan. The revenue-proportional rule's cells (29,212.25... yuan) are
    simulated in the whole yuan the feed states."""
    run = outputs["run"]
    every = pd.read_csv(run / "allocations.csv", keep_default_na=False)
    assert list(every.columns) == ["strategy", *FEED_COLUMNS]
    rows = every[every["strategy"] == strategy].drop(columns="strategy").reset_index(drop=True)
    if strategy == "lp_optimal":  # the recommended plan is allocation.csv
        pd.testing.assert_frame_equal(rows, pd.read_csv(run / "allocation.csv", keep_default_na=False))
    else:
        assert rows["amount"].sum() == 200_000 and (rows["amount"] % 1000 != 0).any()
    plan = tmp_path / "plan.csv"
    rows.to_csv(plan, index=False)
    out = _simulate_file(quick_small, plan, tmp_path / "sim", reps=2)
    in_run = pd.read_csv(run / "monthly.csv")
    in_run = in_run[in_run["strategy"] == strategy].drop(columns="strategy").reset_index(drop=True)
    from_file = pd.read_csv(out / "monthly.csv")
    pd.testing.assert_frame_equal(from_file, in_run, check_exact=True)
    spent = pd.read_csv(run / "summary.csv").set_index(["strategy", "metric"]).loc[(strategy, "retention_spend")]
    assert from_file.groupby("replication")["retention_spend"].sum().mean() == pytest.approx(spent["mean"], rel=1e-9)


def test_the_file_of_every_strategy_is_refused_with_the_fix(outputs: dict[str, Path], quick_small: Path,
                                                           tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "optimize.cli", "simulate", str(quick_small), "--allocation",
                             str(outputs["run"] / "allocations.csv"), "--reps", "1", "--out", str(tmp_path / "x")],
                            capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert result.returncode == 1, result.stderr
    assert "allocations of several strategies" in result.stderr and "allocation.csv" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "x").exists()
