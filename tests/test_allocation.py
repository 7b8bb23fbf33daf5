"""The allocation LP against independent truth: another solver's LP, finite differences, hand-computed cases."""

from __future__ import annotations

import highspy
import numpy as np
import pytest
from scipy.optimize import linprog

from optimize.allocation.curves import ResponseCurve, concave_fit
from optimize.allocation.frontier import frontier
from optimize.allocation.problem import build_problem
from optimize.allocation.solve import InfeasibleAllocation, solve
from optimize.allocation.solvers import SOLVERS as NAMES
from optimize.allocation.solvers import HighsModel
from sim.scenario import Scenario, load_scenario

from .conftest import SCENARIOS

SOLVERS = ["highs", "highs-ipm", "cbc"]
"""Every check runs on each: HiGHS's dual simplex (the default), its interior point with crossover, CBC."""


@pytest.fixture(scope="module")
def small() -> Scenario:
    return load_scenario(SCENARIOS / "small.yaml")


def eligible_cells(scenario: Scenario) -> list[tuple[str, str, str]]:
    return [(t, name, p.name) for name, lever in scenario.levers.items() for t in (lever.tiers or scenario.tiers)
            for p in scenario.meta.periods]


def random_curve(rng: np.random.Generator, cell, scale: float = 50_000.0, segments: int | None = None) -> ResponseCurve:
    k = int(rng.integers(1, 5)) if segments is None else segments
    widths = rng.uniform(0.2, 1.0, k) * scale
    slopes = np.sort(rng.uniform(0.1, 3.0, k))[::-1]
    spends = np.concatenate([[0.0], np.cumsum(widths)])
    values = np.concatenate([[0.0], np.cumsum(widths * slopes)])
    lines = np.concatenate([[0.0], np.cumsum(widths * slopes / 1_000.0)])
    # What a unit allocated costs today (discounting, money a cell cannot pay): a unit or a little less.
    return ResponseCurve(*cell, tuple(spends), tuple(values), retained=tuple(lines), cost=float(rng.uniform(0.85, 1.0)))


def random_instance(small: Scenario, rng: np.random.Generator) -> tuple[Scenario, dict]:
    cells = eligible_cells(small)
    curves = {c: random_curve(rng, c) for c in cells if rng.random() < 0.8}
    tiers = list(small.tiers)
    budget: dict = {"total": float(rng.uniform(50_000, 600_000)),
                    "objective": str(rng.choice(["net_value", "value_within_budget"]))}
    if rng.random() < 0.5:
        budget["per_period"] = {p.name: float(rng.uniform(30_000, 400_000)) for p in small.meta.periods}
    bounds = {}
    for t in rng.choice(tiers, size=int(rng.integers(0, 3)), replace=False):
        kind = rng.integers(0, 4)
        bounds[str(t)] = ({"min": float(rng.uniform(0, 40_000))} if kind == 0 else
                          {"max": float(rng.uniform(10_000, 200_000))} if kind == 1 else
                          {"max_share": float(rng.uniform(0.1, 0.9))} if kind == 2 else
                          {"min_share": float(rng.uniform(0.0, 0.3))})
    budget["tiers"] = bounds
    if rng.random() < 0.4:
        budget["lever_capacity"] = {str(rng.choice(list(small.levers))): float(rng.uniform(200, 5_000))}
    if rng.random() < 0.3:
        budget["roi_floor"] = float(rng.uniform(0.5, 2.0))
    scenario = Scenario.model_validate(
        {**small.model_dump(mode="python"), "budget": {**small.budget.model_dump(mode="python"), **budget}},
        context=None)
    return scenario, curves


def scipy_optimum(scenario: Scenario, curves: dict) -> float | None:
    """The same problem written out as matrices from the scenario's own numbers, solved by scipy."""
    plan = scenario.budget
    columns = [(cell, k, w, s) for cell, curve in sorted(curves.items())
               for k, (w, s) in enumerate(zip(curve.widths, curve.slopes))]
    cost = np.array([curves[cell].cost for cell, _, _, _ in columns])
    n = len(columns)
    net = plan.objective == "net_value"
    c = -(np.array([s for _, _, _, s in columns]) - (cost if net else 0.0))
    bounds = [(0.0, w) for _, _, w, _ in columns]
    rows, rhs = [], []

    def le(coefficients, bound):
        rows.append(coefficients)
        rhs.append(bound)

    def money(stated, tier) -> float:
        """A stated cost per deciding unit, read off its fields here rather than through the model."""
        lines = tier.lines_per_account or 1
        if stated.share_of_arpu is not None:
            return stated.share_of_arpu * tier.arpu * lines
        return stated.amount * (1 if stated.per == "account" else lines)

    def cpo(tier, lever):
        t, lv = scenario.tiers[tier], scenario.levers[lever]
        return money(lv.cost_per_contact, t) + lv.acceptance * (
            money(lv.cost_per_acceptance, t) + money(lv.cost_per_line_month, t) * lv.duration_months)

    ones = np.ones(n)
    le(ones, plan.total)
    for period, cap in plan.per_period.items():
        le(np.array([1.0 if col[0][2] == period else 0.0 for col in columns]), cap)
    for tier, b in plan.tiers.items():
        in_tier = np.array([1.0 if col[0][0] == tier else 0.0 for col in columns])
        if b.min > 0:
            le(-in_tier, -b.min)
        if b.max is not None:
            le(in_tier, b.max)
        if b.min_share > 0:
            le(-(in_tier - b.min_share * ones), 0.0)
        if b.max_share < 1:
            le(in_tier - b.max_share * ones, 0.0)
    for p in scenario.meta.periods:
        for lever, cap in plan.lever_capacity.items():
            le(np.array([1 / cpo(*col[0][:2]) if col[0][1] == lever and col[0][2] == p.name else 0.0
                         for col in columns]), cap)
        for ch_name, ch in scenario.channels.items():
            le(np.array([1 / cpo(*col[0][:2]) if scenario.levers[col[0][1]].channel == ch_name and col[0][2] == p.name
                         else 0.0 for col in columns]), ch.capacity_per_month * p.months)
        policy = plan.contact_policy
        for tier_name, tier in scenario.tiers.items():
            allowed = tier.unit_count * policy.max_offers_per_line * p.months / policy.per_months
            le(np.array([1 / cpo(*col[0][:2]) if col[0][0] == tier_name and col[0][2] == p.name else 0.0
                         for col in columns]), allowed)
    if plan.roi_floor is not None:
        le(-(np.array([s for _, _, _, s in columns]) - plan.roi_floor * cost), 0.0)
    result = linprog(c, A_ub=np.array(rows), b_ub=np.array(rhs), bounds=bounds, method="highs")
    return -result.fun if result.status == 0 else None


@pytest.mark.parametrize("solver", SOLVERS)
def test_lp_matches_an_independent_formulation_on_random_instances(small: Scenario, solver: str) -> None:
    rng = np.random.default_rng(20261122)
    compared = infeasible = 0
    for i in range(120):
        scenario, curves = random_instance(small, rng)
        expected = scipy_optimum(scenario, curves)
        try:
            got = solve(build_problem(scenario, curves), solver).objective
        except InfeasibleAllocation:
            assert expected is None, f"instance {i}: we found no solution, scipy found {expected}"
            infeasible += 1
            continue
        assert expected is not None, f"instance {i}: scipy found no solution, we found {got}"
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-6), f"instance {i} ({solver})"
        compared += 1
    assert compared >= 100


def only_budget(small: Scenario, total: float, objective: str = "net_value") -> Scenario:
    budget = small.budget.model_copy(update={"total": total, "per_period": {}, "tiers": {}, "roi_floor": None,
                                             "objective": objective, "lever_capacity": {}})
    channels = {n: ch.model_copy(update={"capacity_per_month": 1e9}) for n, ch in small.channels.items()}
    policy = budget.contact_policy.model_copy(update={"max_offers_per_line": 100, "per_months": 1})
    return small.model_copy(update={"budget": budget.model_copy(update={"contact_policy": policy}),
                                    "channels": channels})


@pytest.mark.parametrize("solver", SOLVERS)
def test_funded_cells_earn_the_budgets_shadow_price_at_the_margin(small: Scenario, solver: str) -> None:
    rng = np.random.default_rng(3)
    curves = {c: random_curve(rng, c) for c in eligible_cells(small)}
    result = solve(build_problem(only_budget(small, 250_000), curves), solver)
    price = result.shadow_price("budget")
    assert price > 0
    for row in result.allocation.itertuples():
        curve = curves[(row.tier, row.lever, row.period)]
        after = curve.marginal(row.amount) - curve.cost               # net value of the next unit
        before = curve.marginal(max(0.0, row.amount * (1 - 1e-5) - 1e-3)) - curve.cost  # net value of the last unit
        # A unit more anywhere returns at most the shadow price; a funded cell's last unit at least it.
        assert after <= price + 1e-6
        if row.amount > 0:
            assert before >= price - 1e-6


@pytest.mark.parametrize("solver", SOLVERS)
def test_shadow_prices_agree_with_finite_differences(small: Scenario, solver: str) -> None:
    rng = np.random.default_rng(11)
    curves = {c: random_curve(rng, c) for c in eligible_cells(small)}
    scenario = only_budget(small, 180_000)
    capacity = {"lever_capacity": {"bill_credit": 1_500.0}}
    scenario = scenario.model_copy(update={"budget": scenario.budget.model_copy(update=capacity)})
    base = solve(build_problem(scenario, curves), solver)
    step = 10.0
    bigger = solve(build_problem(scenario, curves, budget=180_000 + step), solver)
    assert (bigger.objective - base.objective) / step == pytest.approx(base.shadow_price("budget"), rel=1e-6, abs=1e-9)
    more_slots = scenario.model_copy(update={"budget": scenario.budget.model_copy(
        update={"lever_capacity": {"bill_credit": 1_500.0 + 1.0}})})
    slot = solve(build_problem(more_slots, curves), solver)
    # The capacity applies per period, so one more slot moves both periods' constraints: their prices add up.
    moved = sum(base.shadow_price(f"lever_capacity_bill_credit_{p}") for p in ("H1", "H2"))
    assert moved > 0, "the capacity must bind for this check to mean anything"
    assert slot.objective - base.objective == pytest.approx(moved, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("seed", [5, 6, 7, 8])
def test_every_solver_agrees_on_status_values_duals_and_slacks(small: Scenario, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scenario, curves = random_instance(small, rng)
    while scipy_optimum(scenario, curves) is None:
        scenario, curves = random_instance(small, rng)
    problem = build_problem(scenario, curves)
    results = {s: solve(problem, s) for s in SOLVERS}
    reference = results["highs"]
    ref_rows = reference.constraints.set_index("constraint")
    for name, other in results.items():
        assert other.status == "Optimal", name
        assert other.objective == pytest.approx(reference.objective, rel=1e-7, abs=1e-6), name
        assert other.total_value == pytest.approx(reference.total_value, rel=1e-6, abs=1e-6), name
        # Random slopes make the optimum unique: the same amounts, hence the same slacks.
        np.testing.assert_allclose(other.allocation["amount"], reference.allocation["amount"], rtol=1e-6, atol=1e-3)
        np.testing.assert_allclose(other.allocation["retained"], reference.allocation["retained"], rtol=1e-6,
                                   atol=1e-6)
        rows = other.constraints.set_index("constraint")
        assert list(rows.index) == list(ref_rows.index), name
        np.testing.assert_allclose(rows["slack"], ref_rows["slack"], rtol=1e-6, atol=1e-2, err_msg=name)
        # Duals are unique where the primal is not degenerate; every solver's must be optimal duals:
        # zero off binding rows, and the same budget price.
        assert rows.loc["budget", "shadow_price"] == pytest.approx(ref_rows.loc["budget", "shadow_price"], rel=1e-6,
                                                                   abs=1e-9), name
        loose = ~rows["binding"]
        assert (rows.loc[loose, "shadow_price"].abs() <= 1e-7).all(), name
        assert (rows.loc[[n for n in rows.index if n.startswith(("budget", "period", "channel", "contact", "lever"))],
                         "shadow_price"] >= -1e-9).all(), name
        np.testing.assert_allclose(rows["shadow_price"], ref_rows["shadow_price"], rtol=1e-5, atol=1e-7, err_msg=name)


def test_the_allocation_table_counts_the_churners_each_cell_avoids(small: Scenario) -> None:
    rng = np.random.default_rng(21)
    curves = {c: random_curve(rng, c) for c in eligible_cells(small)}
    result = solve(build_problem(only_budget(small, 150_000), curves))
    for row in result.allocation.itertuples():
        assert row.retained == pytest.approx(curves[(row.tier, row.lever, row.period)].retained_at(row.amount))
    assert result.total_retained > 0


def test_the_written_lp_reads_like_the_plan_and_solves_to_the_same_optimum(small: Scenario, tmp_path) -> None:
    rng = np.random.default_rng(4)
    scenario, curves = random_instance(small, rng)
    while scipy_optimum(scenario, curves) is None:
        scenario, curves = random_instance(small, rng)
    problem = build_problem(scenario, curves)
    path = tmp_path / "plan.lp"
    problem.write_lp(str(path))
    text = path.read_text()
    cell = sorted(curves)[0]
    assert f"spend_{cell[0]}_{cell[1]}_{cell[2]}_seg0" in text
    assert "budget:" in text and f"contact_policy_{cell[0]}_{cell[2]}" in text
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.readModel(str(path))
    highs.run()
    assert highs.getInfo().objective_function_value == pytest.approx(solve(problem).objective, rel=1e-7)


def test_unknown_solver_names_list_the_known_ones(small: Scenario) -> None:
    rng = np.random.default_rng(2)
    problem = build_problem(only_budget(small, 1_000), {c: random_curve(rng, c) for c in eligible_cells(small)})
    with pytest.raises(ValueError, match="highs-ipm"):
        solve(problem, "gurobi")
    assert set(SOLVERS) <= set(NAMES)


def test_a_fixed_launch_cost_makes_it_worth_launching_only_with_enough_budget(small: Scenario) -> None:
    # One cell, value 2 per unit up to 10,000, each unit costing a unit, launch cost 5,000 paid in month 1
    # (worth 5,000 d today, d the monthly discount factor at 8% a year), net objective:
    # budget 8,000 -> launch and spend 3,000: net 2*3000 - 3000 - 5000 d < 0 -> better not to launch (0);
    # budget 20,000 -> launch and spend 10,000: net 20000 - 10000 - 5000 d.
    d = 1.08 ** (-1 / 12)
    lever = small.levers["bill_credit"].model_copy(update={"launch_cost": 5_000.0})
    scenario = only_budget(small, 8_000).model_copy(update={"levers": {**small.levers, "bill_credit": lever}})
    curves = {("households", "bill_credit", "H1"): ResponseCurve("households", "bill_credit", "H1",
                                                                 (0.0, 10_000.0), (0.0, 20_000.0))}
    for solver in SOLVERS:
        low = solve(build_problem(scenario, curves), solver)
        assert low.objective == pytest.approx(0.0, abs=1e-6) and low.total_spend == pytest.approx(0.0, abs=1e-6)
        high = solve(build_problem(scenario, curves, budget=20_000), solver)
        assert high.objective == pytest.approx(10_000.0 - 5_000.0 * d) and high.total_spend == pytest.approx(10_000.0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_the_frontier_is_non_decreasing_and_concave(small: Scenario, solver: str) -> None:
    rng = np.random.default_rng(9)
    curves = {c: random_curve(rng, c) for c in eligible_cells(small)}
    problem = build_problem(only_budget(small, 100_000, "value_within_budget"), curves)
    table = frontier(problem, np.linspace(0, 1_500_000, 60), solver)
    assert list(table.columns) == ["budget", "status", "objective", "spend", "value", "budget_shadow_price", "note"]
    values = table["objective"].to_numpy()
    assert (np.diff(values) >= -1e-6).all()
    slopes = np.diff(values) / np.diff(table["budget"].to_numpy())
    assert (np.diff(slopes) <= 1e-9).all()
    assert problem.budget_total == 100_000  # the frontier leaves the problem as it found it


def frontier_case(small: Scenario) -> tuple[Scenario, dict]:
    """The small scenario's own rules (contact policy, channels, budgets per period) plus lever capacities."""
    rng = np.random.default_rng(17)
    curves = {c: random_curve(rng, c, scale=20_000.0, segments=20) for c in eligible_cells(small)}
    rules = {"lever_capacity": {"bill_credit": 3_000.0, "data_bonus": 4_000.0},
             "per_period": {"H1": 400_000.0, "H2": 300_000.0}}
    return small.model_copy(update={"budget": small.budget.model_copy(update=rules)}), curves


@pytest.mark.parametrize("solver", ["highs", "highs-ipm"])
def test_the_frontier_re_solves_warm_and_matches_cold_solves(small: Scenario, solver: str) -> None:
    scenario, curves = frontier_case(small)
    problem = build_problem(scenario, curves)
    budgets = np.linspace(20_000, 900_000, 25)
    table = frontier(problem, budgets, solver)
    warm = table.attrs["iterations"]
    cold = []
    for budget, row in zip(budgets, table.itertuples()):
        # Each point equals a solve from scratch at its budget (fresh build, fresh solver).
        alone = solve(build_problem(scenario, curves, budget=budget), "highs")
        assert row.status == "optimal"
        assert row.objective == pytest.approx(alone.objective, rel=1e-7, abs=1e-6)
        assert row.budget_shadow_price == pytest.approx(alone.shadow_price("budget"), rel=1e-6, abs=1e-9)
        assert row.spend == pytest.approx(alone.total_spend, rel=1e-6, abs=1e-3)
        problem.set_budget(budget)
        model = HighsModel(problem, "highs-simplex")
        model.highs.setOptionValue("presolve", "off")  # a cold start counted in simplex pivots alone
        cold.append(model.run().iterations)
    problem.set_budget(scenario.budget.total)
    assert len(warm) == len(budgets)
    # The warm re-solves start from the last budget's basis: a few pivots instead of a solve.
    assert sum(warm[1:]) * 5 < sum(cold[1:]), (warm, cold)
    assert np.median(warm[1:]) <= 2


@pytest.mark.parametrize("change, expected", [
    ({"total": 50_000, "tiers": {"households": {"min": 40_000}, "key_a": {"min": 30_000}}},
     "the tier minimums add up to 70,000 but the total budget is 50,000"),
    ({"locked": [{"tier": "prepaid", "lever": "data_bonus", "period": "H1", "amount": 5_000}]},
     "has no response curve"),
    ({"roi_floor": 50.0, "tiers": {"households": {"min": 10_000}}}, "ROI floor"),
], ids=["tier-minimums-over-budget", "locked-cell-without-curve", "roi-floor-unreachable"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_each_kind_of_infeasibility_is_explained(small: Scenario, change: dict, expected: str, solver: str) -> None:
    curves = {("households", "bill_credit", p): ResponseCurve("households", "bill_credit", p, (0.0, 100_000.0),
                                                              (0.0, 150_000.0)) for p in ("H1", "H2")}
    curves[("key_a", "account_manager", "H1")] = ResponseCurve("key_a", "account_manager", "H1", (0.0, 50_000.0),
                                                               (0.0, 90_000.0))
    budget = {**small.budget.model_dump(mode="python"), "per_period": {}, **change}
    scenario = Scenario.model_validate({**small.model_dump(mode="python"), "budget": budget})
    with pytest.raises(InfeasibleAllocation) as info:
        solve(build_problem(scenario, curves), solver)
    text = " ".join(p.message for p in info.value.problems)
    assert expected in text


def test_concave_fit_recovers_a_concave_curve_and_reports_its_error() -> None:
    spends = np.array([0, 1, 2, 3, 4, 5], dtype=float) * 10_000
    truth = np.array([0, 30, 50, 62, 70, 74], dtype=float) * 1_000
    fitted, error = concave_fit(spends, truth)
    np.testing.assert_allclose(fitted, truth)
    assert error == pytest.approx(0.0, abs=1e-9)
    noisy = truth + np.array([0, 4, -3, 5, -2, 1]) * 1_000
    fitted, error = concave_fit(spends, noisy)
    slopes = np.diff(fitted) / np.diff(spends)
    assert (np.diff(slopes) <= 1e-12).all() and (slopes >= 0).all()
    assert error == pytest.approx(float(np.sqrt(np.mean((fitted - noisy) ** 2))))
    assert error < float(np.sqrt(np.mean((noisy - truth) ** 2)))  # the fit is closer than the truth to the data
