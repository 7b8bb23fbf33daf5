"""The report leads with the answer: its figures formatted by hand-checked rules, its totals adding up
to the plan's feed, the plan's gains paired by replication, the churn drivers adding up to the churn,
and the page fitting 1280 px in a headless browser with no figure in scientific notation."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from optimize.outputs import formatting as fmt
from optimize.outputs.headline import (
    allocation_matrix,
    gain_source,
    gains_over_alternatives,
    unspent,
)
from optimize.outputs.report import charts, drawing, report_html
from optimize.run import parallel
from optimize.run.curve_cache import CurveStore
from optimize.run.parallel import begin_calls, keeping_workers
from optimize.run.pipeline import run
from sim.scenario import load_scenario

SCIENTIFIC = re.compile(r"\d\.?\d*[eE][+-]?\d+")
DRIVERS = ["price gap", "network quality and outages", "service and complaints", "competitor pressure",
           "contract and tenure", "own propensity"]


def test_figures_read_as_a_planner_writes_them() -> None:
    assert fmt.money(35_600_000, "CNY") == "35.60M CNY"
    assert fmt.money(7_500, "CNY") == "7,500 CNY"
    assert fmt.money(-1_320_000, "CNY", signed=True) == "−1.32M CNY"
    assert fmt.money_interval(20.6e6, 19.1e6, 22.0e6, "CNY") == "+20.60M CNY [+19.10M, +22.00M]"
    # One unit for the three figures of an interval, the largest's: no 'M' beside whole units.
    assert fmt.money_interval(900_000, -50_000, 1_850_000, "CNY") == "+0.90M CNY [−0.05M, +1.85M]"
    assert fmt.percent(0.01438) == "1.44%"
    assert fmt.points(-0.0009) == "−0.09 pp"
    assert fmt.count(12_345.6) == "12,346"
    assert fmt.count_interval(82.4, 47.0, 117.2) == "+82 [+47, +117]"
    assert fmt.money(float("nan"), "CNY") == fmt.percent(float("nan")) == "–"
    assert fmt.money_interval(5.0, float("nan"), float("nan"), "CNY", signed=False) == "5 CNY"


def test_no_magnitude_turns_into_scientific_notation() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([10.0 ** rng.uniform(-12, 13, 400), -(10.0 ** rng.uniform(-12, 13, 400)), [0.0, 1e-300]])
    for x in values:
        for shown in (fmt.money(x, "CNY"), fmt.money_interval(x, x / 2, x * 2, "CNY"), fmt.percent(x),
                      fmt.points(x), fmt.count(x), fmt.ratio(x)):
            assert not SCIENTIFIC.search(shown), (x, shown)


def test_one_money_column_is_written_in_one_unit() -> None:
    column = pd.Series([15_000.0, 7_500.0, 2_400_000.0])
    shown = [fmt.money_column(column, "CNY")(x) for x in column]
    assert shown == ["0.01M", "0.01M", "2.40M"]
    assert [fmt.money_column(column[:2], "CNY")(x) for x in column[:2]] == ["15,000", "7,500"]


@pytest.fixture(scope="module")
def outcome(quick_small: Path):
    result = run(load_scenario(quick_small), str(quick_small), replications=2)
    rows = []
    for k, tier in enumerate(result.scenario.tiers):
        parts = np.array([0.004, 0.002, 0.001 * (k + 1), 0.003, -0.002, 0.0015])
        rows += [{"tier": tier, "driver": d, "churn": parts.sum(), "contribution": c, "share": c / parts.sum()}
                 for d, c in zip(DRIVERS, parts)]
    result.churn_drivers = pd.DataFrame(rows)
    return result


def _figures(cell: str) -> list[float]:
    """The amounts a matrix cell shows (bold total first, then the periods), in currency units."""
    numbers = re.findall(r"[−-]?[\d,]+\.?\d*M?", re.sub(r"<[^>]+>", " ", cell))
    return [float(n.replace(",", "").replace("−", "-").rstrip("M")) * (1e6 if n.endswith("M") else 1.0)
            for n in numbers]


def test_the_allocation_matrix_adds_up_to_the_plan(outcome) -> None:
    plan = outcome.plan.allocation
    page = allocation_matrix(outcome, "lp_optimal")
    total_row = re.search(r"<tr class='total'>(.*?)</tr>", page).group(1)
    cells = re.findall(r"<td>(.*?)</td>", total_row)
    grand = _figures(cells[-1])
    # The grand total is the plan's spend, launch costs included; beneath it each period's spend.
    assert grand[0] == pytest.approx(plan["amount"].sum(), abs=0.5)
    by_period = plan.groupby("period")["amount"].sum()
    periods = [p.name for p in outcome.scenario.meta.periods]
    assert grand[1:] == pytest.approx([by_period.get(p, 0.0) for p in periods], abs=0.5)
    assert sum(grand[1:]) == pytest.approx(grand[0], abs=1.0)
    left = unspent(outcome, "lp_optimal")
    assert left.amount == pytest.approx(outcome.scenario.budget.total - plan["amount"].sum())
    if left.amount > 0:
        assert left.reasons, "what is left unspent comes with a reason"


def test_the_plans_gains_are_paired_by_replication(outcome) -> None:
    gains = gains_over_alternatives(outcome, "lp_optimal").set_index("against")
    lp = outcome.figures["lp_optimal"].set_index("replication")
    for name, frame in outcome.figures.items():
        if name == "lp_optimal":
            continue
        diff = (lp["npv"] - frame.set_index("replication")["npv"]).to_numpy()
        half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
        row = gains.loc[name]
        assert row["npv_difference"] == pytest.approx(diff.mean(), rel=1e-9)
        # The engine's t quantile is an approximation, within a thousandth of scipy's.
        assert row["npv_ci_low"] == pytest.approx(diff.mean() - half, abs=1e-3 * half)
        assert row["npv_ci_high"] == pytest.approx(diff.mean() + half, abs=1e-3 * half)


def test_a_gain_in_value_without_more_lines_is_explained() -> None:
    """The baseline's plan beats uniform by millions with churn +0.00 pp and a few hundred lines fewer: the
    report says the plan keeps lines worth more, and says nothing when it keeps more lines or does not win."""
    def gain(npv: tuple[float, float], lines: tuple[float, float, float]) -> pd.Series:
        return pd.Series({"npv_difference": sum(npv) / 2, "npv_ci_low": npv[0], "npv_ci_high": npv[1],
                          "lines_retained_difference": lines[0], "lines_retained_ci_low": lines[1],
                          "lines_retained_ci_high": lines[2], "value_retained_difference": 2.19e7,
                          "value_retained_ci_low": 2.0e7, "value_retained_ci_high": 2.38e7})

    fewer = gain((2.0e7, 2.4e7), (-422, -700, -150))
    said = gain_source(fewer, "uniform", "CNY")
    assert said is not None and "keeps fewer lines (−422 [−700, −150])" in said
    assert "retains +21.90M CNY [+20.00M, +23.80M] more value" in said
    assert "about as many lines (−40 [−300, +220])" in str(gain_source(gain((2.0e7, 2.4e7), (-40, -300, 220)),
                                                                      "uniform", "CNY"))
    assert gain_source(gain((2.0e7, 2.4e7), (900, 600, 1200)), "uniform", "CNY") is None
    assert gain_source(gain((-1.0e6, 2.4e7), (-422, -700, -150)), "uniform", "CNY") is None


def test_the_report_is_byte_reproducible_and_leads_with_the_answer(outcome) -> None:
    first = charts(outcome)
    # Drawn again on a command's workers: the same bytes. As in a command, the curve store reports to
    # the terminal, which cannot be sent to a worker.
    said = replace(outcome, curve_store=CurveStore(say=lambda message: None))
    with keeping_workers(2):
        kept = parallel._kept.get()
        kept.stage({}, None, 0)  # the pool a command's first fan-out starts
        workers = {p.pid for p in kept.pool._pool}
        drawn_by = set(begin_calls([(os.getpid, ())] * 4)())
        second = drawing(said)()
    assert drawn_by <= workers and os.getpid() not in drawn_by
    assert list(second) == list(first) and first == second
    page = report_html(outcome, first)
    assert page == report_html(outcome, second)
    order = [page.index(s) for s in ("Where should 200,000 CNY", "What to do: the recommended allocation",
                                     "What it gains over each alternative", "Why customers leave",
                                     "Response curves", "Strategies compared")]
    assert order == sorted(order)
    assert "response_curves.png" in first and "churn_drivers.png" in first
    # The drivers table: each tier's parts in points of churn add up to the churn it shows.
    section = page[page.index('id="churn_drivers"'):]
    row = re.search(r"<tr><td class=\"name\">(\w+)</td>(.*?)</tr>", section[section.index("<tbody>"):])
    figures = [float(x.replace("−", "-").rstrip("%")) for x in re.findall(r"<td>([^<]+)</td>", row.group(2))]
    assert sum(figures[1:]) == pytest.approx(figures[0], abs=0.02)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _body(browser: str, page: Path) -> str:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000", "--virtual-time-budget=5000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], check=False, capture_output=True, text=True,
                         timeout=120).stdout
    return re.search(r"<body[^>]*>", dom).group(0)


def test_the_report_fits_1280_px_without_scientific_notation(outcome, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (CI installs it)")
    images = charts(outcome)
    page = tmp_path / "report.html"
    page.write_text(report_html(outcome, images), encoding="utf-8")
    body = _body(browser, page)
    assert f'data-charts-rendered="{len(images)}/{len(images)}"' in body
    assert 'data-overflow="no"' in body and 'data-scientific="none"' in body
    # The same checks catch a page that is too wide or shows 7.915e+05.
    bad = page.read_text(encoding="utf-8").replace(
        "<h1>", "<p style='width:1600px'>7.915e+05</p><h1>", 1)
    page.write_text(bad, encoding="utf-8")
    body = _body(browser, page)
    assert 'data-overflow="yes"' in body and "7.915e+05" in body


def test_the_unspent_reasons_are_given_for_the_plan_the_run_simulated(outcome, monkeypatch) -> None:
    # The run simulates the LP's plan in whole currency units: a plan with cents to round is still the LP's,
    # and gets the LP's reasons. Cents added to the fixture's whole plan round back to the same units.
    result = outcome.plan.result
    whole = type(result).to_allocation

    def with_cents(self):
        plan = whole(self)
        return type(plan)({cell: amount + 0.3 for cell, amount in plan.amounts.items()})

    monkeypatch.setattr(type(result), "to_allocation", with_cents)
    assert outcome.recommended().amounts == outcome.allocations["lp_optimal"].amounts
    assert outcome.plan.result.to_allocation().amounts != outcome.allocations["lp_optimal"].amounts
    left = unspent(outcome, "lp_optimal")
    assert left.reasons, "the LP's plan gets its reasons, spent to the last unit or not"


def test_a_cell_that_pays_but_not_its_levers_launch_is_not_said_to_lose_money(outcome, monkeypatch) -> None:
    # An unfunded cell whose first unit returns more than it costs, its lever switched off in that period
    # (the launch row binds): it is held back by the launch cost, not by money that stops paying, and it
    # is not "the best" of the cells where money returns less than it costs.
    plan = type(outcome.plan)
    prices, unfunded = outcome.plan.shadow_prices.copy(), outcome.plan.reduced_costs.copy()
    tier = next(iter(outcome.scenario.tiers))
    lever = next(iter(outcome.scenario.levers))
    period = outcome.scenario.meta.periods[-1].name
    cost = outcome.plan.curves.get((tier, lever, period))
    cost = cost.cost if cost is not None else 1.0
    unfunded = pd.concat([unfunded, pd.DataFrame([{"tier": tier, "lever": lever, "period": period, "reduced_cost": -0.1,
                                                   "first_unit_value": cost + 5.0}])], ignore_index=True)
    prices = pd.concat([prices, pd.DataFrame([{"constraint": f"launch_{lever}_{period}", "kind": "launch",
                                               "about": f"{lever},{period}", "shadow_price": 5.0, "slack": 0.0,
                                               "binding": True, "statement": ""}])], ignore_index=True)
    monkeypatch.setattr(plan, "shadow_prices", property(lambda self: prices))
    monkeypatch.setattr(plan, "reduced_costs", property(lambda self: unfunded))
    # Half the plan's spend again left over, so that the reasons are asked for.
    spent = float(outcome.plan.allocation["amount"].sum())
    monkeypatch.setattr(outcome, "scenario", outcome.scenario.with_changes({"budget.total": 1.5 * spent + 1.0,
                                                                            "budget.per_period": {}}))
    reasons = unspent(outcome, "lp_optimal").reasons
    said = " ".join(reasons)
    assert f"1 unfunded cell would return more than it costs, but not enough to pay for switching on " \
           f"{fmt.words(lever)} in {period}" in said, reasons
    assert f"{tier} · {fmt.words(lever)} in {period}" not in said, reasons
