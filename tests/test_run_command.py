"""``retention run`` end to end on the small market: its files, the workbook, the report in a
browser, the same bytes with one and two workers, and an interrupted run leaving nothing."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from optimize.cli.main import main

from .conftest import ROOT, SCENARIOS

ARTIFACTS = ROOT / "results" / "test-artifacts"
TABLES = ("summary", "paired_differences", "by_tier", "monthly", "allocation", "allocations", "lp_allocation",
          "frontier", "shadow_prices", "predicted_vs_simulated", "curves", "targeting_rules", "targeting_curves",
          "churn_drivers")
CHARTS = ("churn_by_strategy.png", "npv_by_strategy.png", "frontier.png", "allocation_heatmap.png",
          "response_curves.png", "market_shares.png", "targeting_rules.png", "churn_drivers.png")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, quick_small: Path) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("runs")
    one, two = base / "one", base / "two"
    assert main(["-q", "run", str(quick_small), "--reps", "3", "--workers", "1", "--out", str(one)]) == 0
    # --remeasure: the second run measures its curves on two workers rather than reusing the first's.
    assert main(["-q", "run", str(quick_small), "--reps", "3", "--workers", "2", "--remeasure", "--out", str(two)]) == 0
    return one, two


def test_run_writes_the_decision_package(runs) -> None:
    out = runs[0]
    for stem in TABLES:
        assert (out / f"{stem}.csv").is_file(), stem
    for name in CHARTS + ("results.xlsx", "report.html", "manifest.json"):
        assert (out / name).is_file(), name
    summary = pd.read_csv(out / "summary.csv")
    strategies = ["no_retention", "uniform", "proportional_revenue", "key_accounts_first", "lp_optimal"]
    assert list(dict.fromkeys(summary["strategy"])) == strategies
    npv = summary[summary["metric"] == "npv"].set_index("strategy")
    assert (npv["ci_low"] <= npv["mean"]).all() and (npv["mean"] <= npv["ci_high"]).all()
    allocation = pd.read_csv(out / "allocations.csv")
    assert list(allocation.columns) == ["strategy", "tier", "lever", "period", "amount", "policy"]
    assert set(allocation["policy"]) <= {"risk", "save_desk"}   # small.yaml targets by risk
    # Every rule spends the budget it was given; the LP spends within it.
    spent = allocation.groupby("strategy")["amount"].sum()
    for name in ("uniform", "proportional_revenue", "key_accounts_first"):
        assert spent[name] == pytest.approx(200_000)
    assert spent["lp_optimal"] <= 200_000 * (1 + 1e-9)
    frontier = pd.read_csv(out / "frontier.csv")
    assert len(frontier) >= 50
    predicted = pd.read_csv(out / "predicted_vs_simulated.csv")
    assert set(predicted["metric"]) == {"value_retained", "lines_retained", "npv_gain"}


def test_paired_differences_agree_with_the_per_replication_figures(runs) -> None:
    monthly = pd.read_csv(runs[0] / "monthly.csv")
    spend = monthly.groupby(["strategy", "replication"])["retention_spend"].sum()  # no launch costs here
    paired = pd.read_csv(runs[0] / "paired_differences.csv").set_index(["strategy", "metric"])
    baseline = paired["baseline"].iloc[0]
    for strategy in ("uniform", "lp_optimal"):
        expected = (spend[strategy] - spend[baseline]).mean()
        assert paired.loc[(strategy, "retention_spend"), "difference"] == pytest.approx(expected, rel=1e-9)


def test_the_workbook_reads_back_with_the_tables(runs) -> None:
    out = runs[0]
    sheets = pd.read_excel(out / "results.xlsx", sheet_name=None)
    assert list(sheets)[:2] == ["Plan", "About"] and set(TABLES) <= set(sheets)
    for stem in ("summary", "allocation", "frontier"):
        csv = pd.read_csv(out / f"{stem}.csv")
        pd.testing.assert_frame_equal(sheets[stem], csv, check_dtype=False, rtol=1e-9)
    # The Plan's grand total is the feed's: the LP's plan as the run simulated it.
    assert sheets["Plan"]["total"].iloc[-1] == pd.read_csv(out / "allocation.csv")["amount"].sum()
    # The replications are summarized: one row per strategy, month and tier.
    monthly = pd.read_csv(out / "monthly.csv")
    assert len(sheets["monthly"]) == len(monthly) / 3 and (sheets["monthly"]["replications"] == 3).all()


def test_one_or_two_workers_give_the_same_bytes(runs) -> None:
    one, two = runs
    names = [p.name for p in one.iterdir() if p.name != "manifest.json"]
    assert len(names) >= len(TABLES) + len(CHARTS) + 2
    for name in names:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_the_report_renders_in_a_headless_browser(runs) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (CI installs it)")
    report = runs[0] / "report.html"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
             "--virtual-time-budget=5000"]
    dom = subprocess.run([browser, *flags, "--window-size=1280,1000", "--dump-dom", report.as_uri()],
                         capture_output=True, text=True,
                         timeout=120).stdout
    assert f'data-charts-rendered="{len(CHARTS)}/{len(CHARTS)}"' in dom
    for heading in ("Where should 200,000 CNY", "What to do: the recommended allocation",
                    "What it gains over each alternative", "Strategies compared", "Paired differences",
                    "The recommended allocation cell by cell", "Binding rules", "Monthly churn by tier",
                    "Why customers leave: churn by driver"):
        assert heading in dom, heading
    assert dom.count("<table") >= 6 and "lp_optimal" in dom
    assert 'data-overflow="no"' in dom and 'data-scientific="none"' in dom
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    subprocess.run([browser, *flags, "--window-size=1280,2400", f"--screenshot={shot}", report.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000


def _is_worker(process: psutil.Process) -> bool:
    """A pool worker of the command (not multiprocessing's resource tracker); False if it is already gone."""
    try:
        return "resource_tracker" not in " ".join(process.cmdline())
    except psutil.Error:
        return False


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_an_interrupted_run_leaves_nothing(quick_small: Path, tmp_path: Path, stop: int) -> None:
    out = tmp_path / "results" / "interrupted"
    scratch = tmp_path / "tmp"  # where the command's pool keeps each stage's inputs
    scratch.mkdir()
    # Ctrl-C as from a terminal: a test runner started in the background hands its children SIGINT ignored.
    process = subprocess.Popen([sys.executable, "-m", "optimize.cli", "run", str(quick_small), "--reps", "1000",
                                "--workers", "2", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=ROOT, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                               env=os.environ | {"TMPDIR": str(scratch)})
    try:
        # Stopped once its workers run (curve measurement or simulation: 1,000 replications take minutes).
        children: list[psutil.Process] = []
        for _ in range(120):
            time.sleep(0.5)
            children = [c for c in psutil.Process(process.pid).children() if _is_worker(c)]
            if len(children) >= 2:
                break
        assert len(children) >= 2, "the command's workers never started"
        time.sleep(1)
        process.send_signal(stop)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert not out.exists()
    # The workers kept for the command end with it, and so does the folder of their stages' inputs.
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive
    assert list(scratch.iterdir()) == []
    if out.parent.exists():
        assert list(out.parent.glob(".*partial*")) == []


def test_a_staging_folder_of_a_killed_writer_is_swept(tmp_path: Path) -> None:
    from sim.runner import write_outputs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".old.partial-{dead.pid}-abcd"
    stale.mkdir()
    (stale / "summary.csv").write_text("half")
    write_outputs(tmp_path / "new", {"t": pd.DataFrame({"a": [1]})}, {"k": 1})
    assert not stale.exists() and (tmp_path / "new" / "t.csv").is_file()


def test_compare_puts_runs_side_by_side(runs, capfd) -> None:
    assert main(["compare", str(runs[0]), str(runs[1])]) == 0
    out = capfd.readouterr().out
    assert "difference of means" in out and "lp_optimal" in out
    assert main(["compare", str(runs[0]), str(runs[0].parent)]) == 1
    assert "not a finished run" in capfd.readouterr().err


def test_the_robust_plan_reports_each_competitor_variant(quick_small: Path, tmp_path: Path) -> None:
    text = quick_small.read_text(encoding="utf-8")
    variants = """competitors:
  campaigns:
    - {name: u_cut, operator: U, tiers: [households, prepaid], price_cut: 0.10, intensity: 0.3, start_month: 4, duration_months: 3}
  variants:
    - {name: quiet, probability: 0.6}
    - name: price_war
      probability: 0.4
      campaigns:
        - {name: u_war, operator: U, tiers: [households, prepaid, vip_gold], price_cut: 0.25, intensity: 0.6, start_month: 2, duration_months: 8}
"""
    start = text.index("competitors:\n")
    end = text.index("\nchannels:")
    text = text[:start] + variants + text[end:]
    text += "\nstrategies: [no_retention, lp_optimal, robust_lp]\n"
    path = tmp_path / "small_variants.yaml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "robust"
    assert main(["-q", "run", str(path), "--reps", "2", "--out", str(out)]) == 0
    table = pd.read_csv(out / "variants.csv")
    for strategy in ("lp_optimal", "robust_lp"):
        rows = table[table["strategy"] == strategy].set_index("variant")
        assert {"quiet", "price_war", "expected"} <= set(rows.index)
        assert rows.loc["expected", "npv"] == pytest.approx(0.6 * rows.loc["quiet", "npv"] + 0.4 * rows.loc["price_war", "npv"])
        worst = [v for v in rows.index if v.startswith("worst case")]
        assert len(worst) == 1
        assert rows.loc[worst[0], "npv"] == pytest.approx(min(rows.loc["quiet", "npv"], rows.loc["price_war", "npv"]))
    # A price war makes the same plan less valuable than a quiet market.
    robust = table[table["strategy"] == "robust_lp"].set_index("variant")
    assert robust.loc["price_war", "monthly_churn"] > robust.loc["quiet", "monthly_churn"]
    assert "robust_lp" in set(pd.read_csv(out / "allocations.csv")["strategy"])


def test_a_planner_allocation_file_is_a_strategy(quick_small: Path, tmp_path: Path) -> None:
    plan = tmp_path / "mine.csv"
    plan.write_text("tier,lever,period,amount\nhouseholds,data_bonus,H1,30000\nprepaid,data_bonus,H2,20000\n")
    scenario = tmp_path / "small_mine.yaml"
    scenario.write_text(quick_small.read_text(encoding="utf-8")
                        + "\nstrategies: [no_retention, {name: mine, allocation: mine.csv}]\n", encoding="utf-8")
    out = tmp_path / "run"
    assert main(["-q", "run", str(scenario), "--reps", "2", "--out", str(out)]) == 0
    allocation = pd.read_csv(out / "allocations.csv")
    mine = allocation[allocation["strategy"] == "mine"]
    assert mine["amount"].sum() == pytest.approx(50_000)
    spend = pd.read_csv(out / "summary.csv").set_index(["strategy", "metric"])["mean"]
    assert 0 < spend[("mine", "retention_spend")] <= 50_000


def test_the_tutorial_plan_pays_where_spending_evenly_loses(tmp_path: Path) -> None:
    """The small market as the README's tutorial reads it, run as shipped (its own replications and seed):
    the LP's plan gains NPV over no retention by an interval above zero, spending the budget evenly loses by
    one below zero, and the LP leaves prepaid unfunded (its churn is mostly SIMs dropped, which no offer
    changes)."""
    out = tmp_path / "tutorial"
    assert main(["-q", "run", str(SCENARIOS / "small.yaml"), "--workers", "1", "--out", str(out)]) == 0
    paired = pd.read_csv(out / "paired_differences.csv").set_index(["strategy", "metric"])
    assert paired.loc[("lp_optimal", "npv"), "baseline"] == "no_retention"
    assert paired.loc[("lp_optimal", "npv"), "ci_low"] > 0
    assert paired.loc[("uniform", "npv"), "ci_high"] < 0
    plan = pd.read_csv(out / "lp_allocation.csv")
    assert "prepaid" not in set(plan.loc[plan["amount"] > 0, "tier"])
    assert plan["amount"].sum() < 0.5 * 200_000
