"""The command line as a planner meets it: ``-q`` prints only problems, for every command; the run names
the strategy its differences are paired against; warnings reach stderr whatever the noise level."""

from __future__ import annotations

import contextlib
import html
import io
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from optimize.cli.main import build_parser, main
from sim.customers.campaign_run import simulate_campaign
from sim.scenario import load_scenario

from .conftest import ROOT, SCENARIOS
from .test_customer_table import GOOD_CSV, GOOD_MAPPING

TINY_RUN = ("\nrun:\n  baseline_strategy: uniform\n"
            "  estimation: {levels: [1.0], replications: 1, simulated_lines: 1000}\n  closed_loop: {rounds: 0}\n")
"""The small market with the fewest curve-measuring runs: every command takes seconds on it."""


@dataclass
class Said:
    code: int
    out: str
    err: str


def _tiny(folder: Path) -> Path:
    text = (SCENARIOS / "small.yaml").read_text(encoding="utf-8")
    assert text.count("\nrun:\n") == 1 and text.count("  replications: 5\n") == 1
    text = text.replace("\nrun:\n", TINY_RUN).replace("  replications: 5\n", "  replications: 2\n")
    path = folder / "tiny.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _say(*argv: str) -> Said:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return Said(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Said]]:
    """Every command, with -q, on the tiny market (and a table calibrated from the small one)."""
    base = tmp_path_factory.mktemp("quiet")
    tiny = _tiny(base)
    (base / "table.csv").write_text(GOOD_CSV, encoding="utf-8")
    (base / "mapping.yaml").write_text(textwrap.dedent(GOOD_MAPPING), encoding="utf-8")
    (base / "plan.csv").write_text("tier,lever,period,amount\nbasic,bill_credit,H1,500\n", encoding="utf-8")
    said = {
        "validate": _say("-q", "validate", str(tiny)),
        "schema": _say("-q", "schema", "--out", str(base / "schema.json")),
        "simulate": _say("-q", "simulate", str(tiny), "--reps", "1", "--out", str(base / "simulate")),
        "optimize": _say("-q", "optimize", str(tiny), "--out", str(base / "optimize")),
        "frontier": _say("-q", "frontier", str(tiny), "--budgets", "0:200k:3", "--out", str(base / "frontier")),
        "goal": _say("-q", "goal", str(tiny), "--all-tiers", "--max-churn", "50%", "--out", str(base / "goal")),
        "run": _say("-q", "run", str(tiny), "--strategies", "no_retention", "lp_optimal", "--out", str(base / "run")),
        "calibrate": _say("-q", "calibrate", str(base / "table.csv"), "--map", str(base / "mapping.yaml"),
                          "--out", str(base / "calibrated.yaml"), "--report", str(base / "report")),
    }
    said["compare"] = _say("-q", "compare", str(base / "run"), str(base / "run"), "--out", str(base / "compare.csv"))
    calibrated = base / "calibrated.yaml"
    said["targets"] = _say("-q", "targets", str(calibrated), "--allocation", str(base / "plan.csv"), "--period", "H1",
                           "--out", str(base / "targets.csv"))
    simulate_campaign(load_scenario(calibrated), "data_bonus", 6, seed=5).to_csv(base / "campaign.csv", index=False)
    said["learn-lever"] = _say("-q", "learn-lever", str(base / "campaign.csv"), "--scenario", str(calibrated),
                               "--lever", "data_bonus", "--window-months", "6", "--out", str(base / "learned.yaml"))
    return base, said


def test_every_command_is_covered(quiet) -> None:  # type: ignore[no-untyped-def]
    _, said = quiet
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert commands == set(said)


def test_quiet_prints_nothing_on_stdout_when_nothing_is_wrong(quiet) -> None:  # type: ignore[no-untyped-def]
    _, said = quiet
    failed = {name: s.err for name, s in said.items() if s.code != 0}
    assert not failed
    noisy = {name: s.out for name, s in said.items() if s.out}
    assert not noisy


def test_without_quiet_the_same_command_does_speak(tmp_path: Path) -> None:
    said = _say("validate", str(_tiny(tmp_path)))
    assert said.code == 0 and "valid" in said.out


def test_the_solver_s_banner_is_silenced(tmp_path: Path) -> None:
    # A process of its own: HiGHS prints its banner once per process, below Python, on descriptor 1.
    tiny = _tiny(tmp_path)
    done = subprocess.run([sys.executable, "-m", "optimize.cli", "-q", "optimize", str(tiny), "--out",
                           str(tmp_path / "plan")], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "HiGHS" not in done.stderr


def test_the_run_names_the_baseline_it_paired_against(quiet) -> None:  # type: ignore[no-untyped-def]
    # The scenario asks for 'uniform', which is not among the strategies run: the differences are against
    # the first strategy run, and every table says so.
    base, said = quiet
    paired = pd.read_csv(base / "run" / "paired_differences.csv")
    assert set(paired["baseline"]) == {"no_retention"}
    assert set(paired["strategy"]) == {"lp_optimal"}
    report = html.unescape((base / "run" / "report.html").read_text(encoding="utf-8"))
    assert "against 'no_retention'" in report, "the report names the baseline it paired against"
    assert "'uniform'" not in report, "the report names a baseline that was not run"
    assert "run.baseline_strategy 'uniform' is not among --strategies" in said["run"].err


def test_a_stated_baseline_among_the_strategies_is_used() -> None:
    small = load_scenario(SCENARIOS / "small.yaml").with_changes({"run.baseline_strategy": "uniform"})
    assert small.baseline_among(["no_retention", "uniform", "lp_optimal"]) == "uniform"
    assert small.baseline_among(["lp_optimal", "no_retention"]) == "lp_optimal"
    assert small.baseline_strategy == "uniform"
    assert load_scenario(SCENARIOS / "small.yaml").baseline_strategy == "no_retention"


def test_reading_a_scenario_does_not_load_the_engine() -> None:
    """`validate` and `schema` load the scenario's model only: numba, pandas and the engine would triple the
    start of a command a planner runs after every edit (and that the bad-input corpus runs 150 times)."""
    heavy = ("numba", "pandas", "sim.engine", "sim.population", "highspy", "pulp")
    probe = ("import sys\nfrom optimize.cli.main import main\n"
             f"codes = [main(['-q', 'validate', {str(SCENARIOS / 'baseline.yaml')!r}]), main(['schema'])]\n"
             f"print(codes, [m for m in {heavy!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.splitlines()[-1] == "[0, 0] []", done.stdout + done.stderr
