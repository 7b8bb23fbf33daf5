"""``retention simulate``: its files, their reproducibility, and its answers to bad allocation files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from optimize.cli.main import main

from .conftest import SCENARIOS

SMALL = str(SCENARIOS / "small.yaml")
TABLES = ("monthly.csv", "by_tier.csv", "summary.csv", "levers.csv", "market.csv", "contact_center.csv", "outages.csv")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "optimize.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "plan.csv"
    path.write_text("tier,lever,period,amount\nhouseholds,bill_credit,H1,40000\nkey_a,account_manager,H2,15000\n")
    return path


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, plan: Path) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("runs")
    outs = (base / "a", base / "b", base / "c")
    for out, seed in zip(outs, ("3", "3", "4")):
        assert main(["-q", "simulate", SMALL, "--allocation", str(plan), "--reps", "2", "--seed", seed,
                     "--out", str(out)]) == 0
    return outs


def test_simulate_writes_the_tables_and_manifest(two_runs) -> None:
    out = two_runs[0]
    for name in TABLES + ("manifest.json", "allocation.csv"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["replications"] == 2
    assert {"numpy", "simpy", "pandas", "python"} <= set(manifest["versions"])
    assert len(manifest["scenario_sha256"]) == 64
    monthly = pd.read_csv(out / "monthly.csv")
    assert {"month", "tier", "lines_start", "churned_lines", "gross_adds_lines", "revenue", "margin",
            "retention_spend", "offers", "accepted", "mean_satisfaction", "churned_to_T", "churned_to_U"} <= set(monthly)
    cc = pd.read_csv(out / "contact_center.csv")
    assert {"calls", "answered_in_target", "mean_wait_minutes", "abandonment_rate", "complaints"} <= set(cc)
    market = pd.read_csv(out / "market.csv")
    shares = market.groupby(["replication", "month"])["share"].sum()
    assert shares.to_numpy() == pytest.approx(1.0)


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(two_runs) -> None:
    a, b, c = two_runs
    for name in TABLES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "monthly.csv").read_bytes() != (c / "monthly.csv").read_bytes()


def test_an_existing_output_folder_is_never_overwritten(two_runs) -> None:
    out = two_runs[0]
    before = (out / "monthly.csv").read_bytes()
    result = run("simulate", SMALL, "--reps", "1", "--out", str(out))
    assert result.returncode == 1 and "exists already" in result.stderr and "Traceback" not in result.stderr
    assert (out / "monthly.csv").read_bytes() == before


@pytest.mark.parametrize("content, expected", [
    ("tier,lever,period,amount\nhousehold,bill_credit,H1,100\n", [":2:", "unknown tier 'household'", "households"]),
    ("tier,lever,period,amount\nhouseholds,bill_credt,H1,100\n", [":2:", "unknown lever 'bill_credt'", "bill_credit"]),
    ("tier,lever,period,amount\nhouseholds,bill_credit,H1,-100\n", [":2:", "at least 0"]),
    ("tier,lever,period,amount\nhouseholds,bill_credit,H1,lots\n", [":2:", "not a number"]),
    ("tier,lever,period,amount\nhouseholds,bill_credit,Q9,100\n", [":2:", "unknown period 'Q9'"]),
    ("tier,lever,amount\nhouseholds,bill_credit,100\n", [":1:", "missing column period"]),
    ("tier,lever,period,amount,note\nhouseholds,bill_credit,H1,100,x\n", [":1:", "unexpected column note"]),
    ("tier,lever,period,amount\nprepaid,bill_credit,H1,100\n", [":2:", "not offered to tier 'prepaid'"]),
    ("tier,lever,period,amount\nhouseholds,bill_credit,H1,100\nhouseholds,bill_credit,H1,200\n", [":3:", "listed twice"]),
    ("", ["empty"]),
], ids=["unknown-tier", "unknown-lever", "negative", "not-a-number", "unknown-period", "missing-column",
        "extra-column", "lever-not-for-tier", "duplicate-cell", "empty"])
def test_a_bad_allocation_file_is_a_clear_error(tmp_path: Path, content: str, expected: list[str]) -> None:
    path = tmp_path / "plan.csv"
    path.write_text(content)
    result = run("simulate", SMALL, "--allocation", str(path), "--reps", "1", "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert str(path) in result.stderr
    for text in expected:
        assert text in result.stderr, (text, result.stderr)
    assert not (tmp_path / "out").exists()


def test_bad_numbers_on_the_command_line_are_usage_errors() -> None:
    result = run("simulate", SMALL, "--reps", "0")
    assert result.returncode == 2 and "at least 1" in result.stderr and "Traceback" not in result.stderr
