"""Choosing each lever's targeting policy from curves measured under each (:mod:`optimize.run.policies`).

In the futility market (responsiveness falling with risk) the bill credit's curves promise more under
uplift targeting than under risk targeting (under risk it destroys value), so the choice is uplift; the plan solved on the chosen
curves names it per cell; and each policy's curve is the one measured under it, read against the same
runs without retention.
"""

from __future__ import annotations

import pandas as pd
import pytest

from optimize.cli.main import main
from optimize.run.plan import plan_allocation
from optimize.run.policies import best_net_value, choose_policies
from sim.scenario import load_scenario

from .conftest import SCENARIOS


@pytest.fixture(scope="module")
def choice():  # type: ignore[no-untyped-def]
    scenario = load_scenario(SCENARIOS / "futility.yaml")
    estimation = scenario.run.model_copy(update={"closed_loop": scenario.run.closed_loop.model_copy(
        update={"rounds": 1})})
    return choose_policies(scenario.model_copy(update={"run": estimation}), ("risk", "uplift"))


def test_futility_chooses_uplift_for_the_bill_credit(choice) -> None:  # type: ignore[no-untyped-def]
    # At these costs the credit earns above its cost under neither policy (both curves' best net value is
    # 0: not funding), so the choice goes by the measured value at the cells' largest amounts: aimed at
    # the riskiest lines the credit destroys value (they respond least, sleeping dogs among them), aimed
    # by the uplift model it keeps some.
    table = choice.table.set_index("policy")
    assert table.loc["uplift", "best_net_value"] >= table.loc["risk", "best_net_value"]
    assert table.loc["risk", "value_at_ceiling"] < 0 < table.loc["uplift", "value_at_ceiling"]
    assert table.loc["uplift", "chosen"] and not table.loc["risk", "chosen"]
    assert choice.scenario.levers["bill_credit"].policy == "uplift"
    # The chosen curves are those measured under uplift: what the table promised, cell by cell.
    promised = sum(best_net_value(c) for cell, c in choice.estimate.curves.items() if cell[1] == "bill_credit")
    assert promised == pytest.approx(table.loc["uplift", "best_net_value"])
    assert set(choice.estimate.points["lever"]) == {"bill_credit"}


def test_the_plan_names_the_chosen_policy_per_cell(choice) -> None:  # type: ignore[no-untyped-def]
    # Spending the budget for the most value (the credit does not pay for itself here: net of spend the
    # plan would fund nothing).
    scenario = choice.scenario
    scenario = scenario.model_copy(update={"budget": scenario.budget.model_copy(
        update={"objective": "value_within_budget"})})
    plan = plan_allocation(scenario, estimate=choice.estimate)
    funded = plan.allocation[plan.allocation["amount"] > 0]
    assert len(funded) and set(funded["policy"]) == {"uplift"}


def test_unknown_candidates_are_refused() -> None:
    scenario = load_scenario(SCENARIOS / "futility.yaml")
    with pytest.raises(ValueError, match="candidate policies must be some of risk, uplift, value"):
        choose_policies(scenario, ("risk", "reach"))


def test_optimize_chooses_the_policy_on_the_command_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan"
    assert main(["optimize", str(SCENARIOS / "futility.yaml"), "--choose-policy", "risk,uplift", "--out",
                 str(out)]) == 0
    policies = pd.read_csv(out / "policies.csv").set_index("policy")
    assert bool(policies.loc["uplift", "chosen"]) and not bool(policies.loc["risk", "chosen"])
    assert "bill_credit: targeted by uplift (set levers.bill_credit.policy: uplift" in capsys.readouterr().out
    allocation = pd.read_csv(out / "allocation.csv")
    assert set(allocation["policy"].dropna()) <= {"uplift"}


def test_an_unknown_policy_on_the_command_line_is_a_usage_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exit_code:
        main(["optimize", str(SCENARIOS / "futility.yaml"), "--choose-policy", "risk,reach", "--out",
              str(tmp_path / "x")])
    assert exit_code.value.code == 2
    assert "names no targeting policies of risk, uplift, value" in capsys.readouterr().err
